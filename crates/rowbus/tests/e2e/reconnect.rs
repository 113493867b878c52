//! Connection loss and silence: a restarted server is reconnected to without loss or repeats; an
//! idle source keeps its position moving through heartbeats; a server that stops answering is
//! detected within a few heartbeat periods and reported.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb, MariaDbOptions};
use std::collections::HashSet;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_neither_loses_nor_repeats() {
    let mut server = MariaDb::start(MariaDbOptions::default());
    let db = server.fresh_database("restart").await;
    create_table_t(&server, &db).await;
    let dir = TestDir::new("server-restart");
    let config = config_from_now(&server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    let rowbus = Rowbus::start(&config);

    let mut expected = write_transactions(&server, &db, 1, 50).await;
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));
    tokio::task::block_in_place(|| server.restart());
    expected.extend(write_transactions(&server, &db, 51, 50).await);
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));
    let log = rowbus.log();
    tokio::task::block_in_place(|| rowbus.stop_cleanly());

    let events = read_events(&out);
    assert_eq!(summary(&events), expected, "nothing lost, nothing repeated");
    let distinct: HashSet<_> = events.iter().map(identity).collect();
    assert_eq!(distinct.len(), events.len());
    assert!(
        log.contains("retrying with backoff"),
        "the reconnect is reported:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_source_advances_through_heartbeats() {
    let server = MariaDb::shared();
    let db = server.fresh_database("idle").await;
    let other = server.fresh_database("idle_other").await;
    let dir = TestDir::new("idle");
    let config = config_from_now(server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);

    let first = tokio::task::block_in_place(|| {
        wait_for("a first checkpoint", DEADLINE, || checkpoint(&dir))
    });
    // Changes to tables rowbus does not deliver still move its position...
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{other}`.x (id INT PRIMARY KEY); INSERT INTO `{other}`.x VALUES (1)"
    ))
    .await
    .unwrap();
    let end = binlog_end(server).await;
    let end_pos: u64 = end.rsplit(':').next().unwrap().parse().unwrap();
    tokio::task::block_in_place(|| {
        wait_for(
            "the checkpoint to pass the excluded writes",
            DEADLINE,
            || {
                let saved = checkpoint(&dir)?;
                (saved["position"]["pos"].as_u64()? >= end_pos).then_some(())
            },
        );
        // ...and with nothing at all to send, heartbeats keep the checkpoint fresh.
        let first_saved = first["saved_at_ms"].as_u64().unwrap();
        wait_for("a heartbeat-refreshed checkpoint", DEADLINE, || {
            let saved = checkpoint(&dir)?;
            (saved["saved_at_ms"].as_u64()? > first_saved + 1500).then_some(())
        });
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert!(read_events(&dir.path("out.jsonl")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unresponsive_server_is_detected_and_reported() {
    let server = MariaDb::start(MariaDbOptions::default());
    let db = server.fresh_database("silent").await;
    create_table_t(&server, &db).await;
    let dir = TestDir::new("silent");
    let config = config_from_now(&server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    let rowbus = Rowbus::start(&config);
    let expected = write_transactions(&server, &db, 1, 5).await;
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));

    server.pause();
    let paused_at = std::time::Instant::now();
    tokio::task::block_in_place(|| {
        wait_for("the silence to be reported", DEADLINE, || {
            rowbus
                .log()
                .contains("no event or heartbeat from")
                .then_some(())
        })
    });
    // heartbeat = 1s: detected after 3 periods and a second of grace, well before 15 s.
    assert!(
        paused_at.elapsed() < Duration::from_secs(15),
        "detected after {:?}",
        paused_at.elapsed()
    );
    server.resume();
    let mut expected = expected;
    expected.extend(write_transactions(&server, &db, 6, 5).await);
    tokio::task::block_in_place(|| wait_for_events(&out, expected.len()));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(summary(&read_events(&out)), expected);
}
