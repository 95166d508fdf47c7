//! The databases the end-to-end tests run against: a SQLite file in the scratch folder
//! always; PostgreSQL when `PAYHOST_TEST_POSTGRES` names a server (e.g.
//! `postgres://postgres@127.0.0.1:5432/test`), each test in a database of its own.

use sqlx::{AnyConnection, Connection, Executor, Row};
use std::path::Path;

/// The variable that turns the PostgreSQL tests on.
pub const POSTGRES_VAR: &str = "PAYHOST_TEST_POSTGRES";
/// Set (by `.ci/run`): a PostgreSQL test that cannot run fails instead of skipping.
pub const REQUIRE_VAR: &str = "PAYHOST_REQUIRE_POSTGRES";

pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    /// For PostgreSQL: the server URL and the database to drop at the end.
    drop_from: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.drop_from.take() {
            block_on(async {
                if let Ok(mut c) = AnyConnection::connect(&base).await {
                    let _ = c
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        }
    }
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

impl TestDb {
    pub fn sqlite(dir: &Path) -> Self {
        Self {
            url: format!("sqlite://{}", dir.join("data").join("payhost.db").display()),
            backend: "sqlite",
            drop_from: None,
        }
    }

    /// A new, empty PostgreSQL database, or `None` when the variable is not set: then the
    /// test's skip is said loudly and counted ([`crate::skipped`]), and it fails instead
    /// when `PAYHOST_REQUIRE_POSTGRES` is set (CI).
    pub fn postgres(test: &str) -> Option<Self> {
        let Some(base) = std::env::var(POSTGRES_VAR).ok().filter(|v| !v.is_empty()) else {
            crate::skipped(
                &format!("PostgreSQL test '{test}'"),
                &format!("{POSTGRES_VAR} names no server (make test sets it when one answers on 127.0.0.1:5432)"),
                REQUIRE_VAR,
            );
            return None;
        };
        sqlx::any::install_default_drivers();
        crate::ran("PostgreSQL", test);
        let name = format!(
            "payhost_{}_{}_{}",
            test,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        block_on(async {
            let mut c = AnyConnection::connect(&base)
                .await
                .unwrap_or_else(|e| panic!("{POSTGRES_VAR}={base}: cannot connect: {e}"));
            c.execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
        });
        let (server, _) = base.rsplit_once('/').expect("a URL ending in /<database>");
        Some(Self {
            url: format!("{server}/{name}"),
            backend: "postgres",
            drop_from: Some((base.clone(), name)),
        })
    }

    /// Runs a query whose columns are all text (CAST others), returning every row.
    pub fn rows(&self, sql: &str, args: &[&str]) -> Vec<Vec<Option<String>>> {
        sqlx::any::install_default_drivers();
        block_on(async {
            let mut c = AnyConnection::connect(&self.url).await.unwrap();
            let mut q = sqlx::query(sql);
            for a in args {
                q = q.bind(a.to_string());
            }
            let rows = q
                .fetch_all(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| r.try_get::<Option<String>, _>(i).unwrap())
                        .collect()
                })
                .collect()
        })
    }

    /// Runs one statement (setup for benches and tests).
    pub fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        block_on(async {
            let mut c = AnyConnection::connect(&self.url).await.unwrap();
            c.execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        });
    }

    /// The single text value a query returns.
    pub fn value(&self, sql: &str, args: &[&str]) -> Option<String> {
        let rows = self.rows(sql, args);
        assert_eq!(
            rows.len(),
            1,
            "{sql} {args:?}: expected one row, got {rows:?}"
        );
        rows[0][0].clone()
    }

    /// The `[host]` line pointing payhost at this database.
    pub fn host_line(&self) -> String {
        format!("database_url = \"{}\"\n", self.url)
    }
}
