//! `type = "opensearch"` and `type = "elasticsearch"`: the search sink's section and its checks
//! (the URL, credentials from env or file, the CA and settings files, the bounds of a bulk request).

mod nest;

use super::sections::{check_duration, read_secret, sink_config, SinkCommon};
use super::{Errors, SinkConfig, SinkKind};
use rowbus_sinks::search::config::{Auth, SearchSinkConfig, WriteMode};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SearchSection {
    #[serde(rename = "type")]
    _kind: String,
    url: String,
    index: Option<String>,
    #[serde(default)]
    id_columns: BTreeMap<String, Vec<String>>,
    id_separator: Option<String>,
    write: Option<String>,
    workers: Option<usize>,
    bulk_max_bytes: Option<usize>,
    #[serde(default)]
    index_settings: BTreeMap<String, PathBuf>,
    user: Option<String>,
    password_env: Option<String>,
    password_file: Option<PathBuf>,
    api_key_env: Option<String>,
    api_key_file: Option<PathBuf>,
    ca_file: Option<PathBuf>,
    timeout: Option<String>,
    #[serde(default)]
    reindex_delete_old: bool,
    #[serde(default)]
    nest: Vec<nest::NestSection>,
}

impl SearchSection {
    pub fn check(
        mut self,
        name: &str,
        path: &str,
        common: SinkCommon,
        errors: &mut Errors,
    ) -> Option<SinkConfig> {
        let defaults = SearchSinkConfig::default();
        check_url(&self.url, path, errors);
        if common.schema_changes() {
            errors.add(
                format!("{path}.schema_changes"),
                "search sinks take row changes only; a truncation or schema change is applied to an index by hand (or rebuilt with `rowbus snapshot --reindex`)",
            );
        }
        let write = match self.write.as_deref() {
            None | Some("index") => Some(WriteMode::Index),
            Some("update") => Some(WriteMode::Update),
            Some(other) => {
                errors.add(
                    format!("{path}.write"),
                    format!("unknown value `{other}`, expected index or update"),
                );
                None
            }
        };
        let workers = self.workers.unwrap_or(defaults.workers);
        if !(1..=64).contains(&workers) {
            errors.add(format!("{path}.workers"), "must be between 1 and 64");
        }
        let bulk_max_bytes = self.bulk_max_bytes.unwrap_or(defaults.bulk_max_bytes);
        if bulk_max_bytes < 1024 {
            errors.add(format!("{path}.bulk_max_bytes"), "must be at least 1024");
        }
        for (table, columns) in &self.id_columns {
            check_table_name(table, &format!("{path}.id_columns"), errors);
            if columns.is_empty() {
                errors.add(format!("{path}.id_columns.{table}"), "must name a column");
            }
        }
        for (table, file) in &self.index_settings {
            let field = format!("{path}.index_settings.{table}");
            check_table_name(table, &format!("{path}.index_settings"), errors);
            check_json_file(file, &field, errors);
        }
        if let Some(ca) = &self.ca_file {
            if let Err(e) = std::fs::metadata(ca) {
                errors.add(
                    format!("{path}.ca_file"),
                    format!("cannot read {}: {e}", ca.display()),
                );
            }
        }
        let timeout = check_duration(
            self.timeout.as_deref().unwrap_or("30s"),
            &format!("{path}.timeout"),
            errors,
        );
        let auth = self.auth(path, errors);
        let nests = nest::check_nests(std::mem::take(&mut self.nest), path, errors);
        let kind = SinkKind::Search(Box::new(SearchSinkConfig {
            url: self.url.trim_end_matches('/').to_string(),
            index: self.index.unwrap_or(defaults.index),
            id_columns: self.id_columns,
            id_separator: self.id_separator.unwrap_or(defaults.id_separator),
            write: write?,
            workers: workers.clamp(1, 64),
            bulk_max_bytes,
            index_settings: self.index_settings,
            auth: auth?,
            ca_file: self.ca_file,
            timeout: timeout?,
            reindex_delete_old: self.reindex_delete_old,
            nests: nests?,
        }));
        sink_config(name, path, common, kind, errors)
    }

    /// Basic auth (`user` with a password from env or file) or an API key from env or file.
    fn auth(&self, path: &str, errors: &mut Errors) -> Option<Auth> {
        let password = read_secret(
            &self.password_env,
            &self.password_file,
            path,
            "password",
            errors,
        );
        let api_key = read_secret(
            &self.api_key_env,
            &self.api_key_file,
            path,
            "api_key",
            errors,
        );
        match (&self.user, password?, api_key?) {
            (Some(_), _, Some(_)) => {
                errors.add(
                    format!("{path}.api_key_env"),
                    "set user (basic auth) or an API key, not both",
                );
                None
            }
            (Some(user), Some(password), None) => Some(Auth::Basic {
                user: user.clone(),
                password,
            }),
            (Some(_), None, None) => {
                errors.add(
                    format!("{path}.password_env"),
                    "user needs a password: set password_env or password_file",
                );
                None
            }
            (None, Some(_), _) => {
                errors.add(format!("{path}.user"), "a password needs a user");
                None
            }
            (None, None, Some(key)) => Some(Auth::ApiKey(key)),
            (None, None, None) => Some(Auth::None),
        }
    }
}

fn check_url(url: &str, path: &str, errors: &mut Errors) {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        None => errors.add(format!("{path}.url"), "must start with http:// or https://"),
        // The URL is not echoed: it may hold a password.
        Some(rest) if rest.split('/').next().unwrap_or("").contains('@') => errors.add(
            format!("{path}.url"),
            "must not hold credentials: set user with password_env or password_file, or api_key_env",
        ),
        Some("") => errors.add(format!("{path}.url"), "has no host"),
        Some(_) => {}
    }
}

pub(super) fn check_table_name(table: &str, path: &str, errors: &mut Errors) {
    let ok = table
        .split_once('.')
        .is_some_and(|(d, t)| !d.is_empty() && !t.is_empty());
    if !ok {
        errors.add(path, format!("`{table}` is not of the form db.table"));
    }
}

fn check_json_file(file: &std::path::Path, path: &str, errors: &mut Errors) {
    let text = match std::fs::read(file) {
        Ok(text) => text,
        Err(e) => return errors.add(path, format!("cannot read {}: {e}", file.display())),
    };
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&text) {
        errors.add(path, format!("{} is not JSON: {e}", file.display()));
    }
}
