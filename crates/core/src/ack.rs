//! The ack tracker: the one place that decides the checkpoint (DESIGN.md invariant 2).
//!
//! Every record a source emits is registered here in binlog order and gets a sequence number, with
//! the number of sinks that must acknowledge it (zero for a transaction boundary). Sinks acknowledge
//! by sequence number, in any order across sinks. The checkpoint is the position of the last
//! boundary inside the longest fully acknowledged prefix of records, so it lies on a transaction
//! boundary, covers only what every sink delivered, and never moves backward.

use crate::position::Position;
use std::collections::VecDeque;

/// The sequence number of a registered record, increasing in binlog order.
pub type Seq = u64;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AckError {
    #[error("acknowledgement for record {0}, which is not pending")]
    NotPending(Seq),
}

#[derive(Debug)]
struct Slot {
    remaining: u32,
    boundary: Option<Position>,
}

#[derive(Debug)]
pub struct AckTracker {
    /// The sequence number of `pending[0]`.
    base: Seq,
    pending: VecDeque<Slot>,
    checkpoint: Option<Position>,
    /// Bumped on every checkpoint move, so a flusher can tell whether there is news to save.
    version: u64,
    /// The sequence numbers of the boundaries not yet behind `base`, in order.
    boundaries: VecDeque<Seq>,
}

impl AckTracker {
    /// A tracker whose checkpoint starts at `start` (the saved checkpoint, if any).
    pub fn new(start: Option<Position>) -> Self {
        AckTracker {
            base: 0,
            pending: VecDeque::new(),
            checkpoint: start,
            version: 0,
            boundaries: VecDeque::new(),
        }
    }

    /// Registers the next record in binlog order. `deliveries` is the number of acknowledgements it
    /// needs (one per sink it is routed to); `boundary` is set for a transaction boundary.
    pub fn register(&mut self, deliveries: u32, boundary: Option<Position>) -> Seq {
        let seq = self.base + self.pending.len() as Seq;
        if boundary.is_some() {
            self.boundaries.push_back(seq);
        }
        self.pending.push_back(Slot {
            remaining: deliveries,
            boundary,
        });
        self.advance();
        seq
    }

    /// One sink has delivered (or durably failure-logged) record `seq`.
    pub fn ack(&mut self, seq: Seq) -> Result<(), AckError> {
        let index = seq
            .checked_sub(self.base)
            .ok_or(AckError::NotPending(seq))?;
        let slot = self
            .pending
            .get_mut(index as usize)
            .filter(|slot| slot.remaining > 0)
            .ok_or(AckError::NotPending(seq))?;
        slot.remaining -= 1;
        if index == 0 {
            self.advance();
        }
        Ok(())
    }

    fn advance(&mut self) {
        while self.pending.front().is_some_and(|slot| slot.remaining == 0) {
            if let Some(slot) = self.pending.pop_front() {
                self.base += 1;
                if let Some(position) = slot.boundary {
                    self.checkpoint = Some(position);
                    self.version += 1;
                }
            }
        }
        while self.boundaries.front().is_some_and(|b| *b < self.base) {
            self.boundaries.pop_front();
        }
    }

    /// The position a restart may begin at: the end of the acknowledged prefix.
    pub fn checkpoint(&self) -> Option<&Position> {
        self.checkpoint.as_ref()
    }

    /// Changes whenever the checkpoint moves.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The boundary that ends the transaction of record `seq` (an unacknowledged one), once it
    /// is registered: records are registered in binlog order, and a transaction ends with one.
    pub fn boundary_after(&self, seq: Seq) -> Option<Seq> {
        self.boundaries.iter().copied().find(|b| *b > seq)
    }

    /// Records registered but not yet fully acknowledged.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_ending_a_transaction_is_known_once_registered() {
        let mut t = AckTracker::new(None);
        let first = t.register(1, None);
        let second = t.register(2, None);
        assert_eq!(t.boundary_after(first), None);
        let end = t.register(0, pos(10));
        let next = t.register(1, None);
        assert_eq!(t.boundary_after(first), Some(end));
        assert_eq!(t.boundary_after(second), Some(end));
        assert_eq!(t.boundary_after(next), None);
        let later = t.register(0, pos(20));
        assert_eq!(t.boundary_after(next), Some(later));
        // Once everything before it is acknowledged, a boundary is forgotten.
        for seq in [first, second, second, next] {
            t.ack(seq).unwrap();
        }
        assert!(t.boundaries.is_empty());
    }

    fn pos(p: u64) -> Option<Position> {
        Some(Position::new("b.000001", p))
    }

    #[test]
    fn checkpoint_waits_for_the_whole_prefix() {
        let mut t = AckTracker::new(pos(4));
        let a = t.register(1, None);
        let b = t.register(1, None);
        let _commit1 = t.register(0, pos(100));
        let c = t.register(1, None);
        let _commit2 = t.register(0, pos(200));
        // Later records acknowledged first do not move the checkpoint.
        t.ack(c).unwrap();
        t.ack(b).unwrap();
        assert_eq!(t.checkpoint(), pos(4).as_ref());
        // The first record completes the prefix through both commits.
        t.ack(a).unwrap();
        assert_eq!(t.checkpoint(), pos(200).as_ref());
        assert_eq!(t.in_flight(), 0);
    }

    #[test]
    fn checkpoint_only_at_boundaries() {
        let mut t = AckTracker::new(None);
        let a = t.register(1, None);
        t.ack(a).unwrap();
        assert_eq!(t.checkpoint(), None, "a change alone is not a boundary");
        t.register(0, pos(50));
        assert_eq!(t.checkpoint(), pos(50).as_ref());
    }

    #[test]
    fn every_sink_must_acknowledge() {
        let mut t = AckTracker::new(None);
        let a = t.register(2, None);
        t.register(0, pos(10));
        t.ack(a).unwrap();
        assert_eq!(t.checkpoint(), None);
        t.ack(a).unwrap();
        assert_eq!(t.checkpoint(), pos(10).as_ref());
    }

    #[test]
    fn rejects_unknown_and_repeated_acknowledgements() {
        let mut t = AckTracker::new(None);
        let a = t.register(1, None);
        assert_eq!(t.ack(a + 5), Err(AckError::NotPending(a + 5)));
        t.ack(a).unwrap();
        assert_eq!(t.ack(a), Err(AckError::NotPending(a)));
    }

    #[test]
    fn version_moves_with_the_checkpoint() {
        let mut t = AckTracker::new(None);
        let v0 = t.version();
        let a = t.register(1, None);
        t.register(0, pos(10));
        assert_eq!(t.version(), v0);
        t.ack(a).unwrap();
        assert!(t.version() > v0);
    }
}
