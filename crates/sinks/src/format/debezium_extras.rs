//! The Debezium envelope's two optional parts. `Transactions` numbers each change within its
//! source transaction (`transaction.total_order`) and within its table in that transaction
//! (`data_collection_order`), as `provide.transaction.metadata` does; its counters can be saved
//! and put back, so that a batch sent again is numbered again the same way. `schema_of` writes the
//! JSON converter's schema block (`schemas.enable`), with each column's type taken from its value
//! (events do not carry declared types): INT columns are `int64`, a column null in both images is
//! an optional `string`.

use rowbus_core::value::write_json_string;
use rowbus_core::{ChangeEvent, Row, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The order of changes within their transactions, as far as the sink has seen them, and the
/// BEGIN and END events of the transaction topic.
#[derive(Debug, Clone, Default)]
pub struct Transactions {
    txn: Option<Arc<str>>,
    total: u64,
    per_table: HashMap<(Arc<str>, Arc<str>), u64>,
}

impl Transactions {
    /// Appends the `transaction` block of the next change `e`.
    pub fn block(&mut self, e: &ChangeEvent, out: &mut Vec<u8>) {
        if self.txn.as_deref() != Some(&*e.source.txn) {
            self.txn = Some(e.source.txn.clone());
            self.total = 0;
            self.per_table.clear();
        }
        self.total += 1;
        let table = self
            .per_table
            .entry((e.db.clone(), e.table.clone()))
            .or_default();
        *table += 1;
        out.extend_from_slice(b"{\"id\":");
        write_json_string(&e.source.txn, out);
        out.extend_from_slice(b",\"total_order\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.total).as_bytes());
        out.extend_from_slice(b",\"data_collection_order\":");
        out.extend_from_slice(itoa::Buffer::new().format(*table).as_bytes());
        out.push(b'}');
    }
}

impl Transactions {
    /// Whether change `e` is the first of its transaction (the next `block` starts it).
    pub fn begins(&self, e: &ChangeEvent) -> bool {
        self.txn.as_deref() != Some(&*e.source.txn)
    }

    /// The key and value of the BEGIN event of `e`'s transaction.
    pub fn begin_event(e: &ChangeEvent) -> (Vec<u8>, Vec<u8>) {
        let mut value = b"{\"status\":\"BEGIN\",\"id\":".to_vec();
        write_json_string(&e.source.txn, &mut value);
        value.extend_from_slice(b",\"ts_ms\":");
        value.extend_from_slice(itoa::Buffer::new().format(e.source.ts_ms).as_bytes());
        value.extend_from_slice(b",\"event_count\":null,\"data_collections\":null}");
        (transaction_key(e), value)
    }

    /// The key and value of the END event of the transaction whose last change was `e`: how many
    /// changes it had, in all and per table.
    pub fn end_event(&self, e: &ChangeEvent) -> (Vec<u8>, Vec<u8>) {
        let mut value = b"{\"status\":\"END\",\"id\":".to_vec();
        write_json_string(&e.source.txn, &mut value);
        value.extend_from_slice(b",\"ts_ms\":");
        value.extend_from_slice(itoa::Buffer::new().format(e.source.ts_ms).as_bytes());
        value.extend_from_slice(b",\"event_count\":");
        value.extend_from_slice(itoa::Buffer::new().format(self.total).as_bytes());
        value.extend_from_slice(b",\"data_collections\":[");
        let mut tables: Vec<_> = self.per_table.iter().collect();
        tables.sort();
        for (i, ((db, table), count)) in tables.into_iter().enumerate() {
            if i > 0 {
                value.push(b',');
            }
            value.extend_from_slice(b"{\"data_collection\":");
            write_json_string(&format!("{db}.{table}"), &mut value);
            value.extend_from_slice(b",\"event_count\":");
            value.extend_from_slice(itoa::Buffer::new().format(*count).as_bytes());
            value.push(b'}');
        }
        value.extend_from_slice(b"]}");
        (transaction_key(e), value)
    }
}

/// `{"id": <transaction>}`, the key of the transaction topic's events.
fn transaction_key(e: &ChangeEvent) -> Vec<u8> {
    let mut key = b"{\"id\":".to_vec();
    write_json_string(&e.source.txn, &mut key);
    key.push(b'}');
    key
}

/// The schema block of a change's value (`server` is the source's name, Debezium's topic prefix).
pub fn schema_of(e: &ChangeEvent, transaction: bool, out: &mut Vec<u8>) {
    let prefix = format!("{}.{}.{}", e.source.name, e.db, e.table);
    out.extend_from_slice(b"{\"type\":\"struct\",\"fields\":[");
    for (n, field) in ["before", "after"].into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        row_schema(e, &format!("{prefix}.Value"), field, true, out);
    }
    out.push(b',');
    out.extend_from_slice(SOURCE_SCHEMA.as_bytes());
    out.extend_from_slice(br#",{"type":"string","optional":false,"field":"op"},{"type":"int64","optional":true,"field":"ts_ms"}"#);
    if transaction {
        out.push(b',');
        out.extend_from_slice(TRANSACTION_SCHEMA.as_bytes());
    }
    out.extend_from_slice(b"],\"optional\":false,\"name\":");
    write_json_string(&format!("{prefix}.Envelope"), out);
    out.push(b'}');
}

/// The schema block of a change's key.
pub fn key_schema_of(e: &ChangeEvent, key: &Row, out: &mut Vec<u8>) {
    let name = format!("{}.{}.{}.Key", e.source.name, e.db, e.table);
    struct_schema(key, |i| key.values.get(i), &name, None, false, out);
}

/// The struct schema of the row images, each column typed by its value in either image.
fn row_schema(e: &ChangeEvent, name: &str, field: &str, optional: bool, out: &mut Vec<u8>) {
    let Some(shape) = e.after.as_ref().or(e.before.as_ref()) else {
        out.extend_from_slice(b"{\"type\":\"struct\",\"fields\":[],\"optional\":true,\"field\":");
        write_json_string(field, out);
        out.push(b'}');
        return;
    };
    let typed = |i: usize| non_null(e.after.as_ref(), i).or_else(|| non_null(e.before.as_ref(), i));
    struct_schema(shape, typed, name, Some(field), optional, out);
}

/// The value of column `i` of an image, unless it is null.
fn non_null(row: Option<&Row>, i: usize) -> Option<&Value> {
    row.and_then(|r| r.values.get(i))
        .filter(|v| !matches!(v, Value::Null))
}

fn struct_schema<'a>(
    shape: &Row,
    typed: impl Fn(usize) -> Option<&'a Value>,
    name: &str,
    field: Option<&str>,
    optional: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"type\":\"struct\",\"fields\":[");
    for (i, column) in shape.columns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let (kind, logical) = typed(i).map_or(("string", None), type_of);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"optional\":true");
        if let Some(logical) = logical {
            out.extend_from_slice(b",\"name\":\"");
            out.extend_from_slice(logical.as_bytes());
            out.extend_from_slice(b"\",\"version\":1");
        }
        out.extend_from_slice(b",\"field\":");
        write_json_string(column, out);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"optional\":");
    out.extend_from_slice(if optional { b"true" } else { b"false" });
    out.extend_from_slice(b",\"name\":");
    write_json_string(name, out);
    if let Some(field) = field {
        out.extend_from_slice(b",\"field\":");
        write_json_string(field, out);
    }
    out.push(b'}');
}

/// The Connect type and Debezium logical name of a value as `debezium::write_value` writes it.
fn type_of(value: &Value) -> (&'static str, Option<&'static str>) {
    match value {
        Value::Int(_) | Value::UInt(_) => ("int64", None),
        Value::Double(_) => ("double", None),
        Value::Bytes(_) => ("bytes", None),
        Value::Date { .. } => ("int32", Some("io.debezium.time.Date")),
        Value::DateTime(d) if d.fsp <= 3 => ("int64", Some("io.debezium.time.Timestamp")),
        Value::DateTime(_) => ("int64", Some("io.debezium.time.MicroTimestamp")),
        Value::Timestamp { .. } => ("string", Some("io.debezium.time.ZonedTimestamp")),
        Value::Time { .. } => ("int64", Some("io.debezium.time.MicroTime")),
        Value::Year(_) => ("int32", Some("io.debezium.time.Year")),
        Value::Label(_) => ("string", Some("io.debezium.data.Enum")),
        Value::Labels(_) => ("string", Some("io.debezium.data.EnumSet")),
        Value::Json(_) => ("string", Some("io.debezium.data.Json")),
        Value::Null | Value::Decimal(_) | Value::Text(_) => ("string", None),
    }
}

const SOURCE_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"version"},{"type":"string","optional":false,"field":"connector"},{"type":"string","optional":false,"field":"name"},{"type":"int64","optional":false,"field":"ts_ms"},{"type":"string","optional":true,"name":"io.debezium.data.Enum","version":1,"parameters":{"allowed":"true,last,false,incremental"},"default":"false","field":"snapshot"},{"type":"string","optional":false,"field":"db"},{"type":"string","optional":true,"field":"sequence"},{"type":"string","optional":true,"field":"table"},{"type":"int64","optional":false,"field":"server_id"},{"type":"string","optional":true,"field":"gtid"},{"type":"string","optional":false,"field":"file"},{"type":"int64","optional":false,"field":"pos"},{"type":"int32","optional":false,"field":"row"},{"type":"int64","optional":true,"field":"thread"},{"type":"string","optional":true,"field":"query"}],"optional":false,"name":"io.debezium.connector.mysql.Source","field":"source"}"#;

const TRANSACTION_SCHEMA: &str = r#"{"type":"struct","fields":[{"type":"string","optional":false,"field":"id"},{"type":"int64","optional":false,"field":"total_order"},{"type":"int64","optional":false,"field":"data_collection_order"}],"optional":true,"name":"event.block","version":1,"field":"transaction"}"#;
