//! The sink contract. Every sink (file, Kafka, a database, ...) implements `Sink`; the pipeline
//! runtime owns the calling discipline described here, so a sink only has to write.

use crate::event::ChangeEvent;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A sink's failure, classified once by the sink.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SinkError {
    pub message: String,
    /// True when trying again may succeed (lost connection, timeout, overload); false when it
    /// cannot (a row the target rejects, a full disk needing a person).
    pub retriable: bool,
    /// The sink as a whole cannot go on (its output is gone, its state is unknown): the pipeline
    /// stops, with the checkpoint before the batch, instead of logging events one by one.
    pub fatal: bool,
}

impl SinkError {
    pub fn retriable(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            retriable: true,
            fatal: false,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            retriable: false,
            fatal: false,
        }
    }

    pub fn fatal(message: impl Into<String>) -> Self {
        SinkError {
            message: message.into(),
            retriable: false,
            fatal: true,
        }
    }

    /// The error that decides a batch whose parts failed in several ways: fatal before retriable
    /// (a retry may pass the whole batch) before permanent; the first of the worst kind.
    pub fn worst(errors: impl IntoIterator<Item = SinkError>) -> Option<SinkError> {
        let rank = |e: &SinkError| match (e.fatal, e.retriable) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        };
        errors.into_iter().min_by_key(rank)
    }
}

/// A destination for change events.
///
/// Contract:
/// - **When called**: `write` is called by one task per sink, with batches in binlog order; the next
///   call comes only after the previous one returned. Nothing else calls the sink concurrently.
/// - **Order**: events in a batch and across batches arrive in binlog order, so two changes of the
///   same row (same table and key) arrive in the order they happened. A sink that writes in parallel
///   internally must keep that per-key order.
/// - **Acknowledgement**: returning `Ok` means every event of the batch is durably delivered (for a
///   file: written and flushed per its fsync policy). The runtime then acknowledges the batch to the
///   ack tracker, which is what lets the checkpoint move past it.
/// - **At-least-once**: after a crash, events after the last checkpoint are delivered again, and a
///   failed batch is retried whole. Writes must therefore be idempotent, or the duplicates must be
///   tolerable to the reader (a JSON-lines file gets repeated lines).
/// - **Errors**: return `SinkError::retriable` for what may pass on a later try (the runtime retries
///   with backoff, see `delivery`) and `SinkError::permanent` for what will not: the runtime then
///   writes the batch's events one at a time, and those refused again go to the sink's failure log.
///   A sink must therefore leave nothing of a failed batch behind that a retry would duplicate
///   wrongly (take back a partial write, or make writes idempotent).
pub trait Sink: Send {
    /// Delivers a batch durably.
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>>;

    /// Flushes and releases resources at shutdown, after the last `write`.
    fn close(&mut self) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async { Ok(()) })
    }
}
