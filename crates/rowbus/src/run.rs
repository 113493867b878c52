//! `rowbus run`: opens the state store, builds the sinks, starts the source and the pipeline, and
//! handles SIGINT/SIGTERM (the first stops at the next transaction boundary, drains and saves the
//! checkpoint; a second one exits at once).

use crate::config::{Config, SinkKind};
use anyhow::Context;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::pipeline::{self, PipelineConfig, SinkSpec, Stop};
use rowbus_core::sink::Sink;
use rowbus_sinks::file::{FileSink, StdoutSink};
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
    let checkpoint = store.load(&source.name)?.map(|c| c.position);
    match &checkpoint {
        Some(position) => {
            tracing::info!(source = %source.name, %position, "resuming from the saved checkpoint")
        }
        None => {
            tracing::info!(source = %source.name, start = ?source.start, "no checkpoint; using the configured start")
        }
    }
    let sinks = build_sinks(&config)?;
    let stop = Stop::default();
    tokio::spawn(handle_signals(stop.clone()));

    let (tx, rx) = pipeline::source_queue(config.queue);
    let source_task = tokio::spawn(rowbus_mysql::run_source(
        source.clone(),
        checkpoint.clone(),
        tx,
        stop.clone(),
    ));
    let pipeline_config = PipelineConfig {
        source: source.name.clone(),
        queue: config.queue,
        checkpoint_interval: config.checkpoint_interval,
    };
    let outcome = pipeline::run(
        pipeline_config,
        rx,
        sinks,
        Arc::new(store),
        checkpoint,
        stop.clone(),
    )
    .await;
    let source_outcome = source_task.await.context("the source task failed")?;
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

fn build_sinks(config: &Config) -> anyhow::Result<Vec<SinkSpec>> {
    config
        .sinks
        .iter()
        .map(|sink| {
            let built: Box<dyn Sink> = match &sink.kind {
                SinkKind::File(file) => Box::new(
                    FileSink::open(file.clone())
                        .with_context(|| format!("sink `{}`", sink.name))?,
                ),
                SinkKind::Stdout => Box::new(StdoutSink::default()),
            };
            Ok(SinkSpec {
                name: sink.name.clone(),
                sink: built,
                tables: sink.tables.clone(),
                batch_max_events: sink.batch_max_events,
                schema_changes: sink.schema_changes,
            })
        })
        .collect()
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
