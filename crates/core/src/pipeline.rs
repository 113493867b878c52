//! The pipeline runtime: takes the records a source emits, routes each change to the sinks whose
//! `tables` select it (each sink with its own bounded queue and worker task), acknowledges delivered
//! batches to the ack tracker, and saves the tracker's checkpoint periodically and at the end.
//!
//! Shutdown is cooperative: the source stops at a transaction boundary and closes its queue; the
//! router and then each sink drain what is in flight; the last checkpoint is saved. A sink's
//! permanent error or a failing checkpoint save stops the pipeline through the shared `Stop`.
//!
//! A reload drains without stopping the source (`run_until_drained`): the router stops between
//! two transactions, the sinks deliver what they hold, the checkpoint is saved at that boundary,
//! and the source's queue and the open sinks are handed back for the next configuration.

use crate::ack::{AckTracker, Seq};
use crate::checkpoint::{CheckpointError, CheckpointStore};
use crate::control::{Controls, Gate};
use crate::delivery::Delivery;
use crate::event::{ChangeEvent, SourceRecord};
use crate::metrics::{Metrics, SinkMetrics};
use crate::position::Position;
use crate::queue::{
    bounded, release_all, Counted, QueueLimits, QueueReceiver, QueueSender, Queued,
};
use crate::sink::{Sink, SinkError};
use crate::table_filter::TableFilter;
use crate::transform::{Output, Rejected, Targets, Transform};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::task::JoinSet;

/// A stop request shared by the source, the pipeline and the signal handler.
#[derive(Clone)]
pub struct Stop {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop {
            tx: Arc::new(watch::channel(false).0),
        }
    }
}

impl Stop {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Sleeps for `duration`, or less if a stop is requested meanwhile.
    pub async fn sleep(&self, duration: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(duration) => {}
            _ = self.wait() => {}
        }
    }

    /// Resolves once a stop was requested.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// One configured sink, ready to run.
pub struct SinkSpec {
    pub name: String,
    pub sink: Box<dyn Sink>,
    pub tables: TableFilter,
    pub batch_max_events: usize,
    /// Whether the sink receives schema changes and truncations (`op` "ddl" and "t").
    pub schema_changes: bool,
    /// Its retry policy and failure log.
    pub delivery: Delivery,
    /// The sink's own transforms, applied in its worker before delivery.
    pub transform: Option<Box<dyn Transform>>,
    /// Batches hold whole source transactions (a batch may then exceed `batch_max_events`), for
    /// a sink that applies each source transaction as one target transaction.
    pub whole_transactions: bool,
}

/// Where the router sends a sink's events.
struct Route {
    name: String,
    tables: TableFilter,
    schema_changes: bool,
    tx: QueueSender<SinkItem>,
}

impl Route {
    fn accepts(&self, event: &ChangeEvent) -> bool {
        self.takes_kind_of(event) && self.tables.matches(&event.db, &event.table)
    }

    /// Whether the sink takes this kind of change (schema changes only if it asked), and a
    /// snapshot's row only if the snapshot was asked for it (or for every sink).
    fn takes_kind_of(&self, event: &ChangeEvent) -> bool {
        let asked = event.source.sinks.as_ref();
        (self.schema_changes || !event.op.is_schema_change())
            && asked.is_none_or(|sinks| sinks.contains(&self.name))
    }
}

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The source's name, under which its checkpoint is saved.
    pub source: String,
    /// What the pipeline counts, with one entry per sink in the order of the sinks.
    pub metrics: Arc<Metrics>,
    /// Pause and resume, for the source and each sink in the order of the sinks.
    pub controls: Arc<Controls>,
    pub queue: QueueLimits,
    pub checkpoint_interval: Duration,
}

impl PipelineConfig {
    /// The most records the ack tracker holds before the router waits: a stuck sink holds the
    /// checkpoint and, through this bound, the reader, however few events are routed to it.
    pub fn max_in_flight(&self) -> usize {
        self.queue.max_items.saturating_mul(16).max(1024)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("sink `{sink}` failed: {source}")]
    Sink {
        sink: String,
        #[source]
        source: SinkError,
    },
    #[error(
        "sink `{sink}`: {count} events failed within {within:?}, more than max_failures allows; \
         stopping with the checkpoint before them (last error: {last_error})"
    )]
    TooManyFailures {
        sink: String,
        count: usize,
        within: Duration,
        last_error: String,
    },
    #[error("sink `{sink}`: cannot write its failure log {message}")]
    FailureLog { sink: String, message: String },
    #[error("cannot save the checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// What a finished pipeline reports.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineReport {
    pub checkpoint: Option<Position>,
    pub records: u64,
}

type Tracker = Arc<Mutex<AckTracker>>;
type SinkItem = (Seq, Item);

/// What the router hands a sink.
#[derive(Clone)]
enum Item {
    Event(Arc<ChangeEvent>),
    /// A source's run of changes, untransformed: one item, acknowledged once.
    Run(Arc<[Arc<ChangeEvent>]>),
    /// The pipeline's transforms failed on this event (as it came from the source).
    Rejected(Arc<ChangeEvent>, Arc<str>),
}

/// A run counts its changes against the sink's queue's bound.
impl Counted for SinkItem {
    fn count(&self) -> usize {
        self.1.events().len()
    }
}

impl Item {
    /// The changes the item carries, in order.
    fn events(&self) -> &[Arc<ChangeEvent>] {
        match self {
            Item::Event(e) | Item::Rejected(e, _) => std::slice::from_ref(e),
            Item::Run(events) => events,
        }
    }
}

/// Runs until the source closes `records` (or a failure stops it), then saves the final checkpoint.
/// `transform`: the pipeline's transforms, applied once per change before fan-out.
pub async fn run(
    config: PipelineConfig,
    records: QueueReceiver<SourceRecord>,
    transform: Option<Box<dyn Transform>>,
    sinks: Vec<SinkSpec>,
    store: Arc<CheckpointStore>,
    start: Option<Position>,
    stop: Stop,
) -> Result<PipelineReport, PipelineError> {
    let parts = Parts {
        records,
        transform,
        sinks,
    };
    run_until_drained(config, parts, store, start, stop, Stop::default())
        .await
        .0
}

/// What a pipeline runs on: the source's queue, the pipeline's transforms and the sinks.
pub struct Parts {
    pub records: QueueReceiver<SourceRecord>,
    pub transform: Option<Box<dyn Transform>>,
    pub sinks: Vec<SinkSpec>,
}

/// What a drained pipeline hands back: the source's queue, at a transaction boundary, and the
/// sinks, open, with everything they were given delivered.
pub struct Drained {
    pub records: QueueReceiver<SourceRecord>,
    pub sinks: Vec<SinkSpec>,
}

/// As `run`, and once `drain` is requested (and no stop), ends at the next transaction boundary
/// with the sinks delivered and the checkpoint saved there, and hands back what it ran on.
pub async fn run_until_drained(
    config: PipelineConfig,
    parts: Parts,
    store: Arc<CheckpointStore>,
    start: Option<Position>,
    stop: Stop,
    drain: Stop,
) -> (Result<PipelineReport, PipelineError>, Option<Drained>) {
    // Without a saved checkpoint, the first boundary is saved before anything is routed: a
    // restart then resumes there and misses nothing delivered in between.
    let save_first = start.is_none().then(|| (config.clone(), store.clone()));
    let tracker: Tracker = Arc::new(Mutex::new(AckTracker::new(start)));
    let acked = Arc::new(Notify::new());
    let mut tasks: JoinSet<Result<Option<SinkSpec>, PipelineError>> = JoinSet::new();
    let mut routes = Vec::new();
    let names: Vec<String> = parts.sinks.iter().map(|s| s.name.clone()).collect();
    let counts = config.metrics.set_sinks(&names);
    config
        .metrics
        .queue_capacity
        .store(config.queue.max_items as u64, Relaxed);
    let gates = config.controls.set_sinks(&names);
    for ((spec, counts), gate) in parts.sinks.into_iter().zip(&counts).zip(gates) {
        let (tx, rx) = bounded::<SinkItem>(config.queue);
        routes.push(Route {
            name: spec.name.clone(),
            tables: spec.tables.clone(),
            schema_changes: spec.schema_changes,
            tx,
        });
        let watch = SinkWatch {
            counts: counts.clone(),
            gate,
            drain: drain.clone(),
        };
        tasks.spawn(sink_worker(
            spec,
            watch,
            rx,
            tracker.clone(),
            acked.clone(),
            stop.clone(),
        ));
    }
    let fanout = Fanout {
        transform: parts.transform,
        metrics: config.metrics.clone(),
        counts,
        controls: config.controls.clone(),
        routes,
        outputs: Vec::new(),
        sends: Vec::new(),
    };
    let router = tokio::spawn(route(
        parts.records,
        fanout,
        tracker.clone(),
        acked.clone(),
        config.max_in_flight(),
        (stop.clone(), drain.clone()),
        save_first,
    ));
    let flusher_done = Arc::new(Notify::new());
    let flusher = tokio::spawn(flush_periodically(
        config.clone(),
        store.clone(),
        tracker.clone(),
        stop.clone(),
        flusher_done.clone(),
    ));

    let mut first_error = None;
    let mut open_sinks = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let result = joined.unwrap_or_else(|e| Err(PipelineError::Internal(e.to_string())));
        match result {
            Ok(open) => open_sinks.extend(open),
            Err(e) => {
                stop.trigger();
                first_error.get_or_insert(e);
            }
        }
    }
    let (records_seen, records) = router.await.unwrap_or((0, None));
    // Let a save in progress finish before the final one, so two never race.
    flusher_done.notify_one();
    match flusher.await {
        Ok(Err(e)) => {
            first_error.get_or_insert(e);
        }
        Err(e) => {
            first_error.get_or_insert(PipelineError::Internal(e.to_string()));
        }
        Ok(Ok(())) => {}
    }
    let checkpoint = save_now(&config, &store, &tracker).await;
    if let Some(e) = first_error {
        return (Err(e), None);
    }
    let checkpoint = match checkpoint {
        Ok(checkpoint) => checkpoint,
        Err(e) => return (Err(e), None),
    };
    let report = PipelineReport {
        checkpoint,
        records: records_seen,
    };
    // The sinks come back in the order they were given.
    open_sinks.sort_by_key(|s: &SinkSpec| names.iter().position(|n| *n == s.name));
    let drained = match records {
        Some(records) if !stop.is_triggered() && open_sinks.len() == names.len() => Some(Drained {
            records,
            sinks: open_sinks,
        }),
        _ => None,
    };
    (Ok(report), drained)
}

/// Where the router sends changes: through the pipeline's transforms, to the sinks' queues.
struct Fanout {
    transform: Option<Box<dyn Transform>>,
    metrics: Arc<Metrics>,
    /// Each route's sink's counts.
    counts: Vec<Arc<SinkMetrics>>,
    controls: Arc<Controls>,
    routes: Vec<Route>,
    /// Reused for each change: the transforms' outputs, and what goes to which route.
    outputs: Vec<Output>,
    sends: Vec<(usize, Item, usize)>,
}

/// The ack tracker the router registers each record with, and what bounds it: the most records
/// in flight, and the stop that ends a wait for room.
type Registry<'a> = (&'a Tracker, &'a Notify, (usize, &'a Stop));

impl Fanout {
    /// Routes one change, of `bytes` as the source sent it: false once the pipeline is ending.
    async fn change(&mut self, event: Arc<ChangeEvent>, bytes: usize, at: Registry<'_>) -> bool {
        self.note_read(&event, 1);
        let transforming = (&mut self.transform, &mut self.outputs, &*self.metrics);
        fan_out(&self.routes, (event, bytes), transforming, &mut self.sends);
        self.dispatch(at).await
    }

    /// Routes a run as one record to each sink that accepts it; through the transforms, which
    /// act on each change, it goes change by change.
    async fn run(&mut self, run: Arc<[Arc<ChangeEvent>]>, bytes: usize, at: Registry<'_>) -> bool {
        if self.transform.is_some() {
            for event in run.iter() {
                if !self.change(event.clone(), event.approx_size(), at).await {
                    return false;
                }
            }
            return true;
        }
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return true;
        };
        self.note_read(last, run.len());
        // One source event, table and op: the routes that accept one change accept them all.
        for i in accepting(&self.routes, first, &Targets::All) {
            self.sends.push((i, Item::Run(run.clone()), bytes));
        }
        self.dispatch(at).await
    }

    /// Counts `count` changes read, up to `last`.
    fn note_read(&self, last: &ChangeEvent, count: usize) {
        let metrics = &self.metrics;
        metrics.events_read.fetch_add(count as u64, Relaxed);
        metrics.last_event_ms.store(last.source.ts_ms, Relaxed);
        metrics.last_read_ms.store(last.read_ts_ms, Relaxed);
    }

    /// Registers the record `sends` came from with the ack tracker, then sends them: false once
    /// the pipeline is ending.
    async fn dispatch(&mut self, (tracker, acked, room): Registry<'_>) -> bool {
        let deliveries = self.sends.len() as u32;
        let Some(seq) = register(tracker, acked, room, (deliveries, None)).await else {
            return false;
        };
        for (i, item, size) in self.sends.drain(..) {
            let events = item.events().len() as i64;
            self.counts[i].queued.fetch_add(events, Relaxed);
            if self.routes[i].tx.send((seq, item), size).await.is_err() {
                self.counts[i].queued.fetch_sub(events, Relaxed);
                return false; // the sink stopped; the pipeline is ending
            }
        }
        true
    }
}

/// Routes until the source closes its queue (the count of boundaries and changes), or until a
/// drain is requested between two transactions (the count, and the queue, for the next
/// configuration).
async fn route(
    mut records: QueueReceiver<SourceRecord>,
    mut fanout: Fanout,
    tracker: Tracker,
    acked: Arc<Notify>,
    max_in_flight: usize,
    (stop, drain): (Stop, Stop),
    mut save_first: Option<(PipelineConfig, Arc<CheckpointStore>)>,
) -> (u64, Option<QueueReceiver<SourceRecord>>) {
    let (metrics, controls) = (fanout.metrics.clone(), fanout.controls.clone());
    let mut count = 0;
    let mut in_transaction = false;
    // Bytes are counted from the last boundary of the previous generation on.
    let mut last_file = Some(lock_file(&metrics)).filter(|f| !f.is_empty());
    loop {
        let next = if in_transaction {
            records.recv().await
        } else {
            tokio::select! {
                next = records.recv(), if !drain.is_triggered() => next,
                _ = drain.wait() => return (count, Some(records)),
            }
        };
        let Some(Queued { item, bytes, .. }) = next else {
            return (count, None);
        };
        // Paused, the record taken waits here, and the reader behind the full queue; a drain
        // goes on to the end of the transaction.
        if controls.source.is_paused() && !drain.is_triggered() {
            tokio::select! {
                _ = controls.source.wait_open(&stop) => {}
                _ = drain.wait() => {}
            }
        }
        let room = (max_in_flight, &stop);
        in_transaction = !matches!(item, SourceRecord::Boundary(_));
        let sent = match item {
            SourceRecord::Boundary(position) => {
                note_snapshot(&metrics, &position);
                read_up_to(&metrics, &mut last_file, &position);
                count += 1;
                if register(&tracker, &acked, room, (0, Some(position)))
                    .await
                    .is_none()
                {
                    return (count, None);
                }
                if let Some((config, store)) = save_first.take() {
                    if let Err(e) = save_now(&config, &store, &tracker).await {
                        tracing::error!(error = %e, "cannot save the first checkpoint; stopping");
                        stop.trigger();
                        return (count, None);
                    }
                }
                if records.is_empty() {
                    // Caught up with the source: nothing read is waiting any more.
                    let read = metrics.last_read_ms.load(Relaxed);
                    metrics.last_event_ms.store(read, Relaxed);
                }
                continue;
            }
            SourceRecord::Change(event) => {
                count += 1;
                fanout.change(event, bytes, (&tracker, &acked, room)).await
            }
            SourceRecord::Run(run) => {
                count += run.len() as u64;
                fanout.run(run, bytes, (&tracker, &acked, room)).await
            }
        };
        if !sent {
            return (count, None);
        }
    }
}

/// Counts the binlog bytes from the last boundary to this one (a new file counts from its start),
/// and notes where reading is, for the bytes of lag.
fn read_up_to(metrics: &Metrics, last_file: &mut Option<String>, position: &Position) {
    let last_pos = metrics.read_pos.swap(position.pos, Relaxed);
    let start = match last_file {
        Some(file) if *file == position.file => last_pos,
        Some(_) => 0,
        None => position.pos,
    };
    metrics
        .bytes_read
        .fetch_add(position.pos.saturating_sub(start), Relaxed);
    if last_file.as_deref() != Some(position.file.as_str()) {
        *last_file = Some(position.file.clone());
        *metrics.read_file.lock().unwrap_or_else(|p| p.into_inner()) = position.file.clone();
    }
}

fn lock_file(metrics: &Metrics) -> String {
    metrics
        .read_file
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Keeps the snapshot progress a boundary carries for the status (none once it is done).
fn note_snapshot(metrics: &Metrics, position: &Position) {
    let progress = position.snapshot.as_ref().filter(|p| !p.is_done());
    let mut shown = metrics.snapshot.lock().unwrap_or_else(|p| p.into_inner());
    if shown.is_some() || progress.is_some() {
        *shown = progress.cloned();
    }
}

/// What one change (of `bytes` as the source sent it) becomes, and for which sinks (by route
/// index), with its size: the transforms' outputs each to the sinks they target and accept; or,
/// when the transforms fail, the change itself as rejected to every sink that takes its kind of
/// change.
fn fan_out(
    routes: &[Route],
    (event, bytes): (Arc<ChangeEvent>, usize),
    (transform, outputs, metrics): (&mut Option<Box<dyn Transform>>, &mut Vec<Output>, &Metrics),
    sends: &mut Vec<(usize, Item, usize)>,
) {
    let Some(transform) = transform else {
        for i in accepting(routes, &event, &Targets::All) {
            sends.push((i, Item::Event(event.clone()), bytes));
        }
        return;
    };
    outputs.clear();
    match transform.apply(event, outputs) {
        Ok(()) => {
            let count = outputs.len() as u64;
            metrics.transform_outputs.fetch_add(count, Relaxed);
            for o in outputs.drain(..) {
                let size = o.event.approx_size();
                for i in accepting(routes, &o.event, &o.targets) {
                    sends.push((i, Item::Event(o.event.clone()), size));
                }
            }
        }
        Err(Rejected { event, error }) => {
            metrics.transform_failures.fetch_add(1, Relaxed);
            // Every sink that takes its kind of change: which tables a sink takes is judged on
            // the transformed names, which a failed chain never gave (a replay judges again).
            let error: Arc<str> = error.into();
            for (i, route) in routes.iter().enumerate() {
                if route.takes_kind_of(&event) {
                    sends.push((i, Item::Rejected(event.clone(), error.clone()), bytes));
                }
            }
        }
    }
}

/// The routes (by index) that `targets` names and that accept `event`.
fn accepting<'a>(
    routes: &'a [Route],
    event: &'a ChangeEvent,
    targets: &'a Targets,
) -> impl Iterator<Item = usize> + 'a {
    let accepts = move |(i, r): &(usize, &Route)| targets.includes(*i) && r.accepts(event);
    routes.iter().enumerate().filter(accepts).map(|(i, _)| i)
}

/// Registers a record with the ack tracker once it holds fewer than `max_in_flight` records, so
/// that one stuck sink cannot make it grow without bound while the others go on: the record's
/// sequence number, or `None` when a stop ends the wait.
async fn register(
    tracker: &Tracker,
    acked: &Notify,
    (max_in_flight, stop): (usize, &Stop),
    (deliveries, boundary): (u32, Option<Position>),
) -> Option<Seq> {
    let mut boundary = boundary;
    // Room checked and taken under one lock.
    let mut try_register = || {
        let mut tracker = lock(tracker);
        (tracker.in_flight() < max_in_flight).then(|| tracker.register(deliveries, boundary.take()))
    };
    // The common case, without registering for a notification.
    if let Some(seq) = try_register() {
        return Some(seq);
    }
    loop {
        let notified = acked.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if let Some(seq) = try_register() {
            return Some(seq);
        }
        tokio::select! {
            _ = notified => {}
            _ = stop.wait() => return None,
        }
    }
}

/// A sink's counts and pause gate, and the pipeline's drain request.
struct SinkWatch {
    counts: Arc<SinkMetrics>,
    gate: Arc<Gate>,
    drain: Stop,
}

/// Ends a sink's worker: once drained for a reload, the sink stays open for the next
/// configuration; otherwise it is closed.
async fn finish(
    spec: SinkSpec,
    drain: &Stop,
    stop: &Stop,
) -> Result<Option<SinkSpec>, PipelineError> {
    if drain.is_triggered() && !stop.is_triggered() {
        return Ok(Some(spec));
    }
    let SinkSpec { mut sink, name, .. } = spec;
    sink.close()
        .await
        .map(|()| None)
        .map_err(|source| PipelineError::Sink { sink: name, source })
}

async fn sink_worker(
    mut spec: SinkSpec,
    watch: SinkWatch,
    mut rx: QueueReceiver<SinkItem>,
    tracker: Tracker,
    acked: Arc<Notify>,
    stop: Stop,
) -> Result<Option<SinkSpec>, PipelineError> {
    let mut queued = Vec::new();
    // Taken past the end of a transaction, for the next batch (`whole_transactions`).
    let mut carry = Vec::new();
    let mut batch = Vec::new();
    let counts = &watch.counts;
    counts
        .failure_log_records
        .store(spec.delivery.log_len() as u64, Relaxed);
    // The delivery's totals so far are counted already (a sink kept open by a reload).
    let (mut logged, mut retried) = (spec.delivery.logged, spec.delivery.retries);
    let outcome = loop {
        if !carry.is_empty() {
            queued.append(&mut carry);
        } else if rx.recv_many(&mut queued, spec.batch_max_events).await == 0 {
            break Ok(());
        }
        let held = (&mut queued, &mut carry);
        if spec.whole_transactions {
            complete_transactions(&mut rx, held, &tracker, &spec.name).await;
        } else {
            keep_events(held, spec.batch_max_events);
        }
        let events = event_count(&queued);
        let firsts = queued.iter().filter_map(|q| q.item.1.events().first());
        let oldest = firsts.map(|e| e.read_ts_ms);
        counts
            .holding_since_ms
            .store(oldest.min().unwrap_or(0).max(1), Relaxed);
        // Paused, the batch taken waits here, counted as still queued; stopping while paused,
        // it is left unacknowledged (the sink may be down: that is why it was paused), for the
        // next start to deliver.
        if !pass_gate(&watch.gate, &stop).await {
            tracing::warn!(sink = %spec.name, events, "stopping while paused: the sink's pending changes are left for the next start");
            break Ok(());
        }
        counts.queued.fetch_sub(events as i64, Relaxed);
        let items = queued.iter().map(|q| &q.item.1);
        let delivered = deliver_items(&mut spec, items, (&mut batch, counts), &stop).await;
        counts
            .failure_log_records
            .store(spec.delivery.log_len() as u64, Relaxed);
        let delivery = &spec.delivery;
        counts.failures.fetch_add(delivery.logged - logged, Relaxed);
        counts
            .retries
            .fetch_add(delivery.retries - retried, Relaxed);
        (logged, retried) = (delivery.logged, delivery.retries);
        if let Some(error) = &delivery.last_error {
            *counts.last_error.lock().unwrap_or_else(|p| p.into_inner()) = error.clone();
        }
        if let Err(e) = delivered {
            break Err(e);
        }
        counts.delivered.fetch_add(events as u64, Relaxed);
        let now = crate::event::now_ms();
        for e in queued.iter().flat_map(|q| q.item.1.events()) {
            counts.latency.observe(now.saturating_sub(e.read_ts_ms));
        }
        let acked_all = {
            let mut tracker = lock(&tracker);
            queued.iter().try_for_each(|q| tracker.ack(q.item.0))
        };
        if let Err(e) = acked_all {
            break Err(PipelineError::Internal(e.to_string()));
        }
        counts.holding_since_ms.store(0, Relaxed);
        acked.notify_waiters();
        release_all(&mut queued);
    };
    // What the worker held or left in its queue is no longer waiting for it.
    counts.holding_since_ms.store(0, Relaxed);
    counts.queued.store(0, Relaxed);
    outcome?;
    finish(spec, &watch.drain, &stop).await
}

/// Waits while the sink is paused: true once open, false when stopping while paused (a pause
/// that comes again just after a resume is waited out too).
async fn pass_gate(gate: &Gate, stop: &Stop) -> bool {
    loop {
        gate.wait_open(stop).await;
        if !gate.is_paused() {
            return true;
        }
        if stop.is_triggered() {
            return false;
        }
    }
}

/// How often a worker holding part of a transaction looks for its end, and how long it waits
/// without progress before delivering what it holds.
const TRANSACTION_POLL: Duration = Duration::from_millis(1);
const TRANSACTION_STALL: Duration = Duration::from_secs(1);

/// Receives until the batch ends where a source transaction ends, so that it holds whole
/// transactions: once the boundary after the last change held is registered, every change of
/// this sink before it is in the queue (the router sends a record's items before registering the
/// next record), so those are taken, and any taken beyond the boundary are carried to the next
/// batch. A transaction larger than the sink's queue cannot be held whole: after
/// `TRANSACTION_STALL` without progress the worker delivers what it holds.
async fn complete_transactions(
    rx: &mut QueueReceiver<SinkItem>,
    (queued, carry): (&mut Vec<Queued<SinkItem>>, &mut Vec<Queued<SinkItem>>),
    tracker: &Tracker,
    sink: &str,
) {
    let mut stalled = Duration::ZERO;
    while let Some(last) = queued.last().map(|q| q.item.0) {
        let end = lock(tracker).boundary_after(last);
        if let Some(end) = end {
            while let Some(next) = rx.try_recv() {
                if next.item.0 > end {
                    carry.push(next);
                    break;
                }
                queued.push(next);
            }
            return;
        }
        match tokio::time::timeout(TRANSACTION_POLL, rx.recv_many(queued, 10_000)).await {
            Ok(0) => return, // the queue closed: the pipeline is ending
            Ok(_) => stalled = Duration::ZERO,
            Err(_) => {
                stalled += TRANSACTION_POLL;
                if stalled >= TRANSACTION_STALL {
                    tracing::warn!(%sink, events = event_count(queued), "a transaction larger than the sink's queue: delivering it in parts");
                    return;
                }
            }
        }
    }
}

/// The changes the items carry.
fn event_count(queued: &[Queued<SinkItem>]) -> usize {
    queued.iter().map(|q| q.item.1.events().len()).sum()
}

/// Keeps the items taken up to the one that brings them to `max_events` changes, and carries the
/// rest to the next batch (runs carry many changes per item).
fn keep_events(
    (queued, carry): (&mut Vec<Queued<SinkItem>>, &mut Vec<Queued<SinkItem>>),
    max_events: usize,
) {
    let mut events = 0;
    let full = queued.iter().position(|q| {
        events += q.item.1.events().len();
        events >= max_events
    });
    if let Some(last) = full.filter(|&last| last + 1 < queued.len()) {
        let rest = queued.split_off(last + 1);
        carry.splice(0..0, rest);
    }
}

/// Delivers what the router sent, through the sink's own transforms, to the sink in parts of at
/// most `batch_max_events` (unless it takes whole transactions); a change a transform failed on
/// goes to the failure log in its place, after what came before it.
async fn deliver_items(
    spec: &mut SinkSpec,
    items: impl Iterator<Item = &Item>,
    (batch, counts): (&mut Vec<Arc<ChangeEvent>>, &SinkMetrics),
    stop: &Stop,
) -> Result<(), PipelineError> {
    let mut outputs = Vec::new();
    let part = match spec.whole_transactions {
        true => usize::MAX,
        false => spec.batch_max_events.max(1),
    };
    for item in items {
        if let Item::Rejected(e, error) = item {
            let rejected = (e.clone(), &**error, "pipeline");
            deliver_then_reject(spec, (batch, counts), rejected, stop).await?;
            continue;
        }
        for e in item.events() {
            match spec.transform.as_deref_mut() {
                None => batch.push(e.clone()),
                Some(transform) => match transform.apply(e.clone(), &mut outputs) {
                    Ok(()) => batch.extend(outputs.drain(..).map(|o| o.event)),
                    Err(Rejected { event, error }) => {
                        let rejected = (event, &*error, "sink");
                        deliver_then_reject(spec, (batch, counts), rejected, stop).await?;
                    }
                },
            }
            if batch.len() >= part {
                write(spec, (batch, counts), stop).await?;
            }
        }
    }
    write(spec, (batch, counts), stop).await
}

/// Hands the sink the batch so far (counted as a batch when it holds any), and empties it.
async fn write(
    spec: &mut SinkSpec,
    (batch, counts): (&mut Vec<Arc<ChangeEvent>>, &SinkMetrics),
    stop: &Stop,
) -> Result<(), PipelineError> {
    if !batch.is_empty() {
        counts.batches.fetch_add(1, Relaxed);
        counts.batch_sizes.observe(batch.len() as u64);
    }
    spec.delivery.deliver(&mut *spec.sink, batch, stop).await?;
    batch.clear();
    Ok(())
}

/// Delivers the batch so far, then logs a change that failed at `stage` as rejected.
async fn deliver_then_reject(
    spec: &mut SinkSpec,
    held: (&mut Vec<Arc<ChangeEvent>>, &SinkMetrics),
    (event, error, stage): (Arc<ChangeEvent>, &str, &str),
    stop: &Stop,
) -> Result<(), PipelineError> {
    write(spec, held, stop).await?;
    let rejected = [(event, error.to_string())];
    spec.delivery.reject(&rejected, stage)?;
    Ok(())
}

async fn flush_periodically(
    config: PipelineConfig,
    store: Arc<CheckpointStore>,
    tracker: Tracker,
    stop: Stop,
    done: Arc<Notify>,
) -> Result<(), PipelineError> {
    let mut saved_version = lock(&tracker).version();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(config.checkpoint_interval) => {}
            _ = done.notified() => return Ok(()),
        }
        let version = lock(&tracker).version();
        if version == saved_version {
            continue;
        }
        if let Err(e) = save_now(&config, &store, &tracker).await {
            tracing::error!(error = %e, "cannot save the checkpoint; stopping");
            stop.trigger();
            return Err(e);
        }
        saved_version = version;
    }
}

async fn save_now(
    config: &PipelineConfig,
    store: &Arc<CheckpointStore>,
    tracker: &Tracker,
) -> Result<Option<Position>, PipelineError> {
    let Some(position) = lock(tracker).checkpoint().cloned() else {
        return Ok(None);
    };
    let (store, source, to_save) = (store.clone(), config.source.clone(), position.clone());
    tokio::task::spawn_blocking(move || store.save(&source, &to_save))
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))??;
    let metrics = &config.metrics;
    metrics
        .checkpoint_saved_ms
        .store(crate::event::now_ms(), Relaxed);
    *metrics.checkpoint.lock().unwrap_or_else(|p| p.into_inner()) = position.to_string();
    tracing::debug!(%position, "checkpoint saved");
    Ok(Some(position))
}

fn lock(tracker: &Tracker) -> std::sync::MutexGuard<'_, AckTracker> {
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Creates the source's queue with the pipeline's limits.
pub fn source_queue(
    limits: QueueLimits,
) -> (QueueSender<SourceRecord>, QueueReceiver<SourceRecord>) {
    bounded(limits)
}

#[cfg(test)]
mod tests;
