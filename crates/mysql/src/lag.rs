//! The source's lag in bytes: every few seconds, `SHOW BINARY LOGS` on a connection of its own
//! (it needs `REPLICATION CLIENT`) gives each binlog file's size; the bytes the server wrote past
//! the last transaction boundary read are the rest of that file and every file after it.

use crate::connect::{connect, query};
use crate::MysqlSourceConfig;
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::Stop;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// How often the binlog's end is asked for, and how long an answer may take.
const INTERVAL: Duration = Duration::from_secs(2);
const PATIENCE: Duration = Duration::from_secs(5);

/// Keeps `metrics.lag_bytes` current until `stop`; a failing query (a lost connection, a
/// missing grant) is logged once per kind and retried at the next interval.
pub async fn watch(config: MysqlSourceConfig, metrics: Arc<Metrics>, stop: Stop) {
    let mut conn = None;
    let mut reported = None;
    while !stop.is_triggered() {
        if conn.is_none() {
            let connected = tokio::time::timeout(PATIENCE, connect(&config)).await;
            conn = connected.ok().and_then(Result::ok);
        }
        if let Some(c) = conn.as_mut() {
            // MySQL 8 adds an `Encrypted` column: name and size are the first two.
            let asked = query::<mysql_async::Row>(c, &config, "SHOW BINARY LOGS");
            let answer = tokio::time::timeout(PATIENCE, asked).await;
            let answer = answer.unwrap_or_else(|_| {
                let late = format!("SHOW BINARY LOGS: no answer within {PATIENCE:?}");
                Err(crate::SourceError::retry(late))
            });
            match answer {
                Ok(rows) => {
                    let files: Vec<(String, u64)> = rows
                        .iter()
                        .filter_map(|r| Some((r.get(0)?, r.get(1)?)))
                        .collect();
                    let file = metrics
                        .read_file
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .clone();
                    let pos = metrics.read_pos.load(Relaxed);
                    let behind = bytes_behind(&files, &file, pos);
                    metrics
                        .lag_bytes
                        .store(behind.map_or(-1, |b| b as i64), Relaxed);
                }
                Err(e) => {
                    let message = e.to_string();
                    if reported.as_ref() != Some(&message) {
                        tracing::warn!(source = %config.name, error = %message, "cannot read the binlog's end for the lag in bytes");
                        reported = Some(message);
                    }
                    conn = None;
                }
            }
        }
        stop.sleep(INTERVAL).await;
    }
}

/// The bytes after (`file`, `pos`) in the server's binlog files (name, size), in order; None
/// when `file` is not among them (nothing read yet, or purged).
pub fn bytes_behind(files: &[(String, u64)], file: &str, pos: u64) -> Option<u64> {
    let at = files.iter().position(|(name, _)| name == file)?;
    let rest_of_file = files[at].1.saturating_sub(pos);
    Some(rest_of_file + files[at + 1..].iter().map(|(_, size)| size).sum::<u64>())
}

#[cfg(test)]
mod tests {
    use super::bytes_behind;

    #[test]
    fn the_rest_of_the_file_and_every_later_file() {
        let files = [
            ("b.000001".to_string(), 1000),
            ("b.000002".to_string(), 500),
            ("b.000003".to_string(), 256),
        ];
        assert_eq!(bytes_behind(&files, "b.000003", 256), Some(0));
        assert_eq!(bytes_behind(&files, "b.000002", 100), Some(400 + 256));
        assert_eq!(bytes_behind(&files, "b.000001", 4), Some(996 + 500 + 256));
        assert_eq!(bytes_behind(&files, "", 0), None);
    }
}
