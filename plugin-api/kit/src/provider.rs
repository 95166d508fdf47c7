//! The [`Provider`] trait: one method per operation of the contract, each answering
//! `unsupported_operation` unless implemented, and the dispatch that routes a call across
//! the boundary to it. Both are generated from the contract's operation list, so a new
//! operation in a later contract version appears here with its default, never as a panic.

use crate::api::ffi::{decode_request, RawEnvelope};
use crate::api::{codes, CallCtx, PluginError, CONTRACT_VERSION};

macro_rules! provider_trait {
    ($(
        $(#[$meta:meta])*
        $method:ident : $ty:ident ($cap:ident) $req:ty => $resp:ty;
    )*) => {
        /// What a provider plugin implements: the operations its declared capabilities
        /// promise. Every method defaults to `unsupported_operation`; the host never calls an
        /// operation of a capability the plugin did not declare, and the conformance suite
        /// fails a declared capability whose operations are left at the default.
        ///
        /// Methods run on the host's blocking thread pool, several at once on one instance
        /// (hence `Sync`): guard shared state with a `Mutex`. Each call has a deadline
        /// (`ctx.deadline_ms`); the kit's [`HttpClient`](crate::HttpClient) keeps within it.
        pub trait Provider: Send + Sync + 'static {
            $(
                $(#[$meta])*
                fn $method(&self, ctx: &CallCtx, req: $req) -> Result<$resp, PluginError> {
                    let _ = (ctx, req);
                    Err(PluginError::unsupported(stringify!($method)))
                }
            )*

            /// Releases what the instance holds. Called once, after its last call finished,
            /// when the instance is replaced, removed or the host stops.
            fn shutdown(&self) -> Result<(), PluginError> {
                Ok(())
            }
        }

        /// Runs operation `op` of `provider` with a JSON message; answers JSON.
        pub(crate) fn dispatch<P: Provider + ?Sized>(
            provider: &P,
            op: &str,
            message: &[u8],
        ) -> Result<Vec<u8>, PluginError> {
            if op == crate::api::ops::SHUTDOWN {
                provider.shutdown()?;
                return Ok(b"{}".to_vec());
            }
            let envelope: RawEnvelope<'_> = serde_json::from_slice(message).map_err(|e| {
                PluginError::new(codes::PROTOCOL, format!("cannot decode the {op} call: {e}"))
            })?;
            let ctx = &envelope.ctx;
            match op {
                $(
                    stringify!($method) => {
                        let request = decode_request::<$req>(op, envelope.request)?;
                        let answer = provider.$method(ctx, request)?;
                        serde_json::to_vec(&answer).map_err(|e| {
                            PluginError::new(codes::INTERNAL, format!("cannot encode the {op} answer: {e}"))
                        })
                    }
                )*
                other => Err(PluginError::new(
                    codes::UNSUPPORTED,
                    format!(
                        "this plugin was built against plugin contract {CONTRACT_VERSION}, \
                         which has no operation '{other}'"
                    ),
                )),
            }
        }
    };
}

crate::api::for_each_operation!(provider_trait);
