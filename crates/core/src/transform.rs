//! The seam between the pipeline and the transforms (the `rowbus-transform` crate): a `Transform`
//! turns one change into zero or more, each for the sinks its routing chose. The pipeline's own
//! transforms run in the router, before fan-out; a sink's run in its worker, before delivery. An
//! error is the event's, not the stream's: the event goes to the failure log and the stream goes on.

use crate::event::ChangeEvent;
use std::sync::Arc;

/// Which sinks an output goes to; each sink's own `tables` still applies.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Every sink (the default routing).
    All,
    /// Only these sinks, by their index in the configuration.
    Only(Arc<[usize]>),
}

impl Targets {
    pub fn includes(&self, sink: usize) -> bool {
        match self {
            Targets::All => true,
            Targets::Only(sinks) => sinks.contains(&sink),
        }
    }
}

/// One event a transform produced.
#[derive(Debug, Clone)]
pub struct Output {
    pub event: Arc<ChangeEvent>,
    pub targets: Targets,
}

/// A change a transform failed on: as it came in, and the error, which names the step.
#[derive(Debug)]
pub struct Rejected {
    pub event: Arc<ChangeEvent>,
    pub error: String,
}

/// A chain of transform steps, ready to apply (it may keep caches, hence `&mut`).
pub trait Transform: Send {
    /// Pushes what `event` becomes onto `out` (nothing when it is filtered out). Taking the change
    /// lets a chain change it in place when nothing else holds it. An error leaves `out` as it was.
    fn apply(&mut self, event: Arc<ChangeEvent>, out: &mut Vec<Output>) -> Result<(), Rejected>;
}
