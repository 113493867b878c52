//! librdkafka's errors as the sink's outcomes: a message too large is permanent (the failure log,
//! with its size); a missing topic, an unreachable broker, a timeout or any other broker error is
//! retriable, with what to check.

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rowbus_core::sink::SinkError;

/// An error of a request the sink made (`what`).
pub fn classify(e: &KafkaError, what: &str) -> SinkError {
    match e.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => SinkError::permanent(format!(
            "{what}: the message is larger than the broker takes ({e})"
        )),
        _ => SinkError::retriable(format!("{what}: {e}")),
    }
}

/// An error in a message's delivery report.
pub fn delivery(e: &KafkaError, topic: &str, bytes: usize) -> SinkError {
    let code = e.rdkafka_error_code();
    let hint = match code {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => {
            return SinkError::permanent(format!(
                "the broker refused a message of {bytes} bytes for topic {topic} as too large: raise the topic's max.message.bytes, or filter the column out"
            ));
        }
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) | Some(RDKafkaErrorCode::UnknownTopic) => {
            " (create the topic, or set create_topics = true)"
        }
        Some(RDKafkaErrorCode::MessageTimedOut) => {
            " (no broker acknowledged it within delivery_timeout: is the broker up and reachable?)"
        }
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => {
            " (the sink's principal may not write to the topic)"
        }
        _ => "",
    };
    SinkError::retriable(format!("delivering to topic {topic}: {e}{hint}"))
}
