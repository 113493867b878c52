//! `rowbus run`: opens the state store, builds the sinks, starts the source and the pipeline, and
//! handles SIGINT/SIGTERM (the first stops at the next transaction boundary, drains and saves the
//! checkpoint; a second one exits at once) and reloads (SIGHUP or the admin API: the pipeline is
//! run again on the new configuration, see `reload.rs`).

use crate::config::{Config, SinkConfig, SinkKind};
use crate::failures;
use crate::reload;
use anyhow::Context;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::control::Controls;
use rowbus_core::delivery::Delivery;
use rowbus_core::failure::{self, FailureLog};
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::{SinkSpec, Stop};
use rowbus_core::sink::Sink;
use rowbus_core::transform::Transform;
use rowbus_sinks::file::{FileSink, StdoutSink};
use rowbus_sinks::kafka::KafkaSink;
use rowbus_sinks::search::SearchSink;
use rowbus_sinks::sql::SqlSink;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

/// Runs the configuration in `path` (already loaded as `config`) until a signal stops it, applying
/// reloads as they come (see `reload.rs`).
pub async fn run(path: PathBuf, config: Config) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let store = Arc::new(
        CheckpointStore::open(&config.data_dir).context("cannot open the data directory")?,
    );
    let stop = Stop::default();
    let (reloads, requests) = mpsc::channel(4);
    tokio::spawn(handle_signals(stop.clone(), reloads.clone()));
    let names: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    let mut metrics = Metrics::new(config.source.name(), &names);
    if let Some(admin) = &config.admin {
        metrics.stuck_after_ms = admin.stuck_after.as_millis() as u64;
    }
    let metrics = Arc::new(metrics);
    let controls = Arc::new(Controls::new(&names));
    let admin_shutdown = Stop::default();
    let mut admin = None;
    if let Some(admin_config) = &config.admin {
        let state = Arc::new(crate::admin::Admin {
            metrics: metrics.clone(),
            controls: controls.clone(),
            config: admin_config.clone(),
            source: config.source.name().to_string(),
            data_dir: config.data_dir.clone(),
            tables: std::sync::RwLock::new(config.source.tables().clone()),
            snapshots: config.source.mysql().is_some(),
            stop: stop.clone(),
            reloads: reloads.clone(),
            flow: std::sync::RwLock::new(flow(&config)),
            history: Default::default(),
        });
        let task = crate::admin::serve(state.clone(), admin_shutdown.clone()).await?;
        admin = Some((task, state));
    }
    let process = crate::process::Process {
        path,
        store,
        metrics,
        controls,
        stop,
        admin: admin.as_ref().map(|(_, state)| state.clone()),
    };
    let outcome = process.run(config, text, requests).await;
    if let Some((mut task, _)) = admin {
        // Open connections get a few seconds to finish; a client that hangs does not keep
        // rowbus from exiting.
        admin_shutdown.trigger();
        let finished = tokio::time::timeout(std::time::Duration::from_secs(5), &mut task).await;
        if finished.is_err() {
            task.abort();
        }
    }
    let report = outcome?;
    match report.checkpoint {
        Some(position) => {
            tracing::info!(%position, records = report.records, "stopped; checkpoint saved")
        }
        None => tracing::info!(
            records = report.records,
            "stopped before the first transaction boundary"
        ),
    }
    Ok(())
}

/// The flow's shape, for the dashboard: the pipeline's transform steps, each sink's kind.
pub(crate) fn flow(config: &Config) -> serde_json::Value {
    let steps = config
        .transforms
        .as_ref()
        .map(|c| c.labels())
        .unwrap_or_default();
    let sinks: serde_json::Map<String, serde_json::Value> = config
        .sinks
        .iter()
        .map(|s| {
            let kind = match &s.kind {
                SinkKind::File(_) => "file",
                SinkKind::Stdout => "stdout",
                SinkKind::Sql(sql) => match sql.dialect {
                    rowbus_sinks::sql::Dialect::Postgres => "postgres",
                    rowbus_sinks::sql::Dialect::Mysql => "mysql",
                },
                SinkKind::Search(_) => "opensearch",
                SinkKind::Kafka(_) => "kafka",
            };
            (s.name.clone(), kind.into())
        })
        .collect();
    serde_json::json!({ "transforms": steps, "sinks": sinks })
}

/// Opens a sink for replaying its failure log: a database sink then neither skips by nor moves
/// its effectively-once markers, since the records are older than what they cover.
pub fn open_sink_for_replay(sink: &SinkConfig) -> anyhow::Result<Box<dyn Sink>> {
    let mut sink = sink.clone();
    if let SinkKind::Sql(sql) = &mut sink.kind {
        sql.effectively_once = false;
    }
    open_sink(&sink)
}

/// Whether a sink needs batches of whole source transactions: a database sink applying one
/// target transaction per source transaction, a format marking transaction ends.
fn whole_transactions(kind: &SinkKind) -> bool {
    use rowbus_sinks::format::Encoder;
    match kind {
        SinkKind::Sql(sql) => sql.source_transactions,
        SinkKind::Kafka(kafka) => Encoder::marks_transactions(kafka.format, kafka.debezium),
        SinkKind::File(file) => Encoder::marks_transactions(file.format, Default::default()),
        SinkKind::Stdout | SinkKind::Search(_) => false,
    }
}

/// Opens the sink a configuration describes.
pub fn open_sink(sink: &SinkConfig) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match &sink.kind {
        SinkKind::File(file) => {
            Box::new(FileSink::open(file.clone()).with_context(|| format!("sink `{}`", sink.name))?)
        }
        SinkKind::Stdout => Box::new(StdoutSink::default()),
        SinkKind::Sql(sql) => Box::new(SqlSink::new(sql.as_ref().clone())),
        SinkKind::Search(search) => Box::new(
            SearchSink::new(search.as_ref().clone())
                .map_err(|e| anyhow::anyhow!("sink `{}`: {e}", sink.name))?,
        ),
        SinkKind::Kafka(kafka) => Box::new(
            KafkaSink::new(kafka.as_ref().clone())
                .map_err(|e| anyhow::anyhow!("sink `{}`: {e}", sink.name))?,
        ),
    })
}

/// Opens the configured sinks that `wanted` names, with their failure logs. `owner`: this
/// installation and source, which the database sinks' applied positions belong to.
/// The sinks `replay` names, and those with `replay_failures_on_start`, replay their failure
/// logs first; what each replay did is added to `notes`.
pub(crate) async fn build_sinks(
    config: &Config,
    owner: &str,
    wanted: impl Fn(&str) -> bool,
    replay: &[String],
    notes: &mut Vec<String>,
) -> anyhow::Result<Vec<SinkSpec>> {
    let mut specs = Vec::new();
    for sink in config.sinks.iter().filter(|s| wanted(&s.name)) {
        let mut sink = sink.clone();
        if let SinkKind::Sql(sql) = &mut sink.kind {
            sql.marker_key = format!("{owner}:{}", sink.name);
            sql.source =
                config
                    .source
                    .mysql()
                    .map(|source| rowbus_sinks::sql::create::SourceServer {
                        host: source.host.clone(),
                        port: source.port,
                        user: source.user.clone(),
                        password: source.password.clone(),
                    });
        }
        let sink = &sink;
        let built = open_sink(sink)?;
        if sink.replay_failures_on_start || replay.contains(&sink.name) {
            let mut replaying = open_sink_for_replay(sink)?;
            let replayed = failures::replay(config, sink, &mut *replaying, false).await?;
            tracing::info!(sink = %sink.name, delivered = replayed.delivered, kept = replayed.kept, "failure log replayed");
            notes.push(format!(
                "sink `{}`: {} delivered, {} kept",
                sink.name, replayed.delivered, replayed.kept
            ));
        }
        let path = failure::log::path(&config.data_dir, &sink.name);
        let log = FailureLog::open(&path).with_context(|| {
            format!(
                "sink `{}`: cannot open its failure log {}",
                sink.name,
                path.display()
            )
        })?;
        if !log.is_empty() {
            tracing::warn!(sink = %sink.name, records = log.len(), path = %path.display(), "the failure log holds undelivered events; see `rowbus failures list`");
        }
        specs.push(SinkSpec {
            name: sink.name.clone(),
            sink: built,
            tables: sink.tables.clone(),
            batch_max_events: sink.batch_max_events,
            schema_changes: sink.schema_changes,
            delivery: Delivery::new(&sink.name, sink.delivery.clone(), log),
            transform: sink
                .transforms
                .clone()
                .map(|chain| Box::new(chain) as Box<dyn Transform>),
            whole_transactions: whole_transactions(&sink.kind),
        });
    }
    Ok(specs)
}

/// SIGINT and SIGTERM stop (a second one exits at once); SIGHUP reloads the configuration.
async fn handle_signals(stop: Stop, reloads: reload::Requests) {
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    let mut count = 0;
    loop {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the configuration");
                let request = reload::Request { ask: reload::Ask::Reload, reply: None };
                // Not waiting: a reload in progress keeps the signals answered.
                if reloads.try_send(request).is_err() {
                    tracing::warn!("SIGHUP: reloads are already waiting; this one is dropped");
                }
                continue;
            }
        }
        count += 1;
        if count == 1 {
            tracing::info!("stopping: finishing the open transaction, draining the sinks, saving the checkpoint (signal again to exit at once)");
            stop.trigger();
        } else {
            tracing::warn!("second signal: exiting without draining; the next start resumes from the last saved checkpoint");
            std::process::exit(130);
        }
    }
}
