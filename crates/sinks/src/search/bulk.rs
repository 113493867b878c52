//! A batch of changes as bulk actions: each change becomes the action lines of its document (an
//! `index` of the after image with its external version, a partial `update`, or a `delete`), a
//! primary-key change becomes a delete of the old document and a write of the new one, and in
//! index mode only the last action per document is kept (its version is the highest, so the
//! earlier ones would be refused or overwritten anyway).

use super::config::{SearchSinkConfig, WriteMode};
use super::version::version_of;
use crate::encode::NativeEncoder;
use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Row, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// One document's action lines, ready for a bulk body.
#[derive(Debug)]
pub struct Action {
    pub index: Arc<str>,
    pub id: String,
    /// The action line and, but for a delete, the source line, each ending in a newline.
    pub lines: Vec<u8>,
}

impl Action {
    /// The same action for another index (a rebuild's, written beside the alias).
    pub fn retargeted(&self, index: &Arc<str>) -> Action {
        let mut from = b"\"_index\":".to_vec();
        write_json_string(&self.index, &mut from);
        let mut to = b"\"_index\":".to_vec();
        write_json_string(index, &mut to);
        let at = self
            .lines
            .windows(from.len())
            .position(|w| w == from.as_slice())
            .expect("an action line names its index");
        let mut lines = Vec::with_capacity(self.lines.len() + to.len());
        lines.extend_from_slice(&self.lines[..at]);
        lines.extend_from_slice(&to);
        lines.extend_from_slice(&self.lines[at + from.len()..]);
        Action {
            index: index.clone(),
            id: self.id.clone(),
            lines,
        }
    }
}

/// The actions of `batch`, or the first change that cannot become one (a permanent error).
pub fn plan(
    config: &SearchSinkConfig,
    encoder: &mut NativeEncoder,
    batch: &[Arc<ChangeEvent>],
) -> Result<Vec<Action>, String> {
    let mut indexes: HashMap<(Arc<str>, Arc<str>), Arc<str>> = HashMap::new();
    let mut actions = Vec::with_capacity(batch.len());
    for e in batch {
        if !e.op.is_row_change() {
            continue;
        }
        let index = indexes
            .entry((e.db.clone(), e.table.clone()))
            .or_insert_with(|| config.index_of(&e.db, &e.table).into())
            .clone();
        let version = match config.write {
            WriteMode::Index => Some(version_of(&e.source)?),
            WriteMode::Update => None,
        };
        let new_id = e
            .after
            .as_ref()
            .map(|row| doc_id(config, e, row))
            .transpose()?;
        let old_id = e
            .before
            .as_ref()
            .map(|row| doc_id(config, e, row))
            .transpose()?;
        if let Some(old) = old_id.filter(|old| Some(old) != new_id.as_ref()) {
            actions.push(delete(&index, old, version));
        }
        if let (Some(id), Some(after)) = (new_id, &e.after) {
            actions.push(write(config.write, encoder, &index, id, version, after));
        }
    }
    if config.write == WriteMode::Index {
        keep_last_per_document(&mut actions);
    }
    Ok(actions)
}

/// Drops every action that a later one of the same document supersedes, keeping the order.
fn keep_last_per_document(actions: &mut Vec<Action>) {
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(actions.len());
    for (i, a) in actions.iter().enumerate() {
        last.insert((&a.index, &a.id), i);
    }
    if last.len() == actions.len() {
        return;
    }
    let keep: Vec<bool> = (0..actions.len())
        .map(|i| last.get(&(&*actions[i].index, &*actions[i].id)) == Some(&i))
        .collect();
    let mut i = 0;
    actions.retain(|_| {
        i += 1;
        keep[i - 1]
    });
}

fn delete(index: &Arc<str>, id: String, version: Option<u64>) -> Action {
    let mut lines = Vec::with_capacity(96);
    meta(&mut lines, "delete", index, &id, version);
    Action {
        index: index.clone(),
        id,
        lines,
    }
}

fn write(
    mode: WriteMode,
    encoder: &mut NativeEncoder,
    index: &Arc<str>,
    id: String,
    version: Option<u64>,
    after: &Row,
) -> Action {
    let mut lines = Vec::with_capacity(160 + after.values.len() * 16);
    match mode {
        WriteMode::Index => {
            meta(&mut lines, "index", index, &id, version);
            encoder.row_object(after, &mut lines);
        }
        WriteMode::Update => {
            meta(&mut lines, "update", index, &id, None);
            lines.extend_from_slice(b"{\"doc\":");
            encoder.row_object(after, &mut lines);
            lines.extend_from_slice(b",\"doc_as_upsert\":true}");
        }
    }
    lines.push(b'\n');
    Action {
        index: index.clone(),
        id,
        lines,
    }
}

/// `{"<op>":{"_index":..,"_id":..[,"version":..,"version_type":"external"]}}` and a newline.
fn meta(out: &mut Vec<u8>, op: &str, index: &str, id: &str, version: Option<u64>) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(op.as_bytes());
    out.extend_from_slice(b"\":{\"_index\":");
    write_json_string(index, out);
    out.extend_from_slice(b",\"_id\":");
    write_json_string(id, out);
    if let Some(version) = version {
        out.extend_from_slice(b",\"version\":");
        out.extend_from_slice(itoa::Buffer::new().format(version).as_bytes());
        out.extend_from_slice(b",\"version_type\":\"external\"");
    }
    out.extend_from_slice(b"}}\n");
}

/// The document id of a row image: the configured id columns, or the primary key, their values'
/// text joined by the separator.
pub(super) fn doc_id(
    config: &SearchSinkConfig,
    e: &ChangeEvent,
    row: &Row,
) -> Result<String, String> {
    let configured = config.id_columns_of(&e.db, &e.table);
    let names: Vec<&str> = match configured {
        Some(columns) => columns.iter().map(String::as_str).collect(),
        None => e.key.columns.iter().map(|c| &**c).collect(),
    };
    if names.is_empty() {
        return Err(format!(
            "{}.{} has no primary key: set id_columns for it",
            e.db, e.table
        ));
    }
    joined_id(config, row, &names).map_err(|name| {
        format!(
            "{}.{} has no column `{name}` for the document id",
            e.db, e.table
        )
    })
}

/// The values of the columns `names` in `row` as id text, joined by the separator; the first
/// column the row lacks, otherwise.
pub(super) fn joined_id<'a>(
    config: &SearchSinkConfig,
    row: &Row,
    names: &[&'a str],
) -> Result<String, &'a str> {
    let mut id = String::new();
    for (n, name) in names.iter().enumerate() {
        let i = row
            .columns
            .iter()
            .position(|c| &**c == *name)
            .ok_or(*name)?;
        if n > 0 {
            id.push_str(&config.id_separator);
        }
        id_text(&row.values[i], &mut id);
    }
    Ok(id)
}

/// A value as id text: strings as they are, anything else as its native JSON without quotes.
fn id_text(value: &Value, out: &mut String) {
    match value {
        Value::Text(s) | Value::Decimal(s) => out.push_str(s),
        Value::Label(s) => out.push_str(s),
        Value::Int(v) => out.push_str(itoa::Buffer::new().format(*v)),
        Value::UInt(v) => out.push_str(itoa::Buffer::new().format(*v)),
        other => {
            let mut json = Vec::new();
            other.write_json(&mut json);
            let text = String::from_utf8_lossy(&json);
            out.push_str(text.trim_matches('"'));
        }
    }
}

#[cfg(test)]
mod tests;
