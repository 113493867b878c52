//! rowbus-sinks: the destinations of change events, one folder per sink (`config.rs` for its
//! settings, `sink.rs` for the running sink), and `encode` for the event formats they share.

pub mod encode;
pub mod file;
pub mod search;
pub mod sql;
