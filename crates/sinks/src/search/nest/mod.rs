//! Denormalized documents: a child table's rows kept as an array field inside its parent's
//! documents (`nest` in the sink's settings). Changes of a parent table and of its children become
//! edits of parent documents (`plan`), applied by read-modify-write: the documents are read with
//! `_mget`, changed in memory (`doc`, where each part carries its own version, so replays and
//! older writes change nothing) and written back guarded by their sequence numbers, so that a
//! document changed meanwhile is read and changed again rather than overwritten.

pub mod doc;

use super::bulk::{doc_id, joined_id};
use super::config::{Nest, SearchSinkConfig};
use super::http::Http;
use super::version::version_of;
use crate::encode::NativeEncoder;
use doc::{Edit, Source, What};
use reqwest::Method;
use rowbus_core::sink::SinkError;
use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Row};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Documents read and written in one round trip each.
const DOCS_PER_REQUEST: usize = 500;
/// Rounds of reading again the documents another writer changed, before the batch is retried.
const ROUNDS: usize = 5;

/// The edits of one parent document, in the order of the changes.
#[derive(Debug)]
pub struct DocEdits {
    pub index: Arc<str>,
    pub id: String,
    /// The array fields of the parent's documents.
    pub fields: Arc<[Arc<str>]>,
    pub edits: Vec<Edit>,
}

/// The edits a batch of changes of nested tables makes to parent documents, per document.
pub fn plan(
    config: &SearchSinkConfig,
    encoder: &mut NativeEncoder,
    changes: &[&Arc<ChangeEvent>],
) -> Result<Vec<DocEdits>, String> {
    let mut docs: Vec<DocEdits> = Vec::new();
    let mut at: HashMap<(Arc<str>, String), usize> = HashMap::new();
    let mut fields: HashMap<String, Arc<[Arc<str>]>> = HashMap::new();
    let mut push = |parent: &str, id: String, edit: Edit| {
        let (db, table) = parent.split_once('.').unwrap_or(("", parent));
        let index: Arc<str> = config.index_of(db, table).into();
        let fields = fields
            .entry(parent.to_string())
            .or_insert_with(|| config.nest_fields_of(parent).into())
            .clone();
        let n = *at.entry((index.clone(), id.clone())).or_insert_with(|| {
            docs.push(DocEdits {
                index,
                id,
                fields,
                edits: Vec::new(),
            });
            docs.len() - 1
        });
        docs[n].edits.push(edit);
    };
    for e in changes {
        let version = version_of(&e.source)?;
        let name = format!("{}.{}", e.db, e.table);
        let nests = config.nests_of_child(&e.db, &e.table);
        if nests.is_empty() {
            let new = e.after.as_ref().map(|r| doc_id(config, e, r)).transpose()?;
            let old = e
                .before
                .as_ref()
                .map(|r| doc_id(config, e, r))
                .transpose()?;
            if let Some(old) = old.filter(|old| Some(old) != new.as_ref()) {
                push(&name, old, parent_edit(version, None));
            }
            if let (Some(id), Some(after)) = (new, &e.after) {
                let row = source(encoder, after)?;
                push(&name, id, parent_edit(version, Some(row)));
            }
            continue;
        }
        for nest in nests {
            let new = e
                .after
                .as_ref()
                .map(|r| place(config, nest, e, r))
                .transpose()?;
            let old = e
                .before
                .as_ref()
                .map(|r| place(config, nest, e, r))
                .transpose()?;
            if let Some((parent, id)) = old.filter(|old| Some(old) != new.as_ref()) {
                push(&nest.into, parent, child_edit(version, nest, id, None));
            }
            if let (Some((parent, id)), Some(after)) = (new, &e.after) {
                let row = source(encoder, after)?;
                push(&nest.into, parent, child_edit(version, nest, id, Some(row)));
            }
        }
    }
    Ok(docs)
}

fn parent_edit(version: u64, row: Option<Source>) -> Edit {
    Edit {
        version,
        what: What::Parent(row),
    }
}

fn child_edit(version: u64, nest: &Nest, id: String, row: Option<Source>) -> Edit {
    Edit {
        version,
        what: What::Child {
            field: nest.field.as_str().into(),
            id,
            row,
        },
    }
}

/// A row image as a JSON object, encoded as the sink encodes documents.
fn source(encoder: &mut NativeEncoder, row: &Row) -> Result<Source, String> {
    let mut json = Vec::with_capacity(64 + row.values.len() * 16);
    encoder.row_object(row, &mut json);
    serde_json::from_slice(&json).map_err(|e| format!("a row image is not a JSON object: {e}"))
}

/// Where a child row goes: its parent's document id (from `parent_key`) and its own id.
fn place(
    config: &SearchSinkConfig,
    nest: &Nest,
    e: &ChangeEvent,
    row: &Row,
) -> Result<(String, String), String> {
    let names: Vec<&str> = nest.parent_key.iter().map(String::as_str).collect();
    let parent = joined_id(config, row, &names).map_err(|name| {
        format!(
            "{} has no column `{name}` (its nest's parent_key)",
            nest.table
        )
    })?;
    Ok((parent, doc_id(config, e, row)?))
}

/// Applies the edits to their documents on the server, reading again and changing again the
/// documents another writer changed between the read and the write.
pub async fn write(
    http: &Http,
    max_bytes: usize,
    mut docs: Vec<DocEdits>,
) -> Result<(), SinkError> {
    for _ in 0..ROUNDS {
        let mut changed_meanwhile = Vec::new();
        while !docs.is_empty() {
            let rest = docs.split_off(docs.len().min(DOCS_PER_REQUEST));
            let chunk = std::mem::replace(&mut docs, rest);
            changed_meanwhile.extend(write_chunk(http, max_bytes, chunk).await?);
        }
        if changed_meanwhile.is_empty() {
            return Ok(());
        }
        docs = changed_meanwhile;
    }
    let first = &docs[0];
    Err(SinkError::retriable(format!(
        "document {}/{} (and {} more) changed under rowbus in each of {ROUNDS} rounds of read and write",
        first.index,
        first.id,
        docs.len() - 1
    )))
}

/// One round for up to `DOCS_PER_REQUEST` documents; the ones changed meanwhile come back.
async fn write_chunk(
    http: &Http,
    max_bytes: usize,
    chunk: Vec<DocEdits>,
) -> Result<Vec<DocEdits>, SinkError> {
    let stored = mget(http, &chunk).await?;
    let mut body = Vec::new();
    let mut written: Vec<usize> = Vec::new();
    let mut conflicts: Vec<(String, String)> = Vec::new();
    for (n, (doc, stored)) in chunk.iter().zip(stored).enumerate() {
        let Some(lines) = edited(doc, stored)? else {
            continue;
        };
        if !body.is_empty() && body.len() + lines.len() > max_bytes {
            conflicts.extend(super::send_guarded(http, std::mem::take(&mut body)).await?);
        }
        body.extend_from_slice(&lines);
        written.push(n);
    }
    if !body.is_empty() {
        conflicts.extend(super::send_guarded(http, body).await?);
    }
    Ok(chunk
        .into_iter()
        .filter(|d| {
            conflicts
                .iter()
                .any(|(index, id)| **index == *d.index && *id == d.id)
        })
        .collect())
}

/// A document as stored, with what guards a write of it.
#[derive(Debug, Deserialize)]
struct Stored {
    #[serde(default)]
    found: bool,
    #[serde(rename = "_source")]
    source: Option<Source>,
    #[serde(rename = "_seq_no")]
    seq_no: Option<u64>,
    #[serde(rename = "_primary_term")]
    primary_term: Option<u64>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Mget {
    docs: Vec<Stored>,
}

/// The documents as stored now (`None` for a missing one), in the order of `docs`.
async fn mget(http: &Http, docs: &[DocEdits]) -> Result<Vec<Option<Stored>>, SinkError> {
    let mut body = b"{\"docs\":[".to_vec();
    for (n, doc) in docs.iter().enumerate() {
        if n > 0 {
            body.push(b',');
        }
        body.extend_from_slice(b"{\"_index\":");
        write_json_string(&doc.index, &mut body);
        body.extend_from_slice(b",\"_id\":");
        write_json_string(&doc.id, &mut body);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    let (status, answer) = http
        .send(Method::POST, "_mget", "application/json", body)
        .await?;
    if status != 200 {
        return Err(http.error("_mget", status, &answer));
    }
    let mget: Mget = serde_json::from_slice(&answer)
        .map_err(|e| SinkError::retriable(format!("the _mget response could not be read ({e})")))?;
    if mget.docs.len() != docs.len() {
        return Err(SinkError::retriable(format!(
            "_mget answered {} documents for {}",
            mget.docs.len(),
            docs.len()
        )));
    }
    mget.docs
        .into_iter()
        .zip(docs)
        .map(|(stored, doc)| match &stored.error {
            None => Ok(stored.found.then_some(stored)),
            Some(error) if error["type"] == "index_not_found_exception" => Ok(None),
            Some(error) => Err(SinkError::retriable(format!(
                "reading document {}/{}: {error}",
                doc.index, doc.id
            ))),
        })
        .collect()
}

/// The bulk lines that write the edited document over the stored one (guarded by its sequence
/// number), or `None` when the edits change nothing.
fn edited(doc: &DocEdits, stored: Option<Stored>) -> Result<Option<Vec<u8>>, SinkError> {
    let (before, guard) = match stored {
        Some(s) => (s.source, s.seq_no.zip(s.primary_term)),
        None => (None, None),
    };
    let mut after = before.clone();
    for edit in &doc.edits {
        doc::apply(&mut after, &doc.fields, edit)
            .map_err(|e| SinkError::permanent(format!("document {}/{}: {e}", doc.index, doc.id)))?;
    }
    if after == before {
        return Ok(None);
    }
    let mut lines = Vec::with_capacity(256);
    let op = match (&after, guard.is_some()) {
        (None, _) => "delete",
        (Some(_), true) => "index",
        (Some(_), false) => "create",
    };
    lines.extend_from_slice(b"{\"");
    lines.extend_from_slice(op.as_bytes());
    lines.extend_from_slice(b"\":{\"_index\":");
    write_json_string(&doc.index, &mut lines);
    lines.extend_from_slice(b",\"_id\":");
    write_json_string(&doc.id, &mut lines);
    if let Some((seq_no, term)) = guard {
        lines.extend_from_slice(
            format!(",\"if_seq_no\":{seq_no},\"if_primary_term\":{term}").as_bytes(),
        );
    }
    lines.extend_from_slice(b"}}\n");
    if let Some(after) = after {
        serde_json::to_writer(&mut lines, &after).expect("a JSON object");
        lines.push(b'\n');
    }
    Ok(Some(lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowbus_core::{fixture, Op, Value};

    #[test]
    fn a_child_update_moving_to_another_parent_edits_both_documents() {
        let config = SearchSinkConfig {
            index: "{table}".into(),
            nests: vec![Nest {
                table: "shop.items".into(),
                into: "shop.orders".into(),
                field: "items".into(),
                parent_key: vec!["order_id".into()],
            }],
            ..SearchSinkConfig::default()
        };
        let row = |order: i64, qty: i64| Row {
            columns: vec![Arc::from("id"), Arc::from("order_id"), Arc::from("qty")].into(),
            values: vec![Value::Int(1), Value::Int(order), Value::Int(qty)],
        };
        let source = fixture::source("b.000001", 400, false);
        let e = Arc::new(fixture::change(
            Op::Update,
            ("shop", "items"),
            Some(row(7, 2)),
            Some(row(8, 3)),
            source,
        ));
        let docs = plan(&config, &mut NativeEncoder::default(), &[&e]).unwrap();
        let summary: Vec<_> = docs
            .iter()
            .map(|d| (&*d.index, d.id.as_str(), d.edits.len(), d.fields.len()))
            .collect();
        assert_eq!(summary, [("orders", "7", 1, 1), ("orders", "8", 1, 1)]);
        assert!(matches!(&docs[0].edits[0].what, What::Child { row: None, id, .. } if id == "1"));
        assert!(
            matches!(&docs[1].edits[0].what, What::Child { row: Some(r), .. } if r["qty"] == 3)
        );
    }
}
