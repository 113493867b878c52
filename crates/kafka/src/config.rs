//! Settings of the Kafka source: the brokers, the topics it reads, the shape of their messages, and
//! where to begin without a checkpoint.

use crate::parse::InFormat;
use rowbus_core::table_filter::TableFilter;
use std::collections::BTreeMap;

/// Where a partition without a checkpoint is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
}

#[derive(Debug, Clone)]
pub struct KafkaSourceConfig {
    /// The configured source's name (`[sources.NAME]`).
    pub name: String,
    pub brokers: String,
    pub topics: Vec<String>,
    /// The consumer group the delivered offsets are committed to (for lag monitoring; the
    /// checkpoint in the data directory is what a restart resumes from).
    pub group: String,
    pub format: InFormat,
    pub start: Start,
    /// The tables whose changes are passed on.
    pub tables: TableFilter,
    /// Further librdkafka consumer properties, as given.
    pub options: BTreeMap<String, String>,
}
