//! Loading and validating the TOML configuration. Every field is checked, unknown fields are
//! rejected, and each error names the exact field path (`sources.shop.server_id`). Errors are
//! collected over the whole file, so `rowbus check` reports all of them at once. Passwords are only
//! read from an environment variable or a file, never from the file itself.

mod duration;
mod kafka;
mod kafka_source;
mod search;
mod sections;

use kafka::KafkaSection;
use kafka_source::KafkaSourceSection;
use rowbus_core::delivery::DeliveryPolicy;
use rowbus_core::queue::QueueLimits;
use rowbus_core::table_filter::TableFilter;
use rowbus_mysql::MysqlSourceConfig;
use rowbus_sinks::file::FileSinkConfig;
use rowbus_transform::{Chain, StepConfig};
use search::SearchSection;
use sections::{FileSection, MysqlSection, PipelineSection, SinkCommon, SqlSection, StdoutSection};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration that passed every check.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub queue: QueueLimits,
    pub checkpoint_interval: Duration,
    pub source: SourceConfig,
    pub sinks: Vec<SinkConfig>,
    /// The pipeline's transforms (`[[transforms]]`), applied before fan-out.
    pub transforms: Option<Chain>,
    /// The admin HTTP server (`[admin]`), if configured.
    pub admin: Option<AdminConfig>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: std::net::SocketAddr,
    /// The bearer token every request but `/health` must carry (required off loopback).
    pub token: Option<rowbus_core::secret::Secret>,
    /// `/ready` answers 503 while the source lags more than this.
    pub ready_max_lag: Duration,
    /// A sink whose oldest held change waited this long shows as stuck (status, dashboard).
    pub stuck_after: Duration,
}

#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub name: String,
    pub tables: TableFilter,
    pub batch_max_events: usize,
    /// Whether the sink receives schema changes and truncations.
    pub schema_changes: bool,
    pub delivery: DeliveryPolicy,
    /// Replay the sink's failure log before streaming.
    pub replay_failures_on_start: bool,
    /// The sink's own transforms, applied after the pipeline's.
    pub transforms: Option<Chain>,
    pub kind: SinkKind,
}

/// The one source of a process.
#[derive(Debug, Clone)]
pub enum SourceConfig {
    /// A MySQL or MariaDB server's binlog.
    Mysql(MysqlSourceConfig),
    /// Topics of rowbus, Debezium or Maxwell events.
    Kafka(rowbus_kafka::KafkaSourceConfig),
}

impl SourceConfig {
    pub fn name(&self) -> &str {
        match self {
            SourceConfig::Mysql(m) => &m.name,
            SourceConfig::Kafka(k) => &k.name,
        }
    }

    /// The tables whose changes the source passes on.
    pub fn tables(&self) -> &rowbus_core::table_filter::TableFilter {
        match self {
            SourceConfig::Mysql(m) => &m.tables,
            SourceConfig::Kafka(k) => &k.tables,
        }
    }

    /// The MySQL source's settings, when the source is one.
    pub fn mysql(&self) -> Option<&MysqlSourceConfig> {
        match self {
            SourceConfig::Mysql(m) => Some(m),
            SourceConfig::Kafka(_) => None,
        }
    }
}

#[derive(Debug, Clone)]
pub enum SinkKind {
    File(FileSinkConfig),
    Stdout,
    /// PostgreSQL or MySQL/MariaDB tables.
    Sql(Box<rowbus_sinks::sql::SqlSinkConfig>),
    /// Elasticsearch or OpenSearch indexes.
    Search(Box<rowbus_sinks::search::config::SearchSinkConfig>),
    /// Kafka topics.
    Kafka(Box<rowbus_sinks::kafka::config::KafkaSinkConfig>),
}

/// One problem in the configuration, at a field path.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a configuration file.
#[derive(Debug)]
pub struct ConfigErrors {
    pub file: PathBuf,
    pub errors: Vec<FieldError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} has {} error(s):",
            self.file.display(),
            self.errors.len()
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// Collects errors while sections are checked.
#[derive(Default)]
pub(crate) struct Errors(Vec<FieldError>);

impl Errors {
    /// How many errors were added so far.
    pub(crate) fn count(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            path: path.into(),
            message: message.into(),
        });
    }
}

pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let fail = |message: String| ConfigErrors {
        file: path.to_path_buf(),
        errors: vec![FieldError {
            path: String::new(),
            message,
        }],
    };
    let text =
        std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read the file: {e}")))?;
    parse(&text).map_err(|errors| ConfigErrors {
        file: path.to_path_buf(),
        errors,
    })
}

pub fn parse(text: &str) -> Result<Config, Vec<FieldError>> {
    let root: toml::Table = toml::from_str(text).map_err(|e| {
        vec![FieldError {
            path: String::new(),
            message: format!("not valid TOML: {}", e.to_string().trim()),
        }]
    })?;
    let mut errors = Errors::default();
    let config = check_root(root, &mut errors);
    match config {
        Some(config) if errors.0.is_empty() => Ok(config),
        _ => Err(errors.0),
    }
}

const ROOT_FIELDS: [&str; 6] = [
    "data_dir",
    "pipeline",
    "sources",
    "sinks",
    "transforms",
    "admin",
];

fn check_root(mut root: toml::Table, errors: &mut Errors) -> Option<Config> {
    for key in root.keys() {
        if !ROOT_FIELDS.contains(&key.as_str()) {
            errors.add(
                key.clone(),
                format!("unknown field, expected one of {}", ROOT_FIELDS.join(", ")),
            );
        }
    }
    let data_dir = match root.remove("data_dir") {
        None => PathBuf::from("./rowbus-data"),
        Some(toml::Value::String(s)) if !s.is_empty() => PathBuf::from(s),
        Some(other) => {
            errors.add(
                "data_dir",
                format!(
                    "expected a directory path string, found {}",
                    other.type_str()
                ),
            );
            PathBuf::new()
        }
    };
    let pipeline: Option<PipelineSection> =
        sections::typed(root.remove("pipeline"), "pipeline", errors);
    // Without an `[admin]` section there is no admin server.
    let admin = match root.remove("admin") {
        None => Some(None),
        section => {
            let admin: Option<sections::AdminSection> = sections::typed(section, "admin", errors);
            admin.and_then(|a| a.check(errors))
        }
    };
    let sources = sections::named_tables(root.remove("sources"), "sources", errors);
    let sinks = sections::named_tables(root.remove("sinks"), "sinks", errors);
    // Routes and copies name sinks by their section, whether or not the section is valid.
    let sink_names: Vec<String> = sinks.keys().cloned().collect();
    let steps: Option<Vec<StepConfig>> =
        sections::typed(root.remove("transforms"), "transforms", errors);

    let source = check_sources(sources, errors);
    let sinks = check_sinks(sinks, errors);
    let transforms = steps.and_then(|steps| {
        let level = rowbus_transform::Level::Pipeline { sinks: &sink_names };
        sections::transforms(&steps, "transforms", level, errors)
    });
    if let (Some(chain), Some(sinks)) = (&transforms, &sinks) {
        check_copies(chain, sinks, &sink_names, errors);
    }
    let pipeline = pipeline?;
    let checkpoint_interval = pipeline.checkpoint_interval(errors);
    Some(Config {
        data_dir,
        queue: QueueLimits {
            max_items: pipeline.queue_max_events,
            max_bytes: pipeline.queue_max_bytes,
        },
        checkpoint_interval: checkpoint_interval?,
        source: source?,
        sinks: sinks?,
        transforms,
        admin: admin?,
    })
}

/// A copy has its change's binlog position, which an effectively-once database sink would take
/// for one it already applied.
fn check_copies(chain: &Chain, sinks: &[SinkConfig], names: &[String], errors: &mut Errors) {
    for (path, targets) in chain.copies() {
        for name in targets.iter().map(|&i| &names[i]) {
            let sink = sinks.iter().find(|s| &s.name == name);
            if let Some(SinkKind::Sql(sql)) = sink.map(|s| &s.kind) {
                if sql.effectively_once {
                    errors.add(
                        path.clone(),
                        format!("sink `{name}` has effectively_once, which would skip a copy as already applied; copy to a sink without it"),
                    );
                }
            }
        }
    }
}

fn check_sources(
    sources: BTreeMap<String, toml::Table>,
    errors: &mut Errors,
) -> Option<SourceConfig> {
    if sources.is_empty() {
        errors.add(
            "sources",
            "at least one source is required, e.g. [sources.shop] with type = \"mysql\"",
        );
        return None;
    }
    if sources.len() > 1 {
        errors.add(
            "sources",
            "this version runs one source per process; run one rowbus per source",
        );
    }
    let mut first = None;
    for (name, table) in sources {
        let path = format!("sources.{name}");
        check_name(&name, &path, errors);
        let source = match sections::type_of(&table, &path, &["mysql", "kafka"], errors) {
            Some("mysql") => sections::typed::<MysqlSection>(Some(table.into()), &path, errors)
                .and_then(|s| s.check(&name, &path, errors))
                .map(SourceConfig::Mysql),
            Some("kafka") => {
                sections::typed::<KafkaSourceSection>(Some(table.into()), &path, errors)
                    .and_then(|s| s.check(&name, &path, errors))
                    .map(SourceConfig::Kafka)
            }
            _ => None,
        };
        first = first.or(source);
    }
    first
}

fn check_sinks(
    sinks: BTreeMap<String, toml::Table>,
    errors: &mut Errors,
) -> Option<Vec<SinkConfig>> {
    if sinks.is_empty() {
        errors.add(
            "sinks",
            "at least one sink is required, e.g. [sinks.out] with type = \"stdout\"",
        );
        return None;
    }
    let mut checked = Vec::new();
    for (name, table) in sinks {
        let path = format!("sinks.{name}");
        check_name(&name, &path, errors);
        let (common, own): (toml::Table, toml::Table) = table
            .into_iter()
            .partition(|(key, _)| sections::COMMON_SINK_FIELDS.contains(&key.as_str()));
        let common = sections::typed::<SinkCommon>(Some(common.into()), &path, errors);
        let sink = match sections::type_of(
            &own,
            &path,
            &[
                "file",
                "stdout",
                "postgres",
                "mysql",
                "opensearch",
                "elasticsearch",
                "kafka",
            ],
            errors,
        ) {
            Some("file") => sections::typed::<FileSection>(Some(own.into()), &path, errors)
                .zip(common)
                .and_then(|(s, common)| s.check(&name, &path, common, errors)),
            Some("stdout") => sections::typed::<StdoutSection>(Some(own.into()), &path, errors)
                .zip(common)
                .and_then(|(s, common)| s.check(&name, &path, common, errors)),
            Some("postgres" | "mysql") => {
                sections::typed::<SqlSection>(Some(own.into()), &path, errors)
                    .zip(common)
                    .and_then(|(s, common)| s.check(&name, &path, common, errors))
            }
            Some("kafka") => sections::typed::<KafkaSection>(Some(own.into()), &path, errors)
                .zip(common)
                .and_then(|(s, common)| s.check(&name, &path, common, errors)),
            Some("opensearch" | "elasticsearch") => {
                sections::typed::<SearchSection>(Some(own.into()), &path, errors)
                    .zip(common)
                    .and_then(|(s, common)| s.check(&name, &path, common, errors))
            }
            _ => None,
        };
        checked.extend(sink);
    }
    // Two file sinks on one file would take back each other's lines after a failed write.
    let mut paths = std::collections::BTreeMap::new();
    for sink in &checked {
        if let SinkKind::File(file) = &sink.kind {
            if let Some(other) = paths.insert(file.path.clone(), sink.name.clone()) {
                errors.add(
                    format!("sinks.{}.path", sink.name),
                    format!("is also the path of sink `{other}`; give each file sink its own file"),
                );
            }
        }
    }
    Some(checked)
}

/// Names become file names (checkpoints) and metric labels: letters, digits, `_` and `-` only.
fn check_name(name: &str, path: &str, errors: &mut Errors) {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        errors.add(path, "a name may use only letters, digits, `_` and `-`");
    }
}

#[cfg(test)]
mod tests;
