//! What the pipeline counts while it runs, for the admin API: per source, changes and binlog
//! bytes read, lag and the checkpoint; per sink, changes delivered, batches and their sizes,
//! failures and the failure log's size, retries, queue fill, lag, latency and the last error.
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
    /// Changes the pipeline's transforms passed on (a drop counts none, a copy two), and the
    /// changes they failed on.
    pub transform_outputs: AtomicU64,
    pub transform_failures: AtomicU64,
    /// Binlog bytes the router passed, from the positions of successive boundaries.
    pub bytes_read: AtomicU64,
    /// How far the server's binlog end is ahead of what was read, in bytes (-1: not known).
    pub lag_bytes: AtomicI64,
    /// The binlog file and offset of the last transaction boundary read.
    pub read_file: Mutex<String>,
    pub read_pos: AtomicU64,
    /// When the last change was written on the server, and when rowbus read it (ms since epoch).
    pub last_event_ms: AtomicU64,
    pub last_read_ms: AtomicU64,
    /// When the checkpoint was last saved (ms since epoch; 0 before the first).
    pub checkpoint_saved_ms: AtomicU64,
    pub checkpoint: Mutex<String>,
    /// The snapshot in progress, as the last boundary the source emitted carried it.
    pub snapshot: Mutex<Option<Arc<SnapshotProgress>>>,
    /// How many changes a sink's queue holds at most (its fill is `queued` over this).
    pub queue_capacity: AtomicU64,
    /// A sink whose oldest held change waited this long is shown as stuck (ms).
    pub stuck_after_ms: u64,
    /// The running sinks, in the order of the configuration; a reload replaces the list and
    /// keeps the counts of the sinks it keeps.
    sinks: RwLock<Vec<Arc<SinkMetrics>>>,
}

#[derive(Debug)]
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
    /// Records in the sink's failure log now (replays shorten it).
    pub failure_log_records: AtomicU64,
    /// From when rowbus read a change to when the sink acknowledged it.
    pub latency: Histogram,
    /// Changes per batch handed to the sink.
    pub batch_sizes: Histogram,
}

impl SinkMetrics {
    pub fn new(name: &str) -> SinkMetrics {
        SinkMetrics {
            name: name.to_string(),
            delivered: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            queued: AtomicI64::new(0),
            last_error: Mutex::default(),
            holding_since_ms: AtomicU64::new(0),
            failure_log_records: AtomicU64::new(0),
            latency: Histogram::new(&LATENCY_MS),
            batch_sizes: Histogram::new(&BATCH_EVENTS),
        }
    }

    /// How long the oldest change the sink holds has waited since rowbus read it, in seconds.
    pub fn lag_seconds(&self, now_ms: u64) -> f64 {
        match self.holding_since_ms.load(Relaxed) {
            0 => 0.0,
            since => now_ms.saturating_sub(since) as f64 / 1000.0,
        }
    }
}

/// A histogram's bucket bounds, and the unit it is rendered in (a value is divided by `scale`).
#[derive(Debug)]
pub struct Buckets {
    bounds: &'static [u64],
    scale: f64,
}

/// Latency: observed in milliseconds, rendered in seconds.
pub const LATENCY_MS: Buckets = Buckets {
    bounds: &[
        1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000,
    ],
    scale: 1000.0,
};

/// Batch sizes, in changes.
pub const BATCH_EVENTS: Buckets = Buckets {
    bounds: &[1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000],
    scale: 1.0,
};

/// A Prometheus histogram of whole numbers.
#[derive(Debug)]
pub struct Histogram {
    buckets: &'static Buckets,
    /// Per bucket, then the overflow.
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
}

impl Histogram {
    pub fn new(buckets: &'static Buckets) -> Histogram {
        Histogram {
            buckets,
            counts: (0..=buckets.bounds.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: u64) {
        let bounds = self.buckets.bounds;
        let bucket = bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(bounds.len());
        self.counts[bucket].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// `name_bucket{le=..}` (cumulative), `name_sum` and `name_count` lines, with `labels`.
    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let Buckets { bounds, scale } = self.buckets;
        let mut cumulative = 0;
        for (i, count) in self.counts.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = bounds
                .get(i)
                .map_or("+Inf".to_string(), |b| (*b as f64 / scale).to_string());
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum.load(Relaxed) as f64 / scale;
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
    pub bytes_read: u64,
    pub lag_seconds: f64,
    /// How far the server's binlog end is ahead of what was read (absent until known).
    pub lag_bytes: Option<u64>,
    /// What the pipeline's transforms passed on and failed on.
    pub transforms: TransformStatus,
    /// The snapshot in progress: its tables, the first being read, with the rows delivered.
    pub snapshot: Option<Vec<SnapshotTable>>,
    pub sinks: Vec<SinkStatus>,
}

#[derive(Debug, Serialize)]
pub struct TransformStatus {
    pub out: u64,
    pub failures: u64,
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
    /// Records in its failure log now.
    pub failure_log_records: u64,
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
            lag_bytes: AtomicI64::new(-1),
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
                existing
                    .cloned()
                    .unwrap_or_else(|| Arc::new(SinkMetrics::new(name)))
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
            bytes_read: self.bytes_read.load(Relaxed),
            lag_seconds: self.lag_seconds(),
            lag_bytes: u64::try_from(self.lag_bytes.load(Relaxed)).ok(),
            transforms: TransformStatus {
                out: self.transform_outputs.load(Relaxed),
                failures: self.transform_failures.load(Relaxed),
            },
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
                        failure_log_records: s.failure_log_records.load(Relaxed),
                        queued: s.queued.load(Relaxed),
                        queue_capacity: self.queue_capacity.load(Relaxed),
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
        let by_sink = |f: &dyn Fn(&SinkMetrics, u64) -> f64| -> Vec<(String, f64)> {
            sinks
                .iter()
                .map(|s| {
                    (
                        format!("source=\"{source}\",sink=\"{}\"", escape(&s.name)),
                        f(s, now_ms),
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
            "rowbus_transform_events_total",
            "counter",
            "Changes the pipeline's transforms passed on (a dropped one counts none, a copy two).",
            by_source(self.transform_outputs.load(Relaxed) as f64),
        );
        family(
            "rowbus_transform_failures_total",
            "counter",
            "Changes the pipeline's transforms failed on (sent to the failure logs).",
            by_source(self.transform_failures.load(Relaxed) as f64),
        );
        family(
            "rowbus_source_bytes_total",
            "counter",
            "Binlog bytes read (up to the last transaction boundary).",
            by_source(self.bytes_read.load(Relaxed) as f64),
        );
        let lag_bytes = self.lag_bytes.load(Relaxed);
        family(
            "rowbus_source_lag_bytes",
            "gauge",
            "Binlog bytes the server has written past what was read (absent until known).",
            if lag_bytes >= 0 {
                by_source(lag_bytes as f64)
            } else {
                Vec::new()
            },
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
        let sink_families: [(&str, &str, &str, SinkValue); 7] = [
            (
                "rowbus_sink_lag_seconds",
                "gauge",
                "How long the oldest change the sink holds has waited since it was read (0: none).",
                |s, now_ms| s.lag_seconds(now_ms),
            ),
            (
                "rowbus_sink_events_delivered_total",
                "counter",
                "Changes the sink acknowledged (delivered, or written to its failure log).",
                |s, _| s.delivered.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_batches_total",
                "counter",
                "Batches handed to the sink.",
                |s, _| s.batches.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_failures_total",
                "counter",
                "Changes written to the sink's failure log.",
                |s, _| s.failures.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_retries_total",
                "counter",
                "Writes retried after a retriable error.",
                |s, _| s.retries.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_failure_log_records",
                "gauge",
                "Records in the sink's failure log.",
                |s, _| s.failure_log_records.load(Relaxed) as f64,
            ),
            (
                "rowbus_sink_queue_events",
                "gauge",
                "Changes routed to the sink and not yet taken by its worker.",
                |s, _| s.queued.load(Relaxed) as f64,
            ),
        ];
        for (name, kind, help, value) in sink_families {
            family(name, kind, help, by_sink(&value));
        }
        let histograms: [(&str, &str, SinkHistogram); 2] = [
            (
                "rowbus_sink_latency_seconds",
                "From reading a change to the sink acknowledging it.",
                |s| &s.latency,
            ),
            (
                "rowbus_sink_batch_events",
                "Changes per batch handed to the sink.",
                |s| &s.batch_sizes,
            ),
        ];
        for (name, help, histogram) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for s in &sinks {
                let labels = format!("source=\"{source}\",sink=\"{}\"", escape(&s.name));
                histogram(s).render(name, &labels, &mut out);
            }
        }
        out
    }
}

/// One sink's value of a metric, at a time (ms since the epoch).
type SinkValue = fn(&SinkMetrics, u64) -> f64;

/// One of a sink's histograms.
type SinkHistogram = fn(&SinkMetrics) -> &Histogram;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sink_holding_a_change_past_stuck_after_is_stuck_and_a_reload_keeps_its_counts() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let metrics = Metrics::new("src", &names(&["a", "b"]));
        let sinks = metrics.sinks();
        sinks[0].delivered.store(7, Relaxed);
        sinks[0].holding_since_ms.store(1_000, Relaxed);
        // a waited 12.5 s (over the default 10 s); b holds nothing.
        let status = metrics.status(13_500);
        assert_eq!(status.sinks[0].lag_seconds, 12.5);
        assert!(status.sinks[0].stuck);
        assert_eq!(status.sinks[1].lag_seconds, 0.0);
        assert!(!status.sinks[1].stuck);
        assert!(metrics
            .prometheus(13_500)
            .contains("rowbus_sink_lag_seconds{source=\"src\",sink=\"a\"} 12.5\n"));
        // b removed, c added: a keeps its counts.
        let kept = metrics.set_sinks(&names(&["a", "c"]));
        assert!(Arc::ptr_eq(&kept[0], &sinks[0]));
        let status = metrics.status(13_500);
        let listed: Vec<(&str, u64)> = status
            .sinks
            .iter()
            .map(|s| (s.name.as_str(), s.delivered))
            .collect();
        assert_eq!(listed, [("a", 7), ("c", 0)]);
    }

    #[test]
    fn histograms_render_cumulative_buckets_in_their_unit() {
        let h = Histogram::new(&BATCH_EVENTS);
        for size in [1, 3, 3, 20_000] {
            h.observe(size);
        }
        let mut out = String::new();
        h.render("x", "s=\"1\"", &mut out);
        assert!(out.contains("x_bucket{s=\"1\",le=\"1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{s=\"1\",le=\"5\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{s=\"1\",le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_sum{s=\"1\"} 20007\n"), "{out}");
        let ms = Histogram::new(&LATENCY_MS);
        ms.observe(1500);
        let mut out = String::new();
        ms.render("y", "s=\"1\"", &mut out);
        assert!(out.contains("y_bucket{s=\"1\",le=\"2.5\"} 1\n"), "{out}");
        assert!(out.contains("y_sum{s=\"1\"} 1.5\n"), "{out}");
    }
}
