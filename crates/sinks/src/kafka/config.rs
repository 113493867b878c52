//! Settings of the Kafka sink: the brokers, how an event becomes a message (topic, key, format)
//! and how the producer batches and bounds what it holds.

use crate::format::Format;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port...]`.
    pub brokers: String,
    /// The topic of a table's changes: `{db}` and `{table}` replaced.
    pub topic: String,
    /// The topic of schema changes (with `schema_changes = true`): `{db}` replaced.
    pub schema_topic: String,
    /// The topic of Debezium's BEGIN and END transaction events (with `transaction_metadata`):
    /// `{source}` replaced by the source's name.
    pub transaction_topic: String,
    /// The columns of a table's message key (`db.table` to columns); the primary key otherwise.
    pub key_columns: BTreeMap<String, Vec<String>>,
    pub format: Format,
    /// The Debezium envelope's schema block and transaction metadata.
    pub debezium: crate::format::debezium::Options,
    /// After a delete, a message with the same key and no value (Debezium's tombstone), so that a
    /// compacted topic forgets the row.
    pub tombstones: bool,
    /// `none`, `gzip`, `snappy` or `lz4`.
    pub compression: String,
    /// How long the producer waits to fill a batch (`linger.ms`).
    pub linger: Duration,
    /// The most bytes of one partition's batch (`batch.size`).
    pub batch_bytes: usize,
    /// The most bytes of messages the producer holds unacknowledged (`queue.buffering.max.kbytes`).
    pub max_in_flight_bytes: usize,
    /// The largest message the sink sends (`message.max.bytes`); a larger one goes to the failure
    /// log. Keep it at or below the broker's and topic's own limit.
    pub message_max_bytes: usize,
    /// How long one message may take to be acknowledged before its batch is retried.
    pub delivery_timeout: Duration,
    /// Create missing topics through the admin API, with these partitions and replicas.
    pub create_topics: bool,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Further librdkafka producer properties, as given.
    pub options: BTreeMap<String, String>,
}

impl KafkaSinkConfig {
    /// The topic of a change of `db.table`.
    pub fn topic_of(&self, db: &str, table: &str) -> String {
        self.topic.replace("{db}", db).replace("{table}", table)
    }

    /// The configured key columns of a table, if any.
    pub fn key_columns_of(&self, db: &str, table: &str) -> Option<&[String]> {
        self.key_columns
            .get(&format!("{db}.{table}"))
            .map(Vec::as_slice)
    }
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            brokers: "127.0.0.1:9092".into(),
            topic: "{db}.{table}".into(),
            schema_topic: "{db}.schema-changes".into(),
            transaction_topic: "{source}.transaction".into(),
            key_columns: BTreeMap::new(),
            format: Format::Native,
            debezium: Default::default(),
            tombstones: false,
            compression: "none".into(),
            linger: Duration::from_millis(5),
            batch_bytes: 1 << 20,
            max_in_flight_bytes: 64 << 20,
            message_max_bytes: 1 << 20,
            delivery_timeout: Duration::from_secs(30),
            create_topics: false,
            partitions: 3,
            replication_factor: 1,
            options: BTreeMap::new(),
        }
    }
}
