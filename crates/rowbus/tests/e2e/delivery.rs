//! Changes across two tables in multi-statement transactions arrive in the file sink exactly, in
//! binlog order, with op, db, table, key, images, file, position, GTID and transaction.

use crate::support::*;
use mysql_async::prelude::Queryable;
use rowbus_testkit::MariaDb;
use serde_json::json;

#[tokio::test]
async fn changes_arrive_exactly_in_binlog_order() {
    let server = MariaDb::shared();
    let db = server.fresh_database("delivery").await;
    let dir = TestDir::new("delivery");
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.customers (id INT PRIMARY KEY, name VARCHAR(32), balance DECIMAL(10,2));
         CREATE TABLE `{db}`.orders (id BIGINT PRIMARY KEY, customer_id INT, note TEXT, created DATETIME(3))"
    ))
    .await
    .unwrap();
    let start = binlog_end(server).await;
    let config = write_config(&dir, server.port, &db, &start, server_id(), "");
    let rowbus = Rowbus::start(&config);

    conn.query_drop(format!(
        "BEGIN;
         INSERT INTO `{db}`.customers VALUES (1, 'Ann', 10.50);
         INSERT INTO `{db}`.orders VALUES (10, 1, 'first', '2024-01-31 12:00:00.123');
         COMMIT"
    ))
    .await
    .unwrap();
    let gtid1: String = conn
        .query_first("SELECT @@last_gtid")
        .await
        .unwrap()
        .unwrap();
    conn.query_drop(format!(
        "BEGIN;
         UPDATE `{db}`.customers SET balance = 20 WHERE id = 1;
         DELETE FROM `{db}`.orders WHERE id = 10;
         INSERT INTO `{db}`.customers VALUES (2, 'Bob', 0);
         COMMIT"
    ))
    .await
    .unwrap();
    let gtid2: String = conn
        .query_first("SELECT @@last_gtid")
        .await
        .unwrap()
        .unwrap();

    wait_for_events(&dir.path("out.jsonl"), 5);
    rowbus.stop_cleanly();
    let events = read_events(&dir.path("out.jsonl"));
    assert_eq!(events.len(), 5, "{events:#?}");

    let ann = json!({"id": 1, "name": "Ann", "balance": "10.50"});
    let order =
        json!({"id": 10, "customer_id": 1, "note": "first", "created": "2024-01-31T12:00:00.123"});
    let expected = [
        (
            "c",
            "customers",
            json!({"id": 1}),
            json!(null),
            ann.clone(),
            &gtid1,
        ),
        (
            "c",
            "orders",
            json!({"id": 10}),
            json!(null),
            order.clone(),
            &gtid1,
        ),
        (
            "u",
            "customers",
            json!({"id": 1}),
            ann,
            json!({"id": 1, "name": "Ann", "balance": "20.00"}),
            &gtid2,
        ),
        ("d", "orders", json!({"id": 10}), order, json!(null), &gtid2),
        (
            "c",
            "customers",
            json!({"id": 2}),
            json!(null),
            json!({"id": 2, "name": "Bob", "balance": "0.00"}),
            &gtid2,
        ),
    ];
    let file = start.split(':').next().unwrap();
    let mut last_pos = 0;
    for (event, (op, table, key, before, after, gtid)) in events.iter().zip(expected) {
        assert_eq!(event["op"], op, "{event}");
        assert_eq!(event["db"], db.as_str(), "{event}");
        assert_eq!(event["table"], table, "{event}");
        assert_eq!(event["key"], key, "{event}");
        assert_eq!(event["before"], before, "{event}");
        assert_eq!(event["after"], after, "{event}");
        let source = &event["source"];
        assert_eq!(source["file"], file, "{event}");
        assert_eq!(source["gtid"], gtid.as_str(), "{event}");
        assert_eq!(source["txn"], gtid.as_str(), "{event}");
        assert_eq!(source["snapshot"], false);
        assert_eq!(source["name"], "src");
        let pos = source["pos"].as_u64().unwrap();
        assert!(pos >= last_pos, "positions follow binlog order: {event}");
        last_pos = pos;
    }
    // Two rows of one event share the position and differ in row index; separate events differ.
    let identities: std::collections::HashSet<_> = events.iter().map(identity).collect();
    assert_eq!(identities.len(), 5);

    let saved = checkpoint(&dir).expect("a checkpoint is saved at shutdown");
    assert_eq!(saved["position"]["file"], file);
    assert!(saved["position"]["pos"].as_u64().unwrap() > last_pos);
    let saved_gtid = saved["position"]["gtid"].as_str().unwrap();
    let seq = |g: &str| g.rsplit('-').next().unwrap().parse::<u64>().unwrap();
    assert!(
        seq(saved_gtid) >= seq(&gtid2),
        "checkpoint {saved_gtid} covers {gtid2}"
    );
}

#[tokio::test]
async fn excluded_tables_are_not_delivered() {
    let server = MariaDb::shared();
    let db = server.fresh_database("filter").await;
    let dir = TestDir::new("filter");
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "CREATE TABLE `{db}`.keep_me (id INT PRIMARY KEY); CREATE TABLE `{db}`.audit_log (id INT PRIMARY KEY)"
    ))
    .await
    .unwrap();
    let extra = format!("exclude = [\"{db}.audit_*\"]");
    let config = config_from_now(server, &dir, &db, &extra).await;
    let rowbus = Rowbus::start(&config);
    conn.query_drop(format!(
        "INSERT INTO `{db}`.audit_log VALUES (1); INSERT INTO `{db}`.keep_me VALUES (1);
         INSERT INTO `{db}`.audit_log VALUES (2); INSERT INTO `{db}`.keep_me VALUES (2)"
    ))
    .await
    .unwrap();
    wait_for_events(&dir.path("out.jsonl"), 2);
    rowbus.stop_cleanly();
    let events = read_events(&dir.path("out.jsonl"));
    assert_eq!(
        summary(&events),
        vec![
            ("c".into(), "keep_me".into(), 1),
            ("c".into(), "keep_me".into(), 2)
        ]
    );
}

#[tokio::test]
async fn savepoints_stay_inside_their_transaction() {
    let server = MariaDb::shared();
    let db = server.fresh_database("savepoint").await;
    create_table_t(server, &db).await;
    let dir = TestDir::new("savepoint");
    let config = config_from_now(server, &dir, &db, "").await;
    let rowbus = Rowbus::start(&config);
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "BEGIN; INSERT INTO `{db}`.t VALUES (1, 'a'); SAVEPOINT s1; INSERT INTO `{db}`.t VALUES (2, 'b');
         SAVEPOINT s2; INSERT INTO `{db}`.t VALUES (3, 'c'); ROLLBACK TO SAVEPOINT s2;
         INSERT INTO `{db}`.t VALUES (4, 'd'); COMMIT"
    ))
    .await
    .unwrap();
    let gtid: String = conn
        .query_first("SELECT @@last_gtid")
        .await
        .unwrap()
        .unwrap();
    let events = wait_for_events(&dir.path("out.jsonl"), 3);
    rowbus.stop_cleanly();
    assert_eq!(
        summary(&events),
        vec![
            ("c".into(), "t".into(), 1),
            ("c".into(), "t".into(), 2),
            ("c".into(), "t".into(), 4)
        ]
    );
    for event in &events {
        assert_eq!(
            event["source"]["gtid"],
            gtid.as_str(),
            "every row belongs to the transaction: {event}"
        );
        assert_eq!(event["source"]["txn"], gtid.as_str());
    }
}
