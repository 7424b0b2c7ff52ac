//! Reads the control API's event stream: SSE events whose data is a `SequencedEvent`,
//! and `resync` events. Framing reuses the engine adapters' bounded line splitter.

use crate::core::engine::lines::{LineSplitter, MAX_LINE, SseDecoder, SseItem};
use crate::core::node::{EventItem, SequencedEvent};

use super::server::RESYNC_EVENT;

/// Turns bytes as they arrive into event items.
#[derive(Debug)]
pub(super) struct SseReader {
    lines: LineSplitter,
    decoder: SseDecoder,
    broken: bool,
}

impl Default for SseReader {
    fn default() -> Self {
        SseReader {
            lines: LineSplitter::new(MAX_LINE),
            decoder: SseDecoder::default(),
            broken: false,
        }
    }
}

impl SseReader {
    /// Items completed by `bytes`. A stream that breaks the framing yields nothing more
    /// (`is_broken`); the caller reconnects.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<EventItem> {
        let mut out = Vec::new();
        if self.broken {
            return out;
        }
        self.lines.push(bytes);
        loop {
            match self.lines.next_line() {
                Ok(Some(line)) => match self.decoder.line(&line) {
                    Ok(Some(item)) => out.extend(to_item(item)),
                    Ok(None) => {}
                    Err(_) => {
                        self.broken = true;
                        break;
                    }
                },
                Ok(None) => break,
                Err(_) => {
                    self.broken = true;
                    break;
                }
            }
        }
        out
    }

    pub(super) fn is_broken(&self) -> bool {
        self.broken
    }
}

fn to_item(item: SseItem) -> Option<EventItem> {
    match item {
        SseItem::Event {
            event: Some(name), ..
        } if name == RESYNC_EVENT => Some(EventItem::Resync),
        SseItem::Event { event: None, data } => match serde_json::from_str::<SequencedEvent>(&data)
        {
            Ok(e) => Some(EventItem::Event(e)),
            Err(e) => {
                // A newer node may send events this build does not know: skip them.
                tracing::debug!(error = %e, "skipping an event this build does not understand");
                None
            }
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::node::CoreEvent;

    #[test]
    fn events_resyncs_comments_and_unknowns_cut_anywhere() {
        let text = concat!(
            ": keep-alive\n\n",
            "id: 7\ndata: {\"seq\":7,\"atMs\":1,\"event\":{\"type\":\"peers-changed\"}}\n\n",
            "event: resync\ndata: {}\n\n",
            "id: 8\ndata: {\"seq\":8,\"atMs\":2,\"event\":{\"type\":\"from-the-future\"}}\n\n",
            "id: 9\r\ndata: {\"seq\":9,\"atMs\":3,\"event\":{\"type\":\"shutting-down\"}}\r\n\r\n",
        );
        let want = vec![
            EventItem::Event(SequencedEvent {
                seq: 7,
                at_ms: 1,
                event: CoreEvent::PeersChanged,
            }),
            EventItem::Resync,
            EventItem::Event(SequencedEvent {
                seq: 9,
                at_ms: 3,
                event: CoreEvent::ShuttingDown,
            }),
        ];
        for cut in 0..text.len() {
            let mut r = SseReader::default();
            let (a, b) = text.as_bytes().split_at(cut);
            let mut got = r.push(a);
            got.extend(r.push(b));
            assert_eq!(got, want, "cut at {cut}");
        }
    }
}
