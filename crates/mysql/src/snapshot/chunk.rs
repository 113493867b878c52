//! One chunk of a snapshot and its merge with the stream (the watermark rule of DBLog and Flink
//! CDC's incremental snapshot). A chunk is read at a point between two binlog positions, `low`
//! and `high`. Until it is emitted, every change the stream delivers at or after `low` to one of
//! the chunk's keys removes that key from the chunk: the stream carries that row's newer state. The
//! chunk is emitted at the first transaction boundary at or after `high`, so each row it still holds
//! is the row's state at that boundary, and nothing emitted later is older than what the target has.

use crate::schema::history::At;
use rowbus_core::event::{ChangeEvent, Row};
use rowbus_core::snapshot::KeyPart;
use rowbus_core::value::key_identity;
use rowbus_core::Value;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// The rows of one chunk, waiting for the stream to reach `high`.
#[derive(Debug)]
pub struct Chunk {
    /// The columns the chunk is ordered and deduplicated by (empty: the table has no usable key).
    key_columns: Vec<usize>,
    pub rows: Vec<Row>,
    pub low: At,
    pub high: At,
    /// The key of the last row read, where the next chunk starts.
    pub last_key: Option<Vec<KeyPart>>,
    /// Whether this chunk reached the end of the table.
    pub end_of_table: bool,
}

impl Chunk {
    pub fn new(
        key_columns: Vec<usize>,
        rows: Vec<Row>,
        low: At,
        high: At,
        last_key: Option<Vec<KeyPart>>,
        end_of_table: bool,
    ) -> Chunk {
        Chunk {
            key_columns,
            rows,
            low,
            high,
            last_key,
            end_of_table,
        }
    }

    /// Whether a boundary at `at` is where the chunk goes out.
    pub fn is_due(&self, at: &At) -> bool {
        *at >= self.high
    }

    /// The rows still valid: those whose key the stream changed at or after `low` go (the
    /// stream carries the newer row).
    pub fn into_rows(self, changes: &Changes) -> Vec<Row> {
        let changed: HashSet<&Vec<u8>> = changes.since(&self.low).collect();
        if changed.is_empty() {
            return self.rows;
        }
        let key_columns = self.key_columns;
        self.rows
            .into_iter()
            .filter(|row| {
                !changed.contains(&key_id(key_columns.iter().map(|&i| row.values.get(i))))
            })
            .collect()
    }
}

/// The changes the stream delivered to the table being read, in stream order: where each was and
/// the keys it touched. A chunk drops the keys changed at or after its low watermark.
#[derive(Debug, Default)]
pub struct Changes {
    entries: VecDeque<(At, Vec<u8>)>,
}

impl Changes {
    /// Notes `event` if it changes rows of `db.table`, whose key columns are `names`.
    pub fn note(&mut self, event: &ChangeEvent, db: &str, table: &str, names: &[Arc<str>]) {
        if *event.table != *table || *event.db != *db || names.is_empty() {
            return;
        }
        let at = At::new(&event.source.file, event.source.pos);
        for key in event_keys(event, names) {
            self.entries.push_back((at.clone(), key));
        }
    }

    /// Forgets the changes before `at`, which no later chunk needs.
    pub fn forget_before(&mut self, at: &At) {
        self.entries.retain(|(seen, _)| seen >= at);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn since<'a>(&'a self, low: &'a At) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.entries
            .iter()
            .filter(move |(at, _)| at >= low)
            .map(|(_, key)| key)
    }
}

/// The identities of the keys a change touches (both, when it changes the key), by the key's
/// column names: a minimal row image holds only some columns.
fn event_keys(event: &ChangeEvent, names: &[Arc<str>]) -> Vec<Vec<u8>> {
    [&event.before, &event.after]
        .into_iter()
        .flatten()
        .map(|image| key_id(names.iter().map(|name| image.get(name))))
        .collect()
}

/// The identity of a key, a missing column counting as null.
fn key_id<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> Vec<u8> {
    key_identity(values.map(|v| v.unwrap_or(&Value::Null)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::event::{Op, SourceEvent, SourceInfo};

    fn row(id: i64, name: &str) -> Row {
        Row {
            columns: Arc::from(vec![Arc::<str>::from("id"), Arc::from("name")]),
            values: vec![Value::Int(id), Value::from(name)],
        }
    }

    fn change(op: Op, pos: u64, before: Option<Row>, after: Option<Row>) -> ChangeEvent {
        ChangeEvent {
            partition_key: None,
            origin: None,
            op,
            db: "shop".into(),
            table: "t".into(),
            key: Row::default(),
            before,
            after,
            source: SourceInfo {
                event: Arc::new(SourceEvent {
                    name: "s".into(),
                    server_id: 1,
                    file: "b.000001".into(),
                    pos,
                    gtid: None,
                    txn: "x".into(),
                    ts_ms: 0,
                    snapshot: false,
                    sinks: None,
                }),
                row: 0,
            },
            read_ts_ms: 0,
            ddl: None,
        }
    }

    fn note(seen: &mut Changes, event: &ChangeEvent) {
        seen.note(event, "shop", "t", &[Arc::from("id")]);
    }

    fn chunk(low: u64, high: u64) -> Chunk {
        Chunk::new(
            vec![0],
            (1..=5).map(|i| row(i, "old")).collect(),
            At::new("b.000001", low),
            At::new("b.000001", high),
            Some(vec![KeyPart::Int(5)]),
            false,
        )
    }

    fn ids(rows: &[Row]) -> Vec<i64> {
        rows.iter()
            .map(|r| match r.values[0] {
                Value::Int(i) => i,
                _ => -1,
            })
            .collect()
    }

    #[test]
    fn keys_changed_after_the_low_watermark_leave_the_chunk() {
        let (c, mut seen) = (chunk(100, 300), Changes::default());
        // Before the low watermark: the chunk's read already saw it.
        note(
            &mut seen,
            &change(Op::Update, 50, Some(row(1, "a")), Some(row(1, "b"))),
        );
        // In the window: an update, a delete, and a key change (both keys go).
        note(
            &mut seen,
            &change(Op::Update, 100, Some(row(2, "a")), Some(row(2, "b"))),
        );
        note(&mut seen, &change(Op::Delete, 200, Some(row(3, "a")), None));
        note(
            &mut seen,
            &change(Op::Update, 250, Some(row(4, "a")), Some(row(9, "a"))),
        );
        assert!(!c.is_due(&At::new("b.000001", 299)));
        assert!(c.is_due(&At::new("b.000001", 300)));
        assert_eq!(ids(&c.into_rows(&seen)), vec![1, 5]);
    }

    #[test]
    fn after_the_high_watermark_changes_still_count_until_emitted() {
        // Low and high are equal for an exact snapshot position; a change the stream delivers after
        // it but before the chunk goes out must still win.
        let (c, mut seen) = (chunk(300, 300), Changes::default());
        note(
            &mut seen,
            &change(Op::Insert, 320, None, Some(row(5, "new"))),
        );
        assert_eq!(ids(&c.into_rows(&seen)), vec![1, 2, 3, 4]);
    }

    #[test]
    fn other_tables_do_not_touch_the_chunk() {
        let (c, mut seen) = (chunk(0, 10), Changes::default());
        let mut other = change(Op::Delete, 5, Some(row(1, "a")), None);
        other.table = "u".into();
        note(&mut seen, &other);
        assert_eq!(ids(&c.into_rows(&seen)), vec![1, 2, 3, 4, 5]);
    }
}
