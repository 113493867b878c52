//! `rowbus run`: opens the state store, builds the sinks, starts the source and the pipeline, and
//! handles SIGINT/SIGTERM (the first stops at the next transaction boundary, drains and saves the
//! checkpoint; a second one exits at once) and reloads (SIGHUP or the admin API: the pipeline is
//! run again on the new configuration, see `reload.rs`).

use crate::config::{Config, SinkConfig, SinkKind};
use crate::failures;
use crate::reload::{self, Plan};
use anyhow::Context;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::control::Controls;
use rowbus_core::delivery::Delivery;
use rowbus_core::event::SourceRecord;
use rowbus_core::failure::{self, FailureLog};
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::{
    self, Drained, Parts, PipelineConfig, PipelineError, PipelineReport, SinkSpec, Stop,
};
use rowbus_core::position::Position;
use rowbus_core::queue::QueueReceiver;
use rowbus_core::sink::Sink;
use rowbus_core::transform::Transform;
use rowbus_sinks::file::{FileSink, StdoutSink};
use rowbus_sinks::sql::SqlSink;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot};

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
    let mut metrics = Metrics::new(&config.source.name, &names);
    metrics.queue_capacity = config.queue.max_items as u64;
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
            source: config.source.name.clone(),
            data_dir: config.data_dir.clone(),
            tables: std::sync::RwLock::new(config.source.tables.clone()),
            stop: stop.clone(),
            reloads: reloads.clone(),
            flow: std::sync::RwLock::new(flow(&config)),
            history: Default::default(),
        });
        let task = crate::admin::serve(state.clone(), admin_shutdown.clone()).await?;
        admin = Some((task, state));
    }
    let process = Process {
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

/// What lives as long as the process, through reloads.
struct Process {
    path: PathBuf,
    store: Arc<CheckpointStore>,
    metrics: Arc<Metrics>,
    controls: Arc<Controls>,
    stop: Stop,
    admin: Option<Arc<crate::admin::Admin>>,
}

/// A running source: its own stop (which the process's triggers, and a reload that restarts the
/// source), and its task.
struct RunningSource {
    name: String,
    stop: Stop,
    task: tokio::task::JoinHandle<Result<(), rowbus_mysql::SourceError>>,
}

/// A reload decided on: the new configuration, what it changes, the sinks it adds (already
/// open), the sinks whose failure logs to replay before they reopen, and who to tell once it
/// runs.
struct Next {
    config: Config,
    text: String,
    plan: Plan,
    added: Vec<SinkSpec>,
    replay: Vec<String>,
    reply: Option<oneshot::Sender<Result<String, String>>>,
}

impl Process {
    async fn run(
        &self,
        mut config: Config,
        mut text: String,
        mut requests: mpsc::Receiver<reload::Request>,
    ) -> anyhow::Result<PipelineReport> {
        let mut notes = Vec::new();
        let mut sinks =
            build_sinks(&config, &self.owner(&config)?, |_| true, &[], &mut notes).await?;
        let (mut source, mut records) = self.start_source(&config)?;
        loop {
            let checkpoint = self.store.load(&source.name)?.map(|c| c.position);
            let parts = Parts {
                records,
                transform: config
                    .transforms
                    .clone()
                    .map(|chain| Box::new(chain) as Box<dyn Transform>),
                sinks,
            };
            let (outcome, drained, next) = self
                .generation(
                    &config,
                    &text,
                    parts,
                    checkpoint,
                    &source.stop,
                    &mut requests,
                )
                .await;
            let next = match (outcome, next) {
                (Ok(_), Some(next)) if !self.stop.is_triggered() => next,
                (outcome, next) => {
                    if let Some(reply) = next.and_then(|n| n.reply) {
                        let _ = reply.send(Err("rowbus is stopping".into()));
                    }
                    let source_outcome = source.task.await.context("the source task failed")?;
                    let report = outcome?;
                    source_outcome.with_context(|| format!("source `{}` stopped", source.name))?;
                    return Ok(report);
                }
            };
            let mut summary = next.plan.summary().to_string();
            (config, text) = (next.config, next.text);
            let mut notes = Vec::new();
            match (next.plan, drained) {
                (Plan::Sinks { reopen, .. }, Some(drained)) => {
                    records = drained.records;
                    let reopening = Reopening {
                        reopen: &reopen,
                        added: next.added,
                        replay: &next.replay,
                    };
                    sinks = self
                        .next_sinks(&config, drained.sinks, reopening, &mut notes)
                        .await?;
                }
                _ => {
                    // The source stopped at a boundary with the old sinks: all start again.
                    let source_outcome = source.task.await.context("the source task failed")?;
                    source_outcome.with_context(|| format!("source `{}` stopped", source.name))?;
                    if let Some(admin) = &self.admin {
                        *admin.tables.write().unwrap_or_else(|p| p.into_inner()) =
                            config.source.tables.clone();
                    }
                    let owner = self.owner(&config)?;
                    sinks =
                        build_sinks(&config, &owner, |_| true, &next.replay, &mut notes).await?;
                    (source, records) = self.start_source(&config)?;
                }
            }
            for note in notes {
                summary = format!("{summary}; {note}");
            }
            if let Some(admin) = &self.admin {
                *admin.flow.write().unwrap_or_else(|p| p.into_inner()) = flow(&config);
            }
            tracing::info!(%summary, "configuration reloaded");
            if let Some(reply) = next.reply {
                let _ = reply.send(Ok(summary));
            }
        }
    }

    /// Runs one pipeline on `parts` until it stops, or drains (or stops the source) for a
    /// reload; a reload asked meanwhile with an invalid or unchanged configuration is answered
    /// and changes nothing.
    async fn generation(
        &self,
        config: &Config,
        text: &str,
        parts: Parts,
        checkpoint: Option<Position>,
        source_stop: &Stop,
        requests: &mut mpsc::Receiver<reload::Request>,
    ) -> (
        Result<PipelineReport, PipelineError>,
        Option<Drained>,
        Option<Next>,
    ) {
        let drain = Stop::default();
        let pipeline_config = PipelineConfig {
            source: config.source.name.clone(),
            metrics: self.metrics.clone(),
            controls: self.controls.clone(),
            queue: config.queue,
            checkpoint_interval: config.checkpoint_interval,
        };
        let running = pipeline::run_until_drained(
            pipeline_config,
            parts,
            self.store.clone(),
            checkpoint,
            source_stop.clone(),
            drain.clone(),
        );
        tokio::pin!(running);
        let mut next: Option<Next> = None;
        loop {
            tokio::select! {
                (outcome, drained) = &mut running => return (outcome, drained, next),
                Some(request) = requests.recv(), if next.is_none() => {
                    let prepared = match &request.ask {
                        reload::Ask::Reload => self.prepare(config, text).await,
                        reload::Ask::ReplayFailures { sink } => replay_plan(config, text, sink.as_deref()),
                    };
                    match prepared {
                        Ok(prepared) => {
                            let Prepared { plan, added, config: new_config, text: new_text, replay } = prepared;
                            if plan == Plan::Nothing {
                                reply(request, Ok(plan.summary().to_string()));
                                continue;
                            }
                            tracing::info!(summary = plan.summary(), "reloading the configuration at the next transaction boundary");
                            match plan {
                                Plan::Sinks { .. } if !self.paused_sink_holds_changes() => drain.trigger(),
                                _ => source_stop.trigger(),
                            }
                            next = Some(Next { config: new_config, text: new_text, plan, added, replay, reply: request.reply });
                        }
                        Err(message) => {
                            tracing::error!(%message, "reload refused; the running configuration is kept");
                            reply(request, Err(message));
                        }
                    }
                }
            }
        }
    }

    /// Reads and checks the configuration file again, decides what it changes, and opens the
    /// sinks it adds; an error says why it is refused.
    async fn prepare(&self, config: &Config, text: &str) -> Result<Prepared, String> {
        let path = &self.path;
        let new_text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let new_config = crate::config::parse(&new_text).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            format!("{} is not valid:\n{}", path.display(), lines.join("\n"))
        })?;
        let plan = reload::plan(text, &new_text)?;
        let added = match &plan {
            Plan::Sinks { .. } => {
                let is_new = |name: &str| !config.sinks.iter().any(|s| s.name == name);
                let owner = self.owner(&new_config).map_err(|e| e.to_string())?;
                build_sinks(&new_config, &owner, is_new, &[], &mut Vec::new())
                    .await
                    .map_err(|e| format!("{e:#}"))?
            }
            _ => Vec::new(),
        };
        Ok(Prepared {
            plan,
            added,
            config: new_config,
            text: new_text,
            replay: Vec::new(),
        })
    }

    /// A drain would wait for a paused sink holding changes; such a reload restarts the source
    /// instead, leaving them for it to read again.
    fn paused_sink_holds_changes(&self) -> bool {
        self.metrics.sinks().iter().any(|s| {
            let held = s.queued.load(Relaxed) > 0 || s.holding_since_ms.load(Relaxed) > 0;
            held && self.controls.sink(&s.name).is_some_and(|g| g.is_paused())
        })
    }

    /// The sinks of the next generation, in the configuration's order: the drained ones kept,
    /// the added ones, and the changed ones opened again (their old instance closed first).
    async fn next_sinks(
        &self,
        config: &Config,
        drained: Vec<SinkSpec>,
        reopening: Reopening<'_>,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Vec<SinkSpec>> {
        let Reopening {
            reopen,
            added,
            replay,
        } = reopening;
        let mut kept = Vec::new();
        for mut spec in drained {
            if reopen.contains(&spec.name) {
                if let Err(e) = spec.sink.close().await {
                    tracing::warn!(sink = %spec.name, error = %e, "closing a sink the reload removed or changed");
                }
            } else {
                kept.push(spec);
            }
        }
        let reopened = |name: &str| reopen.iter().any(|r| r == name);
        let owner = self.owner(config)?;
        let mut opened = build_sinks(config, &owner, reopened, replay, notes).await?;
        opened.extend(added);
        kept.extend(opened);
        let order = |s: &SinkSpec| config.sinks.iter().position(|c| c.name == s.name);
        kept.sort_by_key(order);
        Ok(kept)
    }

    fn start_source(
        &self,
        config: &Config,
    ) -> anyhow::Result<(RunningSource, QueueReceiver<SourceRecord>)> {
        let mut source = config.source.clone();
        // Servers limit the registered host name (MySQL 5.7: 60 characters).
        let name = format!("rowbus-{}-{}", self.store.instance_id()?, source.name);
        source.replica_name = name.chars().take(60).collect();
        let history = config
            .data_dir
            .join("schema")
            .join(format!("{}.jsonl", source.name));
        source.history_path = Some(history);
        source.snapshot_requests = Some(crate::snapshot::requests_dir(&config.data_dir));
        let checkpoint = self.store.load(&source.name)?.map(|c| c.position);
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
        let stop = Stop::default();
        let (process_stop, source_stop) = (self.stop.clone(), stop.clone());
        tokio::spawn(async move {
            process_stop.wait().await;
            source_stop.trigger();
        });
        if self.admin.is_some() {
            // The lag in bytes is for the admin API only.
            let watch =
                rowbus_mysql::lag::watch(source.clone(), self.metrics.clone(), stop.clone());
            tokio::spawn(watch);
        }
        let (tx, rx) = pipeline::source_queue(config.queue);
        let name = source.name.clone();
        let task = tokio::spawn(rowbus_mysql::run_source(
            source,
            checkpoint,
            tx,
            stop.clone(),
        ));
        Ok((RunningSource { name, stop, task }, rx))
    }

    /// This installation and source, which the database sinks' applied positions belong to.
    fn owner(&self, config: &Config) -> anyhow::Result<String> {
        Ok(format!(
            "{}:{}",
            self.store.instance_id()?,
            config.source.name
        ))
    }
}

/// The flow's shape, for the dashboard: the pipeline's transform steps, each sink's kind.
fn flow(config: &Config) -> serde_json::Value {
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
            };
            (s.name.clone(), kind.into())
        })
        .collect();
    serde_json::json!({ "transforms": steps, "sinks": sinks })
}

/// A reload checked and ready: see `Next`.
struct Prepared {
    plan: Plan,
    added: Vec<SinkSpec>,
    config: Config,
    text: String,
    replay: Vec<String>,
}

/// What the next generation opens again: the sinks `reopen` names (their failure logs first
/// replayed where `replay` names them), and the `added` ones, already open.
struct Reopening<'a> {
    reopen: &'a [String],
    added: Vec<SinkSpec>,
    replay: &'a [String],
}

/// Replaying failure logs while running: the running configuration again, with the sinks (the
/// one named, or all) drained, closed, replayed and reopened at a transaction boundary.
fn replay_plan(config: &Config, text: &str, sink: Option<&str>) -> Result<Prepared, String> {
    let names: Vec<String> = config.sinks.iter().map(|s| s.name.clone()).collect();
    let replay = match sink {
        Some(sink) if !names.iter().any(|n| n == sink) => {
            return Err(format!("no sink `{sink}` (sinks: {})", names.join(", ")));
        }
        Some(sink) => vec![sink.to_string()],
        None => names,
    };
    let config = crate::config::parse(text)
        .map_err(|_| "the running configuration no longer parses".to_string())?;
    let plan = Plan::Sinks {
        reopen: replay.clone(),
        summary: format!("failure logs replayed ({})", replay.join(", ")),
    };
    Ok(Prepared {
        plan,
        added: Vec::new(),
        config,
        text: text.to_string(),
        replay,
    })
}

fn reply(request: reload::Request, answer: Result<String, String>) {
    if let Some(reply) = request.reply {
        let _ = reply.send(answer);
    }
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

/// Opens the configured sinks that `wanted` names, with their failure logs. `owner`: this
/// installation and source, which the database sinks' applied positions belong to.
/// The sinks `replay` names, and those with `replay_failures_on_start`, replay their failure
/// logs first; what each replay did is added to `notes`.
async fn build_sinks(
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
                let _ = reloads.send(request).await;
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
