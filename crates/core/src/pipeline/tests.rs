//! The pipeline's tests: routing, batching, checkpoints, drains, transforms and failures, with
//! in-memory sinks.

use super::*;
use crate::delivery::DeliveryPolicy;
use crate::event::{Op, Row};
use crate::failure::FailureLog;
use crate::sink::BoxFuture;

/// An in-memory sink that records what it was given; optionally fails permanently.
struct Recorder {
    seen: Arc<Mutex<Vec<String>>>,
    fail: bool,
}

/// A sink whose writes never finish.
struct Stuck;

impl Sink for Stuck {
    fn write<'a>(&'a mut self, _: &'a [Arc<ChangeEvent>]) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_sink_bounds_what_the_tracker_holds() {
    let (store, dir) = temp_store("stuck");
    let (fast, seen) = spec("fast", &["db.x"], false);
    let stuck = SinkSpec {
        whole_transactions: false,
        name: "stuck".into(),
        sink: Box::new(Stuck),
        tables: TableFilter::new(&["db.y".to_string()], &[]).unwrap(),
        batch_max_events: 2,
        schema_changes: false,
        delivery: delivery("stuck", DeliveryPolicy::default()),
        transform: None,
    };
    let (tx, rx) = source_queue(QueueLimits {
        max_items: 10,
        max_bytes: 1 << 20,
    });
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        let mut records = vec![change("y")];
        records.extend((0..10_000).map(|_| change("x")));
        for r in records {
            let size = r.approx_size();
            if tx.send(r, size).await.is_err() {
                return;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let stop = Stop::default();
    let pipeline = tokio::spawn(run(
        config(),
        rx,
        None,
        vec![fast, stuck],
        store,
        None,
        stop.clone(),
    ));
    // Virtual time: this sleep ends only once every task is blocked.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let max = config().max_in_flight();
    let sent = sent.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < max + 100,
        "the reader is held back: {sent} sent, bound {max}"
    );
    assert!(
        seen.lock().unwrap().len() >= max - 10,
        "the other sink went on until the bound"
    );
    pipeline.abort();
    std::fs::remove_dir_all(dir).unwrap();
}

impl Sink for Recorder {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            if self.fail {
                return Err(SinkError::permanent("rejected"));
            }
            let mut seen = self.seen.lock().unwrap();
            seen.extend(batch.iter().map(|e| e.qualified_table()));
            Ok(())
        })
    }
}

fn change(table: &str) -> SourceRecord {
    SourceRecord::Change(Arc::new(ChangeEvent {
        partition_key: None,
        origin: None,
        op: Op::Insert,
        db: "db".into(),
        table: table.into(),
        key: Row::default(),
        before: None,
        after: Some(Row::default()),
        source: crate::fixture::source("b.1", 4, false),
        read_ts_ms: 0,
        ddl: None,
    }))
}

fn spec(name: &str, tables: &[&str], fail: bool) -> (SinkSpec, Arc<Mutex<Vec<String>>>) {
    spec_with(name, tables, fail, DeliveryPolicy::default())
}

fn delivery(name: &str, policy: DeliveryPolicy) -> Delivery {
    let path = std::env::temp_dir().join(format!(
        "rowbus-pipeline-failures-{name}-{}-{:?}.log",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_file(&path);
    let log = FailureLog::open(&path).unwrap();
    // The open log keeps working; the test leaves no file behind.
    std::fs::remove_file(&path).unwrap();
    Delivery::new(name, policy, log)
}

fn spec_with(
    name: &str,
    tables: &[&str],
    fail: bool,
    policy: DeliveryPolicy,
) -> (SinkSpec, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let include: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
    let spec = SinkSpec {
        whole_transactions: false,
        name: name.into(),
        sink: Box::new(Recorder {
            seen: seen.clone(),
            fail,
        }),
        tables: TableFilter::new(&include, &[]).unwrap(),
        batch_max_events: 2,
        schema_changes: false,
        delivery: delivery(name, policy),
        transform: None,
    };
    (spec, seen)
}

fn temp_store(name: &str) -> (Arc<CheckpointStore>, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("rowbus-pipeline-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    (Arc::new(CheckpointStore::open(&dir).unwrap()), dir)
}

fn config() -> PipelineConfig {
    let sinks: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    PipelineConfig {
        source: "s".into(),
        metrics: Arc::new(Metrics::new("s", &sinks)),
        controls: Arc::new(Controls::new(&sinks)),
        queue: QueueLimits {
            max_items: 4,
            max_bytes: 1 << 20,
        },
        checkpoint_interval: Duration::from_millis(10),
    }
}

/// Runs a pipeline over `records` to the end: its report.
async fn run_all(
    config: PipelineConfig,
    records: Vec<SourceRecord>,
    transform: Option<Box<dyn Transform>>,
    sinks: Vec<SinkSpec>,
    store: &Arc<CheckpointStore>,
) -> PipelineReport {
    let rx = feed(records).await;
    let stop = Stop::default();
    run(config, rx, transform, sinks, store.clone(), None, stop)
        .await
        .unwrap()
}

async fn feed(records: Vec<SourceRecord>) -> QueueReceiver<SourceRecord> {
    let (tx, rx) = source_queue(QueueLimits {
        max_items: 100,
        max_bytes: 1 << 20,
    });
    tokio::spawn(async move {
        for r in records {
            let size = r.approx_size();
            tx.send(r, size).await.unwrap();
        }
    });
    rx
}

#[tokio::test]
async fn a_drain_ends_at_the_next_boundary_and_hands_back_the_queue_and_the_sinks() {
    let (store, dir) = temp_store("drain");
    let (a, seen) = spec("a", &[], false);
    let (tx, rx) = source_queue(QueueLimits {
        max_items: 100,
        max_bytes: 1 << 20,
    });
    async fn put(tx: &QueueSender<SourceRecord>, record: SourceRecord) {
        let size = record.approx_size();
        assert!(tx.send(record, size).await.is_ok());
    }
    put(&tx, change("x")).await;
    put(&tx, SourceRecord::Boundary(Position::new("b.1", 100))).await;
    put(&tx, change("y")).await;
    let (stop, drain) = (Stop::default(), Stop::default());
    let parts = Parts {
        records: rx,
        transform: None,
        sinks: vec![a],
    };
    let generation = tokio::spawn(run_until_drained(
        config(),
        parts,
        store.clone(),
        None,
        stop,
        drain.clone(),
    ));
    // In the middle of the second transaction, the drain waits for its end.
    for _ in 0..10_000 {
        if seen.lock().unwrap().len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(*seen.lock().unwrap(), ["db.x", "db.y"]);
    drain.trigger();
    put(&tx, SourceRecord::Boundary(Position::new("b.1", 200))).await;
    put(&tx, change("z")).await;
    let (report, drained) = generation.await.unwrap();
    let report = report.unwrap();
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 200)));
    assert_eq!(report.records, 4);
    let drained = drained.expect("drained, not stopped");
    assert_eq!(drained.sinks.len(), 1);
    assert_eq!(*seen.lock().unwrap(), ["db.x", "db.y"]);
    // The next generation goes on from the record after the boundary, with the same sink.
    drop(tx);
    let report = run(
        config(),
        drained.records,
        None,
        drained.sinks,
        store.clone(),
        report.checkpoint,
        Stop::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.records, 1);
    assert_eq!(*seen.lock().unwrap(), ["db.x", "db.y", "db.z"]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A sink that records the size of each batch it is handed.
struct Batches(Arc<Mutex<Vec<usize>>>);

impl Sink for Batches {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0.lock().unwrap().push(batch.len());
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn whole_transaction_batches_end_where_transactions_end() {
    // Batches smaller and larger than the sink's queue (4 events, `config()`); the second
    // transaction holds a run.
    for batch_max_events in [2, 10] {
        let (store, dir) = temp_store(&format!("whole-{batch_max_events}"));
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let spec = SinkSpec {
            whole_transactions: true,
            name: "a".into(),
            sink: Box::new(Batches(sizes.clone())),
            tables: TableFilter::new(&[], &[]).unwrap(),
            batch_max_events,
            schema_changes: false,
            delivery: delivery("whole", DeliveryPolicy::default()),
            transform: None,
        };
        let boundary = |pos| SourceRecord::Boundary(Position::new("b.1", pos));
        let mut records: Vec<SourceRecord> = (0..3).map(|_| change("x")).collect();
        records.push(boundary(100));
        records.extend([run_of("x", 1..=3, 110), change("x"), boundary(200)]);
        records.extend([change("x"), boundary(300)]);
        let report = run_all(config(), records, None, vec![spec], &store).await;
        assert_eq!(report.checkpoint, Some(Position::new("b.1", 300)));
        let sizes = sizes.lock().unwrap().clone();
        let ends: Vec<usize> = sizes
            .iter()
            .scan(0, |sum, n| {
                *sum += n;
                Some(*sum)
            })
            .collect();
        assert_eq!(ends.last(), Some(&8), "{sizes:?}");
        assert!(ends.iter().all(|e| [3, 7, 8].contains(e)), "{sizes:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test]
async fn routes_by_table_and_checkpoints_after_every_sink() {
    let (store, dir) = temp_store("fanout");
    let (a, seen_a) = spec("a", &["db.x"], false);
    let (b, seen_b) = spec("b", &[], false);
    // The first boundary carries a snapshot in progress; the last, none: it is done.
    let mut snapshotting = Position::new("b.1", 100);
    let mut progress = crate::snapshot::SnapshotProgress::default();
    let mut table = crate::snapshot::TableProgress::new("db.big", None);
    table.rows = 20_000;
    progress.request(table);
    snapshotting.snapshot = Some(Arc::new(progress));
    let records = vec![
        change("x"),
        change("y"),
        SourceRecord::Boundary(snapshotting),
        change("x"),
    ];
    let config = config();
    let watched = config.metrics.clone();
    let metrics = config.metrics.clone();
    let report = run_all(config, records, None, vec![a, b], &store).await;
    assert_eq!(*seen_a.lock().unwrap(), vec!["db.x", "db.x"]);
    assert_eq!(*seen_b.lock().unwrap(), vec!["db.x", "db.y", "db.x"]);
    let status = serde_json::to_value(watched.status(crate::event::now_ms())).unwrap();
    assert_eq!(
        status["snapshot"],
        serde_json::json!([{"table": "db.big", "rows": 20000}])
    );
    note_snapshot(&watched, &Position::new("b.1", 200));
    assert!(watched.status(0).snapshot.is_none());
    assert_eq!(
        report.checkpoint.map(|p| p.to_string()),
        Some("b.1:100".to_string())
    );
    let status = serde_json::to_value(metrics.status(crate::event::now_ms())).unwrap();
    assert_eq!(status["events_read"], 3);
    assert_eq!(status["checkpoint"], "b.1:100");
    let delivered: Vec<(&str, u64, i64)> = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = s["name"].as_str().unwrap();
            (
                name,
                s["delivered"].as_u64().unwrap(),
                s["queued"].as_i64().unwrap(),
            )
        })
        .collect();
    // The status lists the sinks running (`c` was only counted before the pipeline ran).
    assert_eq!(delivered, [("a", 2, 0), ("b", 3, 0)]);
    let text = metrics.prometheus(crate::event::now_ms());
    assert!(
        text.contains("rowbus_sink_events_delivered_total{source=\"s\",sink=\"b\"} 3\n"),
        "{text}"
    );
    for line in [
        "rowbus_sink_latency_seconds_bucket{source=\"s\",sink=\"b\",le=\"+Inf\"} 3\n",
        "rowbus_sink_latency_seconds_count{source=\"s\",sink=\"b\"} 3\n",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // Saved with the snapshot's progress.
    let saved = store.load("s").unwrap().unwrap().position;
    assert_eq!(
        (saved.to_string(), saved.snapshot.is_some()),
        ("b.1:100".into(), true)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Drops table `drop`, fails on `bad`, sends a second `x` to sink 1 only.
struct Shaper;

impl Transform for Shaper {
    fn apply(&mut self, e: Arc<ChangeEvent>, out: &mut Vec<Output>) -> Result<(), Rejected> {
        match &*e.table {
            "drop" => return Ok(()),
            "bad" => {
                return Err(Rejected {
                    event: e,
                    error: "bad refused".into(),
                })
            }
            _ => {}
        }
        out.push(Output {
            event: e.clone(),
            targets: Targets::All,
        });
        if &*e.table == "x" {
            out.push(Output {
                event: e.clone(),
                targets: Targets::Only(vec![1].into()),
            });
        }
        Ok(())
    }
}

/// A sink's transform: fails on one table.
struct FailOn(&'static str);

impl Transform for FailOn {
    fn apply(&mut self, e: Arc<ChangeEvent>, out: &mut Vec<Output>) -> Result<(), Rejected> {
        if &*e.table == self.0 {
            return Err(Rejected {
                error: format!("{} refused", self.0),
                event: e,
            });
        }
        out.push(Output {
            event: e.clone(),
            targets: Targets::All,
        });
        Ok(())
    }
}

#[tokio::test]
async fn transforms_route_copy_drop_and_send_their_failures_to_the_log() {
    let (store, dir) = temp_store("transforms");
    let log_path = |name: &str| dir.join(format!("{name}.failures"));
    let mut specs = Vec::new();
    let mut seen = Vec::new();
    // b does not take db.bad by name, yet logs its rejection: a failed chain gave no name.
    for (name, fail_on, tables) in [("a", "-", &[][..]), ("b", "y", &["db.x", "db.y"][..])] {
        let (mut spec, recorded) = spec(name, tables, false);
        spec.delivery = Delivery::new(
            name,
            DeliveryPolicy::default(),
            FailureLog::open(&log_path(name)).unwrap(),
        );
        spec.transform = Some(Box::new(FailOn(fail_on)));
        specs.push(spec);
        seen.push(recorded);
    }
    let records = vec![
        change("x"),
        change("drop"),
        change("bad"),
        change("y"),
        SourceRecord::Boundary(Position::new("b.1", 100)),
    ];
    let pipeline_transform: Box<dyn Transform> = Box::new(Shaper);
    let report = run_all(config(), records, Some(pipeline_transform), specs, &store).await;
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 100)));
    assert_eq!(*seen[0].lock().unwrap(), vec!["db.x", "db.y"]);
    assert_eq!(*seen[1].lock().unwrap(), vec!["db.x", "db.x"]);
    let logged = |name: &str| -> Vec<(String, String, String)> {
        let (records, _) = crate::failure::log::read(&log_path(name)).unwrap();
        records
            .into_iter()
            .map(|r| (r.table, r.untransformed, r.error))
            .collect()
    };
    let entry = |t: &str, stage: &str, error: &str| (t.into(), stage.into(), error.into());
    assert_eq!(
        logged("a"),
        [entry("db.bad", "pipeline", "transform: bad refused")]
    );
    assert_eq!(
        logged("b"),
        [
            entry("db.bad", "pipeline", "transform: bad refused"),
            entry("db.y", "sink", "transform: y refused"),
        ]
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_rejected_event_goes_to_the_failure_log_and_the_stream_goes_on() {
    let (store, dir) = temp_store("rejected");
    let (good, seen) = spec("good", &[], false);
    let (bad, _) = spec("bad", &["db.y"], true);
    let records = vec![
        change("x"),
        SourceRecord::Boundary(Position::new("b.1", 100)),
        change("y"),
        SourceRecord::Boundary(Position::new("b.1", 200)),
    ];
    let report = run_all(config(), records, None, vec![good, bad], &store).await;
    assert_eq!(*seen.lock().unwrap(), vec!["db.x", "db.y"]);
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 200)));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn too_many_failures_stop_the_pipeline_without_advancing_past_them() {
    let (store, dir) = temp_store("guard");
    let (good, _) = spec("good", &[], false);
    // Both rows are tried (the rows have no key: parked behind the first otherwise).
    let policy = DeliveryPolicy {
        max_failures: 1,
        on_failure: crate::delivery::OnFailure::SkipEvent,
        ..DeliveryPolicy::default()
    };
    let (bad, _) = spec_with("guarded", &["db.y"], true, policy);
    let records = vec![
        change("x"),
        SourceRecord::Boundary(Position::new("b.1", 100)),
        change("y"),
        change("y"),
        SourceRecord::Boundary(Position::new("b.1", 200)),
    ];
    let rx = feed(records).await;
    let stop = Stop::default();
    let err = run(
        config(),
        rx,
        None,
        vec![good, bad],
        store.clone(),
        None,
        stop.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().starts_with(
            "sink `guarded`: 2 events failed within 60s, more than max_failures allows"
        ) && err.to_string().ends_with("(last error: rejected)"),
        "{err}"
    );
    assert!(stop.is_triggered(), "the source is told to stop");
    assert_eq!(
        store.load("s").unwrap().unwrap().position,
        Position::new("b.1", 100)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run of `ids.len()` changes of `db.table` read from one rows event at `pos`, keyed by `ids`.
fn run_of(table: &str, ids: std::ops::RangeInclusive<i64>, pos: u64) -> SourceRecord {
    let source = crate::fixture::source("b.1", pos, false);
    let row = |id| Row {
        columns: vec![Arc::from("id")].into(),
        values: vec![crate::Value::Int(id)],
    };
    let change = |id| {
        let event = crate::fixture::change(
            Op::Insert,
            ("db", table),
            None,
            Some(row(id)),
            source.clone(),
        );
        Arc::new(event)
    };
    SourceRecord::Run(ids.map(change).collect())
}

/// A change as `table` and key, `y2`.
fn named(e: &ChangeEvent) -> String {
    match e.key.values.first() {
        Some(crate::Value::Int(id)) => format!("{}{id}", e.table),
        _ => e.table.to_string(),
    }
}

/// A sink that records each batch it is handed, as `named` changes.
struct Batched(Arc<Mutex<Vec<Vec<String>>>>);

impl Sink for Batched {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.0
            .lock()
            .unwrap()
            .push(batch.iter().map(|e| named(e)).collect());
        Box::pin(async { Ok(()) })
    }
}

fn parts_spec(name: &str, tables: &[&str]) -> (SinkSpec, Arc<Mutex<Vec<Vec<String>>>>) {
    let (mut spec, _) = spec(name, tables, false);
    let parts = Arc::new(Mutex::new(Vec::new()));
    spec.sink = Box::new(Batched(parts.clone()));
    (spec, parts)
}

#[tokio::test]
async fn runs_reach_the_sinks_that_take_their_table_in_order_in_parts_of_batch_max_events() {
    let (store, dir) = temp_store("runs");
    // batch_max_events = 2
    let (a, parts_a) = parts_spec("a", &["db.x"]);
    let (b, parts_b) = parts_spec("b", &[]);
    let records = vec![
        run_of("x", 1..=5, 10),
        change("y"),
        SourceRecord::Boundary(Position::new("b.1", 100)),
        run_of("y", 1..=3, 110),
        SourceRecord::Boundary(Position::new("b.1", 200)),
    ];
    let config = config();
    let metrics = config.metrics.clone();
    let report = run_all(config, records, None, vec![a, b], &store).await;
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 200)));
    assert_eq!(report.records, 11, "boundaries and changes");
    let delivered = |parts: &Arc<Mutex<Vec<Vec<String>>>>| {
        let parts = parts.lock().unwrap().clone();
        assert!(
            parts.iter().all(|p| (1..=2).contains(&p.len())),
            "{parts:?}"
        );
        parts.concat()
    };
    assert_eq!(delivered(&parts_a), ["x1", "x2", "x3", "x4", "x5"]);
    assert_eq!(
        delivered(&parts_b),
        ["x1", "x2", "x3", "x4", "x5", "y", "y1", "y2", "y3"]
    );
    let status = serde_json::to_value(metrics.status(crate::event::now_ms())).unwrap();
    assert_eq!(status["events_read"], 9);
    let counted: Vec<(u64, i64)> = status["sinks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["delivered"].as_u64().unwrap(),
                s["queued"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, [(5, 0), (9, 0)]);
    // Each write to the sink is a batch: the run of 5 went to a in 3.
    let writes = parts_a.lock().unwrap().len();
    assert_eq!(writes, 3);
    let text = metrics.prometheus(crate::event::now_ms());
    for line in [
        "rowbus_sink_batches_total{source=\"s\",sink=\"a\"} 3\n",
        "rowbus_sink_batch_events_count{source=\"s\",sink=\"a\"} 3\n",
        "rowbus_sink_batch_events_sum{source=\"s\",sink=\"a\"} 5\n",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    assert_eq!(
        store.load("s").unwrap().unwrap().position,
        Position::new("b.1", 200)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn runs_go_through_transforms_change_by_change() {
    let (store, dir) = temp_store("run-transforms");
    let log_path = |name: &str| dir.join(format!("{name}.failures"));
    let (mut a, parts_a) = parts_spec("a", &[]);
    let (mut b, parts_b) = parts_spec("b", &[]);
    // b's own transform refuses db.y, in the middle of a run.
    a.transform = Some(Box::new(FailOn("-")));
    b.transform = Some(Box::new(FailOn("y")));
    b.delivery = Delivery::new(
        "b",
        DeliveryPolicy::default(),
        FailureLog::open(&log_path("b")).unwrap(),
    );
    let records = vec![
        run_of("x", 1..=2, 10),
        run_of("y", 1..=2, 20),
        run_of("x", 3..=4, 30),
        SourceRecord::Boundary(Position::new("b.1", 100)),
    ];
    let report = run_all(config(), records, None, vec![a, b], &store).await;
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 100)));
    let all = |parts: &Arc<Mutex<Vec<Vec<String>>>>| parts.lock().unwrap().concat();
    assert_eq!(all(&parts_a), ["x1", "x2", "y1", "y2", "x3", "x4"]);
    assert_eq!(all(&parts_b), ["x1", "x2", "x3", "x4"]);
    let (logged, _) = crate::failure::log::read(&log_path("b")).unwrap();
    let logged: Vec<(String, String)> = logged
        .into_iter()
        .map(|r| (r.table, r.untransformed))
        .collect();
    assert_eq!(
        logged,
        [
            ("db.y".into(), "sink".into()),
            ("db.y".into(), "sink".into())
        ]
    );

    // The pipeline's transforms take a run apart: Shaper sends each x a second time to sink 1.
    let (a, parts_a) = parts_spec("a", &[]);
    let (b, parts_b) = parts_spec("b", &[]);
    let shaper: Box<dyn Transform> = Box::new(Shaper);
    let report = run_all(
        config(),
        vec![
            run_of("x", 1..=2, 10),
            SourceRecord::Boundary(Position::new("b.1", 100)),
        ],
        Some(shaper),
        vec![a, b],
        &store,
    )
    .await;
    assert_eq!(report.checkpoint, Some(Position::new("b.1", 100)));
    assert_eq!(all(&parts_a), ["x1", "x2"]);
    assert_eq!(all(&parts_b), ["x1", "x1", "x2", "x2"]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_batch_keeps_items_up_to_its_events_and_carries_the_rest() {
    let (tx, mut rx) = bounded::<SinkItem>(QueueLimits {
        max_items: 10,
        max_bytes: 1 << 20,
    });
    let SourceRecord::Run(run) = run_of("x", 1..=3, 10) else {
        unreachable!()
    };
    let one = |id: usize| Item::Event(run[id].clone());
    for (seq, item) in [one(0), Item::Run(run.clone()), one(1), one(2)]
        .into_iter()
        .enumerate()
    {
        assert!(tx.send((seq as Seq, item), 1).await.is_ok());
    }
    let (mut queued, mut carry) = (Vec::new(), Vec::new());
    assert_eq!(rx.recv_many(&mut queued, 10).await, 4);
    keep_events((&mut queued, &mut carry), 10);
    assert_eq!((queued.len(), carry.len()), (4, 0), "6 events fit in 10");
    // 1 + 3 reaches 3: the item that reaches it is kept, the rest carried in order.
    keep_events((&mut queued, &mut carry), 3);
    let seqs = |items: &[Queued<SinkItem>]| items.iter().map(|q| q.item.0).collect::<Vec<_>>();
    assert_eq!((seqs(&queued), seqs(&carry)), (vec![0, 1], vec![2, 3]));
}
