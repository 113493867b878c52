//! Pausing and resuming while the pipeline runs (the admin API's pause/resume): one gate for the
//! source and one per sink. A paused source's changes stay in the binlog (the router stops taking
//! them, so the bounded queue holds the reader); a paused sink holds the batch it took and takes
//! nothing more, so its changes wait and the checkpoint stays before them; once its queue is full
//! the router, and so every sink, waits too. A stop opens the source's gate, to drain; a sink
//! still paused then ends without acknowledging what it holds, for the next start to deliver.

use crate::pipeline::Stop;
use tokio::sync::watch;

#[derive(Debug)]
pub struct Gate {
    paused: watch::Sender<bool>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            paused: watch::channel(false).0,
        }
    }
}

impl Gate {
    pub fn pause(&self) {
        self.paused.send_replace(true);
    }

    pub fn resume(&self) {
        self.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.paused.borrow()
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

/// The source's gate and each sink's, in the order of the sinks.
#[derive(Debug, Default)]
pub struct Controls {
    pub source: Gate,
    pub sinks: Vec<Gate>,
}

impl Controls {
    pub fn new(sinks: usize) -> Controls {
        Controls {
            source: Gate::default(),
            sinks: (0..sinks).map(|_| Gate::default()).collect(),
        }
    }
}
