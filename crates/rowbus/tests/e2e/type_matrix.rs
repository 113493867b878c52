//! Every column type MariaDB can write, with its edge values, inserted, updated and deleted: the
//! JSON of each value equals the expected literal, with FULL row metadata (names, ENUM/SET labels)
//! and with MINIMAL (positional names, ENUM/SET as numbers until the schema history exists).

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, MariaDbOptions, RowMetadata};
use serde_json::{json, Map, Value};

pub const TABLE: &str = "CREATE TABLE types (
  id INT PRIMARY KEY,
  ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED, mi MEDIUMINT, mu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
  d1 DECIMAL(10,2), d2 DECIMAL(65,30), d3 DECIMAL(5,0),
  f FLOAT, db DOUBLE,
  dt DATE, dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6),
  ts TIMESTAMP NULL, ts1 TIMESTAMP(1) NULL, ts6 TIMESTAMP(6) NULL,
  tm TIME, tm2 TIME(2), tm6 TIME(6), y YEAR,
  c CHAR(10), vc VARCHAR(300), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
  vb VARBINARY(10), bn BINARY(4), bl BLOB, mb MEDIUMBLOB,
  e ENUM('a','b','c'), st SET('x','y','z'), bt1 BIT(1), bt64 BIT(64),
  js JSON, g GEOMETRY
) DEFAULT CHARSET = utf8mb4";

const COLUMNS: [&str; 42] = [
    "id", "ti", "tu", "si", "su", "mi", "mu", "i", "iu", "bi", "bu", "d1", "d2", "d3", "f", "db",
    "dt", "dtm", "dtm3", "dtm6", "ts", "ts1", "ts6", "tm", "tm2", "tm6", "y", "c", "vc", "tx",
    "l1", "vb", "bn", "bl", "mb", "e", "st", "bt1", "bt64", "js", "g", "__end",
];

fn row(values: Vec<Value>) -> Map<String, Value> {
    COLUMNS
        .iter()
        .take(41)
        .map(|c| c.to_string())
        .zip(values)
        .collect()
}

fn max_row() -> Map<String, Value> {
    let point = "AAAAAAEBAAAAAAAAAAAA8D8AAAAAAAAAQA=="; // SRID 0 + WKB POINT(1 2)
    row(vec![
        json!(1),
        json!(127),
        json!(255),
        json!(32767),
        json!(65535),
        json!(8388607),
        json!(16777215),
        json!(2147483647),
        json!(4294967295u64),
        json!(i64::MAX),
        json!(u64::MAX),
        json!("12345678.90"),
        json!("-12345678901234567890123456789012345.123456789012345678901234567890"),
        json!("99999"),
        json!(1.5),
        json!(1.0000000000000002),
        json!("2024-01-31"),
        json!("2024-01-31T12:00:00"),
        json!("2024-01-31T12:00:00.123"),
        json!("9999-12-31T23:59:59.999999"),
        json!("2024-01-31T12:00:00Z"),
        json!("2024-01-31T12:00:00.5Z"),
        json!("2038-01-19T03:14:07.999999Z"),
        json!("838:59:59"),
        json!("-01:02:03.45"),
        json!("-838:59:59.000000"),
        json!(2155),
        json!("héllo😀"),
        json!("x".repeat(300)),
        json!("text 😀"),
        json!("café€"),
        json!("AAH/"),
        json!("AQIAAA=="),
        json!("AP8="),
        json!("bWVkaXVt"),
        json!("b"),
        json!(["x", "z"]),
        json!(1),
        json!(u64::MAX),
        json!("{\"k\":[1,2]}"),
        json!(point),
    ])
}

fn min_row() -> Map<String, Value> {
    row(vec![
        json!(2),
        json!(-128),
        json!(0),
        json!(-32768),
        json!(0),
        json!(-8388608),
        json!(0),
        json!(-2147483648i64),
        json!(0),
        json!(i64::MIN),
        json!(0),
        json!("-0.01"),
        json!("0.000000000000000000000000000000"),
        json!("-99999"),
        json!(-0.25),
        json!(-1e-300),
        json!("1000-01-01"),
        json!("1000-01-01T00:00:00"),
        json!("1000-01-01T00:00:00.000"),
        json!("1000-01-01T00:00:00.000000"),
        json!("1970-01-01T00:00:01Z"),
        json!("1970-01-01T00:00:01.0Z"),
        json!("1970-01-01T00:00:01.000000Z"),
        json!("-838:59:59"),
        json!("00:00:00.00"),
        json!("00:00:00.000001"),
        json!(1901),
        json!(""),
        json!(""),
        json!(""),
        json!(""),
        json!(""),
        json!("AAAAAA=="),
        json!(""),
        json!(""),
        json!("a"),
        json!([]),
        json!(0),
        json!(0),
        json!("[]"),
        json!("AAAAAAEBAAAAAAAAAAAAAAAAAAAAAAAAAA=="),
    ])
}

fn null_row() -> Map<String, Value> {
    let mut values = vec![json!(3)];
    values.extend(std::iter::repeat_n(Value::Null, 40));
    row(values)
}

fn zero_row() -> Map<String, Value> {
    let mut r = null_row();
    r.insert("id".into(), json!(4));
    r.insert("dt".into(), Value::Null); // 0000-00-00 is null
    r.insert("dtm".into(), Value::Null);
    r.insert("y".into(), json!(0));
    r
}

pub const INSERTS: &str = "
SET SESSION time_zone = '+05:00', SESSION sql_mode = '';
INSERT INTO types VALUES (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
  9223372036854775807, 18446744073709551615, 12345678.90,
  -12345678901234567890123456789012345.123456789012345678901234567890, 99999, 1.5, 1.0000000000000002,
  '2024-01-31', '2024-01-31 12:00:00', '2024-01-31 12:00:00.123', '9999-12-31 23:59:59.999999',
  '2024-01-31 17:00:00', '2024-01-31 17:00:00.5', '2038-01-19 08:14:07.999999',
  '838:59:59', '-01:02:03.45', '-838:59:59', 2155,
  'héllo😀', REPEAT('x', 300), 'text 😀', CONVERT(_utf8mb4'café€' USING latin1),
  0x0001FF, 0x0102, 0x00FF, 'medium', 'b', 'x,z', b'1', 0xFFFFFFFFFFFFFFFF,
  '{\"k\":[1,2]}', ST_GeomFromText('POINT(1 2)'));
INSERT INTO types VALUES (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
  -0.01, 0, -99999, -0.25, -1e-300, '1000-01-01', '1000-01-01 00:00:00', '1000-01-01 00:00:00.000',
  '1000-01-01 00:00:00.000000', '1970-01-01 05:00:01', '1970-01-01 05:00:01.0', '1970-01-01 05:00:01.000000',
  '-838:59:59', '00:00:00.00', '00:00:00.000001', 1901, '', '', '', '', '', '', '', '',
  'a', '', b'0', 0, '[]', ST_GeomFromText('POINT(0 0)'));
INSERT INTO types (id) VALUES (3);
INSERT INTO types (id, dt, dtm, y) VALUES (4, '0000-00-00', '0000-00-00 00:00:00', 0);
UPDATE types SET vc = 'updated', e = 'c' WHERE id = 1;
DELETE FROM types WHERE id = 2;
INSERT INTO geometry_first VALUES (1, ST_GeomFromText('POINT(1 2)'), CONVERT(_utf8mb4'café' USING latin1), 0x01, '😀');
";

/// MariaDB counts GEOMETRY among the character columns of the charset metadata: text and binary
/// columns after it must still get their own charsets.
pub const GEOMETRY_FIRST: &str = "CREATE TABLE geometry_first (id INT PRIMARY KEY, g GEOMETRY,
  t VARCHAR(10) CHARACTER SET latin1, b VARBINARY(4), u TEXT CHARACTER SET utf8mb4)";

async fn check_type_matrix(metadata: RowMetadata) {
    let server = MariaDb::start(MariaDbOptions {
        row_metadata: metadata,
        ..Default::default()
    });
    let db = server.fresh_database("types").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`; {TABLE}"))
        .await
        .unwrap();
    conn.query_drop(GEOMETRY_FIRST).await.unwrap();
    let dir = TestDir::new("types");
    let config = config_from_now(&server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    conn.query_drop(format!("USE `{db}`; {INSERTS}"))
        .await
        .unwrap();
    let mut events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 7));
    let geometry_first = events.pop().unwrap();
    // Names come from the table map with FULL metadata, from the schema history otherwise.
    let names = ["g", "t", "b", "u"];
    let after = &geometry_first["after"];
    assert_eq!(
        after[names[0]],
        json!("AAAAAAEBAAAAAAAAAAAA8D8AAAAAAAAAQA==")
    );
    assert_eq!(
        (&after[names[1]], &after[names[2]], &after[names[3]]),
        (&json!("café"), &json!("AQ=="), &json!("😀"))
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    let shape = Value::Object;
    let mut updated = max_row();
    updated.insert("vc".into(), json!("updated"));
    updated.insert("e".into(), json!("c"));
    let expected = [
        ("c", Value::Null, shape(max_row())),
        ("c", Value::Null, shape(min_row())),
        ("c", Value::Null, shape(null_row())),
        ("c", Value::Null, shape(zero_row())),
        ("u", shape(max_row()), shape(updated)),
        ("d", shape(min_row()), Value::Null),
    ];
    assert_eq!(events.len(), expected.len());
    for (event, (op, before, after)) in events.iter().zip(expected) {
        assert_eq!(event["op"], op);
        for (image, expected) in [(&event["before"], &before), (&event["after"], &after)] {
            if let (Value::Object(got), Value::Object(want)) = (image, expected) {
                for (column, value) in want {
                    assert_eq!(
                        &got[column], value,
                        "column {column} of {op} event ({metadata:?})"
                    );
                }
                assert_eq!(got.len(), want.len());
            } else {
                assert_eq!(image, expected);
            }
        }
    }
    assert_eq!(events[4]["key"], json!({"id": 1}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_with_full_row_metadata() {
    check_type_matrix(RowMetadata::Full).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_with_minimal_row_metadata() {
    check_type_matrix(RowMetadata::Minimal).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_without_row_metadata() {
    check_type_matrix(RowMetadata::NoLog).await;
}
