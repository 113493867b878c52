//! `rowbus run`: opens the state store, builds the sinks, starts the source and the pipeline, and
//! handles SIGINT/SIGTERM (the first stops at the next transaction boundary, drains and saves the
//! checkpoint; a second one exits at once).

use crate::config::{Config, SinkConfig, SinkKind};
use crate::failures;
use anyhow::Context;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::control::Controls;
use rowbus_core::delivery::Delivery;
use rowbus_core::failure::{self, FailureLog};
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::{self, PipelineConfig, SinkSpec, Stop};
use rowbus_core::sink::Sink;
use rowbus_core::transform::Transform;
use rowbus_sinks::file::{FileSink, StdoutSink};
use rowbus_sinks::sql::SqlSink;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};

pub async fn run(config: Config) -> anyhow::Result<()> {
    let store =
        CheckpointStore::open(&config.data_dir).context("cannot open the data directory")?;
    let mut source = config.source.clone();
    // Servers limit the registered host name (MySQL 5.7: 60 characters).
    let name = format!("rowbus-{}-{}", store.instance_id()?, source.name);
    source.replica_name = name.chars().take(60).collect();
    let history = config
        .data_dir
        .join("schema")
        .join(format!("{}.jsonl", source.name));
    source.history_path = Some(history);
    source.snapshot_requests = Some(crate::snapshot::requests_dir(&config.data_dir));
    let checkpoint = store.load(&source.name)?.map(|c| c.position);
    match &checkpoint {
        Some(position) => {
            tracing::info!(source = %source.name, %position, "resuming from the saved checkpoint")
        }
        None if source.snapshot != rowbus_mysql::SnapshotMode::Never => {
            tracing::info!(source = %source.name, "no checkpoint; a snapshot of every included table, merged with the stream from the binlog's end")
        }
        None => {
            tracing::info!(source = %source.name, start = ?source.start, "no checkpoint; using the configured start")
        }
    }
    let owner = format!("{}:{}", store.instance_id()?, source.name);
    let sinks = build_sinks(&config, &owner).await?;
    let stop = Stop::default();
    tokio::spawn(handle_signals(stop.clone()));
    let names: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    let metrics = Arc::new(Metrics::new(&source.name, &names));
    let controls = Arc::new(Controls::new(names.len()));
    let admin_shutdown = Stop::default();
    let admin = match &config.admin {
        Some(admin) => {
            let state = crate::admin::Admin {
                metrics: metrics.clone(),
                controls: controls.clone(),
                config: admin.clone(),
                source: source.name.clone(),
                sinks: names.clone(),
                data_dir: config.data_dir.clone(),
                tables: source.tables.clone(),
                stop: stop.clone(),
            };
            Some(crate::admin::serve(state, admin_shutdown.clone()).await?)
        }
        None => None,
    };

    let (tx, rx) = pipeline::source_queue(config.queue);
    let source_task = tokio::spawn(rowbus_mysql::run_source(
        source.clone(),
        checkpoint.clone(),
        tx,
        stop.clone(),
    ));
    let pipeline_config = PipelineConfig {
        source: source.name.clone(),
        metrics,
        controls,
        queue: config.queue,
        checkpoint_interval: config.checkpoint_interval,
    };
    let transform = config
        .transforms
        .clone()
        .map(|chain| Box::new(chain) as Box<dyn Transform>);
    let outcome = pipeline::run(
        pipeline_config,
        rx,
        transform,
        sinks,
        Arc::new(store),
        checkpoint,
        stop.clone(),
    )
    .await;
    let source_outcome = source_task.await.context("the source task failed")?;
    if let Some(mut admin) = admin {
        // Open connections get a few seconds to finish; a client that hangs does not keep
        // rowbus from exiting.
        admin_shutdown.trigger();
        let finished = tokio::time::timeout(std::time::Duration::from_secs(5), &mut admin).await;
        if finished.is_err() {
            admin.abort();
        }
    }
    let report = outcome?;
    source_outcome.with_context(|| format!("source `{}` stopped", source.name))?;
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

/// Opens a sink for replaying its failure log: a database sink then neither skips by nor moves
/// its effectively-once markers, since the records are older than what they cover.
pub fn open_sink_for_replay(sink: &SinkConfig) -> anyhow::Result<Box<dyn Sink>> {
    let mut sink = sink.clone();
    if let SinkKind::Sql(sql) = &mut sink.kind {
        sql.effectively_once = false;
    }
    open_sink(&sink)
}

/// Opens the sink a configuration describes.
pub fn open_sink(sink: &SinkConfig) -> anyhow::Result<Box<dyn Sink>> {
    Ok(match &sink.kind {
        SinkKind::File(file) => {
            Box::new(FileSink::open(file.clone()).with_context(|| format!("sink `{}`", sink.name))?)
        }
        SinkKind::Stdout => Box::new(StdoutSink::default()),
        SinkKind::Sql(sql) => Box::new(SqlSink::new(sql.as_ref().clone())),
    })
}

/// `owner`: this installation and source, which the database sinks' applied positions belong to.
async fn build_sinks(config: &Config, owner: &str) -> anyhow::Result<Vec<SinkSpec>> {
    let mut specs = Vec::new();
    for sink in &config.sinks {
        let mut sink = sink.clone();
        if let SinkKind::Sql(sql) = &mut sink.kind {
            sql.marker_key = format!("{owner}:{}", sink.name);
            let source = &config.source;
            sql.source = Some(rowbus_sinks::sql::create::SourceServer {
                host: source.host.clone(),
                port: source.port,
                user: source.user.clone(),
                password: source.password.clone(),
            });
        }
        let sink = &sink;
        let built = open_sink(sink)?;
        if sink.replay_failures_on_start {
            let mut replaying = open_sink_for_replay(sink)?;
            let replayed = failures::replay(config, sink, &mut *replaying, false).await?;
            tracing::info!(sink = %sink.name, delivered = replayed.delivered, kept = replayed.kept, "failure log replayed at start");
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
        });
    }
    Ok(specs)
}

async fn handle_signals(stop: Stop) {
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    for count in 1.. {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if count == 1 {
            tracing::info!("stopping: finishing the open transaction, draining the sinks, saving the checkpoint (signal again to exit at once)");
            stop.trigger();
        } else {
            tracing::warn!("second signal: exiting without draining; the next start resumes from the last saved checkpoint");
            std::process::exit(130);
        }
    }
}
