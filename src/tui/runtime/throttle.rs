//! Rate limit for snapshot reads. Events can ask for a refresh many times a second (a burst
//! of receipts, a flapping peer); this coalesces the asks into at most one read in flight
//! and at most one start per interval, and remembers an ask that came in meanwhile so the
//! screen always ends up current.

use std::time::Duration;

use tokio::time::Instant;

/// At most ten reads a second.
pub(super) const MIN_REFRESH_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub(super) struct RefreshThrottle {
    min_interval: Duration,
    last_started: Option<Instant>,
    in_flight: bool,
    wanted: bool,
}

impl RefreshThrottle {
    pub(super) fn new(min_interval: Duration) -> Self {
        RefreshThrottle {
            min_interval,
            last_started: None,
            in_flight: false,
            wanted: false,
        }
    }

    /// Somebody wants a fresh snapshot.
    pub(super) fn request(&mut self) {
        self.wanted = true;
    }

    /// When the next read may start, if one is owed and none is running.
    pub(super) fn due(&self, now: Instant) -> Option<Instant> {
        if !self.wanted || self.in_flight {
            return None;
        }
        let allowed = self
            .last_started
            .map_or(now, |last| (last + self.min_interval).max(now));
        Some(allowed)
    }

    pub(super) fn start(&mut self, now: Instant) {
        self.wanted = false;
        self.in_flight = true;
        self.last_started = Some(now);
    }

    pub(super) fn finish(&mut self) {
        self.in_flight = false;
    }

    /// True while a read runs or is owed.
    pub(super) fn busy(&self) -> bool {
        self.in_flight || self.wanted
    }
}

impl Default for RefreshThrottle {
    fn default() -> Self {
        RefreshThrottle::new(MIN_REFRESH_INTERVAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_request_starts_at_once() {
        let now = Instant::now();
        let mut throttle = RefreshThrottle::default();
        assert_eq!(throttle.due(now), None);
        throttle.request();
        assert_eq!(throttle.due(now), Some(now));
    }

    #[test]
    fn requests_during_a_read_coalesce_into_one_later_read() {
        let t0 = Instant::now();
        let mut throttle = RefreshThrottle::default();
        throttle.request();
        throttle.start(t0);
        for _ in 0..50 {
            throttle.request();
        }
        assert_eq!(throttle.due(t0), None, "one read at a time");
        throttle.finish();
        let at = t0 + Duration::from_millis(10);
        assert_eq!(throttle.due(at), Some(t0 + MIN_REFRESH_INTERVAL));
        let later = t0 + Duration::from_secs(1);
        assert_eq!(throttle.due(later), Some(later));
        throttle.start(later);
        throttle.finish();
        assert_eq!(throttle.due(later), None, "nothing owed any more");
        assert!(!throttle.busy());
    }
}
