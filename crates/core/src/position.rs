//! Binlog positions: a file and offset, plus the GTID state (a MySQL GTID set or a MariaDB GTID list)
//! when the server has GTIDs. Resuming prefers the GTID state, so that a failover to another server of
//! the same topology continues at the right transaction.

use crate::snapshot::SnapshotProgress;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Binlog file name, such as `mysql-bin.000042`.
    pub file: String,
    /// Offset of the next event to read in `file`.
    pub pos: u64,
    /// GTID state after everything before this position: a MySQL GTID set (`uuid:1-42`) or a MariaDB
    /// GTID list (`0-1-42,1-2-7`). `None` when the server has no GTIDs or it is not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gtid: Option<String>,
    /// While a snapshot runs: what it has still to read (saved with the checkpoint, so both the
    /// stream and the snapshot resume where delivery ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Arc<SnapshotProgress>>,
}

impl Position {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        Position {
            file: file.into(),
            pos,
            gtid: None,
            snapshot: None,
        }
    }

    /// Parses `file:pos`, as the `start` option and the CLI take it.
    pub fn parse_file_pos(text: &str) -> Option<Position> {
        let (file, pos) = text.rsplit_once(':')?;
        let pos: u64 = pos.parse().ok()?;
        if file.is_empty() || file.contains(char::is_whitespace) {
            return None;
        }
        Some(Position::new(file, pos))
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if let Some(gtid) = &self.gtid {
            write!(f, " (gtid {gtid})")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_offset() {
        assert_eq!(
            Position::parse_file_pos("mysql-bin.000042:4"),
            Some(Position::new("mysql-bin.000042", 4))
        );
        assert_eq!(Position::parse_file_pos("mysql-bin.000042"), None);
        assert_eq!(Position::parse_file_pos(":4"), None);
        assert_eq!(Position::parse_file_pos("a:b"), None);
    }

    #[test]
    fn displays_with_gtid() {
        let mut p = Position::new("b.000001", 120);
        assert_eq!(p.to_string(), "b.000001:120");
        p.gtid = Some("0-1-5".into());
        assert_eq!(p.to_string(), "b.000001:120 (gtid 0-1-5)");
    }
}
