//! What the pipeline counts while it runs, for the admin API: per source, changes read, lag and
//! the checkpoint; per sink, changes delivered, failures, retries, queue fill and the last error.
//! Plain atomics, written on the hot path without locks; rendered as Prometheus text (stable names
//! `rowbus_<noun>_<unit>[_total]`, labels `source` and `sink` only) and as the status JSON.

use crate::snapshot::SnapshotProgress;
use serde::Serialize;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::sync::{Mutex, RwLock};

#[derive(Debug, Default)]
pub struct Metrics {
    pub source: String,
    /// Row changes the router took from the source.
    pub events_read: AtomicU64,
    /// When the last change was written on the server, and when rowbus read it (ms since epoch).
    pub last_event_ms: AtomicU64,
    pub last_read_ms: AtomicU64,
    /// When the checkpoint was last saved (ms since epoch; 0 before the first).
    pub checkpoint_saved_ms: AtomicU64,
    pub checkpoint: Mutex<String>,
    /// The snapshot in progress, as the last boundary the source emitted carried it.
    pub snapshot: Mutex<Option<Arc<SnapshotProgress>>>,
    /// How many changes a sink's queue holds at most (its fill is `queued` over this).
    pub queue_capacity: u64,
    /// A sink whose oldest held change waited this long is shown as stuck (ms).
    pub stuck_after_ms: u64,
    /// The running sinks, in the order of the configuration; a reload replaces the list and
    /// keeps the counts of the sinks it keeps.
    sinks: RwLock<Vec<Arc<SinkMetrics>>>,
}

#[derive(Debug, Default)]
pub struct SinkMetrics {
    pub name: String,
    pub delivered: AtomicU64,
    pub batches: AtomicU64,
    pub failures: AtomicU64,
    pub retries: AtomicU64,
    /// Changes routed to the sink and not yet taken by its worker.
    pub queued: AtomicI64,
    pub last_error: Mutex<String>,
    /// When rowbus read the oldest change the sink's worker holds (ms since epoch; 0: none).
    pub holding_since_ms: AtomicU64,
    /// From when rowbus read a change to when the sink acknowledged it.
    pub latency: Histogram,
}

impl SinkMetrics {
    /// How long the oldest change the sink holds has waited since rowbus read it, in seconds.
    pub fn lag_seconds(&self, now_ms: u64) -> f64 {
        match self.holding_since_ms.load(Relaxed) {
            0 => 0.0,
            since => now_ms.saturating_sub(since) as f64 / 1000.0,
        }
    }
}

/// Upper bounds of the latency buckets, in milliseconds.
const LATENCY_BUCKETS_MS: [u64; 13] = [
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
];

/// A Prometheus histogram of milliseconds, rendered in seconds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket of `LATENCY_BUCKETS_MS`, then the overflow.
    counts: [AtomicU64; 14],
    sum_ms: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, ms: u64) {
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|&b| ms <= b)
            .unwrap_or(13);
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum_ms.fetch_add(ms, Relaxed);
    }

    /// `name_bucket{le=..}` (cumulative), `name_sum` and `name_count` lines, with `labels`.
    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = LATENCY_BUCKETS_MS
                .get(i)
                .map_or("+Inf".to_string(), |ms| (*ms as f64 / 1000.0).to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ms.load(Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// One source's and its sinks' state, as `/api/v1/status` gives it.
#[derive(Debug, Serialize)]
pub struct Status {
    pub source: String,
    pub checkpoint: String,
    pub checkpoint_age_seconds: Option<f64>,
    pub events_read: u64,
    pub lag_seconds: f64,
    /// The snapshot in progress: its tables, the first being read, with the rows delivered.
    pub snapshot: Option<Vec<SnapshotTable>>,
    pub sinks: Vec<SinkStatus>,
}

#[derive(Debug, Serialize)]
pub struct SnapshotTable {
    pub table: String,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct SinkStatus {
    pub name: String,
    pub delivered: u64,
    pub failures: u64,
    pub retries: u64,
    pub queued: i64,
    pub queue_capacity: u64,
    /// How long the oldest change the sink holds has waited since it was read.
    pub lag_seconds: f64,
    /// The oldest change it holds waited at least `stuck_after`.
    pub stuck: bool,
    pub last_error: Option<String>,
}

impl Metrics {
    pub fn new(source: &str, sinks: &[String]) -> Metrics {
        let metrics = Metrics {
            source: source.to_string(),
            stuck_after_ms: 10_000,
            ..Metrics::default()
        };
        metrics.set_sinks(sinks);
        metrics
    }

    /// The running sinks' counts, in the order of the configuration.
    pub fn sinks(&self) -> Vec<Arc<SinkMetrics>> {
        self.sinks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `names` the running sinks, keeping the counts of those already counted; the counts
    /// of each, in that order.
    pub fn set_sinks(&self, names: &[String]) -> Vec<Arc<SinkMetrics>> {
        let mut sinks = self.sinks.write().unwrap_or_else(|p| p.into_inner());
        let kept: Vec<Arc<SinkMetrics>> = names
            .iter()
            .map(|name| {
                let existing = sinks.iter().find(|s| s.name == *name);
                existing.cloned().unwrap_or_else(|| {
                    Arc::new(SinkMetrics {
                        name: name.clone(),
                        ..SinkMetrics::default()
                    })
                })
            })
            .collect();
        *sinks = kept.clone();
        kept
    }

    /// How old the last change was when rowbus read it, in seconds.
    pub fn lag_seconds(&self) -> f64 {
        let (written, read) = (
            self.last_event_ms.load(Relaxed),
            self.last_read_ms.load(Relaxed),
        );
        read.saturating_sub(written) as f64 / 1000.0
    }

    pub fn checkpoint_age_seconds(&self, now_ms: u64) -> Option<f64> {
        let saved = self.checkpoint_saved_ms.load(Relaxed);
        (saved > 0).then(|| now_ms.saturating_sub(saved) as f64 / 1000.0)
    }

    pub fn status(&self, now_ms: u64) -> Status {
        Status {
            source: self.source.clone(),
            checkpoint: lock(&self.checkpoint).clone(),
            checkpoint_age_seconds: self.checkpoint_age_seconds(now_ms),
            events_read: self.events_read.load(Relaxed),
            lag_seconds: self.lag_seconds(),
            snapshot: self
                .snapshot
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .map(|progress| {
                    let tables = progress.tables.iter();
                    tables
                        .map(|t| SnapshotTable {
                            table: t.table.clone(),
                            rows: t.rows,
                        })
                        .collect()
                }),
            sinks: self
                .sinks()
                .iter()
                .map(|s| {
                    let error = lock(&s.last_error).clone();
                    let lag_seconds = s.lag_seconds(now_ms);
                    SinkStatus {
                        name: s.name.clone(),
                        delivered: s.delivered.load(Relaxed),
                        failures: s.failures.load(Relaxed),
                        retries: s.retries.load(Relaxed),
                        queued: s.queued.load(Relaxed),
                        queue_capacity: self.queue_capacity,
                        lag_seconds,
                        stuck: lag_seconds * 1000.0 >= self.stuck_after_ms as f64,
                        last_error: (!error.is_empty()).then_some(error),
                    }
                })
                .collect(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn prometheus(&self, now_ms: u64) -> String {
        let mut out = String::new();
        let source = escape(&self.source);
        let mut family = |name: &str, kind: &str, help: &str, samples: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{{{labels}}} {value}");
            }
        };
        let by_source = |value: f64| vec![(format!("source=\"{source}\""), value)];
        let sinks = self.sinks();
        let by_sink = |f: &dyn Fn(&SinkMetrics) -> f64| -> Vec<(String, f64)> {
            sinks
                .iter()
                .map(|s| {
                    (
                        format!("source=\"{source}\",sink=\"{}\"", escape(&s.name)),
                        f(s),
                    )
                })
                .collect()
        };
        family(
            "rowbus_source_events_total",
            "counter",
            "Row changes read from the source.",
            by_source(self.events_read.load(Relaxed) as f64),
        );
        family(
            "rowbus_source_lag_seconds",
            "gauge",
            "How old the last change read was when it was read (server time to read time).",
            by_source(self.lag_seconds()),
        );
        family(
            "rowbus_checkpoint_age_seconds",
            "gauge",
            "Seconds since the checkpoint was last saved (absent before the first save).",
            self.checkpoint_age_seconds(now_ms)
                .map(by_source)
                .unwrap_or_default(),
        );
        let lag = |s: &SinkMetrics| s.lag_seconds(now_ms);
        family(
            "rowbus_sink_lag_seconds",
            "gauge",
            "How long the oldest change the sink holds has waited since it was read (0: none).",
            by_sink(&lag),
        );
        let sink_families: [(&str, &str, &str, SinkValue); 5] = [
            (
                "rowbus_sink_events_delivered_total",
                "counter",
                "Changes the sink acknowledged (delivered, or written to its failure log).",
                |s| s.delivered.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_batches_total",
                "counter",
                "Batches handed to the sink.",
                |s| s.batches.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_failures_total",
                "counter",
                "Changes written to the sink's failure log.",
                |s| s.failures.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_retries_total",
                "counter",
                "Writes retried after a retriable error.",
                |s| s.retries.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_queue_events",
                "gauge",
                "Changes routed to the sink and not yet taken by its worker.",
                |s| s.queued.load(Relaxed) as f64,
            ),
        ];
        for (name, kind, help, value) in sink_families {
            family(name, kind, help, by_sink(&value));
        }
        let name = "rowbus_sink_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} From reading a change to the sink acknowledging it.\n# TYPE {name} histogram"
        );
        for s in &sinks {
            let labels = format!("source=\"{source}\",sink=\"{}\"", escape(&s.name));
            s.latency.render(name, &labels, &mut out);
        }
        out
    }
}

/// One sink's value of a metric.
type SinkValue = fn(&SinkMetrics) -> f64;

fn lock(m: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
