//! The search sink: keeps Elasticsearch 7/8 or OpenSearch 2/3 indexes in step with source tables
//! over the `_bulk` REST API. A batch becomes bulk actions (`bulk`), one per document, each carrying
//! an external version from the source position (`version`) so that an older write never replaces
//! a newer document; the actions are partitioned by document id over `workers` bulk requests in
//! flight (so one document's changes stay in order), each request bounded by bytes; the response is
//! read item by item (`response`). `rebuild` moves a table's alias to a rebuilt index; `nest` keeps
//! child rows inside their parents' documents.

pub mod bulk;
pub mod config;
pub mod http;
pub mod nest;
pub mod rebuild;
pub mod response;
pub mod version;

use crate::encode::NativeEncoder;
use bulk::Action;
use config::SearchSinkConfig;
use http::Http;
use rebuild::Rebuilds;
use reqwest::Method;
use rowbus_core::sink::{BoxFuture, Sink, SinkError};
use rowbus_core::{ChangeEvent, Op};
use std::collections::HashSet;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

pub struct SearchSink {
    config: Arc<SearchSinkConfig>,
    http: Http,
    encoder: NativeEncoder,
    /// Indexes known to exist (created with their settings, or found), per sink instance.
    ready: HashSet<Arc<str>>,
    rebuilds: Rebuilds,
}

impl SearchSink {
    /// A sink for `config`; fails only on a CA file that cannot be read or parsed.
    pub fn new(config: SearchSinkConfig) -> Result<Self, String> {
        let http = Http::new(&config)?;
        Ok(SearchSink {
            config: Arc::new(config),
            http,
            encoder: NativeEncoder::default(),
            ready: HashSet::new(),
            rebuilds: Rebuilds::default(),
        })
    }

    /// Writes the batch's changes, and takes its rebuild markers in order between them.
    async fn write_batch(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        let mut rest = batch;
        while let Some(at) = rest.iter().position(|e| is_marker(e)) {
            self.write_changes(&rest[..at]).await?;
            self.take_marker(&rest[at]).await?;
            rest = &rest[at + 1..];
        }
        self.write_changes(rest).await
    }

    async fn take_marker(&mut self, marker: &ChangeEvent) -> Result<(), SinkError> {
        let table = (&*marker.db, &*marker.table);
        let id = match marker.key.values.first() {
            Some(rowbus_core::Value::Text(id)) => id.to_string(),
            _ => return Err(SinkError::permanent("a rebuild marker without its id")),
        };
        if self.config.is_nested(table.0, table.1) {
            return Err(SinkError::permanent(format!(
                "{}.{} is nested (a child or a parent in nest): its index cannot be rebuilt with --reindex",
                table.0, table.1
            )));
        }
        match marker.op {
            Op::ReindexBegin => {
                let http = &self.http;
                self.rebuilds.begin(http, &self.config, table, &id).await
            }
            _ => {
                let http = &self.http;
                self.rebuilds.end(http, &self.config, table, &id).await
            }
        }
    }

    async fn write_changes(&mut self, changes: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        if !self.config.nests.is_empty() {
            let (nested, plain): (Vec<_>, Vec<_>) = changes
                .iter()
                .filter(|e| e.op.is_row_change())
                .partition(|e| self.config.is_nested(&e.db, &e.table));
            if !nested.is_empty() {
                let plain: Vec<Arc<ChangeEvent>> = plain.into_iter().cloned().collect();
                self.write_plain(&plain).await?;
                return self.write_nested(&nested).await;
            }
        }
        self.write_plain(changes).await
    }

    /// Writes changes of tables without nesting: one versioned action per document.
    async fn write_plain(&mut self, changes: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut actions =
            bulk::plan(&self.config, &mut self.encoder, changes).map_err(SinkError::permanent)?;
        let indexes: Vec<Arc<str>> = actions.iter().map(|a| a.index.clone()).collect();
        self.prepare_indexes(&indexes).await?;
        let mut copies = Vec::new();
        for action in &actions {
            if let Some(building) = self.rebuilds.target(&self.http, &action.index).await? {
                copies.push(action.retargeted(&building));
            }
        }
        actions.extend(copies);
        let parts = partition(actions, self.config.workers);
        let sends = parts
            .into_iter()
            .filter(|part| !part.is_empty())
            .map(|part| send_part(&self.http, self.config.bulk_max_bytes, part));
        let results = futures_util::future::join_all(sends).await;
        worst(results)
    }

    /// Writes changes of nested tables and their parents into the parents' documents.
    async fn write_nested(&mut self, changes: &[&Arc<ChangeEvent>]) -> Result<(), SinkError> {
        let docs =
            nest::plan(&self.config, &mut self.encoder, changes).map_err(SinkError::permanent)?;
        let indexes: Vec<Arc<str>> = docs.iter().map(|d| d.index.clone()).collect();
        self.prepare_indexes(&indexes).await?;
        nest::write(&self.http, self.config.bulk_max_bytes, docs).await
    }

    /// Creates the indexes of this batch that are not known to exist yet and need settings: those
    /// with a settings file, and those of parents of nested children (whose versions are not
    /// indexed).
    async fn prepare_indexes(&mut self, indexes: &[Arc<str>]) -> Result<(), SinkError> {
        if self.config.index_settings.is_empty() && self.config.nests.is_empty() {
            return Ok(());
        }
        for index in indexes {
            if self.ready.contains(index) {
                continue;
            }
            let of_index = |table: &str| {
                let (db, t) = table.split_once('.').unwrap_or(("", table));
                *self.config.index_of(db, t) == **index
            };
            let settings = self.config.index_settings.iter().find(|(t, _)| of_index(t));
            let parent = self.config.nests.iter().any(|n| of_index(&n.into));
            if settings.is_some() || parent {
                let file = settings.map(|(_, path)| path.as_path());
                create_index(&self.http, index, file, parent).await?;
            }
            self.ready.insert(index.clone());
        }
        Ok(())
    }
}

impl Sink for SearchSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_batch(batch))
    }
}

fn is_marker(e: &ChangeEvent) -> bool {
    matches!(e.op, Op::ReindexBegin | Op::ReindexEnd)
}

/// Splits actions over `workers` lists by document, keeping their order within each.
fn partition(actions: Vec<Action>, workers: usize) -> Vec<Vec<Action>> {
    let mut parts: Vec<Vec<Action>> = (0..workers).map(|_| Vec::new()).collect();
    if workers == 1 {
        parts[0] = actions;
        return parts;
    }
    let hasher = std::collections::hash_map::RandomState::new();
    for action in actions {
        let mut h = hasher.build_hasher();
        action.index.hash(&mut h);
        action.id.hash(&mut h);
        parts[(h.finish() % workers as u64) as usize].push(action);
    }
    parts
}

/// Sends one worker's actions as bulk requests of at most `bulk_max_bytes`, one after another.
async fn send_part(http: &Http, max_bytes: usize, actions: Vec<Action>) -> Result<(), SinkError> {
    let mut body = Vec::with_capacity(max_bytes.min(1 << 20));
    for action in actions {
        if !body.is_empty() && body.len() + action.lines.len() > max_bytes {
            send_bulk(http, std::mem::take(&mut body)).await?;
        }
        body.extend_from_slice(&action.lines);
    }
    if !body.is_empty() {
        send_bulk(http, body).await?;
    }
    Ok(())
}

async fn send_bulk(http: &Http, body: Vec<u8>) -> Result<(), SinkError> {
    let bytes = body.len();
    let (status, body) = http
        .send(Method::POST, "_bulk", "application/x-ndjson", body)
        .await?;
    match status {
        200 => response::outcome(&body),
        413 => Err(SinkError::permanent(format!(
            "the server refused a bulk request of {bytes} bytes as too large: lower bulk_max_bytes, or raise the server's http.max_content_length"
        ))),
        other => Err(http.error("_bulk", other, &body)),
    }
}

/// Sends a bulk request of writes guarded by sequence numbers; the documents changed meanwhile.
async fn send_guarded(http: &Http, body: Vec<u8>) -> Result<Vec<(String, String)>, SinkError> {
    let (status, body) = http
        .send(Method::POST, "_bulk", "application/x-ndjson", body)
        .await?;
    match status {
        200 => response::outcome_guarded(&body),
        other => Err(http.error("_bulk", other, &body)),
    }
}

/// Creates an index with the settings and mappings of `path` (if any), and for a parent of nested
/// children a mapping that leaves their versions unindexed; one that exists already, as an index
/// or an alias, is fine.
async fn create_index(
    http: &Http,
    index: &str,
    path: Option<&std::path::Path>,
    parent: bool,
) -> Result<(), SinkError> {
    let settings = index_body(path, parent)?;
    let (status, body) = http
        .send(Method::PUT, index, "application/json", settings)
        .await?;
    let text = String::from_utf8_lossy(&body);
    let exists = status == 400
        && (text.contains("resource_already_exists_exception") || text.contains("already exists"));
    match status {
        200 => {
            let settings = path.map(|p| p.display().to_string());
            tracing::info!(%index, ?settings, "created the index");
            Ok(())
        }
        _ if exists => Ok(()),
        other => Err(http.error(&format!("creating index {index}"), other, &body)),
    }
}

/// The body that creates an index: the settings file's, with the versions' field mapped as not
/// indexed for a parent of nested children.
fn index_body(path: Option<&std::path::Path>, parent: bool) -> Result<Vec<u8>, SinkError> {
    let text = match path {
        Some(path) => std::fs::read(path).map_err(|e| {
            SinkError::fatal(format!(
                "cannot read the index settings {}: {e}",
                path.display()
            ))
        })?,
        None => b"{}".to_vec(),
    };
    if !parent {
        return Ok(text);
    }
    let mut body: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| SinkError::fatal(format!("the index settings are not JSON: {e}")))?;
    let properties = body
        .as_object_mut()
        .map(|b| b.entry("mappings").or_insert_with(|| serde_json::json!({})))
        .and_then(|m| m.as_object_mut())
        .map(|m| {
            m.entry("properties")
                .or_insert_with(|| serde_json::json!({}))
        })
        .and_then(|p| p.as_object_mut())
        .ok_or_else(|| SinkError::fatal("the index settings' mappings are not JSON objects"))?;
    properties
        .entry(nest::doc::META)
        .or_insert_with(|| serde_json::json!({"type": "object", "enabled": false}));
    Ok(serde_json::to_vec(&body).expect("JSON"))
}

/// The outcome of parallel requests: the worst error (`SinkError::worst`), or success.
fn worst(results: Vec<Result<(), SinkError>>) -> Result<(), SinkError> {
    SinkError::worst(results.into_iter().filter_map(Result::err)).map_or(Ok(()), Err)
}
