//! rowbus-transform: the steps users declare to filter, reshape and route changes (the pipeline's
//! `[[transforms]]`, before fan-out, and each sink's own), compiled once when the configuration
//! loads and applied per change in the order written. Predicates, computed fields and whole-event
//! scripts are Rhai expressions (`script`); docs/transforms.md describes every step.

mod config;
mod convert;
mod fast;
mod script;
mod step;
#[cfg(test)]
mod tests;

pub use config::{compile, Level, StepConfig};

use rowbus_core::event::ChangeEvent;
use rowbus_core::transform::{Output, Rejected, Targets, Transform};
use std::sync::Arc;
use step::{Step, Verdict};

/// A compiled chain of steps. Each clone keeps its own caches, so each task gets one.
#[derive(Clone)]
pub struct Chain {
    steps: Vec<Step>,
    /// Whether a step may fail after an earlier (or the same) step changed the change: then the
    /// change is kept as it came, for the failure log. Otherwise steps change it in place.
    keep_original: bool,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("steps", &self.labels())
            .finish()
    }
}

impl Chain {
    /// Each step's label, in order: `transforms[2] (mask)`.
    pub fn labels(&self) -> Vec<String> {
        self.steps.iter().map(Step::label).collect()
    }

    /// Each `copy` step's field path (`transforms[2].copy`) and the sinks it copies to.
    pub fn copies(&self) -> Vec<(String, Vec<usize>)> {
        self.steps
            .iter()
            .filter_map(|s| s.copies_to().map(|to| (format!("{}.copy", s.path), to)))
            .collect()
    }

    fn new(steps: Vec<Step>) -> Chain {
        let first_change = steps.iter().position(Step::changes_events);
        let keep_original = first_change.is_some_and(|i| steps[i..].iter().any(Step::may_fail));
        Chain {
            steps,
            keep_original,
        }
    }
}

impl Transform for Chain {
    fn apply(&mut self, event: Arc<ChangeEvent>, out: &mut Vec<Output>) -> Result<(), Rejected> {
        let start = out.len();
        let original = self.keep_original.then(|| event.clone());
        out.push(Output {
            event,
            targets: Targets::All,
        });
        for step in &mut self.steps {
            let mut i = start;
            while i < out.len() {
                match step.apply(&mut out[i]) {
                    Ok(Verdict::Keep) => i += 1,
                    Ok(Verdict::Drop) => {
                        out.remove(i);
                    }
                    Ok(Verdict::Copy(copy)) => {
                        out.insert(i + 1, copy);
                        i += 2;
                    }
                    Err(e) => {
                        // Without a kept original, no step changed anything yet: every output
                        // still holds the change as it came.
                        let event = match &original {
                            Some(original) => original.clone(),
                            None => out[i].event.clone(),
                        };
                        out.truncate(start);
                        return Err(Rejected {
                            event,
                            error: format!("{}: {e}", step.label()),
                        });
                    }
                }
            }
            if out.len() == start {
                break;
            }
        }
        Ok(())
    }
}
