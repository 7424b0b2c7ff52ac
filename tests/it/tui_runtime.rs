//! The console's loop (`drive`) against a fake node, on a `TestBackend`, with keys fed
//! through a channel: keystrokes become commands, the node's replies and events reach the
//! screen, bursts of events do not turn into bursts of snapshot reads, and a broken event
//! stream is re-subscribed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, StreamExt};
use lobstah::core::clock::ManualClock;
use lobstah::core::node::{
    ClientError, CommandOutcome, CoreEvent, EventItem, EventStream, NodeClient, NodeCommand,
    PeerHealth, PeerRow, SequencedEvent, Snapshot,
};
use lobstah::tui::fixture::{FIXED_NOW_MS, pubkey, sample_snapshot};
use lobstah::tui::{App, Msg, Theme, drive};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

/// A node in memory: applies commands to its snapshot and announces them as events.
struct FakeNode {
    snapshot: Mutex<Snapshot>,
    subscribers: Mutex<Vec<mpsc::UnboundedSender<EventItem>>>,
    commands: Mutex<Vec<NodeCommand>>,
    snapshot_reads: AtomicUsize,
    subscriptions: AtomicUsize,
    /// Events the console has taken off its streams.
    delivered: Arc<AtomicUsize>,
}

impl FakeNode {
    fn new() -> Arc<Self> {
        Arc::new(FakeNode {
            snapshot: Mutex::new(sample_snapshot(FIXED_NOW_MS)),
            subscribers: Mutex::new(Vec::new()),
            commands: Mutex::new(Vec::new()),
            snapshot_reads: AtomicUsize::new(0),
            delivered: Arc::new(AtomicUsize::new(0)),
            subscriptions: AtomicUsize::new(0),
        })
    }

    fn emit(&self, event: CoreEvent) {
        let seq = {
            let mut snap = self.snapshot.lock().expect("lock");
            snap.seq += 1;
            snap.seq
        };
        let item = EventItem::Event(SequencedEvent {
            seq,
            at_ms: FIXED_NOW_MS,
            event,
        });
        let mut subscribers = self.subscribers.lock().expect("lock");
        subscribers.retain(|tx| tx.send(item.clone()).is_ok());
    }

    fn close_streams(&self) {
        self.subscribers.lock().expect("lock").clear();
    }

    fn reads(&self) -> usize {
        self.snapshot_reads.load(Ordering::SeqCst)
    }
}

impl NodeClient for FakeNode {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, ClientError>> {
        Box::pin(async move {
            self.snapshot_reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.snapshot.lock().expect("lock").clone())
        })
    }

    fn subscribe(&self, _after: Option<u64>) -> BoxFuture<'_, Result<EventStream, ClientError>> {
        Box::pin(async move {
            self.subscriptions.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = mpsc::unbounded_channel();
            self.subscribers.lock().expect("lock").push(tx);
            let delivered = self.delivered.clone();
            let stream = stream::unfold(rx, move |mut rx| {
                let delivered = delivered.clone();
                async move {
                    let item = rx.recv().await?;
                    delivered.fetch_add(1, Ordering::SeqCst);
                    Some((item, rx))
                }
            });
            Ok(stream.boxed())
        })
    }

    fn command(&self, command: NodeCommand) -> BoxFuture<'_, Result<CommandOutcome, ClientError>> {
        Box::pin(async move {
            self.commands.lock().expect("lock").push(command.clone());
            let message = match command {
                NodeCommand::AddPeer { pubkey, url, label } => {
                    let row = PeerRow {
                        pubkey,
                        label: label.clone(),
                        url,
                        transport: None,
                        link_addrs: Vec::new(),
                        path: None,
                        rtt_ms: None,
                        source: "manual".into(),
                        models: Vec::new(),
                        tier: None,
                        health: PeerHealth::Unknown,
                        excluded_until_ms: None,
                        exclusion_reason: None,
                        unreachable_reason: None,
                        queue_depth: None,
                        latency_ms: None,
                        served: 0,
                        failed: 0,
                        receipts: 0,
                        refused_receipts: 0,
                        declined: 0,
                    };
                    self.snapshot.lock().expect("lock").peers.push(row);
                    self.emit(CoreEvent::PeersChanged);
                    format!("added {}", label.unwrap_or_default())
                }
                other => format!("did {other:?}"),
            };
            Ok(CommandOutcome { ok: true, message })
        })
    }
}

fn key(code: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn screen(terminal: &Terminal<TestBackend>) -> String {
    let buffer = terminal.backend().buffer();
    let width = usize::from(buffer.area.width);
    buffer
        .content
        .chunks(width)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>() + "\n")
        .collect()
}

type Inputs = (mpsc::UnboundedSender<Msg>, stream::BoxStream<'static, Msg>);

fn inputs() -> Inputs {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    (tx, stream.boxed())
}

/// Waits (briefly, with a deadline) until `condition` holds.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn adding_a_peer_with_keystrokes_reaches_the_node_and_the_screen() {
    let node = FakeNode::new();
    let (tx, input_stream) = inputs();
    let mut terminal = Terminal::new(TestBackend::new(120, 40)).expect("terminal");
    let mut app = App::new(Theme::colored());
    let clock = Arc::new(ManualClock::new(FIXED_NOW_MS));
    let new_key = pubkey(42);

    let script = async {
        eventually("the first snapshot", || node.reads() >= 1).await;
        tx.send(key(KeyCode::Char('a'))).expect("send");
        tx.send(Msg::Paste(new_key.clone())).expect("send");
        tx.send(key(KeyCode::Tab)).expect("send");
        for c in "http://10.9.8.7:17474".chars() {
            tx.send(key(KeyCode::Char(c))).expect("send");
        }
        tx.send(key(KeyCode::Tab)).expect("send");
        for c in "attic-box".chars() {
            tx.send(key(KeyCode::Char(c))).expect("send");
        }
        tx.send(key(KeyCode::Enter)).expect("send");
        drop(tx);
    };
    let client: Arc<dyn NodeClient> = node.clone();
    let (result, ()) = tokio::join!(
        drive(&mut terminal, client, &mut app, input_stream, clock),
        script
    );
    result.expect("drive");

    let commands = node.commands.lock().expect("lock").clone();
    assert_eq!(
        commands,
        vec![NodeCommand::AddPeer {
            pubkey: new_key,
            url: "http://10.9.8.7:17474".into(),
            label: Some("attic-box".into()),
        }]
    );
    let text = screen(&terminal);
    assert!(
        text.contains("attic-box"),
        "the new peer is on screen:\n{text}"
    );
    assert!(text.contains("Peers (6)"), "{text}");
    assert!(
        text.contains("added attic-box"),
        "the outcome is on the status line:\n{text}"
    );
}

#[tokio::test]
async fn a_burst_of_events_reads_the_snapshot_a_few_times_not_a_hundred() {
    let node = FakeNode::new();
    let (tx, input_stream) = inputs();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut app = App::new(Theme::colored());
    let clock = Arc::new(ManualClock::new(FIXED_NOW_MS));

    let script = async {
        eventually("the first snapshot", || node.reads() >= 1).await;
        for _ in 0..100 {
            node.emit(CoreEvent::PeersChanged);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(tx);
    };
    let client: Arc<dyn NodeClient> = node.clone();
    let (result, ()) = tokio::join!(
        drive(&mut terminal, client, &mut app, input_stream, clock),
        script
    );
    result.expect("drive");
    let reads = node.reads();
    assert!(
        (2..=4).contains(&reads),
        "{reads} snapshot reads for 100 events"
    );
    assert_eq!(
        app.snapshot.seq, 200,
        "the screen ends on the node's latest state"
    );
}

#[tokio::test]
async fn quitting_ends_the_loop_and_an_idle_console_reads_once() {
    let node = FakeNode::new();
    let (tx, input_stream) = inputs();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut app = App::new(Theme::colored());
    let clock = Arc::new(ManualClock::new(FIXED_NOW_MS));
    let script = async {
        eventually("the first snapshot", || node.reads() >= 1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(key(KeyCode::Char('q'))).expect("send");
        // The sender stays open: `q` alone must end the loop.
        tx
    };
    let client: Arc<dyn NodeClient> = node.clone();
    let run = tokio::time::timeout(Duration::from_secs(5), async {
        tokio::join!(
            drive(&mut terminal, client, &mut app, input_stream, clock),
            script
        )
    });
    let (result, _tx) = run.await.expect("q ends the loop");
    result.expect("drive");
    assert_eq!(node.reads(), 1, "nothing happened, so nothing was re-read");
    assert!(screen(&terminal).contains("mac-studio"));
}

#[tokio::test]
async fn a_closed_event_stream_is_subscribed_again() {
    let node = FakeNode::new();
    let (tx, input_stream) = inputs();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let mut app = App::new(Theme::colored());
    let clock = Arc::new(ManualClock::new(FIXED_NOW_MS));
    let script = async {
        eventually("the first snapshot", || node.reads() >= 1).await;
        node.close_streams();
        eventually("a second subscription", || {
            node.subscriptions.load(Ordering::SeqCst) >= 2
        })
        .await;
        eventually("a re-read after it", || node.reads() >= 2).await;
        let before = node.delivered.load(Ordering::SeqCst);
        // Like a real node: the state changes, then the event announces it. A snapshot
        // read the throttle still has queued must not undo what the event showed.
        node.snapshot.lock().expect("lock").advertising.on = true;
        node.emit(CoreEvent::AdvertisingChanged { on: true });
        // Taken off the stream means applied: update() runs in the same poll.
        eventually("the event is taken", || {
            node.delivered.load(Ordering::SeqCst) > before
        })
        .await;
        drop(tx);
    };
    let client: Arc<dyn NodeClient> = node.clone();
    let (result, ()) = tokio::join!(
        drive(&mut terminal, client, &mut app, input_stream, clock),
        script
    );
    result.expect("drive");
    assert!(
        app.snapshot.advertising.on,
        "events flow on the new subscription"
    );
    assert!(screen(&terminal).contains("advertising ON"));
}
