//! What a batch of changes means for a target table: for each row (by primary key), its final state
//! after the batch, an upsert of the last after image or a delete. Collapsing keeps per-row order
//! (only the last state of a row matters for an idempotent apply) and lets one statement carry many
//! rows, since a multi-row upsert may not name the same key twice. A changed primary key is a
//! delete of the old key and an upsert of the new one.

use rowbus_core::value::key_identity;
use rowbus_core::{ChangeEvent, Op, Row, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The final state of one row.
#[derive(Debug, Clone, PartialEq)]
pub enum RowState {
    Upsert(Row),
    Delete(Row),
}

/// The changes of one source table in a batch.
#[derive(Debug, Default)]
pub struct TablePlan {
    pub db: Arc<str>,
    pub table: Arc<str>,
    /// Key columns (from the events' `key`).
    pub key_columns: Arc<[Arc<str>]>,
    /// One entry per row, in the order each row was first seen.
    pub rows: Vec<RowState>,
    /// For each row, where in the binlog its last change is.
    pub at: Vec<SourceOrder>,
    /// For each row, the key identity that chooses its worker: its own, except for the delete of
    /// an old key by a primary-key change, which goes with the new key so both commit together.
    pub route: Vec<String>,
    /// Empty the target table before the rows (a TRUNCATE TABLE of the source).
    pub truncate: bool,
    /// A schema change to run on the target first, as the source ran it (`apply_ddl`).
    pub ddl: Option<Arc<DdlRun>>,
}

/// A schema change as the target runs it.
#[derive(Debug)]
pub struct DdlRun {
    pub sql: String,
    /// The target database to `USE` first: that of the session's default database.
    pub database: String,
    /// What the target must show after it, when the server says it was already done.
    pub expect: Expect,
}

/// What a schema change leaves on the target table (its target database and name).
#[derive(Debug)]
pub enum Expect {
    /// The table exists with these columns (lower-cased names, in order).
    Columns(String, String, Vec<String>),
    /// The table is gone.
    Absent(String, String),
    Nothing,
}

/// A change's place in the binlog, comparable: (file number, offset, row index).
pub type SourceOrder = (u64, u64, u32);

/// Where an event is in the binlog, as `SourceOrder`.
pub fn order_of(e: &ChangeEvent) -> SourceOrder {
    let file = e
        .source
        .file
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .unwrap_or(0);
    (file, e.source.pos, e.source.row)
}

impl TablePlan {
    pub fn deletes(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter_map(|r| match r {
            RowState::Delete(key) => Some(key),
            _ => None,
        })
    }

    pub fn upserts(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter_map(|r| match r {
            RowState::Upsert(row) => Some(row),
            _ => None,
        })
    }

    /// The upserts grouped by column list, in order of first appearance: rows of one table may
    /// differ after an ALTER within a batch, and each list needs its own statement. A row whose
    /// values do not match its columns is an error.
    pub fn upsert_groups(&self) -> Result<Vec<Vec<&Row>>, String> {
        let mut groups: Vec<Vec<&Row>> = Vec::new();
        for row in self.upserts() {
            if row.values.len() != row.columns.len() {
                return Err(format!(
                    "a row of {}.{} with {} values for {} columns",
                    self.db,
                    self.table,
                    row.values.len(),
                    row.columns.len()
                ));
            }
            match groups.iter_mut().find(|g| g[0].columns == row.columns) {
                Some(group) => group.push(row),
                None => groups.push(vec![row]),
            }
        }
        Ok(groups)
    }
}

/// Why an event cannot be applied to a table target.
#[derive(Debug, Clone, PartialEq)]
pub struct Unkeyed {
    pub table: String,
}

/// A row's identity: its key values, as text.
pub fn identity(values: &[Value]) -> String {
    String::from_utf8_lossy(&key_identity(values)).into_owned()
}

/// The key image of a row: the key columns taken from `row`.
fn key_from(row: &Row, key_columns: &Arc<[Arc<str>]>) -> Option<Row> {
    let values = key_columns
        .iter()
        .map(|c| row.get(c).cloned())
        .collect::<Option<Vec<_>>>()?;
    Some(Row {
        columns: key_columns.clone(),
        values,
    })
}

/// Groups and collapses a batch's row changes per table. Schema changes, truncations and markers are not
/// row changes and are left out. Tables without a primary key cannot be applied idempotently:
/// their events are returned in `Err`.
pub fn plan(batch: &[Arc<ChangeEvent>]) -> Result<Vec<TablePlan>, Unkeyed> {
    let mut tables: Vec<TablePlan> = Vec::new();
    // Per table: its plan's index, and each row identity's index in the plan.
    type Seen = (usize, HashMap<String, usize>);
    let mut index: HashMap<(Arc<str>, Arc<str>), Seen> = HashMap::new();
    for e in batch {
        if !e.op.is_row_change() {
            continue;
        }
        if e.key.values.is_empty() {
            return Err(Unkeyed {
                table: e.qualified_table(),
            });
        }
        let (t, rows) = index
            .entry((e.db.clone(), e.table.clone()))
            .or_insert_with(|| {
                tables.push(TablePlan {
                    db: e.db.clone(),
                    table: e.table.clone(),
                    key_columns: e.key.columns.clone(),
                    rows: Vec::new(),
                    at: Vec::new(),
                    route: Vec::new(),
                    truncate: false,
                    ddl: None,
                });
                (tables.len() - 1, HashMap::new())
            });
        let plan = &mut tables[*t];
        let at = order_of(e);
        let own = identity(&e.key.values);
        let mut set = |key: &Row, state: RowState| {
            let id = identity(&key.values);
            match rows.get(&id) {
                Some(&i) => {
                    plan.rows[i] = state;
                    plan.at[i] = at;
                    plan.route[i] = own.clone();
                }
                None => {
                    rows.insert(id, plan.rows.len());
                    plan.rows.push(state);
                    plan.at.push(at);
                    plan.route.push(own.clone());
                }
            }
        };
        match (e.op, &e.before, &e.after) {
            (Op::Delete, Some(_), _) | (Op::Delete, None, None) => {
                set(&e.key, RowState::Delete(e.key.clone()))
            }
            (_, before, Some(after)) => {
                // A primary-key change: the old row goes away.
                if let Some(old) = before.as_ref().and_then(|b| key_from(b, &e.key.columns)) {
                    if identity(&old.values) != identity(&e.key.values) {
                        set(&old, RowState::Delete(old.clone()));
                    }
                }
                set(&e.key, RowState::Upsert(after.clone()));
            }
            _ => {}
        }
    }
    Ok(tables)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::{SourceEvent, SourceInfo};

    fn row(id: i64, v: &str) -> Row {
        Row {
            columns: vec![Arc::from("id"), Arc::from("v")].into(),
            values: vec![Value::Int(id), Value::Text(v.into())],
        }
    }

    fn event(op: Op, before: Option<Row>, after: Option<Row>) -> Arc<ChangeEvent> {
        let image = after.clone().or(before.clone()).unwrap();
        Arc::new(ChangeEvent {
            partition_key: None,
            origin: None,
            op,
            db: "db".into(),
            table: "t".into(),
            key: Row {
                columns: vec![Arc::from("id")].into(),
                values: vec![image.values[0].clone()],
            },
            before,
            after,
            source: SourceInfo {
                event: Arc::new(SourceEvent {
                    name: "s".into(),
                    server_id: 1,
                    file: "b.1".into(),
                    pos: 4,
                    gtid: None,
                    txn: "t".into(),
                    ts_ms: 0,
                    snapshot: false,
                    sinks: None,
                }),
                row: 0,
            },
            read_ts_ms: 0,
            ddl: None,
        })
    }

    #[test]
    fn each_row_ends_in_its_last_state() {
        let batch = [
            event(Op::Insert, None, Some(row(1, "a"))),
            event(Op::Insert, None, Some(row(2, "b"))),
            event(Op::Update, Some(row(1, "a")), Some(row(1, "a2"))),
            event(Op::Delete, Some(row(2, "b")), None),
            // A key change: 1 becomes 3.
            event(Op::Update, Some(row(1, "a2")), Some(row(3, "c"))),
            event(Op::Insert, None, Some(row(2, "b2"))),
        ];
        let plans = plan(&batch).unwrap();
        assert_eq!(plans.len(), 1);
        let key = |id| Row {
            columns: vec![Arc::from("id")].into(),
            values: vec![Value::Int(id)],
        };
        assert_eq!(
            plans[0].rows,
            [
                RowState::Delete(key(1)),
                RowState::Upsert(row(2, "b2")),
                RowState::Upsert(row(3, "c")),
            ]
        );
    }
}
