//! SQLite through its own connections (rusqlite, over the same SQLite library sqlx uses),
//! called on the caller's thread: the writer's statements, and reads of one row by key.
//! Through sqlx, each SQLite statement is a message to a worker thread and an answer back:
//! two thread switches that cost more than the statement itself on a busy 2-core machine.
//! Lists and aggregates still go through sqlx, so a long scan never holds an async worker.

use super::arg::Arg;
use super::StoreError;
use crate::locks::Locked;
use rusqlite::types::Value;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Prepared statements each connection keeps (every statement payhost runs fits).
const STATEMENT_CACHE: usize = 512;

/// Opens a connection on `file` with `pragmas` (they may answer with a row, which is read
/// and dropped).
pub(super) fn open(file: &Path, pragmas: &[&str]) -> Result<rusqlite::Connection, StoreError> {
    let conn = rusqlite::Connection::open(file)?;
    for pragma in pragmas {
        let mut stmt = conn.prepare(pragma)?;
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Binds `args` to `stmt`. Parameters are numbered as in PostgreSQL (`$1`, `$2`, each
/// possibly used more than once), so each of SQLite's parameters is bound by the number in
/// its name, as sqlx binds them.
pub(super) fn bind(
    stmt: &mut rusqlite::CachedStatement<'_>,
    sql: &str,
    args: &[Arg],
) -> Result<(), StoreError> {
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(i);
        let arg = n
            .checked_sub(1)
            .and_then(|n| args.get(n))
            .ok_or_else(|| StoreError::Statement(format!("{sql}: no argument for ${n}")))?;
        match arg {
            Arg::Text(v) => stmt.raw_bind_parameter(i, v.as_deref())?,
            Arg::Int(v) => stmt.raw_bind_parameter(i, v)?,
        }
    }
    Ok(())
}

/// One row read from SQLite: its columns by name.
#[derive(Debug, Clone)]
pub struct LiteRow {
    names: Vec<String>,
    values: Vec<Value>,
}

impl LiteRow {
    fn value(&self, col: &str) -> Result<&Value, StoreError> {
        self.names
            .iter()
            .position(|n| n == col)
            .map(|i| &self.values[i])
            .ok_or_else(|| StoreError::Statement(format!("no column '{col}' in the row")))
    }

    pub(super) fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s.clone())),
            Value::Integer(i) => Ok(Some(i.to_string())),
            Value::Real(f) => Ok(Some(f.to_string())),
            Value::Blob(b) => String::from_utf8(b.clone())
                .map(Some)
                .map_err(|_| StoreError::Statement(format!("column '{col}' is not text"))),
        }
    }

    pub(super) fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Integer(i) => Ok(Some(*i)),
            Value::Text(s) => s.parse().map(Some).map_err(|_| {
                StoreError::Statement(format!("column '{col}' is not an integer: '{s}'"))
            }),
            Value::Real(_) | Value::Blob(_) => Err(StoreError::Statement(format!(
                "column '{col}' is not an integer"
            ))),
        }
    }

    pub(super) fn first_text(&self) -> Result<Option<String>, StoreError> {
        match self.names.first() {
            Some(name) => self.opt_text(name),
            None => Ok(None),
        }
    }
}

/// Connections for reads of one row, each used by one caller at a time and handed back.
pub(super) struct Readers {
    file: PathBuf,
    pragmas: &'static [&'static str],
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Idle read connections kept (one per core is what can be busy at once; more are closed).
const IDLE_READERS: usize = 8;

impl Readers {
    pub(super) fn new(file: PathBuf, pragmas: &'static [&'static str]) -> Self {
        Self {
            file,
            pragmas,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The first row `sql` answers with `args`, or none.
    pub(super) fn one(&self, sql: &str, args: &[Arg]) -> Result<Option<LiteRow>, StoreError> {
        let taken = self.idle.locked().pop();
        let conn = match taken {
            Some(conn) => conn,
            None => open(&self.file, self.pragmas)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?,
        };
        let row = read_one(&conn, sql, args);
        // A connection that met an outage is dropped; the next read opens a fresh one.
        if !matches!(&row, Err(e) if e.is_unavailable()) {
            let mut idle = self.idle.locked();
            if idle.len() < IDLE_READERS {
                idle.push(conn);
            }
        }
        row
    }
}

fn read_one(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Arg],
) -> Result<Option<LiteRow>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, sql, args)?;
    let names: Vec<String> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let mut rows = stmt.raw_query();
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let values = (0..names.len())
        .map(|i| row.get::<_, Value>(i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(LiteRow { names, values }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(dir: &Path) -> PathBuf {
        let file = dir.join("lite.db");
        let conn = open(&file, &["PRAGMA journal_mode = WAL"]).unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER, note TEXT)")
            .unwrap();
        conn.execute_batch("INSERT INTO t VALUES ('a', 1, NULL), ('b', 2, 'two')")
            .unwrap();
        file
    }

    /// `$N` is bound by its number, whatever the order the parameters appear in and however
    /// often one is used, as sqlx binds them (the store's SQL is written for both backends).
    #[test]
    fn parameters_bind_by_their_number() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(table(dir.path()), &[]);
        let row = readers
            .one(
                "SELECT id, n, note FROM t WHERE n = $2 AND ($1 IS NULL OR id = $1) AND $2 > 0",
                &[Arg::Text(Some("b".into())), Arg::Int(Some(2))],
            )
            .unwrap()
            .expect("row b");
        assert_eq!(row.opt_text("id").unwrap().as_deref(), Some("b"));
        assert_eq!(row.opt_int("n").unwrap(), Some(2));
        assert_eq!(row.opt_text("note").unwrap().as_deref(), Some("two"));
        let row = readers
            .one(
                "SELECT id, n, note FROM t WHERE ($2 IS NULL OR id = $2) AND n = $1",
                &[Arg::Int(Some(1)), Arg::Text(None)],
            )
            .unwrap()
            .expect("row a");
        assert_eq!(row.opt_text("note").unwrap(), None);
        assert_eq!(row.first_text().unwrap().as_deref(), Some("a"));
        assert!(readers
            .one("SELECT id FROM t WHERE id = $1", &["zz".into()])
            .unwrap()
            .is_none());
    }

    /// A statement naming an argument the caller did not give, or a column the row does not
    /// have, is an error saying which, never a panic or a wrong value.
    #[test]
    fn missing_arguments_and_columns_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(table(dir.path()), &[]);
        let e = readers
            .one("SELECT id FROM t WHERE id = $2", &["a".into()])
            .unwrap_err();
        assert!(e.to_string().contains("no argument for $2"), "{e}");
        let row = readers
            .one("SELECT id FROM t WHERE id = $1", &["a".into()])
            .unwrap()
            .unwrap();
        let e = row.opt_int("nope").unwrap_err();
        assert!(e.to_string().contains("no column 'nope'"), "{e}");
        let e = row.opt_int("id").unwrap_err();
        assert!(e.to_string().contains("not an integer"), "{e}");
    }
}
