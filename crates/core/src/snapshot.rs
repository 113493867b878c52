//! Snapshot progress: which tables a snapshot still has to read, and after which key each resumes.
//! It travels inside the `Position` of every boundary the source emits while a snapshot runs, so the
//! ack tracker saves it with the checkpoint: a restart resumes both the stream and the snapshot at
//! the last fully delivered chunk, never after a chunk that was not delivered.

use serde::{Deserialize, Serialize};

/// One column value of a chunk key, as it is bound when the next chunk is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    Int(i64),
    UInt(u64),
    /// Character data, DECIMAL, temporal values: compared by the server in the column's type.
    Text(String),
    /// Binary strings, base64.
    Bytes(String),
}

/// A table still to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableProgress {
    /// `db.table`.
    pub table: String,
    /// The key of the last row delivered; `None` before the first chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Vec<KeyPart>>,
    /// A SQL condition limiting the rows read (`rowbus snapshot --where`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Rows delivered so far.
    #[serde(default)]
    pub rows: u64,
    /// The sinks that receive the rows (`rowbus snapshot --sink`); empty: every sink.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<String>,
    /// The id of a search index rebuild (`rowbus snapshot --reindex`): the rows go to a new index
    /// named after it, which takes the alias once the table is read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reindex: Option<String>,
}

impl TableProgress {
    pub fn new(table: impl Into<String>, condition: Option<String>) -> Self {
        TableProgress {
            table: table.into(),
            after: None,
            condition,
            rows: 0,
            sinks: Vec::new(),
            reindex: None,
        }
    }
}

/// The tables a running snapshot has still to read, the first one being read now.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotProgress {
    pub tables: Vec<TableProgress>,
}

impl SnapshotProgress {
    pub fn is_done(&self) -> bool {
        self.tables.is_empty()
    }

    /// Adds a table to read, unless it is already waiting with the same condition.
    pub fn request(&mut self, table: TableProgress) -> bool {
        let waiting = self.tables.iter().skip(1).any(|t| {
            t.table == table.table
                && t.condition == table.condition
                && t.sinks == table.sinks
                && t.after.is_none()
        });
        if !waiting {
            self.tables.push(table);
        }
        !waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_json() {
        let mut progress = SnapshotProgress::default();
        progress.request(TableProgress::new("shop.orders", None));
        progress.tables[0].after = Some(vec![
            KeyPart::Int(-5),
            KeyPart::UInt(u64::MAX),
            KeyPart::Text("b".into()),
            KeyPart::Bytes("AAE=".into()),
        ]);
        let text = serde_json::to_string(&progress).unwrap();
        assert_eq!(
            text,
            r#"{"tables":[{"table":"shop.orders","after":[{"int":-5},{"u_int":18446744073709551615},{"text":"b"},{"bytes":"AAE="}],"rows":0}]}"#
        );
        assert_eq!(
            serde_json::from_str::<SnapshotProgress>(&text).unwrap(),
            progress
        );
    }

    #[test]
    fn a_request_waiting_already_is_not_added_twice() {
        let mut progress = SnapshotProgress::default();
        assert!(progress.request(TableProgress::new("a.t", None)));
        assert!(progress.request(TableProgress::new("a.u", None)));
        assert!(!progress.request(TableProgress::new("a.u", None)));
        // The table being read may be asked for again: it is read again from the start.
        assert!(progress.request(TableProgress::new("a.t", None)));
        assert_eq!(progress.tables.len(), 3);
    }
}
