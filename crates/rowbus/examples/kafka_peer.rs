//! The Kafka benchmark's helper (`scripts/bench.sh kafka`), a plain rdkafka client:
//!
//! - `kafka_peer wait BROKERS TOPIC N`: waits until TOPIC holds N messages (the sum of its
//!   partitions' high watermarks) and prints the time it saw them, in seconds since the epoch;
//! - `kafka_peer copy BROKERS FROM TO`: reads every message of FROM into memory, then sends them
//!   to TO with the producer settings of rowbus's Kafka sink (acks=all, idempotence, murmur2,
//!   linger 5 ms), waits for every delivery report, and prints the seconds the sending took: the
//!   ceiling a producer reaches with the same messages on the same broker, with no encoding work.

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("wait") if args.len() == 5 => wait(&args[2], &args[3], args[4].parse().unwrap()),
        Some("copy") if args.len() == 5 => copy(&args[2], &args[3], &args[4]),
        _ => {
            eprintln!("usage: kafka_peer wait BROKERS TOPIC N | copy BROKERS FROM TO");
            std::process::exit(2);
        }
    }
}

fn consumer(brokers: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "rowbus-bench-peer")
        .set("enable.auto.commit", "false")
        .create()
        .expect("a consumer")
}

/// The number of partitions of `topic`, once it exists.
fn partitions(consumer: &BaseConsumer, topic: &str) -> i32 {
    loop {
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
        let count = metadata
            .ok()
            .and_then(|m| m.topics().first().map(|t| t.partitions().len()))
            .unwrap_or(0);
        if count > 0 {
            return count as i32;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(consumer: &BaseConsumer, topic: &str, partitions: i32) -> i64 {
    (0..partitions)
        .map(|p| {
            consumer
                .fetch_watermarks(topic, p, Duration::from_secs(5))
                .map_or(0, |(low, high)| high - low)
        })
        .sum()
}

fn wait(brokers: &str, topic: &str, want: i64) {
    let consumer = consumer(brokers);
    let partitions = partitions(&consumer, topic);
    while count(&consumer, topic, partitions) < want {
        std::thread::sleep(Duration::from_millis(20));
    }
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    println!("{:.3}", at.as_secs_f64());
}

fn copy(brokers: &str, from: &str, to: &str) {
    let consumer = consumer(brokers);
    let partitions = partitions(&consumer, from);
    let want = count(&consumer, from, partitions);
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment
            .add_partition_offset(from, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&assignment).unwrap();
    let mut messages: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(want as usize);
    while (messages.len() as i64) < want {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let key = m.key().unwrap_or_default().to_vec();
            messages.push((key, m.payload().unwrap_or_default().to_vec()));
        }
    }
    // The consumer's fetches would keep the broker busy while the producer is timed.
    drop(consumer);
    // Delivery reports are served by the producer's own thread, as rowbus's sink has them.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("queue.buffering.max.kbytes", "65536")
        .create()
        .expect("a producer");
    let started = Instant::now();
    for (key, value) in &messages {
        let mut record = BaseRecord::to(to).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .expect("every delivery report");
    println!("{:.3}", started.elapsed().as_secs_f64());
}
