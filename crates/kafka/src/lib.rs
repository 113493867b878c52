//! rowbus-kafka: the Kafka source, for Kafka between capture and apply. It reads topics of
//! rowbus's native JSON, Debezium's envelope or Maxwell's JSON (`parse`) and feeds their changes
//! to the pipeline like a binlog, each message followed by a boundary holding the offsets after it
//! (`offsets`), so that the same ack tracker that checkpoints binlog positions checkpoints
//! offsets; `source` runs the consumer and commits the checkpointed offsets to the group.

pub mod config;
pub mod offsets;
pub mod parse;
pub mod source;

pub use config::{KafkaSourceConfig, Start};
pub use parse::InFormat;
pub use source::run_source;
