//! The failure log: where a sink's undeliverable events go (a permanent rejection, or
//! `max_attempts` exhausted), durably and in order, so that nothing is lost and the stream goes on.
//! `record` is the protobuf record and the exact event encoding; `log` the file.

pub mod log;
pub mod record;

pub use log::FailureLog;
pub use record::{key_of, load_event, store_event, FailureRecord};

#[cfg(test)]
pub(crate) mod tests;
