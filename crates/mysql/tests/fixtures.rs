//! Every binlog file of the shared fixtures (MySQL 5.1 to 8.x and MariaDB, including events no
//! server here can produce) decodes to the expected events and values, or ends with a clear error
//! naming the file and offset; and no mutation of their bytes makes the decoder panic.

use rowbus_core::table_filter::TableFilter;
use rowbus_mysql::inspect::{inspect_file, inspect_reader, InspectOptions, InspectSummary, Line};
use rowbus_testkit::Rng;
use serde_json::{json, Value};
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/mysql-binlogs"
    ))
}

fn inspect_with(
    name: &str,
    options: &InspectOptions,
) -> (Result<InspectSummary, String>, Vec<Value>) {
    let mut lines = Vec::new();
    let result = inspect_file(&fixtures().join(name), options, &mut |l| {
        lines.push(match l {
            Line::Event(e) => e.clone(),
            Line::Change(c) => serde_json::to_value(c).unwrap(),
        })
    })
    .map_err(|e| e.to_string());
    (result, lines)
}

fn inspect(name: &str) -> (Result<InspectSummary, String>, Vec<Value>) {
    inspect_with(name, &InspectOptions::default())
}

/// The `after` images of the row changes among the lines.
fn afters(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.get("op").is_some())
        .map(|l| l["after"].clone())
        .collect()
}

#[test]
fn every_file_decodes_with_the_expected_counts() {
    let expected: &[(&str, u64, u64)] = &[
        ("binlog-invisible-columns.000001", 22, 3),
        ("binlog_56_gtid_reserved_word.000001", 20, 1),
        ("binlog_savepoint.000001", 12, 0),
        ("binlog_transaction.000001", 20, 0),
        ("bug11747887-bin.000003", 9, 0),
        ("bug16266.000001", 6, 0),
        ("bug27213339-bin.000001", 95, 0),
        ("bug32407.001", 7, 2),
        ("bug33029-slave-relay-bin.000001", 43, 0),
        ("bug40482-bin.000001", 3, 0),
        ("json-opaque.binlog", 25, 8),
        ("mariadb-bin.000001", 13, 2),
        ("master-bin.000001", 3, 0),
        ("minimal_row_metadata.000001", 8, 1),
        ("mysql_type_bit.000001", 11, 1),
        ("rpl_atomic_ddl_rollback_full.000001", 11, 0),
        ("rpl_atomic_ddl_rollback_table.000001", 7, 0),
        ("rpl_atomic_ddl_rollback_view.000001", 7, 0),
        ("rpl_cross_version_default_utf8mb4_collation.000001", 19, 0),
        ("rpl_unfiltered_hidden_gcol.000001", 15, 1),
        ("slave-relay-bin.000001", 6, 0),
        ("time_issue.000001", 8, 1),
        ("transaction_compression.000001", 9, 1),
        ("update-full-row.binlog", 10, 7),
        ("vector.binlog", 38, 10),
        ("ver_5_1-wl2325_r.001", 11, 0),
        ("ver_5_1-wl2325_s.001", 15, 0),
        ("ver_5_1_23.001", 24, 5),
        ("ver_trunk_row_v2.001", 40, 5),
        ("write-full-row.binlog", 9, 7),
        ("write-partial-row.binlog", 10, 7),
    ];
    for (name, events, rows) in expected {
        let (result, _) = inspect(name);
        let summary = result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((summary.events, summary.rows), (*events, *rows), "{name}");
    }
}

#[test]
fn truncated_and_corrupt_files_end_with_file_and_offset() {
    for (name, offset, cause) in [
        ("binlog_truncated_event.000001", 4, "truncated event header"),
        (
            "binlog_truncated_prev_gtid_event.000001",
            120,
            "truncated event header",
        ),
        ("corrupt-relay-bin.000624", 91204, "undecodable event"),
    ] {
        let (result, _) = inspect(name);
        let err = result.unwrap_err();
        assert!(
            err.contains(&format!("{name}: offset {offset}: {cause}")),
            "{err}"
        );
    }
}

#[test]
fn mysql_binary_json_with_opaque_values() {
    let (_, lines) = inspect("json-opaque.binlog");
    let docs: Vec<Value> = afters(&lines).iter().map(|a| a["a"].clone()).collect();
    assert_eq!(
        docs,
        vec![
            json!({"a": "base64:type15:VQ=="}),
            json!({"b": "2012-03-18"}),
            json!({"c": "2012-03-18 11:30:45"}),
            json!({"c": "87:31:46.654321"}),
            json!({"d": 123.456}),
            json!({"e": 9.0}),
            json!({"e": [0, 1, true, false]}),
            json!({"e": null}),
        ]
    );
}

#[test]
fn compressed_transaction_contents() {
    let (_, lines) = inspect("transaction_compression.000001");
    assert!(lines
        .iter()
        .any(|l| l["type"] == "TRANSACTION_PAYLOAD_EVENT"));
    let rows: Vec<&Value> = lines.iter().filter(|l| l.get("op").is_some()).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0]["db"].as_str(), rows[0]["table"].as_str()),
        (Some("test"), Some("tb1"))
    );
    assert_eq!(rows[0]["after"], json!({"@1": 1}));
}

#[test]
fn mariadb_gtids_and_values() {
    let (_, lines) = inspect("mariadb-bin.000001");
    let gtids: Vec<&str> = lines.iter().filter_map(|l| l["gtid"].as_str()).collect();
    assert_eq!(gtids, vec!["0-1-1", "0-1-2"]);
    let rows: Vec<&Value> = lines.iter().filter(|l| l.get("op").is_some()).collect();
    assert_eq!(rows[0]["source"]["gtid"], "0-1-1");
    assert_eq!(rows[1]["source"]["txn"], "0-1-2");
    assert_eq!(rows[0]["key"], json!({"id": 62}));
    assert_eq!(
        rows[0]["after"],
        json!({"id": 62, "topic": "foo", "event_type": "JSON", "event": "eyJmb28iOjF9", "created": "2022-04-20T22:18:04Z"})
    );
}

#[test]
fn mysql_gtid_sets_are_tracked_for_resuming() {
    // PREVIOUS_GTIDS plus every transaction's GTID: the set a restart would send.
    let (result, lines) = inspect("mysql_type_bit.000001");
    let last = result.unwrap().last_position.unwrap();
    let gtids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["source"]["gtid"].as_str())
        .collect();
    let set = last.gtid.expect("a GTID set");
    let (uuid, gno) = gtids.last().unwrap().split_once(':').unwrap();
    assert!(set.contains(uuid), "{set} has the source of {gno}");
    let covered = rowbus_mysql::mysql_gtid::GtidSet::parse(&set).unwrap();
    let mut with_last = covered.clone();
    with_last.add(uuid, gno.parse().unwrap());
    assert_eq!(
        with_last, covered,
        "{set} covers the last transaction {uuid}:{gno}"
    );
}

#[test]
fn anonymous_transactions_keep_gtid_sets_out_of_checkpoints() {
    // gtid_mode OFF: transactions carry ANONYMOUS_GTID events, so a PREVIOUS_GTIDS set at the
    // head of the file does not describe later positions.
    let (result, _) = inspect("json-opaque.binlog");
    assert_eq!(result.unwrap().last_position.unwrap().gtid, None);
}

#[test]
fn mysql_gtids_name_their_transaction() {
    let (_, lines) = inspect("mysql_type_bit.000001");
    let row = lines.iter().find(|l| l.get("op").is_some()).unwrap();
    let gtid = row["source"]["gtid"].as_str().unwrap();
    let (uuid, gno) = gtid.split_once(':').unwrap();
    assert_eq!(uuid.len(), 36, "{gtid}");
    assert!(gno.parse::<u64>().is_ok(), "{gtid}");
    assert_eq!(row["after"], json!({"a": 4, "b": "foo", "c": 32}));
}

#[test]
fn vectors_invisible_columns_times_and_partial_images() {
    let (_, lines) = inspect("vector.binlog");
    assert_eq!(
        afters(&lines)[0],
        json!({"id": 1, "vector_column": "zcyMP83MDEAzM1NA"})
    );
    // MySQL counts VECTOR among the charset columns: the TEXT after it is still text.
    assert_eq!(
        afters(&lines)[3],
        json!({"id": 2, "vector_column": "rkeBP65Hgb8=", "foo": "bar", "vector_column2": "AAAoQgAALEIAADBCAAA0Qg=="})
    );
    let (_, lines) = inspect("binlog-invisible-columns.000001");
    assert_eq!(
        afters(&lines)[0],
        json!({"f1": 1, "f2": 2, "f3": -3, "f4": "4", "f5": "BQ==", "f6": 6000000000u64})
    );
    let (_, lines) = inspect("time_issue.000001");
    assert_eq!(afters(&lines), vec![json!({"@1": "-507:48:27"})]);
    let (_, lines) = inspect("minimal_row_metadata.000001");
    assert_eq!(
        afters(&lines),
        vec![json!({"@1": 1, "@3": "a", "@5": 3230202323u64})],
        "positional names"
    );
    let (_, lines) = inspect("update-full-row.binlog");
    let update = lines.iter().find(|l| l["op"] == "u").unwrap();
    assert_eq!(update["before"], json!({"@1": 4, "@2": 4, "@3": 4}));
    assert_eq!(update["after"], json!({"@1": 4, "@2": 4, "@3": 40}));
    let (_, lines) = inspect("write-partial-row.binlog");
    assert_eq!(
        afters(&lines)[5],
        json!({"@1": 4, "@3": 40}),
        "only the columns the image has"
    );
}

#[test]
fn position_and_table_filters() {
    let all = inspect("vector.binlog").1;
    let options = InspectOptions {
        start: Some(1432),
        stop: Some(2884),
        ..Default::default()
    };
    let (result, lines) = inspect_with("vector.binlog", &options);
    result.unwrap();
    assert!(lines
        .iter()
        .filter_map(|l| l["pos"].as_u64())
        .all(|p| (1432..2884).contains(&p)));
    assert_eq!(afters(&lines).len(), 4);
    assert!(afters(&all).len() > 4);
    let only_foo = TableFilter::new(&["dtb.foo".to_string()], &[]).unwrap();
    let (_, lines) = inspect_with(
        "vector.binlog",
        &InspectOptions {
            tables: only_foo,
            ..Default::default()
        },
    );
    assert!(lines
        .iter()
        .filter(|l| l.get("op").is_some())
        .all(|l| l["table"] == "foo"));
    assert_eq!(afters(&lines).len(), 4);
}

#[test]
fn mutated_files_never_panic() {
    let seed = std::env::var("ROWBUS_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let rounds: usize = std::env::var("ROWBUS_FUZZ_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    println!("fuzz seed {seed}, {rounds} rounds per file");
    let mut rng = Rng::new(seed);
    let mut names: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names
        .iter()
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
    {
        let original = std::fs::read(path).unwrap();
        for round in 0..rounds {
            let mut bytes = original.clone();
            let flips = 1 + rng.next_u64() % 8;
            for _ in 0..flips {
                let at = 4 + (rng.next_u64() as usize) % (bytes.len().saturating_sub(4).max(1));
                if at < bytes.len() {
                    bytes[at] = rng.next_u64() as u8;
                }
            }
            if rng.next_u64().is_multiple_of(4) {
                bytes.truncate((rng.next_u64() as usize) % (bytes.len() + 1));
            }
            let len = bytes.len() as u64;
            // Checksums off, so that mutated events reach the decoder instead of failing the CRC.
            let options = InspectOptions {
                skip_checksums: true,
                ..Default::default()
            };
            let outcome = std::panic::catch_unwind(|| {
                inspect_reader(
                    "mutated",
                    "m.000001",
                    &bytes[..],
                    len,
                    &options,
                    &mut |_| {},
                )
            });
            assert!(
                outcome.is_ok(),
                "panic on {} round {round} (seed {seed})",
                path.display()
            );
        }
    }
}
