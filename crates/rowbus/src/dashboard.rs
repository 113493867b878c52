//! The live dashboard at `/`: one page embedded in the binary (`assets/dashboard.html`, no
//! external assets) fed by `GET /api/v1/stream`, server-sent events: on connect the sinks' lag
//! over the last five minutes (`history`, sampled here every second), then every second the
//! status with the flow's shape (`status`). The page draws the source, the transforms and the
//! sinks with events/s on each edge, and a sink red once the status calls it stuck.

use crate::admin::Admin;
use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use rowbus_core::event::now_ms;
use rowbus_core::pipeline::Stop;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PAGE: &str = include_str!("../assets/dashboard.html");

/// How much lag history the page gets on connect: five minutes of one sample a second.
const HISTORY_SAMPLES: usize = 300;

/// The sinks' lag, one sample a second: (seconds since the epoch, `{"sinks": [{name, lag}]}`),
/// and the rates over the last second.
#[derive(Default)]
pub struct History {
    samples: Mutex<VecDeque<(f64, Value)>>,
    rates: Mutex<Rates>,
}

/// Events per second over the last sample: read by the source, delivered by each sink.
#[derive(Default, Clone)]
pub struct Rates {
    pub source: f64,
    pub sinks: Vec<(String, f64)>,
}

/// The counts a rate is taken between.
struct Counts {
    t: f64,
    read: u64,
    delivered: Vec<(String, u64)>,
}

impl History {
    fn push(&self, t: f64, sample: Value) {
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == HISTORY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back((t, sample));
    }

    fn all(&self) -> Vec<(f64, Value)> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().cloned().collect()
    }

    pub fn rates(&self) -> Rates {
        self.rates.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_rates(&self, before: &Counts, now: &Counts) {
        let seconds = now.t - before.t;
        if seconds <= 0.0 {
            return;
        }
        let per_second = |a: u64, b: u64| a.saturating_sub(b) as f64 / seconds;
        let sinks = now.delivered.iter().map(|(name, delivered)| {
            let was = before.delivered.iter().find(|(n, _)| n == name);
            let rate = was.map_or(0.0, |(_, b)| per_second(*delivered, *b));
            (name.clone(), rate)
        });
        *self.rates.lock().unwrap_or_else(|p| p.into_inner()) = Rates {
            source: per_second(now.read, before.read),
            sinks: sinks.collect(),
        };
    }
}

/// Samples the sinks' lag and the rates every second until `shutdown`.
pub async fn sample(admin: Arc<Admin>, shutdown: Stop) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut before: Option<Counts> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let now = now_ms();
        let t = now as f64 / 1000.0;
        let sinks = admin.metrics.sinks();
        let lags: Vec<Value> = sinks
            .iter()
            .map(|s| json!({"name": s.name, "lag_seconds": s.lag_seconds(now)}))
            .collect();
        admin.history.push(t, json!({ "sinks": lags }));
        let counts = Counts {
            t,
            read: admin.metrics.events_read.load(Relaxed),
            delivered: sinks
                .iter()
                .map(|s| (s.name.clone(), s.delivered.load(Relaxed)))
                .collect(),
        };
        if let Some(before) = &before {
            admin.history.set_rates(before, &counts);
        }
        before = Some(counts);
    }
}

pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        PAGE,
    )
        .into_response()
}

/// `GET /api/v1/stream`: `history` once, then `status` every second, until rowbus stops.
pub async fn stream(State(admin): State<Arc<Admin>>) -> Response {
    let history = Event::default()
        .event("history")
        .json_data(admin.history.all());
    let first = Some(history.map_err(axum::Error::new));
    let updates = futures_util::stream::unfold(
        (admin, first, tokio::time::interval(Duration::from_secs(1))),
        |(admin, first, mut tick)| async move {
            if let Some(first) = first {
                return Some((first, (admin, None, tick)));
            }
            tokio::select! {
                _ = tick.tick() => {}
                _ = admin.stop.wait() => return None,
            }
            let status = Event::default()
                .event("status")
                .json_data(crate::admin::status_now(&admin))
                .map_err(axum::Error::new);
            Some((status, (admin, None, tick)))
        },
    );
    Sse::new(updates)
        .keep_alive(KeepAlive::default())
        .into_response()
}
