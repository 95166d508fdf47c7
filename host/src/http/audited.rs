//! Every state-changing request of `/admin` and the console goes into the audit trail: the
//! middleware [`record`] sits on both, so an action added later is recorded without a line
//! of its own. The actor is the request's [`Actor`] (the admin key's name, or the console
//! session's); the action is named from the route, the target from its path parameters; the
//! outcome is the handler's [`Outcome`] or the status.

use super::auth::{self, Actor};
use crate::app::AppState;
use crate::audit::Entry;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// How an action went, when the status does not say (a console form always redirects).
#[derive(Debug, Clone)]
pub struct Outcome(pub String);

/// The audit trail's name of the action a route performs: `None` for a POST that changes
/// nothing (`/admin/routing/explain`) and for the routes that record themselves (the
/// console's sign-in). Others keep their method and route.
fn action_of(method: &Method, route: &str) -> Option<String> {
    let tail = route
        .strip_prefix("/admin")
        .or_else(|| route.strip_prefix("/console"))
        .unwrap_or(route);
    let named = match tail {
        "/routing/explain" | "/login" => return None,
        "/plugins/rescan" => "plugins.rescan",
        "/plugins/{name}/stop" => "plugin.stop",
        "/plugins/{name}/reload" => "plugin.reload",
        "/inbox/{id}/replay" => "inbox.replay",
        "/outbox/{id}/retry" => "outbox.retry",
        "/logout" => "console.sign_out",
        _ => return Some(format!("{method} {route}")),
    };
    Some(named.to_owned())
}

/// Records the request once answered, when it may change something (not GET or HEAD).
pub async fn record(State(s): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned());
    let Some(action) = action_of(req.method(), &route) else {
        return next.run(req).await;
    };
    let actor = req
        .extensions()
        .get::<Actor>()
        .map_or_else(|| "anonymous".to_owned(), |a| a.0.clone());
    let source = crate::access::source::describe(auth::client(&s, req.extensions(), req.headers()));
    let target = target_of(&route, req.uri().path());
    let request_id = super::current_request_id();
    let response = next.run(req).await;
    let outcome = match response.extensions().get::<Outcome>() {
        Some(o) => o.0.clone(),
        None if response.status().is_success() || response.status().is_redirection() => {
            "ok".to_owned()
        }
        None => response.status().as_u16().to_string(),
    };
    // Recorded before the answer leaves: an operator who saw "done" finds it in the trail.
    let _ = s
        .audit
        .append(Entry {
            actor,
            source,
            action,
            target,
            outcome,
            request_id,
        })
        .await;
    response
}

/// The path parameters of `path` under the template `route` (`plugin:mock`,
/// `id:whin_1`), or the path when it has none.
fn target_of(route: &str, path: &str) -> String {
    let params: Vec<String> = route
        .split('/')
        .zip(path.split('/'))
        .filter_map(|(t, p)| {
            let name = t.strip_prefix('{')?.strip_suffix('}')?;
            let value = percent_decoded(p);
            Some(format!(
                "{}:{value}",
                if name == "name" { "plugin" } else { name }
            ))
        })
        .collect();
    if params.is_empty() {
        path.to_owned()
    } else {
        params.join(" ")
    }
}

fn percent_decoded(s: &str) -> String {
    form_urlencoded::parse(format!("v={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| s.to_owned(), |(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_targets_are_named_from_the_route() {
        let post = Method::POST;
        assert_eq!(
            action_of(&post, "/admin/plugins/{name}/stop").as_deref(),
            Some("plugin.stop")
        );
        assert_eq!(
            action_of(&post, "/console/plugins/{name}/stop").as_deref(),
            Some("plugin.stop")
        );
        assert_eq!(action_of(&post, "/admin/routing/explain"), None);
        assert_eq!(action_of(&post, "/console/login"), None);
        // A route added later is recorded under its method and template.
        assert_eq!(
            action_of(&Method::DELETE, "/admin/things/{id}").as_deref(),
            Some("DELETE /admin/things/{id}")
        );
        assert_eq!(
            target_of("/admin/plugins/{name}/stop", "/admin/plugins/mock/stop"),
            "plugin:mock"
        );
        assert_eq!(
            target_of("/admin/inbox/{id}/replay", "/admin/inbox/evt%20x/replay"),
            "id:evt x"
        );
        assert_eq!(
            target_of("/admin/plugins/rescan", "/admin/plugins/rescan"),
            "/admin/plugins/rescan"
        );
    }
}
