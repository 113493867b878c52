//! Golden tests: each format's key and value, byte for byte, for an insert, an update, a delete, a
//! snapshot read and a schema change of a row holding each kind of value, against the shapes
//! Debezium's MySQL connector, Maxwell and Canal document.

use super::*;
use rowbus_core::event::{SchemaChange, SourceEvent, SourceInfo};
use rowbus_core::value::DateTime;
use rowbus_core::{ChangeEvent, Op};
use std::sync::Arc;

fn row(name: &str, price: &str) -> Row {
    let columns = [
        "id", "name", "price", "born", "at", "at6", "ts", "t", "flags", "kind", "raw", "doc", "n",
        "y",
    ];
    let at = |micros, fsp| {
        Value::DateTime(DateTime {
            year: 2024,
            month: 1,
            day: 31,
            hour: 12,
            minute: 0,
            second: 0,
            micros,
            fsp,
        })
    };
    Row {
        columns: columns.iter().map(|c| Arc::from(*c)).collect(),
        values: vec![
            Value::Int(1),
            Value::Text(name.into()),
            Value::Decimal(price.into()),
            Value::Date {
                year: 2024,
                month: 1,
                day: 31,
            },
            at(123_000, 3),
            at(123_456, 6),
            Value::Timestamp {
                secs: 1_706_702_400,
                micros: 500_000,
                fsp: 1,
            },
            Value::Time {
                negative: false,
                hours: 12,
                minute: 34,
                second: 56,
                micros: 0,
                fsp: 0,
            },
            Value::Labels(vec![Arc::from("a"), Arc::from("b")].into()),
            Value::Label("x".into()),
            Value::Bytes(vec![0x41, 0xe9].into()),
            Value::Json(Box::new(serde_json::json!({"k": 1}))),
            Value::Null,
            Value::Year(2024),
        ],
    }
}

fn event(op: Op, snapshot: bool) -> ChangeEvent {
    let (before, after) = match op {
        Op::Insert | Op::Read => (None, Some(row("ann", "12.30"))),
        Op::Update => (Some(row("ann", "12.30")), Some(row("bob", "12.30"))),
        _ => (Some(row("bob", "12.30")), None),
    };
    let mut e =
        rowbus_core::fixture::change(op, ("shop", "orders"), before, after, source(snapshot));
    e.read_ts_ms = 1_706_702_401_000;
    e
}

fn source(snapshot: bool) -> SourceInfo {
    SourceInfo {
        event: Arc::new(SourceEvent {
            name: "shop".into(),
            server_id: 7,
            file: "mysql-bin.000003".into(),
            pos: 805,
            gtid: Some("0-7-42".into()),
            txn: "0-7-42".into(),
            ts_ms: 1_706_702_400_000,
            snapshot,
            sinks: None,
        }),
        row: 2,
    }
}

fn ddl() -> ChangeEvent {
    let mut e = event(Op::Insert, false);
    e.op = Op::Ddl;
    e.before = None;
    e.after = None;
    e.key = Row::default();
    e.ddl = Some(Arc::new(SchemaChange {
        kind: "alter".into(),
        sql: "ALTER TABLE orders ADD note TEXT".into(),
        columns: Vec::new(),
        primary_key: vec!["id".into()],
        database: "shop".into(),
    }));
    e
}

fn encode(format: Format, e: &ChangeEvent) -> (String, Option<String>) {
    let mut encoder = Encoder::new(format);
    let (mut key, mut value) = (Vec::new(), Vec::new());
    encoder.key(e, &mut key);
    let has = encoder.value(e, &mut value);
    // Every value is JSON.
    if has {
        serde_json::from_slice::<serde_json::Value>(&value).expect("JSON");
    }
    (
        String::from_utf8(key).unwrap(),
        has.then(|| String::from_utf8(value).unwrap()),
    )
}

/// A Debezium encoder with transaction metadata.
fn tracking_encoder() -> Encoder {
    let options = debezium::Options {
        schemas: false,
        transaction_metadata: true,
    };
    Encoder::new(Format::Debezium).with_debezium(options)
}

/// `event(op)` in another transaction.
fn in_transaction(op: Op, txn: &str) -> ChangeEvent {
    let mut e = event(op, false);
    let mut source = (*e.source.event).clone();
    source.txn = txn.into();
    e.source.event = Arc::new(source);
    e
}

/// An insert into `shop.items`, in the same transaction as `event`'s.
fn of_items() -> ChangeEvent {
    let mut e = event(Op::Insert, false);
    e.table = "items".into();
    e
}

const DBZ_SOURCE: &str = r#"{"version":"rowbus-0.1.0","connector":"mysql","name":"shop","ts_ms":1706702400000,"snapshot":"false","db":"shop","sequence":null,"table":"orders","server_id":7,"gtid":"0-7-42","file":"mysql-bin.000003","pos":805,"row":2,"thread":null,"query":null}"#;
const DBZ_ANN: &str = r#"{"id":1,"name":"ann","price":"12.30","born":19753,"at":1706702400123,"at6":1706702400123456,"ts":"2024-01-31T12:00:00.5Z","t":45296000000,"flags":"a,b","kind":"x","raw":"Qek=","doc":"{\"k\":1}","n":null,"y":2024}"#;

#[test]
fn debezium_envelopes_follow_the_mysql_connector() {
    let bob = DBZ_ANN.replace("ann", "bob");
    let insert = encode(Format::Debezium, &event(Op::Insert, false));
    assert_eq!(insert.0, r#"{"id":1}"#);
    assert_eq!(
        insert.1.unwrap(),
        format!(
            r#"{{"before":null,"after":{DBZ_ANN},"source":{DBZ_SOURCE},"op":"c","ts_ms":1706702401000,"transaction":null}}"#
        )
    );
    let update = encode(Format::Debezium, &event(Op::Update, false))
        .1
        .unwrap();
    assert_eq!(
        update,
        format!(
            r#"{{"before":{DBZ_ANN},"after":{bob},"source":{DBZ_SOURCE},"op":"u","ts_ms":1706702401000,"transaction":null}}"#
        )
    );
    let delete = encode(Format::Debezium, &event(Op::Delete, false))
        .1
        .unwrap();
    assert_eq!(
        delete,
        format!(
            r#"{{"before":{bob},"after":null,"source":{DBZ_SOURCE},"op":"d","ts_ms":1706702401000,"transaction":null}}"#
        )
    );
    let read = encode(Format::Debezium, &event(Op::Read, true)).1.unwrap();
    let snapshot_source = DBZ_SOURCE.replace(r#""snapshot":"false""#, r#""snapshot":"true""#);
    assert_eq!(
        read,
        format!(
            r#"{{"before":null,"after":{DBZ_ANN},"source":{snapshot_source},"op":"r","ts_ms":1706702401000,"transaction":null}}"#
        )
    );
    let (key, change) = encode(Format::Debezium, &ddl());
    assert_eq!(key, r#"{"databaseName":"shop"}"#);
    assert_eq!(
        change.unwrap(),
        format!(
            r#"{{"source":{DBZ_SOURCE},"ts_ms":1706702401000,"databaseName":"shop","schemaName":null,"ddl":"ALTER TABLE orders ADD note TEXT","tableChanges":[]}}"#
        )
    );
}

const MAXWELL_PLACE: &str = r#""position":"mysql-bin.000003:805","gtid":"0-7-42","server_id":7"#;
/// A change's `ts`, `xid` (the GTID's sequence number), `commit` (the last of its transaction).
const MAXWELL_COMMON: &str = r#""ts":1706702400,"xid":42,"commit":true,"position":"mysql-bin.000003:805","gtid":"0-7-42","server_id":7"#;
const MAXWELL_ANN: &str = r#"{"id":1,"name":"ann","price":12.30,"born":"2024-01-31","at":"2024-01-31 12:00:00.123","at6":"2024-01-31 12:00:00.123456","ts":"2024-01-31 12:00:00.5","t":"12:34:56","flags":["a","b"],"kind":"x","raw":"Qek=","doc":{"k":1},"n":null,"y":2024}"#;

#[test]
fn maxwell_messages_follow_maxwells_json() {
    let head = r#"{"database":"shop","table":"orders","type":"#;
    let insert = encode(Format::Maxwell, &event(Op::Insert, false));
    assert_eq!(
        insert.0,
        r#"{"database":"shop","table":"orders","pk.id":1}"#
    );
    assert_eq!(
        insert.1.unwrap(),
        format!(r#"{head}"insert",{MAXWELL_COMMON},"data":{MAXWELL_ANN}}}"#)
    );
    let bob = MAXWELL_ANN.replace("ann", "bob");
    let update = encode(Format::Maxwell, &event(Op::Update, false))
        .1
        .unwrap();
    assert_eq!(
        update,
        format!(r#"{head}"update",{MAXWELL_COMMON},"data":{bob},"old":{{"name":"ann"}}}}"#)
    );
    let delete = encode(Format::Maxwell, &event(Op::Delete, false))
        .1
        .unwrap();
    assert_eq!(
        delete,
        format!(r#"{head}"delete",{MAXWELL_COMMON},"data":{bob}}}"#)
    );
    let read = encode(Format::Maxwell, &event(Op::Read, true)).1.unwrap();
    assert_eq!(
        read,
        format!(r#"{head}"bootstrap-insert",{MAXWELL_COMMON},"data":{MAXWELL_ANN}}}"#)
    );
    let change = encode(Format::Maxwell, &ddl()).1.unwrap();
    assert_eq!(
        change,
        format!(
            r#"{{"type":"table-alter","database":"shop","table":"orders","ts":1706702400,{MAXWELL_PLACE},"sql":"ALTER TABLE orders ADD note TEXT"}}"#
        )
    );
    let mut truncate = ddl();
    truncate.op = Op::Truncate;
    assert_eq!(encode(Format::Maxwell, &truncate).1, None);
}

const CANAL_ANN: &str = r#"{"id":"1","name":"ann","price":"12.30","born":"2024-01-31","at":"2024-01-31 12:00:00.123","at6":"2024-01-31 12:00:00.123456","ts":"2024-01-31 12:00:00.5","t":"12:34:56","flags":"a,b","kind":"x","raw":"Aé","doc":"{\"k\":1}","n":null,"y":"2024"}"#;

#[test]
fn canal_flat_messages_follow_canals_flat_json() {
    let canal = |data: &str, old: &str, kind: &str| {
        format!(
            r#"{{"data":[{data}],"database":"shop","es":1706702400000,"id":0,"isDdl":false,"mysqlType":null,"old":{old},"pkNames":["id"],"sql":"","sqlType":null,"table":"orders","ts":1706702401000,"type":"{kind}"}}"#
        )
    };
    let bob = CANAL_ANN.replace("ann", "bob");
    let insert = encode(Format::Canal, &event(Op::Insert, false));
    assert_eq!(insert.0, r#"{"id":1}"#);
    assert_eq!(insert.1.unwrap(), canal(CANAL_ANN, "null", "INSERT"));
    let update = encode(Format::Canal, &event(Op::Update, false)).1.unwrap();
    assert_eq!(update, canal(&bob, r#"[{"name":"ann"}]"#, "UPDATE"));
    let delete = encode(Format::Canal, &event(Op::Delete, false)).1.unwrap();
    assert_eq!(delete, canal(&bob, "null", "DELETE"));
    let read = encode(Format::Canal, &event(Op::Read, true)).1.unwrap();
    assert_eq!(read, canal(CANAL_ANN, "null", "INSERT"));
    let change = encode(Format::Canal, &ddl()).1.unwrap();
    assert_eq!(
        change,
        r#"{"data":null,"database":"shop","es":1706702400000,"id":0,"isDdl":true,"mysqlType":null,"old":null,"pkNames":null,"sql":"ALTER TABLE orders ADD note TEXT","sqlType":null,"table":"orders","ts":1706702401000,"type":"ALTER"}"#
    );
}

#[test]
fn native_values_are_the_native_json_without_a_newline() {
    let e = event(Op::Insert, false);
    let (key, value) = encode(Format::Native, &e);
    assert_eq!(key, r#"{"id":1}"#);
    let mut line = Vec::new();
    crate::encode::native_json_line(&e, &mut line);
    assert_eq!(value.unwrap().as_bytes(), &line[..line.len() - 1]);
}

#[test]
fn debezium_transaction_blocks_number_changes_within_transaction_and_table() {
    let mut encoder = tracking_encoder();
    let (items, next) = (of_items(), in_transaction(Op::Insert, "0-7-43"));
    let block = |encoder: &mut Encoder, e: &ChangeEvent| {
        let mut out = Vec::new();
        encoder.value(e, &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        v["transaction"].to_string()
    };
    let first = event(Op::Insert, false);
    assert_eq!(
        block(&mut encoder, &first),
        r#"{"data_collection_order":1,"id":"0-7-42","total_order":1}"#
    );
    let saved = encoder.saved();
    assert_eq!(
        block(&mut encoder, &event(Op::Update, false)),
        r#"{"data_collection_order":2,"id":"0-7-42","total_order":2}"#
    );
    assert_eq!(
        block(&mut encoder, &items),
        r#"{"data_collection_order":1,"id":"0-7-42","total_order":3}"#
    );
    // A batch sent again is numbered as the first time.
    encoder.restore(saved);
    assert_eq!(
        block(&mut encoder, &event(Op::Update, false)),
        r#"{"data_collection_order":2,"id":"0-7-42","total_order":2}"#
    );
    assert_eq!(
        block(&mut encoder, &next),
        r#"{"data_collection_order":1,"id":"0-7-43","total_order":1}"#
    );
}

#[test]
fn debezium_schema_blocks_type_each_column_by_its_value() {
    let options = debezium::Options {
        schemas: true,
        transaction_metadata: false,
    };
    let mut encoder = Encoder::new(Format::Debezium).with_debezium(options);
    let e = event(Op::Insert, false);
    let (mut key, mut value) = (Vec::new(), Vec::new());
    encoder.key(&e, &mut key);
    encoder.value(&e, &mut value);
    assert_eq!(
        String::from_utf8(key).unwrap(),
        r#"{"schema":{"type":"struct","fields":[{"type":"int64","optional":true,"field":"id"}],"optional":false,"name":"shop.shop.orders.Key"},"payload":{"id":1}}"#
    );
    let value: serde_json::Value = serde_json::from_slice(&value).unwrap();
    let plain = encode(Format::Debezium, &e).1.unwrap();
    assert_eq!(
        value["payload"],
        serde_json::from_str::<serde_json::Value>(&plain).unwrap()
    );
    let schema = &value["schema"];
    assert_eq!(schema["name"], "shop.shop.orders.Envelope");
    let fields: Vec<&str> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["before", "after", "source", "op", "ts_ms"]);
    let after = &schema["fields"][1];
    assert_eq!(after["name"], "shop.shop.orders.Value");
    let typed: Vec<String> = after["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let name = f["name"]
                .as_str()
                .map(|n| format!(" {n}"))
                .unwrap_or_default();
            format!(
                "{} {}{name}",
                f["field"].as_str().unwrap(),
                f["type"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        typed,
        [
            "id int64",
            "name string",
            "price string",
            "born int32 io.debezium.time.Date",
            "at int64 io.debezium.time.Timestamp",
            "at6 int64 io.debezium.time.MicroTimestamp",
            "ts string io.debezium.time.ZonedTimestamp",
            "t int64 io.debezium.time.MicroTime",
            "flags string io.debezium.data.EnumSet",
            "kind string io.debezium.data.Enum",
            "raw bytes",
            "doc string io.debezium.data.Json",
            "n string",
            "y int32 io.debezium.time.Year",
        ]
    );
}

#[test]
fn maxwell_commit_marks_the_last_change_of_each_transaction_in_a_batch() {
    let mut encoder = Encoder::new(Format::Maxwell);
    let other = in_transaction(Op::Insert, "0-7-43");
    let batch = vec![
        Arc::new(event(Op::Insert, false)),
        Arc::new(event(Op::Update, false)),
        Arc::new(other),
    ];
    let marks: Vec<(u64, bool)> = (0..batch.len())
        .map(|i| {
            encoder.ends_transaction(&batch, i);
            let mut out = Vec::new();
            encoder.value(&batch[i], &mut out);
            let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
            (v["xid"].as_u64().unwrap(), v["commit"] == true)
        })
        .collect();
    assert_eq!(marks, [(42, false), (42, true), (43, true)]);
}

#[test]
fn debezium_transaction_events_begin_and_end_each_transaction_with_its_counts() {
    let mut encoder = tracking_encoder();
    let (items, next) = (of_items(), in_transaction(Op::Insert, "0-7-43"));
    let batch = vec![
        Arc::new(event(Op::Insert, false)),
        Arc::new(event(Op::Update, false)),
        Arc::new(items),
        Arc::new(next),
    ];
    let mut events = Vec::new();
    for i in 0..batch.len() {
        if let Some((key, value)) = encoder.begin_of(&batch[i]) {
            events.push((
                String::from_utf8(key).unwrap(),
                String::from_utf8(value).unwrap(),
            ));
        }
        encoder.ends_transaction(&batch, i);
        encoder.value(&batch[i], &mut Vec::new());
        if let Some((key, value)) = encoder.end_of(&batch[i]) {
            events.push((
                String::from_utf8(key).unwrap(),
                String::from_utf8(value).unwrap(),
            ));
        }
    }
    let pair = |key: &str, value: &str| (key.to_string(), value.to_string());
    assert_eq!(
        events,
        [
            pair(
                r#"{"id":"0-7-42"}"#,
                r#"{"status":"BEGIN","id":"0-7-42","ts_ms":1706702400000,"event_count":null,"data_collections":null}"#
            ),
            pair(
                r#"{"id":"0-7-42"}"#,
                r#"{"status":"END","id":"0-7-42","ts_ms":1706702400000,"event_count":3,"data_collections":[{"data_collection":"shop.items","event_count":1},{"data_collection":"shop.orders","event_count":2}]}"#
            ),
            pair(
                r#"{"id":"0-7-43"}"#,
                r#"{"status":"BEGIN","id":"0-7-43","ts_ms":1706702400000,"event_count":null,"data_collections":null}"#
            ),
            pair(
                r#"{"id":"0-7-43"}"#,
                r#"{"status":"END","id":"0-7-43","ts_ms":1706702400000,"event_count":1,"data_collections":[{"data_collection":"shop.orders","event_count":1}]}"#
            ),
        ]
    );
}
