//! The sections of the configuration file as serde structs (unknown fields rejected), and their
//! checks beyond types: URLs, passwords from env or file, globs, start positions, durations.

use super::{duration, Errors, SinkConfig, SinkKind};
use rowbus_core::delivery::{DeliveryPolicy, OnFailure};
use rowbus_core::secret::Secret;
use rowbus_core::table_filter::TableFilter;
use rowbus_mysql::config::OnUnknownDdl;
use rowbus_mysql::{MysqlSourceConfig, OnPurged, SnapshotMode, StartFrom};
use rowbus_sinks::file::{FileSinkConfig, Fsync};
use rowbus_sinks::format::Format;
use rowbus_sinks::sql::{Dialect, SqlSinkConfig};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Deserializes `value` into `T`, recording an error at the exact field path on failure.
pub(super) fn typed<T: DeserializeOwned + Default>(
    value: Option<toml::Value>,
    path: &str,
    errors: &mut Errors,
) -> Option<T> {
    let Some(value) = value else {
        return Some(T::default());
    };
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(section) => Some(section),
        Err(e) => {
            let inner = e.path().to_string();
            let mut full = if inner == "." || inner.is_empty() {
                path.to_string()
            } else if inner.starts_with('[') {
                format!("{path}{inner}")
            } else {
                format!("{path}.{inner}")
            };
            let mut message = e.into_inner().to_string().trim().to_string();
            // Point a missing field's error at the field itself.
            if let Some(field) = message
                .strip_prefix("missing field `")
                .and_then(|m| m.strip_suffix('`'))
            {
                full = format!("{full}.{field}");
                message = "missing required field".into();
            }
            if message.starts_with("unknown field") && path.starts_with("sinks.") {
                message.push_str(&format!(
                    ", or one of the settings every sink has: {}",
                    COMMON_SINK_FIELDS.join(", ")
                ));
            }
            errors.add(full, message);
            None
        }
    }
}

/// `[sources.NAME]` / `[sinks.NAME]`: a table of named tables.
pub(super) fn named_tables(
    value: Option<toml::Value>,
    path: &str,
    errors: &mut Errors,
) -> BTreeMap<String, toml::Table> {
    let mut out = BTreeMap::new();
    match value {
        None => {}
        Some(toml::Value::Table(table)) => {
            for (name, section) in table {
                match section {
                    toml::Value::Table(t) => {
                        out.insert(name, t);
                    }
                    other => errors.add(
                        format!("{path}.{name}"),
                        format!("expected a table, found {}", other.type_str()),
                    ),
                }
            }
        }
        Some(other) => errors.add(
            path,
            format!(
                "expected a table of named sections, found {}",
                other.type_str()
            ),
        ),
    }
    out
}

/// The section's `type`, if it is one of `known`.
pub(super) fn type_of<'a>(
    table: &toml::Table,
    path: &str,
    known: &[&'a str],
    errors: &mut Errors,
) -> Option<&'a str> {
    match table.get("type") {
        None => errors.add(
            format!("{path}.type"),
            format!("missing field, expected one of: {}", known.join(", ")),
        ),
        Some(toml::Value::String(t)) => match known.iter().find(|k| **k == t) {
            Some(k) => return Some(*k),
            None => errors.add(
                format!("{path}.type"),
                format!("unknown type `{t}`, expected one of: {}", known.join(", ")),
            ),
        },
        Some(other) => errors.add(
            format!("{path}.type"),
            format!("expected a string, found {}", other.type_str()),
        ),
    }
    None
}

const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9180";

/// `[admin]`: the admin HTTP server; absent, there is none.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AdminSection {
    listen: Option<String>,
    token_env: Option<String>,
    token_file: Option<PathBuf>,
    #[serde(default = "ten_seconds")]
    ready_max_lag: String,
    #[serde(default = "ten_seconds")]
    stuck_after: String,
}

fn ten_seconds() -> String {
    "10s".into()
}

impl AdminSection {
    pub fn check(self, errors: &mut Errors) -> Option<Option<super::AdminConfig>> {
        // An `[admin]` section turns the server on, on loopback unless told otherwise.
        let listen = self.listen.unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.into());
        let address: Option<std::net::SocketAddr> = listen.parse().ok();
        if address.is_none() {
            errors.add(
                "admin.listen",
                format!("`{listen}` is not an IP address and port, e.g. \"127.0.0.1:9180\""),
            );
        }
        let token = read_secret(&self.token_env, &self.token_file, "admin", "token", errors)
            .map(|token| token.filter(|t| !t.expose().is_empty()));
        if let (Some(address), Some(None)) = (address, &token) {
            if !address.ip().is_loopback() {
                errors.add("admin.listen", format!("{address} is reachable from other machines: set token_env or token_file, whose bearer token every request but /health must carry"));
            }
        }
        let lag = check_duration(&self.ready_max_lag, "admin.ready_max_lag", errors);
        let stuck_after = check_duration(&self.stuck_after, "admin.stuck_after", errors);
        Some(Some(super::AdminConfig {
            listen: address?,
            token: token?,
            ready_max_lag: lag?,
            stuck_after: stuck_after?,
        }))
    }
}

/// Compiles transform steps, recording each problem at its field.
pub(super) fn transforms(
    steps: &[rowbus_transform::StepConfig],
    path: &str,
    level: rowbus_transform::Level<'_>,
    errors: &mut Errors,
) -> Option<rowbus_transform::Chain> {
    let mut problems = Vec::new();
    let chain = rowbus_transform::compile(steps, path, level, &mut problems);
    for (at, message) in problems {
        errors.add(at, message);
    }
    chain
}

pub(super) fn check_duration(text: &str, path: &str, errors: &mut Errors) -> Option<Duration> {
    let parsed = duration::parse(text).filter(|d| !d.is_zero());
    if parsed.is_none() {
        errors.add(
            path,
            format!("`{text}` is not a duration; write e.g. \"500ms\", \"5s\" or \"1m\""),
        );
    }
    parsed
}

pub(super) fn check_tables(
    include: &[String],
    exclude: &[String],
    path: &str,
    include_name: &str,
    errors: &mut Errors,
) -> Option<TableFilter> {
    for (field, patterns) in [(include_name, include), ("exclude", exclude)] {
        for (i, pattern) in patterns.iter().enumerate() {
            if let Err(e) = rowbus_core::table_filter::validate(pattern) {
                errors.add(format!("{path}.{field}[{i}]"), e.to_string());
            }
        }
    }
    TableFilter::new(include, exclude).ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PipelineSection {
    #[serde(default = "default_queue_events")]
    pub queue_max_events: usize,
    #[serde(default = "default_queue_bytes")]
    pub queue_max_bytes: usize,
    #[serde(default = "default_checkpoint_interval")]
    checkpoint_interval: String,
}

fn default_queue_events() -> usize {
    10_000
}
fn default_queue_bytes() -> usize {
    64 << 20
}
fn default_checkpoint_interval() -> String {
    "1s".into()
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            queue_max_events: default_queue_events(),
            queue_max_bytes: default_queue_bytes(),
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

impl PipelineSection {
    pub fn checkpoint_interval(&self, errors: &mut Errors) -> Option<Duration> {
        if self.queue_max_events == 0 {
            errors.add("pipeline.queue_max_events", "must be at least 1");
        }
        if self.queue_max_bytes < 4096 {
            errors.add("pipeline.queue_max_bytes", "must be at least 4096");
        }
        check_duration(
            &self.checkpoint_interval,
            "pipeline.checkpoint_interval",
            errors,
        )
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MysqlSection {
    #[serde(rename = "type")]
    _kind: String,
    url: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    server_id: u32,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default = "default_start")]
    start: String,
    #[serde(default = "default_snapshot")]
    snapshot: String,
    #[serde(default = "default_on_purged")]
    on_purged: String,
    #[serde(default = "default_snapshot_chunk_rows")]
    snapshot_chunk_rows: usize,
    #[serde(default = "default_heartbeat")]
    heartbeat: String,
    #[serde(default = "default_connect_timeout")]
    connect_timeout: String,
    #[serde(default = "default_max_backoff")]
    max_backoff: String,
    #[serde(default = "default_on_unknown_ddl")]
    on_unknown_ddl: String,
}

fn default_start() -> String {
    "earliest".into()
}
fn default_snapshot() -> String {
    "never".into()
}
fn default_on_purged() -> String {
    "fail".into()
}
fn default_snapshot_chunk_rows() -> usize {
    10_000
}
fn default_heartbeat() -> String {
    "5s".into()
}
fn default_connect_timeout() -> String {
    "10s".into()
}
fn default_max_backoff() -> String {
    "30s".into()
}
fn default_on_unknown_ddl() -> String {
    "stop".into()
}

/// `SCHEME://user@host:port[/database]`, split; a password in the URL is refused.
struct DbUrl {
    user: String,
    host: String,
    port: u16,
    database: Option<String>,
}

/// The URL forms the configuration takes: schemes, default port, whether a database may follow.
struct UrlForm {
    schemes: &'static [&'static str],
    default_port: u16,
    database: bool,
    shape: &'static str,
}

const MYSQL_URL: UrlForm = UrlForm {
    schemes: &["mysql://", "mariadb://"],
    default_port: 3306,
    database: false,
    shape: "mysql://USER@HOST:PORT",
};

const POSTGRES_URL: UrlForm = UrlForm {
    schemes: &["postgres://", "postgresql://"],
    default_port: 5432,
    database: true,
    shape: "postgres://USER@HOST:PORT/DATABASE",
};

fn parse_url(url: &str, form: &UrlForm, path: &str, errors: &mut Errors) -> Option<DbUrl> {
    let path = format!("{path}.url");
    let Some(rest) = form.schemes.iter().find_map(|s| url.strip_prefix(s)) else {
        errors.add(path, format!("expected {}", form.shape));
        return None;
    };
    let rest = rest.trim_end_matches('/');
    let (rest, database) = match rest.split_once('/') {
        Some((r, db)) if form.database => (r, Some(db.to_string())),
        _ => (rest, None),
    };
    let (user, hostport) = rest.rsplit_once('@').unwrap_or(("root", rest));
    if user.contains(':') {
        errors.add(
            path,
            "contains a password; remove it from the URL and set password_env or password_file",
        );
        return None;
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().ok()),
        None => (hostport, Some(form.default_port)),
    };
    match port {
        Some(port) if !host.is_empty() && !user.is_empty() && !host.contains('/') => Some(DbUrl {
            user: user.into(),
            host: host.into(),
            port,
            database: database.filter(|d| !d.is_empty()),
        }),
        _ => {
            // The URL is not echoed: a malformed one may hold a password.
            errors.add(path, format!("is not of the form {}", form.shape));
            None
        }
    }
}

/// A secret from `{what}_env` or `{what}_file` (`what`: `password`, `token`), at most one set.
pub(super) fn read_secret(
    env: &Option<String>,
    file: &Option<PathBuf>,
    path: &str,
    what: &str,
    errors: &mut Errors,
) -> Option<Option<Secret>> {
    match (env, file) {
        (Some(_), Some(_)) => {
            errors.add(
                format!("{path}.{what}_env"),
                format!("set {what}_env or {what}_file, not both"),
            );
            None
        }
        (Some(var), None) => match std::env::var(var) {
            Ok(value) => Some(Some(Secret::new(value))),
            Err(_) => {
                errors.add(
                    format!("{path}.{what}_env"),
                    format!("environment variable {var} is not set"),
                );
                None
            }
        },
        (None, Some(file)) => match std::fs::read_to_string(file) {
            Ok(text) => Some(Some(Secret::new(text.trim_end_matches(['\n', '\r'])))),
            Err(e) => {
                errors.add(
                    format!("{path}.{what}_file"),
                    format!("cannot read {}: {e}", file.display()),
                );
                None
            }
        },
        (None, None) => Some(None),
    }
}

impl MysqlSection {
    pub fn check(self, name: &str, path: &str, errors: &mut Errors) -> Option<MysqlSourceConfig> {
        let url = parse_url(&self.url, &MYSQL_URL, path, errors);
        let password = read_secret(
            &self.password_env,
            &self.password_file,
            path,
            "password",
            errors,
        );
        if self.server_id == 0 {
            errors.add(
                format!("{path}.server_id"),
                "must be between 1 and 4294967295, unique among the server's replicas",
            );
        }
        let tables = check_tables(&self.include, &self.exclude, path, "include", errors);
        let start = StartFrom::parse(&self.start);
        if start.is_none() {
            errors.add(
                format!("{path}.start"),
                format!(
                    "`{}` is not earliest, latest, FILE:POS or a GTID set/list",
                    self.start
                ),
            );
        }
        let snapshot = SnapshotMode::parse(&self.snapshot);
        if snapshot.is_none() {
            errors.add(
                format!("{path}.snapshot"),
                format!(
                    "unknown value `{}`, expected never, initial or when_needed",
                    self.snapshot
                ),
            );
        }
        let on_purged = OnPurged::parse(&self.on_purged);
        if on_purged.is_none() {
            errors.add(
                format!("{path}.on_purged"),
                format!(
                    "unknown value `{}`, expected fail or snapshot",
                    self.on_purged
                ),
            );
        }
        if !(1..=1_000_000).contains(&self.snapshot_chunk_rows) {
            errors.add(
                format!("{path}.snapshot_chunk_rows"),
                "must be between 1 and 1000000",
            );
        }
        let heartbeat = check_duration(&self.heartbeat, &format!("{path}.heartbeat"), errors);
        let connect_timeout = check_duration(
            &self.connect_timeout,
            &format!("{path}.connect_timeout"),
            errors,
        );
        let max_backoff = check_duration(&self.max_backoff, &format!("{path}.max_backoff"), errors);
        let on_unknown_ddl = OnUnknownDdl::parse(&self.on_unknown_ddl);
        if on_unknown_ddl.is_none() {
            errors.add(
                format!("{path}.on_unknown_ddl"),
                format!(
                    "unknown value `{}`, expected stop or refresh",
                    self.on_unknown_ddl
                ),
            );
        }
        let url = url?;
        Some(MysqlSourceConfig {
            name: name.to_string(),
            host: url.host,
            port: url.port,
            user: url.user,
            password: password?,
            server_id: self.server_id,
            // Set from the data directory's instance id when the pipeline starts.
            replica_name: format!("rowbus-{name}"),
            tables: tables?,
            start: start?,
            heartbeat: heartbeat?,
            connect_timeout: connect_timeout?,
            max_backoff: max_backoff?,
            on_unknown_ddl: on_unknown_ddl?,
            // Set in the data directory when the pipeline starts.
            history_path: None,
            snapshot: snapshot?,
            on_purged: on_purged?,
            snapshot_chunk_rows: self.snapshot_chunk_rows,
            snapshot_requests: None,
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSection {
    #[serde(rename = "type")]
    _kind: String,
    path: PathBuf,
    #[serde(default)]
    fsync: Fsync,
    max_event_bytes: Option<usize>,
    format: Option<String>,
}

/// The most events handed to a sink at once, by type: a file syncs once per batch, so larger
/// batches pay fewer fsyncs (10,000 measured 44% faster than 1,000 on a 1,000,000-row
/// transaction, for 20 MB more at peak); a database applies a batch as one transaction per worker,
/// so larger batches pay fewer commits (hand-timed A/B in docs/performance-log.md, 2026-12-05),
/// while a rejected row replays a larger batch event by event. A sink's queue holds 10,000
/// events by default (`pipeline.queue_max_events`), which bounds a batch too.
fn default_batch(kind: &SinkKind) -> usize {
    match kind {
        SinkKind::File(_) => 10_000,
        SinkKind::Stdout => 1_000,
        SinkKind::Sql(_) => 10_000,
        SinkKind::Search(_) => 5_000,
        SinkKind::Kafka(_) => 10_000,
    }
}

impl FileSection {
    pub fn check(
        self,
        name: &str,
        path: &str,
        common: SinkCommon,
        errors: &mut Errors,
    ) -> Option<SinkConfig> {
        if self.path.as_os_str().is_empty() {
            errors.add(format!("{path}.path"), "must not be empty");
        }
        if self.max_event_bytes == Some(0) {
            errors.add(format!("{path}.max_event_bytes"), "must be at least 1");
        }
        let format = check_format(self.format.as_deref(), path, errors);
        let kind = SinkKind::File(FileSinkConfig {
            path: self.path,
            fsync: self.fsync,
            max_event_bytes: self.max_event_bytes,
            format: format?,
        });
        sink_config(name, path, common, kind, errors)
    }
}

/// A sink's `format`: native (the default), debezium, maxwell or canal.
pub(super) fn check_format(name: Option<&str>, path: &str, errors: &mut Errors) -> Option<Format> {
    let Some(name) = name else {
        return Some(Format::Native);
    };
    let format = Format::parse(name);
    if format.is_none() {
        errors.add(
            format!("{path}.format"),
            format!("unknown format `{name}`, expected native, debezium, maxwell or canal"),
        );
    }
    format
}

/// The settings every sink has, whatever its type (split from its section by `COMMON_SINK_FIELDS`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SinkCommon {
    #[serde(default)]
    tables: Vec<String>,
    /// Default by sink type (`default_batch`).
    batch_max_events: Option<usize>,
    #[serde(default)]
    schema_changes: bool,
    #[serde(default = "default_on_failure")]
    on_failure: String,
    max_attempts: Option<u32>,
    #[serde(default = "default_degraded_after")]
    degraded_after: u32,
    #[serde(default = "default_max_failures")]
    max_failures: usize,
    #[serde(default = "default_max_failures_within")]
    max_failures_within: String,
    #[serde(default)]
    replay_failures_on_start: bool,
    #[serde(default)]
    transforms: Vec<rowbus_transform::StepConfig>,
}

impl SinkCommon {
    pub(super) fn schema_changes(&self) -> bool {
        self.schema_changes
    }
}

pub(super) const COMMON_SINK_FIELDS: [&str; 10] = [
    "tables",
    "batch_max_events",
    "schema_changes",
    "on_failure",
    "max_attempts",
    "degraded_after",
    "max_failures",
    "max_failures_within",
    "replay_failures_on_start",
    "transforms",
];

fn default_on_failure() -> String {
    "park_key".into()
}
fn default_degraded_after() -> u32 {
    DeliveryPolicy::default().degraded_after
}
fn default_max_failures() -> usize {
    DeliveryPolicy::default().max_failures
}
fn default_max_failures_within() -> String {
    "1m".into()
}

/// The common settings, checked, around the sink's own `kind`.
pub(super) fn sink_config(
    name: &str,
    path: &str,
    common: SinkCommon,
    kind: SinkKind,
    errors: &mut Errors,
) -> Option<SinkConfig> {
    let tables = check_tables(&common.tables, &[], path, "tables", errors);
    let batch_max_events = common
        .batch_max_events
        .unwrap_or_else(|| default_batch(&kind));
    if batch_max_events == 0 {
        errors.add(format!("{path}.batch_max_events"), "must be at least 1");
    }
    let on_failure = match common.on_failure.as_str() {
        "park_key" => Some(OnFailure::ParkKey),
        "skip_event" => Some(OnFailure::SkipEvent),
        other => {
            errors.add(
                format!("{path}.on_failure"),
                format!("unknown value `{other}`, expected park_key or skip_event"),
            );
            None
        }
    };
    if common.max_attempts == Some(0) {
        errors.add(format!("{path}.max_attempts"), "must be at least 1");
    }
    if common.degraded_after == 0 {
        errors.add(format!("{path}.degraded_after"), "must be at least 1");
    }
    let within = check_duration(
        &common.max_failures_within,
        &format!("{path}.max_failures_within"),
        errors,
    );
    Some(SinkConfig {
        name: name.to_string(),
        tables: tables?,
        batch_max_events: batch_max_events.max(1),
        schema_changes: common.schema_changes,
        delivery: DeliveryPolicy {
            max_attempts: common.max_attempts,
            degraded_after: common.degraded_after,
            on_failure: on_failure?,
            max_failures: common.max_failures,
            max_failures_within: within?,
        },
        replay_failures_on_start: common.replay_failures_on_start,
        transforms: transforms(
            &common.transforms,
            &format!("{path}.transforms"),
            rowbus_transform::Level::Sink,
            errors,
        ),
        kind,
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StdoutSection {
    #[serde(rename = "type")]
    _kind: String,
}

impl StdoutSection {
    pub fn check(
        self,
        name: &str,
        path: &str,
        common: SinkCommon,
        errors: &mut Errors,
    ) -> Option<SinkConfig> {
        sink_config(name, path, common, SinkKind::Stdout, errors)
    }
}

/// `type = "postgres"` and `type = "mysql"`: the database sinks.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SqlSection {
    #[serde(rename = "type")]
    kind: String,
    url: String,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    /// PostgreSQL: the target schema; MySQL: the target database. `{db}` is the source database.
    schema: Option<String>,
    #[serde(default = "default_table_template")]
    table: String,
    #[serde(default = "default_workers")]
    workers: usize,
    #[serde(default)]
    effectively_once: bool,
    /// MySQL: the database holding `rowbus_applied` (effectively once).
    state_database: Option<String>,
    #[serde(default)]
    exclude_columns: Vec<String>,
    #[serde(default)]
    rename_columns: BTreeMap<String, String>,
    #[serde(default)]
    create_tables: bool,
    /// MySQL: run the source's schema changes on the target (with `schema_changes = true`).
    #[serde(default)]
    apply_ddl: bool,
    /// `"batch"` (batches over parallel workers) or `"source"` (one target transaction per
    /// source transaction).
    transactions: Option<String>,
}

fn default_table_template() -> String {
    "{table}".into()
}
fn default_workers() -> usize {
    4
}

impl SqlSection {
    pub fn check(
        self,
        name: &str,
        path: &str,
        common: SinkCommon,
        errors: &mut Errors,
    ) -> Option<SinkConfig> {
        let postgres = self.kind == "postgres";
        let form = if postgres { &POSTGRES_URL } else { &MYSQL_URL };
        let url = parse_url(&self.url, form, path, errors);
        let password = read_secret(
            &self.password_env,
            &self.password_file,
            path,
            "password",
            errors,
        );
        if self.workers == 0 || self.workers > 64 {
            errors.add(format!("{path}.workers"), "must be between 1 and 64");
        }
        if self.table.is_empty() {
            errors.add(format!("{path}.table"), "must not be empty");
        }
        if !postgres && self.effectively_once && self.state_database.is_none() {
            errors.add(
                format!("{path}.state_database"),
                "required with effectively_once: the database that holds rowbus_applied",
            );
        }
        if postgres && self.state_database.is_some() {
            errors.add(
                format!("{path}.state_database"),
                "only for type = \"mysql\"; PostgreSQL keeps rowbus_applied in the URL's database",
            );
        }
        if self.apply_ddl {
            let mapped = !self.exclude_columns.is_empty()
                || !self.rename_columns.is_empty()
                || self.table != "{table}";
            let why = if postgres {
                Some("only for type = \"mysql\": PostgreSQL targets take truncations, and other schema changes are altered by hand")
            } else if !common.schema_changes {
                Some("needs schema_changes = true, which sends the schema changes to the sink")
            } else if !self.effectively_once {
                Some("needs effectively_once = true: MySQL commits a schema change at once, and only the recorded position keeps rows from before it from being applied again after it")
            } else if mapped {
                Some("the statements run as the source ran them: not with table, rename_columns or exclude_columns")
            } else {
                None
            };
            if let Some(why) = why {
                errors.add(format!("{path}.apply_ddl"), why);
            }
        }
        let url = url?;
        let database = if postgres {
            url.database.clone().unwrap_or_else(|| url.user.clone())
        } else {
            self.state_database.clone().unwrap_or_default()
        };
        let source_transactions = match self.transactions.as_deref() {
            None | Some("batch") => false,
            Some("source") => true,
            Some(other) => {
                errors.add(
                    format!("{path}.transactions"),
                    format!("unknown value `{other}`, expected batch or source"),
                );
                false
            }
        };
        let kind = SinkKind::Sql(Box::new(SqlSinkConfig {
            name: name.to_string(),
            dialect: if postgres {
                Dialect::Postgres
            } else {
                Dialect::Mysql
            },
            host: url.host,
            port: url.port,
            user: url.user,
            password: password?,
            database,
            schema: self.schema.unwrap_or_else(|| "{db}".into()),
            table: self.table,
            workers: self.workers.clamp(1, 64),
            exclude_columns: self.exclude_columns,
            rename_columns: self.rename_columns,
            effectively_once: self.effectively_once,
            apply_ddl: self.apply_ddl,
            create_tables: self.create_tables,
            source_transactions,
            // Set from the source when the pipeline starts.
            source: None,
            // Completed with the installation and the source when the pipeline starts.
            marker_key: name.to_string(),
        }));
        sink_config(name, path, common, kind, errors)
    }
}
