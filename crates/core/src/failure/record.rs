//! The failure log's records as protobuf messages (prost), and the exact conversion of a change
//! event to and from them: every typed value keeps its type, so a replayed event is the event that
//! failed, not a re-reading of its JSON.

use crate::event::{ChangeEvent, ColumnSpec, Op, Row, SchemaChange, SourceEvent, SourceInfo};
use crate::value::{DateTime, Value};
use std::sync::Arc;

/// One event a sink could not deliver.
#[derive(Clone, PartialEq, prost::Message)]
pub struct FailureRecord {
    /// Increasing within one sink's log.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(string, tag = "2")]
    pub sink: String,
    #[prost(message, optional, tag = "3")]
    pub event: Option<StoredEvent>,
    #[prost(string, tag = "4")]
    pub error: String,
    #[prost(uint32, tag = "5")]
    pub attempts: u32,
    /// When the first and the last attempt failed, in ms since the epoch.
    #[prost(uint64, tag = "6")]
    pub first_ms: u64,
    #[prost(uint64, tag = "7")]
    pub last_ms: u64,
    /// `db.table` and the key's JSON: what `on_failure = "park_key"` parks.
    #[prost(string, tag = "8")]
    pub key: String,
    /// Not tried: an earlier change of the same key is in the log.
    #[prost(bool, tag = "9")]
    pub parked: bool,
    /// For a change of the primary key: the row's key before it.
    #[prost(string, tag = "10")]
    pub old_key: String,
    /// `db.table`; with an empty `key`, the whole table is parked behind this record.
    #[prost(string, tag = "11")]
    pub table: String,
    /// Set when a transform failed: the event is as it was before the transforms (`pipeline`:
    /// all of them, `sink`: the sink's own), and a replay runs them again.
    #[prost(string, tag = "12")]
    pub untransformed: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredEvent {
    #[prost(string, tag = "1")]
    pub op: String,
    #[prost(string, tag = "2")]
    pub db: String,
    #[prost(string, tag = "3")]
    pub table: String,
    #[prost(message, optional, tag = "4")]
    pub key: Option<StoredRow>,
    #[prost(message, optional, tag = "5")]
    pub before: Option<StoredRow>,
    #[prost(message, optional, tag = "6")]
    pub after: Option<StoredRow>,
    #[prost(string, tag = "7")]
    pub source_name: String,
    #[prost(uint32, tag = "8")]
    pub server_id: u32,
    #[prost(string, tag = "9")]
    pub file: String,
    #[prost(uint64, tag = "10")]
    pub pos: u64,
    #[prost(string, optional, tag = "11")]
    pub gtid: Option<String>,
    #[prost(string, tag = "12")]
    pub txn: String,
    #[prost(uint64, tag = "13")]
    pub ts_ms: u64,
    #[prost(uint32, tag = "14")]
    pub row: u32,
    #[prost(bool, tag = "15")]
    pub snapshot: bool,
    #[prost(uint64, tag = "16")]
    pub read_ts_ms: u64,
    /// A schema change, as its JSON.
    #[prost(string, optional, tag = "17")]
    pub ddl: Option<String>,
    #[prost(message, optional, tag = "18")]
    pub partition_key: Option<StoredRow>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredRow {
    #[prost(string, repeated, tag = "1")]
    pub columns: Vec<String>,
    #[prost(message, repeated, tag = "2")]
    pub values: Vec<StoredValue>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredValue {
    #[prost(
        oneof = "Stored",
        tags = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15"
    )]
    pub value: Option<Stored>,
}

/// Temporal values as their fields packed into integers: exact and compact.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Stored {
    #[prost(bool, tag = "1")]
    Null(bool),
    #[prost(sint64, tag = "2")]
    Int(i64),
    #[prost(uint64, tag = "3")]
    UInt(u64),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(string, tag = "5")]
    Decimal(String),
    #[prost(string, tag = "6")]
    Text(String),
    #[prost(bytes, tag = "7")]
    Bytes(Vec<u8>),
    /// year << 16 | month << 8 | day
    #[prost(uint32, tag = "8")]
    Date(u32),
    /// date as above << 24 | hour << 16 | minute << 8 | second; micros and fsp in `Fraction`.
    #[prost(message, tag = "9")]
    DateTime(Clock),
    #[prost(message, tag = "10")]
    Timestamp(Clock),
    #[prost(message, tag = "11")]
    Time(Clock),
    #[prost(uint32, tag = "12")]
    Year(u32),
    #[prost(string, tag = "13")]
    Label(String),
    #[prost(message, tag = "14")]
    Labels(LabelList),
    /// A JSON document, as its text.
    #[prost(string, tag = "15")]
    Json(String),
}

/// The fields of a temporal value.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Clock {
    /// DATETIME: packed date and time; TIMESTAMP: seconds since the epoch; TIME: hours << 16 |
    /// minute << 8 | second, negative when the time is.
    #[prost(sint64, tag = "1")]
    pub main: i64,
    #[prost(uint32, tag = "2")]
    pub micros: u32,
    #[prost(uint32, tag = "3")]
    pub fsp: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelList {
    #[prost(string, repeated, tag = "1")]
    pub labels: Vec<String>,
}

fn store_value(v: &Value) -> StoredValue {
    let value = match v {
        Value::Null => Stored::Null(true),
        Value::Int(i) => Stored::Int(*i),
        Value::UInt(u) => Stored::UInt(*u),
        Value::Double(d) => Stored::Double(*d),
        Value::Decimal(d) => Stored::Decimal(d.to_string()),
        Value::Text(t) => Stored::Text(t.to_string()),
        Value::Bytes(b) => Stored::Bytes(b.to_vec()),
        Value::Date { year, month, day } => Stored::Date(pack_date(*year, *month, *day)),
        Value::DateTime(dt) => Stored::DateTime(Clock {
            main: (pack_date(dt.year, dt.month, dt.day) as i64) << 24
                | (dt.hour as i64) << 16
                | (dt.minute as i64) << 8
                | dt.second as i64,
            micros: dt.micros,
            fsp: dt.fsp as u32,
        }),
        Value::Timestamp { secs, micros, fsp } => Stored::Timestamp(Clock {
            main: *secs,
            micros: *micros,
            fsp: *fsp as u32,
        }),
        Value::Time {
            negative,
            hours,
            minute,
            second,
            micros,
            fsp,
        } => {
            let packed = (*hours as i64) << 16 | (*minute as i64) << 8 | *second as i64;
            Stored::Time(Clock {
                // -0 is not negative: keep the sign in the lowest bit of the shifted value.
                main: packed << 1 | *negative as i64,
                micros: *micros,
                fsp: *fsp as u32,
            })
        }
        Value::Year(y) => Stored::Year(*y as u32),
        Value::Label(l) => Stored::Label(l.to_string()),
        Value::Labels(ls) => Stored::Labels(LabelList {
            labels: ls.iter().map(|l| l.to_string()).collect(),
        }),
        Value::Json(j) => Stored::Json(j.to_string()),
    };
    StoredValue { value: Some(value) }
}

fn pack_date(year: u16, month: u8, day: u8) -> u32 {
    (year as u32) << 16 | (month as u32) << 8 | day as u32
}

fn unpack_date(packed: u32) -> (u16, u8, u8) {
    ((packed >> 16) as u16, (packed >> 8) as u8, packed as u8)
}

fn load_value(v: &StoredValue) -> Result<Value, String> {
    Ok(match v.value.as_ref().ok_or("a value without content")? {
        Stored::Null(_) => Value::Null,
        Stored::Int(i) => Value::Int(*i),
        Stored::UInt(u) => Value::UInt(*u),
        Stored::Double(d) => Value::Double(*d),
        Stored::Decimal(d) => Value::Decimal(d.as_str().into()),
        Stored::Text(t) => Value::Text(t.as_str().into()),
        Stored::Bytes(b) => Value::Bytes(b.clone().into()),
        Stored::Date(d) => {
            let (year, month, day) = unpack_date(*d);
            Value::Date { year, month, day }
        }
        Stored::DateTime(c) => {
            let (year, month, day) = unpack_date((c.main >> 24) as u32);
            Value::DateTime(DateTime {
                year,
                month,
                day,
                hour: (c.main >> 16) as u8,
                minute: (c.main >> 8) as u8,
                second: c.main as u8,
                micros: c.micros,
                fsp: c.fsp as u8,
            })
        }
        Stored::Timestamp(c) => Value::Timestamp {
            secs: c.main,
            micros: c.micros,
            fsp: c.fsp as u8,
        },
        Stored::Time(c) => {
            let packed = c.main >> 1;
            Value::Time {
                negative: c.main & 1 == 1,
                hours: (packed >> 16) as u16,
                minute: (packed >> 8) as u8,
                second: packed as u8,
                micros: c.micros,
                fsp: c.fsp as u8,
            }
        }
        Stored::Year(y) => Value::Year(*y as u16),
        Stored::Label(l) => Value::Label(Arc::from(l.as_str())),
        Stored::Labels(ls) => {
            Value::Labels(ls.labels.iter().map(|l| Arc::from(l.as_str())).collect())
        }
        Stored::Json(j) => Value::Json(Box::new(
            serde_json::from_str(j).map_err(|e| format!("a stored JSON value: {e}"))?,
        )),
    })
}

fn store_row(row: &Row) -> StoredRow {
    StoredRow {
        columns: row.columns.iter().map(|c| c.to_string()).collect(),
        values: row.values.iter().map(store_value).collect(),
    }
}

fn load_row(row: &StoredRow) -> Result<Row, String> {
    Ok(Row {
        columns: row.columns.iter().map(|c| Arc::from(c.as_str())).collect(),
        values: row
            .values
            .iter()
            .map(load_value)
            .collect::<Result<_, _>>()?,
    })
}

pub fn store_event(e: &ChangeEvent) -> StoredEvent {
    StoredEvent {
        op: e.op.as_str().to_string(),
        db: e.db.to_string(),
        table: e.table.to_string(),
        key: Some(store_row(&e.key)),
        before: e.before.as_ref().map(store_row),
        after: e.after.as_ref().map(store_row),
        source_name: e.source.name.to_string(),
        server_id: e.source.server_id,
        file: e.source.file.to_string(),
        pos: e.source.pos,
        gtid: e.source.gtid.as_deref().map(str::to_string),
        txn: e.source.txn.to_string(),
        ts_ms: e.source.ts_ms,
        row: e.source.row,
        snapshot: e.source.snapshot,
        read_ts_ms: e.read_ts_ms,
        ddl: e
            .ddl
            .as_ref()
            .map(|d| serde_json::to_string(&**d).unwrap_or_default()),
        partition_key: e.partition_key.as_ref().map(store_row),
    }
}

pub fn load_event(s: &StoredEvent) -> Result<ChangeEvent, String> {
    let op = Op::parse(&s.op)?;
    let ddl = match &s.ddl {
        Some(text) => Some(Arc::new(parse_schema_change(text)?)),
        None => None,
    };
    Ok(ChangeEvent {
        partition_key: s.partition_key.as_ref().map(load_row).transpose()?,
        origin: None,
        op,
        db: Arc::from(s.db.as_str()),
        table: Arc::from(s.table.as_str()),
        key: s
            .key
            .as_ref()
            .map(load_row)
            .transpose()?
            .unwrap_or_default(),
        before: s.before.as_ref().map(load_row).transpose()?,
        after: s.after.as_ref().map(load_row).transpose()?,
        source: SourceInfo {
            event: Arc::new(SourceEvent {
                name: Arc::from(s.source_name.as_str()),
                server_id: s.server_id,
                file: Arc::from(s.file.as_str()),
                pos: s.pos,
                gtid: s.gtid.as_deref().map(Arc::from),
                txn: Arc::from(s.txn.as_str()),
                ts_ms: s.ts_ms,
                snapshot: s.snapshot,
                sinks: None,
            }),
            row: s.row,
        },
        read_ts_ms: s.read_ts_ms,
        ddl,
    })
}

fn parse_schema_change(text: &str) -> Result<SchemaChange, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("a stored schema change: {e}"))?;
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(SchemaChange {
        kind: v["kind"].as_str().unwrap_or_default().to_string(),
        sql: v["sql"].as_str().unwrap_or_default().to_string(),
        columns: v["columns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| ColumnSpec {
                        name: c["name"].as_str().unwrap_or_default().to_string(),
                        sql_type: c["type"].as_str().unwrap_or_default().to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        primary_key: strings("primary_key"),
        database: v["database"].as_str().unwrap_or_default().to_string(),
    })
}

/// `db.table` and the key's native JSON: one string per row identity.
pub fn key_of(e: &ChangeEvent) -> String {
    row_key(&e.db, &e.table, &e.key)
}

fn row_key(db: &str, table: &str, key: &Row) -> String {
    let mut text = format!("{db}.{table}:");
    text.push_str(&serde_json::to_string(key).unwrap_or_default());
    text
}

/// What a change parks under and is parked by: its row's key (and the old key when an update
/// changes it), or, for a change without a key (a table without a primary key, a partial image,
/// DDL, TRUNCATE), its whole table.
#[derive(Debug, Clone, PartialEq)]
pub struct Parking {
    pub table: String,
    pub key: String,
    pub old_key: String,
}

/// Its parking, by its origin: the table and key it came from the source with.
pub fn parking_of(e: &ChangeEvent) -> Parking {
    let computed;
    let origin = match &e.origin {
        Some(recorded) => &**recorded,
        None => {
            computed = e.origin();
            &computed
        }
    };
    let table = format!("{}.{}", origin.db, origin.table);
    if origin.key.values.is_empty() || !e.op.is_row_change() {
        return Parking {
            table,
            key: String::new(),
            old_key: String::new(),
        };
    }
    let key = row_key(&origin.db, &origin.table, &origin.key);
    let old_key = origin
        .old_key
        .as_ref()
        .map(|old| row_key(&origin.db, &origin.table, old))
        .filter(|old| *old != key)
        .unwrap_or_default();
    Parking {
        table,
        key,
        old_key,
    }
}

/// The rows and tables with changes in a failure log: what later changes must park behind.
#[derive(Debug, Default)]
pub struct Parked {
    keys: std::collections::HashSet<String>,
    tables: std::collections::HashSet<String>,
    whole: std::collections::HashSet<String>,
}

impl Parked {
    /// Whether a change with this parking must follow earlier ones into the log.
    pub fn parks(&self, p: &Parking) -> bool {
        if p.key.is_empty() {
            return self.tables.contains(&p.table);
        }
        self.whole.contains(&p.table)
            || self.keys.contains(&p.key)
            || (!p.old_key.is_empty() && self.keys.contains(&p.old_key))
    }

    pub fn add(&mut self, p: &Parking) {
        self.tables.insert(p.table.clone());
        if p.key.is_empty() {
            self.whole.insert(p.table.clone());
        } else {
            self.keys.insert(p.key.clone());
            if !p.old_key.is_empty() {
                self.keys.insert(p.old_key.clone());
            }
        }
    }
}

impl FailureRecord {
    pub fn parking(&self) -> Parking {
        Parking {
            table: self.table.clone(),
            key: self.key.clone(),
            old_key: self.old_key.clone(),
        }
    }
}
