//! The running process behind `rowbus run`: the pipeline in generations. A generation runs until
//! rowbus stops, or until a reload (SIGHUP, `rowbus reload`, the admin API) or a failure-log
//! replay asks for another configuration of the sinks or the source (`reload.rs` says which).
//! Sinks and transforms change after a drain at a transaction boundary, with the source still
//! reading and the unchanged sinks still open; a changed source stops at a boundary and starts
//! again from the checkpoint saved there. A drain that a paused or stuck sink holds up becomes
//! such a restart. Whatever cannot be applied (a sink that cannot open) is refused and the
//! running configuration goes on.

use crate::config::{Config, SourceConfig};
use crate::reload::{self, Plan};
use crate::run::{build_sinks, flow, open_sink_for_replay};
use anyhow::Context;
use rowbus_core::checkpoint::CheckpointStore;
use rowbus_core::control::Controls;
use rowbus_core::event::SourceRecord;
use rowbus_core::metrics::Metrics;
use rowbus_core::pipeline::{
    self, Drained, Parts, PipelineConfig, PipelineError, PipelineReport, SinkSpec, Stop,
};
use rowbus_core::position::Position;
use rowbus_core::queue::QueueReceiver;
use rowbus_core::transform::Transform;
use std::path::PathBuf;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// How long a drain may take before the source is restarted instead (a sink far behind).
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

/// What lives as long as the process, through reloads.
pub struct Process {
    pub path: PathBuf,
    pub store: Arc<CheckpointStore>,
    pub metrics: Arc<Metrics>,
    pub controls: Arc<Controls>,
    pub stop: Stop,
    pub admin: Option<Arc<crate::admin::Admin>>,
}

/// A running source: its own stop (which the process's triggers, and a reload that restarts the
/// source), and its task.
struct RunningSource {
    name: String,
    stop: Stop,
    task: SourceTask,
}

/// A source's task: it ends when the source stops, or with why it could not go on.
type SourceTask = tokio::task::JoinHandle<anyhow::Result<()>>;

/// A reload checked and ready: the new configuration, what it changes, the sinks it adds
/// (already open), the sinks whose failure logs to replay, and who to tell once it runs.
struct Next {
    config: Config,
    text: String,
    plan: Plan,
    added: Vec<SinkSpec>,
    replay: Vec<String>,
    reply: Option<oneshot::Sender<Result<String, String>>>,
}

/// How a generation ended.
struct Ended {
    outcome: Result<PipelineReport, PipelineError>,
    drained: Option<Drained>,
    next: Option<Next>,
}

/// What the next generation runs: its configuration, sinks and source.
struct Running {
    config: Config,
    text: String,
    sinks: Vec<SinkSpec>,
    source: RunningSource,
    records: QueueReceiver<SourceRecord>,
}

impl Process {
    pub async fn run(
        &self,
        config: Config,
        text: String,
        mut requests: mpsc::Receiver<reload::Request>,
    ) -> anyhow::Result<PipelineReport> {
        let owner = self.owner(&config)?;
        let sinks = build_sinks(&config, &owner, |_| true, &[], &mut Vec::new()).await?;
        let (source, records) = self.start_source(&config)?;
        let mut running = Running {
            config,
            text,
            sinks,
            source,
            records,
        };
        loop {
            let Running {
                config,
                text,
                sinks,
                source,
                records,
            } = running;
            let checkpoint = self.store.load(&source.name)?.map(|c| c.position);
            let transform = config.transforms.clone();
            let parts = Parts {
                records,
                transform: transform.map(|chain| Box::new(chain) as Box<dyn Transform>),
                sinks,
            };
            let ended = self
                .generation(
                    &config,
                    &text,
                    parts,
                    checkpoint,
                    &source.stop,
                    &mut requests,
                )
                .await;
            let Ended {
                outcome,
                drained,
                next,
            } = ended;
            let next = match next {
                Some(next) if !self.stop.is_triggered() && tolerated(&outcome) => next,
                next => {
                    if let Some(reply) = next.and_then(|n| n.reply) {
                        let _ = reply.send(Err("rowbus is stopping".into()));
                    }
                    // A queue handed back holds the source's sends: let it go first.
                    if let Some(drained) = drained {
                        close_all(drained.sinks).await;
                    }
                    let source_outcome = source.task.await.context("the source task failed")?;
                    let report = outcome?;
                    source_outcome.with_context(|| format!("source `{}` stopped", source.name))?;
                    return Ok(report);
                }
            };
            let previous = (config, text);
            running = match drained {
                Some(drained) => self.after_drain(previous, source, drained, next).await?,
                None => self.after_restart(previous, source, next).await?,
            };
        }
    }

    /// The next generation after a drain: the drained sinks kept, changed ones reopened, added
    /// ones joined, failure logs replayed; or, when a changed sink cannot open, the old ones.
    async fn after_drain(
        &self,
        (config, text): (Config, String),
        source: RunningSource,
        drained: Drained,
        next: Next,
    ) -> anyhow::Result<Running> {
        let records = drained.records;
        let Plan::Sinks { reopen, summary } = &next.plan else {
            unreachable!("only a change of sinks drains");
        };
        let mut notes = Vec::new();
        let sinks = if next.replay.is_empty() {
            self.reopen(&next.config, drained.sinks, reopen, next.added)
                .await
        } else {
            self.replay(&config, drained.sinks, &next.replay, &mut notes)
                .await
                .map(Ok)?
        };
        let (running, answer) = match sinks {
            Ok(sinks) => {
                let running = Running {
                    config: next.config,
                    text: next.text,
                    sinks,
                    source,
                    records,
                };
                (running, Ok(with_notes(summary, notes)))
            }
            Err((sinks, refused)) => {
                let running = Running {
                    config,
                    text,
                    sinks,
                    source,
                    records,
                };
                (running, Err(refused))
            }
        };
        self.applied(&running.config, answer, next.reply);
        Ok(running)
    }

    /// The next generation after the source stopped for a reload: every sink and the source
    /// start again, with the new configuration, or with the old one when a sink cannot open.
    async fn after_restart(
        &self,
        (config, text): (Config, String),
        source: RunningSource,
        next: Next,
    ) -> anyhow::Result<Running> {
        let source_outcome = source.task.await.context("the source task failed")?;
        source_outcome.with_context(|| format!("source `{}` stopped", source.name))?;
        let mut notes = Vec::new();
        let added: Vec<String> = next.added.iter().map(|s| s.name.clone()).collect();
        let owner = self.owner(&next.config)?;
        let others = |name: &str| !added.iter().any(|a| a == name);
        let opened = build_sinks(&next.config, &owner, others, &next.replay, &mut notes).await;
        let (config, text, sinks, answer) = match opened {
            Ok(mut sinks) => {
                sinks.extend(next.added);
                sort_as_configured(&mut sinks, &next.config);
                let summary = with_notes(next.plan.summary(), notes);
                (next.config, next.text, sinks, Ok(summary))
            }
            Err(e) => {
                close_all(next.added).await;
                let owner = self.owner(&config)?;
                let sinks = build_sinks(&config, &owner, |_| true, &[], &mut Vec::new()).await?;
                let refused = format!("{e:#}; the running configuration is kept");
                (config, text, sinks, Err(refused))
            }
        };
        if let Some(admin) = &self.admin {
            *admin.tables.write().unwrap_or_else(|p| p.into_inner()) =
                config.source.tables().clone();
        }
        let (source, records) = self.start_source(&config)?;
        self.applied(&config, answer, next.reply);
        Ok(Running {
            config,
            text,
            sinks,
            source,
            records,
        })
    }

    /// Logs and answers how a reload ended, and shows the flow it left running.
    fn applied(
        &self,
        config: &Config,
        answer: Result<String, String>,
        reply: Option<oneshot::Sender<Result<String, String>>>,
    ) {
        match &answer {
            Ok(summary) => tracing::info!(%summary, "configuration reloaded"),
            Err(message) => {
                tracing::error!(%message, "reload refused; the running configuration is kept")
            }
        }
        if let Some(admin) = &self.admin {
            *admin.flow.write().unwrap_or_else(|p| p.into_inner()) = flow(config);
        }
        if let Some(reply) = reply {
            let _ = reply.send(answer);
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
    ) -> Ended {
        let drain = Stop::default();
        let pipeline_config = PipelineConfig {
            source: config.source.name().to_string(),
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
        let mut draining_since = None;
        let mut watch = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                (outcome, drained) = &mut running => return Ended { outcome, drained, next },
                _ = watch.tick(), if draining_since.is_some() && !source_stop.is_triggered() => {
                    let patience = draining_since.is_some_and(|t: Instant| t.elapsed() > DRAIN_PATIENCE);
                    if patience || self.a_sink_holds_up_the_drain() {
                        tracing::warn!("a sink holds up the reload's drain (paused or stuck): restarting the source instead; the other sinks may receive its open changes again");
                        source_stop.trigger();
                    }
                }
                Some(request) = requests.recv(), if next.is_none() => {
                    if self.stop.is_triggered() {
                        answer(request, Err("rowbus is stopping".into()));
                        continue;
                    }
                    let prepared = match &request.ask {
                        reload::Ask::Reload => self.prepare(config, text).await,
                        reload::Ask::ReplayFailures { sink } => replay_plan(config, text, sink.as_deref()),
                    };
                    let (plan, added, new_config, new_text, replay) = match prepared {
                        Ok(prepared) => prepared,
                        Err(message) => {
                            tracing::error!(%message, "reload refused; the running configuration is kept");
                            answer(request, Err(message));
                            continue;
                        }
                    };
                    if plan == Plan::Nothing {
                        answer(request, Ok(plan.summary().to_string()));
                        continue;
                    }
                    tracing::info!(summary = plan.summary(), "reloading at the next transaction boundary");
                    match plan {
                        Plan::Sinks { .. } if !self.a_sink_holds_up_the_drain() => {
                            drain.trigger();
                            draining_since = Some(Instant::now());
                        }
                        Plan::Sinks { .. } => {
                            tracing::warn!("a sink would hold up the reload's drain (paused or stuck): restarting the source instead; the other sinks may receive its open changes again");
                            source_stop.trigger();
                        }
                        _ => source_stop.trigger(),
                    }
                    next = Some(Next { config: new_config, text: new_text, plan, added, replay, reply: request.reply });
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
        let is_new = |name: &str| !config.sinks.iter().any(|s| s.name == name);
        let owner = self.owner(&new_config).map_err(|e| e.to_string())?;
        let added = build_sinks(&new_config, &owner, is_new, &[], &mut Vec::new())
            .await
            .map_err(|e| format!("{e:#}"))?;
        Ok((plan, added, new_config, new_text, Vec::new()))
    }

    /// A drain would wait for a paused sink holding changes, or for a stuck one (its oldest held
    /// change waited `stuck_after`): the source restarts instead.
    fn a_sink_holds_up_the_drain(&self) -> bool {
        let now = rowbus_core::event::now_ms();
        let stuck_after = self.metrics.stuck_after_ms as f64 / 1000.0;
        self.metrics.sinks().iter().any(|s| {
            let holds = s.queued.load(Relaxed) > 0 || s.holding_since_ms.load(Relaxed) > 0;
            let paused = self.controls.sink(&s.name).is_some_and(|g| g.is_paused());
            (holds && paused) || s.lag_seconds(now) >= stuck_after
        })
    }

    /// The sinks for `config` after a drain: the drained ones kept, the changed ones opened
    /// again (before their old instance closes, which is idle now), the added ones joined; the
    /// removed ones closed. When a changed sink cannot open: the drained sinks, unchanged, and
    /// why.
    async fn reopen(
        &self,
        config: &Config,
        drained: Vec<SinkSpec>,
        reopen: &[String],
        added: Vec<SinkSpec>,
    ) -> Result<Vec<SinkSpec>, (Vec<SinkSpec>, String)> {
        let changed = |name: &str| reopen.iter().any(|r| r == name);
        let owner = match self.owner(config) {
            Ok(owner) => owner,
            Err(e) => return Err((drained, e.to_string())),
        };
        let mut opened = match build_sinks(config, &owner, changed, &[], &mut Vec::new()).await {
            Ok(opened) => opened,
            Err(e) => {
                close_all(added).await;
                return Err((drained, format!("{e:#}; the running configuration is kept")));
            }
        };
        let (closing, mut kept): (Vec<SinkSpec>, Vec<SinkSpec>) =
            drained.into_iter().partition(|s| changed(&s.name));
        close_all(closing).await;
        opened.extend(added);
        kept.extend(opened);
        sort_as_configured(&mut kept, config);
        Ok(kept)
    }

    /// Replays the failure logs of the sinks `replay` names (drained, so closed first) and
    /// opens them again; a replay that fails is noted, and the sink opens all the same.
    async fn replay(
        &self,
        config: &Config,
        drained: Vec<SinkSpec>,
        replay: &[String],
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Vec<SinkSpec>> {
        let replaying = |name: &str| replay.iter().any(|r| r == name);
        let (closing, mut kept): (Vec<SinkSpec>, Vec<SinkSpec>) =
            drained.into_iter().partition(|s| replaying(&s.name));
        close_all(closing).await;
        for sink in config.sinks.iter().filter(|s| replaying(&s.name)) {
            let replayed = match open_sink_for_replay(sink) {
                Ok(mut target) => crate::failures::replay(config, sink, &mut *target, false).await,
                Err(e) => Err(e),
            };
            notes.push(match replayed {
                Ok(r) => format!(
                    "sink `{}`: {} delivered, {} kept",
                    sink.name, r.delivered, r.kept
                ),
                Err(e) => format!("sink `{}`: the replay failed: {e:#}", sink.name),
            });
        }
        let owner = self.owner(config)?;
        kept.extend(build_sinks(config, &owner, replaying, &[], &mut Vec::new()).await?);
        sort_as_configured(&mut kept, config);
        Ok(kept)
    }

    fn start_source(
        &self,
        config: &Config,
    ) -> anyhow::Result<(RunningSource, QueueReceiver<SourceRecord>)> {
        let name = config.source.name().to_string();
        let checkpoint = self.store.load(&name)?.map(|c| c.position);
        if let Some(position) = &checkpoint {
            tracing::info!(source = %name, %position, "resuming from the saved checkpoint");
        }
        let stop = Stop::default();
        // The process's stop stops this source; the task ends with either.
        let (process_stop, source_stop) = (self.stop.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = process_stop.wait() => source_stop.trigger(),
                _ = source_stop.wait() => {}
            }
        });
        let (tx, rx) = pipeline::source_queue(config.queue);
        let task = match &config.source {
            SourceConfig::Mysql(mysql) => {
                self.start_mysql(config, mysql.clone(), checkpoint, tx, &stop)?
            }
            SourceConfig::Kafka(kafka) => {
                if checkpoint.is_none() {
                    tracing::info!(source = %name, start = ?kafka.start, "no checkpoint; reading each partition from the configured start");
                }
                let store = self.store.clone();
                let source = name.clone();
                let saved: rowbus_kafka::source::Saved =
                    Arc::new(move || store.load(&source).ok().flatten().map(|c| c.position));
                let run =
                    rowbus_kafka::run_source(kafka.clone(), checkpoint, tx, stop.clone(), saved);
                tokio::spawn(async move { run.await.map_err(anyhow::Error::msg) })
            }
        };
        Ok((RunningSource { name, stop, task }, rx))
    }

    /// Starts the binlog reader of a MySQL source.
    fn start_mysql(
        &self,
        config: &Config,
        mut source: rowbus_mysql::MysqlSourceConfig,
        checkpoint: Option<rowbus_core::Position>,
        tx: rowbus_core::queue::QueueSender<SourceRecord>,
        stop: &Stop,
    ) -> anyhow::Result<SourceTask> {
        // Servers limit the registered host name (MySQL 5.7: 60 characters).
        let name = format!("rowbus-{}-{}", self.store.instance_id()?, source.name);
        source.replica_name = name.chars().take(60).collect();
        let history = config
            .data_dir
            .join("schema")
            .join(format!("{}.jsonl", source.name));
        source.history_path = Some(history);
        source.snapshot_requests = Some(crate::snapshot::requests_dir(&config.data_dir));
        match &checkpoint {
            Some(_) => {}
            None if source.snapshot != rowbus_mysql::SnapshotMode::Never => {
                tracing::info!(source = %source.name, "no checkpoint; a snapshot of every included table, merged with the stream from the binlog's end")
            }
            None => {
                tracing::info!(source = %source.name, start = ?source.start, "no checkpoint; using the configured start")
            }
        }
        if self.admin.is_some() {
            // The lag in bytes is for the admin API only.
            let watch =
                rowbus_mysql::lag::watch(source.clone(), self.metrics.clone(), stop.clone());
            tokio::spawn(watch);
        }
        let run = rowbus_mysql::run_source(source, checkpoint, tx, stop.clone());
        Ok(tokio::spawn(async move {
            run.await.map_err(anyhow::Error::from)
        }))
    }

    /// This installation and source, which the database sinks' applied positions belong to.
    fn owner(&self, config: &Config) -> anyhow::Result<String> {
        Ok(format!(
            "{}:{}",
            self.store.instance_id()?,
            config.source.name()
        ))
    }
}

/// A reload checked and ready: the plan, the sinks it adds (open), the new configuration and
/// its text, the sinks to replay.
type Prepared = (Plan, Vec<SinkSpec>, Config, String, Vec<String>);

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
    Ok((plan, Vec::new(), config, text.to_string(), replay))
}

/// Whether a generation's end still lets a reload go on: a sink that could not deliver before
/// a reload stopped the source (its changes stay unacknowledged, before the checkpoint, for the
/// new source to read again) does; any other error ends rowbus.
fn tolerated(outcome: &Result<PipelineReport, PipelineError>) -> bool {
    match outcome {
        Ok(_) => true,
        Err(PipelineError::Sink { sink, source }) => {
            tracing::warn!(%sink, error = %source, "the sink could not deliver before the reload's restart; its changes come again");
            true
        }
        Err(_) => false,
    }
}

fn answer(request: reload::Request, answer: Result<String, String>) {
    if let Some(reply) = request.reply {
        let _ = reply.send(answer);
    }
}

fn with_notes(summary: &str, notes: Vec<String>) -> String {
    std::iter::once(summary.to_string())
        .chain(notes)
        .collect::<Vec<_>>()
        .join("; ")
}

fn sort_as_configured(sinks: &mut [SinkSpec], config: &Config) {
    sinks.sort_by_key(|s| config.sinks.iter().position(|c| c.name == s.name));
}

async fn close_all(sinks: Vec<SinkSpec>) {
    for mut spec in sinks {
        if let Err(e) = spec.sink.close().await {
            tracing::warn!(sink = %spec.name, error = %e, "closing a sink the reload removed, changed or refused");
        }
    }
}
