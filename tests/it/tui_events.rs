//! How `update` keeps the view current from the node's events and replies: events applied
//! in place, duplicates dropped, refreshes asked for only when needed, newer events
//! replayed over an older snapshot, and command outcomes shown on the status line.

use lobstah::core::node::{
    BalanceView, ClientError, CommandOutcome, CoreEvent, EventItem, NodeCommand, OwedView,
    PeerHealth, QueueStatus, ReceiptRole, ReceiptRow, SequencedEvent,
};
use lobstah::tui::fixture::{FIXED_NOW_MS, pubkey, sample_snapshot};
use lobstah::tui::{App, Cmd, Msg, Theme, Tone, update};

fn loaded() -> App {
    let mut app = App::new(Theme::monochrome());
    update(
        &mut app,
        Msg::SnapshotLoaded(Box::new(sample_snapshot(FIXED_NOW_MS))),
    );
    app
}

fn event(seq: u64, event: CoreEvent) -> Msg {
    Msg::Core(EventItem::Event(SequencedEvent {
        seq,
        at_ms: FIXED_NOW_MS,
        event,
    }))
}

fn receipt_event(seq: u64, net: i64) -> CoreEvent {
    CoreEvent::Receipt {
        receipt: ReceiptRow {
            seq,
            completed_at_ms: FIXED_NOW_MS,
            role: ReceiptRole::Earned,
            peer: pubkey(4),
            peer_label: Some("laptop".into()),
            model: "llama3.1:8b".into(),
            input_tokens: 10,
            output_tokens: 20,
        },
        balance: BalanceView {
            earned: 9_000,
            spent: 3_870,
            pending_earned: 0,
            pending_spent: 0,
            net,
            available: 15_130,
            receipts: 43,
        },
    }
}

#[test]
fn a_receipt_is_shown_at_once_and_the_rest_is_refreshed() {
    let mut app = loaded();
    let history = app.snapshot.net_history.len();
    let cmds = update(&mut app, event(101, receipt_event(101, 5_130)));
    assert_eq!(
        cmds,
        vec![Cmd::RefreshSnapshot],
        "peer counters come from the node"
    );
    assert_eq!(app.snapshot.receipts[0].seq, 101, "newest first");
    assert_eq!(app.snapshot.balance.net, 5_130);
    assert_eq!(app.snapshot.net_history.len(), history + 1);
    assert_eq!(app.snapshot.net_history.last(), Some(&5_130));

    assert!(
        update(&mut app, event(101, receipt_event(101, 5_130))).is_empty(),
        "duplicate"
    );
    assert!(
        update(&mut app, event(90, CoreEvent::PeersChanged)).is_empty(),
        "already in snapshot"
    );
}

#[test]
fn exclusion_and_readmission_are_applied_in_place() {
    let mut app = loaded();
    let until = FIXED_NOW_MS + 30_000;
    let excluded = CoreEvent::PeerExcluded {
        pubkey: pubkey(1),
        reason: "timeout".into(),
        until_ms: until,
    };
    assert!(update(&mut app, event(101, excluded)).is_empty());
    let studio = &app.snapshot.peers[0];
    assert_eq!(studio.health, PeerHealth::Excluded);
    assert_eq!(studio.excluded_until_ms, Some(until));
    assert_eq!(app.snapshot.exclusions.len(), 2);
    assert_eq!(
        app.snapshot.exclusions[1].label.as_deref(),
        Some("mac-studio")
    );

    let readmitted = CoreEvent::PeerReadmitted { pubkey: pubkey(1) };
    assert_eq!(
        update(&mut app, event(102, readmitted)),
        vec![Cmd::RefreshSnapshot]
    );
    assert_eq!(app.snapshot.exclusions.len(), 1);
    assert_eq!(app.snapshot.peers[0].excluded_until_ms, None);
}

#[test]
fn small_events_need_no_refresh() {
    let mut app = loaded();
    let queue = QueueStatus {
        running: 4,
        waiting: 9,
        concurrency: 4,
        jobs: lobstah::core::node::JobCounts {
            queued: 7,
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(update(&mut app, event(101, CoreEvent::QueueChanged { queue })).is_empty());
    assert_eq!(app.snapshot.queue, queue);
    assert!(
        update(
            &mut app,
            event(102, CoreEvent::AdvertisingChanged { on: true })
        )
        .is_empty()
    );
    assert!(app.snapshot.advertising.on);
    assert_eq!(
        update(&mut app, event(103, CoreEvent::PeersChanged)),
        vec![Cmd::RefreshSnapshot]
    );
    update(&mut app, event(104, CoreEvent::ShuttingDown));
    assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Error));
}

#[test]
fn resync_and_a_lost_stream_recover() {
    let mut app = loaded();
    assert_eq!(
        update(&mut app, Msg::Core(EventItem::Resync)),
        vec![Cmd::RefreshSnapshot]
    );
    let cmds = update(&mut app, Msg::EventsClosed);
    assert!(cmds.contains(&Cmd::Resubscribe { after: None }), "{cmds:?}");
    // A restarted daemon counts from 1 again; its events must not be taken for duplicates.
    update(
        &mut app,
        event(1, CoreEvent::AdvertisingChanged { on: true }),
    );
    assert!(app.snapshot.advertising.on);
}

#[test]
fn events_newer_than_a_snapshot_are_replayed_over_it() {
    let mut app = loaded();
    update(&mut app, event(105, receipt_event(105, 7_000)));
    // A snapshot read before receipt 105 reached the node's view must not hide it.
    let mut older = sample_snapshot(FIXED_NOW_MS);
    older.seq = 103;
    update(&mut app, Msg::SnapshotLoaded(Box::new(older)));
    assert_eq!(app.snapshot.receipts[0].seq, 105);
    assert_eq!(app.snapshot.balance.net, 7_000);
    assert_eq!(app.last_seq(), 105);

    // A snapshot that includes it replaces the replay.
    let mut newer = sample_snapshot(FIXED_NOW_MS);
    newer.seq = 106;
    update(&mut app, Msg::SnapshotLoaded(Box::new(newer)));
    assert_eq!(app.snapshot.receipts[0].seq, 100);
}

#[test]
fn the_selected_peer_stays_selected_when_rows_move() {
    let mut app = loaded();
    update(
        &mut app,
        Msg::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::End,
        )),
    );
    let selected = app.selected_peer().map(|p| p.pubkey.clone());
    let mut reordered = sample_snapshot(FIXED_NOW_MS);
    reordered.seq = 120;
    reordered.peers.reverse();
    update(&mut app, Msg::SnapshotLoaded(Box::new(reordered)));
    assert_eq!(app.selected_peer().map(|p| p.pubkey.clone()), selected);
    assert_eq!(app.selection.peers, 0);

    let mut app = loaded();
    update(
        &mut app,
        Msg::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::End,
        )),
    );
    let mut fewer = sample_snapshot(FIXED_NOW_MS);
    fewer.seq = 121;
    fewer.peers.truncate(2);
    update(&mut app, Msg::SnapshotLoaded(Box::new(fewer)));
    assert_eq!(app.selection.peers, 1, "clamped when the peer is gone");
}

#[test]
fn command_outcomes_reach_the_status_line() {
    let mut app = loaded();
    let ok = Msg::CommandDone {
        command: NodeCommand::SetAdvertising { on: true },
        result: Ok(CommandOutcome {
            ok: true,
            message: "advertising on".into(),
        }),
    };
    assert_eq!(update(&mut app, ok), vec![Cmd::RefreshSnapshot]);
    assert!(
        app.snapshot.advertising.on,
        "shown before the event arrives"
    );
    assert_eq!(app.status.as_ref().map(|s| s.tone), Some(Tone::Success));

    let refused = Msg::CommandDone {
        command: NodeCommand::SyncPeers,
        result: Ok(CommandOutcome {
            ok: false,
            message: "no trackers configured".into(),
        }),
    };
    update(&mut app, refused);
    let status = app.status.clone().expect("status");
    assert_eq!(status.tone, Tone::Error);
    assert!(status.text.contains("no trackers configured"));

    let failed = Msg::CommandDone {
        command: NodeCommand::SyncPeers,
        result: Err(ClientError::Unreachable("connection refused".into())),
    };
    assert!(update(&mut app, failed).is_empty());
    assert!(
        app.status
            .as_ref()
            .is_some_and(|s| s.text.contains("connection refused"))
    );
    assert_eq!(app.last_outcome.as_ref().map(|o| o.ok), Some(false));
}

#[test]
fn ticks_only_while_something_counts_down() {
    let app = loaded();
    assert!(
        app.needs_tick(FIXED_NOW_MS),
        "gpu-box is excluded for 23 s more"
    );
    assert!(
        !app.needs_tick(FIXED_NOW_MS + 60_000),
        "nothing left to count"
    );
    assert!(!App::new(Theme::monochrome()).needs_tick(FIXED_NOW_MS));
}

#[test]
fn what_requesters_owe_is_replaced_in_place_without_a_refresh() {
    let mut app = loaded();
    assert_eq!(app.snapshot.owed.rows.len(), 2);
    let settled = OwedView {
        rows: Vec::new(),
        cap: Some(50_000),
        ..OwedView::default()
    };
    let cmds = update(
        &mut app,
        event(
            101,
            CoreEvent::OwedChanged {
                owed: settled.clone(),
            },
        ),
    );
    assert!(cmds.is_empty(), "{cmds:?}");
    assert_eq!(app.snapshot.owed, settled);
}
