//! rowbus-sinks: the destinations of change events, one folder per sink (`config.rs` for its
//! settings, `sink.rs` for the running sink), `encode` for the native JSON and `format` for the
//! formats they share (native, Debezium, Maxwell, Canal).

pub mod encode;
pub mod file;
pub mod format;
pub mod kafka;
pub mod search;
pub mod sql;
