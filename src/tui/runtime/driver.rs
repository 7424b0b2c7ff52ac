//! The event loop, independent of the real terminal: it waits on input, the node's event
//! stream, finished requests, a refresh slot and (only while a countdown or live traffic
//! is on screen) a one-second tick, which also re-reads live traffic figures; feeds
//! each to `update`; performs the commands it returns; and draws only when `App` says
//! something changed. Tests drive it with a `TestBackend` and a channel of messages.

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, Stream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::time::{Instant, MissedTickBehavior, sleep, sleep_until};

use super::throttle::RefreshThrottle;
use crate::core::clock::SharedClock;
use crate::core::node::{ClientError, EventItem, EventStream, NodeClient, NodeCommand};
use crate::tui::app::{App, Tone};
use crate::tui::msg::{Cmd, Msg};
use crate::tui::render::render;
use crate::tui::text;
use crate::tui::update::update;

/// How long quitting waits for commands already sent (an add-peer just confirmed).
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// How long the loop keeps applying replies after input ended.
const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Pause before subscribing again after the event stream broke.
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// A request to the node that finished.
enum Done {
    Subscribed(Result<EventStream, ClientError>),
    Snapshot(Msg),
    Command(Msg),
}

/// The loop is on its way out: by `by` at the latest, and once nothing it waits for is left.
#[derive(Debug, Clone, Copy)]
struct Stop {
    by: Instant,
    /// Input ended (keep the screen current until replies settle) rather than a quit.
    drain: bool,
}

/// Runs the console on `terminal` until the operator quits or `inputs` ends. When inputs
/// end, commands and refreshes already under way finish first (tests rely on this to see
/// the final screen); quitting waits only for commands, at most `QUIT_GRACE`.
pub async fn drive<B, I>(
    terminal: &mut Terminal<B>,
    client: Arc<dyn NodeClient>,
    app: &mut App,
    mut inputs: I,
    clock: SharedClock,
) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Display,
    I: Stream<Item = Msg> + Unpin,
{
    let mut pending: FuturesUnordered<BoxFuture<'static, Done>> = FuturesUnordered::new();
    let mut events: Option<EventStream> = None;
    let mut throttle = RefreshThrottle::default();
    let mut commands_in_flight = 0usize;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut stop: Option<Stop> = None;

    pending.push(subscribe(client.clone(), None, Duration::ZERO));
    if let Ok(size) = terminal.size() {
        update(app, Msg::Resize(size.width, size.height));
    }
    draw(terminal, app, &clock)?;

    loop {
        if let Some(stop) = stop
            && commands_in_flight == 0
            && !(stop.drain && throttle.busy())
        {
            break;
        }
        let ticking = app.needs_tick(clock.now_ms());
        let refresh_at = throttle
            .due(Instant::now())
            .filter(|_| stop.is_none_or(|s| s.drain));
        let stop_by = stop.map(|s| s.by);
        // Completions first: a reply that is already here is applied before the next key,
        // so keys act on the freshest state and quitting never races a finished command.
        let msg = tokio::select! {
            biased;
            Some(done) = pending.next(), if !pending.is_empty() => match done {
                Done::Subscribed(Ok(stream)) => {
                    events = Some(stream);
                    // Anything between the last snapshot and this subscription is unseen.
                    throttle.request();
                    None
                }
                Done::Subscribed(Err(error)) => {
                    app.set_status(Tone::Error, text::events_failed(&error.to_string()));
                    throttle.request();
                    pending.push(subscribe(client.clone(), None, RESUBSCRIBE_DELAY));
                    None
                }
                Done::Snapshot(msg) => {
                    throttle.finish();
                    Some(msg)
                }
                Done::Command(msg) => {
                    commands_in_flight -= 1;
                    Some(msg)
                }
            },
            item = next_event(&mut events) => match item {
                Some(item) => Some(Msg::Core(item)),
                None => {
                    events = None;
                    Some(Msg::EventsClosed)
                }
            },
            _ = sleep_until(refresh_at.unwrap_or_else(Instant::now)), if refresh_at.is_some() => {
                throttle.start(Instant::now());
                pending.push(fetch_snapshot(client.clone()));
                None
            }
            _ = sleep_until(stop_by.unwrap_or_else(Instant::now)), if stop_by.is_some() => break,
            _ = ticker.tick(), if ticking => {
                // Figures in flight move without events; read them again once a second.
                if app.traffic_stale(clock.now_ms()) {
                    throttle.request();
                }
                Some(Msg::Tick)
            }
            input = inputs.next(), if stop.is_none() => match input {
                Some(msg) => Some(msg),
                None => {
                    stop = Some(Stop { by: Instant::now() + DRAIN_GRACE, drain: true });
                    None
                }
            },
        };

        if let Some(msg) = msg {
            for cmd in update(app, msg) {
                match cmd {
                    Cmd::Quit => {
                        let by = Instant::now() + QUIT_GRACE;
                        let by = stop.map_or(by, |s| s.by.min(by));
                        stop = Some(Stop { by, drain: false });
                    }
                    Cmd::SendCommand(command) => {
                        commands_in_flight += 1;
                        pending.push(send_command(client.clone(), command));
                    }
                    Cmd::RefreshSnapshot => throttle.request(),
                    Cmd::Resubscribe { after } => {
                        pending.push(subscribe(client.clone(), after, RESUBSCRIBE_DELAY));
                    }
                }
            }
        }
        if stop.is_none_or(|s| s.drain) && app.take_dirty() {
            draw(terminal, app, &clock)?;
        }
    }
    Ok(())
}

fn draw<B>(terminal: &mut Terminal<B>, app: &App, clock: &SharedClock) -> anyhow::Result<()>
where
    B: Backend,
    B::Error: Display,
{
    let now_ms = clock.now_ms();
    terminal
        .draw(|frame| render(frame, app, now_ms))
        .map(drop)
        .map_err(|e| anyhow::anyhow!("cannot draw on the terminal: {e}"))
}

/// The next event, `None` when the stream ended; never resolves while there is no stream.
async fn next_event(events: &mut Option<EventStream>) -> Option<EventItem> {
    match events.as_mut() {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

fn subscribe(
    client: Arc<dyn NodeClient>,
    after: Option<u64>,
    delay: Duration,
) -> BoxFuture<'static, Done> {
    Box::pin(async move {
        if !delay.is_zero() {
            sleep(delay).await;
        }
        Done::Subscribed(client.subscribe(after).await)
    })
}

fn fetch_snapshot(client: Arc<dyn NodeClient>) -> BoxFuture<'static, Done> {
    Box::pin(async move {
        Done::Snapshot(match client.snapshot().await {
            Ok(snapshot) => Msg::SnapshotLoaded(Box::new(snapshot)),
            Err(error) => Msg::SnapshotFailed(error),
        })
    })
}

fn send_command(client: Arc<dyn NodeClient>, command: NodeCommand) -> BoxFuture<'static, Done> {
    Box::pin(async move {
        let result = client.command(command.clone()).await;
        Done::Command(Msg::CommandDone { command, result })
    })
}
