//! Keeping `App.snapshot` current between snapshot reads: events the console can apply
//! itself (a receipt, an exclusion, advertising, queue) are applied in place; the rest ask
//! for a fresh snapshot. Events newer than a loaded snapshot are replayed over it, so a
//! snapshot taken a moment before an event cannot undo it on screen.

use crate::core::node::{
    CoreEvent, ExclusionRow, NET_HISTORY_POINTS, PeerHealth, SNAPSHOT_RECEIPTS, SequencedEvent,
    Snapshot,
};
use crate::tui::app::{App, Panel, REPLAY_EVENTS, Tone};
use crate::tui::format::{peer_name, printable};
use crate::tui::msg::Cmd;
use crate::tui::text;

/// Rejections kept for display; the snapshot brings the node's own list on refresh.
const REJECTIONS_KEPT: usize = 50;

/// A new event from the stream. Duplicates (already in the snapshot or applied) are dropped.
pub(crate) fn on_event(app: &mut App, event: SequencedEvent) -> Vec<Cmd> {
    if event.seq <= app.last_seq() {
        return Vec::new();
    }
    let refresh = apply(app, &event.event);
    app.applied_seq = event.seq;
    app.recent_events.push_back(event);
    if app.recent_events.len() > REPLAY_EVENTS {
        app.recent_events.pop_front();
    }
    app.mark_dirty();
    if refresh {
        vec![Cmd::RefreshSnapshot]
    } else {
        Vec::new()
    }
}

/// A snapshot arrived: take it, replay newer events over it, keep the selected peer selected.
pub(crate) fn load_snapshot(app: &mut App, snapshot: Snapshot) {
    let selected_pubkey = app.selected_peer().map(|p| p.pubkey.clone());
    let newer: Vec<SequencedEvent> = app
        .recent_events
        .iter()
        .filter(|e| e.seq > snapshot.seq)
        .cloned()
        .collect();
    app.recent_events.retain(|e| e.seq > snapshot.seq);
    app.applied_seq = snapshot.seq;
    app.snapshot = snapshot;
    app.loaded = true;
    // A refresh for these was already asked for when they first arrived; replaying them
    // only has to put their visible effect back.
    for event in newer {
        apply(app, &event.event);
        app.applied_seq = event.seq;
    }
    if let Some(pubkey) = selected_pubkey
        && let Some(index) = app.snapshot.peers.iter().position(|p| p.pubkey == pubkey)
    {
        app.selection.peers = index;
    }
    app.clamp_selections();
    app.mark_dirty();
}

/// The daemon may have restarted with a new sequence; forget what was applied so its
/// events are not dropped as duplicates.
pub(crate) fn forget_sequence(app: &mut App) {
    app.applied_seq = 0;
    app.snapshot.seq = 0;
    app.recent_events.clear();
}

/// Applies one event to the snapshot; true when the snapshot must be re-read to be right.
fn apply(app: &mut App, event: &CoreEvent) -> bool {
    let snap = &mut app.snapshot;
    match event {
        CoreEvent::Receipt { receipt, balance } => {
            if !snap.receipts.iter().any(|r| r.seq == receipt.seq) {
                snap.receipts.insert(0, receipt.clone());
                snap.receipts.truncate(SNAPSHOT_RECEIPTS);
                // Keep the row under the cursor when the operator is reading older receipts.
                if app.focus == Panel::Receipts && app.selection.receipts > 0 {
                    app.selection.receipts += 1;
                }
            }
            snap.balance = *balance;
            snap.net_history.push(balance.net);
            let excess = snap.net_history.len().saturating_sub(NET_HISTORY_POINTS);
            snap.net_history.drain(..excess);
            // Peer counters and latency changed with the request; only the node knows them.
            true
        }
        CoreEvent::ReceiptRejected { rejection } => {
            let peer = peer_name(None, &rejection.peer);
            let message = text::receipt_rejected(&peer, &printable(&rejection.reason));
            snap.rejections.insert(0, rejection.clone());
            snap.rejections.truncate(REJECTIONS_KEPT);
            app.set_status(Tone::Error, message);
            false
        }
        CoreEvent::PeersChanged => true,
        CoreEvent::PeerExcluded {
            pubkey,
            reason,
            until_ms,
        } => {
            let mut label = None;
            if let Some(peer) = snap.peers.iter_mut().find(|p| &p.pubkey == pubkey) {
                peer.health = PeerHealth::Excluded;
                peer.excluded_until_ms = Some(*until_ms);
                peer.exclusion_reason = Some(reason.clone());
                label = peer.label.clone();
            }
            let row = ExclusionRow {
                pubkey: pubkey.clone(),
                label,
                reason: reason.clone(),
                until_ms: *until_ms,
            };
            match snap.exclusions.iter_mut().find(|e| &e.pubkey == pubkey) {
                Some(existing) => *existing = row,
                None => snap.exclusions.push(row),
            }
            false
        }
        CoreEvent::PeerReadmitted { pubkey } => {
            snap.exclusions.retain(|e| &e.pubkey != pubkey);
            if let Some(peer) = snap.peers.iter_mut().find(|p| &p.pubkey == pubkey) {
                // Not measured since; the node's next snapshot says how it is doing.
                peer.health = PeerHealth::Unknown;
                peer.excluded_until_ms = None;
                peer.exclusion_reason = None;
            }
            app.clamp_selections();
            true
        }
        CoreEvent::AdvertisingChanged { on } => {
            snap.advertising.on = *on;
            false
        }
        CoreEvent::Heartbeat { result } => {
            snap.advertising.last_heartbeat = Some(result.clone());
            false
        }
        CoreEvent::QueueChanged { queue } => {
            snap.queue = *queue;
            false
        }
        CoreEvent::EngineChanged { engine } => {
            snap.engine = engine.clone();
            false
        }
        CoreEvent::BalanceChanged { balance } => {
            snap.balance = *balance;
            false
        }
        CoreEvent::OwedChanged { owed } => {
            snap.owed = owed.clone();
            false
        }
        CoreEvent::ShuttingDown => {
            app.set_status(Tone::Error, text::NODE_SHUTTING_DOWN);
            false
        }
    }
}
