//! Reading a bulk response item by item: which documents are delivered, which may pass on a retry
//! (the server is overloaded or unavailable) and which it refuses (a mapping or parsing error),
//! each refusal named by its index, id and the server's reason.

use rowbus_core::sink::SinkError;
use serde::Deserialize;

#[derive(Deserialize)]
struct Bulk {
    errors: bool,
    #[serde(default)]
    items: Vec<std::collections::HashMap<String, Item>>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    _index: String,
    #[serde(default)]
    _id: String,
    status: u16,
    error: Option<ItemError>,
}

#[derive(Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    reason: String,
}

/// What a bulk response says of its items, as one outcome: `Ok` when every document is delivered
/// (written, already newer, or a delete of a missing document), else the error of the first item
/// that is not, retriable when any item may pass on a retry, with the count of the others.
pub fn outcome(body: &[u8]) -> Result<(), SinkError> {
    read(body, false).map(|_| ())
}

/// Like `outcome`, for writes guarded by the sequence numbers read before: a version conflict is
/// then not delivered but a document another writer changed since the read, returned (index, id)
/// to be read and written again.
pub fn outcome_guarded(body: &[u8]) -> Result<Vec<(String, String)>, SinkError> {
    read(body, true)
}

fn read(body: &[u8], guarded: bool) -> Result<Vec<(String, String)>, SinkError> {
    let bulk: Bulk = serde_json::from_slice(body)
        .map_err(|e| SinkError::retriable(format!("the bulk response could not be read ({e})")))?;
    let mut changed_meanwhile = Vec::new();
    if !bulk.errors {
        return Ok(changed_meanwhile);
    }
    let mut retriable: Vec<String> = Vec::new();
    let mut refused: Vec<String> = Vec::new();
    for (op, item) in bulk.items.into_iter().flat_map(|m| m.into_iter()) {
        if guarded && item.status == 409 {
            changed_meanwhile.push((item._index, item._id));
            continue;
        }
        match classify(&op, &item) {
            Verdict::Delivered => {}
            Verdict::Retry(why) => retriable.push(why),
            Verdict::Refused(why) => refused.push(why),
        }
    }
    match (retriable.first(), refused.first()) {
        (Some(first), _) => Err(SinkError::retriable(summary(first, &retriable, &refused))),
        (None, Some(first)) => Err(SinkError::permanent(summary(first, &refused, &[]))),
        (None, None) => Ok(changed_meanwhile),
    }
}

enum Verdict {
    Delivered,
    Retry(String),
    Refused(String),
}

fn classify(op: &str, item: &Item) -> Verdict {
    let kind = item.error.as_ref().map_or("", |e| e.kind.as_str());
    let delivered = (200..300).contains(&item.status)
        || (op == "delete" && item.status == 404 && item.error.is_none())
        || (item.status == 409 && kind == "version_conflict_engine_exception");
    if delivered {
        return Verdict::Delivered;
    }
    let reason = item.error.as_ref().map_or("", |e| e.reason.as_str());
    let why = format!(
        "document {}/{} ({op}): {} {kind}: {reason}",
        item._index, item._id, item.status
    );
    let overloaded = matches!(item.status, 429 | 502 | 503 | 504)
        || kind == "es_rejected_execution_exception"
        || kind == "circuit_breaking_exception";
    match overloaded {
        true => Verdict::Retry(why),
        false => Verdict::Refused(why),
    }
}

fn summary(first: &str, same: &[String], other: &[String]) -> String {
    let more = same.len() - 1;
    let mut text = first.to_string();
    if more > 0 {
        text.push_str(&format!(" (and {more} more like it)"));
    }
    if !other.is_empty() {
        text.push_str(&format!("; {} refused", other.len()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(items: &str) -> Vec<u8> {
        format!("{{\"took\":1,\"errors\":true,\"items\":[{items}]}}").into_bytes()
    }

    const CREATED: &str = r#"{"index":{"_index":"a","_id":"1","status":201,"result":"created"}}"#;
    const NEWER: &str = r#"{"index":{"_index":"a","_id":"2","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[2]: version conflict"}}}"#;
    const MISSING: &str =
        r#"{"delete":{"_index":"a","_id":"3","status":404,"result":"not_found"}}"#;
    const MAPPING: &str = r#"{"index":{"_index":"a","_id":"4","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [n]"}}}"#;
    const BUSY: &str = r#"{"index":{"_index":"a","_id":"5","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}"#;

    #[test]
    fn written_newer_and_missing_deletes_are_delivered() {
        assert!(outcome(br#"{"took":1,"errors":false,"items":[]}"#).is_ok());
        assert!(outcome(&items(&[CREATED, NEWER, MISSING].join(","))).is_ok());
    }

    #[test]
    fn a_mapping_error_is_refused_with_the_document_and_reason() {
        let e = outcome(&items(&[CREATED, MAPPING].join(","))).unwrap_err();
        assert!(!e.retriable && !e.fatal);
        assert_eq!(
            e.message,
            "document a/4 (index): 400 mapper_parsing_exception: failed to parse field [n]"
        );
    }

    #[test]
    fn an_overloaded_item_makes_the_batch_retriable() {
        let e = outcome(&items(&[MAPPING, BUSY, BUSY].join(","))).unwrap_err();
        assert!(e.retriable);
        assert_eq!(
            e.message,
            "document a/5 (index): 429 es_rejected_execution_exception: queue full (and 1 more like it); 1 refused"
        );
    }

    #[test]
    fn a_guarded_write_conflict_is_a_document_to_read_again() {
        let conflict = r#"{"index":{"_index":"a","_id":"6","status":409,"error":{"type":"version_conflict_engine_exception","reason":"required seqNo [0]"}}}"#;
        let again = outcome_guarded(&items(&[CREATED, conflict, MISSING].join(","))).unwrap();
        assert_eq!(again, [("a".to_string(), "6".to_string())]);
        assert!(outcome_guarded(&items(&[conflict, MAPPING].join(","))).is_err());
    }

    #[test]
    fn an_unreadable_response_is_retriable() {
        assert!(outcome(b"<html>").unwrap_err().retriable);
    }
}
