//! `payhost migrate`, `audit verify`, `events replay`: the commands that open the database themselves.

use super::*;

/// `payhost migrate`: the database brought to this binary's schema, and what it holds.
pub(super) async fn migrate(config_file: &Path) -> anyhow::Result<i32> {
    use crate::store::Store;
    let loaded = config::load(config_file)?;
    let store = match Store::open(&loaded.database_url()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", config_file.display());
            return Ok(1);
        }
    };
    for (version, name, checksum) in store.migrations().await? {
        let now = if store.migrated_now().contains(&version) {
            "  (applied now)"
        } else {
            ""
        };
        println!("{version:>4}  {name:<24} sha384:{}{now}", &checksum[..16]);
    }
    let applied = store.migrated_now().len();
    if applied > 0 {
        cli_audit_in(
            &store,
            "database.migrate",
            store.backend().name(),
            &format!("ok: applied {applied}"),
        )
        .await;
    }
    match applied {
        0 => println!("the database ({}) was up to date", store.backend().name()),
        n => println!(
            "applied {n} migration{} to the {} database",
            if n == 1 { "" } else { "s" },
            store.backend().name()
        ),
    }
    store.close().await;
    Ok(0)
}

/// `payhost audit verify`.
pub(super) async fn audit_verify(config_file: &Path) -> anyhow::Result<i32> {
    let loaded = config::load(config_file)?;
    let store = crate::store::Store::open(&loaded.database_url())
        .await
        .with_context(|| format!("{}: cannot open the database", config_file.display()))?;
    let found = crate::audit::verify(&store).await?;
    store.close().await;
    match found {
        Ok(v) => {
            match (v.first, v.last, v.head) {
                (Some(first), Some(last), Some(head)) => println!(
                    "the audit trail holds: {} rows, {first} to {last}; the last row's hash {head}",
                    v.rows
                ),
                _ => println!("the audit trail is empty"),
            }
            Ok(0)
        }
        Err(broken) => {
            println!("the audit trail is broken: {broken}");
            Ok(1)
        }
    }
}

pub(super) async fn replay(config_file: &Path, id: &str) -> anyhow::Result<i32> {
    use crate::clock::Clock;
    use crate::store::Store;
    let loaded = config::load(config_file)?;
    let store = Store::open(&loaded.database_url())
        .await
        .with_context(|| format!("{}: cannot open the database", config_file.display()))?;
    // The same actions as /admin's and the console's (a running host picks the row up
    // within a second).
    let (done, action) = if id.starts_with("obx_") {
        (
            crate::operator::retry_outbox(&store, id, SystemClock.now_millis()).await,
            "outbox.retry",
        )
    } else {
        (
            crate::operator::replay_inbox(&store, id, SystemClock.now_secs()).await,
            "inbox.replay",
        )
    };
    let outcome = match &done {
        Ok(()) => "ok",
        Err(crate::operator::OperatorError::NotFound { .. }) => "404 not_found",
        Err(_) => "503 database_unavailable",
    };
    cli_audit_in(&store, action, &format!("id:{id}"), outcome).await;
    store.close().await;
    match done {
        Ok(()) => {
            println!("queued for processing again: {id}");
            Ok(0)
        }
        Err(crate::operator::OperatorError::NotFound { .. }) => {
            eprintln!(
                "error: no stored webhook or pending/failed handler work matches '{id}' \
                 (inbox ids start with whin_, outbox ids with obx_; done handler work is final)"
            );
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
