//! The node's event bus: every `CoreEvent` gets the next sequence number, is kept in a
//! ring of recent events and is broadcast to subscribers. A subscriber may resume after a
//! sequence number it saw; if the ring no longer holds what came after it (or it lagged
//! behind the broadcast), it gets `EventItem::Resync` and re-reads the snapshot.

use std::collections::VecDeque;
use std::sync::Mutex;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::client::{EventItem, EventStream};
use super::types::{CoreEvent, SequencedEvent};

/// Events kept for subscribers that resume.
pub const RING_CAPACITY: usize = 1024;

pub struct EventBus {
    inner: Mutex<Inner>,
}

struct Inner {
    last_seq: u64,
    ring: VecDeque<SequencedEvent>,
    capacity: usize,
    /// `None` once closed: subscribers drain what was sent, then their streams end.
    tx: Option<broadcast::Sender<SequencedEvent>>,
}

impl EventBus {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let (tx, _) = broadcast::channel(capacity);
        EventBus {
            inner: Mutex::new(Inner {
                last_seq: 0,
                ring: VecDeque::with_capacity(capacity),
                capacity,
                tx: Some(tx),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers, keeps and broadcasts `event`; returns its sequence number (0 if closed).
    pub fn publish(&self, at_ms: u64, event: CoreEvent) -> u64 {
        let mut inner = self.lock();
        if inner.tx.is_none() {
            return 0;
        }
        inner.last_seq += 1;
        let sequenced = SequencedEvent {
            seq: inner.last_seq,
            at_ms,
            event,
        };
        if inner.ring.len() == inner.capacity {
            inner.ring.pop_front();
        }
        inner.ring.push_back(sequenced.clone());
        // Sent under the lock, so broadcast order is sequence order. No receivers is fine.
        if let Some(tx) = &inner.tx {
            let _ = tx.send(sequenced);
        }
        inner.last_seq
    }

    /// The sequence number of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Ends every subscription once it has received what was published.
    pub fn close(&self) {
        self.lock().tx = None;
    }

    /// Events after `after` (only new ones when `None`): the ring's backlog, then live
    /// ones, with no gap and no repeat between the two.
    pub fn subscribe(&self, after: Option<u64>) -> EventStream {
        let inner = self.lock();
        let mut backlog: Vec<EventItem> = Vec::new();
        if let Some(after) = after {
            let oldest = inner.ring.front().map_or(inner.last_seq + 1, |e| e.seq);
            if after > inner.last_seq || after + 1 < oldest {
                // From the future (another run of the node) or older than the ring.
                backlog.push(EventItem::Resync);
            } else {
                backlog.extend(
                    inner
                        .ring
                        .iter()
                        .filter(|e| e.seq > after)
                        .cloned()
                        .map(EventItem::Event),
                );
            }
        }
        let Some(tx) = &inner.tx else {
            return futures_util::stream::iter(backlog).boxed();
        };
        let rx = tx.subscribe();
        drop(inner);
        let live = futures_util::stream::unfold(rx, |mut rx| async move {
            match rx.recv().await {
                Ok(event) => Some((EventItem::Event(event), rx)),
                Err(broadcast::error::RecvError::Lagged(_)) => Some((EventItem::Resync, rx)),
                Err(broadcast::error::RecvError::Closed) => None,
            }
        });
        futures_util::stream::iter(backlog).chain(live).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(items: &[EventItem]) -> Vec<Option<u64>> {
        items
            .iter()
            .map(|i| match i {
                EventItem::Event(e) => Some(e.seq),
                EventItem::Resync => None,
            })
            .collect()
    }

    async fn take(stream: EventStream, n: usize) -> Vec<EventItem> {
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.take(n).collect())
            .await
            .expect("events in time")
    }

    #[tokio::test]
    async fn resume_table() {
        // After six events a ring of four holds 3..=6; one more (7) arrives live.
        let cases: [(Option<u64>, Vec<Option<u64>>); 7] = [
            (None, vec![Some(7)]),
            (Some(6), vec![Some(7)]),
            (Some(4), vec![Some(5), Some(6), Some(7)]),
            (Some(2), vec![Some(3), Some(4), Some(5), Some(6), Some(7)]),
            (Some(1), vec![None, Some(7)]),
            (Some(0), vec![None, Some(7)]),
            (Some(99), vec![None, Some(7)]),
        ];
        for (after, want) in cases {
            let bus = EventBus::new(4);
            for i in 0..6 {
                bus.publish(i, CoreEvent::PeersChanged);
            }
            let stream = bus.subscribe(after);
            bus.publish(7, CoreEvent::ShuttingDown);
            let got = take(stream, want.len()).await;
            assert_eq!(seqs(&got), want, "after {after:?}");
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_told_to_resync_and_close_ends_streams() {
        let bus = EventBus::new(2);
        let stream = bus.subscribe(None);
        for i in 0..5 {
            bus.publish(i, CoreEvent::PeersChanged);
        }
        bus.close();
        let got: Vec<EventItem> = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.collect::<Vec<_>>(),
        )
        .await
        .unwrap();
        assert_eq!(seqs(&got), [None, Some(4), Some(5)]);
        assert_eq!(bus.publish(9, CoreEvent::PeersChanged), 0, "closed");
    }
}
