//! rowbus-core: the pieces every source and sink shares and that touch no network: the change event
//! model, binlog positions, byte-bounded queues, the ack tracker (the one place that decides the
//! checkpoint), the checkpoint store, table filters, the sink contract, runs of changes carried as one record, the transform seam and the pipeline runtime
//! that wires a source to its sinks.

pub mod ack;
pub mod backoff;
pub mod checkpoint;
pub mod control;
pub mod delivery;
pub mod event;
pub mod failure;
#[doc(hidden)]
pub mod fixture;
pub mod metrics;
pub mod pipeline;
pub mod position;
pub mod queue;
pub mod runs;
pub mod secret;
pub mod sink;
pub mod snapshot;
pub mod table_filter;
pub mod transform;
pub mod value;

pub use event::{ChangeEvent, Op, Row, SourceEvent, SourceInfo};
pub use position::Position;
pub use value::Value;
