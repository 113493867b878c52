//! Delivering a batch to one sink under the one retry policy every sink shares: retriable errors
//! are retried with exponential backoff and jitter (without limit unless `max_attempts` is set,
//! reported as degraded after `degraded_after` attempts); a permanent error, or `max_attempts`
//! exhausted, sends the event to the sink's failure log, and the stream goes on. A batch that fails
//! permanently is retried one event at a time, so only the events the sink rejects are logged.
//! Under `on_failure = "park_key"` later changes of a logged key follow it into the log, so a
//! replay restores them in order. More than `max_failures` within `max_failures_within` stops the
//! pipeline instead, with the events unacknowledged, so the checkpoint skips nothing.

use crate::backoff::Backoff;
use crate::event::{now_ms, ChangeEvent};
use crate::failure::record::{parking_of, Parked};
use crate::failure::{store_event, FailureLog, FailureRecord};
use crate::pipeline::{PipelineError, Stop};
use crate::sink::{Sink, SinkError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Attempts a retriable write gets once a stop was requested, before the pipeline gives up on it.
const RETRIES_WHEN_STOPPING: u32 = 5;

/// What happens to later changes of a key whose change is in the failure log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// They follow it into the log (not tried), so a replay keeps the key's order.
    #[default]
    ParkKey,
    /// They are tried as usual: the failed change is skipped until it is replayed.
    SkipEvent,
}

/// A sink's retry and failure settings.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryPolicy {
    pub max_attempts: Option<u32>,
    pub degraded_after: u32,
    pub on_failure: OnFailure,
    /// Stop when more than this many events fail within `max_failures_within` (0: never).
    pub max_failures: usize,
    pub max_failures_within: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: None,
            degraded_after: 10,
            on_failure: OnFailure::ParkKey,
            max_failures: 100,
            max_failures_within: Duration::from_secs(60),
        }
    }
}

/// One sink's delivery state: its policy, its failure log, and recent failures for the guard.
pub struct Delivery {
    sink: String,
    policy: DeliveryPolicy,
    log: FailureLog,
    /// When recent failures happened (ms since the epoch), oldest first, for the guard; seeded
    /// from the log so that a restart does not reset the count.
    recent: VecDeque<u64>,
    /// Counts for the metrics: changes logged, writes retried, and the last error.
    pub logged: u64,
    pub retries: u64,
    pub last_error: Option<String>,
}

/// How a write ended after retries: delivered, or failed with the error and the attempts made.
type Outcome = Result<(), (SinkError, u32)>;

impl Delivery {
    /// Records in the failure log now.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    pub fn new(sink: &str, policy: DeliveryPolicy, log: FailureLog) -> Self {
        let mut recent: Vec<u64> = log.failed_ms().to_vec();
        recent.sort_unstable();
        Delivery {
            sink: sink.to_string(),
            policy,
            log,
            recent: recent.into(),
            logged: 0,
            retries: 0,
            last_error: None,
        }
    }

    /// Delivers `batch`, or logs what cannot be delivered. Ok means every event may be
    /// acknowledged.
    pub async fn deliver(
        &mut self,
        sink: &mut dyn Sink,
        batch: &[Arc<ChangeEvent>],
        stop: &Stop,
    ) -> Result<(), PipelineError> {
        let park = self.policy.on_failure == OnFailure::ParkKey;
        // An empty log parks nothing: no key is built on the common path.
        let parking_applies = park && !self.log.is_empty();
        // (index in the batch, record), to log in batch order.
        let mut failed: Vec<(usize, FailureRecord)> = Vec::new();
        let mut send = Vec::with_capacity(batch.len());
        for (i, e) in batch.iter().enumerate() {
            if parking_applies && self.log.parks(&parking_of(e)) {
                failed.push((i, self.parked(e)));
            } else {
                send.push((i, e.clone()));
            }
        }
        let events: Vec<Arc<ChangeEvent>> = send.iter().map(|(_, e)| e.clone()).collect();
        match self.write_with_retry(sink, &events, stop).await? {
            Ok(()) => {}
            Err((error, attempts)) if !error.retriable && send.len() > 1 => {
                tracing::warn!(sink = %self.sink, %error, events = send.len(), "a batch was rejected; writing its events one at a time");
                let mut in_batch = Parked::default();
                let mut new_failures = 0;
                for (i, e) in &send {
                    let parking = parking_of(e);
                    if park && in_batch.parks(&parking) {
                        failed.push((*i, self.parked(e)));
                        continue;
                    }
                    if let Err((error, n)) = self
                        .write_with_retry(sink, std::slice::from_ref(e), stop)
                        .await?
                    {
                        failed.push((*i, self.record(e, &error, attempts + n)));
                        in_batch.add(&parking);
                        new_failures += 1;
                        // Stop before writing more of the batch once the guard would trip.
                        self.check_guard(new_failures, &error.message)?;
                    }
                }
            }
            Err((error, attempts)) => {
                for (i, e) in &send {
                    failed.push((*i, self.record(e, &error, attempts)));
                }
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        failed.sort_by_key(|(i, _)| *i);
        self.log_failures(failed.into_iter().map(|(_, r)| r).collect())
    }

    /// Logs the events a transform failed on, as they were before the transforms of `stage`
    /// (`pipeline` or `sink`) so that a replay runs them again, under the sink's guard.
    pub fn reject(
        &mut self,
        rejected: &[(Arc<ChangeEvent>, String)],
        stage: &str,
    ) -> Result<(), PipelineError> {
        let records = rejected
            .iter()
            .map(|(e, error)| FailureRecord {
                untransformed: stage.to_string(),
                ..self.record(e, &SinkError::permanent(format!("transform: {error}")), 1)
            })
            .collect();
        self.log_failures(records)
    }

    fn log_failures(&mut self, mut records: Vec<FailureRecord>) -> Result<(), PipelineError> {
        if records.is_empty() {
            return Ok(());
        }
        let new = records.iter().filter(|r| !r.parked).count();
        let last = records.last().map(|r| r.error.clone()).unwrap_or_default();
        self.check_guard(new, &last)?;
        self.recent.extend(std::iter::repeat_n(now_ms(), new));
        self.log
            .append(&mut records)
            .map_err(|e| PipelineError::FailureLog {
                sink: self.sink.clone(),
                message: format!("{}: {e}", self.log.path().display()),
            })?;
        self.logged += records.len() as u64;
        self.last_error = Some(last.clone());
        for r in &records {
            tracing::error!(sink = %self.sink, id = r.id, key = %r.key, parked = r.parked, error = %r.error, "event sent to the failure log");
        }
        Ok(())
    }

    /// Stops the pipeline when `new` more failures would exceed `max_failures` within the window.
    fn check_guard(&mut self, new: usize, last_error: &str) -> Result<(), PipelineError> {
        if self.policy.max_failures == 0 {
            return Ok(());
        }
        let window = self.policy.max_failures_within.as_millis() as u64;
        let now = now_ms();
        while self
            .recent
            .front()
            .is_some_and(|&t| now.saturating_sub(t) > window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() + new > self.policy.max_failures {
            return Err(PipelineError::TooManyFailures {
                sink: self.sink.clone(),
                count: self.recent.len() + new,
                within: self.policy.max_failures_within,
                last_error: last_error.to_string(),
            });
        }
        Ok(())
    }

    fn record(&self, e: &ChangeEvent, error: &SinkError, attempts: u32) -> FailureRecord {
        let now = now_ms();
        let parking = parking_of(e);
        FailureRecord {
            id: 0,
            sink: self.sink.clone(),
            event: Some(store_event(e)),
            error: error.message.clone(),
            attempts,
            first_ms: now,
            last_ms: now,
            key: parking.key,
            parked: false,
            old_key: parking.old_key,
            table: parking.table,
            untransformed: String::new(),
        }
    }

    fn parked(&self, e: &ChangeEvent) -> FailureRecord {
        FailureRecord {
            error: "parked: an earlier change of this row (or table) is in the failure log".into(),
            attempts: 0,
            parked: true,
            ..self.record(e, &SinkError::permanent(""), 0)
        }
    }

    /// Writes until the write passes, fails permanently, or `max_attempts` are spent. Retrying
    /// ends with an error (the pipeline stops) when a stop is requested.
    async fn write_with_retry(
        &mut self,
        sink: &mut dyn Sink,
        batch: &[Arc<ChangeEvent>],
        stop: &Stop,
    ) -> Result<Outcome, PipelineError> {
        if batch.is_empty() {
            return Ok(Ok(()));
        }
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
        // Attempts since a stop was requested.
        let mut while_stopping = 0;
        loop {
            let error = match sink.write(batch).await {
                Ok(()) => return Ok(Ok(())),
                Err(e) if e.fatal => {
                    return Err(PipelineError::Sink {
                        sink: self.sink.clone(),
                        source: e,
                    })
                }
                Err(e) if !e.retriable => return Ok(Err((e, backoff.attempts() + 1))),
                // Stopping: a transient error (a deadlock, a lock wait) gets a few quick tries
                // more; an outage ends the pipeline, unacknowledged, for the next start to redo.
                Err(e) if stop.is_triggered() && while_stopping >= RETRIES_WHEN_STOPPING => {
                    return Err(PipelineError::Sink {
                        sink: self.sink.clone(),
                        source: e,
                    })
                }
                Err(e) => e,
            };
            if stop.is_triggered() {
                while_stopping += 1;
            }
            let (attempt, delay) = backoff.next_delay();
            self.last_error = Some(error.message.clone());
            if self.policy.max_attempts.is_some_and(|max| attempt >= max) {
                return Ok(Err((error, attempt)));
            }
            self.retries += 1;
            if attempt == self.policy.degraded_after {
                tracing::error!(sink = %self.sink, attempt, %error, "sink degraded: writes keep failing; still retrying");
            }
            let delay = crate::backoff::jitter(delay);
            tracing::warn!(sink = %self.sink, attempt, %error, retry_in_ms = delay.as_millis() as u64, "sink write failed; retrying");
            if stop.is_triggered() {
                tokio::time::sleep(delay.min(Duration::from_millis(200))).await;
            } else {
                stop.sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Op, Row};
    use crate::failure::{load_event, log};
    use crate::sink::BoxFuture;
    use crate::value::Value;

    /// Rejects events whose `after` holds "bad"; records what it accepted as (id, text).
    #[derive(Default)]
    struct Picky {
        accepted: Vec<(i64, String)>,
    }

    impl Sink for Picky {
        fn write<'a>(
            &'a mut self,
            batch: &'a [Arc<ChangeEvent>],
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            Box::pin(async move {
                let rows: Vec<(i64, String)> = batch.iter().map(|e| id_text(e)).collect();
                if rows.iter().any(|(_, t)| t == "bad") {
                    return Err(SinkError::permanent("value `bad` not allowed"));
                }
                self.accepted.extend(rows);
                Ok(())
            })
        }
    }

    fn id_text(e: &ChangeEvent) -> (i64, String) {
        let after = e.after.as_ref().unwrap();
        match (&after.values[0], &after.values[1]) {
            (Value::Int(id), Value::Text(t)) => (*id, t.to_string()),
            _ => unreachable!(),
        }
    }

    fn change(id: i64, text: &str) -> Arc<ChangeEvent> {
        // Each change its own place in the binlog, as real ones have.
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let mut e = crate::failure::tests::event(id);
        e.source.row = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        e.op = Op::Update;
        e.after = Some(Row {
            columns: vec![Arc::from("id"), Arc::from("v")].into(),
            values: vec![Value::Int(id), Value::Text(text.into())],
        });
        Arc::new(e)
    }

    async fn run(on_failure: OnFailure) -> (Vec<(i64, String)>, Vec<(i64, String, bool)>) {
        let path = std::env::temp_dir().join(format!(
            "rowbus-delivery-{on_failure:?}-{}.log",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let policy = DeliveryPolicy {
            on_failure,
            ..DeliveryPolicy::default()
        };
        let mut delivery = Delivery::new("out", policy, FailureLog::open(&path).unwrap());
        let mut sink = Picky::default();
        let stop = Stop::default();
        let first = [
            change(1, "a"),
            change(2, "bad"),
            change(2, "b"),
            change(3, "c"),
        ];
        delivery.deliver(&mut sink, &first, &stop).await.unwrap();
        let second = [change(2, "fixed"), change(4, "d")];
        delivery.deliver(&mut sink, &second, &stop).await.unwrap();
        let logged = log::read(&path)
            .unwrap()
            .0
            .iter()
            .map(|r| {
                let (id, text) = id_text(&load_event(r.event.as_ref().unwrap()).unwrap());
                (id, text, r.parked)
            })
            .collect();
        std::fs::remove_file(&path).unwrap();
        (sink.accepted, logged)
    }

    fn pairs(v: &[(i64, &str)]) -> Vec<(i64, String)> {
        v.iter().map(|(i, t)| (*i, t.to_string())).collect()
    }

    /// Fails with a retriable error (a deadlock) the first `failures` writes.
    struct Deadlocks {
        failures: u32,
        writes: u32,
    }

    impl Sink for Deadlocks {
        fn write<'a>(
            &'a mut self,
            _: &'a [Arc<ChangeEvent>],
        ) -> BoxFuture<'a, Result<(), SinkError>> {
            Box::pin(async move {
                self.writes += 1;
                if self.writes <= self.failures {
                    return Err(SinkError::retriable(
                        "Deadlock found when trying to get lock",
                    ));
                }
                Ok(())
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn while_stopping_a_deadlock_gets_a_few_more_tries() {
        let path =
            std::env::temp_dir().join(format!("rowbus-delivery-stop-{}.log", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut delivery = Delivery::new(
            "out",
            DeliveryPolicy::default(),
            FailureLog::open(&path).unwrap(),
        );
        let stop = Stop::default();
        stop.trigger();
        let mut passing = Deadlocks {
            failures: 2,
            writes: 0,
        };
        delivery
            .deliver(&mut passing, &[change(1, "a")], &stop)
            .await
            .unwrap();
        assert_eq!((passing.writes, delivery.retries), (3, 2));
        let mut stuck = Deadlocks {
            failures: u32::MAX,
            writes: 0,
        };
        let err = delivery
            .deliver(&mut stuck, &[change(2, "b")], &stop)
            .await
            .unwrap_err();
        assert_eq!(stuck.writes, RETRIES_WHEN_STOPPING + 1);
        assert!(err.to_string().contains("Deadlock found"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[tokio::test]
    async fn a_failed_key_parks_its_later_changes_and_others_flow() {
        let (accepted, logged) = run(OnFailure::ParkKey).await;
        assert_eq!(accepted, pairs(&[(1, "a"), (3, "c"), (4, "d")]));
        assert_eq!(
            logged,
            [
                (2, "bad".to_string(), false),
                (2, "b".to_string(), true),
                (2, "fixed".to_string(), true)
            ]
        );
    }

    #[tokio::test]
    async fn skip_event_logs_only_the_rejected_change() {
        let (accepted, logged) = run(OnFailure::SkipEvent).await;
        assert_eq!(
            accepted,
            pairs(&[(1, "a"), (2, "b"), (3, "c"), (2, "fixed"), (4, "d")])
        );
        assert_eq!(logged, [(2, "bad".to_string(), false)]);
    }
}
