//! Pausing and resuming while the pipeline runs (the admin API's pause/resume): one gate for the
//! source and one per sink. A paused source's changes stay in the binlog (the router stops taking
//! them, so the bounded queue holds the reader); a paused sink holds the batch it took and takes
//! nothing more, so its changes wait and the checkpoint stays before them; once its queue is full
//! the router, and so every sink, waits too. A stop opens the source's gate, to drain; a sink
//! still paused then ends without acknowledging what it holds, for the next start to deliver.

use crate::pipeline::Stop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

#[derive(Debug)]
pub struct Gate {
    paused: watch::Sender<bool>,
    /// The same, for `is_paused`, which the router asks for every record: a load, not a lock.
    is_paused: AtomicBool,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            paused: watch::channel(false).0,
            is_paused: AtomicBool::new(false),
        }
    }
}

impl Gate {
    pub fn pause(&self) {
        self.is_paused.store(true, Ordering::SeqCst);
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.is_paused.store(false, Ordering::SeqCst);
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        self.is_paused.load(Ordering::SeqCst)
    }

    /// Returns at once while open; otherwise when resumed, or when a stop is requested.
    pub async fn wait_open(&self, stop: &Stop) {
        if !self.is_paused() {
            return;
        }
        let mut rx = self.paused.subscribe();
        tokio::select! {
            _ = rx.wait_for(|paused| !*paused) => {}
            _ = stop.wait() => {}
        }
    }
}

/// The source's gate and each running sink's, by name; a reload replaces the sinks' and keeps
/// the gates (paused or not) of the sinks it keeps.
#[derive(Debug, Default)]
pub struct Controls {
    pub source: Gate,
    sinks: RwLock<Vec<(String, Arc<Gate>)>>,
}

impl Controls {
    pub fn new(sinks: &[String]) -> Controls {
        let controls = Controls::default();
        controls.set_sinks(sinks);
        controls
    }

    pub fn sink(&self, name: &str) -> Option<Arc<Gate>> {
        let sinks = self.sinks.read().unwrap_or_else(|p| p.into_inner());
        sinks
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, g)| g.clone())
    }

    /// Makes `names` the running sinks; their gates, in that order.
    pub fn set_sinks(&self, names: &[String]) -> Vec<Arc<Gate>> {
        let mut sinks = self.sinks.write().unwrap_or_else(|p| p.into_inner());
        let kept: Vec<(String, Arc<Gate>)> = names
            .iter()
            .map(|name| {
                let existing = sinks.iter().find(|(n, _)| n == name);
                let gate = existing.map_or_else(Arc::default, |(_, g)| g.clone());
                (name.clone(), gate)
            })
            .collect();
        let gates = kept.iter().map(|(_, g)| g.clone()).collect();
        *sinks = kept;
        gates
    }
}
