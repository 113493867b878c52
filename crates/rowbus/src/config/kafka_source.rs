//! `[sources.NAME] type = "kafka"`: the Kafka source's section and its checks (brokers, topics,
//! the messages' format, where to begin, the tables passed on).

use super::kafka::check_brokers;
use super::sections::check_tables;
use super::Errors;
use rowbus_kafka::{InFormat, KafkaSourceConfig, Start};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KafkaSourceSection {
    #[serde(rename = "type")]
    _kind: String,
    brokers: String,
    #[serde(default)]
    topics: Vec<String>,
    group: Option<String>,
    format: Option<String>,
    start: Option<String>,
    #[serde(default = "all_tables")]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    options: BTreeMap<String, String>,
}

fn all_tables() -> Vec<String> {
    vec!["*.*".into()]
}

impl KafkaSourceSection {
    pub fn check(self, name: &str, path: &str, errors: &mut Errors) -> Option<KafkaSourceConfig> {
        check_brokers(&self.brokers, path, errors);
        if self.topics.is_empty() || self.topics.iter().any(String::is_empty) {
            errors.add(format!("{path}.topics"), "must name at least one topic");
        }
        let name_of_format = self.format.as_deref().unwrap_or("native");
        let format = InFormat::parse(name_of_format).or_else(|| {
            errors.add(
                format!("{path}.format"),
                format!("unknown format `{name_of_format}`, expected native, debezium or maxwell"),
            );
            None
        });
        let start = match self.start.as_deref().unwrap_or("earliest") {
            "earliest" => Some(Start::Earliest),
            "latest" => Some(Start::Latest),
            other => {
                errors.add(
                    format!("{path}.start"),
                    format!("unknown start `{other}`, expected earliest or latest"),
                );
                None
            }
        };
        for property in self.options.keys() {
            if ["group.id", "enable.auto.commit", "bootstrap.servers"].contains(&property.as_str())
            {
                errors.add(
                    format!("{path}.options.{property}"),
                    "is set by the source (offsets are committed only once delivered); use brokers and group",
                );
            }
        }
        let tables = check_tables(&self.include, &self.exclude, path, "include", errors);
        Some(KafkaSourceConfig {
            name: name.to_string(),
            brokers: self.brokers,
            topics: self.topics,
            group: self.group.unwrap_or_else(|| format!("rowbus-{name}")),
            format: format?,
            start: start?,
            tables: tables?,
            options: self.options,
        })
    }
}
