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
    /// Rebuild the tables' search indexes behind their aliases (search sinks only).
    #[serde(default)]
    pub reindex: bool,
}

pub fn request(config_path: &Path, ask: Ask) -> ExitCode {
    let config = match load(config_path) {
        Ok(config) => config,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(2);
        }
    };
    if config.source.mysql().is_none() {
        eprintln!("rowbus snapshot: {}", no_tables(config.source.name()));
        return ExitCode::from(2);
    }
    let source = (config.source.name(), config.source.tables());
    let sinks: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    let search: Vec<String> = config
        .sinks
        .iter()
        .filter(|s| matches!(s.kind, crate::config::SinkKind::Search(_)))
        .map(|s| s.name.clone())
        .collect();
    if let Some(refusal) = ask.reindex.then(|| nested_reindex(&config, &ask)).flatten() {
        eprintln!("rowbus snapshot: {refusal}");
        return ExitCode::from(2);
    }
    match submit(&config.data_dir, source, (&sinks, &search), &ask) {
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

/// Why a reindex of the asked tables cannot be done: a table nested in a search sink (a child,
/// or a parent of children) has documents the snapshot of one table cannot rebuild.
fn nested_reindex(config: &crate::config::Config, ask: &Ask) -> Option<String> {
    config.sinks.iter().find_map(|sink| {
        let crate::config::SinkKind::Search(search) = &sink.kind else {
            return None;
        };
        if !ask.sinks.is_empty() && !ask.sinks.contains(&sink.name) {
            return None;
        }
        ask.tables.iter().find_map(|table| {
            let (db, name) = table.split_once('.')?;
            search.is_nested(db, name).then(|| {
                format!(
                    "`{table}` is nested in sink `{}` (sinks.{}.nest): --reindex does not rebuild nested documents; rebuild by deleting the index and snapshotting the parent and child tables",
                    sink.name, sink.name
                )
            })
        })
    })
}

/// Why a Kafka source takes no snapshot requests.
pub fn no_tables(source: &str) -> String {
    format!("source `{source}` reads Kafka topics, which have no tables to snapshot: to read a topic again, stop rowbus and delete data_dir/checkpoints/{source}.json (it starts again from `start`)")
}

/// Why a snapshot request was not written.
pub enum Refused {
    /// A table is not `db.table` or not included by the source.
    Tables(String),
    Io(String),
}

/// Checks the tables against the source (its name and table filter) and the sinks against those
/// configured (all, and the search sinks among them), and writes one request per table for the
/// running source (or its next start) to take: `rowbus snapshot` and the admin API.
pub fn submit(
    data_dir: &Path,
    (source, included): (&str, &TableFilter),
    (known_sinks, search_sinks): (&[String], &[String]),
    ask: &Ask,
) -> Result<(), Refused> {
    let tables = &ask.tables;
    let (sinks, reindex) = match ask.reindex {
        true => (reindex_sinks(ask, search_sinks)?, Some(rebuild_id())),
        false => (ask.sinks.clone(), None),
    };
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
            sinks: sinks.clone(),
            reindex: reindex.clone(),
            ..TableProgress::new(table.clone(), ask.condition.clone())
        };
        write_request(data_dir, &request)
            .map_err(|e| Refused::Io(format!("cannot write the request for {table}: {e}")))?;
    }
    Ok(())
}

/// The search sinks a rebuild is for: those named, or every search sink.
fn reindex_sinks(ask: &Ask, search_sinks: &[String]) -> Result<Vec<String>, Refused> {
    if ask.condition.is_some() {
        return Err(Refused::Tables(
            "a reindex rebuilds whole indexes: it takes no `where`".into(),
        ));
    }
    if let Some(other) = ask.sinks.iter().find(|s| !search_sinks.contains(s)) {
        return Err(Refused::Tables(format!(
            "sink `{other}` is not a search sink: a reindex rebuilds the indexes of type = \"opensearch\" sinks"
        )));
    }
    match (ask.sinks.is_empty(), search_sinks.is_empty()) {
        (false, _) => Ok(ask.sinks.clone()),
        (true, false) => Ok(search_sinks.to_vec()),
        (true, true) => Err(Refused::Tables(
            "no search sink (type = \"opensearch\") to reindex".into(),
        )),
    }
}

/// A rebuild's id: the time of the request in milliseconds, thirteen digits, so that later ids
/// sort after.
fn rebuild_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{ms:013}")
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
