//! Maxwell's JSON: `database`, `table`, `type` (insert, update, delete; `bootstrap-insert` for a
//! snapshot read), `ts` in seconds, `xid` (the transaction's number: its GTID's sequence number,
//! or its start offset), `commit` on its last change, `position`, `gtid`, `server_id`, `data` and, for an update,
//! `old` with the changed columns' previous values; a schema change as Maxwell's `table-create`,
//! `table-alter`, `table-drop`, `database-create` or `database-drop` with its `sql`. The key is
//! Maxwell's hash key: `{"database":..,"table":..,"pk.<column>":..}`.
//!
//! Values as Maxwell writes them: DATETIME and TIMESTAMP as `2024-01-31 12:00:00` (TIMESTAMP in
//! UTC), DATE, TIME as text, DECIMAL as a number, binary as base64, SET as an array of labels,
//! JSON as the document itself.

use super::{changed_columns, mysql_temporal_text, row_object};
use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Op, Row, Value};

/// Appends the event's Maxwell value (`last`: the last change of its transaction); false for a
/// truncation, which Maxwell has no event for.
pub fn value(e: &ChangeEvent, last: bool, out: &mut Vec<u8>) -> bool {
    let kind: &[u8] = match e.op {
        Op::Insert => b"insert",
        Op::Update => b"update",
        Op::Delete => b"delete",
        Op::Read => b"bootstrap-insert",
        Op::Ddl => return schema_change(e, out),
        _ => return false,
    };
    out.extend_from_slice(b"{\"database\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"table\":");
    write_json_string(&e.table, out);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind);
    out.push(b'"');
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.source.ts_ms / 1000).as_bytes());
    out.extend_from_slice(b",\"xid\":");
    out.extend_from_slice(itoa::Buffer::new().format(xid(&e.source.txn)).as_bytes());
    if last {
        out.extend_from_slice(b",\"commit\":true");
    }
    common(e, out);
    out.extend_from_slice(b",\"data\":");
    if let Some(row) = e.after.as_ref().or(e.before.as_ref()) {
        row_object(row, out, write_value);
    }
    if let (Op::Update, Some(before), Some(after)) = (e.op, &e.before, &e.after) {
        out.extend_from_slice(b",\"old\":");
        changed_columns(before, after, out, write_value);
    }
    out.push(b'}');
    true
}

/// A transaction's number: the digits its id ends with (a GTID's sequence number, the offset of
/// `file:pos`), or 0.
fn xid(txn: &str) -> u64 {
    let digits = txn.len() - txn.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    txn[txn.len() - digits..].parse().unwrap_or(0)
}

/// `position`, `gtid`, `server_id`.
fn common(e: &ChangeEvent, out: &mut Vec<u8>) {
    let s = &e.source;
    out.extend_from_slice(b",\"position\":");
    write_json_string(&format!("{}:{}", s.file, s.pos), out);
    out.extend_from_slice(b",\"gtid\":");
    match &s.gtid {
        Some(gtid) => write_json_string(gtid, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"server_id\":");
    out.extend_from_slice(itoa::Buffer::new().format(s.server_id).as_bytes());
}

/// A schema change in Maxwell's shape; false for kinds Maxwell has none for.
fn schema_change(e: &ChangeEvent, out: &mut Vec<u8>) -> bool {
    let Some(ddl) = &e.ddl else {
        return false;
    };
    let kind = match ddl.kind.as_str() {
        "create" => "table-create",
        "alter" | "rename" => "table-alter",
        "drop" => "table-drop",
        "create_database" => "database-create",
        "drop_database" => "database-drop",
        _ => return false,
    };
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"database\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"table\":");
    write_json_string(&e.table, out);
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(itoa::Buffer::new().format(e.source.ts_ms / 1000).as_bytes());
    common(e, out);
    out.extend_from_slice(b",\"sql\":");
    write_json_string(&ddl.sql, out);
    out.push(b'}');
    true
}

/// Maxwell's hash key: database, table and each key column as `pk.<name>`.
pub fn key(e: &ChangeEvent, key: &Row, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"database\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"table\":");
    write_json_string(&e.table, out);
    for (name, value) in key.columns.iter().zip(&key.values) {
        out.push(b',');
        write_json_string(&format!("pk.{name}"), out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

/// A column value as Maxwell writes it.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Decimal(text) => out.extend_from_slice(text.as_bytes()),
        temporal @ (Value::Date { .. }
        | Value::DateTime(_)
        | Value::Timestamp { .. }
        | Value::Time { .. }) => {
            out.push(b'"');
            mysql_temporal_text(temporal, out);
            out.push(b'"');
        }
        other => other.write_json(out),
    }
}
