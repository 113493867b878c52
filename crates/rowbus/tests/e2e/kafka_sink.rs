//! The Kafka sink against a real Kafka-compatible broker (tansu): concurrent updates of the same
//! rows reach a 3-partition topic in binlog order per row; a SIGKILL mid-stream loses nothing;
//! a broker stopped for a while gets everything once back; a message too large goes to the failure
//! log while the rest flows; the Debezium envelope with tombstones through the broker.

use crate::database_sinks::add_sink;
use crate::support::*;
use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rowbus_testkit::{MariaDb, Rng, Tansu};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One message as read back.
#[derive(Debug, Clone)]
struct Msg {
    partition: i32,
    key: Value,
    value: Option<Value>,
}

/// Reads `topic` from the start of every partition until `enough` holds for what was read, or
/// fails after the deadline.
fn consume(brokers: &str, topic: &str, enough: impl Fn(&[Msg]) -> bool) -> Vec<Msg> {
    tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", format!("test-{topic}"))
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let deadline = Instant::now() + DEADLINE;
        let partitions = loop {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
            let count = metadata
                .ok()
                .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
                .unwrap_or(0);
            if count > 0 {
                break count;
            }
            assert!(Instant::now() < deadline, "topic {topic} never appeared");
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions as i32 {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&assignment).unwrap();
        let mut read = Vec::new();
        while !enough(&read) {
            assert!(
                Instant::now() < deadline,
                "timed out reading {topic}: {} messages: {read:?}",
                read.len()
            );
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            read.push(Msg {
                partition: m.partition(),
                key: serde_json::from_slice(m.key().unwrap_or(b"null")).unwrap(),
                value: m.payload().map(|p| serde_json::from_slice(p).unwrap()),
            });
        }
        read
    })
}

fn kafka_sink(brokers: &str, extra: &str) -> String {
    format!(
        "[sinks.kafka]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ncreate_topics = true\npartitions = 3\ndelivery_timeout = \"3s\"\n{extra}"
    )
}

async fn table(server: &MariaDb, db: &str) {
    server
        .conn()
        .await
        .query_drop(format!(
            "CREATE TABLE `{db}`.t (id INT PRIMARY KEY, n INT, note TEXT)"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_reach_each_partition_in_binlog_order_per_row() {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server.fresh_database("kafka_order").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-order");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, &kafka_sink(&tansu.brokers, "linger = \"1ms\""));
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    for id in 1..=12 {
        conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({id}, 0, '')"))
            .await
            .unwrap();
    }
    // Four connections update the same twelve rows at once, one increment per statement.
    let mut writers = Vec::new();
    for w in 0..4u64 {
        let db = db.clone();
        writers.push(tokio::spawn(async move {
            let mut conn = server.conn().await;
            let mut rng = Rng::new(w + 1);
            for _ in 0..60 {
                let id = rng.below(12) + 1;
                conn.query_drop(format!("UPDATE `{db}`.t SET n = n + 1 WHERE id = {id}"))
                    .await
                    .unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let total = 12 + 4 * 60;
    let topic = format!("{db}.t");
    let read = consume(&tansu.brokers, &topic, |read| read.len() >= total);
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(read.len(), total);
    // Per row: one partition, and n = 0, 1, 2, ... in the order the binlog has them.
    let mut by_row: BTreeMap<i64, (Vec<i32>, Vec<i64>)> = BTreeMap::new();
    for m in &read {
        let id = m.key["id"].as_i64().unwrap();
        let value = m.value.as_ref().unwrap();
        let entry = by_row.entry(id).or_default();
        entry.0.push(m.partition);
        entry.1.push(value["after"]["n"].as_i64().unwrap());
    }
    let rows: Vec<(i64, i64)> = conn
        .query(format!("SELECT id, n FROM `{db}`.t ORDER BY id"))
        .await
        .unwrap();
    for (id, n) in rows {
        let (partitions, ns) = &by_row[&id];
        assert!(
            partitions.iter().all(|p| *p == partitions[0]),
            "row {id}: {partitions:?}"
        );
        assert_eq!(*ns, (0..=n).collect::<Vec<_>>(), "row {id}");
    }
    let used: std::collections::BTreeSet<i32> = read.iter().map(|m| m.partition).collect();
    assert!(used.len() > 1, "every row went to one partition: {used:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_mid_stream_loses_nothing() {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server.fresh_database("kafka_kill").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-kill");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &kafka_sink(&tansu.brokers, "batch_max_events = 50"),
    );
    let topic = format!("{db}.t");
    let mut conn = server.conn().await;
    let mut next = 1;
    for round in 0..3 {
        let rowbus = Rowbus::start(&config);
        rowbus.wait_started();
        for _ in 0..150 {
            conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({next}, {round}, '')"))
                .await
                .unwrap();
            next += 1;
        }
        rowbus.kill();
    }
    let rowbus = Rowbus::start(&config);
    let written = next - 1;
    let read = consume(&tansu.brokers, &topic, |read| {
        distinct_ids(read).len() == written
    });
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(
        distinct_ids(&read),
        (1..=written as i64).collect::<Vec<_>>()
    );
    println!("{} messages for {written} rows", read.len());
}

fn distinct_ids(read: &[Msg]) -> Vec<i64> {
    let ids: std::collections::BTreeSet<i64> =
        read.iter().filter_map(|m| m.key["id"].as_i64()).collect();
    ids.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stopped_for_a_while_gets_everything_once_back() {
    let server = MariaDb::shared();
    let mut tansu = Tansu::start();
    let db = server.fresh_database("kafka_down").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-down");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(&config, &kafka_sink(&tansu.brokers, ""));
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let topic = format!("{db}.t");
    let mut conn = server.conn().await;
    for id in 1..=20 {
        conn.query_drop(format!("INSERT INTO `{db}`.t VALUES ({id}, 0, '')"))
            .await
            .unwrap();
    }
    consume(&tansu.brokers, &topic, |read| read.len() >= 20);
    tansu.stop();
    // 100,000 rows while the broker is away: rowbus reads until its queues are full, then waits.
    let rows = 100_000;
    for (from, to) in [(21, 50_000), (50_001, rows)] {
        conn.query_drop(format!(
            "INSERT INTO `{db}`.t SELECT seq, 1, 'while the broker was away' FROM `{db}`.seq_{from}_to_{to}"
        ))
        .await
        .unwrap();
    }
    // The sink notices, and retries.
    rowbus.wait_until("a delivery error", || {
        rowbus.log().contains("delivering to topic").then_some(())
    });
    tansu.resume();
    let read = consume(&tansu.brokers, &topic, |read| {
        read.len() >= rows && distinct_ids(read).len() == rows
    });
    let peak = rowbus.peak_rss();
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(distinct_ids(&read), (1..=rows as i64).collect::<Vec<_>>());
    assert!(peak < 200 << 20, "peak RSS {} MB", peak >> 20);
    println!("peak RSS {} MB", peak >> 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_too_large_goes_to_the_failure_log_and_the_rest_flows() {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server.fresh_database("kafka_large").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-large");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &kafka_sink(&tansu.brokers, "message_max_bytes = 2048"),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, 0, ''), (2, 0, REPEAT('x', 5000)), (3, 0, '')"
    ))
    .await
    .unwrap();
    let topic = format!("{db}.t");
    // Row 1 may come twice: once in the batch the large message failed, once alone.
    let read = consume(&tansu.brokers, &topic, |read| distinct_ids(read) == [1, 3]);
    rowbus.wait_until("the failure log entry", || {
        rowbus
            .log()
            .contains("event sent to the failure log")
            .then_some(())
    });
    let log = rowbus.log();
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    assert_eq!(distinct_ids(&read), [1, 3]);
    assert!(
        log.contains("is larger than message_max_bytes (2048)"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debezium_envelopes_and_tombstones_through_the_broker() {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server.fresh_database("kafka_dbz").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-dbz");
    let config = config_from_now(server, &dir, &db, "").await;
    add_sink(
        &config,
        &kafka_sink(
            &tansu.brokers,
            &format!("format = \"debezium\"\ntombstones = true\ntransaction_metadata = true\ntransaction_topic = \"{db}.transaction\""),
        ),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t VALUES (1, 5, 'a'); UPDATE `{db}`.t SET n = 6 WHERE id = 1; DELETE FROM `{db}`.t WHERE id = 1"
    ))
    .await
    .unwrap();
    let topic = format!("{db}.t");
    let read = consume(&tansu.brokers, &topic, |read| read.len() >= 4);
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let ops: Vec<Option<&str>> = read
        .iter()
        .map(|m| m.value.as_ref().map(|v| v["op"].as_str().unwrap()))
        .collect();
    assert_eq!(ops, [Some("c"), Some("u"), Some("d"), None]);
    assert!(read.iter().all(|m| m.key == serde_json::json!({"id": 1})));
    let update = read[1].value.as_ref().unwrap();
    assert_eq!(
        update["before"],
        serde_json::json!({"id": 1, "n": 5, "note": "a"})
    );
    assert_eq!(
        update["after"],
        serde_json::json!({"id": 1, "n": 6, "note": "a"})
    );
    assert_eq!(update["source"]["connector"], "mysql");
    assert_eq!(update["source"]["db"], db.as_str());
    assert_eq!(update["source"]["table"], "t");
    assert!(update["source"]["pos"].as_u64().unwrap() > 0);
    // Each statement was its own transaction.
    for m in &read[..3] {
        let transaction = &m.value.as_ref().unwrap()["transaction"];
        assert_eq!(transaction["total_order"], 1);
        assert_eq!(transaction["data_collection_order"], 1);
    }
    let ids: Vec<String> = read[..3]
        .iter()
        .map(|m| m.value.as_ref().unwrap()["transaction"]["id"].to_string())
        .collect();
    assert_eq!(
        ids.iter().collect::<std::collections::BTreeSet<_>>().len(),
        3
    );
    // The transaction topic: BEGIN then END of each (in order per transaction, the key), END
    // with its counts.
    let events = consume(&tansu.brokers, &format!("{db}.transaction"), |read| {
        read.len() >= 6
    });
    let mut by_id: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for m in &events {
        let v = m.value.as_ref().unwrap();
        assert_eq!(m.key["id"], v["id"]);
        by_id.entry(v["id"].to_string()).or_default().push((
            v["status"].as_str().unwrap().to_string(),
            v["data_collections"].clone(),
        ));
    }
    let collections = serde_json::json!([{"data_collection": format!("{db}.t"), "event_count": 1}]);
    let expected: BTreeMap<String, Vec<(String, Value)>> = ids
        .iter()
        .map(|id| {
            let pair = vec![
                ("BEGIN".to_string(), Value::Null),
                ("END".to_string(), collections.clone()),
            ];
            (id.clone(), pair)
        })
        .collect();
    assert_eq!(by_id, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxwell_messages_mark_the_last_change_of_each_transaction() {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server.fresh_database("kafka_maxwell").await;
    table(server, &db).await;
    let dir = TestDir::new("kafka-maxwell");
    let config = config_from_now(server, &dir, &db, "").await;
    // Batches of 2: a transaction of 3 changes still ends a batch whole.
    add_sink(
        &config,
        &format!(
            "[sinks.kafka]\ntype = \"kafka\"\nbrokers = \"{}\"\ncreate_topics = true\npartitions = 1\nformat = \"maxwell\"\nbatch_max_events = 2",
            tansu.brokers
        ),
    );
    let rowbus = Rowbus::start(&config);
    rowbus.wait_started();
    let mut conn = server.conn().await;
    conn.query_drop(format!(
        "BEGIN; INSERT INTO `{db}`.t VALUES (1, 0, ''); INSERT INTO `{db}`.t VALUES (2, 0, ''); \
         UPDATE `{db}`.t SET n = 1; COMMIT; INSERT INTO `{db}`.t VALUES (3, 0, '')"
    ))
    .await
    .unwrap();
    let topic = format!("{db}.t");
    let read = consume(&tansu.brokers, &topic, |read| read.len() >= 5);
    tokio::task::block_in_place(|| rowbus.stop_cleanly());
    let marks: Vec<(String, bool)> = read
        .iter()
        .map(|m| {
            let v = m.value.as_ref().unwrap();
            (v["type"].as_str().unwrap().to_string(), v["commit"] == true)
        })
        .collect();
    let expected = [
        ("insert", false),
        ("insert", false),
        ("update", false),
        ("update", true),
        ("insert", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(t, c)| (t.to_string(), *c)).collect();
    assert_eq!(marks, expected);
    let xids: Vec<u64> = read
        .iter()
        .map(|m| m.value.as_ref().unwrap()["xid"].as_u64().unwrap())
        .collect();
    assert!(
        xids[..4].iter().all(|x| *x == xids[0]) && xids[4] != xids[0],
        "{xids:?}"
    );
    assert_eq!(
        read[0].key,
        serde_json::json!({"database": db, "table": "t", "pk.id": 1})
    );
}
