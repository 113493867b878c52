//! A message of a topic back into a change event: rowbus's native JSON, Debezium's envelope (with
//! or without its schema block) or Maxwell's JSON. Values come back as JSON gives them (numbers,
//! text, JSON documents), not with their source types: a Debezium DATE stays its day number.
//! Columns keep the order the message has them in. Debezium's tombstones, its schema change
//! events and Maxwell's DDL events carry no row change and are skipped.

use rowbus_core::{ChangeEvent, Op, Row, SourceEvent, SourceInfo, Value};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::sync::Arc;

/// The shape of a topic's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFormat {
    Native,
    Debezium,
    Maxwell,
}

impl InFormat {
    pub fn parse(name: &str) -> Option<InFormat> {
        match name {
            "native" => Some(InFormat::Native),
            "debezium" => Some(InFormat::Debezium),
            "maxwell" => Some(InFormat::Maxwell),
            _ => None,
        }
    }
}

/// Where a message was read: its topic, partition and offset, and the source's name.
pub struct Origin<'a> {
    pub source: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The change a message holds, `None` for one that holds none (a tombstone, a schema change), or
/// why it cannot be read.
pub fn parse(
    format: InFormat,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    at: &Origin,
) -> Result<Option<ChangeEvent>, String> {
    let Some(value) = value else {
        return Ok(None);
    };
    let key = match key {
        Some(k) if !k.is_empty() => serde_json::from_slice::<Ordered>(k).ok(),
        _ => None,
    };
    let parsed = match format {
        InFormat::Native => native(value, at),
        InFormat::Debezium => debezium(value, key, at),
        InFormat::Maxwell => maxwell(value, key, at),
    };
    parsed.map_err(|e| {
        format!(
            "message {}/{} at offset {} is not {format:?} JSON: {e}",
            at.topic, at.partition, at.offset
        )
    })
}

/// A JSON object with its fields in the order written.
#[derive(Debug, Default, Clone)]
struct Ordered(Vec<(String, serde_json::Value)>);

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> Visitor<'de> for Fields {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ordered, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    fields.push(entry);
                }
                Ok(Ordered(fields))
            }
        }
        d.deserialize_map(Fields)
    }
}

impl Ordered {
    fn row(self) -> Row {
        let (columns, values): (Vec<Arc<str>>, Vec<Value>) = self
            .0
            .into_iter()
            .map(|(name, v)| (Arc::from(name), value(v)))
            .unzip();
        Row {
            columns: columns.into(),
            values,
        }
    }
}

/// A JSON value as a row value: integers as integers, other numbers as doubles, text as text,
/// booleans as 0 or 1, arrays and objects as JSON documents.
fn value(v: serde_json::Value) -> Value {
    use serde_json::Value as J;
    match v {
        J::Null => Value::Null,
        J::Bool(b) => Value::Int(i64::from(b)),
        J::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::UInt(u),
            _ => Value::Double(n.as_f64().unwrap_or(0.0)),
        },
        J::String(s) => Value::Text(s.into()),
        other => Value::Json(Box::new(other)),
    }
}

#[derive(Deserialize)]
struct NativeEvent {
    op: String,
    db: String,
    table: String,
    #[serde(default)]
    key: Option<Ordered>,
    before: Option<Ordered>,
    after: Option<Ordered>,
    source: NativeSource,
    #[serde(default)]
    read_ts_ms: u64,
}

#[derive(Deserialize)]
struct NativeSource {
    #[serde(default)]
    server_id: u32,
    #[serde(default)]
    file: String,
    #[serde(default)]
    pos: u64,
    gtid: Option<String>,
    #[serde(default)]
    txn: String,
    #[serde(default)]
    ts_ms: u64,
    #[serde(default)]
    row: u32,
    #[serde(default)]
    snapshot: bool,
}

fn native(value: &[u8], at: &Origin) -> Result<Option<ChangeEvent>, String> {
    let e: NativeEvent = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let Some(op) = row_op(&e.op) else {
        return Ok(None);
    };
    let s = e.source;
    let source = Place {
        server_id: s.server_id,
        file: s.file,
        pos: s.pos,
        gtid: s.gtid,
        txn: Some(s.txn).filter(|t| !t.is_empty()),
        ts_ms: s.ts_ms,
        snapshot: s.snapshot,
    }
    .source(at);
    Ok(Some(change(
        op,
        (e.db, e.table),
        e.key.map(Ordered::row),
        (e.before.map(Ordered::row), e.after.map(Ordered::row)),
        (source, s.row),
        e.read_ts_ms,
    )))
}

/// Where a message says its change was read in the binlog.
struct Place {
    server_id: u32,
    file: String,
    pos: u64,
    gtid: Option<String>,
    /// The transaction's id, when the message has one; its GTID or `file:pos` otherwise.
    txn: Option<String>,
    ts_ms: u64,
    snapshot: bool,
}

impl Place {
    /// The source block of a change read from the message at `at`.
    fn source(self, at: &Origin) -> SourceEvent {
        let txn = self
            .txn
            .or_else(|| self.gtid.clone())
            .unwrap_or_else(|| format!("{}:{}", self.file, self.pos));
        SourceEvent {
            name: at.source.into(),
            server_id: self.server_id,
            file: self.file.into(),
            pos: self.pos,
            gtid: self.gtid.map(Into::into),
            txn: txn.into(),
            ts_ms: self.ts_ms,
            snapshot: self.snapshot,
            sinks: None,
        }
    }
}

fn row_op(op: &str) -> Option<Op> {
    match op {
        "c" => Some(Op::Insert),
        "u" => Some(Op::Update),
        "d" => Some(Op::Delete),
        "r" => Some(Op::Read),
        _ => None,
    }
}

/// A change event; its key is `key`, or the first column of its image when the message has none.
fn change(
    op: Op,
    (db, table): (String, String),
    key: Option<Row>,
    (before, after): (Option<Row>, Option<Row>),
    (source, row): (SourceEvent, u32),
    read_ts_ms: u64,
) -> ChangeEvent {
    let key = key.unwrap_or_else(|| {
        let image = after.as_ref().or(before.as_ref());
        image.map_or_else(Row::default, |image| Row {
            columns: image.columns.iter().take(1).cloned().collect(),
            values: image.values.iter().take(1).cloned().collect(),
        })
    });
    ChangeEvent {
        op,
        db: db.into(),
        table: table.into(),
        key,
        before,
        after,
        source: SourceInfo {
            event: Arc::new(source),
            row,
        },
        read_ts_ms: if read_ts_ms == 0 {
            rowbus_core::event::now_ms()
        } else {
            read_ts_ms
        },
        ddl: None,
        partition_key: None,
        origin: None,
    }
}

#[derive(Deserialize)]
struct DebeziumEvent {
    op: Option<String>,
    before: Option<Ordered>,
    after: Option<Ordered>,
    source: Option<DebeziumSource>,
    #[serde(default)]
    ts_ms: u64,
    /// Set when the envelope came with its schema block.
    payload: Option<Box<DebeziumEvent>>,
}

#[derive(Deserialize)]
struct DebeziumSource {
    #[serde(default)]
    db: String,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    server_id: u32,
    #[serde(default)]
    file: String,
    #[serde(default)]
    pos: u64,
    gtid: Option<String>,
    #[serde(default)]
    row: u32,
    #[serde(default)]
    ts_ms: u64,
    #[serde(default)]
    snapshot: Option<serde_json::Value>,
}

fn debezium(
    value: &[u8],
    key: Option<Ordered>,
    at: &Origin,
) -> Result<Option<ChangeEvent>, String> {
    let mut e: DebeziumEvent = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    if let Some(payload) = e.payload.take() {
        e = *payload;
    }
    let (Some(op), Some(s)) = (e.op.as_deref().and_then(row_op), e.source) else {
        return Ok(None);
    };
    let key = key.map(|k| match k.0.iter().find(|(name, _)| name == "payload") {
        Some((_, serde_json::Value::Object(_))) => Ordered(
            k.0.into_iter()
                .find(|(name, _)| name == "payload")
                .and_then(|(_, v)| serde_json::from_value::<Ordered>(v).ok())
                .unwrap_or_default()
                .0,
        ),
        _ => k,
    });
    let snapshot = matches!(&s.snapshot, Some(serde_json::Value::String(v)) if v != "false")
        || matches!(&s.snapshot, Some(serde_json::Value::Bool(true)));
    let txn = s
        .gtid
        .clone()
        .unwrap_or_else(|| format!("{}:{}", s.file, s.pos));
    let source = SourceEvent {
        name: at.source.into(),
        server_id: s.server_id,
        file: s.file.into(),
        pos: s.pos,
        gtid: s.gtid.map(Into::into),
        txn: txn.into(),
        ts_ms: s.ts_ms,
        snapshot,
        sinks: None,
    };
    let table = s.table.unwrap_or_default();
    Ok(Some(change(
        op,
        (s.db, table),
        key.map(Ordered::row),
        (e.before.map(Ordered::row), e.after.map(Ordered::row)),
        (source, s.row),
        e.ts_ms,
    )))
}

#[derive(Deserialize)]
struct MaxwellEvent {
    database: String,
    #[serde(default)]
    table: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ts: u64,
    data: Option<Ordered>,
    old: Option<Ordered>,
    position: Option<String>,
    gtid: Option<String>,
    #[serde(default)]
    server_id: u32,
}

fn maxwell(value: &[u8], key: Option<Ordered>, at: &Origin) -> Result<Option<ChangeEvent>, String> {
    let e: MaxwellEvent = serde_json::from_slice(value).map_err(|e| e.to_string())?;
    let op = match e.kind.as_str() {
        "insert" => Op::Insert,
        "update" => Op::Update,
        "delete" => Op::Delete,
        "bootstrap-insert" => Op::Read,
        _ => return Ok(None),
    };
    let Some(data) = e.data else {
        return Ok(None);
    };
    // `old` holds the changed columns' previous values: the before image is `data` with them.
    let before = match (op, &e.old) {
        (Op::Update, Some(old)) => {
            let mut before = data.clone();
            for (name, value) in &old.0 {
                if let Some(field) = before.0.iter_mut().find(|(n, _)| n == name) {
                    field.1 = value.clone();
                }
            }
            Some(before)
        }
        (Op::Delete, _) => Some(data.clone()),
        _ => None,
    };
    let after = (op != Op::Delete).then_some(data);
    // Maxwell's hash key: database, table and `pk.<column>` fields.
    let key = key.map(|k| {
        Ordered(
            k.0.into_iter()
                .filter_map(|(name, v)| Some((name.strip_prefix("pk.")?.to_string(), v)))
                .collect(),
        )
    });
    let (file, pos) = e
        .position
        .as_deref()
        .and_then(|p| p.rsplit_once(':'))
        .map_or((String::new(), 0), |(f, p)| {
            (f.to_string(), p.parse().unwrap_or(0))
        });
    let source = Place {
        server_id: e.server_id,
        file,
        pos,
        gtid: e.gtid,
        txn: None,
        ts_ms: e.ts * 1000,
        snapshot: op == Op::Read,
    }
    .source(at);
    Ok(Some(change(
        op,
        (e.database, e.table),
        key.filter(|k| !k.0.is_empty()).map(Ordered::row),
        (before.map(Ordered::row), after.map(Ordered::row)),
        (source, 0),
        0,
    )))
}

#[cfg(test)]
mod tests;
