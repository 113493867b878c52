//! Queues bounded by count and by bytes (DESIGN.md invariant 4). A sender waits while either bound
//! is reached, so a slow consumer slows the producer instead of growing memory. The byte budget is
//! held by each queued item and given back after processing: when the consumer drops what it took
//! with `recv_many` (`release_all` gives a batch back at once), or, for `recv`, when it asks for
//! the next item after those taken from the channel in the same go. `recv` takes up to 256 items
//! from the channel at once, freeing their slots, so a queue holds at most that many more than
//! its count.

use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Limits of one queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_items: usize,
    pub max_bytes: usize,
}

/// An item taken from a queue; its bytes count against the queue until it is dropped (taken by
/// `recv_many`) or until the next `recv` after its group (taken by `recv`).
#[derive(Debug)]
pub struct Queued<T> {
    pub item: T,
    /// The size it was sent with.
    pub bytes: usize,
    /// `None` once `recv` holds the bytes for the consumer.
    budget: Option<OwnedSemaphorePermit>,
}

/// Drops processed items, giving their bytes back to the queue at once (one wake of a waiting
/// sender rather than one per item).
pub fn release_all<T>(items: &mut Vec<Queued<T>>) {
    let mut merged: Option<OwnedSemaphorePermit> = None;
    for queued in items.iter_mut() {
        merge(&mut merged, queued.budget.take());
    }
    items.clear();
}

fn merge(into: &mut Option<OwnedSemaphorePermit>, permit: Option<OwnedSemaphorePermit>) {
    match (into.as_mut(), permit) {
        (Some(held), Some(permit)) => held.merge(permit),
        (None, permit) => *into = permit,
        (_, None) => {}
    }
}

pub struct QueueSender<T> {
    tx: mpsc::Sender<Queued<T>>,
    budget: Arc<Semaphore>,
    max_bytes: usize,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            max_bytes: self.max_bytes,
        }
    }
}

pub struct QueueReceiver<T> {
    rx: mpsc::Receiver<Queued<T>>,
    /// Items taken from `rx` in one go, last first, not handed out yet: one wake of the channel
    /// and one release of its slots serve many `recv`s. `is_empty` counts them.
    taken: Vec<Queued<T>>,
    /// The bytes of the items `recv` handed out since it last took from `rx`: given back at
    /// once when it takes again, that is once the consumer has processed them all.
    handed_out: Option<OwnedSemaphorePermit>,
}

/// How many items one `recv` takes from the channel at most.
const TAKE: usize = 256;

/// The receiving side is gone; the item is handed back.
#[derive(Debug)]
pub struct QueueClosed<T>(pub T);

pub fn bounded<T>(limits: QueueLimits) -> (QueueSender<T>, QueueReceiver<T>) {
    let max_bytes = limits.max_bytes.clamp(1, Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::channel(limits.max_items.max(1));
    let budget = Arc::new(Semaphore::new(max_bytes));
    (
        QueueSender {
            tx,
            budget,
            max_bytes,
        },
        QueueReceiver {
            rx,
            taken: Vec::new(),
            handed_out: None,
        },
    )
}

impl<T> QueueSender<T> {
    /// Waits until the queue has room for `bytes` more (an item larger than the whole budget waits
    /// for an empty queue), then enqueues.
    pub async fn send(&self, item: T, bytes: usize) -> Result<(), QueueClosed<T>> {
        use tokio::sync::{mpsc::error::TrySendError, TryAcquireError};
        let want = bytes.clamp(1, self.max_bytes) as u32;
        // Most sends find room: taken at once, without registering as a waiter.
        let permit = match self.budget.clone().try_acquire_many_owned(want) {
            Ok(permit) => permit,
            Err(TryAcquireError::Closed) => return Err(QueueClosed(item)),
            Err(TryAcquireError::NoPermits) => {
                match self.budget.clone().acquire_many_owned(want).await {
                    Ok(permit) => permit,
                    Err(_) => return Err(QueueClosed(item)),
                }
            }
        };
        let queued = Queued {
            item,
            bytes,
            budget: Some(permit),
        };
        match self.tx.try_send(queued) {
            Ok(()) => Ok(()),
            Err(TrySendError::Closed(queued)) => Err(QueueClosed(queued.item)),
            Err(TrySendError::Full(queued)) => self
                .tx
                .send(queued)
                .await
                .map_err(|e| QueueClosed(e.0.item)),
        }
    }

    /// Bytes currently held by queued (or in-process) items.
    pub fn bytes_in_use(&self) -> usize {
        self.max_bytes - self.budget.available_permits()
    }
}

impl<T> QueueReceiver<T> {
    /// Whether nothing waits in the queue now.
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty() && self.rx.is_empty()
    }

    /// The next item. Its bytes count against the queue until the consumer asks for more
    /// after the last item taken with it.
    pub async fn recv(&mut self) -> Option<Queued<T>> {
        if self.taken.is_empty() {
            self.handed_out = None;
            self.rx.recv_many(&mut self.taken, TAKE).await;
            self.taken.reverse();
        }
        let mut queued = self.taken.pop()?;
        merge(&mut self.handed_out, queued.budget.take());
        Some(queued)
    }

    /// The next item if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Queued<T>> {
        self.taken.pop().or_else(|| self.rx.try_recv().ok())
    }

    /// Waits for at least one item, then takes up to `limit` that are ready. Returns 0 when the
    /// queue is closed and empty.
    pub async fn recv_many(&mut self, into: &mut Vec<Queued<T>>, limit: usize) -> usize {
        self.handed_out = None;
        if self.taken.is_empty() {
            return self.rx.recv_many(into, limit).await;
        }
        let before = into.len();
        while into.len() - before < limit {
            match self.try_recv() {
                Some(queued) => into.push(queued),
                None => break,
            }
        }
        into.len() - before
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue(max_items: usize, max_bytes: usize) -> (QueueSender<u32>, QueueReceiver<u32>) {
        bounded(QueueLimits {
            max_items,
            max_bytes,
        })
    }

    #[tokio::test]
    async fn sender_waits_for_bytes() {
        let (tx, mut rx) = queue(100, 10);
        tx.send(1, 6).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(2, 6)).await;
        assert!(
            blocked.is_err(),
            "second item must wait for the byte budget"
        );
        assert_eq!(tx.bytes_in_use(), 6);
        let first = rx.recv().await.unwrap();
        assert_eq!(first.item, 1);
        drop(first);
        assert_eq!(
            tx.bytes_in_use(),
            6,
            "held until the consumer asks for more"
        );
        let (sent, third) = tokio::join!(tx.send(3, 6), rx.recv());
        sent.unwrap();
        assert_eq!(third.unwrap().item, 3);
    }

    #[tokio::test]
    async fn items_taken_in_one_go_give_their_bytes_back_together() {
        let (tx, mut rx) = queue(100, 10);
        for i in 0..3 {
            tx.send(i, 2).await.unwrap();
        }
        assert_eq!(rx.recv().await.unwrap().item, 0);
        assert_eq!(tx.bytes_in_use(), 6, "the other two are still queued");
        assert_eq!(rx.recv().await.unwrap().item, 1);
        assert_eq!(rx.recv().await.unwrap().item, 2);
        assert_eq!(tx.bytes_in_use(), 6, "processed, not yet given back");
        tx.send(3, 2).await.unwrap();
        assert_eq!(rx.recv().await.unwrap().item, 3);
        assert_eq!(tx.bytes_in_use(), 2, "the first three given back at once");
        let mut held = Vec::new();
        tx.send(4, 2).await.unwrap();
        tx.send(5, 2).await.unwrap();
        assert_eq!(rx.recv_many(&mut held, 10).await, 2);
        assert_eq!(tx.bytes_in_use(), 4, "the item before them was given back");
        release_all(&mut held);
        assert_eq!(tx.bytes_in_use(), 0);
        assert!(held.is_empty());
    }

    #[tokio::test]
    async fn oversized_item_passes_alone() {
        let (tx, mut rx) = queue(100, 10);
        tx.send(1, 1000).await.unwrap();
        assert_eq!(tx.bytes_in_use(), 10);
        assert_eq!(rx.recv().await.unwrap().item, 1);
        let (sent, second) = tokio::join!(tx.send(2, 1000), rx.recv());
        sent.unwrap();
        assert_eq!(
            second.unwrap().item,
            2,
            "the second waited for the first to be processed"
        );
        assert_eq!(tx.bytes_in_use(), 10);
    }

    #[tokio::test]
    async fn sender_waits_for_count() {
        let (tx, mut rx) = queue(1, 1000);
        tx.send(1, 1).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(2, 1)).await;
        assert!(blocked.is_err(), "second item must wait for a free slot");
        assert_eq!(rx.recv().await.unwrap().item, 1);
    }

    #[tokio::test]
    async fn a_waiting_sender_goes_on_when_a_slot_frees() {
        let (tx, mut rx) = queue(1, 1000);
        tx.send(1, 1).await.unwrap();
        let (sent, first) = tokio::join!(tx.send(2, 1), rx.recv());
        sent.unwrap();
        assert_eq!(first.unwrap().item, 1);
        assert_eq!(rx.recv().await.unwrap().item, 2);
    }

    #[tokio::test]
    async fn sending_to_a_closed_queue_hands_the_item_back() {
        let (tx, rx) = queue(10, 1000);
        drop(rx);
        assert_eq!(tx.send(7, 1).await.unwrap_err().0, 7);
        assert_eq!(tx.bytes_in_use(), 0, "the refused item holds no bytes");
    }
}
