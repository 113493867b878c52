//! Full disks, made with a small tmpfs: a sink whose disk is full keeps retrying (reported as
//! degraded) while the reader waits, and delivers everything, once, when space returns; a full data
//! directory stops the pipeline with a clear error, and the checkpoint never passes what was
//! delivered.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};
use std::time::Duration;

async fn insert_rows(server: &MariaDb, db: &str, from: i64, to: i64) {
    let mut conn = server.conn().await;
    for id in from..=to {
        conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({id}, 'row {id}')"))
            .await
            .unwrap();
    }
}

fn ids(path: &std::path::Path) -> Vec<i64> {
    read_events(path)
        .iter()
        .map(|e| e["after"]["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_on_a_full_disk_waits_and_then_delivers_everything_once() {
    let server = MariaDb::shared();
    let db = server.fresh_database("full_sink").await;
    server
        .conn()
        .await
        .query_drop(format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v TEXT)"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("full-sink");
    let fs = Tmpfs::mount(dir.path("outfs"), "1m");
    let config = config_from_now(server, &dir, &db, "").await;
    let out = fs.dir.join("out.jsonl");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("path = \"{}\"", dir.path("out.jsonl").display()),
        &format!("path = \"{}\"\ndegraded_after = 2", out.display()),
    );
    std::fs::write(&config, text).unwrap();
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    insert_rows(server, &db, 1, 5).await;
    tokio::task::block_in_place(|| wait_for_events(&out, 5));
    fs.fill();
    insert_rows(server, &db, 6, 200).await;
    tokio::task::block_in_place(|| {
        wait_for("the sink to report itself degraded", DEADLINE, || {
            rowbus.log().contains("sink degraded").then_some(())
        })
    });
    assert!(
        rowbus.log().contains("No space left on device"),
        "{}",
        rowbus.log()
    );
    // What fit in the file's last page went out; the rest waits, and nothing is out of order.
    let written = ids(&out);
    assert!(written.len() < 200, "the full disk held the sink back");
    assert_eq!(written, (1..=written.len() as i64).collect::<Vec<_>>());
    fs.free();
    tokio::task::block_in_place(|| wait_for_events(&out, 200));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(
        ids(&out),
        (1..=200).collect::<Vec<_>>(),
        "each row once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_directory_stops_the_pipeline_and_loses_nothing() {
    let server = MariaDb::shared();
    let db = server.fresh_database("full_data").await;
    server
        .conn()
        .await
        .query_drop(format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, v TEXT)"
        ))
        .await
        .unwrap();
    let dir = TestDir::new("full-data");
    let fs = Tmpfs::mount(dir.path("data"), "1m");
    let config = config_from_now(server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    let mut rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    insert_rows(server, &db, 1, 3).await;
    tokio::task::block_in_place(|| {
        wait_for_events(&out, 3);
        wait_for("a checkpoint after row 3", DEADLINE, || {
            let saved = checkpoint(&dir)?;
            (saved["position"]["pos"].as_u64()? > 0).then_some(())
        });
    });
    let before = checkpoint(&dir).unwrap();
    fs.fill();
    insert_rows(server, &db, 4, 6).await;
    let status = tokio::task::block_in_place(|| rowbus.wait());
    assert!(!status.success());
    let log = rowbus.log();
    assert!(
        log.contains("cannot save the checkpoint") && log.contains("No space left on device"),
        "{log}"
    );
    // The saved checkpoint is the last one that could be written, never beyond what was delivered.
    let after = checkpoint(&dir).unwrap();
    assert!(after["position"]["pos"].as_u64() >= before["position"]["pos"].as_u64());
    fs.free();
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| {
        wait_for("rows 4 to 6", Duration::from_secs(20), || {
            ids(&out).contains(&6).then_some(())
        });
        rowbus.stop_cleanly();
    });
    let got = ids(&out);
    let mut seen: Vec<i64> = got.clone();
    seen.sort();
    seen.dedup();
    assert_eq!(seen, [1, 2, 3, 4, 5, 6], "no gap: {got:?}");
    assert!(
        got.ends_with(&[4, 5, 6]) || got.ends_with(&[6]),
        "in order: {got:?}"
    );
}
