//! `transactions = "source"` on a database sink: each source transaction becomes exactly one
//! target transaction, whatever the batch size. Proven by the target server's own binlog: a
//! target MariaDB of its own, whose binlog holds one XID per transaction rowbus committed there.

use crate::database_sinks::add_sink;
use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{MariaDb, MariaDbOptions};

const TABLES: &str =
    "CREATE TABLE a (id INT PRIMARY KEY, n INT); CREATE TABLE b (id INT PRIMARY KEY, n INT)";

async fn rows(server: &MariaDb, db: &str) -> Vec<(String, i64, i64)> {
    let mut conn = server.conn().await;
    let mut all = Vec::new();
    for table in ["a", "b"] {
        let found: Vec<(i64, i64)> = conn
            .query(format!("SELECT id, n FROM `{db}`.{table} ORDER BY id"))
            .await
            .unwrap();
        all.extend(found.into_iter().map(|(id, n)| (table.to_string(), id, n)));
    }
    all
}

/// The XID events (committed transactions) in `server`'s binlog from `file:pos` on.
async fn transactions_since(server: &MariaDb, (file, pos): &(String, u64)) -> usize {
    let mut conn = server.conn().await;
    let events: Vec<mysql_async::Row> = conn
        .query(format!("SHOW BINLOG EVENTS IN '{file}' FROM {pos}"))
        .await
        .unwrap();
    events
        .iter()
        .filter(|e| e.get::<String, _>("Event_type").as_deref() == Some("Xid"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_source_transaction_is_one_target_transaction() {
    let source = MariaDb::shared();
    let target = MariaDb::start(MariaDbOptions::default());
    let db = source.fresh_database("whole_txn").await;
    let mut conn = source.conn().await;
    conn.query_drop(format!("USE `{db}`; {TABLES}"))
        .await
        .unwrap();
    let mut target_conn = target.conn().await;
    target_conn
        .query_drop(format!("CREATE DATABASE copy; USE copy; {TABLES}"))
        .await
        .unwrap();
    let (file, pos): (String, u64) = target_conn
        .query_first("SHOW MASTER STATUS")
        .await
        .unwrap()
        .map(|row: mysql_async::Row| (row.get(0).unwrap(), row.get(1).unwrap()))
        .unwrap();
    let dir = TestDir::new("whole-txn");
    let config = config_from_now(source, &dir, &db, "").await;
    // Batches of 3 events, 4 workers: without whole transactions, each 5-row transaction would
    // be split over batches and workers.
    add_sink(
        &config,
        &format!(
            "[sinks.copy]\ntype = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{}\"\nschema = \"copy\"\nworkers = 4\nbatch_max_events = 3\ntransactions = \"source\"",
            target.port
        ),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let count = 20;
    for t in 0..count {
        let (i, j) = (t * 3, t * 2);
        conn.query_drop(format!(
            "BEGIN; INSERT INTO `{db}`.a VALUES ({}, {t}), ({}, {t}), ({}, {t});
             INSERT INTO `{db}`.b VALUES ({}, {t}), ({}, {t}); COMMIT",
            i + 1,
            i + 2,
            i + 3,
            j + 1,
            j + 2
        ))
        .await
        .unwrap();
    }
    let want = rows(source, &db).await;
    eventually(
        || async { rows(&target, "copy").await == want },
        || async { rowbus.log() },
    )
    .await;
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(want.len(), 5 * count as usize);
    assert_eq!(
        transactions_since(&target, &(file, pos)).await,
        count as usize
    );
}
