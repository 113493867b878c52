//! Queues bounded by count of events and by bytes (DESIGN.md invariant 4). A sender waits while
//! either bound is reached, so a slow consumer slows the producer instead of growing memory. An
//! item counts for the events it carries (`Counted`: a run of changes counts each) until the
//! consumer takes it. Its bytes count until it is processed: when the consumer drops what it took
//! with `recv_many` (`release_all` gives a batch back at once), or, for `recv`, when it asks for
//! the next item after those taken from the channel in the same go. `recv` takes up to 256 items
//! at once, so a queue holds at most that many more than its count.

use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Limits of one queue.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// The most events queued (an item carrying several counts each).
    pub max_items: usize,
    pub max_bytes: usize,
}

/// How many events an item counts for against its queue's count bound: one, unless it carries
/// several (a run of changes).
pub trait Counted {
    fn count(&self) -> usize {
        1
    }
}

/// An item taken from a queue; its bytes count against the queue until it is dropped (taken by
/// `recv_many`) or until the next `recv` after its group (taken by `recv`).
#[derive(Debug)]
pub struct Queued<T> {
    pub item: T,
    /// The size it was sent with.
    pub bytes: usize,
    /// The bytes; `None` once `recv` holds them for the consumer.
    budget: Option<OwnedSemaphorePermit>,
    /// The count; `None` once taken from the channel.
    slots: Option<OwnedSemaphorePermit>,
}

/// Gives the count of items just taken from the channel back at once.
fn free_slots<T>(taken: &mut [Queued<T>]) {
    let mut merged = None;
    for queued in taken {
        merge(&mut merged, queued.slots.take());
    }
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
    /// The count bound, in events.
    slots: Arc<Semaphore>,
    max_items: usize,
}

impl<T> Clone for QueueSender<T> {
    fn clone(&self) -> Self {
        QueueSender {
            tx: self.tx.clone(),
            budget: self.budget.clone(),
            max_bytes: self.max_bytes,
            slots: self.slots.clone(),
            max_items: self.max_items,
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
    let max_items = limits.max_items.clamp(1, Semaphore::MAX_PERMITS);
    let (tx, rx) = mpsc::channel(max_items);
    (
        QueueSender {
            tx,
            budget: Arc::new(Semaphore::new(max_bytes)),
            max_bytes,
            slots: Arc::new(Semaphore::new(max_items)),
            max_items,
        },
        QueueReceiver {
            rx,
            taken: Vec::new(),
            handed_out: None,
        },
    )
}

impl<T: Counted> QueueSender<T> {
    /// Waits until the queue has room for the item's events and `bytes` more (an item larger than
    /// a whole budget waits for an empty queue), then enqueues.
    pub async fn send(&self, item: T, bytes: usize) -> Result<(), QueueClosed<T>> {
        use tokio::sync::mpsc::error::TrySendError;
        let count = item.count().clamp(1, self.max_items) as u32;
        let Some(count) = take(&self.slots, count).await else {
            return Err(QueueClosed(item));
        };
        let Some(budget) = take(&self.budget, bytes.clamp(1, self.max_bytes) as u32).await else {
            return Err(QueueClosed(item));
        };
        let queued = Queued {
            item,
            bytes,
            budget: Some(budget),
            slots: Some(count),
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

/// `n` permits of `semaphore`, waiting for them if need be; `None` once it is closed. Most sends
/// find room: taken at once, without registering as a waiter.
async fn take(semaphore: &Arc<Semaphore>, n: u32) -> Option<OwnedSemaphorePermit> {
    use tokio::sync::TryAcquireError;
    match semaphore.clone().try_acquire_many_owned(n) {
        Ok(permit) => Some(permit),
        Err(TryAcquireError::Closed) => None,
        Err(TryAcquireError::NoPermits) => semaphore.clone().acquire_many_owned(n).await.ok(),
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
            free_slots(&mut self.taken);
            self.taken.reverse();
        }
        let mut queued = self.taken.pop()?;
        merge(&mut self.handed_out, queued.budget.take());
        Some(queued)
    }

    /// The next item if one is waiting, without waiting.
    pub fn try_recv(&mut self) -> Option<Queued<T>> {
        self.taken.pop().or_else(|| {
            let mut queued = self.rx.try_recv().ok()?;
            queued.slots = None;
            Some(queued)
        })
    }

    /// Waits for at least one item, then takes up to `limit` that are ready. Returns 0 when the
    /// queue is closed and empty.
    pub async fn recv_many(&mut self, into: &mut Vec<Queued<T>>, limit: usize) -> usize {
        self.handed_out = None;
        if self.taken.is_empty() {
            let before = into.len();
            let count = self.rx.recv_many(into, limit).await;
            free_slots(&mut into[before..]);
            return count;
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

    impl Counted for u32 {}

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

    /// An item carrying `.0` events.
    struct Carrying(usize);

    impl Counted for Carrying {
        fn count(&self) -> usize {
            self.0
        }
    }

    #[tokio::test]
    async fn an_item_counts_for_the_events_it_carries() {
        let (tx, mut rx) = bounded::<Carrying>(QueueLimits {
            max_items: 10,
            max_bytes: 1000,
        });
        assert!(tx.send(Carrying(6), 1).await.is_ok());
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(Carrying(5), 1));
        assert!(
            blocked.await.is_err(),
            "6 + 5 events exceed the bound of 10"
        );
        assert!(tx.send(Carrying(4), 1).await.is_ok(), "6 + 4 fit");
        // Taken, they count no more (their bytes do, until processed); one item carrying more
        // than the whole bound passes alone.
        let mut taken = Vec::new();
        assert_eq!(rx.recv_many(&mut taken, 10).await, 2);
        let at_once = tokio::time::timeout(Duration::from_secs(5), tx.send(Carrying(50), 1));
        assert!(
            matches!(at_once.await, Ok(Ok(()))),
            "the bound was given back"
        );
        let blocked = tokio::time::timeout(Duration::from_millis(50), tx.send(Carrying(1), 1));
        assert!(blocked.await.is_err(), "the bound is full");
        assert_eq!(rx.recv_many(&mut taken, 10).await, 1);
        assert_eq!(
            taken.iter().map(|q| q.item.0).collect::<Vec<_>>(),
            [6, 4, 50]
        );
    }

    #[tokio::test]
    async fn sending_to_a_closed_queue_hands_the_item_back() {
        let (tx, rx) = queue(10, 1000);
        drop(rx);
        assert_eq!(tx.send(7, 1).await.unwrap_err().0, 7);
        assert_eq!(tx.bytes_in_use(), 0, "the refused item holds no bytes");
    }
}
