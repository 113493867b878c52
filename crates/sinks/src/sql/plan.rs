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
    pub route: Vec<Arc<str>>,
    /// For each row, whether the target most likely lacks it: its first change in the batch is an
    /// insert or a snapshot read, and it ends upserted. A target may write such rows with a plain
    /// bulk insert, provided it falls back to the upsert when one is there after all (a replay
    /// after a restart, a second snapshot).
    pub likely_new: Vec<bool>,
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

    /// The upserted rows, each with its `likely_new`.
    pub fn upserts(&self) -> impl Iterator<Item = (&Row, bool)> {
        self.rows
            .iter()
            .zip(&self.likely_new)
            .filter_map(|(r, &new)| match r {
                RowState::Upsert(row) => Some((row, new)),
                _ => None,
            })
    }

    /// The upserts grouped by column list, in order of first appearance: rows of one table may
    /// differ after an ALTER within a batch, and each list needs its own statement. A row whose
    /// values do not match its columns is an error.
    pub fn upsert_groups(&self) -> Result<Vec<UpsertGroup<'_>>, String> {
        let mut groups: Vec<UpsertGroup<'_>> = Vec::new();
        for (row, new) in self.upserts() {
            if row.values.len() != row.columns.len() {
                return Err(format!(
                    "a row of {}.{} with {} values for {} columns",
                    self.db,
                    self.table,
                    row.values.len(),
                    row.columns.len()
                ));
            }
            let group = match groups.iter().position(|g| *g.columns == row.columns) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(UpsertGroup {
                        columns: &row.columns,
                        rows: Vec::new(),
                        likely_new: Vec::new(),
                    });
                    groups.last_mut().expect("pushed")
                }
            };
            group.rows.push(row);
            group.likely_new.push(new);
        }
        Ok(groups)
    }
}

/// Upserted rows of one table with the same columns.
pub struct UpsertGroup<'a> {
    pub columns: &'a Arc<[Arc<str>]>,
    pub rows: Vec<&'a Row>,
    /// For each row, `TablePlan::likely_new`.
    pub likely_new: Vec<bool>,
}

impl<'a> UpsertGroup<'a> {
    /// The rows split into those likely new and the others.
    pub fn by_newness(&self) -> (Vec<&'a Row>, Vec<&'a Row>) {
        let mut new = Vec::new();
        let mut old = Vec::new();
        for (&row, &is_new) in self.rows.iter().zip(&self.likely_new) {
            match is_new {
                true => new.push(row),
                false => old.push(row),
            }
        }
        (new, old)
    }
}

/// Why an event cannot be applied to a table target.
#[derive(Debug, Clone, PartialEq)]
pub struct Unkeyed {
    pub table: String,
}

/// A row's identity: its key values, as text.
pub fn identity(values: &[Value]) -> String {
    super::params::into_string(key_identity(values))
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
    type Seen = (usize, HashMap<Arc<str>, usize>);
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
                    likely_new: Vec::new(),
                    truncate: false,
                    ddl: None,
                });
                (tables.len() - 1, HashMap::new())
            });
        let plan = &mut tables[*t];
        let at = order_of(e);
        // Shared: the row map's key and the route hold it without copying the text.
        let own: Arc<str> = identity(&e.key.values).into();
        let inserts = matches!(e.op, Op::Insert | Op::Read);
        // `id`: the identity of the row the state is for (the change's own, or an old key's).
        let mut set = |id: Arc<str>, state: RowState| {
            let upsert = matches!(state, RowState::Upsert(_));
            match rows.get(&id) {
                Some(&i) => {
                    plan.rows[i] = state;
                    plan.at[i] = at;
                    plan.route[i] = own.clone();
                    plan.likely_new[i] &= upsert;
                }
                None => {
                    rows.insert(id, plan.rows.len());
                    plan.rows.push(state);
                    plan.at.push(at);
                    plan.route.push(own.clone());
                    plan.likely_new.push(inserts && upsert);
                }
            }
        };
        match (e.op, &e.before, &e.after) {
            (Op::Delete, Some(_), _) | (Op::Delete, None, None) => {
                set(own.clone(), RowState::Delete(e.key.clone()))
            }
            (_, before, Some(after)) => {
                // A primary-key change: the old row goes away.
                if let Some(old) = before.as_ref().and_then(|b| key_from(b, &e.key.columns)) {
                    let old_id: Arc<str> = identity(&old.values).into();
                    if old_id != own {
                        set(old_id, RowState::Delete(old));
                    }
                }
                set(own.clone(), RowState::Upsert(after.clone()));
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
        // Only row 2 began here as an insert and stayed: row 3 came by an update of row 1 (its
        // key may be in the target), and 2 was deleted in between, so it is counted as old.
        assert_eq!(plans[0].likely_new, [false, false, false]);
        let batch = [
            event(Op::Insert, None, Some(row(1, "a"))),
            event(Op::Update, Some(row(1, "a")), Some(row(1, "a2"))),
            event(Op::Read, None, Some(row(2, "b"))),
            event(Op::Update, Some(row(4, "d")), Some(row(4, "d2"))),
        ];
        assert_eq!(plan(&batch).unwrap()[0].likely_new, [true, true, false]);
    }
}
