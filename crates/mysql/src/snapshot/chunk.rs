//! One chunk of a snapshot and its merge with the stream (the watermark rule of DBLog and Flink
//! CDC's incremental snapshot). A chunk is read at a point between two binlog positions, `low`
//! and `high`. Until it is emitted, every change the stream delivers at or after `low` to one of
//! the chunk's keys removes that key from the chunk: the stream carries that row's newer state. The
//! chunk is emitted at the first transaction boundary at or after `high`, so each row it still holds
//! is the row's state at that boundary, and nothing emitted later is older than what the target has.

use crate::schema::history::At;
use rowbus_core::event::{ChangeEvent, Row};
use rowbus_core::snapshot::KeyPart;
use rowbus_core::Value;
use std::collections::HashSet;
use std::sync::Arc;

/// The rows of one chunk, waiting for the stream to reach `high`.
#[derive(Debug)]
pub struct Chunk {
    pub db: Arc<str>,
    pub table: Arc<str>,
    /// The columns the chunk is ordered and deduplicated by (empty: the table has no usable key).
    key_columns: Vec<usize>,
    pub rows: Vec<Row>,
    pub low: At,
    pub high: At,
    /// Keys the stream changed since `low`.
    changed: HashSet<Vec<u8>>,
    /// The key of the last row read, where the next chunk starts.
    pub last_key: Option<Vec<KeyPart>>,
    /// Whether this chunk reached the end of the table.
    pub end_of_table: bool,
}

impl Chunk {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: Arc<str>,
        table: Arc<str>,
        key_columns: Vec<usize>,
        rows: Vec<Row>,
        low: At,
        high: At,
        last_key: Option<Vec<KeyPart>>,
        end_of_table: bool,
    ) -> Chunk {
        Chunk {
            db,
            table,
            key_columns,
            rows,
            low,
            high,
            changed: HashSet::new(),
            last_key,
            end_of_table,
        }
    }

    /// Notes a change the stream delivers before the chunk is emitted.
    pub fn observe(&mut self, event: &ChangeEvent) {
        if *event.table != *self.table || *event.db != *self.db || self.key_columns.is_empty() {
            return;
        }
        if At::new(&event.source.file, event.source.pos) < self.low {
            return;
        }
        let Some(first) = self.rows.first() else {
            return;
        };
        let names: Vec<Arc<str>> = self
            .key_columns
            .iter()
            .filter_map(|&i| first.columns.get(i).cloned())
            .collect();
        self.changed.extend(event_keys(event, &names));
    }

    /// Notes a key the stream changed at or after `low` before the chunk was read.
    pub fn mark_changed(&mut self, key: Vec<u8>) {
        self.changed.insert(key);
    }

    /// Whether a boundary at `at` is where the chunk goes out.
    pub fn is_due(&self, at: &At) -> bool {
        *at >= self.high
    }

    /// The rows still valid: those whose key the stream did not change since `low`.
    pub fn into_rows(self) -> Vec<Row> {
        let Chunk {
            rows,
            changed,
            key_columns,
            ..
        } = self;
        if changed.is_empty() {
            return rows;
        }
        rows.into_iter()
            .filter(|row| {
                !changed.contains(&key_id(key_columns.iter().map(|&i| row.values.get(i))))
            })
            .collect()
    }
}

/// The identities of the keys a change touches (both, when it changes the key), by the key's
/// column names: a minimal row image holds only some columns.
pub fn event_keys(event: &ChangeEvent, names: &[Arc<str>]) -> Vec<Vec<u8>> {
    [&event.before, &event.after]
        .into_iter()
        .flatten()
        .map(|image| key_id(names.iter().map(|name| image.get(name))))
        .collect()
}

/// The identity of a key: its values' native JSON, separated by a byte JSON never contains.
fn key_id<'a>(values: impl Iterator<Item = Option<&'a Value>>) -> Vec<u8> {
    let mut id = Vec::with_capacity(16);
    for value in values {
        value.unwrap_or(&Value::Null).write_json(&mut id);
        id.push(0x1f);
    }
    id
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
                }),
                row: 0,
            },
            read_ts_ms: 0,
            ddl: None,
        }
    }

    fn chunk(low: u64, high: u64) -> Chunk {
        Chunk::new(
            "shop".into(),
            "t".into(),
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
        let mut c = chunk(100, 300);
        // Before the low watermark: the chunk's read already saw it.
        c.observe(&change(
            Op::Update,
            50,
            Some(row(1, "a")),
            Some(row(1, "b")),
        ));
        // In the window: an update, a delete, and a key change (both keys go).
        c.observe(&change(
            Op::Update,
            100,
            Some(row(2, "a")),
            Some(row(2, "b")),
        ));
        c.observe(&change(Op::Delete, 200, Some(row(3, "a")), None));
        c.observe(&change(
            Op::Update,
            250,
            Some(row(4, "a")),
            Some(row(9, "a")),
        ));
        assert!(!c.is_due(&At::new("b.000001", 299)));
        assert!(c.is_due(&At::new("b.000001", 300)));
        assert_eq!(ids(&c.into_rows()), vec![1, 5]);
    }

    #[test]
    fn after_the_high_watermark_changes_still_count_until_emitted() {
        // Low and high are equal for an exact snapshot position; a change the stream delivers after
        // it but before the chunk goes out must still win.
        let mut c = chunk(300, 300);
        c.observe(&change(Op::Insert, 320, None, Some(row(5, "new"))));
        assert_eq!(ids(&c.into_rows()), vec![1, 2, 3, 4]);
    }

    #[test]
    fn other_tables_do_not_touch_the_chunk() {
        let mut c = chunk(0, 10);
        let mut other = change(Op::Delete, 5, Some(row(1, "a")), None);
        other.table = "u".into();
        c.observe(&other);
        assert_eq!(ids(&c.into_rows()), vec![1, 2, 3, 4, 5]);
    }
}
