//! The Kafka source's loop: assigns every partition of its topics, seeks each to the checkpoint's
//! offset (or the start setting), and turns each message into a change followed by a boundary
//! holding the offsets after it; the pipeline acknowledges and checkpoints those like binlog
//! positions. The offsets of each saved checkpoint, and only those, are committed to the
//! consumer group, so the group's lag shows what the sinks have not acknowledged yet.

use crate::config::{KafkaSourceConfig, Start};
use crate::offsets::{from_position, to_position, Offsets};
use crate::parse::{parse, Origin};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use rowbus_core::event::SourceRecord;
use rowbus_core::pipeline::Stop;
use rowbus_core::queue::QueueSender;
use rowbus_core::Position;
use std::sync::Arc;
use std::time::Duration;

/// The last checkpoint saved for this source, asked for now and then to commit its offsets.
pub type Saved = Arc<dyn Fn() -> Option<Position> + Send + Sync>;

/// How often the saved checkpoint's offsets are committed to the group.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

/// Reads until `stop`, or fails with a message naming the cause (an unreadable message, a
/// checkpoint of another kind of source, a topic that never appears).
pub async fn run_source(
    config: KafkaSourceConfig,
    checkpoint: Option<Position>,
    tx: QueueSender<SourceRecord>,
    stop: Stop,
    saved: Saved,
) -> Result<(), String> {
    let mut offsets = match &checkpoint {
        Some(position) => from_position(position)?,
        None => Offsets::new(),
    };
    let consumer = consumer(&config)?;
    let assignment = assign(&consumer, &config, &offsets, &stop).await?;
    let Some(assignment) = assignment else {
        return Ok(()); // stopped while waiting for the topics
    };
    consumer
        .assign(&assignment)
        .map_err(|e| format!("cannot assign the partitions of {:?}: {e}", config.topics))?;
    tracing::info!(source = %config.name, topics = ?config.topics, partitions = assignment.count(), "starting to read the topics");
    let mut committed: Option<Position> = None;
    let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
    loop {
        let message = tokio::select! {
            _ = stop.wait() => break,
            _ = commit_tick.tick() => {
                commit_saved(&consumer, &saved, &mut committed);
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(source = %config.name, error = %e, "reading the topics; retrying");
                continue;
            }
        };
        let at = Origin {
            source: &config.name,
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        };
        let change = parse(config.format, message.key(), message.payload(), &at)?;
        if let Some(change) = change.filter(|c| config.tables.matches(&c.db, &c.table)) {
            let size = change.approx_size();
            if tx
                .send(SourceRecord::Change(Arc::new(change)), size)
                .await
                .is_err()
            {
                break;
            }
        }
        let place = (message.topic().to_string(), message.partition());
        offsets.insert(place, message.offset() + 1);
        if tx
            .send(SourceRecord::Boundary(to_position(&offsets)), 64)
            .await
            .is_err()
        {
            break;
        }
    }
    commit_saved(&consumer, &saved, &mut committed);
    Ok(())
}

fn consumer(config: &KafkaSourceConfig) -> Result<StreamConsumer, String> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    for (name, value) in &config.options {
        c.set(name, value);
    }
    c.create()
        .map_err(|e| format!("cannot set up the Kafka consumer: {e}"))
}

/// Every partition of the topics, each at its checkpoint's offset or at the start setting; waits
/// (naming them) for topics that do not exist yet; `None` when stopped meanwhile.
async fn assign(
    consumer: &StreamConsumer,
    config: &KafkaSourceConfig,
    offsets: &Offsets,
    stop: &Stop,
) -> Result<Option<TopicPartitionList>, String> {
    let mut list = TopicPartitionList::new();
    for topic in &config.topics {
        let partitions = loop {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
            let count = metadata
                .as_ref()
                .ok()
                .and_then(|m| m.topics().first())
                .filter(|t| t.error().is_none())
                .map_or(0, |t| t.partitions().len());
            if count > 0 {
                break count as i32;
            }
            let why = match metadata {
                Err(e) => e.to_string(),
                Ok(_) => "no such topic".into(),
            };
            tracing::warn!(source = %config.name, %topic, %why, "waiting for the topic");
            tokio::select! {
                _ = stop.wait() => return Ok(None),
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        for partition in 0..partitions {
            let offset = match offsets.get(&(topic.clone(), partition)) {
                Some(next) => Offset::Offset(*next),
                None if config.start == Start::Earliest => Offset::Beginning,
                None => Offset::End,
            };
            list.add_partition_offset(topic, partition, offset)
                .map_err(|e| format!("cannot seek {topic}/{partition}: {e}"))?;
        }
    }
    Ok(Some(list))
}

/// Commits the offsets of the last saved checkpoint to the group, when they moved.
fn commit_saved(consumer: &StreamConsumer, saved: &Saved, committed: &mut Option<Position>) {
    let Some(position) = saved() else {
        return;
    };
    if committed.as_ref() == Some(&position) {
        return;
    }
    let Ok(offsets) = from_position(&position) else {
        return;
    };
    let mut list = TopicPartitionList::new();
    for ((topic, partition), next) in &offsets {
        let _ = list.add_partition_offset(topic, *partition, Offset::Offset(*next));
    }
    match consumer.commit(&list, CommitMode::Async) {
        Ok(()) => *committed = Some(position),
        Err(e) => tracing::warn!(error = %e, "cannot commit the delivered offsets to the group"),
    }
}
