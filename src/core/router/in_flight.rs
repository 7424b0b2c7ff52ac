//! The router's requests in flight, for the operator: which model, at which peer, since
//! when, whether the first byte came and how many tokens have gone through so far. The
//! `InFlight` guard of an answer owns its row (dropping it, on success, failure or a
//! client gone, removes the row) and reports the first byte, what it forwards and the
//! end; those timings feed the peer's minute of figures (`peer_stats`).
//!
//! All times come from the injected clock. The table holds one row per attempt under
//! way, which the router's connection cap already bounds.

use std::collections::HashMap;
use std::sync::Arc;

use super::service::{InFlight, RouterService};
use crate::core::protocol::PublicKey;

/// A model name longer than this is cut for display; it is only ever shown.
const MODEL_CHARS: usize = 128;

/// One request under way, as the snapshot shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightView {
    pub model: String,
    pub peer: PublicKey,
    pub started_at_ms: u64,
    pub stream: bool,
    pub first_byte_at_ms: Option<u64>,
    /// Stream events forwarded (one token each for the engines we know), or 0.
    pub tokens: u64,
}

#[derive(Debug, Default)]
pub(super) struct InFlightTable {
    next: u64,
    rows: HashMap<u64, InFlightView>,
}

impl InFlightTable {
    fn open(&mut self, row: InFlightView) -> u64 {
        self.next += 1;
        self.rows.insert(self.next, row);
        self.next
    }

    pub(super) fn close(&mut self, id: u64) {
        self.rows.remove(&id);
    }
}

/// The `model` of a JSON request body, whatever its API; empty when it has none.
/// The model as the panel shows it: bounded, whatever the client sent.
fn shown_model(model: &str) -> String {
    model.chars().take(MODEL_CHARS).collect()
}

/// Stream events in `chunk` that carry something (not the closing `[DONE]`). An event
/// cut across two chunks may be missed: this is a live estimate, the receipt is exact.
fn events_in(chunk: &[u8]) -> u64 {
    const DATA: &[u8] = b"data:";
    let mut n = 0;
    let mut rest = chunk;
    while let Some(at) = rest.windows(DATA.len()).position(|w| w == DATA) {
        rest = &rest[at + DATA.len()..];
        if !rest.trim_ascii_start().starts_with(b"[DONE]") {
            n += 1;
        }
    }
    n
}

impl RouterService {
    /// Like `track`, and lists the request among those in flight until the guard drops.
    pub(super) fn track_answer(
        self: &Arc<Self>,
        peer: PublicKey,
        model: &str,
        stream: bool,
    ) -> InFlight {
        let mut guard = self.track(peer);
        let row = InFlightView {
            model: shown_model(model),
            peer,
            started_at_ms: self.now_ms(),
            stream,
            first_byte_at_ms: None,
            tokens: 0,
        };
        guard.row = Some(self.lock_in_flight().open(row));
        guard
    }

    pub(super) fn lock_in_flight(&self) -> std::sync::MutexGuard<'_, InFlightTable> {
        self.in_flight_rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The requests in flight, oldest first, at most `limit`, and how many there are.
    pub fn in_flight(&self, limit: usize) -> (Vec<InFlightView>, usize) {
        let table = self.lock_in_flight();
        let mut rows: Vec<(u64, &InFlightView)> = table.rows.iter().map(|(k, v)| (*k, v)).collect();
        rows.sort_by_key(|(id, _)| *id);
        let shown = rows.iter().take(limit).map(|(_, v)| (*v).clone()).collect();
        (shown, table.rows.len())
    }

    /// Output tokens per second this router received over the last minute, all peers.
    pub fn consumed_per_sec(&self) -> f64 {
        self.peer_speeds()
            .iter()
            .map(|(_, f)| f.tokens_per_sec)
            .sum()
    }
}

impl InFlight {
    /// Runs `f` on this request's row; `None` when it has none (a job offer).
    fn with_row<T>(&self, f: impl FnOnce(&mut InFlightView) -> T) -> Option<T> {
        let id = self.row?;
        self.service.lock_in_flight().rows.get_mut(&id).map(f)
    }

    /// The first byte of the answer came: the time to first token is measured here.
    pub(super) fn first_byte(&self) {
        let now = self.service.now_ms();
        let Some(started) = self.with_row(|row| {
            row.first_byte_at_ms = Some(now);
            row.started_at_ms
        }) else {
            return;
        };
        let ms = now.saturating_sub(started);
        self.service.speed(self.peer, |s| s.ttft(ms, now));
    }

    /// `chunk` went to the client: its events count as tokens so far.
    pub(super) fn sent(&self, chunk: &[u8]) {
        let events = events_in(chunk);
        if events > 0 {
            self.with_row(|row| row.tokens += events);
        }
    }

    /// The whole answer is in (and its receipt taken): its time is measured here.
    pub(super) fn finish(&self) {
        let now = self.service.now_ms();
        if let Some(started) = self.with_row(|row| row.started_at_ms) {
            let ms = now.saturating_sub(started);
            self.service.speed(self.peer, |s| s.answer(ms, now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::clock::ManualClock;
    use crate::core::ledger::{Ledger, LedgerWriter};
    use crate::core::peers::PeerBook;
    use crate::core::protocol::Identity;
    use crate::core::router::RouterConfig;
    use crate::core::store;

    const T0: u64 = 1_700_000_000_000;

    fn service(clock: &ManualClock) -> Arc<RouterService> {
        // The HTTP clients inside need one, as the node's start installs it.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let db = store::in_memory().unwrap();
        let ledger = Ledger::new(db.clone()).unwrap();
        let (writer, _thread) = LedgerWriter::spawn(ledger.clone(), None);
        let config = RouterConfig::new(Identity::from_seed([1; 32]), Arc::new(clock.clone()));
        RouterService::new(config, ledger, writer, PeerBook::new(db).unwrap()).unwrap()
    }

    /// A stream's life on the injected clock: listed while it runs with its tokens so
    /// far, timed at its first byte and its end, gone when its guard drops.
    #[tokio::test]
    async fn an_answer_is_listed_timed_and_forgotten() {
        let clock = ManualClock::new(T0);
        let r = service(&clock);
        let peer = Identity::from_seed([2; 32]).public();
        let guard = r.track_answer(peer, "llama3.1:8b", true);
        let whole = r.track_answer(peer, "qwen2.5:7b", false);
        let (rows, total) = r.in_flight(1);
        assert_eq!((rows.len(), total), (1, 2), "limited to 1, counted all");
        assert_eq!(
            (rows[0].model.as_str(), rows[0].stream),
            ("llama3.1:8b", true)
        );
        drop(whole);

        clock.advance(40);
        guard.first_byte();
        guard.sent(b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\n");
        guard.sent(b"data: {\"a\":3}\n\ndata: [DONE]\n\n");
        let (rows, total) = r.in_flight(10);
        assert_eq!(total, 1);
        assert_eq!(
            (rows[0].first_byte_at_ms, rows[0].tokens),
            (Some(T0 + 40), 3)
        );
        clock.advance(1_960);
        guard.finish();
        r.note_output(peer, 600, 2_000);
        drop(guard);

        assert_eq!(r.in_flight(10).1, 0, "the row goes with its guard");
        let speeds = r.peer_speeds();
        let (_, figures) = speeds.first().unwrap();
        assert_eq!(
            (figures.ttft_ms, figures.answer_ms),
            (Some(40), Some(2_000))
        );
        assert!((figures.tokens_per_sec - 10.0).abs() < 1e-9);
        assert!((r.consumed_per_sec() - 10.0).abs() < 1e-9);
        // A minute on, the rate is gone and the latest timings remain.
        clock.advance(61_000);
        let (_, later) = r.peer_speeds()[0];
        assert_eq!((later.tokens_per_sec, later.ttft_ms), (0.0, Some(40)));
    }

    #[test]
    fn a_long_model_name_is_bounded() {
        assert_eq!(shown_model("llama3.1:8b"), "llama3.1:8b");
        let long = "m".repeat(500);
        assert_eq!(shown_model(&long).chars().count(), MODEL_CHARS);
    }

    #[test]
    fn events_are_counted_but_not_the_end() {
        let cases: &[(&[u8], u64)] = &[
            (b"", 0),
            (b"data: {\"a\":1}\n\n", 1),
            (b"data: {\"a\":1}\n\ndata: {\"a\":2}\n\n", 2),
            (b"data: {\"a\":1}\n\ndata: [DONE]\n\n", 1),
            (b"data:[DONE]\n\n", 0),
            (b": keep-alive\n\n", 0),
        ];
        for (chunk, want) in cases {
            assert_eq!(
                events_in(chunk),
                *want,
                "{}",
                String::from_utf8_lossy(chunk)
            );
        }
    }
}
