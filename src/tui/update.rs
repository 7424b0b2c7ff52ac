//! `update(&mut App, Msg) -> Vec<Cmd>`: the console's whole behaviour, with no IO. Keys are
//! looked up in the binding table for the current context (help, then modal, then
//! dashboard); node events and finished requests update the view and the status line.

use crossterm::event::{KeyEvent, KeyEventKind};

use crate::core::node::{ClientError, CommandOutcome, EventItem, NodeCommand};
use crate::tui::app::{App, Tone};
use crate::tui::apply;
use crate::tui::format::{peer_name, printable};
use crate::tui::keymap::{Action, BINDINGS, Context, action_for};
use crate::tui::modal::{AddPeerForm, Confirm, Modal};
use crate::tui::msg::{Cmd, Msg};
use crate::tui::text;

pub fn update(app: &mut App, msg: Msg) -> Vec<Cmd> {
    match msg {
        Msg::Key(key) => on_key(app, key),
        Msg::Paste(pasted) => on_paste(app, &pasted),
        Msg::Resize(_, height) => {
            // A page is about a third of the screen: the size of the peers table.
            app.page_rows = usize::from(height / 3).max(1);
            app.mark_dirty();
            Vec::new()
        }
        Msg::Tick => {
            app.mark_dirty();
            Vec::new()
        }
        Msg::Core(EventItem::Event(event)) => apply::on_event(app, event),
        Msg::Core(EventItem::Resync) => {
            app.set_status(Tone::Info, text::RESYNCING);
            vec![Cmd::RefreshSnapshot]
        }
        Msg::EventsClosed => {
            app.set_status(Tone::Error, text::EVENTS_CLOSED);
            apply::forget_sequence(app);
            vec![Cmd::Resubscribe { after: None }, Cmd::RefreshSnapshot]
        }
        Msg::SnapshotLoaded(snapshot) => {
            apply::load_snapshot(app, *snapshot);
            Vec::new()
        }
        Msg::SnapshotFailed(error) => {
            app.set_status(Tone::Error, text::snapshot_failed(&error.to_string()));
            Vec::new()
        }
        Msg::CommandDone { command, result } => on_command_done(app, command, result),
        Msg::Terminate => vec![Cmd::Quit],
    }
}

fn on_key(app: &mut App, key: KeyEvent) -> Vec<Cmd> {
    // Key-release reports (Windows, kitty protocol) would double every key press.
    if key.kind == KeyEventKind::Release {
        return Vec::new();
    }
    let context = app.context();
    let action = action_for(context, &key);
    if action == Some(Action::Quit) {
        return vec![Cmd::Quit];
    }
    match context {
        Context::Help => {
            on_help_action(app, action);
            Vec::new()
        }
        Context::AddPeer => on_form_key(app, action, key),
        Context::Confirm => on_confirm_key(app, action),
        Context::Dashboard | Context::Anywhere => match action {
            Some(action) => on_dashboard_action(app, action),
            None => Vec::new(),
        },
    }
}

fn on_help_action(app: &mut App, action: Option<Action>) {
    // The render clamps to the real overflow; this bound only stops runaway scrolling,
    // and counts every line the help can have: bindings, legends, headings and gaps.
    let legends = text::HELP_PEERS_LEGEND.len()
        + text::HELP_IN_FLIGHT_LEGEND.len()
        + text::HELP_QUEUE_LEGEND.len();
    let max_scroll = u16::try_from(BINDINGS.len() + legends + 16).unwrap_or(u16::MAX);
    match action {
        Some(Action::ToggleHelp) => {
            app.help_open = false;
            app.help_scroll = 0;
        }
        Some(Action::MoveUp) => app.help_scroll = app.help_scroll.saturating_sub(1),
        Some(Action::MoveDown) => app.help_scroll = (app.help_scroll + 1).min(max_scroll),
        _ => return,
    }
    app.mark_dirty();
}

fn on_dashboard_action(app: &mut App, action: Action) -> Vec<Cmd> {
    app.mark_dirty();
    let page = isize::try_from(app.page_rows).unwrap_or(isize::MAX);
    match action {
        Action::ToggleHelp => app.help_open = true,
        Action::AddPeer => app.modal = Some(Modal::AddPeer(Box::new(AddPeerForm::new(app.theme)))),
        Action::RemovePeer => open_remove_confirm(app),
        Action::ToggleAdvertising => return toggle_advertising(app),
        Action::SyncPeers => {
            app.set_status(Tone::Info, text::SYNCING_PEERS);
            return vec![Cmd::SendCommand(NodeCommand::SyncPeers)];
        }
        Action::MoveUp => app.move_selection(-1),
        Action::MoveDown => app.move_selection(1),
        Action::PageUp => app.move_selection(-page),
        Action::PageDown => app.move_selection(page),
        Action::Top => app.select_first(),
        Action::Bottom => app.select_last(),
        Action::NextPanel => app.focus = app.focus.next(),
        Action::PrevPanel => app.focus = app.focus.prev(),
        // Form and dialog actions mean nothing on the dashboard.
        Action::Quit
        | Action::NextField
        | Action::PrevField
        | Action::Submit
        | Action::Cancel
        | Action::Confirm => {}
    }
    Vec::new()
}

fn open_remove_confirm(app: &mut App) {
    let Some(peer) = app.selected_peer() else {
        app.set_status(Tone::Info, text::NO_PEER_SELECTED);
        return;
    };
    let name = printable(&peer_name(peer.label.as_deref(), &peer.pubkey));
    let body = text::confirm_remove(&name, &printable(&peer.url));
    let command = NodeCommand::RemovePeer {
        pubkey: peer.pubkey.clone(),
    };
    let confirm = Confirm::new(
        text::TITLE_CONFIRM_REMOVE,
        body,
        command,
        text::removing_peer(&name),
    );
    app.modal = Some(Modal::Confirm(confirm));
}

/// Turning advertising on publishes the machine, so it asks; turning it off only withdraws.
fn toggle_advertising(app: &mut App) -> Vec<Cmd> {
    if app.snapshot.advertising.on {
        app.set_status(Tone::Info, text::TURNING_ADVERTISING_OFF);
        return vec![Cmd::SendCommand(NodeCommand::SetAdvertising { on: false })];
    }
    let snap = &app.snapshot;
    // What the node reports is shown as text, never as terminal control sequences.
    let clean = |items: &[String]| items.iter().map(|i| printable(i)).collect::<Vec<_>>();
    let worker_url = snap.worker_url.as_deref().map(printable);
    let body = text::confirm_advertise(
        worker_url.as_deref(),
        &clean(&snap.engine.models),
        &clean(&snap.advertising.targets),
    );
    let confirm = Confirm::new(
        text::TITLE_CONFIRM_ADVERTISE,
        body,
        NodeCommand::SetAdvertising { on: true },
        text::TURNING_ADVERTISING_ON,
    );
    app.modal = Some(Modal::Confirm(confirm));
    Vec::new()
}

fn on_form_key(app: &mut App, action: Option<Action>, key: KeyEvent) -> Vec<Cmd> {
    let Some(Modal::AddPeer(form)) = app.modal.as_mut() else {
        return Vec::new();
    };
    app.dirty = true;
    match action {
        Some(Action::Cancel) => {
            app.modal = None;
            app.set_status(Tone::Info, text::CANCELLED);
        }
        Some(Action::NextField) => form.focus_next(),
        Some(Action::PrevField) => form.focus_prev(),
        Some(Action::Submit) => match form.submit() {
            Some(command) => {
                let pending = text::adding_peer(&printable(&form.display_name()));
                app.modal = None;
                app.set_status(Tone::Info, pending);
                return vec![Cmd::SendCommand(command)];
            }
            None => app.set_status(Tone::Error, text::FORM_INVALID),
        },
        _ => form.input(key),
    }
    Vec::new()
}

fn on_confirm_key(app: &mut App, action: Option<Action>) -> Vec<Cmd> {
    match action {
        Some(Action::Confirm) => {
            let Some(Modal::Confirm(confirm)) = app.modal.take() else {
                return Vec::new();
            };
            app.set_status(Tone::Info, confirm.pending);
            vec![Cmd::SendCommand(confirm.command)]
        }
        Some(Action::Cancel) => {
            app.modal = None;
            app.set_status(Tone::Info, text::CANCELLED);
            Vec::new()
        }
        _ => Vec::new(),
    }
}

/// Bracketed paste goes to the focused text field, and nowhere else: pasted text must not
/// be read as a burst of dashboard keys.
fn on_paste(app: &mut App, pasted: &str) -> Vec<Cmd> {
    if let Some(Modal::AddPeer(form)) = app.modal.as_mut()
        && !app.help_open
    {
        form.paste(pasted);
        app.mark_dirty();
    }
    Vec::new()
}

fn on_command_done(
    app: &mut App,
    command: NodeCommand,
    result: Result<CommandOutcome, ClientError>,
) -> Vec<Cmd> {
    match result {
        Ok(outcome) => {
            let tone = if outcome.ok {
                Tone::Success
            } else {
                Tone::Error
            };
            app.set_status(
                tone,
                text::command_result(outcome.ok, &printable(&outcome.message)),
            );
            if outcome.ok
                && let NodeCommand::SetAdvertising { on } = command
            {
                // The event will say so too; showing it now keeps the header honest if the
                // event stream is slow or down.
                app.snapshot.advertising.on = on;
            }
            app.last_outcome = Some(outcome);
            // Peers, exclusions or advertising may have changed; read them back.
            vec![Cmd::RefreshSnapshot]
        }
        Err(error) => {
            app.set_status(Tone::Error, text::command_failed(&error.to_string()));
            app.last_outcome = Some(CommandOutcome {
                ok: false,
                message: error.to_string(),
            });
            Vec::new()
        }
    }
}
