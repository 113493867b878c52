//! Where a first run begins: `earliest`, `latest`, `FILE:POS` (see delivery.rs) and a MariaDB GTID list.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::{wait_for, MariaDb};

#[tokio::test]
async fn earliest_reads_the_whole_binlog() {
    let server = MariaDb::shared();
    let db = server.fresh_database("earliest").await;
    create_table_t(server, &db).await;
    let expected = write_transactions(server, &db, 1, 3).await;
    let dir = TestDir::new("earliest");
    let config = write_config(&dir, server.port, &db, "earliest", server_id(), "");
    let rowbus = Rowbus::start(&config);
    let events = wait_for_events(&dir.path("out.jsonl"), expected.len());
    rowbus.stop_cleanly();
    assert_eq!(summary(&events), expected);
}

#[tokio::test]
async fn gtid_list_starts_after_those_transactions() {
    let server = MariaDb::shared();
    let db = server.fresh_database("gtid").await;
    create_table_t(server, &db).await;
    write_transactions(server, &db, 1, 3).await;
    let mut conn = server.conn().await;
    let gtid: String = conn
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    let expected = write_transactions(server, &db, 4, 3).await;
    let dir = TestDir::new("gtid");
    let config = write_config(&dir, server.port, &db, &gtid, server_id(), "");
    let rowbus = Rowbus::start(&config);
    let events = wait_for_events(&dir.path("out.jsonl"), expected.len());
    rowbus.stop_cleanly();
    assert_eq!(
        summary(&events),
        expected,
        "only the transactions after {gtid}"
    );
}

#[tokio::test]
async fn latest_skips_what_came_before() {
    let server = MariaDb::shared();
    let db = server.fresh_database("latest").await;
    create_table_t(server, &db).await;
    write_transactions(server, &db, 1, 3).await;
    let dir = TestDir::new("latest");
    let config = write_config(&dir, server.port, &db, "latest", server_id(), "");
    let rowbus = Rowbus::start(&config);
    wait_for("a first checkpoint", DEADLINE, || checkpoint(&dir));
    let expected = write_transactions(server, &db, 4, 2).await;
    let events = wait_for_events(&dir.path("out.jsonl"), expected.len());
    rowbus.stop_cleanly();
    assert_eq!(summary(&events), expected);
}
