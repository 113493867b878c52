//! The Kafka source between capture and apply: a first rowbus captures MariaDB into a topic, a
//! second reads the topic into a file sink. Killed with SIGKILL, the second resumes exactly at
//! the offset its checkpoint holds (what came before it is in the file once, what came after it
//! at least once); stopped cleanly, it resumes without a repeat; the group's committed offset
//! follows what the sink acknowledged.

use crate::database_sinks::add_sink;
use crate::support::*;
use mysql_async::prelude::Queryable;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset};
use rowbus_testkit::{MariaDb, Tansu};
use serde_json::Value;
use std::time::Duration;

/// What identifies a change in a file line: its binlog place and row, its op and after image.
fn change_of(e: &Value) -> (String, u64, u64, String, Value) {
    let (file, pos, row) = identity(e);
    (
        file,
        pos,
        row,
        e["op"].as_str().unwrap().into(),
        e["after"].clone(),
    )
}

fn replay_config(dir: &TestDir, brokers: &str, topic: &str, format: &str) -> std::path::PathBuf {
    let text = format!(
        r#"data_dir = "{data}"

[pipeline]
checkpoint_interval = "100ms"

[sources.replay]
type = "kafka"
brokers = "{brokers}"
topics = ["{topic}"]
format = "{format}"

[sinks.out]
type = "file"
path = "{out}"
batch_max_events = 5
"#,
        data = dir.path("data").display(),
        out = dir.path("out.jsonl").display(),
    );
    let path = dir.path("replay.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The offset the replaying rowbus's checkpoint holds for partition 0 of `topic`, once saved.
fn checkpointed(dir: &TestDir, topic: &str) -> Option<u64> {
    let text = std::fs::read_to_string(dir.path("data/checkpoints/replay.json")).ok()?;
    let checkpoint: Value = serde_json::from_str(&text).ok()?;
    let offsets = checkpoint["position"]["gtid"].as_str()?.to_string();
    let (_, next) = offsets.rsplit_once(&format!("{topic}/0:"))?;
    next.parse().ok()
}

/// Changes captured into the topic.
const N: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_replays_into_the_file_sink_exactly_once_per_checkpointed_offset_range() {
    replay_through("native").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debezium_topic_replays_the_same_way() {
    replay_through("debezium").await;
}

/// Captures N changes into a topic in `format`, replays it into a file with a SIGKILL midway.
async fn replay_through(format: &str) {
    let server = MariaDb::shared();
    let tansu = Tansu::shared();
    let db = server
        .fresh_database(&format!("kafka_replay_{format}"))
        .await;
    let mut conn = server.conn().await;
    conn.query_drop(format!("CREATE TABLE `{db}`.t (id INT PRIMARY KEY, n INT)"))
        .await
        .unwrap();
    // Capture: N changes into a one-partition topic.
    let capture_dir = TestDir::new("kafka-capture");
    let capture = config_from_now(server, &capture_dir, &db, "").await;
    add_sink(
        &capture,
        &format!(
            "[sinks.kafka]\ntype = \"kafka\"\nbrokers = \"{}\"\ncreate_topics = true\npartitions = 1\nformat = \"{format}\"",
            tansu.brokers
        ),
    );
    let capturing = Rowbus::start(&capture);
    capturing.wait_started();
    conn.query_drop(format!(
        "INSERT INTO `{db}`.t SELECT seq, 0 FROM `{db}`.seq_1_to_2000"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("UPDATE `{db}`.t SET n = n + 1 WHERE id <= 500"))
        .await
        .unwrap();
    conn.query_drop(format!("DELETE FROM `{db}`.t WHERE id > 1500"))
        .await
        .unwrap();
    let captured = wait_for_events(&capture_dir.path("out.jsonl"), N);
    tokio::task::block_in_place(|| capturing.stop_cleanly());
    let topic = format!("{db}.t");
    let want: Vec<_> = captured.iter().map(change_of).collect();
    assert_eq!(want.len(), N);

    // Apply: read the topic into a file, killed once midway.
    let dir = TestDir::new("kafka-replay");
    let config = replay_config(&dir, &tansu.brokers, &topic, format);
    let out = dir.path("out.jsonl");
    let replaying = Rowbus::start(&config);
    replaying.wait_until("a first checkpoint", || {
        (checkpointed(&dir, &topic).unwrap_or(0) > 0).then_some(())
    });
    replaying.kill();
    let kept = count_lines(&out);
    let resume_at = checkpointed(&dir, &topic).unwrap() as usize;
    assert!(
        resume_at <= kept,
        "checkpoint {resume_at} beyond {kept} lines written"
    );
    let replaying = Rowbus::start(&config);
    let total = kept + (N - resume_at);
    replaying.wait_until("the replay", || (count_lines(&out) >= total).then_some(()));
    tokio::task::block_in_place(|| replaying.stop_cleanly());
    let lines: Vec<_> = read_events(&out).iter().map(change_of).collect();
    // Offsets before the checkpoint: once; from the checkpoint on: again, in order.
    let mut expected = want[..kept].to_vec();
    expected.extend_from_slice(&want[resume_at..]);
    assert_eq!(lines, expected);
    assert_eq!(checkpointed(&dir, &topic), Some(N as u64));
    println!("killed at {kept} lines with the checkpoint at {resume_at}");

    // Stopped cleanly at the end: a restart repeats nothing.
    let replaying = Rowbus::start(&config);
    replaying.wait_started();
    tokio::task::block_in_place(|| replaying.stop_cleanly());
    assert_eq!(count_lines(&out), total);

    // The group's committed offset is the delivered end of the topic.
    let committed = tokio::task::block_in_place(|| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &tansu.brokers)
            .set("group.id", "rowbus-replay")
            .create()
            .unwrap();
        let mut list = rdkafka::TopicPartitionList::new();
        list.add_partition(&topic, 0);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .unwrap();
        committed.elements()[0].offset()
    });
    assert_eq!(committed, Offset::Offset(N as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_stops_the_source_naming_its_offset() {
    let tansu = Tansu::shared();
    let topic = format!("garbage-{}", std::process::id());
    tansu.create_topic(&topic, 1);
    tokio::task::block_in_place(|| {
        use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &tansu.brokers)
            .create()
            .unwrap();
        producer
            .send(BaseRecord::to(&topic).key("k").payload("not an event"))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    });
    let dir = TestDir::new("kafka-garbage");
    let config = replay_config(&dir, &tansu.brokers, &topic, "native");
    let mut replaying = Rowbus::start(&config);
    let status = replaying.wait();
    assert!(!status.success());
    let log = replaying.log();
    assert!(
        log.contains(&format!("message {topic}/0 at offset 0 is not Native JSON")),
        "{log}"
    );
    assert_eq!(count_lines(&dir.path("out.jsonl")), 0);
}
