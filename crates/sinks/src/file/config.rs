//! Settings of the file sink.

use crate::format::Format;
use serde::Deserialize;
use std::path::PathBuf;

/// When the file sink forces written lines to disk before acknowledging them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Fsync {
    /// fsync after every batch: an acknowledged line survives a power loss.
    #[default]
    Always,
    /// Only flush to the operating system: survives a crash of rowbus, not of the machine.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkConfig {
    pub path: PathBuf,
    pub fsync: Fsync,
    /// A line longer than this is refused (a permanent error: the event goes to the failure log).
    pub max_event_bytes: Option<usize>,
    /// The shape of each line (native JSON by default).
    pub format: Format,
}
