//! `type = "kafka"`: the Kafka sink's section and its checks (brokers, topic templates, format,
//! compression, the producer's bounds, topic creation).

use super::sections::{check_duration, check_format, sink_config, SinkCommon};
use super::{Errors, SinkConfig, SinkKind};
use rowbus_sinks::format::Format;
use rowbus_sinks::kafka::config::KafkaSinkConfig;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaSection {
    #[serde(rename = "type")]
    _kind: String,
    brokers: String,
    topic: Option<String>,
    schema_topic: Option<String>,
    transaction_topic: Option<String>,
    #[serde(default)]
    key_columns: BTreeMap<String, Vec<String>>,
    format: Option<String>,
    #[serde(default)]
    tombstones: bool,
    #[serde(default)]
    schemas: bool,
    #[serde(default)]
    transaction_metadata: bool,
    compression: Option<String>,
    linger: Option<String>,
    batch_bytes: Option<usize>,
    max_in_flight_bytes: Option<usize>,
    message_max_bytes: Option<usize>,
    delivery_timeout: Option<String>,
    #[serde(default)]
    create_topics: bool,
    partitions: Option<i32>,
    replication_factor: Option<i32>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

/// Producer properties the sink sets itself, for its guarantees: not to be overridden.
const OWN_PROPERTIES: [&str; 4] = [
    "acks",
    "enable.idempotence",
    "bootstrap.servers",
    "partitioner",
];

impl KafkaSection {
    pub fn check(
        self,
        name: &str,
        path: &str,
        common: SinkCommon,
        errors: &mut Errors,
    ) -> Option<SinkConfig> {
        let d = KafkaSinkConfig::default();
        check_brokers(&self.brokers, path, errors);
        let topic = self.topic.unwrap_or(d.topic);
        if topic.is_empty() {
            errors.add(format!("{path}.topic"), "must not be empty");
        }
        let format = check_format(self.format.as_deref(), path, errors);
        let compression = self.compression.unwrap_or(d.compression);
        if !["none", "gzip", "snappy", "lz4"].contains(&compression.as_str()) {
            errors.add(
                format!("{path}.compression"),
                format!("unknown compression `{compression}`, expected none, gzip, snappy or lz4"),
            );
        }
        let linger = match self.linger.as_deref() {
            None => Some(d.linger),
            Some("0" | "0ms" | "0s") => Some(Duration::ZERO),
            Some(text) => check_duration(text, &format!("{path}.linger"), errors),
        };
        let timeout = self.delivery_timeout.as_deref().unwrap_or("30s");
        let delivery_timeout = check_duration(timeout, &format!("{path}.delivery_timeout"), errors);
        let bytes = |value: Option<usize>, default: usize, field: &str, errors: &mut Errors| {
            let value = value.unwrap_or(default);
            if value < 1024 {
                errors.add(format!("{path}.{field}"), "must be at least 1024");
            }
            value
        };
        let batch_bytes = bytes(self.batch_bytes, d.batch_bytes, "batch_bytes", errors);
        let max_in_flight_bytes = bytes(
            self.max_in_flight_bytes,
            d.max_in_flight_bytes,
            "max_in_flight_bytes",
            errors,
        );
        let message_max_bytes = bytes(
            self.message_max_bytes,
            d.message_max_bytes,
            "message_max_bytes",
            errors,
        );
        let partitions = self.partitions.unwrap_or(d.partitions);
        if partitions < 1 {
            errors.add(format!("{path}.partitions"), "must be at least 1");
        }
        let replication_factor = self.replication_factor.unwrap_or(d.replication_factor);
        if replication_factor < 1 {
            errors.add(format!("{path}.replication_factor"), "must be at least 1");
        }
        for (table, columns) in &self.key_columns {
            if !table.contains('.') {
                errors.add(
                    format!("{path}.key_columns"),
                    format!("`{table}` is not of the form db.table"),
                );
            }
            if columns.is_empty() {
                errors.add(format!("{path}.key_columns.{table}"), "must name a column");
            }
        }
        for property in self.options.keys() {
            if OWN_PROPERTIES.contains(&property.as_str()) {
                errors.add(
                    format!("{path}.options.{property}"),
                    "is set by the sink (acks=all and idempotence keep each row's changes in order without loss); use brokers for the servers",
                );
            }
        }
        let debezium_only = [
            ("tombstones", self.tombstones),
            ("schemas", self.schemas),
            ("transaction_metadata", self.transaction_metadata),
        ];
        for (field, set) in debezium_only {
            if set && format != Some(Format::Debezium) {
                errors.add(
                    format!("{path}.{field}"),
                    "is a part of the debezium format only (format = \"debezium\")",
                );
            }
        }
        let kind = SinkKind::Kafka(Box::new(KafkaSinkConfig {
            brokers: self.brokers,
            topic,
            schema_topic: self.schema_topic.unwrap_or(d.schema_topic),
            transaction_topic: self.transaction_topic.unwrap_or(d.transaction_topic),
            key_columns: self.key_columns,
            format: format?,
            debezium: rowbus_sinks::format::debezium::Options {
                schemas: self.schemas,
                transaction_metadata: self.transaction_metadata,
            },
            tombstones: self.tombstones,
            compression,
            linger: linger?,
            batch_bytes,
            max_in_flight_bytes,
            message_max_bytes,
            delivery_timeout: delivery_timeout?,
            create_topics: self.create_topics,
            partitions,
            replication_factor,
            options: self.options,
        }));
        sink_config(name, path, common, kind, errors)
    }
}

/// `brokers` of a Kafka sink or source: `host:port` pairs separated by commas.
pub(super) fn check_brokers(brokers: &str, path: &str, errors: &mut Errors) {
    if brokers.trim().is_empty() || brokers.split(',').any(|b| !b.contains(':')) {
        errors.add(
            format!("{path}.brokers"),
            "must list host:port pairs separated by commas",
        );
    }
}
