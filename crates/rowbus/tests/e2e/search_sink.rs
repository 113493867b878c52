//! The search sink against a real OpenSearch API (osmem-server): the random workload replicated
//! into an index with rowbus killed and restarted, each document equal to its source row; older
//! and repeated writes never replacing a newer document; a document the server rejects in the
//! failure log while the rest flows; a server that is down at first, then up, gets every change.

use crate::database_sinks::{add_sink, replicate_with_kills, source_rows};
use crate::support::*;
use base64::Engine;
use mysql_async::prelude::Queryable;
use rowbus_core::sink::Sink;
use rowbus_core::{fixture, ChangeEvent, Op, Row, Value as Cell};
use rowbus_sinks::search::config::SearchSinkConfig;
use rowbus_sinks::search::SearchSink;
use rowbus_testkit::{MariaDb, Osmem, Rng};
use serde_json::Value;
use std::sync::Arc;

const SOURCE_TABLE: &str = "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(20), amount DECIMAL(10,2), \
    at DATETIME(3), big BIGINT UNSIGNED, raw VARBINARY(8), doc JSON, kind ENUM('a','b'), n INT DEFAULT 0)";

fn get(url: &str) -> Value {
    let text = tokio::task::block_in_place(|| ureq::get(url).call().unwrap().into_string());
    serde_json::from_str(&text.unwrap()).unwrap()
}

/// Every document of `index` by id (the index refreshed first, as a reader would need).
pub(crate) fn documents(osmem: &Osmem, index: &str) -> Vec<(String, Value)> {
    tokio::task::block_in_place(|| {
        let _ = ureq::post(&format!("{}/{index}/_refresh", osmem.url)).call();
    });
    let found = tokio::task::block_in_place(|| {
        ureq::get(&format!("{}/{index}/_search?size=10000", osmem.url))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
    });
    // No index yet: no documents.
    let Some(found) = found else {
        return Vec::new();
    };
    let found: Value = serde_json::from_str(&found).unwrap();
    let mut docs: Vec<(String, Value)> = found["hits"]["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["_id"].as_str().unwrap().to_string(), h["_source"].clone()))
        .collect();
    docs.sort_by_key(|(id, _)| id.parse::<i64>().unwrap_or(i64::MAX));
    docs
}

/// A document as `source_rows` writes its row: the same fields, the same text.
fn as_source_row(doc: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let at = text(&doc["at"]).replace('T', " ");
    let (whole, fraction) = at.split_once('.').unwrap_or((&at, ""));
    let raw = base64::engine::general_purpose::STANDARD
        .decode(doc["raw"].as_str().unwrap())
        .unwrap();
    let hex: String = raw.iter().map(|b| format!("{b:02X}")).collect();
    // MariaDB's JSON is a LONGTEXT to its binlog: the document's text, as a string.
    let json: Value = serde_json::from_str(doc["doc"].as_str().unwrap()).unwrap();
    [
        text(&doc["id"]),
        text(&doc["name"]),
        text(&doc["amount"]),
        format!("{whole}.{fraction:0<6}"),
        text(&doc["big"]),
        hex,
        text(&json["k"]),
        text(&doc["kind"]),
        text(&doc["n"]),
    ]
    .join("|")
}

fn search_sink(osmem: &Osmem, extra: &str) -> String {
    format!(
        "[sinks.search]\ntype = \"opensearch\"\nurl = \"{}\"\nworkers = 3\n{extra}",
        osmem.url
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_random_workload_into_an_index_equals_the_source_after_kills() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("to_search").await;
    server
        .conn()
        .await
        .query_drop(format!("USE `{db}`; {SOURCE_TABLE}"))
        .await
        .unwrap();
    let dir = TestDir::new("to-search");
    let config = config_from_now(server, &dir, &db, "").await;
    // BIGINT UNSIGNED up to 2^64-1: a dynamic mapping would make `big` a long.
    let settings = dir.path("t.json");
    std::fs::write(
        &settings,
        r#"{"mappings":{"properties":{"big":{"type":"unsigned_long"}}}}"#,
    )
    .unwrap();
    let extra = format!(
        "batch_max_events = 7\nindex_settings = {{ \"{db}.t\" = \"{}\" }}",
        settings.display()
    );
    add_sink(&config, &search_sink(osmem, &extra));
    let index = format!("{db}.t").to_lowercase();
    let same = || async {
        let docs: Vec<String> = documents(osmem, &index)
            .iter()
            .map(|(_, doc)| as_source_row(doc))
            .collect();
        source_rows(server, &db).await == docs
    };
    replicate_with_kills(server, &db, &config, false, same).await;
    let rows = source_rows(server, &db).await;
    assert!(!rows.is_empty());
    let count = get(&format!("{}/{index}/_count", osmem.url));
    assert_eq!(count["count"], rows.len());
    // Each document's id is its primary key.
    for (id, doc) in documents(osmem, &index) {
        assert_eq!(id, doc["id"].to_string());
    }
}

fn change(op: Op, id: i64, v: &str, pos: u64, snapshot: bool) -> Arc<ChangeEvent> {
    let row = Row {
        columns: vec![Arc::from("id"), Arc::from("v")].into(),
        values: vec![Cell::Int(id), Cell::Text(v.into())],
    };
    let (before, after) = match op {
        Op::Delete => (Some(row), None),
        _ => (None, Some(row)),
    };
    let source = fixture::source("b.000003", pos, snapshot);
    Arc::new(fixture::change(
        op,
        ("versions", "t"),
        before,
        after,
        source,
    ))
}

async fn write(sink: &mut SearchSink, batch: Vec<Arc<ChangeEvent>>) {
    sink.write(&batch).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_and_repeated_writes_never_replace_a_newer_document() {
    let osmem = Osmem::start();
    let mut sink = SearchSink::new(SearchSinkConfig {
        url: osmem.url.clone(),
        ..Default::default()
    })
    .unwrap();
    // Newest first, then older and repeated writes of the same documents, as a retry after a
    // timeout or a replay from an older checkpoint would send them.
    write(
        &mut sink,
        vec![
            change(Op::Update, 1, "newest", 900, false),
            change(Op::Delete, 2, "", 900, false),
            change(Op::Insert, 3, "from the stream", 950, false),
        ],
    )
    .await;
    write(
        &mut sink,
        vec![
            change(Op::Insert, 1, "old", 100, false),
            change(Op::Update, 1, "older", 50, false),
            change(Op::Insert, 2, "before its delete", 300, false),
            // A snapshot read whose watermark is before the stream's change of row 3.
            change(Op::Read, 3, "snapshot", 940, true),
        ],
    )
    .await;
    write(&mut sink, vec![change(Op::Update, 1, "newest", 900, false)]).await;
    let docs = documents(&osmem, "versions.t");
    let docs: Vec<(String, String)> = docs
        .into_iter()
        .map(|(id, d)| (id, d["v"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        docs,
        vec![
            ("1".to_string(), "newest".to_string()),
            ("3".to_string(), "from the stream".to_string())
        ]
    );
    // A snapshot read after the change wins over it: its watermark is later.
    write(&mut sink, vec![change(Op::Read, 3, "snapshot", 960, true)]).await;
    let doc = get(&format!("{}/versions.t/_doc/3", osmem.url));
    assert_eq!(doc["_source"]["v"], "snapshot");
    assert_eq!(doc["_version"], (3u64 << 37) | (960 << 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_the_server_rejects_goes_to_the_failure_log_and_the_rest_flows() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("search_reject").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("search-reject");
    let settings = dir.path("t.json");
    std::fs::write(
        &settings,
        r#"{"mappings":{"properties":{"v":{"type":"integer"}}}}"#,
    )
    .unwrap();
    let config = config_from_now(server, &dir, &db, "").await;
    let extra = format!(
        "index_settings = {{ \"{db}.t\" = \"{}\" }}",
        settings.display()
    );
    add_sink(&config, &search_sink(osmem, &extra));
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, '10'), (2, 'not a number'), (3, '30')"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("INSERT INTO `{db}`.t VALUES (4, '40')"))
        .await
        .unwrap();
    let index = format!("{db}.t").to_lowercase();
    eventually(
        || async { documents(osmem, &index).len() == 3 },
        || async { rowbus.log() },
    )
    .await;
    let ids: Vec<String> = documents(osmem, &index)
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["1", "3", "4"]);
    eventually(
        || async { rowbus.log().contains("event sent to the failure log") },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(["failures", "list", "--sink", "search", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    let expected = format!("document {index}/2 (index): 400 mapper_parsing_exception");
    assert!(listed.contains(&expected), "{listed}");
    assert_eq!(
        listed.matches("mapper_parsing_exception").count(),
        1,
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_at_first_gets_every_change_once_it_is_up() {
    let server = MariaDb::shared();
    let db = server.fresh_database("search_down").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(20))"
    ))
    .await
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let dir = TestDir::new("search-down");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &format!("[sinks.search]\ntype = \"opensearch\"\nurl = \"{url}\""),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut rng = Rng::new(7);
    for id in 1..=20 {
        conn.query_drop(format!(
            "INSERT INTO `{db}`.t VALUES ({id}, 'v{}')",
            rng.below(1000)
        ))
        .await
        .unwrap();
    }
    let unreachable = format!("cannot reach {url}");
    eventually(
        || async { rowbus.log().contains(&unreachable) },
        || async { rowbus.log() },
    )
    .await;
    let osmem = Osmem::start_on(port);
    let index = format!("{db}.t").to_lowercase();
    eventually(
        || async { documents(&osmem, &index).len() == 20 },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

/// The indexes `name` resolves to (itself when a plain index), by `GET name/_alias`.
fn resolves_to(osmem: &Osmem, name: &str) -> Vec<String> {
    let reply = tokio::task::block_in_place(|| {
        ureq::get(&format!("{}/{name}/_alias", osmem.url))
            .call()
            .ok()
            .and_then(|r| r.into_string().ok())
    });
    let Some(reply) = reply else {
        return Vec::new();
    };
    let map: serde_json::Map<String, Value> = serde_json::from_str(&reply).unwrap();
    let mut indexes: Vec<String> = map.keys().cloned().collect();
    indexes.sort();
    indexes
}

/// (id, v) of each document, and of each source row, in id order.
fn pairs_of(docs: Vec<(String, Value)>) -> Vec<(i64, String)> {
    docs.into_iter()
        .map(|(_, d)| {
            (
                d["id"].as_i64().unwrap(),
                d["v"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn source_pairs(server: &MariaDb, db: &str) -> Vec<(i64, String)> {
    let mut conn = server.conn().await;
    conn.query(format!("SELECT id, v FROM `{db}`.t ORDER BY id"))
        .await
        .unwrap()
}

fn reindex(config: &std::path::Path, table: &str) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(["snapshot", "--reindex", "--table", table, "-c"])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_moves_the_alias_to_a_complete_current_index_while_writes_go_on() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("reindex").await;
    create_table_t(server, &db).await;
    let mut conn = server.conn().await;
    let dir = TestDir::new("reindex");
    let config = config_from_now(server, &dir, &db, "snapshot_chunk_rows = 40").await;
    add_sink(&config, &search_sink(osmem, ""));
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let writer = Writer::start(server, &db);
    let alias = format!("{db}.t").to_lowercase();
    eventually(
        || async { documents(osmem, &alias).len() >= 300 },
        || async { rowbus.log() },
    )
    .await;
    // The index is a plain one so far; the first rebuild replaces it by an alias.
    assert_eq!(resolves_to(osmem, &alias), vec![alias.clone()]);
    reindex(&config, &format!("{db}.t"));
    // Rows the snapshot has read, and has yet to read, change while it runs.
    for id in (1..=300).step_by(7) {
        conn.query_drop(format!(
            "UPDATE `{db}`.t SET v = 'changed' WHERE id = {id}; DELETE FROM `{db}`.t WHERE id = {}",
            id + 3
        ))
        .await
        .unwrap();
    }
    let moved = || async {
        let to = resolves_to(osmem, &alias);
        to.len() == 1 && to[0].starts_with(&format!("{alias}-r"))
    };
    eventually(moved, || async { rowbus.log() }).await;
    let first = resolves_to(osmem, &alias);
    // A second rebuild moves the alias again; the first rebuilt index stays, without it.
    reindex(&config, &format!("{db}.t"));
    let moved_again = || async {
        let to = resolves_to(osmem, &alias);
        to.len() == 1 && to != first
    };
    eventually(moved_again, || async { rowbus.log() }).await;
    writer.finish().await;
    let same = || async { source_pairs(server, &db).await == pairs_of(documents(osmem, &alias)) };
    eventually(same, || async { rowbus.log() }).await;
    assert!(documents(osmem, &first[0]).len() > 300);
    assert!(
        resolves_to(osmem, &first[0]) == first,
        "the old index is kept"
    );
    let rows = source_pairs(server, &db).await.len();
    let count = get(&format!("{}/{alias}/_count", osmem.url));
    assert_eq!(count["count"], rows);
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_is_refused_for_other_sinks_and_with_a_condition() {
    let server = MariaDb::shared();
    let db = server.fresh_database("reindex_refused").await;
    let dir = TestDir::new("reindex-refused");
    let config = config_from_now(server, &dir, &db, "").await;
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rowbus"))
            .args(["snapshot", "--reindex", "--table", &format!("{db}.t"), "-c"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    assert_eq!(
        run(&[]),
        (
            Some(2),
            "rowbus snapshot: no search sink (type = \"opensearch\") to reindex\n".to_string()
        )
    );
    assert_eq!(
        run(&["--sink", "out"]),
        (
            Some(2),
            "rowbus snapshot: sink `out` is not a search sink: a reindex rebuilds the indexes of type = \"opensearch\" sinks\n".to_string()
        )
    );
    assert_eq!(
        run(&["--where", "id > 5"]).1,
        "rowbus snapshot: a reindex rebuilds whole indexes: it takes no `where`\n"
    );
}

/// The rebuild indexes of `alias` that exist, by `GET alias-r*/_alias`.
fn rebuild_indexes(osmem: &Osmem, alias: &str) -> Vec<String> {
    resolves_to(osmem, &format!("{alias}-r*"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reindex_killed_midway_resumes_and_ends_complete() {
    let server = MariaDb::shared();
    let osmem = Osmem::shared();
    let db = server.fresh_database("reindex_kill").await;
    create_table_t(server, &db).await;
    let mut conn = server.conn().await;
    let dir = TestDir::new("reindex-kill");
    let config = config_from_now(server, &dir, &db, "snapshot_chunk_rows = 20").await;
    add_sink(&config, &search_sink(osmem, "reindex_delete_old = true"));
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t SELECT seq, CONCAT('v', seq) FROM `{db}`.seq_1_to_4000"
    ))
    .await
    .unwrap();
    let alias = format!("{db}.t").to_lowercase();
    eventually(
        || async { documents(osmem, &alias).len() == 4000 },
        || async { rowbus.log() },
    )
    .await;
    reindex(&config, &format!("{db}.t"));
    // Killed once the checkpoint holds the rebuild's progress (a kill before that loses the
    // request, as the README says), before the alias moves.
    eventually(
        || async {
            checkpoint(&dir).is_some_and(|c| !c["position"]["snapshot"].is_null())
                && rebuild_indexes(osmem, &alias).len() == 1
        },
        || async { rowbus.log() },
    )
    .await;
    rowbus.kill();
    let moved_before_kill = resolves_to(osmem, &alias) != [alias.clone()];
    println!("the alias had moved before the kill: {moved_before_kill}");
    conn.query_drop(format!(
        "UPDATE `{db}`.t SET v = 'after the kill' WHERE id % 10 = 0; DELETE FROM `{db}`.t WHERE id % 10 = 5"
    ))
    .await
    .unwrap();
    let rowbus = Rowbus::start(&config);
    let building = rebuild_indexes(osmem, &alias);
    eventually(
        || async { resolves_to(osmem, &alias) == building },
        || async { rowbus.log() },
    )
    .await;
    let same = || async { source_pairs(server, &db).await == pairs_of(documents(osmem, &alias)) };
    eventually(same, || async { rowbus.log() }).await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}
