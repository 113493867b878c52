//! Transforms end to end: one binlog dispatched by database to two sinks with the checkpoint
//! covering both (a restart repeats nothing); a runtime error sends its change to the failure log
//! while the stream goes on, and a replay after the fix runs the transforms again;
//! `rowbus test-transform` prints what each sink would receive.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

/// A config with a source on `dbs` and file sinks `a` and `b`, and extra TOML after them.
async fn two_sink_config(server: &MariaDb, dir: &TestDir, dbs: &[&str], extra: &str) -> PathBuf {
    let include: Vec<String> = dbs.iter().map(|db| format!("\"{db}.*\"")).collect();
    let text = format!(
        r#"data_dir = "{data}"

[pipeline]
checkpoint_interval = "200ms"

[sources.src]
type = "mysql"
url = "mysql://root@127.0.0.1:{port}"
server_id = {server_id}
include = [{include}]
start = "{start}"
heartbeat = "1s"

[sinks.a]
type = "file"
path = "{a}"

[sinks.b]
type = "file"
path = "{b}"

{extra}
"#,
        data = dir.path("data").display(),
        port = server.port,
        server_id = server_id(),
        include = include.join(", "),
        start = binlog_end(server).await,
        a = dir.path("a.jsonl").display(),
        b = dir.path("b.jsonl").display(),
    );
    let path = dir.path("rowbus.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// (db, id, v) of each event's after image.
fn rows(events: &[Value]) -> Vec<(String, i64, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["db"].as_str().unwrap().to_string(),
                e["after"]["id"].as_i64().unwrap(),
                e["after"]["v"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_for_checkpoint_at_end(server: &MariaDb, dir: &TestDir) {
    let end = binlog_end(server).await;
    let end_pos: u64 = end.rsplit(':').next().unwrap().parse().unwrap();
    tokio::task::block_in_place(|| {
        wait_for("the checkpoint at the binlog's end", DEADLINE, || {
            let saved = checkpoint(dir)?;
            (saved["position"]["pos"].as_u64()? >= end_pos).then_some(())
        })
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_by_database_with_one_checkpoint_for_both_sinks() {
    let server = MariaDb::shared();
    let db1 = server.fresh_database("dispatch_one").await;
    let db2 = server.fresh_database("dispatch_two").await;
    let mut conn = server.conn().await;
    for db in [&db1, &db2] {
        conn.query_drop(format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(32))"
        ))
        .await
        .unwrap();
    }
    let dir = TestDir::new("dispatch");
    let extra = format!(
        r#"[[transforms]]
filter = 'row.v != "skip"'

[[transforms]]
route = ["a"]
tables = ["{db1}.*"]

[[transforms]]
route = ["b"]
tables = ["{db2}.*"]

[[sinks.b.transforms]]
mask = ["v"]
mask_with = "xx"
"#
    );
    let config = two_sink_config(server, &dir, &[&db1, &db2], &extra).await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    for i in 1..=20 {
        let v = if i % 5 == 0 {
            "skip".to_string()
        } else {
            format!("v{i}")
        };
        conn.query_drop(format!(
            "BEGIN; INSERT INTO `{db1}`.t VALUES ({i}, '{v}'); INSERT INTO `{db2}`.t VALUES ({i}, '{v}'); COMMIT"
        ))
        .await
        .unwrap();
    }
    wait_for_checkpoint_at_end(server, &dir).await;
    let kept: Vec<i64> = (1..=20).filter(|i| i % 5 != 0).collect();
    let expected = |db: &str, masked: bool| -> Vec<(String, i64, String)> {
        kept.iter()
            .map(|&i| {
                (
                    db.to_string(),
                    i,
                    if masked { "xx".into() } else { format!("v{i}") },
                )
            })
            .collect()
    };
    assert_eq!(
        rows(&read_events(&dir.path("a.jsonl"))),
        expected(&db1, false)
    );
    assert_eq!(
        rows(&read_events(&dir.path("b.jsonl"))),
        expected(&db2, true)
    );
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    // The checkpoint covers both sinks: after a restart only the new change arrives, once.
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!("INSERT INTO `{db2}`.t VALUES (100, 'new')"))
        .await
        .unwrap();
    wait_for_checkpoint_at_end(server, &dir).await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(
        rows(&read_events(&dir.path("a.jsonl"))),
        expected(&db1, false)
    );
    let mut with_new = expected(&db2, true);
    with_new.push((db2.clone(), 100, "xx".into()));
    assert_eq!(rows(&read_events(&dir.path("b.jsonl"))), with_new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transform_error_logs_the_change_and_a_replay_runs_the_transforms_again() {
    let server = MariaDb::shared();
    let db = server.fresh_database("transform_errors").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v VARCHAR(32), n INT)"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("transform_errors");
    // 100 / n fails for n = 0: that change goes to the failure log of every sink it was for.
    let extra = r#"[[transforms]]
set = { ratio = "100 / row.n" }
"#;
    let config = two_sink_config(server, &dir, &[&db], extra).await;
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, 'a', 4); INSERT INTO `{db}`.t VALUES (2, 'b', 0); INSERT INTO `{db}`.t VALUES (3, 'c', 5)"
    ))
    .await
    .unwrap();
    wait_for_checkpoint_at_end(server, &dir).await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let ratios = |path: &str| -> Vec<(i64, i64)> {
        read_events(&dir.path(path))
            .iter()
            .map(|e| {
                (
                    e["after"]["id"].as_i64().unwrap(),
                    e["after"]["ratio"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(ratios("a.jsonl"), [(1, 25), (3, 20)]);
    assert_eq!(ratios("b.jsonl"), [(1, 25), (3, 20)]);
    let list = rowbus_cli(&["failures", "show", "1", "--sink", "a", "-c"], &config);
    assert!(
        list.contains(
            "transform: transforms[0] (set): ratio: line 1, column 5: Division by zero: 100 / 0"
        ),
        "{list}"
    );
    // The fix: the change is computed anew on replay, to each sink.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("100 / row.n", "if row.n == 0 { -1 } else { 100 / row.n }"),
    )
    .unwrap();
    let replay = rowbus_cli(&["failures", "replay", "-c"], &config);
    assert!(replay.contains("sink `a`: 1 delivered, 0 kept"), "{replay}");
    assert_eq!(ratios("a.jsonl"), [(1, 25), (3, 20), (2, -1)]);
    assert_eq!(ratios("b.jsonl"), [(1, 25), (3, 20), (2, -1)]);
}

fn rowbus_cli(args: &[&str], config: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_rowbus"))
        .args(args)
        .arg(config)
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn test_transform_prints_what_each_sink_receives() {
    let dir = TestDir::new("test_transform");
    let config = dir.path("rowbus.toml");
    std::fs::write(
        &config,
        r#"data_dir = "/nonexistent"
[sources.src]
type = "mysql"
url = "mysql://root@127.0.0.1:1"
server_id = 1

[[transforms]]
rename = { email = "mail" }

[[transforms]]
copy = "archive"
if = 'op == "d"'

[sinks.main]
type = "stdout"
[[sinks.main.transforms]]
drop = ["mail"]

[sinks.archive]
type = "stdout"
tables = ["crm.*"]
"#,
    )
    .unwrap();
    let event = dir.path("event.json");
    std::fs::write(
        &event,
        r#"{"op":"d","db":"shop","table":"users","key":{"id":7},"before":{"id":7,"email":"a@b.c"},"after":null}"#,
    )
    .unwrap();
    let out = rowbus_cli(
        &["test-transform", "--event", event.to_str().unwrap(), "-c"],
        &config,
    );
    let source = r#""source":{"name":"test","server_id":0,"file":"","pos":0,"gtid":null,"txn":"","ts_ms":0,"row":0,"snapshot":false},"read_ts_ms":0}"#;
    // archive takes crm.* only, so the copy does not reach it.
    assert_eq!(
        out,
        format!(
            "sink archive: nothing\nsink main: {{\"op\":\"d\",\"db\":\"shop\",\"table\":\"users\",\"key\":{{\"id\":7}},\"before\":{{\"id\":7}},\"after\":null,{source}\n"
        )
    );
}
