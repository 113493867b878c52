//! `rowbus snapshot`: asks the pipeline to snapshot tables again. Each request is a small JSON file
//! in `<data_dir>/snapshot-requests/`, written atomically; the running source takes it within a
//! second or two at a transaction boundary (or at its next start) and reads the table chunk by
//! chunk while the stream goes on.

use crate::config::load;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::snapshot::TableProgress;
use rowbus_core::table_filter::TableFilter;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where requests wait for the source.
pub fn requests_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshot-requests")
}

/// What to snapshot: tables, optionally only the rows matching a condition, optionally for some
/// sinks only.
#[derive(Debug, serde::Deserialize)]
pub struct Ask {
    pub tables: Vec<String>,
    #[serde(rename = "where", default)]
    pub condition: Option<String>,
    #[serde(default)]
    pub sinks: Vec<String>,
}

pub fn request(config_path: &Path, ask: Ask) -> ExitCode {
    let config = match load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    let source = (config.source.name.as_str(), &config.source.tables);
    let sinks: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    match submit(&config.data_dir, source, &sinks, &ask) {
        Ok(()) => {}
        Err(Refused::Tables(message)) => {
            eprintln!("rowbus snapshot: {message}");
            return ExitCode::from(2);
        }
        Err(Refused::Io(message)) => {
            eprintln!("rowbus snapshot: {message}");
            return ExitCode::FAILURE;
        }
    }
    // The data directory is locked while rowbus runs.
    let running = CheckpointStore::open(&config.data_dir).is_err();
    let when = if running {
        "the running rowbus starts reading within a few seconds"
    } else {
        "rowbus reads them when it next starts"
    };
    eprintln!("snapshot requested for {}; {when}", ask.tables.join(", "));
    ExitCode::SUCCESS
}

/// Why a snapshot request was not written.
pub enum Refused {
    /// A table is not `db.table` or not included by the source.
    Tables(String),
    Io(String),
}

/// Checks the tables against the source (its name and table filter) and the sinks against those
/// configured, and writes one request per table for the running source (or its next start) to
/// take: `rowbus snapshot` and the admin API.
pub fn submit(
    data_dir: &Path,
    (source, included): (&str, &TableFilter),
    known_sinks: &[String],
    ask: &Ask,
) -> Result<(), Refused> {
    let tables = &ask.tables;
    if let Some(unknown) = ask.sinks.iter().find(|s| !known_sinks.contains(s)) {
        return Err(Refused::Tables(format!(
            "no sink `{unknown}` (sinks: {})",
            known_sinks.join(", ")
        )));
    }
    if tables.is_empty() {
        return Err(Refused::Tables(
            "name at least one table, as db.table".into(),
        ));
    }
    for table in tables {
        let Some((db, name)) = table.split_once('.') else {
            return Err(Refused::Tables(format!(
                "`{table}` is not of the form db.table"
            )));
        };
        if !included.matches(db, name) {
            return Err(Refused::Tables(format!(
                "`{table}` is not included by sources.{source}.include/exclude"
            )));
        }
    }
    for table in tables {
        let request = TableProgress {
            sinks: ask.sinks.clone(),
            ..TableProgress::new(table.clone(), ask.condition.clone())
        };
        write_request(data_dir, &request)
            .map_err(|e| Refused::Io(format!("cannot write the request for {table}: {e}")))?;
    }
    Ok(())
}

fn write_request(data_dir: &Path, request: &TableProgress) -> std::io::Result<()> {
    let dir = requests_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("{nanos:020}-{}-{n}", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(request).unwrap_or_default())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.json")))
}
