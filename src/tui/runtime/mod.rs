//! Running the console on the real terminal: `run` sets the terminal up (and restores it
//! on exit, error or panic), turns terminal input and termination signals into `Msg`s,
//! and hands everything to the driver loop.

mod driver;
mod terminal;
mod throttle;

pub use driver::drive;
pub use terminal::restore as restore_terminal;

use std::io::{IsTerminal, stdout};
use std::sync::Arc;

use anyhow::Context as _;
use crossterm::event::{Event, EventStream};
use futures_util::future::ready;
use futures_util::stream::{self, BoxStream, StreamExt};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::core::clock::system_clock;
use crate::core::node::NodeClient;
use crate::tui::app::App;
use crate::tui::msg::Msg;
use crate::tui::theme::Theme;
use terminal::TerminalGuard;

/// Runs the operator console against `client` until the operator quits. Nothing is printed
/// to stdout or stderr while it draws: send logs to a file first (`tui::log_to_file`).
pub async fn run(client: Arc<dyn NodeClient>) -> anyhow::Result<()> {
    if !stdout().is_terminal() {
        anyhow::bail!(
            "the console needs a terminal; use `lobstah status` or `lobstah --headless` instead"
        );
    }
    let guard = TerminalGuard::enter().context("cannot put the terminal in full-screen mode")?;
    let mut terminal =
        Terminal::new(CrosstermBackend::new(stdout())).context("cannot open the terminal")?;
    let mut app = App::new(Theme::from_env());
    let inputs = stream::select(terminal_inputs(), termination_signals());
    let result = drive(&mut terminal, client, &mut app, inputs, system_clock()).await;
    drop(guard);
    result
}

/// The terminal's keys, pastes and resizes. A read error ends the stream (and the console),
/// since a terminal that cannot be read will not recover.
fn terminal_inputs() -> BoxStream<'static, Msg> {
    EventStream::new()
        .take_while(|event| ready(event.is_ok()))
        .filter_map(|event| ready(event.ok().and_then(msg_from_terminal)))
        .boxed()
}

/// The terminal events the console reacts to; mouse and focus events are ignored.
pub fn msg_from_terminal(event: Event) -> Option<Msg> {
    match event {
        Event::Key(key) => Some(Msg::Key(key)),
        Event::Paste(text) => Some(Msg::Paste(text)),
        Event::Resize(width, height) => Some(Msg::Resize(width, height)),
        Event::FocusGained | Event::FocusLost | Event::Mouse(_) => None,
    }
}

/// SIGTERM and SIGHUP (the terminal closing) leave like `q`, so the terminal is restored.
/// In raw mode Ctrl-C arrives as a key, not as SIGINT.
#[cfg(unix)]
fn termination_signals() -> BoxStream<'static, Msg> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut streams = Vec::new();
    for kind in [SignalKind::terminate(), SignalKind::hangup()] {
        // Without a handler the default action (exit without restoring) stays in place;
        // that is no worse than before, so a failure here is not fatal.
        if let Ok(signal) = signal(kind) {
            let one = stream::unfold(signal, |mut signal| async move {
                signal.recv().await.map(|()| (Msg::Terminate, signal))
            });
            streams.push(one.boxed());
        }
    }
    stream::select_all(streams).boxed()
}

#[cfg(not(unix))]
fn termination_signals() -> BoxStream<'static, Msg> {
    stream::pending().boxed()
}
