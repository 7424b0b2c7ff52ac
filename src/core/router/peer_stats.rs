//! Per-peer figures the operator sees in the snapshot and the console, beside the
//! selection's own served/failed counts: receipts accepted, receipts refused (bad,
//! replayed or implausible), times the peer declined us (credit, limits, friends), and
//! how fast it answers — output tokens per second, time to first token and whole-answer
//! time over the last minute.
//!
//! The minute is a ring of 60 per-second buckets (`MinuteWindow`): fixed size whatever
//! the traffic, read and written with the injected clock, so it is tested without
//! sleeping. A receipt's tokens are spread over the seconds its answer took, so a long
//! stream does not show as one spike in the second it ended.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::service::RouterService;
use crate::core::protocol::PublicKey;

/// The window the rates are taken over.
pub const WINDOW_SECS: u64 = 60;
const SLOTS: usize = WINDOW_SECS as usize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerCounters {
    pub receipts: u64,
    pub refused_receipts: u64,
    pub declined: u64,
}

/// One second of one peer's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    /// The Unix second this bucket holds; another second's data in the slot is stale.
    second: u64,
    tokens: u64,
    ttft_ms: u64,
    ttfts: u64,
    answer_ms: u64,
    answers: u64,
}

/// The last minute of a peer's traffic, one bucket per second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MinuteWindow {
    buckets: [Bucket; SLOTS],
}

impl Default for MinuteWindow {
    fn default() -> Self {
        MinuteWindow {
            buckets: [Bucket::default(); SLOTS],
        }
    }
}

/// Whether `second` is inside the minute that ends with `now_s`.
fn in_window(second: u64, now_s: u64) -> bool {
    second <= now_s && second + WINDOW_SECS > now_s
}

impl MinuteWindow {
    /// The bucket of `second`, emptied first if it still holds an older second.
    fn slot(&mut self, second: u64) -> &mut Bucket {
        let bucket = &mut self.buckets[(second % WINDOW_SECS) as usize];
        if bucket.second != second {
            *bucket = Bucket {
                second,
                ..Bucket::default()
            };
        }
        bucket
    }

    /// `tokens` produced evenly over the `took_ms` before `now_ms`; what falls before
    /// the window is dropped, and the remainder of the division is one more token in
    /// each of the latest seconds.
    pub(crate) fn add_tokens(&mut self, tokens: u64, took_ms: u64, now_ms: u64) {
        let now_s = now_ms / 1000;
        let first_s = now_ms.saturating_sub(took_ms) / 1000;
        let seconds = now_s - first_s + 1;
        let (each, rest) = (tokens / seconds, tokens % seconds);
        for second in first_s.max(now_s.saturating_sub(WINDOW_SECS - 1))..=now_s {
            let extra = u64::from(now_s - second < rest);
            let bucket = self.slot(second);
            bucket.tokens = bucket.tokens.saturating_add(each + extra);
        }
    }

    pub(crate) fn add_ttft(&mut self, ms: u64, now_ms: u64) {
        let bucket = self.slot(now_ms / 1000);
        bucket.ttft_ms = bucket.ttft_ms.saturating_add(ms);
        bucket.ttfts += 1;
    }

    pub(crate) fn add_answer(&mut self, ms: u64, now_ms: u64) {
        let bucket = self.slot(now_ms / 1000);
        bucket.answer_ms = bucket.answer_ms.saturating_add(ms);
        bucket.answers += 1;
    }

    fn live(&self, now_ms: u64) -> impl Iterator<Item = &Bucket> {
        let now_s = now_ms / 1000;
        self.buckets
            .iter()
            .filter(move |b| in_window(b.second, now_s))
    }

    /// Tokens per second over the minute ending at `now_ms`.
    pub(crate) fn tokens_per_sec(&self, now_ms: u64) -> f64 {
        let tokens: u64 = self.live(now_ms).map(|b| b.tokens).sum();
        tokens as f64 / WINDOW_SECS as f64
    }

    /// Mean time to first token in the window, if any was measured.
    pub(crate) fn mean_ttft(&self, now_ms: u64) -> Option<u64> {
        let (sum, n) = self.live(now_ms).fold((0u64, 0u64), |(s, n), b| {
            (s.saturating_add(b.ttft_ms), n + b.ttfts)
        });
        sum.checked_div(n)
    }

    /// Mean whole-answer time in the window, and how many answers it is over.
    pub(crate) fn mean_answer(&self, now_ms: u64) -> (Option<u64>, u64) {
        let (sum, n) = self.live(now_ms).fold((0u64, 0u64), |(s, n), b| {
            (s.saturating_add(b.answer_ms), n + b.answers)
        });
        (sum.checked_div(n), n)
    }
}

/// A peer's window and its latest timings, kept for when the window is empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerSpeed {
    window: MinuteWindow,
    last_ttft_ms: Option<u64>,
    last_answer_ms: Option<u64>,
}

/// One peer's figures at `now_ms`, as the snapshot carries them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SpeedFigures {
    pub tokens_per_sec: f64,
    pub ttft_ms: Option<u64>,
    pub answer_ms: Option<u64>,
    pub answers: u64,
}

impl PeerSpeed {
    pub(crate) fn ttft(&mut self, ms: u64, now_ms: u64) {
        self.window.add_ttft(ms, now_ms);
        self.last_ttft_ms = Some(ms);
    }

    pub(crate) fn answer(&mut self, ms: u64, now_ms: u64) {
        self.window.add_answer(ms, now_ms);
        self.last_answer_ms = Some(ms);
    }

    pub(crate) fn figures(&self, now_ms: u64) -> SpeedFigures {
        let (answer_ms, answers) = self.window.mean_answer(now_ms);
        SpeedFigures {
            tokens_per_sec: self.window.tokens_per_sec(now_ms),
            ttft_ms: self.window.mean_ttft(now_ms).or(self.last_ttft_ms),
            answer_ms: answer_ms.or(self.last_answer_ms),
            answers,
        }
    }
}

impl RouterService {
    pub(super) fn count(&self, peer: PublicKey, bump: impl FnOnce(&mut PeerCounters)) {
        let mut map = self.peer_counters.lock().unwrap_or_else(|p| p.into_inner());
        bump(map.entry(peer).or_default());
    }

    /// The counters of every peer seen since start (peers removed since included).
    pub fn peer_counters(&self) -> HashMap<PublicKey, PeerCounters> {
        self.peer_counters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn note_declined(&self, peer: PublicKey) {
        self.count(peer, |c| c.declined += 1);
    }

    pub(super) fn speed(&self, peer: PublicKey, note: impl FnOnce(&mut PeerSpeed)) {
        let mut map = self.peer_speed.lock().unwrap_or_else(|p| p.into_inner());
        note(map.entry(peer).or_default());
    }

    /// A receipt of `peer` for `output_tokens` produced over `took_ms` was accepted.
    pub(super) fn note_output(&self, peer: PublicKey, output_tokens: u64, took_ms: u64) {
        let now = self.now_ms();
        self.speed(peer, |s| s.window.add_tokens(output_tokens, took_ms, now));
    }

    /// Every peer that answered since start, with its figures now.
    pub fn peer_speeds(&self) -> Vec<(PublicKey, SpeedFigures)> {
        let now = self.now_ms();
        self.peer_speed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(peer, speed)| (*peer, speed.figures(now)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    /// (what happens: tokens, took_ms, at ms after T0), read at ms after T0, tokens/s.
    #[test]
    fn tokens_per_second_table() {
        type Case = (&'static str, &'static [(u64, u64, u64)], u64, f64);
        let cases: &[Case] = &[
            ("nothing", &[], 0, 0.0),
            ("one answer, read at once", &[(600, 0, 0)], 0, 10.0),
            ("still inside the minute", &[(600, 0, 0)], 59_999, 10.0),
            ("a minute later it is gone", &[(600, 0, 0)], 60_000, 0.0),
            (
                "two answers add up",
                &[(300, 0, 0), (300, 0, 30_000)],
                30_000,
                10.0,
            ),
            (
                "the older one ages out",
                &[(300, 0, 0), (300, 0, 30_000)],
                60_500,
                5.0,
            ),
            // 120 tokens over 2 s, spread over seconds 0, 1, 2 (40 each): at 61 s only
            // second 2 is left.
            (
                "spread over the answer",
                &[(120, 2_000, 2_000)],
                61_000,
                40.0 / 60.0,
            ),
            ("spread, all inside", &[(120, 2_000, 2_000)], 2_000, 2.0),
            // A 10-minute answer: only the last minute's share counts.
            (
                "longer than the window",
                &[(6_000, 600_000, 600_000)],
                600_000,
                600.0 / 60.0 * 60.0 / 60.0,
            ),
        ];
        for (name, events, read_at, want) in cases {
            let mut w = MinuteWindow::default();
            for &(tokens, took, at) in *events {
                w.add_tokens(tokens, took, T0 + at);
            }
            let got = w.tokens_per_sec(T0 + read_at);
            assert!((got - want).abs() < 0.05, "{name}: {got} != {want}");
        }
    }

    #[test]
    fn a_slot_reused_a_minute_later_starts_empty() {
        let mut w = MinuteWindow::default();
        w.add_tokens(600, 0, T0);
        w.add_tokens(60, 0, T0 + 60_000);
        assert!((w.tokens_per_sec(T0 + 60_000) - 1.0).abs() < 1e-9);
        // A clock that steps back reads nothing from "the future" and does not panic.
        assert_eq!(w.tokens_per_sec(T0 - 5_000), 0.0);
        w.add_tokens(60, 10_000, T0 - 5_000);
    }

    #[test]
    fn timings_are_means_of_the_minute_else_the_latest() {
        let mut s = PeerSpeed::default();
        assert_eq!(s.figures(T0), SpeedFigures::default());
        s.ttft(100, T0);
        s.ttft(300, T0 + 1_000);
        s.answer(1_000, T0 + 1_000);
        s.answer(3_000, T0 + 2_000);
        let now = s.figures(T0 + 2_000);
        assert_eq!(
            (now.ttft_ms, now.answer_ms, now.answers),
            (Some(200), Some(2_000), 2)
        );
        // The minute has passed: the latest measures stand in, and no answer counts.
        let later = s.figures(T0 + 120_000);
        assert_eq!(
            (later.ttft_ms, later.answer_ms, later.answers),
            (Some(300), Some(3_000), 0)
        );
    }
}
