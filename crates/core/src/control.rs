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
        self.set(true);
    }

    pub fn resume(&self) {
        self.set(false);
    }

    /// Both the flag and the channel, under the channel's lock: two callers at once cannot leave
    /// them disagreeing.
    fn set(&self, paused: bool) {
        self.paused.send_modify(|value| {
            *value = paused;
            self.is_paused.store(paused, Ordering::SeqCst);
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_and_resumes_at_once_leave_the_flag_and_the_channel_agreeing() {
        let gate = Arc::new(Gate::default());
        for _ in 0..200 {
            let threads: Vec<_> = [true, false]
                .into_iter()
                .map(|pause| {
                    let gate = gate.clone();
                    std::thread::spawn(move || {
                        for _ in 0..50 {
                            if pause {
                                gate.pause()
                            } else {
                                gate.resume()
                            }
                        }
                    })
                })
                .collect();
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(gate.is_paused(), *gate.paused.borrow());
        }
    }

    #[tokio::test]
    async fn a_paused_gate_opens_on_resume() {
        let gate = Arc::new(Gate::default());
        gate.pause();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.wait_open(&Stop::default()).await }
        });
        gate.resume();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("opened")
            .unwrap();
        assert!(!gate.is_paused());
    }
}
