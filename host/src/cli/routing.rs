//! `payhost routing explain`: what the routing table answers for a request, from the live server or the config.

use super::*;

/// `payhost routing explain`: the running server's answer, else one made here.
pub(super) async fn explain(
    config_file: &Path,
    request: &str,
    tenant: Option<String>,
    key: Option<String>,
) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let mut query: Vec<(&str, String)> = Vec::new();
    if let Some(t) = &tenant {
        query.push(("tenant", t.clone()));
    }
    if let Some(k) = &key {
        query.push(("idempotency_key", k.clone()));
    }
    let query = if query.is_empty() {
        String::new()
    } else {
        format!(
            "?{}",
            serde_urlencoded::to_string(&query).context("the tenant or key")?
        )
    };
    let path = format!("/admin/routing/explain{query}");
    let (source, status, answer) = match live_admin(&loaded, "POST", &path, request).await {
        Some((status, body)) => ("server", status, body),
        None => {
            let state = AppState::start_with_system_clock(loaded)
                .await
                .context("cannot open the database")?;
            let ctx = crate::service::Ctx {
                tenant,
                ..Default::default()
            };
            let outcome = match crate::http::parse_json(request.as_bytes()) {
                Err(e) => Err(e),
                Ok(req) => state
                    .service
                    .explain(&ctx, req, key.as_deref().unwrap_or("explain"))
                    .await
                    .map_err(crate::http::ApiError::from),
            };
            state.registry.stop_all(StopReason::Shutdown).await;
            match outcome {
                Ok(d) => ("here", 200, serde_json::to_value(d)?),
                Err(e) => ("here", e.status.as_u16(), serde_json::to_value(e.body())?),
            }
        }
    };
    if source == "here" {
        println!("(no server running this config: routed here, with every circuit closed)");
    }
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(if status == 200 { 0 } else { 1 })
}
