//! The operator console at `/console`: server-rendered pages over what `/admin` and the
//! list endpoints offer. An operator signs in with an admin key through a form and gets an
//! HttpOnly, SameSite=Strict session cookie; every action is a POST form carrying the
//! session's CSRF token. Assets are compiled into the binary; the pages run under a CSP
//! that allows nothing from elsewhere.

mod chart;
mod pages;
mod routing;
mod session;

use crate::app::AppState;
use crate::http::{ApiError, RequestId};
use crate::service::Ctx;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use session::Session;
use std::collections::HashMap;

pub use crate::history::History;

const FLASH: &str = "payhost_flash";
/// The largest form an action takes.
const FORM_LIMIT: usize = 16 * 1024;

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/console", get(pages::overview))
        .route("/console/", get(|| async { Redirect::to("/console") }))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/{file}", get(asset))
        .route("/console/plugins", get(pages::plugins))
        .route("/console/plugins/rescan", post(rescan))
        .route("/console/plugins/{name}/stop", post(stop))
        .route("/console/plugins/{name}/reload", post(reload))
        .route("/console/routing", get(routing::routing))
        .route("/console/inbox", get(pages::inbox))
        .route("/console/inbox/{id}", get(pages::inbox_row))
        .route("/console/inbox/{id}/replay", post(replay))
        .route("/console/outbox", get(pages::outbox))
        .route("/console/outbox/{id}/retry", post(retry))
        .route("/console/payments", get(pages::payments))
        .route("/console/payments/{id}", get(pages::payment))
        .route("/console/customers", get(pages::customers))
        .route("/console/customers/{id}", get(pages::customer))
        .route("/console/subscriptions", get(pages::subscriptions))
        .route("/console/subscriptions/{id}", get(pages::subscription))
        .route("/console/events", get(pages::events))
        .route("/console/audit", get(pages::audit))
        .route(
            "/console/{*rest}",
            get(|v: View| async move {
                v.page(
                    "Not found",
                    "",
                    pages::problem("There is no console page at this address."),
                )
                .status(StatusCode::NOT_FOUND)
            }),
        )
        // Every action into the audit trail, as the session's operator.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::http::audited::record,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            identify,
        ))
        .layer(axum::middleware::map_response(hardened))
}

/// The operator of a signed-in request, for the audit trail.
async fn identify(
    State(s): State<AppState>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    let actor = cookies(req.headers(), session::COOKIE)
        .and_then(|c| session::verify(c, s.keyring.admins(), s.clock.now_secs()))
        .map(|session| crate::http::auth::Actor(session.actor));
    if let Some(actor) = actor {
        req.extensions_mut().insert(actor);
    }
    next.run(req).await
}

/// Headers every console answer carries: nothing framed, loaded or sent elsewhere.
async fn hardened(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// A one-time message shown on the page an action redirects to.
#[derive(Debug, Clone)]
pub struct Notice {
    pub ok: bool,
    pub text: String,
}

/// What every page handler gets: the session (or a redirect to sign in), the notice left
/// by the last action, and the request's id.
pub struct View {
    pub session: Session,
    pub notice: Option<Notice>,
    pub request_id: String,
    /// Whether the cookie should be `Secure` (the client came over HTTPS).
    secure: bool,
    /// This host's id (which host of several served the page).
    pub host: String,
}

fn cookies<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| session::cookie(h, name))
}

/// Behind a proxy that terminates TLS, cookies get `Secure`.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"))
}

fn session_of(parts: &Parts, s: &AppState) -> Option<Session> {
    let cookie = cookies(&parts.headers, session::COOKIE)?;
    session::verify(cookie, s.keyring.admins(), s.clock.now_secs())
}

impl FromRequestParts<AppState> for View {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Response> {
        let Some(session) = session_of(parts, s) else {
            if parts.method == Method::GET {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/console", |p| p.as_str());
                let to = format!(
                    "/console/login?next={}",
                    form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                return Err(Redirect::to(&to).into_response());
            }
            return Err(refused("Your session has ended: sign in again."));
        };
        let notice = cookies(&parts.headers, FLASH).and_then(|v| {
            let text: String = form_urlencoded::parse(format!("n={v}").as_bytes())
                .next()?
                .1
                .into_owned();
            let (kind, text) = text.split_once(':')?;
            Some(Notice {
                ok: kind == "ok",
                text: text.to_owned(),
            })
        });
        Ok(Self {
            session,
            notice,
            request_id: parts
                .extensions
                .get::<RequestId>()
                .map(|r| r.0.clone())
                .unwrap_or_default(),
            secure: over_https(&parts.headers),
            host: s.leases.owner().to_owned(),
        })
    }
}

impl View {
    /// The service context of a console read: the operator sees every tenant.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            tenant: None,
            request_id: self.request_id.clone(),
            idempotency: None,
            defer_reply: false,
            fail_over: false,
            resume: None,
        }
    }

    pub fn page(&self, title: &str, nav: &'static str, body: Markup) -> Page {
        Page {
            status: StatusCode::OK,
            markup: pages::layout(title, nav, self, body),
            clear_notice: self.notice.is_some(),
            secure: self.secure,
        }
    }
}

/// A rendered page.
pub struct Page {
    status: StatusCode,
    markup: Markup,
    clear_notice: bool,
    secure: bool,
}

impl Page {
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut r = (self.status, self.markup).into_response();
        if self.clear_notice {
            set_cookie(&mut r, FLASH, "", 0, self.secure);
        }
        r
    }
}

fn set_cookie(r: &mut Response, name: &str, value: &str, max_age: i64, secure: bool) {
    let cookie = format!(
        "{name}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// 403 with a page that says why (an action without a session or a valid CSRF token).
fn refused(why: &str) -> Response {
    let body = pages::bare("Refused", pages::problem(why));
    (StatusCode::FORBIDDEN, body).into_response()
}

/// A POST form of a signed-in operator whose CSRF token matched.
pub struct Action {
    form: HashMap<String, String>,
    secure: bool,
}

impl FromRequest<AppState> for Action {
    type Rejection = Response;

    async fn from_request(req: Request, s: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        // Browsers say where a request comes from; another site's forms are refused even
        // before the token is looked at.
        if parts
            .headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Err(refused(
                "Actions can only come from the console's own pages.",
            ));
        }
        let view = View::from_request_parts(&mut parts, s).await?;
        let bytes = axum::body::to_bytes(body, FORM_LIMIT)
            .await
            .map_err(|_| refused("The form could not be read."))?;
        let form: HashMap<String, String> = form_urlencoded::parse(&bytes).into_owned().collect();
        let token = form.get("csrf").map_or("", String::as_str);
        if !session::csrf_ok(&view.session, token) {
            return Err(refused(
                "This form's token is missing or stale: reload the page and try again.",
            ));
        }
        Ok(Self {
            form,
            secure: view.secure,
        })
    }
}

impl Action {
    /// Back to `to` with a notice of how the action went.
    fn done<E: Into<ApiError>>(&self, to: &str, outcome: Result<String, E>) -> Response {
        let (ok, text, audited) = match outcome.map_err(Into::into) {
            Ok(text) => (true, text, "ok".to_owned()),
            Err(e) => {
                let audited = format!("{} {}", e.status.as_u16(), e.code);
                (false, e.message, audited)
            }
        };
        let value: String = form_urlencoded::byte_serialize(
            format!("{}:{text}", if ok { "ok" } else { "err" }).as_bytes(),
        )
        .collect();
        let mut r = Redirect::to(to).into_response();
        set_cookie(&mut r, FLASH, &value, 60, self.secure);
        r.extensions_mut()
            .insert(crate::http::audited::Outcome(audited));
        r
    }

    /// The page the form asked to return to, if it is a console page.
    fn back(&self, default: &str) -> String {
        self.form
            .get("back")
            .filter(|b| b.starts_with("/console") && !b.contains("//"))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    }
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

fn safe_next(next: Option<&str>) -> &str {
    next.filter(|n| n.starts_with("/console") && !n.contains("//") && !n.contains('\\'))
        .unwrap_or("/console")
}

async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    pages::login(safe_next(q.next.as_deref()), None).into_response()
}

async fn login(State(s): State<AppState>, req: Request) -> Response {
    use crate::access::throttle::Surface;
    use crate::http::auth;
    let client = auth::client(&s, req.extensions(), req.headers());
    let headers = req.headers().clone();
    let refused = |e: ApiError, next: &str| {
        let mut r = (
            e.status,
            pages::login(next, Some(&format!("Refused: {}.", e.message))),
        )
            .into_response();
        if let Some(secs) = e.retry_after {
            r.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        r
    };
    if let Err(e) = auth::gate(&s, client, Surface::Console) {
        return refused(e, "/console");
    }
    let Ok(body) = axum::body::to_bytes(req.into_body(), FORM_LIMIT).await else {
        return refused(
            ApiError::invalid(None, "the form could not be read"),
            "/console",
        );
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let next = safe_next(form.get("next").map(String::as_str)).to_owned();
    let key = form.get("key").map_or("", |k| k.trim());
    let Some(admin) = s.keyring.admin(key).filter(|_| !key.is_empty()) else {
        tracing::warn!("console sign-in refused: not an admin key");
        if let Err(e) =
            auth::wrong_key(&s, client, Surface::Console, "POST /console/login".into()).await
        {
            return refused(e, &next);
        }
        return (
            StatusCode::UNAUTHORIZED,
            pages::login(&next, Some("That is not an admin key of this host.")),
        )
            .into_response();
    };
    s.throttle.succeeded(client);
    let actor = format!("console:{}", admin.label);
    tracing::info!(%actor, "console sign-in");
    let _ = s
        .audit
        .append(crate::audit::Entry {
            actor,
            source: crate::access::source::describe(client),
            action: "console.sign_in".into(),
            target: "console".into(),
            outcome: "ok".into(),
            request_id: crate::http::current_request_id(),
        })
        .await;
    let cookie = session::issue(&admin.digest, s.clock.now_secs());
    let mut r = Redirect::to(&next).into_response();
    set_cookie(
        &mut r,
        session::COOKIE,
        &cookie,
        session::LIFETIME_SECS,
        over_https(&headers),
    );
    r
}

async fn logout(a: Action) -> Response {
    let mut r = Redirect::to("/console/login").into_response();
    set_cookie(&mut r, session::COOKIE, "", 0, a.secure);
    r
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static str, &'static str) = match file.as_str() {
        "console.css" => (
            include_str!("assets/console.css"),
            "text/css; charset=utf-8",
        ),
        "console.js" => (
            include_str!("assets/console.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Response::builder()
        .header(header::CONTENT_TYPE, kind)
        .header(header::CACHE_CONTROL, "public, max-age=300")
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn rescan(State(s): State<AppState>, a: Action) -> Response {
    let report = s.operator.rescan().await;
    let text = format!(
        "Rescanned the plugins folder: {} loaded, {} replaced, {} removed, {} failed.",
        report.loaded.len(),
        report.replaced.len(),
        report.removed.len(),
        report.failed.len()
    );
    a.done("/console/plugins", Ok::<_, ApiError>(text))
}

async fn stop(State(s): State<AppState>, Path(name): Path<String>, a: Action) -> Response {
    let outcome = s
        .operator
        .stop_plugin(&name)
        .await
        .map(|stopped| match stopped.as_slice() {
            [] => format!("Stopped {name} (it had no running instance)."),
            _ => format!("Stopped {name}: {}.", stopped.join(", ")),
        });
    a.done("/console/plugins", outcome)
}

async fn reload(State(s): State<AppState>, Path(name): Path<String>, a: Action) -> Response {
    let outcome = s
        .operator
        .reload_plugin(&name)
        .await
        .map(|()| format!("Reloaded {name} from its file."));
    a.done("/console/plugins", outcome)
}

async fn replay(State(s): State<AppState>, Path(id): Path<String>, a: Action) -> Response {
    let outcome = s
        .operator
        .replay_inbox(&id)
        .await
        .map(|()| format!("Queued {id} to be processed again."));
    a.done(&a.back("/console/inbox"), outcome)
}

async fn retry(State(s): State<AppState>, Path(id): Path<String>, a: Action) -> Response {
    let outcome = s
        .operator
        .retry_outbox(&id)
        .await
        .map(|()| format!("Queued {id} to run again."));
    a.done(&a.back("/console/outbox"), outcome)
}
