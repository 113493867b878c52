//! The source's settings, already validated by the binary's config loader.

use rowbus_core::table_filter::TableFilter;
use rowbus_core::Position;
use std::time::Duration;

/// Where to begin when there is no checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum StartFrom {
    /// The oldest binlog file the server still has.
    Earliest,
    /// The current end of the binlog.
    Latest,
    /// An explicit `file:pos`.
    Position(Position),
    /// A MySQL GTID set or a MariaDB GTID list: begin after those transactions.
    Gtid(String),
}

impl StartFrom {
    /// Parses the `start` option: `earliest`, `latest`, `file:pos`, or a GTID set/list.
    pub fn parse(text: &str) -> Option<StartFrom> {
        match text.trim() {
            "earliest" => return Some(StartFrom::Earliest),
            "latest" => return Some(StartFrom::Latest),
            _ => {}
        }
        if let Some(position) = Position::parse_file_pos(text) {
            let looks_like_uuid = position.file.len() == 36
                && position
                    .file
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == '-');
            if !looks_like_uuid {
                return Some(StartFrom::Position(position));
            }
        }
        is_gtid_text(text).then(|| StartFrom::Gtid(text.trim().to_string()))
    }
}

/// A MariaDB GTID list (`0-1-5,1-2-9`) or MySQL GTID set (`uuid:1-5:7,uuid2:3`).
fn is_gtid_text(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty()
        && text.split(',').all(|part| {
            let part = part.trim();
            let mariadb = part.split('-').count() == 3
                && part
                    .split('-')
                    .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            let mysql = part.split_once(':').is_some_and(|(uuid, rest)| {
                uuid.len() == 36
                    && rest.split(':').all(|r| {
                        !r.is_empty()
                            && r.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    })
            });
            mariadb || mysql
        })
}

/// What to do with a DDL statement on an included table that rowbus cannot read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnUnknownDdl {
    /// Stop the source, naming the statement and its position.
    #[default]
    Stop,
    /// Re-read the table from information_schema (right unless the table changed again since).
    Refresh,
}

impl OnUnknownDdl {
    pub fn parse(text: &str) -> Option<OnUnknownDdl> {
        match text {
            "stop" => Some(OnUnknownDdl::Stop),
            "refresh" => Some(OnUnknownDdl::Refresh),
            _ => None,
        }
    }
}

/// When the source takes a snapshot of its tables by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    #[default]
    Never,
    /// When there is no checkpoint.
    Initial,
    /// When there is no checkpoint, or the checkpoint's binlog has been purged.
    WhenNeeded,
}

impl SnapshotMode {
    pub fn parse(text: &str) -> Option<SnapshotMode> {
        match text {
            "never" => Some(SnapshotMode::Never),
            "initial" => Some(SnapshotMode::Initial),
            "when_needed" => Some(SnapshotMode::WhenNeeded),
            _ => None,
        }
    }
}

/// What to do when the checkpoint's binlog is no longer on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnPurged {
    /// Stop, naming the missing file, the oldest one the server has, and this option.
    #[default]
    Fail,
    /// Start again at the binlog's end with a snapshot of every included table.
    Snapshot,
}

impl OnPurged {
    pub fn parse(text: &str) -> Option<OnPurged> {
        match text {
            "fail" => Some(OnPurged::Fail),
            "snapshot" => Some(OnPurged::Snapshot),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MysqlSourceConfig {
    /// The configured source name (`[sources.NAME]`).
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    /// From `password_env` or `password_file`; never printed.
    pub password: Option<rowbus_core::secret::Secret>,
    pub server_id: u32,
    /// The name this replica registers under (`SHOW SLAVE HOSTS` shows it as Host): unique per
    /// rowbus data directory, so a restart after a crash recognizes its own stale registration.
    pub replica_name: String,
    pub tables: TableFilter,
    pub start: StartFrom,
    /// How often the server sends a heartbeat when it has nothing else to send; a connection silent
    /// for several periods is taken as dead.
    pub heartbeat: Duration,
    pub connect_timeout: Duration,
    /// The longest wait between reconnection attempts.
    pub max_backoff: Duration,
    pub on_unknown_ddl: OnUnknownDdl,
    /// The schema history file (in the data directory); `None` keeps it in memory only.
    pub history_path: Option<std::path::PathBuf>,
    pub snapshot: SnapshotMode,
    pub on_purged: OnPurged,
    /// Rows per snapshot chunk.
    pub snapshot_chunk_rows: usize,
    /// Where `rowbus snapshot` leaves requests for the running source (in the data directory).
    pub snapshot_requests: Option<std::path::PathBuf>,
}

impl MysqlSourceConfig {
    /// Whether a purged checkpoint is answered with a new snapshot.
    pub fn snapshot_when_purged(&self) -> bool {
        self.on_purged == OnPurged::Snapshot || self.snapshot == SnapshotMode::WhenNeeded
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_start() {
        assert_eq!(StartFrom::parse("earliest"), Some(StartFrom::Earliest));
        assert_eq!(StartFrom::parse("latest"), Some(StartFrom::Latest));
        assert_eq!(
            StartFrom::parse("mysql-bin.000042:4"),
            Some(StartFrom::Position(Position::new("mysql-bin.000042", 4)))
        );
        assert_eq!(
            StartFrom::parse("0-1-5,1-2-9"),
            Some(StartFrom::Gtid("0-1-5,1-2-9".into()))
        );
        let mysql = "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5";
        assert_eq!(StartFrom::parse(mysql), Some(StartFrom::Gtid(mysql.into())));
        let single = "3e11fa47-71ca-11e1-9e33-c80aa9429562:23";
        assert_eq!(
            StartFrom::parse(single),
            Some(StartFrom::Gtid(single.into()))
        );
        assert_eq!(StartFrom::parse("yesterday"), None);
        assert_eq!(StartFrom::parse("0-1"), None);
    }
}
