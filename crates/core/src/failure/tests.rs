use super::log::{self, FailureLog};
use super::record::*;
use crate::event::{ChangeEvent, ColumnSpec, Op, Row, SchemaChange, SourceEvent, SourceInfo};
use crate::value::{DateTime, Value};
use std::sync::Arc;

fn every_value() -> Vec<Value> {
    vec![
        Value::Null,
        Value::Int(i64::MIN),
        Value::UInt(u64::MAX),
        Value::Double(-1.5e-300),
        Value::Decimal("-12.30".into()),
        Value::Text("😀 \"q\"".into()),
        Value::Bytes(vec![0, 255, 1].into()),
        Value::Date {
            year: 2024,
            month: 1,
            day: 31,
        },
        Value::DateTime(DateTime {
            year: 9999,
            month: 12,
            day: 31,
            hour: 23,
            minute: 59,
            second: 59,
            micros: 999_999,
            fsp: 6,
        }),
        Value::Timestamp {
            secs: -1,
            micros: 5,
            fsp: 1,
        },
        Value::Time {
            negative: true,
            hours: 838,
            minute: 59,
            second: 59,
            micros: 0,
            fsp: 0,
        },
        Value::Time {
            negative: true,
            hours: 0,
            minute: 0,
            second: 0,
            micros: 1,
            fsp: 6,
        },
        Value::Year(1901),
        Value::Label(Arc::from("b")),
        Value::Labels(vec![Arc::from("x"), Arc::from("z")].into()),
        Value::Json(Box::new(serde_json::json!({"a": [1, 2.5, null, "s"]}))),
    ]
}

pub fn event(id: i64) -> ChangeEvent {
    let values = every_value();
    let columns: Arc<[Arc<str>]> = (0..values.len())
        .map(|i| Arc::from(format!("c{i}")))
        .collect();
    ChangeEvent {
        partition_key: None,
        origin: None,
        op: Op::Update,
        db: "db".into(),
        table: "t".into(),
        key: Row {
            columns: vec![Arc::from("id")].into(),
            values: vec![Value::Int(id)],
        },
        before: Some(Row {
            columns: columns.clone(),
            values: values.clone(),
        }),
        after: Some(Row { columns, values }),
        source: SourceInfo {
            event: Arc::new(SourceEvent {
                name: "src".into(),
                server_id: 7,
                file: "b.000003".into(),
                pos: 1234,
                gtid: Some("0-1-9".into()),
                txn: "0-1-9".into(),
                ts_ms: 1000,
                snapshot: false,
                sinks: None,
            }),
            row: id as u32,
        },
        read_ts_ms: 2000,
        ddl: None,
    }
}

#[test]
fn events_round_trip_exactly() {
    let e = event(1);
    assert_eq!(load_event(&store_event(&e)).unwrap(), e);
    let mut ddl = event(2);
    ddl.op = Op::Ddl;
    ddl.ddl = Some(Arc::new(SchemaChange {
        kind: "alter".into(),
        sql: "ALTER TABLE t ADD c INT".into(),
        columns: vec![ColumnSpec {
            name: "c".into(),
            sql_type: "INT".into(),
        }],
        primary_key: vec!["id".into()],
        database: "shop".into(),
    }));
    assert_eq!(load_event(&store_event(&ddl)).unwrap(), ddl);
}

fn temp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rowbus-failures-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn record(id: i64) -> FailureRecord {
    let e = event(id);
    let parking = parking_of(&e);
    FailureRecord {
        id: 0,
        sink: "out".into(),
        key: parking.key,
        old_key: parking.old_key,
        table: parking.table,
        event: Some(store_event(&e)),
        error: format!("rejected {id}"),
        attempts: 1,
        first_ms: 10,
        last_ms: 20,
        parked: false,
        untransformed: String::new(),
    }
}

#[test]
fn appends_reads_and_cuts_a_torn_tail() {
    let dir = temp("log");
    let path = log::path(&dir, "out");
    let mut log = FailureLog::open(&path).unwrap();
    log.append(&mut vec![record(1), record(2)]).unwrap();
    log.append(&mut vec![record(3)]).unwrap();
    // The same event again (logged again after a crash) is left out.
    log.append(&mut vec![record(3)]).unwrap();
    assert_eq!(log.len(), 3);
    assert!(log.parks(&parking_of(&event(2))) && !log.parks(&parking_of(&event(4))));
    drop(log);
    // A crash in the middle of the next append.
    let whole = std::fs::metadata(&path).unwrap().len();
    let mut partial = Vec::new();
    let body = prost::Message::encode_to_vec(&record(4));
    partial.extend_from_slice(&(body.len() as u32).to_le_bytes());
    partial.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    partial.extend_from_slice(&body[..body.len() / 2]);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &partial))
        .unwrap();
    let (records, torn) = log::read(&path).unwrap();
    assert_eq!((records.len(), torn), (3, partial.len()));
    let mut log = FailureLog::open(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
    log.append(&mut vec![record(5)]).unwrap();
    let (records, torn) = log::read(&path).unwrap();
    assert_eq!(torn, 0);
    let ids: Vec<u64> = records.iter().map(|r| r.id).collect();
    assert_eq!(ids, [1, 2, 3, 4]);
    assert_eq!(records[3].error, "rejected 5");
    assert_eq!(
        load_event(records[3].event.as_ref().unwrap()).unwrap(),
        event(5)
    );
    // A flipped byte is caught by the checksum.
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(log::read(&path).unwrap().0.len(), 3);
    // Zeros to the end (a crash after the file grew) are a torn tail too.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 3);
    let whole = log::read(&path).unwrap().0.len();
    bytes.extend_from_slice(&[0u8; 64]);
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(log::read(&path).unwrap().0.len(), whole);
    // A damaged record with whole records after it is corruption, not a tail to cut.
    let first_len = u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize;
    bytes[8 + first_len / 2] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let err = FailureLog::open(&path).unwrap_err().to_string();
    assert!(
        err.contains("fails its checksum at offset 0") && err.contains("damaged"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn keyless_changes_and_key_changes_park_what_they_touch() {
    let mut parked = Parked::default();
    let mut keyed = event(1);
    parked.add(&parking_of(&keyed));
    // Another row of the table flows; a keyless change of it (TRUNCATE, DDL) waits behind it.
    assert!(!parked.parks(&parking_of(&event(2))));
    let mut truncate = event(2);
    truncate.op = Op::Truncate;
    truncate.key = Row::default();
    assert!(parked.parks(&parking_of(&truncate)));
    // A logged keyless change parks the whole table.
    let mut whole = Parked::default();
    whole.add(&parking_of(&truncate));
    assert!(whole.parks(&parking_of(&event(7))));
    // An update moving row 1 to key 5 is parked by row 1, and once logged parks both keys.
    keyed.before.as_mut().unwrap().columns = vec![Arc::from("id")].into();
    keyed.before.as_mut().unwrap().values = vec![Value::Int(1)];
    keyed.key.values = vec![Value::Int(5)];
    let moved = parking_of(&keyed);
    assert!(!moved.old_key.is_empty() && moved.old_key != moved.key);
    let mut only_one = Parked::default();
    only_one.add(&parking_of(&event(1)));
    assert!(only_one.parks(&moved));
    let mut after_move = Parked::default();
    after_move.add(&moved);
    assert!(after_move.parks(&parking_of(&event(1))) && after_move.parks(&parking_of(&event(5))));
}
