//! The Kafka sink: each change becomes one message (its key the row's key, so that the partition,
//! and with it the order of one row's changes, follows the key; its value the event in the sink's
//! format), produced with `acks=all` and idempotence through librdkafka (the rdkafka crate). The
//! broker's delivery report is the acknowledgement: a batch is written when every message of it is
//! acknowledged, and a message the broker cannot take is a retriable error (the batch is sent
//! again; the messages already taken are then in the topic twice, at least once in all) or, when
//! too large, a permanent one (the failure log).

pub mod config;
pub mod errors;

use crate::format::Encoder;
use config::KafkaSinkConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rowbus_core::sink::{BoxFuture, Sink, SinkError};
use rowbus_core::{ChangeEvent, Op, Row};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

pub struct KafkaSink {
    config: KafkaSinkConfig,
    producer: FutureProducer<Logs>,
    admin: Option<AdminClient<Logs>>,
    encoder: Encoder,
    /// Topics created (or found) by this sink, with `create_topics`.
    topics: HashSet<String>,
    /// Per table (and whether for its row changes or its schema changes): the topic and the
    /// configured key columns, worked out once.
    routes: HashMap<(Arc<str>, Arc<str>, bool), Route>,
    key: Vec<u8>,
    value: Vec<u8>,
}

/// Where a table's changes go.
#[derive(Clone)]
struct Route {
    topic: Arc<str>,
    key_columns: Option<Arc<[String]>>,
}

/// One message sent and waiting for its delivery report.
struct Pending {
    delivery: DeliveryFuture,
    topic: Arc<str>,
    bytes: usize,
}

impl KafkaSink {
    /// A sink for `config`: the producer and, with `create_topics`, an admin client. Neither
    /// connects yet; an unreachable broker shows when the first batch is sent.
    pub fn new(config: KafkaSinkConfig) -> Result<KafkaSink, String> {
        let producer = new_producer(&config)?;
        let admin = match config.create_topics {
            true => Some(
                ClientConfig::new()
                    .set("bootstrap.servers", &config.brokers)
                    .create_with_context(Logs)
                    .map_err(|e| format!("cannot set up the Kafka admin client: {e}"))?,
            ),
            false => None,
        };
        Ok(KafkaSink {
            encoder: Encoder::new(config.format).with_debezium(config.debezium),
            config,
            producer,
            admin,
            topics: HashSet::new(),
            routes: HashMap::new(),
            key: Vec::new(),
            value: Vec::new(),
        })
    }

    async fn write_batch(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        // A batch sent again is numbered within its transactions as the first time.
        let saved = self.encoder.saved();
        let written = self.send_batch(batch).await;
        if written.is_err() {
            self.encoder.restore(saved);
        }
        written
    }

    async fn send_batch(&mut self, batch: &[Arc<ChangeEvent>]) -> Result<(), SinkError> {
        let mut pending: VecDeque<Pending> = VecDeque::with_capacity(batch.len());
        let mut failed: Option<SinkError> = None;
        for (i, e) in batch.iter().enumerate() {
            self.encoder.ends_transaction(batch, i);
            let Route { topic, key_columns } = self.route(e).await?;
            self.key.clear();
            match key_columns {
                Some(columns) => {
                    let key = configured_key(e, &columns)?;
                    self.encoder.key_of(e, &key, &mut self.key);
                }
                None => self.encoder.key(e, &mut self.key),
            }
            if let Some(begin) = self.encoder.begin_of(e) {
                let sent = self.send_transaction_event(e, begin, &mut pending, &mut failed);
                let sent = sent.await?;
                pending.push_back(sent);
            }
            self.value.clear();
            if !self.encoder.value(e, &mut self.value) {
                continue;
            }
            let bytes = self.value.len() + self.key.len();
            if bytes > self.config.message_max_bytes {
                return Err(SinkError::permanent(format!(
                    "a message of {bytes} bytes for topic {topic} is larger than message_max_bytes ({}): raise it (and the broker's message.max.bytes) or filter the column out",
                    self.config.message_max_bytes
                )));
            }
            let record = FutureRecord::to(&topic)
                .key(&self.key[..])
                .payload(&self.value[..]);
            let delivery = send(&self.producer, record, &mut pending, &mut failed).await?;
            pending.push_back(Pending {
                delivery,
                topic: topic.clone(),
                bytes,
            });
            if self.config.tombstones && e.op == Op::Delete {
                let record: FutureRecord<[u8], [u8]> = FutureRecord::to(&topic).key(&self.key[..]);
                let delivery = send(&self.producer, record, &mut pending, &mut failed).await?;
                pending.push_back(Pending {
                    delivery,
                    topic,
                    bytes: self.key.len(),
                });
            }
            if let Some(end) = self.encoder.end_of(e) {
                let sent = self.send_transaction_event(e, end, &mut pending, &mut failed);
                let sent = sent.await?;
                pending.push_back(sent);
            }
        }
        while let Some(p) = pending.pop_front() {
            note(&mut failed, settle(p).await);
        }
        match failed {
            Some(e) if e.retriable => {
                // The batch is sent again by a new producer: after a broker restart the old one's
                // idempotence state (producer id, sequence numbers) may be refused for good.
                self.renew_producer();
                Err(e)
            }
            Some(e) => Err(self.fatal_or(e)),
            None => Ok(()),
        }
    }

    fn renew_producer(&mut self) {
        match new_producer(&self.config) {
            Ok(producer) => self.producer = producer,
            Err(e) => {
                tracing::warn!(error = %e, "cannot renew the Kafka producer; keeping the old one")
            }
        }
    }

    /// The topic and key columns of `e`'s table, its topic created on first use if asked.
    async fn route(&mut self, e: &ChangeEvent) -> Result<Route, SinkError> {
        let rows = e.op.is_row_change();
        let place = (e.db.clone(), e.table.clone(), rows);
        if let Some(route) = self.routes.get(&place) {
            return Ok(route.clone());
        }
        let topic: Arc<str> = match rows {
            true => self.config.topic_of(&e.db, &e.table).into(),
            false => self.config.schema_topic.replace("{db}", &e.db).into(),
        };
        self.ensure_topic(&topic).await?;
        let key_columns = self.config.key_columns_of(&e.db, &e.table).map(Arc::from);
        let route = Route { topic, key_columns };
        self.routes.insert(place, route.clone());
        Ok(route)
    }

    /// Sends a BEGIN or END event of `e`'s transaction to the transaction topic.
    async fn send_transaction_event(
        &mut self,
        e: &ChangeEvent,
        (key, value): (Vec<u8>, Vec<u8>),
        pending: &mut VecDeque<Pending>,
        failed: &mut Option<SinkError>,
    ) -> Result<Pending, SinkError> {
        let topic: Arc<str> = self
            .config
            .transaction_topic
            .replace("{source}", &e.source.name)
            .into();
        self.ensure_topic(&topic).await?;
        let record = FutureRecord::to(&topic).key(&key[..]).payload(&value[..]);
        let delivery = send(&self.producer, record, pending, failed).await?;
        Ok(Pending {
            delivery,
            topic,
            bytes: key.len() + value.len(),
        })
    }

    /// Creates `topic` if `create_topics` is on and this sink has not seen it yet.
    async fn ensure_topic(&mut self, topic: &str) -> Result<(), SinkError> {
        let Some(admin) = &self.admin else {
            return Ok(());
        };
        if self.topics.contains(topic) {
            return Ok(());
        }
        let new = NewTopic::new(
            topic,
            self.config.partitions,
            TopicReplication::Fixed(self.config.replication_factor),
        );
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics([&new], &options)
            .await
            .map_err(|e| errors::classify(&e, &format!("creating topic {topic}")))?;
        for result in results {
            match result {
                Ok(_) => {
                    tracing::info!(%topic, partitions = self.config.partitions, "created the topic")
                }
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(SinkError::retriable(format!(
                        "cannot create topic {topic}: {code}"
                    )))
                }
            }
        }
        self.topics.insert(topic.to_string());
        Ok(())
    }

    /// A producer in a fatal state (idempotence broken) cannot go on: the pipeline stops with the
    /// checkpoint before the batch, and a restart makes a new producer.
    fn fatal_or(&self, e: SinkError) -> SinkError {
        match self.producer.client().fatal_error() {
            Some((code, reason)) => SinkError::fatal(format!(
                "the Kafka producer failed for good ({code}: {reason}); restart rowbus (it resumes before this batch)"
            )),
            None => e,
        }
    }
}

impl Sink for KafkaSink {
    fn write<'a>(
        &'a mut self,
        batch: &'a [Arc<ChangeEvent>],
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.write_batch(batch))
    }
}

fn new_producer(config: &KafkaSinkConfig) -> Result<FutureProducer<Logs>, String> {
    producer_config(config)
        .create_with_context(Logs)
        .map_err(|e| format!("cannot set up the Kafka producer: {e}"))
}

/// librdkafka's own log lines and client errors, through tracing rather than its stderr.
pub struct Logs;

impl ClientContext for Logs {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::warn!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning | RDKafkaLogLevel::Notice => {
                tracing::info!(facility, "librdkafka: {message}")
            }
            _ => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, "Kafka client: {reason}");
    }
}

/// The producer's properties: `acks=all` and idempotence (in order per partition, without
/// duplicates from the producer's own retries), Java's partitioner (so keys land where Java
/// clients put them), and the sink's batching and bounds; `options` last, as given.
fn producer_config(config: &KafkaSinkConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("compression.type", &config.compression)
        .set("linger.ms", config.linger.as_millis().to_string())
        .set("batch.size", config.batch_bytes.to_string())
        .set(
            "queue.buffering.max.kbytes",
            (config.max_in_flight_bytes / 1024).max(1).to_string(),
        )
        .set(
            "message.max.bytes",
            (config.message_max_bytes + 1024).to_string(),
        )
        .set(
            "message.timeout.ms",
            config.delivery_timeout.as_millis().to_string(),
        );
    for (name, value) in &config.options {
        c.set(name, value);
    }
    c
}

/// Hands a message to the producer; while its queue is full, waits for the oldest message
/// in flight to be settled first.
async fn send<'r>(
    producer: &FutureProducer<Logs>,
    mut record: FutureRecord<'r, [u8], [u8]>,
    pending: &mut VecDeque<Pending>,
    failed: &mut Option<SinkError>,
) -> Result<DeliveryFuture, SinkError> {
    loop {
        match producer.send_result(record) {
            Ok(delivery) => return Ok(delivery),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                match pending.pop_front() {
                    Some(p) => note(failed, settle(p).await),
                    None => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
            Err((e, back)) => {
                return Err(errors::classify(&e, &format!("sending to {}", back.topic)))
            }
        }
    }
}

/// The delivery report of one message, as the sink's outcome.
async fn settle(p: Pending) -> Result<(), SinkError> {
    match p.delivery.await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(errors::delivery(&e, &p.topic, p.bytes)),
        Err(_) => Err(SinkError::retriable(format!(
            "the Kafka producer dropped a message for {} without a report",
            p.topic
        ))),
    }
}

/// Keeps the error that decides the batch so far (`SinkError::worst`).
fn note(failed: &mut Option<SinkError>, outcome: Result<(), SinkError>) {
    if let Err(e) = outcome {
        *failed = SinkError::worst(failed.take().into_iter().chain([e]));
    }
}

/// The configured key columns' values from the row image (the after image, or the before image
/// of a delete).
fn configured_key(e: &ChangeEvent, columns: &[String]) -> Result<Row, SinkError> {
    let Some(image) = e.after.as_ref().or(e.before.as_ref()) else {
        return Ok(e.key.clone());
    };
    let mut values = Vec::with_capacity(columns.len());
    for name in columns {
        let Some(i) = image.columns.iter().position(|c| **c == **name) else {
            return Err(SinkError::permanent(format!(
                "{}.{} has no column `{name}` (key_columns)",
                e.db, e.table
            )));
        };
        values.push(image.values[i].clone());
    }
    Ok(Row {
        columns: columns.iter().map(|c| Arc::from(c.as_str())).collect(),
        values,
    })
}
