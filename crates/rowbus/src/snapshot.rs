//! `rowbus snapshot`: asks the pipeline to snapshot tables again. Each request is a small JSON file
//! in `<data_dir>/snapshot-requests/`, written atomically; the running source takes it within a
//! second or two at a transaction boundary (or at its next start) and reads the table chunk by
//! chunk while the stream goes on.

use crate::config::{load, Config};
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::snapshot::TableProgress;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where requests wait for the source.
pub fn requests_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshot-requests")
}

pub fn request(config_path: &Path, tables: &[String], condition: Option<String>) -> ExitCode {
    let config = match load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if let Err(message) = check_tables(&config, tables) {
        eprintln!("rowbus snapshot: {message}");
        return ExitCode::from(2);
    }
    for table in tables {
        if let Err(e) = write_request(&config.data_dir, table, condition.clone()) {
            eprintln!("rowbus snapshot: cannot write the request for {table}: {e}");
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
    eprintln!("snapshot requested for {}; {when}", tables.join(", "));
    ExitCode::SUCCESS
}

/// Every table must be `db.table` and included by the source.
fn check_tables(config: &Config, tables: &[String]) -> Result<(), String> {
    for table in tables {
        let Some((db, name)) = table.split_once('.') else {
            return Err(format!("`{table}` is not of the form db.table"));
        };
        if !config.source.tables.matches(db, name) {
            return Err(format!(
                "`{table}` is not included by sources.{}.include/exclude",
                config.source.name
            ));
        }
    }
    Ok(())
}

fn write_request(data_dir: &Path, table: &str, condition: Option<String>) -> std::io::Result<()> {
    let dir = requests_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let name = format!("{nanos:020}-{}", std::process::id());
    let tmp = dir.join(format!(".{name}.tmp"));
    let request = TableProgress::new(table, condition);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(&request).unwrap_or_default())?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.json")))
}
