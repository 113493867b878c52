//! One parent document with nested children, changed in memory: the parent's columns and each
//! child's element of its array field, each guarded by the version of the change that last wrote
//! it, so that applying a change twice, or an older change after a newer one, changes nothing.
//!
//! The versions live in the document under `@rowbus` (not indexed when the sink creates the
//! index): `{"v": <parent's version>, "nested": {"<field>": [{"id", "v", "gone"}, ...]}}`. The
//! entries of a field that are not `gone` are its array's elements, in the same order; a `gone`
//! entry is a deleted child's tombstone, which keeps an older write of it from coming back.

use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The field that holds the versions.
pub const META: &str = "@rowbus";

pub type Source = Map<String, Value>;

/// One change to a parent document.
#[derive(Debug, Clone, PartialEq)]
pub struct Edit {
    /// The change's version (see `version`): higher is newer.
    pub version: u64,
    pub what: What,
}

#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// The parent row's columns (its after image), or `None` for its delete.
    Parent(Option<Source>),
    /// A child's element of `field`: its columns, or `None` for its delete.
    Child {
        field: Arc<str>,
        id: String,
        row: Option<Source>,
    },
}

/// Applies `edit` to the document `doc` (`None`: there is none) whose parent has the array fields
/// `fields`; an error when the document's array no longer matches its versions (another writer
/// changed it).
pub fn apply(doc: &mut Option<Source>, fields: &[Arc<str>], edit: &Edit) -> Result<(), String> {
    match &edit.what {
        What::Parent(row) => {
            apply_parent(doc, fields, edit.version, row.as_ref());
            Ok(())
        }
        What::Child { field, id, row } => {
            if doc.is_none() && row.is_none() {
                return Ok(());
            }
            let source = doc.get_or_insert_with(Map::new);
            complete(source, fields);
            apply_child(source, field, id, edit.version, row.as_ref())
        }
    }
}

/// The parent's version in `source`: 0 when only children wrote it.
fn parent_version(source: &Source) -> u64 {
    source
        .get(META)
        .and_then(|m| m.get("v"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

fn apply_parent(doc: &mut Option<Source>, fields: &[Arc<str>], version: u64, row: Option<&Source>) {
    if doc.as_ref().is_some_and(|s| parent_version(s) >= version) {
        return;
    }
    let Some(row) = row else {
        *doc = None;
        return;
    };
    let mut old = doc.take().unwrap_or_default();
    let mut new = row.clone();
    for field in fields {
        let kept = old.remove(&**field).unwrap_or_else(|| json!([]));
        new.insert(field.to_string(), kept);
    }
    let mut meta = match old.remove(META) {
        Some(Value::Object(meta)) => meta,
        _ => Map::new(),
    };
    meta.insert("v".into(), version.into());
    meta.entry("nested").or_insert_with(|| json!({}));
    new.insert(META.into(), Value::Object(meta));
    *doc = Some(new);
}

/// Gives a document the array of each field and the versions' object, where missing.
fn complete(source: &mut Source, fields: &[Arc<str>]) {
    for field in fields {
        if !source.get(&**field).is_some_and(Value::is_array) {
            source.insert(field.to_string(), json!([]));
        }
    }
    let meta = source.entry(META).or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    let meta = meta.as_object_mut().expect("an object");
    let nested = meta.entry("nested").or_insert_with(|| json!({}));
    if !nested.is_object() {
        *nested = json!({});
    }
}

fn apply_child(
    source: &mut Source,
    field: &str,
    id: &str,
    version: u64,
    row: Option<&Source>,
) -> Result<(), String> {
    let mut elements = match source.remove(field) {
        Some(Value::Array(elements)) => elements,
        _ => Vec::new(),
    };
    let nested = source[META]["nested"].as_object_mut().expect("completed");
    let entries = nested
        .entry(field)
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| format!("{META}.nested.{field} is not an array"))?;
    let live = entries.iter().filter(|e| !is_gone(e)).count();
    if live != elements.len() {
        return Err(format!(
            "field `{field}` has {} elements where rowbus wrote {live}: another writer changed it (rebuild the index)",
            elements.len()
        ));
    }
    let at = entries.iter().position(|e| e["id"].as_str() == Some(id));
    if at.is_some_and(|at| entries[at]["v"].as_u64().unwrap_or(0) >= version) {
        source.insert(field.into(), Value::Array(elements));
        return Ok(());
    }
    let element = at
        .filter(|at| !is_gone(&entries[*at]))
        .map(|at| entries[..at].iter().filter(|e| !is_gone(e)).count());
    match (element, row) {
        (Some(k), Some(row)) => {
            elements[k] = Value::Object(row.clone());
            entries[at.expect("found")]["v"] = version.into();
        }
        (Some(k), None) => {
            elements.remove(k);
            entries[at.expect("found")] = entry(id, version, true);
        }
        (None, Some(row)) => {
            if let Some(at) = at {
                entries.remove(at);
            }
            entries.push(entry(id, version, false));
            elements.push(Value::Object(row.clone()));
        }
        (None, None) => match at {
            Some(at) => entries[at] = entry(id, version, true),
            None => entries.push(entry(id, version, true)),
        },
    }
    source.insert(field.into(), Value::Array(elements));
    Ok(())
}

fn entry(id: &str, version: u64, gone: bool) -> Value {
    json!({"id": id, "v": version, "gone": gone})
}

fn is_gone(entry: &Value) -> bool {
    entry["gone"].as_bool().unwrap_or(false)
}

#[cfg(test)]
mod tests;
