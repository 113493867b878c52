//! Canal's flat message JSON (`flatMessage = true`): `data` (an array of rows), `database`,
//! `table`, `type` (INSERT, UPDATE, DELETE; a snapshot read is an INSERT), `es` (the binlog time in
//! ms), `ts` (when read), `isDdl`, `sql`, `pkNames`, and `old` (the changed columns' previous
//! values) for an update; one row per message. A schema change has `isDdl: true`, its statement in
//! `sql` and a type of CREATE, ALTER, ERASE, RENAME or TRUNCATE.
//!
//! Values as Canal writes them: every value as text (`"42"`, `"2024-01-31 12:00:00"`, TIMESTAMP in
//! UTC), binary as ISO-8859-1 text, SET as its labels joined by commas, NULL as null.
//! `mysqlType` and `sqlType` are null: events do not carry the columns' declared types.

use super::{changed_columns, mysql_temporal_text, row_object};
use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Op, Value};

/// Appends the event's Canal flat message; every event has one.
pub fn value(e: &ChangeEvent, out: &mut Vec<u8>) -> bool {
    let kind = match e.op {
        Op::Insert | Op::Read => "INSERT",
        Op::Update => "UPDATE",
        Op::Delete => "DELETE",
        _ => match e.ddl.as_ref().map(|d| d.kind.as_str()) {
            Some("create") | Some("create_database") => "CREATE",
            Some("drop") | Some("drop_database") => "ERASE",
            Some("rename") => "RENAME",
            Some("truncate") => "TRUNCATE",
            _ if e.op == Op::Truncate => "TRUNCATE",
            _ => "ALTER",
        },
    };
    let ddl = !e.op.is_row_change();
    out.extend_from_slice(b"{\"data\":");
    match e.after.as_ref().or(e.before.as_ref()) {
        Some(row) if !ddl => {
            out.push(b'[');
            row_object(row, out, write_value);
            out.push(b']');
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"database\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"es\":");
    number(out, e.source.ts_ms);
    out.extend_from_slice(b",\"id\":0,\"isDdl\":");
    out.extend_from_slice(if ddl { b"true" } else { b"false" });
    out.extend_from_slice(b",\"mysqlType\":null,\"old\":");
    match (e.op, &e.before, &e.after) {
        (Op::Update, Some(before), Some(after)) => {
            out.push(b'[');
            changed_columns(before, after, out, write_value);
            out.push(b']');
        }
        _ => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"pkNames\":");
    if e.key.columns.is_empty() {
        out.extend_from_slice(b"null");
    } else {
        out.push(b'[');
        for (i, name) in e.key.columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(name, out);
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"sql\":");
    write_json_string(e.ddl.as_ref().map_or("", |d| d.sql.as_str()), out);
    out.extend_from_slice(b",\"sqlType\":null,\"table\":");
    write_json_string(&e.table, out);
    out.extend_from_slice(b",\"ts\":");
    number(out, e.read_ts_ms);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\"}");
    true
}

/// A column value as Canal writes it: text, or null.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    let mut text = Vec::with_capacity(24);
    match value {
        Value::Null => return out.extend_from_slice(b"null"),
        Value::Decimal(s) | Value::Text(s) => return write_json_string(s, out),
        Value::Label(l) => return write_json_string(l, out),
        Value::Bytes(b) => {
            let latin1: String = b.iter().map(|&c| char::from(c)).collect();
            return write_json_string(&latin1, out);
        }
        Value::Labels(labels) => {
            let joined: Vec<&str> = labels.iter().map(|l| &**l).collect();
            return write_json_string(&joined.join(","), out);
        }
        Value::Json(doc) => return write_json_string(&doc.to_string(), out),
        temporal if mysql_temporal_text(temporal, &mut text) => {}
        other => other.write_json(&mut text),
    }
    write_json_string(&String::from_utf8_lossy(&text), out);
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}
