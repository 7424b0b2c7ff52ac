//! Admission to the engine: `concurrency` requests run, up to `max_waiting` more wait in
//! line, and anything beyond is refused at once so a router can try another peer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug)]
pub struct Admission {
    slots: Arc<Semaphore>,
    concurrency: usize,
    max_waiting: usize,
    waiting: AtomicUsize,
    running: Arc<AtomicUsize>,
}

/// Held while a request runs; frees its slot on drop.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    running: Arc<AtomicUsize>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the worker's queue is full ({waiting} waiting for {concurrency} slots)")]
pub struct QueueFull {
    pub waiting: usize,
    pub concurrency: usize,
}

/// Decrements the waiting count however the wait ends (admitted, or the client left).
struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    pub fn new(concurrency: usize, max_waiting: usize) -> Self {
        let concurrency = concurrency.max(1);
        Admission {
            slots: Arc::new(Semaphore::new(concurrency)),
            concurrency,
            max_waiting,
            waiting: AtomicUsize::new(0),
            running: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub async fn admit(&self) -> Result<Slot, QueueFull> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(self.slot(permit));
        }
        let before = self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = WaitingGuard(&self.waiting);
        if before >= self.max_waiting {
            drop(guard);
            return Err(QueueFull {
                waiting: before,
                concurrency: self.concurrency,
            });
        }
        // The semaphore is never closed, so acquiring can only succeed.
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueFull {
                waiting: before,
                concurrency: self.concurrency,
            })?;
        drop(guard);
        Ok(self.slot(permit))
    }

    /// Waits for a slot in the same FIFO line as `admit`, without counting as waiting
    /// and without the `max_waiting` bound: for the worker's job dispatcher, which holds
    /// at most one place in line and whose queue has a bound of its own. `None` only if
    /// the semaphore were closed, which it never is.
    pub async fn admit_background(&self) -> Option<Slot> {
        let permit = self.slots.clone().acquire_owned().await.ok()?;
        Some(self.slot(permit))
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.running.fetch_add(1, Ordering::SeqCst);
        Slot {
            _permit: permit,
            running: self.running.clone(),
        }
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Requests this worker holds: running plus waiting.
    pub fn depth(&self) -> usize {
        self.waiting() + self.running()
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn admits_queues_and_refuses() {
        let a = Arc::new(Admission::new(1, 1));
        let first = a.admit().await.unwrap();
        assert_eq!((a.running(), a.waiting()), (1, 0));
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        // Wait until the second request is in line (state, not time).
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(a.depth(), 2);
        let refused = a.admit().await.unwrap_err();
        assert_eq!(refused.concurrency, 1);
        drop(first);
        waiter.await.unwrap().unwrap();
        assert_eq!((a.running(), a.waiting()), (0, 0));
    }

    #[tokio::test]
    async fn a_client_that_leaves_the_line_frees_its_place() {
        let a = Arc::new(Admission::new(1, 1));
        let _first = a.admit().await.unwrap();
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.admit().await.map(|_| ()) });
        while a.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(a.waiting(), 0);
    }
}
