//! The schema's migrations, embedded in the binary in each backend's SQL, applied through
//! sqlx's migrator (each applied one's SHA-384 kept in `_sqlx_migrations`), and the
//! adoption of databases the earlier hand-written runner migrated.

use super::{Backend, StoreError};
use sqlx::{AnyConnection, Connection, Executor};

/// One migration of the schema, in each backend's SQL (embedded in the binary).
pub(super) struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

pub(super) const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "init",
        sqlite: concat!(
            include_str!("../../migrations/common.sql"),
            include_str!("../../migrations/sqlite/0001_init.sql")
        ),
        postgres: concat!(
            include_str!("../../migrations/common.sql"),
            include_str!("../../migrations/postgres/0001_init.sql")
        ),
    },
    Migration {
        version: 2,
        name: "webhooks",
        sqlite: include_str!("../../migrations/0002_webhooks.sql"),
        postgres: include_str!("../../migrations/0002_webhooks.sql"),
    },
    Migration {
        version: 3,
        name: "outbox",
        sqlite: include_str!("../../migrations/0003_outbox.sql"),
        postgres: include_str!("../../migrations/0003_outbox.sql"),
    },
    Migration {
        version: 4,
        name: "dunning",
        sqlite: include_str!("../../migrations/0004_dunning.sql"),
        postgres: include_str!("../../migrations/0004_dunning.sql"),
    },
    Migration {
        version: 5,
        name: "contract 2.1",
        sqlite: include_str!("../../migrations/0005_contract_2_1.sql"),
        postgres: include_str!("../../migrations/0005_contract_2_1.sql"),
    },
    Migration {
        version: 6,
        name: "lists",
        sqlite: include_str!("../../migrations/0006_lists.sql"),
        postgres: include_str!("../../migrations/0006_lists.sql"),
    },
    Migration {
        version: 7,
        name: "outbox lanes",
        sqlite: include_str!("../../migrations/0007_outbox_lanes.sql"),
        postgres: include_str!("../../migrations/0007_outbox_lanes.sql"),
    },
    Migration {
        version: 8,
        name: "leases",
        sqlite: include_str!("../../migrations/0008_leases.sql"),
        postgres: include_str!("../../migrations/0008_leases.sql"),
    },
    Migration {
        version: 9,
        name: "idempotency claims",
        sqlite: include_str!("../../migrations/0009_idempotency_claims.sql"),
        postgres: include_str!("../../migrations/0009_idempotency_claims.sql"),
    },
    Migration {
        version: 10,
        name: "inbox claims",
        sqlite: include_str!("../../migrations/0010_inbox_claims.sql"),
        postgres: include_str!("../../migrations/0010_inbox_claims.sql"),
    },
    Migration {
        version: 11,
        name: "inbox order",
        sqlite: include_str!("../../migrations/0011_inbox_order.sql"),
        postgres: include_str!("../../migrations/0011_inbox_order.sql"),
    },
    Migration {
        version: 12,
        name: "payment attempts",
        sqlite: include_str!("../../migrations/0012_payment_attempts.sql"),
        postgres: include_str!("../../migrations/0012_payment_attempts.sql"),
    },
    Migration {
        version: 13,
        name: "audit",
        sqlite: include_str!("../../migrations/0013_audit.sql"),
        postgres: include_str!("../../migrations/0013_audit.sql"),
    },
    Migration {
        version: 14,
        name: "payment traces",
        sqlite: include_str!("../../migrations/0014_payment_traces.sql"),
        postgres: include_str!("../../migrations/0014_payment_traces.sql"),
    },
    Migration {
        version: 15,
        name: "thin webhooks",
        sqlite: include_str!("../../migrations/0015_thin_webhooks.sql"),
        postgres: include_str!("../../migrations/0015_thin_webhooks.sql"),
    },
    Migration {
        version: 16,
        name: "refund checks",
        sqlite: include_str!("../../migrations/0016_refund_checks.sql"),
        postgres: include_str!("../../migrations/0016_refund_checks.sql"),
    },
];

/// The embedded migrations in one backend's SQL, for sqlx's migrator (which keeps each
/// applied one's SHA-384 in `_sqlx_migrations` and refuses a database whose applied
/// migrations differ from these).
#[derive(Debug)]
struct Embedded(Backend);

impl<'s> sqlx::migrate::MigrationSource<'s> for Embedded {
    fn resolve(
        self,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<
                    Output = Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
                > + Send
                + 's,
        >,
    > {
        let migrations = MIGRATIONS
            .iter()
            .map(|m| {
                sqlx::migrate::Migration::new(
                    m.version,
                    std::borrow::Cow::Borrowed(m.name),
                    sqlx::migrate::MigrationType::Simple,
                    std::borrow::Cow::Borrowed(match self.0 {
                        Backend::Sqlite => m.sqlite,
                        Backend::Postgres => m.postgres,
                    }),
                    false,
                )
            })
            .collect();
        Box::pin(async move { Ok(migrations) })
    }
}

/// Applies the migrations this database lacks; returns their versions.
///
/// # Errors
/// [`StoreError::Migrate`] when an applied migration differs from the binary's (edited
/// after it ran), the database has one the binary does not know (a newer payhost migrated
/// it), a migration failed half-way, or one fails now.
pub(super) async fn migrate(
    backend: Backend,
    conn: &mut AnyConnection,
) -> Result<Vec<i64>, StoreError> {
    use sqlx::migrate::{Migrate, MigrateError, Migrator};
    let failed = |e: MigrateError| {
        let (version, error) = match &e {
            MigrateError::VersionMismatch(v) => (
                *v,
                "applied with other SQL than this binary's (the migration was edited after it \
                 ran); restore the migration or the database"
                    .to_owned(),
            ),
            MigrateError::VersionMissing(v) => (
                *v,
                "applied to this database but unknown to this binary (a newer payhost \
                 migrated it); run that version"
                    .to_owned(),
            ),
            MigrateError::Dirty(v) => (*v, "failed half-way; repair the database".to_owned()),
            MigrateError::ExecuteMigration(inner, v) => (*v, inner.to_string()),
            other => (0, other.to_string()),
        };
        StoreError::Migrate { version, error }
    };
    let migrator = Migrator::new(Embedded(backend)).await.map_err(failed)?;
    conn.lock().await.map_err(failed)?;
    let result = async {
        conn.ensure_migrations_table().await.map_err(failed)?;
        adopt_hand_runner(backend, conn).await?;
        let before: Vec<i64> = conn
            .list_applied_migrations()
            .await
            .map_err(failed)?
            .iter()
            .map(|m| m.version)
            .collect();
        migrator.run_direct(&mut *conn).await.map_err(failed)?;
        let applied: Vec<i64> = MIGRATIONS
            .iter()
            .map(|m| m.version)
            .filter(|v| !before.contains(v))
            .collect();
        for version in &applied {
            tracing::info!(version, backend = backend.name(), "database migrated");
        }
        Ok(applied)
    }
    .await;
    let _ = conn.unlock().await;
    result
}

/// Databases migrated before payhost used sqlx's migrator list their versions in
/// `schema_migrations`: they are recorded in `_sqlx_migrations` with this binary's
/// checksums (that runner kept none), once, and the old table goes.
async fn adopt_hand_runner(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    let exists = match backend {
        Backend::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
        }
        Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.tables \
             WHERE table_name = 'schema_migrations' AND table_schema = current_schema()"
        }
    };
    let n: i64 = sqlx::query_scalar(exists).fetch_one(&mut *conn).await?;
    if n == 0 {
        return Ok(());
    }
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let mut tx = conn.begin().await?;
    for m in MIGRATIONS.iter().filter(|m| versions.contains(&m.version)) {
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let checksum = sqlx::migrate::Migration::new(
            m.version,
            std::borrow::Cow::Borrowed(m.name),
            sqlx::migrate::MigrationType::Simple,
            std::borrow::Cow::Borrowed(sql),
            false,
        )
        .checksum
        .into_owned();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, TRUE, $3, 0)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(checksum)
        .execute(&mut *tx)
        .await?;
    }
    tx.execute("DROP TABLE schema_migrations").await?;
    tx.commit().await?;
    tracing::info!(
        versions = versions.len(),
        "recorded the migrations of the earlier runner with their checksums"
    );
    Ok(())
}
