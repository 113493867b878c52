//! The `file` and `stdout` sinks: JSON lines, one event per line, in binlog order.

mod config;
mod sink;

pub use config::{FileSinkConfig, Fsync};
pub use sink::{FileSink, StdoutSink};
