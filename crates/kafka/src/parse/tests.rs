//! What the sinks' encoders write, read back: each format's insert, update and delete come back
//! as the change they were made from (values as JSON gives them).

use super::*;
use rowbus_core::fixture;
use rowbus_sinks::format::{Encoder, Format};

fn row(name: &str) -> Row {
    Row {
        columns: vec![Arc::from("id"), Arc::from("name"), Arc::from("n")].into(),
        values: vec![Value::Int(7), Value::Text(name.into()), Value::Null],
    }
}

fn event(op: Op) -> ChangeEvent {
    let (before, after) = match op {
        Op::Insert => (None, Some(row("ann"))),
        Op::Update => (Some(row("ann")), Some(row("bob"))),
        _ => (Some(row("bob")), None),
    };
    let mut source = fixture::source("mysql-bin.000004", 1234, false);
    Arc::make_mut(&mut source.event).gtid = Some("0-1-9".into());
    source.row = if matches!(op, Op::Update) { 1 } else { 0 };
    fixture::change(op, ("shop", "t"), before, after, source)
}

fn round_trip(format: Format, in_format: InFormat, e: &ChangeEvent) -> ChangeEvent {
    let mut encoder = Encoder::new(format);
    let (mut key, mut value) = (Vec::new(), Vec::new());
    encoder.key(e, &mut key);
    assert!(encoder.value(e, &mut value));
    let at = Origin {
        source: "replay",
        topic: "t",
        partition: 0,
        offset: 5,
    };
    parse(in_format, Some(&key), Some(&value), &at)
        .unwrap()
        .expect("a change")
}

#[test]
fn every_format_reads_back_the_change_it_was_written_from() {
    for (format, in_format) in [
        (Format::Native, InFormat::Native),
        (Format::Debezium, InFormat::Debezium),
        (Format::Maxwell, InFormat::Maxwell),
    ] {
        for op in [Op::Insert, Op::Update, Op::Delete] {
            let e = event(op);
            let back = round_trip(format, in_format, &e);
            let what = format!("{format:?} {op:?}");
            assert_eq!(back.op, e.op, "{what}");
            assert_eq!((&*back.db, &*back.table), ("shop", "t"), "{what}");
            assert_eq!(back.key, e.key, "{what}");
            assert_eq!(back.before, e.before, "{what}");
            assert_eq!(back.after, e.after, "{what}");
            assert_eq!(&*back.source.file, "mysql-bin.000004", "{what}");
            assert_eq!(back.source.pos, 1234, "{what}");
            assert_eq!(back.source.gtid.as_deref(), Some("0-1-9"), "{what}");
            assert_eq!(&*back.source.name, "replay", "{what}");
        }
    }
}

#[test]
fn messages_without_a_row_change_are_skipped_and_bad_ones_named() {
    let at = Origin {
        source: "replay",
        topic: "cdc",
        partition: 2,
        offset: 41,
    };
    // A Debezium tombstone, a schema change event, a Maxwell DDL event.
    assert!(parse(InFormat::Debezium, Some(b"{\"id\":1}"), None, &at)
        .unwrap()
        .is_none());
    let ddl = br#"{"source":{"db":"shop"},"databaseName":"shop","ddl":"ALTER TABLE t ADD c INT"}"#;
    assert!(parse(InFormat::Debezium, None, Some(ddl), &at)
        .unwrap()
        .is_none());
    let maxwell =
        br#"{"type":"table-alter","database":"shop","table":"t","sql":"ALTER TABLE t ADD c INT"}"#;
    assert!(parse(InFormat::Maxwell, None, Some(maxwell), &at)
        .unwrap()
        .is_none());
    let e = parse(InFormat::Native, None, Some(b"not json"), &at).unwrap_err();
    assert!(
        e.starts_with("message cdc/2 at offset 41 is not Native JSON: "),
        "{e}"
    );
}

#[test]
fn a_debezium_envelope_with_its_schema_block_is_read_from_its_payload() {
    let at = Origin {
        source: "replay",
        topic: "cdc",
        partition: 0,
        offset: 0,
    };
    let key = br#"{"schema":{"type":"struct"},"payload":{"id":3}}"#;
    let value = br#"{"schema":{"type":"struct"},"payload":{"before":null,"after":{"id":3,"v":"x"},"source":{"db":"shop","table":"t","server_id":1,"file":"b.000001","pos":4,"row":0,"ts_ms":1000,"snapshot":"false"},"op":"c","ts_ms":2000}}"#;
    let e = parse(InFormat::Debezium, Some(key), Some(value), &at)
        .unwrap()
        .unwrap();
    assert_eq!(e.op, Op::Insert);
    assert_eq!(e.key.get("id"), Some(&Value::Int(3)));
    assert_eq!(e.after.unwrap().get("v"), Some(&Value::Text("x".into())));
}
