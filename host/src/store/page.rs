//! Cursor pagination shared by every list: at most `limit` rows after (`starting_after`) or
//! before (`ending_before`) the row a cursor names — between the two when both are given —
//! with `has_more`. The order is a total
//! order on an indexed key — `(created_at, id)` newest first for records, `seq` oldest
//! first for the event log — so a page costs an index range scan, whatever the table's size.

use super::{Arg, Row, RowExt, Store, StoreError};

/// A page request.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// 1 to 100.
    pub limit: u32,
    /// The rows after this id (in the list's order).
    pub starting_after: Option<String>,
    /// The rows before this id.
    pub ending_before: Option<String>,
}

/// One page of rows.
#[derive(Debug, Clone)]
pub struct Listed<T> {
    pub data: Vec<T>,
    /// More rows follow in the direction the page went.
    pub has_more: bool,
}

/// The key a list runs on.
#[derive(Debug, Clone, Copy)]
pub enum Order {
    /// `(created_at, id)`, newest first.
    NewestFirst,
    /// `seq`, oldest first.
    OldestFirst,
}

/// The filters of a list, their placeholders numbered as they are added.
#[derive(Default)]
pub(super) struct Filters {
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Filters {
    fn placeholder(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }

    /// `col = value` when a value is given.
    pub fn eq(mut self, col: &str, value: Option<impl Into<Arg>>) -> Self {
        if let Some(v) = value {
            let p = self.placeholder(v.into());
            self.clauses.push(format!("{col} = {p}"));
        }
        self
    }

    /// A fixed condition.
    pub fn and(mut self, clause: &str) -> Self {
        self.clauses.push(clause.to_owned());
        self
    }

    /// `col op value` when a value is given (`>=`, `<=`).
    pub fn cmp(mut self, col: &str, op: &str, value: Option<i64>) -> Self {
        if let Some(v) = value {
            let p = self.placeholder(v.into());
            self.clauses.push(format!("{col} {op} {p}"));
        }
        self
    }
}

impl Store {
    /// One page of `table` (columns `cols`) under `filters`, in `order`. A cursor that names
    /// no row of the list is [`StoreError::UnknownCursor`].
    pub(super) async fn page(
        &self,
        table: &str,
        cols: &str,
        filters: Filters,
        order: Order,
        page: &Page,
    ) -> Result<Listed<Row>, StoreError> {
        let Filters {
            mut clauses,
            mut args,
        } = filters;
        let limit = i64::from(page.limit.clamp(1, 100));
        // Both cursors: the rows between them, going forward from `starting_after`.
        let forward = page.starting_after.is_some() || page.ending_before.is_none();
        let (key, newest) = match order {
            Order::NewestFirst => ("(created_at, id)", true),
            Order::OldestFirst => ("seq", false),
        };
        let cursors = [
            (page.starting_after.as_ref(), "starting_after", true),
            (page.ending_before.as_ref(), "ending_before", false),
        ];
        for (id, param, after) in cursors {
            let Some(id) = id else { continue };
            let cursor_cols = match order {
                Order::NewestFirst => "created_at, id",
                Order::OldestFirst => "seq",
            };
            let row = self
                .one(
                    &format!("SELECT {cursor_cols} FROM {table} WHERE id = $1"),
                    vec![id.as_str().into()],
                )
                .await?
                .ok_or_else(|| StoreError::UnknownCursor {
                    param,
                    id: id.clone(),
                })?;
            // Rows "after" the cursor come later in the list's order.
            let op = match (newest, after) {
                (true, true) | (false, false) => "<",
                (true, false) | (false, true) => ">",
            };
            match order {
                Order::NewestFirst => {
                    args.push(row.int("created_at")?.into());
                    args.push(row.text("id")?.into());
                    clauses.push(format!("{key} {op} (${}, ${})", args.len() - 1, args.len()));
                }
                Order::OldestFirst => {
                    args.push(row.int("seq")?.into());
                    clauses.push(format!("{key} {op} ${}", args.len()));
                }
            }
        }
        let dir = match (newest, forward) {
            (true, true) | (false, false) => "DESC",
            (true, false) | (false, true) => "ASC",
        };
        let order_by = match order {
            Order::NewestFirst => format!("created_at {dir}, id {dir}"),
            Order::OldestFirst => format!("seq {dir}"),
        };
        let where_ = if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        };
        args.push((limit + 1).into());
        let sql = format!(
            "SELECT {cols} FROM {table} {where_} ORDER BY {order_by} LIMIT ${}",
            args.len()
        );
        let mut rows = self.all(&sql, args).await?;
        let has_more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if !forward {
            rows.reverse();
        }
        Ok(Listed {
            data: rows,
            has_more,
        })
    }
}

impl<T> Listed<T> {
    /// The rows converted, `has_more` kept.
    ///
    /// # Errors
    /// The first conversion error.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Listed<U>, E> {
        Ok(Listed {
            data: self.data.into_iter().map(f).collect::<Result<_, _>>()?,
            has_more: self.has_more,
        })
    }
}
