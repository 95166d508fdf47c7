// The payment lifecycle through a client generated from payhost's /openapi.json by
// @hey-api/openapi-ts: every call goes through the generated functions, type-checked
// against the generated types (`tsc --strict` must pass before this runs), and each
// answer's status and fields are checked at run time. Admin calls included.
//
//   node lifecycle.js <base-url> <api-key>

import { client } from './client/client.gen';
import {
  attachPaymentMethod,
  audit,
  cancelSubscription,
  capturePayment,
  createCustomer,
  createPayment,
  createRefund,
  createSubscription,
  explain,
  getPayment,
  listEvents,
  listPayments,
  listRefunds,
  plugins,
  routing,
  setDefaultPaymentMethod,
} from './client/sdk.gen';
import type { LifecycleView, PaymentView } from './client/types.gen';

const [base, key] = process.argv.slice(2);
client.setConfig({ baseUrl: base, auth: () => key });

let steps = 0;
function ok<T>(what: string, r: { data?: T; error?: unknown; response: Response }, status: number): T {
  if (r.response.status !== status || r.data === undefined) {
    console.error(`FAIL ${what}: ${r.response.status} ${JSON.stringify(r.error)}`);
    process.exit(1);
  }
  steps += 1;
  console.log(`ok   ${what}`);
  return r.data;
}
function check(cond: boolean, what: string): void {
  if (!cond) {
    console.error(`FAIL ${what}`);
    process.exit(1);
  }
}

async function main(): Promise<void> {
  const run = Math.random().toString(16).slice(2, 10);
  const customer = ok(
    'create a customer',
    await createCustomer({ body: { user_id: `ts-${run}`, email: `ts-${run}@example.com` } }),
    201,
  );
  const card = ok(
    'save a card',
    await attachPaymentMethod({ path: { id: customer.id }, body: { payment_method: 'pm_card_visa' } }),
    200,
  );
  ok(
    'make it the default',
    await setDefaultPaymentMethod({ path: { id: customer.id }, body: { payment_method: card.id } }),
    200,
  );
  const order = { amount: 2000, currency: 'usd' as const, customer: customer.id, payment_method: card.id };
  const payment: PaymentView = ok(
    'pay with it',
    await createPayment({ body: order, headers: { 'Idempotency-Key': `order-${run}` } }),
    201,
  );
  check(payment.status === 'succeeded', `paid: ${payment.status}`);
  const replay = await createPayment({ body: order, headers: { 'Idempotency-Key': `order-${run}` } });
  check(replay.data?.id === payment.id, 'the same key, the same payment');
  check(replay.response.headers.get('idempotent-replayed') === 'true', 'marked as a replay');
  ok('read it back', await getPayment({ path: { id: payment.id } }), 200);
  const refund = ok('refund part of it', await createRefund({ body: { payment: payment.id, amount: 500 } }), 201);
  const refunds = ok('list refunds', await listRefunds(), 200);
  check(refunds.data.some((r) => r.id === refund.id), 'the refund listed');
  const payments = ok('list payments', await listPayments(), 200);
  check(payments.data.some((p) => p.id === payment.id), 'the payment listed');

  const held = ok(
    'authorize only',
    await createPayment({
      body: { amount: 1200, currency: 'eur', customer: customer.id, payment_method: 'pm_card_visa', capture_method: 'manual' },
    }),
    201,
  );
  check(held.status === 'requires_capture', `held: ${held.status}`);
  const captured = ok('capture part of it', await capturePayment({ path: { id: held.id }, body: { amount: 1000 } }), 200);
  check(captured.status === 'succeeded' && captured.amount_received === 1000, 'captured 1000');

  const sub = ok('subscribe', await createSubscription({ body: { price: 'price_basic', customer: customer.id } }), 201);
  ok('cancel at period end', await cancelSubscription({ path: { id: sub.id }, body: { at_period_end: true } }), 200);
  const events = ok('list events', await listEvents(), 200);
  check(events.data.length > 0, 'events recorded');

  const view = ok('admin: plugins', await plugins(), 200);
  const kinds = new Set(view.events.map((e: LifecycleView) => e.type));
  check(kinds.has('PluginRegistered') && kinds.has('PluginInitialized'), `lifecycle kinds: ${[...kinds]}`);
  ok('admin: routing', await routing(), 200);
  const decision = ok('admin: explain', await explain({ body: { amount: 700, currency: 'usd', user_id: 'u' } }), 200);
  check(decision.candidates.length > 0, 'a candidate');
  ok('admin: audit', await audit(), 200);
  console.log(`typescript client: ${steps} of ${steps} steps`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
