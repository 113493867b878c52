//! The configured transforms outside the running pipeline, applied as the pipeline applies them
//! (the pipeline's chain, the sink's routing and tables, the sink's own chain): for
//! `rowbus failures replay`, which runs them again on a change they failed on, and for
//! `rowbus test-transform`.

use crate::config::{Config, SinkConfig};
use rowbus_core::event::ChangeEvent;
use rowbus_core::transform::Transform;
use rowbus_transform::Chain;
use std::sync::Arc;

/// One sink's view of the transforms, with chains of its own (made once, used for many changes).
pub struct SinkTransforms<'a> {
    sink: &'a SinkConfig,
    /// The sink's place among the sinks, which routes and copies name.
    index: Option<usize>,
    pipeline: Option<Chain>,
    own: Option<Chain>,
}

impl<'a> SinkTransforms<'a> {
    pub fn new(config: &Config, sink: &'a SinkConfig) -> Self {
        SinkTransforms {
            sink,
            index: config.sinks.iter().position(|s| s.name == sink.name),
            pipeline: config.transforms.clone(),
            own: sink.transforms.clone(),
        }
    }

    /// What the pipeline's transforms make of `event` for this sink: the outputs that target it
    /// and that its `tables` and `schema_changes` accept.
    pub fn pipeline(&mut self, event: Arc<ChangeEvent>) -> Result<Vec<Arc<ChangeEvent>>, String> {
        let outputs = match &mut self.pipeline {
            None => vec![(event, true)],
            Some(chain) => {
                let mut out = Vec::new();
                chain.apply(event, &mut out).map_err(|r| r.error)?;
                let index = self.index;
                let targeted = |o: &rowbus_core::transform::Output| {
                    index.is_some_and(|i| o.targets.includes(i))
                };
                out.into_iter()
                    .map(|o| (o.event.clone(), targeted(&o)))
                    .collect()
            }
        };
        let sink = self.sink;
        let accepts = |e: &ChangeEvent| {
            sink.tables.matches(&e.db, &e.table)
                && (sink.schema_changes || !e.op.is_schema_change())
        };
        Ok(outputs
            .into_iter()
            .filter(|(e, targeted)| *targeted && accepts(e))
            .map(|(e, _)| e)
            .collect())
    }

    /// What the sink's own transforms make of `event`.
    pub fn own(&mut self, event: Arc<ChangeEvent>) -> Result<Vec<Arc<ChangeEvent>>, String> {
        let Some(chain) = &mut self.own else {
            return Ok(vec![event]);
        };
        let mut out = Vec::new();
        chain.apply(event, &mut out).map_err(|r| r.error)?;
        Ok(out.into_iter().map(|o| o.event).collect())
    }

    /// What a failure record's change becomes: itself, or, when a transform failed on it, what
    /// the transforms of that stage (`pipeline` or `sink`) and those after it make of it now.
    pub fn replayed(
        &mut self,
        stage: &str,
        event: ChangeEvent,
    ) -> Result<Vec<Arc<ChangeEvent>>, String> {
        let event = Arc::new(event);
        let routed = match stage {
            "" => return Ok(vec![event]),
            "pipeline" => self.pipeline(event)?,
            _ => vec![event],
        };
        let mut events = Vec::new();
        for event in routed {
            events.extend(self.own(event)?);
        }
        Ok(events)
    }
}
