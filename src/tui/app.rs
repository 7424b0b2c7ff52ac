//! `App`: everything the console shows and nothing it does. It holds the latest snapshot
//! (kept current by applying events), the selection in each panel, the focused panel, the
//! open modal or help overlay and the status line. Only `update` changes it.

use std::collections::VecDeque;

use crate::core::node::{CommandOutcome, PeerRow, SequencedEvent, Snapshot};
use crate::tui::keymap::Context;
use crate::tui::modal::Modal;
use crate::tui::theme::Theme;

/// Events kept after applying them, to replay over a snapshot that was taken before them.
pub(crate) const REPLAY_EVENTS: usize = 512;
/// How old live traffic figures may get before the snapshot is read again.
const LIVE_REFRESH_MS: u64 = 1_000;
/// A snapshot this old has nothing live left: its minute of figures has passed.
const LIVE_FOR_MS: u64 = 60_000;

/// The panels that take focus (queue and balance have nothing to select).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    Peers,
    Exclusions,
    Receipts,
}

impl Panel {
    pub const ORDER: [Panel; 3] = [Panel::Peers, Panel::Exclusions, Panel::Receipts];

    pub fn next(self) -> Panel {
        match self {
            Panel::Peers => Panel::Exclusions,
            Panel::Exclusions => Panel::Receipts,
            Panel::Receipts => Panel::Peers,
        }
    }

    pub fn prev(self) -> Panel {
        match self {
            Panel::Peers => Panel::Receipts,
            Panel::Exclusions => Panel::Peers,
            Panel::Receipts => Panel::Exclusions,
        }
    }
}

/// The selected row of each focusable panel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selection {
    pub peers: usize,
    pub exclusions: usize,
    pub receipts: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Success,
    Error,
}

/// The one-line message under the panels: the last thing the console has to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub tone: Tone,
    pub text: String,
}

#[derive(Debug)]
pub struct App {
    pub snapshot: Snapshot,
    /// False until the first snapshot arrived; the screen says "connecting" until then.
    pub loaded: bool,
    pub focus: Panel,
    pub selection: Selection,
    pub modal: Option<Modal>,
    pub help_open: bool,
    /// First help line shown when the help is taller than the terminal.
    pub help_scroll: u16,
    pub status: Option<Status>,
    pub last_outcome: Option<CommandOutcome>,
    pub theme: Theme,
    /// Rows a PageUp/PageDown moves, from the terminal height.
    pub page_rows: usize,
    /// The highest event sequence reflected on screen; older events are duplicates.
    pub(crate) applied_seq: u64,
    pub(crate) recent_events: VecDeque<SequencedEvent>,
    pub(crate) dirty: bool,
}

impl App {
    pub fn new(theme: Theme) -> Self {
        App {
            snapshot: Snapshot::default(),
            loaded: false,
            focus: Panel::Peers,
            selection: Selection::default(),
            modal: None,
            help_open: false,
            help_scroll: 0,
            status: None,
            last_outcome: None,
            theme,
            page_rows: 10,
            applied_seq: 0,
            recent_events: VecDeque::new(),
            dirty: true,
        }
    }

    /// Where keys go now: help first, then an open modal, then the dashboard.
    pub fn context(&self) -> Context {
        if self.help_open {
            Context::Help
        } else if let Some(modal) = &self.modal {
            modal.context()
        } else {
            Context::Dashboard
        }
    }

    /// The highest sequence number seen, for resuming a subscription without gaps.
    pub fn last_seq(&self) -> u64 {
        self.applied_seq.max(self.snapshot.seq)
    }

    /// True when the screen changed since the last draw; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// True while something on screen counts down or moves (requests in flight, rates
    /// of the last minute), so the runtime ticks once a second; otherwise it sleeps until
    /// input or an event arrives.
    pub fn needs_tick(&self, now_ms: u64) -> bool {
        let counting = |until: u64| until > now_ms;
        self.traffic_live(now_ms)
            || self
                .snapshot
                .exclusions
                .iter()
                .any(|e| counting(e.until_ms))
            || self
                .snapshot
                .peers
                .iter()
                .filter_map(|p| p.excluded_until_ms)
                .any(counting)
    }

    /// Whether the traffic figures change without an event at `now_ms`: something is
    /// in flight, or tokens of the last minute are still ageing out of it, and the
    /// snapshot is less than that minute old (an older one has nothing live left).
    pub fn traffic_live(&self, now_ms: u64) -> bool {
        let t = &self.snapshot.traffic;
        let moving = !t.in_flight.is_empty()
            || t.consumed_per_sec > 0.0
            || t.served_per_sec > 0.0
            || t.peers
                .iter()
                .any(|p| p.tokens_per_sec > 0.0 || p.answers > 0);
        moving && now_ms.saturating_sub(self.snapshot.taken_at_ms) < LIVE_FOR_MS
    }

    /// Whether live traffic figures are old enough at `now_ms` to read the node again.
    pub fn traffic_stale(&self, now_ms: u64) -> bool {
        self.traffic_live(now_ms)
            && now_ms.saturating_sub(self.snapshot.taken_at_ms) >= LIVE_REFRESH_MS
    }

    pub fn selected_peer(&self) -> Option<&PeerRow> {
        self.snapshot.peers.get(self.selection.peers)
    }

    pub fn rows_in(&self, panel: Panel) -> usize {
        match panel {
            Panel::Peers => self.snapshot.peers.len(),
            Panel::Exclusions => self.snapshot.exclusions.len(),
            Panel::Receipts => self.snapshot.receipts.len(),
        }
    }

    pub fn selected_in(&self, panel: Panel) -> usize {
        match panel {
            Panel::Peers => self.selection.peers,
            Panel::Exclusions => self.selection.exclusions,
            Panel::Receipts => self.selection.receipts,
        }
    }

    fn selected_mut(&mut self, panel: Panel) -> &mut usize {
        match panel {
            Panel::Peers => &mut self.selection.peers,
            Panel::Exclusions => &mut self.selection.exclusions,
            Panel::Receipts => &mut self.selection.receipts,
        }
    }

    /// Moves the focused panel's selection by `delta` rows, stopping at either end.
    pub fn move_selection(&mut self, delta: isize) {
        let panel = self.focus;
        let last = self.rows_in(panel).saturating_sub(1);
        let current = self.selected_in(panel);
        let moved = current.saturating_add_signed(delta).min(last);
        *self.selected_mut(panel) = moved;
    }

    pub fn select_first(&mut self) {
        *self.selected_mut(self.focus) = 0;
    }

    pub fn select_last(&mut self) {
        let last = self.rows_in(self.focus).saturating_sub(1);
        *self.selected_mut(self.focus) = last;
    }

    /// Keeps every selection inside its table after rows went away.
    pub(crate) fn clamp_selections(&mut self) {
        for panel in Panel::ORDER {
            let last = self.rows_in(panel).saturating_sub(1);
            let selected = self.selected_mut(panel);
            *selected = (*selected).min(last);
        }
    }

    pub fn set_status(&mut self, tone: Tone, text: impl Into<String>) {
        self.status = Some(Status {
            tone,
            text: text.into(),
        });
        self.dirty = true;
    }
}
