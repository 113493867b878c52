//! Runs: a source gathers the consecutive row changes of one rows event or one snapshot chunk (one
//! source event, table and op) into one `SourceRecord::Run` as it sends its records on. A run is
//! queued, registered with the ack tracker and acknowledged once, instead of once per row: on a
//! bulk statement or a snapshot most of the pipeline's work per record goes. Order is kept; a
//! run never holds a boundary or a schema change, so transactions and checkpoints are unchanged.

use crate::event::{ChangeEvent, SourceRecord};
use crate::queue::Counted;
use std::sync::Arc;

/// The most changes one run holds: large enough that the per-record work is negligible, small
/// enough that a sink's batch overshoots `batch_max_events` by little before it is cut.
pub const RUN_MAX: usize = 256;

/// The records with each stretch of changes that belong together gathered into runs (of at most
/// `RUN_MAX`); a lone change stays a `Change`.
pub fn gather_runs(records: impl IntoIterator<Item = SourceRecord>) -> Vec<SourceRecord> {
    let records = records.into_iter();
    let mut out = Vec::with_capacity(records.size_hint().0);
    let mut run: Vec<Arc<ChangeEvent>> = Vec::new();
    for record in records {
        match record {
            SourceRecord::Change(event)
                if run.len() < RUN_MAX && run.last().is_some_and(|last| together(last, &event)) =>
            {
                run.push(event)
            }
            SourceRecord::Change(event) => {
                close(&mut run, &mut out);
                run.push(event);
            }
            other => {
                close(&mut run, &mut out);
                out.push(other);
            }
        }
    }
    close(&mut run, &mut out);
    out
}

/// A run counts its changes against a queue's bound.
impl Counted for SourceRecord {
    fn count(&self) -> usize {
        match self {
            SourceRecord::Run(events) => events.len(),
            _ => 1,
        }
    }
}

/// Whether `next` may join the run that ends with `last`: row changes read from the same source
/// event (one rows event, or one snapshot chunk, so the same sinks asked for), table and op.
fn together(last: &ChangeEvent, next: &ChangeEvent) -> bool {
    Arc::ptr_eq(&last.source.event, &next.source.event)
        && last.op == next.op
        && next.op.is_row_change()
        && last.table == next.table
        && last.db == next.db
}

fn close(run: &mut Vec<Arc<ChangeEvent>>, out: &mut Vec<SourceRecord>) {
    match run.len() {
        0 => {}
        1 => out.extend(run.pop().map(SourceRecord::Change)),
        _ => out.push(SourceRecord::Run(Arc::from(std::mem::take(run)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, Row, SourceInfo};
    use crate::fixture;
    use crate::{Position, Value};

    fn row(id: i64) -> Option<Row> {
        Some(Row {
            columns: vec![Arc::from("id")].into(),
            values: vec![Value::Int(id)],
        })
    }

    fn change(op: Op, table: &str, id: i64, source: &SourceInfo) -> SourceRecord {
        let (before, after) = match op {
            Op::Delete => (row(id), None),
            _ => (None, row(id)),
        };
        let event = fixture::change(op, ("db", table), before, after, source.clone());
        SourceRecord::Change(Arc::new(event))
    }

    /// Each record as `c1`, `run[1,2,3]` or `|` (a boundary), by the key values.
    fn shape(records: &[SourceRecord]) -> Vec<String> {
        let id = |e: &ChangeEvent| match e.key.values[0] {
            Value::Int(id) => id.to_string(),
            _ => unreachable!("the test keys are integers"),
        };
        records
            .iter()
            .map(|r| match r {
                SourceRecord::Change(e) => format!("{}{}", e.op.as_str(), id(e)),
                SourceRecord::Run(events) => {
                    let ids: Vec<String> = events.iter().map(|e| id(e)).collect();
                    format!("run[{}]", ids.join(","))
                }
                SourceRecord::Boundary(_) => "|".into(),
            })
            .collect()
    }

    #[test]
    fn runs_hold_one_source_event_table_and_op_in_order() {
        let (one, two) = (
            fixture::source("b.1", 100, false),
            fixture::source("b.1", 200, false),
        );
        let records = vec![
            change(Op::Insert, "t", 1, &one),
            change(Op::Insert, "t", 2, &one),
            change(Op::Insert, "t", 3, &one),
            // Another rows event of the same table and op starts another run.
            change(Op::Insert, "t", 4, &two),
            change(Op::Insert, "t", 5, &two),
            // Another table, then another op, in the same source event.
            change(Op::Insert, "u", 6, &two),
            change(Op::Delete, "u", 7, &two),
            change(Op::Delete, "u", 8, &two),
            SourceRecord::Boundary(Position::new("b.1", 300)),
            change(Op::Delete, "u", 9, &two),
        ];
        assert_eq!(
            shape(&gather_runs(records)),
            ["run[1,2,3]", "run[4,5]", "c6", "run[7,8]", "|", "d9"]
        );
    }

    #[test]
    fn schema_changes_stay_single_and_runs_are_cut_at_the_maximum() {
        let source = fixture::source("b.1", 100, false);
        let mut ddl = fixture::change(Op::Ddl, ("db", "t"), None, row(0), source.clone());
        ddl.key = Row::default();
        let ddl = SourceRecord::Change(Arc::new(ddl));
        let long = (1..=RUN_MAX as i64 + 1).map(|id| change(Op::Insert, "t", id, &source));
        let records = [ddl.clone(), ddl]
            .into_iter()
            .chain(long)
            .collect::<Vec<_>>();
        let gathered = gather_runs(records);
        assert_eq!(gathered.len(), 4);
        assert!(matches!(&gathered[0], SourceRecord::Change(e) if e.op == Op::Ddl));
        assert!(matches!(&gathered[1], SourceRecord::Change(e) if e.op == Op::Ddl));
        let SourceRecord::Run(run) = &gathered[2] else {
            panic!("a run of {RUN_MAX}");
        };
        assert_eq!(run.len(), RUN_MAX);
        assert_eq!(shape(&gathered[3..]), [format!("c{}", RUN_MAX + 1)]);
    }
}
