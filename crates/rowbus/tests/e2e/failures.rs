//! The failure log end to end: a sink that rejects particular rows permanently (the file sink's
//! `max_event_bytes`) logs them with their reason while the rest flows; later changes of the same
//! keys are parked behind them; `rowbus failures replay` after the fix delivers them in order; the
//! failure-rate guard stops the pipeline and the next start resumes without a gap.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn failures(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .arg("failures")
        .args(args)
        .arg("-c")
        .arg(config)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A fresh database with `t (id INT PRIMARY KEY, v TEXT)`, and a connection.
async fn database_with_t(server: &MariaDb, prefix: &str) -> (String, mysql_async::Conn) {
    let db = server.fresh_database(prefix).await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v TEXT)"
    ))
    .await
    .unwrap();
    (db, conn)
}

/// Runs each statement in `db`, one transaction each.
async fn run_in(conn: &mut mysql_async::Conn, db: &str, statements: &[String]) {
    for sql in statements {
        conn.query_drop(format!("USE `{db}`; {sql}")).await.unwrap();
    }
}

/// Waits for `delivered` events in `out` and `logged` changes sent to the failure log.
fn wait_for_delivered_and_logged(
    rowbus: &Rowbus,
    out: &std::path::Path,
    delivered: usize,
    logged: usize,
) {
    wait_for_events(out, delivered);
    wait_for(
        &format!("{logged} records in the failure log"),
        DEADLINE,
        || {
            let sent = rowbus
                .log()
                .matches("event sent to the failure log")
                .count();
            (sent >= logged).then_some(())
        },
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A config whose file sink refuses lines over `max` bytes, with extra sink settings.
async fn config_with_limit(
    server: &MariaDb,
    dir: &TestDir,
    db: &str,
    sink: &str,
) -> std::path::PathBuf {
    let config = config_from_now(server, dir, db, "").await;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&config)
        .unwrap();
    std::io::Write::write_all(
        &mut file,
        format!("max_event_bytes = 600\n{sink}\n").as_bytes(),
    )
    .unwrap();
    config
}

fn raise_limit(config: &std::path::Path) {
    let text = std::fs::read_to_string(config).unwrap();
    std::fs::write(
        config,
        text.replace("max_event_bytes = 600", "max_event_bytes = 100000"),
    )
    .unwrap();
}

/// (id, v) of each row event's after image, in order.
fn rows(events: &[Value]) -> Vec<(i64, String)> {
    events
        .iter()
        .map(|e| {
            let after = &e["after"];
            (
                after["id"].as_i64().unwrap(),
                after["v"].as_str().unwrap().chars().take(8).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_rows_are_logged_parked_and_replayed_in_order() {
    let server = MariaDb::shared();
    let (db, mut conn) = database_with_t(server, "failures").await;
    let dir = TestDir::new("failures");
    let config = config_with_limit(server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let big = "x".repeat(1000);
    let statements = [
        "INSERT INTO t VALUES (1, 'a')".to_string(),
        format!("INSERT INTO t VALUES (2, '{big}')"),
        "INSERT INTO t VALUES (3, 'c')".into(),
        "UPDATE t SET v = 'small' WHERE id = 2".into(),
        "UPDATE t SET v = 'a2' WHERE id = 1".into(),
        "UPDATE t SET v = 'small2' WHERE id = 2".into(),
    ];
    run_in(&mut conn, &db, &statements).await;
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_delivered_and_logged(&rowbus, &out, 3, 3));
    // The rest flowed; key 2's later changes were parked, not delivered around it.
    assert_eq!(
        rows(&read_events(&out)),
        [(1, "a".into()), (3, "c".into()), (1, "a2".into())]
    );
    // The log is rowbus's while it runs.
    let locked = failures(&["list"], &config);
    assert!(
        !locked.status.success() && text(&locked).contains("stop rowbus first"),
        "{}",
        text(&locked)
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    let list = text(&failures(&["list"], &config));
    let lines: Vec<&str> = list.lines().filter(|l| l.starts_with("out ")).collect();
    assert_eq!(lines.len(), 3, "{list}");
    assert!(
        lines[0].contains(" no ") && lines[0].contains("more than max_event_bytes = 600"),
        "{list}"
    );
    assert!(
        lines[1].contains(" yes ") && lines[2].contains(" yes "),
        "{list}"
    );
    let show = text(&failures(&["show", "1"], &config));
    assert!(
        show.contains("parked:    false") && show.contains(&big),
        "{show}"
    );
    // A replay before the fix changes nothing and keeps the order.
    let again = text(&failures(&["replay"], &config));
    assert!(again.contains("sink `out`: 0 delivered, 3 kept"), "{again}");
    let dry = text(&failures(&["replay", "--dry-run"], &config));
    assert!(dry.contains("3 would be sent"), "{dry}");

    raise_limit(&config);
    let replay = text(&failures(&["replay"], &config));
    assert!(
        replay.contains("sink `out`: 3 delivered, 0 kept"),
        "{replay}"
    );
    let events = read_events(&out);
    assert_eq!(
        rows(&events),
        [
            (1, "a".into()),
            (3, "c".into()),
            (1, "a2".into()),
            (2, "xxxxxxxx".into()),
            (2, "small".into()),
            (2, "small2".into())
        ]
    );
    // Applied in order, the output equals the table.
    let mut model = BTreeMap::new();
    for e in &events {
        model.insert(e["after"]["id"].as_i64().unwrap(), e["after"]["v"].clone());
    }
    assert_eq!(
        model,
        BTreeMap::from([(1, json!("a2")), (2, json!("small2")), (3, json!("c"))])
    );
    let list = text(&failures(&["list"], &config));
    assert!(list.contains("0 record(s)"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failure_rate_guard_stops_and_a_restart_leaves_no_gap() {
    let server = MariaDb::shared();
    let (db, mut conn) = database_with_t(server, "guard").await;
    let dir = TestDir::new("guard");
    let config = config_with_limit(server, &dir, &db, "max_failures = 2").await;
    let mut rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let big = "y".repeat(1000);
    conn.query_drop(format!(
        "USE `{db}`; INSERT INTO t VALUES (1, 'a'); INSERT INTO t VALUES (2, '{big}'), (3, '{big}'), (4, '{big}'); INSERT INTO t VALUES (5, 'e')"
    ))
    .await
    .unwrap();
    let status = tokio::task::block_in_place(|| rowbus.wait());
    assert!(!status.success());
    let log = rowbus.log();
    assert!(
        log.contains("sink `out`: 3 events failed within 60s, more than max_failures allows")
            && log.contains("more than max_event_bytes = 600"),
        "{log}"
    );
    assert_eq!(
        rows(&read_events(&dir.path("out.jsonl"))),
        [(1, "a".into())]
    );
    // Nothing was logged for the stopped batch: after the fix, a restart delivers it.
    raise_limit(&config);
    let rowbus = Rowbus::start(&config);
    let events = tokio::task::block_in_place(|| {
        wait_for("rows 2 to 5", Duration::from_secs(20), || {
            let events = read_events(&dir.path("out.jsonl"));
            events
                .iter()
                .any(|e| e["after"]["id"] == 5)
                .then_some(events)
        })
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    // No gap; row 1, written before the guard stopped its batch unacknowledged, may come again
    // (at least once).
    let ids: Vec<i64> = rows(&events).into_iter().map(|(id, _)| id).collect();
    assert!(ids.ends_with(&[2, 3, 4, 5]), "{ids:?}");
    assert!(ids[..ids.len() - 4].iter().all(|&id| id == 1), "{ids:?}");
    let purge = failures(&["purge"], &config);
    assert!(purge.status.success(), "{}", text(&purge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_asks_unless_told_yes() {
    let server = MariaDb::shared();
    let (db, mut conn) = database_with_t(server, "purge").await;
    let dir = TestDir::new("purge");
    let config = config_with_limit(server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "USE `{db}`; INSERT INTO t VALUES (1, '{}')",
        "z".repeat(1000)
    ))
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        wait_for(
            "a record in the failure log",
            Duration::from_secs(20),
            || {
                rowbus
                    .log()
                    .contains("event sent to the failure log")
                    .then_some(())
            },
        );
        rowbus.stop_cleanly();
    });
    let refused = failures(&["purge"], &config);
    assert!(
        !refused.status.success() && text(&refused).contains("add --yes"),
        "{}",
        text(&refused)
    );
    let purged = failures(&["purge", "--yes"], &config);
    assert!(
        text(&purged).contains("sink `out`: 1 record(s) purged"),
        "{}",
        text(&purged)
    );
    assert!(text(&failures(&["list"], &config)).contains("0 record(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_failures_on_start_delivers_before_streaming() {
    let server = MariaDb::shared();
    let (db, mut conn) = database_with_t(server, "replay_start").await;
    let dir = TestDir::new("replay-start");
    let config = config_with_limit(server, &dir, &db, "replay_failures_on_start = true").await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "USE `{db}`; INSERT INTO t VALUES (1, '{}'), (2, 'b')",
        "w".repeat(1000)
    ))
    .await
    .unwrap();
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| {
        wait_for_events(&out, 1);
        wait_for(
            "a record in the failure log",
            Duration::from_secs(20),
            || {
                rowbus
                    .log()
                    .contains("event sent to the failure log")
                    .then_some(())
            },
        );
        rowbus.stop_cleanly();
    });
    raise_limit(&config);
    // Changes made while stopped come after the replayed ones.
    conn.query_drop(format!("USE `{db}`; INSERT INTO t VALUES (3, 'c')"))
        .await
        .unwrap();
    let rowbus = Rowbus::start(&config);
    let events = tokio::task::block_in_place(|| wait_for_events(&out, 3));
    assert!(
        rowbus.log().contains("failure log replayed"),
        "{}",
        rowbus.log()
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let ids: Vec<i64> = rows(&events).into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, [2, 1, 3]);
    assert!(text(&failures(&["list"], &config)).contains("0 record(s)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_rowbus_runs_the_failure_log_is_listed_and_replayed_through_its_api() {
    let server = MariaDb::shared();
    let (db, mut conn) = database_with_t(server, "failures_api").await;
    let dir = TestDir::new("failures-api");
    let config = config_with_limit(server, &dir, &db, "").await;
    let admin = format!("\n[admin]\nlisten = \"127.0.0.1:{}\"\n", free_port());
    let text_now = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text_now + &admin).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let big = "x".repeat(1000);
    let statements = [
        "INSERT INTO t VALUES (1, 'a')".to_string(),
        format!("INSERT INTO t VALUES (2, '{big}')"),
        "INSERT INTO t VALUES (3, 'c')".into(),
        "UPDATE t SET v = 'small' WHERE id = 2".into(),
    ];
    run_in(&mut conn, &db, &statements).await;
    let out = dir.path("out.jsonl");
    tokio::task::block_in_place(|| wait_for_delivered_and_logged(&rowbus, &out, 2, 2));
    let list = text(&failures(&["list"], &config));
    let lines: Vec<&str> = list.lines().filter(|l| l.starts_with("out ")).collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].contains("more than max_event_bytes = 600"),
        "{list}"
    );
    assert!(list.contains("2 record(s)"), "{list}");

    // Replayed before the fix: kept, in order.
    let again = text(&failures(&["replay"], &config));
    assert_eq!(
        again,
        "failure logs replayed (out); sink `out`: 0 delivered, 2 kept\n"
    );
    // The fix, applied by a reload, then the replay delivers; the stream goes on after it.
    raise_limit(&config);
    let reload = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(["reload", "-c"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(text(&reload), "reloaded: sinks changed: out\n");
    let replay = text(&failures(&["replay", "--sink", "out"], &config));
    assert_eq!(
        replay,
        "failure logs replayed (out); sink `out`: 2 delivered, 0 kept\n"
    );
    conn.query_drop(format!("USE `{db}`; INSERT INTO t VALUES (4, 'd')"))
        .await
        .unwrap();
    let events = tokio::task::block_in_place(|| wait_for_events(&out, 5));
    assert_eq!(
        rows(&events),
        [
            (1, "a".into()),
            (3, "c".into()),
            (2, "xxxxxxxx".into()),
            (2, "small".into()),
            (4, "d".into())
        ]
    );
    let list = text(&failures(&["list"], &config));
    assert!(list.contains("0 record(s)"), "{list}");
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
}
