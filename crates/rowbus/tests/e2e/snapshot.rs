//! Snapshots against a real MariaDB: a 200,000-row table snapshotted while random inserts, updates
//! and deletes go on, with rowbus killed mid-snapshot and restarted (it resumes after the last
//! delivered chunk, and the target still ends equal to the source); chunks read ahead two at once
//! while sparse updates go on, the target again equal to the source; snapshot values equal to the
//! binlog's for every column type; `rowbus snapshot` on a running pipeline, with `--where`, a
//! table paged by a unique key and a table without key; an integer key read in ranges across a
//! gap; a first run killed before any periodic checkpoint, resumed where it started; and a purged
//! checkpoint, refused by default and answered with a snapshot by `on_purged = "snapshot"`.

use crate::support::*;
use crate::type_matrix::{GEOMETRY_FIRST, INSERTS, TABLE};
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, MariaDbOptions, Rng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const ROWS: u64 = 200_000;

/// Applies events in order to a model of each table, keyed by `id`.
fn apply(events: &[Value]) -> BTreeMap<(String, i64), Value> {
    let mut model = BTreeMap::new();
    for e in events {
        let table = e["table"].as_str().unwrap().to_string();
        match e["op"].as_str().unwrap() {
            "d" => {
                model.remove(&(table, e["before"]["id"].as_i64().unwrap()));
            }
            "u" => {
                model.remove(&(table.clone(), e["before"]["id"].as_i64().unwrap()));
                model.insert(
                    (table, e["after"]["id"].as_i64().unwrap()),
                    e["after"].clone(),
                );
            }
            _ => {
                model.insert(
                    (table, e["after"]["id"].as_i64().unwrap()),
                    e["after"].clone(),
                );
            }
        }
    }
    model
}

/// The events applied in order give `db.big` as the server has it now, row for row.
async fn assert_target_equals_source(conn: &mut mysql_async::Conn, db: &str, events: &[Value]) {
    let model = apply(events);
    let rows: Vec<(i64, i64, String, String)> = conn
        .query(format!(
            "SELECT id, n, s, CAST(d AS CHAR) FROM `{db}`.big ORDER BY id"
        ))
        .await
        .unwrap();
    let expected: BTreeMap<(String, i64), Value> = rows
        .into_iter()
        .map(|(id, n, s, d)| {
            (
                ("big".to_string(), id),
                json!({"id": id, "n": n, "s": s, "d": d}),
            )
        })
        .collect();
    assert_eq!(model.len(), expected.len(), "row count of the target");
    for (key, row) in &expected {
        assert_eq!(model.get(key), Some(row), "row {key:?}");
    }
}

/// Creates `db.big` with `rows` rows.
async fn create_big(conn: &mut mysql_async::Conn, db: &str, rows: u64) {
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.big (id INT PRIMARY KEY, n BIGINT NOT NULL, s VARCHAR(40) NOT NULL, \
         d DECIMAL(12,3) NOT NULL); \
         INSERT INTO `{db}`.big SELECT seq, seq * 7, CONCAT('row ', seq), seq / 8 FROM `{db}`.seq_1_to_{rows}"
    ))
    .await
    .unwrap();
}

/// A fresh database holding `big` with `rows` rows, a connection to it, and the config of a
/// snapshot of it in chunks of `chunk_rows` rows.
async fn big_snapshot(
    server: &MariaDb,
    name: &str,
    rows: u64,
    chunk_rows: usize,
) -> (String, mysql_async::Conn, TestDir, std::path::PathBuf) {
    let db = server.fresh_database(name).await;
    let mut conn = server.conn().await;
    create_big(&mut conn, &db, rows).await;
    let dir = TestDir::new(name);
    let extra = format!("snapshot = \"initial\"\nsnapshot_chunk_rows = {chunk_rows}");
    let config = config_from_now(server, &dir, &db, &extra).await;
    (db, conn, dir, config)
}

/// Waits until rowbus has delivered the whole binlog, then stops it.
async fn deliver_everything_and_stop(server: &MariaDb, dir: &TestDir, rowbus: Rowbus) {
    let end = at(&binlog_end(server).await);
    tokio::task::block_in_place(|| {
        rowbus.wait_until("rowbus to deliver everything", || {
            saved(dir).filter(|(p, _)| *p >= end).map(|_| ())
        });
        rowbus.stop_cleanly();
    });
}

/// Random single-row changes in small transactions until `stop` is set.
async fn workload(server: &MariaDb, db: String, seed: u64, stop: Arc<AtomicBool>) -> usize {
    let mut conn = server.conn().await;
    let mut rng = Rng::new(seed);
    let mut transactions = 0;
    while !stop.load(Ordering::SeqCst) {
        let mut sql = String::from("BEGIN;");
        for _ in 0..1 + rng.below(4) {
            let id = 1 + rng.below(ROWS + 20_000);
            sql.push_str(&match rng.below(3) {
                0 => format!(
                    "INSERT INTO `{db}`.big VALUES ({id}, {}, 'ins {id}', {}.5) \
                     ON DUPLICATE KEY UPDATE n = n + 1, s = 'dup {id}';",
                    rng.below(1000),
                    rng.below(1000)
                ),
                1 => format!("UPDATE `{db}`.big SET n = n - 3, d = d + 1.25 WHERE id = {id};"),
                _ => format!("DELETE FROM `{db}`.big WHERE id = {id};"),
            });
        }
        sql.push_str("COMMIT");
        conn.query_drop(sql).await.unwrap();
        transactions += 1;
    }
    transactions
}

/// The checkpoint's position, as `(file number, pos)`, and its snapshot progress.
fn saved(dir: &TestDir) -> Option<((u64, u64), Value)> {
    let c = checkpoint(dir)?;
    let p = &c["position"];
    let file = p["file"].as_str()?.rsplit_once('.')?.1.parse().ok()?;
    Some(((file, p["pos"].as_u64()?), p["snapshot"].clone()))
}

/// Waits until the saved checkpoint says the snapshot is done.
fn wait_for_snapshot_done(rowbus: &Rowbus, dir: &TestDir) {
    rowbus.wait_until("the snapshot to finish", || {
        saved(dir).filter(|(_, s)| s.is_null()).map(|_| ())
    });
}

fn at(text: &str) -> (u64, u64) {
    let (file, pos) = text.rsplit_once(':').unwrap();
    (
        file.rsplit_once('.').unwrap().1.parse().unwrap(),
        pos.parse().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_under_writes_resumes_after_a_kill_and_ends_equal() {
    let server = MariaDb::shared();
    let (db, mut conn, dir, config) = big_snapshot(server, "snapbig", ROWS, 2000).await;
    let stop = Arc::new(AtomicBool::new(false));
    let seed = Rng::seed_from_env("ROWBUS_SNAPSHOT_SEED");
    eprintln!("snapshot workload seed {seed}");
    let writer = tokio::spawn(workload(server, db.clone(), seed, stop.clone()));

    // Kill rowbus once the checkpoint holds a snapshot well under way.
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        rowbus.wait_until("the snapshot to pass 20,000 rows", || {
            let (_, snapshot) = saved(&dir)?;
            (snapshot["tables"][0]["rows"].as_u64()? >= 20_000).then_some(())
        })
    });
    rowbus.kill();
    let out = dir.path("out.jsonl");
    let delivered_before_kill = count_lines(&out);
    let (_, progress) = saved(&dir).unwrap();
    let resume_after = progress["tables"][0]["after"][0]["int"].as_i64().unwrap();
    assert!(
        resume_after < ROWS as i64,
        "killed after the snapshot: {progress}"
    );

    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| wait_for_snapshot_done(&rowbus, &dir));
    stop.store(true, Ordering::SeqCst);
    let transactions = writer.await.unwrap();
    deliver_everything_and_stop(server, &dir, rowbus).await;

    let events = read_events(&out);
    let reads: Vec<&Value> = events.iter().filter(|e| e["op"] == "r").collect();
    assert!(reads.iter().all(|e| e["source"]["snapshot"] == true));
    // The restart resumed after the last delivered chunk, not from the first row.
    let resumed: Vec<i64> = events[delivered_before_kill..]
        .iter()
        .filter(|e| e["op"] == "r")
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect();
    assert!(!resumed.is_empty());
    assert!(
        resumed.iter().all(|&id| id > resume_after),
        "the restarted snapshot read rows at or before {resume_after}"
    );
    assert!(
        transactions > 100,
        "the workload ran {transactions} transactions"
    );

    assert_target_equals_source(&mut conn, &db, &events).await;
}

/// Updates of a few random rows a millisecond apart, until `stop` is set: sparse enough that
/// chunks often go out at once and the next two are read ahead while the updates go on.
async fn paced_updates(server: &MariaDb, db: String, rows: u64, seed: u64, stop: Arc<AtomicBool>) {
    let mut conn = server.conn().await;
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::SeqCst) {
        let ids: Vec<String> = (0..5).map(|_| (1 + rng.below(rows)).to_string()).collect();
        conn.query_drop(format!(
            "UPDATE `{db}`.big SET n = n + 1, s = CONCAT('upd ', id) WHERE id IN ({})",
            ids.join(", ")
        ))
        .await
        .unwrap();
        // Pacing the load, not waiting for anything.
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_read_ahead_two_at_once_under_sparse_updates_end_equal() {
    const ROWS: u64 = 30_000;
    let server = MariaDb::shared();
    let (db, mut conn, dir, config) = big_snapshot(server, "snapahead", ROWS, 200).await;
    let stop = Arc::new(AtomicBool::new(false));
    let seed = Rng::seed_from_env("ROWBUS_SNAPSHOT_SEED");
    eprintln!("paced updates seed {seed}");
    let writer = tokio::spawn(paced_updates(server, db.clone(), ROWS, seed, stop.clone()));
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| wait_for_snapshot_done(&rowbus, &dir));
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    deliver_everything_and_stop(server, &dir, rowbus).await;
    let events = read_events(&dir.path("out.jsonl"));
    assert_target_equals_source(&mut conn, &db, &events).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_run_killed_before_any_periodic_checkpoint_resumes_where_it_started() {
    let server = MariaDb::shared();
    let db = server.fresh_database("snapfirst").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v INT)"))
        .await
        .unwrap();
    let dir = TestDir::new("snapshot-first");
    let config = config_from_now(server, &dir, &db, "snapshot = \"initial\"").await;
    // No periodic checkpoint during the test.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("\"200ms\"", "\"1h\"")).unwrap();
    let out = dir.path("out.jsonl");

    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!("INSERT INTO `{db}`.t VALUES (1, 1)"))
        .await
        .unwrap();
    tokio::task::block_in_place(|| wait_for_events(&out, 1));
    // Where it started is saved before the first event went out.
    let (started_at, _) = saved(&dir).expect("the first checkpoint");
    rowbus.kill();

    // Changes while it is down: the restart must deliver the delete, which its snapshot cannot.
    conn.query_drop(format!(
        "DELETE FROM `{db}`.t WHERE id = 1; INSERT INTO `{db}`.t VALUES (2, 2)"
    ))
    .await
    .unwrap();
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        // Row 2 comes after the delete, whether by the stream or the snapshot.
        rowbus.wait_until("the delete of row 1 and row 2", || {
            let events = read_events(&out);
            let deleted = events.iter().any(|e| e["op"] == "d");
            (deleted && apply(&events).contains_key(&("t".to_string(), 2))).then_some(())
        });
        rowbus.stop_cleanly();
    });
    let events = read_events(&out);
    let model = apply(&events);
    let ids: Vec<i64> = model.keys().map(|(_, id)| *id).collect();
    assert_eq!(ids, vec![2], "{events:?}");
    let (stopped_at, _) = saved(&dir).unwrap();
    assert!(stopped_at > started_at);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_values_equal_the_binlogs_for_every_type() {
    let server = MariaDb::shared();
    let db = server.fresh_database("snaptypes").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("USE `{db}`; {TABLE}; {GEOMETRY_FIRST}"))
        .await
        .unwrap();
    // The binlog's view: the type matrix's changes, applied to a model.
    let streamed = TestDir::new("snapshot-types-stream");
    let config = config_from_now(server, &streamed, &db, "").await;
    let rowbus = Rowbus::start(&config);
    conn.query_drop(format!("USE `{db}`; {INSERTS}"))
        .await
        .unwrap();
    let events = tokio::task::block_in_place(|| wait_for_events(&streamed.path("out.jsonl"), 7));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let from_binlog = apply(&events);

    // The snapshot's view of the same rows.
    let snapped = TestDir::new("snapshot-types-read");
    let config = config_from_now(server, &snapped, &db, "snapshot = \"initial\"").await;
    let rowbus = Rowbus::start(&config);
    let reads = tokio::task::block_in_place(|| {
        wait_for_events(&snapped.path("out.jsonl"), from_binlog.len())
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert!(reads.iter().all(|e| e["op"] == "r"));
    assert_eq!(reads[0]["key"], json!({"id": 1}));
    let from_snapshot = apply(&reads);
    assert_eq!(from_snapshot.len(), from_binlog.len());
    for (key, row) in &from_binlog {
        let read = &from_snapshot[key];
        for (column, value) in row.as_object().unwrap() {
            assert_eq!(&read[column], value, "column {column} of {key:?}");
        }
    }
}

/// The sizes of the snapshot's chunks, in order: a chunk's rows number their `source.row` from 0.
fn chunk_sizes(reads: &[Value]) -> Vec<usize> {
    let mut sizes: Vec<usize> = Vec::new();
    for event in reads {
        match (event["source"]["row"].as_u64(), sizes.last_mut()) {
            (Some(0), _) | (_, None) => sizes.push(1),
            (_, Some(last)) => *last += 1,
        }
    }
    sizes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_integer_key_is_read_in_ranges_across_gaps_each_row_once_in_order() {
    let server = MariaDb::shared();
    let db = server.fresh_database("snapranges").await;
    let mut conn = server.conn().await;
    // 3,000 dense keys, a gap of about 97,000, then 1,000 dense keys again.
    conn.query_drop(format!(
        "USE `{db}`; CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, v INT); \
         INSERT INTO t SELECT seq, seq FROM seq_1_to_3000; \
         INSERT INTO t SELECT seq, seq FROM seq_100001_to_101000"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("snapshot-ranges");
    let config = config_from_now(
        server,
        &dir,
        &db,
        "snapshot = \"initial\"\nsnapshot_chunk_rows = 500",
    )
    .await;
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        wait_for_events(&dir.path("out.jsonl"), 4_000);
        wait_for_snapshot_done(&rowbus, &dir);
        assert!(rowbus
            .log()
            .contains("reading in key ranges, two chunks at once"));
        rowbus.stop_cleanly();
    });
    let events = read_events(&dir.path("out.jsonl"));
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e["after"]["id"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (1..=3_000).chain(100_001..=101_000).collect();
    assert_eq!(ids, expected);
    // The first chunk shows the density; the ranges after it aim at four fifths of the limit.
    assert_eq!(
        chunk_sizes(&events)[..7],
        [500, 400, 400, 400, 400, 400, 400]
    );
    assert!(chunk_sizes(&events).iter().all(|&n| n <= 500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rowbus_snapshot_reads_requested_tables_while_running() {
    let server = MariaDb::shared();
    let db = server.fresh_database("snapreq").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "USE `{db}`; \
         CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10)); \
         CREATE TABLE u (id INT NOT NULL, code VARCHAR(8) NOT NULL, h INT INVISIBLE DEFAULT 7, \
                         UNIQUE KEY (code)); \
         CREATE TABLE k (id INT, v VARCHAR(10)); \
         INSERT INTO t SELECT seq, CONCAT('t', seq) FROM seq_1_to_10; \
         INSERT INTO u SELECT seq, CONCAT('c', 100 - seq) FROM seq_1_to_7; \
         INSERT INTO k SELECT seq, CONCAT('k', seq) FROM seq_1_to_4"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("snapshot-request");
    let config = config_from_now(server, &dir, &db, "snapshot_chunk_rows = 3").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();

    let request = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rowbus"))
            .args(["snapshot", "-c"])
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let refused = request(&["--table", "other.t"]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("`other.t` is not included by sources.src"),
        "{message}"
    );

    let t = format!("{db}.t");
    let done = request(&["--table", &t, "--where", "id > 5"]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 5));
    let ids: Vec<i64> = events
        .iter()
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![6, 7, 8, 9, 10]);
    assert!(events.iter().all(|e| e["op"] == "r" && e["table"] == "t"));
    assert_eq!(events[0]["after"], json!({"id": 6, "v": "t6"}));

    // A wrong condition ends that request only.
    let wrong = request(&["--table", &t, "--where", "no_such_column > 1"]);
    assert!(wrong.status.success());
    rowbus.wait_until("the wrong request to be dropped", || {
        rowbus
            .log()
            .contains("this snapshot request is dropped")
            .then_some(())
    });
    let (u, k) = (format!("{db}.u"), format!("{db}.k"));
    assert!(request(&["--table", &u, "--table", &k]).status.success());
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 5 + 7 + 4));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    // `u` is paged by its unique key, in key order; `k` has no key and is read in one pass.
    let codes: Vec<&str> = events[5..12]
        .iter()
        .map(|e| e["after"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec!["c93", "c94", "c95", "c96", "c97", "c98", "c99"]);
    // Invisible columns are read too, as the binlog has them.
    assert_eq!(events[5]["after"]["h"], 7);
    let keyless: Vec<i64> = events[12..]
        .iter()
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(keyless, vec![1, 2, 3, 4]);
    assert_eq!(events[12]["key"], json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purged_checkpoint_stops_or_is_rebuilt_by_a_snapshot() {
    let server = MariaDb::start(MariaDbOptions::default());
    let mut conn = server.conn().await;
    let db = "purged";
    conn.query_drop(format!(
        "CREATE DATABASE {db}; CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10))"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("snapshot-purged");
    let config = config_from_now(&server, &dir, db, "").await;
    let rowbus = Rowbus::start(&config);
    conn.query_drop(format!("INSERT INTO {db}.t VALUES (1, 'a')"))
        .await
        .unwrap();
    tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 1));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let saved_file = checkpoint(&dir).unwrap()["position"]["file"]
        .as_str()
        .unwrap()
        .to_string();

    // The server moves on and purges the checkpoint's binlog.
    conn.query_drop(format!(
        "INSERT INTO {db}.t VALUES (2, 'b'); FLUSH BINARY LOGS; UPDATE {db}.t SET v = 'z' WHERE id = 1"
    ))
    .await
    .unwrap();
    let (newest, _) = binlog_end(&server)
        .await
        .rsplit_once(':')
        .map(|(f, p)| (f.to_string(), p.to_string()))
        .unwrap();
    // MariaDB keeps a binlog until the engine has made its transactions durable: purge until it
    // is gone.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        conn.query_drop(format!("PURGE BINARY LOGS TO '{newest}'"))
            .await
            .unwrap();
        let logs: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.unwrap();
        if logs[0].get::<String, _>(0).unwrap() == newest {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server kept {saved_file}"
        );
        conn.query_drop("FLUSH ENGINE LOGS").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let mut rowbus = Rowbus::start(&config);
    assert!(!rowbus.wait().success());
    let log = rowbus.log();
    assert!(
        log.contains(&format!(
            "the binlog file {saved_file} to resume from is no longer on"
        )) && log.contains(&format!("the oldest it has is {newest}"))
            && log.contains("on_purged = \"snapshot\""),
        "{log}"
    );

    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("heartbeat = ", "on_purged = \"snapshot\"\nheartbeat = "),
    )
    .unwrap();
    let rowbus = Rowbus::start(&config);
    let events = tokio::task::block_in_place(|| wait_for_events(&dir.path("out.jsonl"), 3));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let reads: Vec<&Value> = events[1..].iter().collect();
    assert_eq!(reads.len(), 2);
    assert!(reads.iter().all(|e| e["op"] == "r"));
    assert_eq!(reads[0]["after"], json!({"id": 1, "v": "z"}));
    assert_eq!(reads[1]["after"], json!({"id": 2, "v": "b"}));
}
