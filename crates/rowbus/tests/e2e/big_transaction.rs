//! Large data: a connection lost in the middle of a large transaction (rowbus re-reads the
//! transaction from its start after reconnecting and skips the rows it already delivered, so nothing
//! is lost or repeated), and a single event larger than a 16 MB protocol packet.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb, MariaDbOptions};

const ROWS: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_mid_transaction_neither_loses_nor_repeats() {
    let server = MariaDb::start(MariaDbOptions::default());
    let db = server.fresh_database("bigtxn").await;
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.big (id INT PRIMARY KEY, pad VARCHAR(400))"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("bigtxn");
    let config = config_from_now(&server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    let rowbus = Rowbus::start(&config);
    tokio::task::block_in_place(|| rowbus.wait_started());

    // One transaction of ~35 MB of binlog: far more than the socket buffers and rowbus's queues.
    conn.query_drop(format!(
        "INSERT INTO `{db}`.big SELECT seq, REPEAT('x', 300) FROM `{db}`.seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    tokio::task::block_in_place(|| {
        wait_for("the first rows", DEADLINE, || {
            (count_lines(&out) > 0).then_some(())
        })
    });

    // Freeze rowbus, cut its binlog connection on the server side, let it go on.
    rowbus.signal(libc::SIGSTOP);
    let dump: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .unwrap();
    assert_eq!(dump.len(), 1, "one binlog dump connection");
    conn.query_drop(format!("KILL CONNECTION {}", dump[0]))
        .await
        .unwrap();
    let delivered_before_cut = count_lines(&out) as u64;
    rowbus.signal(libc::SIGCONT);
    assert!(
        delivered_before_cut < ROWS,
        "the cut happened mid-transaction"
    );

    tokio::task::block_in_place(|| {
        wait_for("every row", DEADLINE, || {
            (count_lines(&out) as u64 >= ROWS).then_some(())
        })
    });
    let log = rowbus.log();
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert!(
        log.contains("retrying with backoff"),
        "a reconnect happened:\n{log}"
    );

    let events = read_events(&out);
    assert_eq!(events.len() as u64, ROWS, "no row repeated");
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            event["after"]["id"].as_u64(),
            Some(i as u64 + 1),
            "row {i} in order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_larger_than_16_mb_arrives_whole() {
    let server = MariaDb::start(MariaDbOptions::default());
    let db = server.fresh_database("bigevent").await;
    let mut conn = server.conn().await;
    conn.query_drop("SET GLOBAL max_allowed_packet = 67108864")
        .await
        .unwrap();
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.blobs (id INT PRIMARY KEY, b LONGBLOB)"
    ))
    .await
    .unwrap();
    let dir = TestDir::new("bigevent");
    let config = config_from_now(&server, &dir, &db, "").await;
    let out = dir.path("out.jsonl");
    let rowbus = Rowbus::start(&config);
    // A fresh connection sees the larger max_allowed_packet.
    let mut writer = server.conn().await;
    let size = 20 << 20;
    writer
        .query_drop(format!(
            "INSERT INTO `{db}`.blobs VALUES (1, REPEAT(0xAB, {size})), (2, 'small')"
        ))
        .await
        .unwrap();
    let events = tokio::task::block_in_place(|| wait_for_events(&out, 2));
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    use base64::Engine;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(events[0]["after"]["b"].as_str().unwrap())
        .unwrap();
    assert_eq!(blob.len(), size);
    assert!(blob.iter().all(|&b| b == 0xAB));
    assert_eq!(events[1]["after"]["b"], "c21hbGw=");
}
