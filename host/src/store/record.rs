//! Each record kind declared once: its stored row, the columns read and written, and the
//! API view built from it, from one [`record!`] declaration per kind.
//!
//! Before this, a record was written out four times beside its migration: the row struct,
//! its column list, its `from_row`, its `INSERT` with its arguments, then a view struct and
//! its `From` in `api/views.rs`. A field added to one and forgotten in another compiled.
//! Now each field is one line of its kind's declaration, and the line says where it goes:
//!
//! | line | in the row | read | inserted | in the view |
//! |---|---|---|---|---|
//! | `api name: T` | ✓ | ✓ | ✓ | ✓ as `name` |
//! | `api name as shown: T` | ✓ | ✓ | ✓ | ✓ as `shown` |
//! | `row name: T` | ✓ | ✓ | ✓ | |
//! | `joined api name = "sql": T` | ✓ | ✓ from `sql` | | ✓ |
//! | `joined row name = "sql": T` | ✓ | ✓ from `sql` | | |
//! | `view name: T = expr` | | | | ✓ computed from the row |
//!
//! A column's Rust type says how it is stored ([`Column`]): text, a 64-bit integer, a
//! boolean as 0/1, and the contract's open status enums as their wire names (a status a
//! newer plugin reports is kept as `Unknown` and written back unchanged). The view keeps
//! the API's JSON as it was: field names, order and documentation come from the lines, and
//! a status serializes as the same string the column holds.

use super::page::{Filters, Listed, Order, Page};
use super::{Arg, Row, RowExt, Store, StoreError, Unit};
use payhost_plugin_api::{InvoiceStatus, PaymentStatus, RefundStatus, SubscriptionStatus};

/// A value kept in one column.
pub trait Column: Sized {
    /// The value of column `col`.
    ///
    /// # Errors
    /// A column that is missing or of another type.
    fn read(row: &Row, col: &str) -> Result<Self, StoreError>;

    /// The value bound to a statement.
    fn arg(&self) -> Arg;
}

impl Column for String {
    fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
        row.text(col)
    }
    fn arg(&self) -> Arg {
        self.as_str().into()
    }
}

impl Column for Option<String> {
    fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
        row.opt_text(col)
    }
    fn arg(&self) -> Arg {
        Arg::from(self.as_deref())
    }
}

impl Column for i64 {
    fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
        row.int(col)
    }
    fn arg(&self) -> Arg {
        (*self).into()
    }
}

impl Column for Option<i64> {
    fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
        row.opt_int(col)
    }
    fn arg(&self) -> Arg {
        (*self).into()
    }
}

/// 0 or 1.
impl Column for bool {
    fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
        Ok(row.int(col)? != 0)
    }
    fn arg(&self) -> Arg {
        (*self).into()
    }
}

/// The contract's open enums, kept as their wire names.
macro_rules! wire_name_columns {
    ($($enum:ty),*) => {$(
        impl Column for $enum {
            fn read(row: &Row, col: &str) -> Result<Self, StoreError> {
                Ok(<$enum>::parse(&row.text(col)?))
            }
            fn arg(&self) -> Arg {
                self.as_str().into()
            }
        }
    )*};
}

wire_name_columns!(
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
    InvoiceStatus
);

/// A record kind's table, as its [`record!`] declaration gives it.
pub trait Table: Sized {
    /// What rows are read from: the table, or a join under an alias.
    const FROM: &'static str;

    /// The columns read, joined by commas (the table's own under the alias, then the
    /// joined ones).
    fn select() -> &'static str;

    /// `INSERT INTO` the table with every column of its own (and the declaration's
    /// `ON CONFLICT` clause).
    fn insert_sql() -> &'static str;

    /// The record from a row read with [`Table::select`].
    ///
    /// # Errors
    /// A column that is missing or of another type.
    fn read(row: &Row) -> Result<Self, StoreError>;

    /// The values of [`Table::insert_sql`]'s placeholders.
    fn args(&self) -> Vec<Arg>;
}

/// The `SELECT` list of own columns under `prefix` and the joined expressions.
pub(super) fn select_list(prefix: &str, own: &[&str], joined: &[&str]) -> String {
    own.iter()
        .map(|c| format!("{prefix}{c}"))
        .chain(joined.iter().map(|j| (*j).to_owned()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `INSERT INTO table (own...) VALUES ($1, ...)`, then `ON CONFLICT` and `conflict` when
/// given.
pub(super) fn insert_statement(table: &str, own: &[&str], conflict: Option<&str>) -> String {
    let placeholders = (1..=own.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let conflict = conflict.map_or(String::new(), |c| format!(" ON CONFLICT {c}"));
    format!(
        "INSERT INTO {table} ({}) VALUES ({placeholders}){conflict}",
        own.join(", ")
    )
}

impl Store {
    /// The one record of kind `R` where `clause` holds (its placeholders bound to `args`).
    ///
    /// # Errors
    /// A database failure or a row of another shape.
    pub(super) async fn record<R: Table>(
        &self,
        clause: &str,
        args: Vec<Arg>,
    ) -> Result<Option<R>, StoreError> {
        let sql = format!("SELECT {} FROM {} WHERE {clause}", R::select(), R::FROM);
        self.one(&sql, args)
            .await?
            .as_ref()
            .map(R::read)
            .transpose()
    }

    /// Every record of kind `R` where `clause` holds, in the order `tail` gives.
    ///
    /// # Errors
    /// A database failure or a row of another shape.
    pub(super) async fn records<R: Table>(
        &self,
        clause: &str,
        tail: &str,
        args: Vec<Arg>,
    ) -> Result<Vec<R>, StoreError> {
        let sql = format!(
            "SELECT {} FROM {} WHERE {clause} {tail}",
            R::select(),
            R::FROM
        );
        self.all(&sql, args).await?.iter().map(R::read).collect()
    }

    /// One page of records of kind `R` under `filters`.
    ///
    /// # Errors
    /// A database failure, a row of another shape, or a cursor naming no record.
    pub(super) async fn page_of<R: Table>(
        &self,
        filters: Filters,
        order: Order,
        page: &Page,
    ) -> Result<Listed<R>, StoreError> {
        self.page(R::FROM, R::select(), filters, order, page)
            .await?
            .try_map(|r| R::read(&r))
    }
}

/// A new record, every column of its own; the statement's index in `unit` (whether it
/// changed a row tells, under an `ON CONFLICT ... DO NOTHING`, whether it was new).
pub fn insert<R: Table>(unit: &mut Unit, record: &R) -> usize {
    unit.push(R::insert_sql(), record.args())
}

/// Declares a record kind: its row, its [`Table`], its API view and the view's `From`.
///
/// ```ignore
/// record! {
///     /// The row's documentation.
///     #[derive(Debug, Clone)]
///     pub struct PaymentRow in "payments";
///     /// The view's documentation (the OpenAPI schema's).
///     #[derive(Debug, Clone, Serialize, ToSchema)]
///     pub struct PaymentView of |p| {
///         api id: String,
///         view object: &'static str = "payment",
///         row tenant: String,
///         api customer_id as customer: String,
///         #[api(schema(value_type = String))]
///         api status: PaymentStatus,
///     }
/// }
/// ```
///
/// An insert that may meet an existing row says what then happens:
/// `pub struct PaymentMethodRow in "payment_methods" on conflict "(provider, provider_id) DO NOTHING";`.
/// A kind read through a join names it and its alias:
/// `pub struct RefundRow in "refunds" as "r" from "refunds r JOIN payments p ON ...";` and
/// its joined columns as `joined row tenant = "p.tenant": String`.
macro_rules! record {
    // The declaration: its header kept whole, its lines taken one at a time.
    (
        $(#[$rm:meta])*
        pub struct $row:ident in $table:literal $(as $alias:literal from $from:literal)?
            $(on conflict $conflict:literal)?;
        $(#[$vm:meta])*
        pub struct $view:ident of |$v:ident| { $($lines:tt)* }
    ) => {
        record!(@line $v
            [$(#[$rm])* $row $table [$($alias $from)?] [$($conflict)?] $(#[$vm])* $view]
            [] [] [] [] []
            $($lines)*
        );
    };

    // [row fields] [view fields] [view initializers] [own (name = column, type)]
    // [joined (name = sql: type)]
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])* $(#[api($va:meta)])*
        api $f:ident : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)* $(#[doc = $doc])* $(#[$va])* pub $f: $t,]
            [$($vi)* $f: ::std::clone::Clone::clone(&$v.$f),]
            [$($own)* ($f = stringify!($f), $t)] [$($jn)*]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])* $(#[api($va:meta)])*
        api $f:ident as $shown:ident : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)* $(#[doc = $doc])* $(#[$va])* pub $shown: $t,]
            [$($vi)* $shown: ::std::clone::Clone::clone(&$v.$f),]
            [$($own)* ($f = stringify!($f), $t)] [$($jn)*]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])* $(#[api($va:meta)])*
        api $f:ident in $col:literal : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)* $(#[doc = $doc])* $(#[$va])* pub $f: $t,]
            [$($vi)* $f: ::std::clone::Clone::clone(&$v.$f),]
            [$($own)* ($f = $col, $t)] [$($jn)*]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])*
        row $f:ident : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)*] [$($vi)*]
            [$($own)* ($f = stringify!($f), $t)] [$($jn)*]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])* $(#[api($va:meta)])*
        joined api $f:ident = $sql:literal : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)* $(#[doc = $doc])* $(#[$va])* pub $f: $t,]
            [$($vi)* $f: ::std::clone::Clone::clone(&$v.$f),]
            [$($own)*] [$($jn)* ($f = $sql: $t)]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])* $(#[api($va:meta)])*
        joined api $f:ident as $shown:ident = $sql:literal : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)* $(#[doc = $doc])* $(#[$va])* pub $shown: $t,]
            [$($vi)* $shown: ::std::clone::Clone::clone(&$v.$f),]
            [$($own)*] [$($jn)* ($f = $sql: $t)]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[doc = $doc:literal])*
        joined row $f:ident = $sql:literal : $t:ty, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)* $(#[doc = $doc])* pub $f: $t,]
            [$($vf)*] [$($vi)*]
            [$($own)*] [$($jn)* ($f = $sql: $t)]
            $($rest)*
        );
    };
    (@line $v:ident $head:tt [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*] [$($own:tt)*] [$($jn:tt)*]
        $(#[$va:meta])*
        view $f:ident : $t:ty = $e:expr, $($rest:tt)*
    ) => {
        record!(@line $v $head
            [$($rf)*]
            [$($vf)* $(#[$va])* pub $f: $t,]
            [$($vi)* $f: $e,]
            [$($own)*] [$($jn)*]
            $($rest)*
        );
    };

    // Every line taken: the row, its table, the view.
    (@line $v:ident
        [$(#[$rm:meta])* $row:ident $table:literal [$($alias:literal $from:literal)?]
         [$($conflict:literal)?] $(#[$vm:meta])* $view:ident]
        [$($rf:tt)*] [$($vf:tt)*] [$($vi:tt)*]
        [$(($of:ident = $ocol:expr, $ot:ty))*] [$(($jf:ident = $jsql:literal: $jt:ty))*]
    ) => {
        $(#[$rm])*
        pub struct $row { $($rf)* }

        impl $crate::store::record::Table for $row {
            const FROM: &'static str = record!(@first $($from,)? $table,);

            fn select() -> &'static str {
                static SELECT: ::std::sync::OnceLock<String> = ::std::sync::OnceLock::new();
                SELECT.get_or_init(|| {
                    $crate::store::record::select_list(
                        record!(@prefix $($alias)?),
                        &[$($ocol),*],
                        &[$($jsql),*],
                    )
                })
            }

            fn insert_sql() -> &'static str {
                static INSERT: ::std::sync::OnceLock<String> = ::std::sync::OnceLock::new();
                INSERT.get_or_init(|| {
                    $crate::store::record::insert_statement(
                        $table,
                        &[$($ocol),*],
                        record!(@first $(Some($conflict),)? None,),
                    )
                })
            }

            fn read(
                row: &$crate::store::Row,
            ) -> ::std::result::Result<Self, $crate::store::StoreError> {
                use $crate::store::record::Column;
                Ok(Self {
                    $($of: <$ot>::read(row, $ocol)?,)*
                    $($jf: <$jt>::read(row, stringify!($jf))?,)*
                })
            }

            fn args(&self) -> Vec<$crate::store::Arg> {
                use $crate::store::record::Column;
                vec![$(Column::arg(&self.$of)),*]
            }
        }

        $(#[$vm])*
        pub struct $view { $($vf)* }

        impl From<&$row> for $view {
            fn from($v: &$row) -> Self {
                Self { $($vi)* }
            }
        }
    };

    (@first $x:expr, $($rest:tt)*) => { $x };
    (@prefix) => { "" };
    (@prefix $alias:literal) => { concat!($alias, ".") };
}

pub(crate) use record;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    use crate::store::{Store, Unit};

    record! {
        /// Every kind of line, once.
        #[derive(Debug, Clone)]
        pub struct ThingRow in "things" as "t" from "(SELECT th.*, o.tenant, \
            o.owner_name, o.region FROM things th JOIN owners o ON o.id = th.owner_id) t" on conflict "(id) DO NOTHING";
        /// Its view.
        #[derive(Debug, Serialize)]
        pub struct ThingView of |t| {
            api id: String,
            view object: &'static str = "thing",
            api owner_id as owner: String,
            row secret: String,
            #[api(serde(rename = "type"))]
            api kind: String,
            api status: PaymentStatus,
            api done: bool,
            api count: Option<i64>,
            joined api tenant = "t.tenant": String,
            joined row owner_name = "t.owner_name": Option<String>,
            joined api region as area = "t.region": Option<String>,
            view double: i64 = t.count.unwrap_or(0) * 2,
        }
    }

    fn thing() -> ThingRow {
        ThingRow {
            id: "th_1".into(),
            owner_id: "own_1".into(),
            secret: "never shown".into(),
            kind: "big".into(),
            status: PaymentStatus::Unknown("newer".into()),
            done: true,
            count: Some(3),
            tenant: "acme".into(),
            owner_name: None,
            region: Some("eu".into()),
        }
    }

    #[test]
    fn a_declaration_gives_the_select_list_and_the_insert() {
        assert!(ThingRow::FROM.starts_with("(SELECT th.*"));
        assert_eq!(
            ThingRow::select(),
            "t.id, t.owner_id, t.secret, t.kind, t.status, t.done, t.count, t.tenant, \
             t.owner_name, t.region"
        );
        // Joined columns are read, never inserted.
        assert_eq!(
            ThingRow::insert_sql(),
            "INSERT INTO things (id, owner_id, secret, kind, status, done, count) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING"
        );
        let args = thing().args();
        assert_eq!(args.len(), 7);
        assert!(matches!(&args[4], Arg::Text(Some(s)) if s == "newer"));
        assert!(matches!(args[5], Arg::Int(Some(1))));
        assert!(matches!(args[6], Arg::Int(Some(3))));
    }

    /// Written with the declaration's insert and read back through its join, on SQLite.
    #[tokio::test]
    async fn a_record_goes_in_and_comes_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&super::super::default_url(dir.path()))
            .await
            .unwrap();
        let mut unit = Unit::new();
        unit.push(
            "CREATE TABLE owners (id TEXT PRIMARY KEY, tenant TEXT NOT NULL, \
             owner_name TEXT, region TEXT)",
            vec![],
        );
        unit.push(
            "CREATE TABLE things (id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, secret TEXT NOT NULL, \
             kind TEXT NOT NULL, status TEXT NOT NULL, done INTEGER NOT NULL, count INTEGER, \
             created_at INTEGER NOT NULL DEFAULT 0)",
            vec![],
        );
        unit.push(
            "INSERT INTO owners VALUES ('own_1', 'acme', NULL, 'eu')",
            vec![],
        );
        store.commit(unit).await.unwrap();

        let mut unit = Unit::new();
        insert(&mut unit, &thing());
        let again = insert(&mut unit, &thing());
        let changed = store.commit(unit).await.unwrap();
        assert_eq!(changed[again], 0, "ON CONFLICT (id) DO NOTHING");

        let read: ThingRow = store
            .record("t.id = $1", vec!["th_1".into()])
            .await
            .unwrap()
            .unwrap();
        let expected = thing();
        assert_eq!(
            (&read.id, &read.owner_id, &read.secret, &read.kind),
            (
                &expected.id,
                &expected.owner_id,
                &expected.secret,
                &expected.kind
            )
        );
        assert_eq!(read.status, PaymentStatus::Unknown("newer".into()));
        assert_eq!((read.done, read.count), (true, Some(3)));
        assert_eq!(
            (&read.tenant, &read.owner_name, &read.region),
            (&expected.tenant, &None, &expected.region)
        );
        let all: Vec<ThingRow> = store
            .records("t.done = 1", "ORDER BY t.id", vec![])
            .await
            .unwrap();
        assert_eq!(all.len(), 1);
        store.close().await;
    }

    #[test]
    fn the_view_shows_api_lines_in_order_and_hides_row_lines() {
        let json = serde_json::to_string(&ThingView::from(&thing())).unwrap();
        assert_eq!(
            json,
            r#"{"id":"th_1","object":"thing","owner":"own_1","type":"big","status":"newer","done":true,"count":3,"tenant":"acme","area":"eu","double":6}"#
        );
    }

    #[test]
    fn select_qualifies_own_columns_and_keeps_joined_ones() {
        assert_eq!(
            select_list("r.", &["id", "amount"], &["p.tenant"]),
            "r.id, r.amount, p.tenant"
        );
        assert_eq!(select_list("", &["id"], &[]), "id");
    }

    #[test]
    fn insert_numbers_a_placeholder_per_column() {
        assert_eq!(
            insert_statement("refunds", &["id", "amount", "status"], None),
            "INSERT INTO refunds (id, amount, status) VALUES ($1, $2, $3)"
        );
        assert_eq!(
            insert_statement("payment_methods", &["id"], Some("(provider_id) DO NOTHING")),
            "INSERT INTO payment_methods (id) VALUES ($1) ON CONFLICT (provider_id) DO NOTHING"
        );
    }
}
