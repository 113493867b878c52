//! The Debezium MySQL connector's envelope (JSON converter, schemas disabled): `before`, `after`,
//! `source` with Debezium's field names, `op` (c, u, d, r), `ts_ms`, `transaction`; a schema
//! change as Debezium's schema change event (`databaseName`, `ddl`, `tableChanges`).
//!
//! Values as the connector writes them by default (`time.precision.mode = adaptive_time_microseconds`,
//! `binary.handling.mode = bytes`), but DECIMAL as with `decimal.handling.mode = string`: DATE as
//! days since the epoch, DATETIME(0-3) as epoch milliseconds and DATETIME(4-6) as epoch
//! microseconds, TIME as microseconds, TIMESTAMP as an ISO-8601 UTC string, binary as base64, SET
//! as its labels joined by commas, JSON as its text.

use super::debezium_extras::{schema_of, Transactions};
use super::row_object;
use rowbus_core::value::{days_from_civil, write_json_string};
use rowbus_core::{ChangeEvent, Op, Row, SourceInfo, Value};

/// The connector version `source.version` names.
const VERSION: &str = concat!("rowbus-", env!("CARGO_PKG_VERSION"));

/// The envelope's optional parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// The JSON converter's schema block (`schemas.enable`): `{"schema":..,"payload":..}`.
    pub schemas: bool,
    /// The `transaction` block (`provide.transaction.metadata`).
    pub transaction_metadata: bool,
}

/// Appends the event's Debezium value; every event has one.
pub fn value(
    e: &ChangeEvent,
    options: Options,
    transactions: &mut Transactions,
    out: &mut Vec<u8>,
) -> bool {
    if options.schemas {
        out.extend_from_slice(b"{\"schema\":");
        match e.op.is_row_change() {
            true => schema_of(e, options.transaction_metadata, out),
            false => out.extend_from_slice(
                br#"{"type":"struct","fields":[],"optional":false,"name":"io.debezium.connector.mysql.SchemaChangeValue"}"#,
            ),
        }
        out.extend_from_slice(b",\"payload\":");
    }
    payload(e, options, transactions, out);
    if options.schemas {
        out.push(b'}');
    }
    true
}

fn payload(e: &ChangeEvent, options: Options, transactions: &mut Transactions, out: &mut Vec<u8>) {
    if !e.op.is_row_change() {
        return schema_change(e, out);
    }
    out.extend_from_slice(b"{\"before\":");
    image(e.before.as_ref(), out);
    out.extend_from_slice(b",\"after\":");
    image(e.after.as_ref(), out);
    out.extend_from_slice(b",\"source\":");
    source(e, out);
    out.extend_from_slice(b",\"op\":\"");
    out.extend_from_slice(match e.op {
        Op::Insert => b"c",
        Op::Update => b"u",
        Op::Delete => b"d",
        _ => b"r",
    });
    out.extend_from_slice(b"\",\"ts_ms\":");
    number(out, e.read_ts_ms);
    out.extend_from_slice(b",\"transaction\":");
    match options.transaction_metadata {
        true => transactions.block(e, out),
        false => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
}

fn image(row: Option<&Row>, out: &mut Vec<u8>) {
    match row {
        Some(row) => row_object(row, out, write_value),
        None => out.extend_from_slice(b"null"),
    }
}

/// `source`, with the fields of Debezium's MySQL connector.
fn source(e: &ChangeEvent, out: &mut Vec<u8>) {
    let s: &SourceInfo = &e.source;
    out.extend_from_slice(b"{\"version\":\"");
    out.extend_from_slice(VERSION.as_bytes());
    out.extend_from_slice(b"\",\"connector\":\"mysql\",\"name\":");
    write_json_string(&s.name, out);
    out.extend_from_slice(b",\"ts_ms\":");
    number(out, s.ts_ms);
    out.extend_from_slice(if s.snapshot {
        b",\"snapshot\":\"true\""
    } else {
        b",\"snapshot\":\"false\""
    });
    out.extend_from_slice(b",\"db\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"sequence\":null,\"table\":");
    write_json_string(&e.table, out);
    out.extend_from_slice(b",\"server_id\":");
    number(out, u64::from(s.server_id));
    out.extend_from_slice(b",\"gtid\":");
    match &s.gtid {
        Some(gtid) => write_json_string(gtid, out),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"file\":");
    write_json_string(&s.file, out);
    out.extend_from_slice(b",\"pos\":");
    number(out, s.pos);
    out.extend_from_slice(b",\"row\":");
    number(out, u64::from(s.row));
    out.extend_from_slice(b",\"thread\":null,\"query\":null}");
}

/// Debezium's schema change event: the statement, its database, and the source.
fn schema_change(e: &ChangeEvent, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"source\":");
    source(e, out);
    out.extend_from_slice(b",\"ts_ms\":");
    number(out, e.read_ts_ms);
    out.extend_from_slice(b",\"databaseName\":");
    write_json_string(&e.db, out);
    out.extend_from_slice(b",\"schemaName\":null,\"ddl\":");
    let sql = e.ddl.as_ref().map_or("", |d| d.sql.as_str());
    write_json_string(sql, out);
    out.extend_from_slice(b",\"tableChanges\":[]}");
}

/// A column value as the connector writes it.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Date { year, month, day } => {
            let days = days_from_civil(i64::from(*year), u32::from(*month), u32::from(*day));
            signed(out, days);
        }
        Value::DateTime(d) => {
            let days = days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day));
            let secs = days * 86_400
                + i64::from(d.hour) * 3600
                + i64::from(d.minute) * 60
                + i64::from(d.second);
            let micros = secs * 1_000_000 + i64::from(d.micros);
            signed(out, if d.fsp <= 3 { micros / 1000 } else { micros });
        }
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
            ..
        } => {
            let total = (i64::from(*hours) * 3600 + i64::from(*minute) * 60 + i64::from(*second))
                * 1_000_000
                + i64::from(*micros);
            signed(out, if *negative { -total } else { total });
        }
        Value::Labels(labels) => {
            let joined: Vec<&str> = labels.iter().map(|l| &**l).collect();
            write_json_string(&joined.join(","), out);
        }
        Value::Json(doc) => write_json_string(&doc.to_string(), out),
        other => other.write_json(out),
    }
}

fn number(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn signed(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}
