//! The one table of key bindings. `update` looks keys up here, and the footer and the help
//! overlay are generated from it, so what the screen promises is what the keys do.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// Where a key is pressed: the dashboard, or one of the overlays that take input first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Applies everywhere, before any other context is consulted.
    Anywhere,
    Dashboard,
    AddPeer,
    Confirm,
    Help,
}

impl Context {
    /// The heading the help overlay shows above this context's bindings.
    pub fn heading(self) -> &'static str {
        match self {
            Context::Anywhere => "Anywhere",
            Context::Dashboard => "Dashboard",
            Context::AddPeer => "Add-peer form",
            Context::Confirm => "Confirmation",
            Context::Help => "This help",
        }
    }
}

/// What a key asks for. Contexts interpret the same action the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    AddPeer,
    RemovePeer,
    ToggleAdvertising,
    SyncPeers,
    MoveUp,
    MoveDown,
    PageUp,
    PageDown,
    Top,
    Bottom,
    NextPanel,
    PrevPanel,
    NextField,
    PrevField,
    Submit,
    Cancel,
    Confirm,
}

/// One key chord. Letters match exactly (so `a` and `A` differ); Shift is otherwise ignored
/// because terminals disagree about reporting it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chord {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn key(code: KeyCode) -> Chord {
    Chord { code, ctrl: false }
}

const fn ch(c: char) -> Chord {
    key(KeyCode::Char(c))
}

const fn ctrl(c: char) -> Chord {
    Chord {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

impl Chord {
    fn matches(&self, event: &KeyEvent) -> bool {
        let has_ctrl = event.modifiers.contains(KeyModifiers::CONTROL);
        let has_alt = event.modifiers.contains(KeyModifiers::ALT);
        if has_ctrl != self.ctrl || has_alt {
            return false;
        }
        match (self.code, event.code) {
            // Ctrl chords arrive as either case depending on the terminal.
            (KeyCode::Char(want), KeyCode::Char(got)) if self.ctrl => {
                want.eq_ignore_ascii_case(&got)
            }
            (want, got) => want == got,
        }
    }
}

/// A row of the table: the keys, how they are written on screen, and what they do.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub context: Context,
    pub action: Action,
    pub chords: &'static [Chord],
    /// The keys as the help overlay and footer write them.
    pub keys: &'static str,
    /// The footer's short `(keys, word)`; `None` keeps the binding out of the footer (the
    /// help lists every binding). Keys are shorter than in the help so 80 columns fit.
    pub footer: Option<(&'static str, &'static str)>,
    /// The sentence in the help overlay.
    pub help: &'static str,
}

const fn bind(
    context: Context,
    action: Action,
    chords: &'static [Chord],
    keys: &'static str,
    footer: Option<(&'static str, &'static str)>,
    help: &'static str,
) -> Binding {
    Binding {
        context,
        action,
        chords,
        keys,
        footer,
        help,
    }
}

use Action as A;
use Context as C;

/// Every binding the console knows, in the order the help overlay lists them.
#[rustfmt::skip]
pub const BINDINGS: &[Binding] = &[
    bind(C::Anywhere, A::Quit, &[ctrl('c')], "Ctrl-C", None, "Quit at once, even from a form"),
    bind(C::Dashboard, A::AddPeer, &[ch('a')], "a", Some(("a", "add")), "Add a peer: public key, URL and label"),
    bind(C::Dashboard, A::RemovePeer, &[ch('d'), key(KeyCode::Delete)], "d/Del", Some(("d", "remove")), "Remove the selected peer (asks first)"),
    bind(C::Dashboard, A::ToggleAdvertising, &[ch('A')], "A", Some(("A", "advertise")), "Advertising on/off (asks before publishing this machine)"),
    bind(C::Dashboard, A::SyncPeers, &[ch('s')], "s", Some(("s", "sync")), "Sync peers from trackers and relays now"),
    bind(C::Dashboard, A::MoveUp, &[key(KeyCode::Up), ch('k')], "↑/k", None, "Select the row above"),
    bind(C::Dashboard, A::MoveDown, &[key(KeyCode::Down), ch('j')], "↓/j", Some(("↑↓", "move")), "Select the row below"),
    bind(C::Dashboard, A::PageUp, &[key(KeyCode::PageUp)], "PgUp", None, "Move up a page"),
    bind(C::Dashboard, A::PageDown, &[key(KeyCode::PageDown)], "PgDn", None, "Move down a page"),
    bind(C::Dashboard, A::Top, &[key(KeyCode::Home), ch('g')], "Home/g", None, "Jump to the first row"),
    bind(C::Dashboard, A::Bottom, &[key(KeyCode::End), ch('G')], "End/G", None, "Jump to the last row"),
    bind(C::Dashboard, A::NextPanel, &[key(KeyCode::Tab)], "Tab", Some(("Tab", "panel")), "Focus the next panel"),
    bind(C::Dashboard, A::PrevPanel, &[key(KeyCode::BackTab)], "Shift-Tab", None, "Focus the previous panel"),
    bind(C::Dashboard, A::ToggleHelp, &[ch('?')], "?", Some(("?", "help")), "Show or hide this help"),
    bind(C::Dashboard, A::Quit, &[ch('q'), key(KeyCode::Esc)], "q/Esc", Some(("q", "quit")), "Quit the console (the node keeps running if it is a daemon)"),
    bind(C::AddPeer, A::NextField, &[key(KeyCode::Tab)], "Tab", Some(("Tab", "next field")), "Move to the next field"),
    bind(C::AddPeer, A::PrevField, &[key(KeyCode::BackTab)], "Shift-Tab", None, "Move to the previous field"),
    bind(C::AddPeer, A::Submit, &[key(KeyCode::Enter)], "Enter", Some(("Enter", "add peer")), "Add the peer (only when every field is valid)"),
    bind(C::AddPeer, A::Cancel, &[key(KeyCode::Esc)], "Esc", Some(("Esc", "cancel")), "Close the form without adding"),
    bind(C::Confirm, A::Confirm, &[ch('y'), ch('Y'), key(KeyCode::Enter)], "y/Enter", Some(("y/Enter", "yes")), "Go ahead"),
    bind(C::Confirm, A::Cancel, &[ch('n'), ch('N'), key(KeyCode::Esc)], "n/Esc", Some(("n/Esc", "no")), "Do nothing"),
    bind(C::Help, A::ToggleHelp, &[ch('?'), key(KeyCode::Esc)], "?/Esc", Some(("?/Esc", "close help")), "Close this help"),
    bind(C::Help, A::MoveUp, &[key(KeyCode::Up), ch('k')], "↑/k", None, "Scroll this help up"),
    bind(C::Help, A::MoveDown, &[key(KeyCode::Down), ch('j')], "↓/j", Some(("↑↓", "scroll")), "Scroll this help down"),
    bind(C::Help, A::Quit, &[ch('q')], "q", Some(("q", "quit")), "Quit the console"),
];

/// The action a key means in `context`, `Anywhere` bindings first.
pub fn action_for(context: Context, event: &KeyEvent) -> Option<Action> {
    [Context::Anywhere, context].into_iter().find_map(|wanted| {
        BINDINGS
            .iter()
            .filter(|b| b.context == wanted)
            .find(|b| b.chords.iter().any(|c| c.matches(event)))
            .map(|b| b.action)
    })
}

/// The bindings of one context, in table order.
pub fn bindings_in(context: Context) -> impl Iterator<Item = &'static Binding> {
    BINDINGS.iter().filter(move |b| b.context == context)
}

/// The footer's `(keys, word)` pairs for `context`.
pub fn footer_hints(context: Context) -> impl Iterator<Item = (&'static str, &'static str)> {
    bindings_in(context).filter_map(|b| b.footer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    #[test]
    fn every_binding_has_keys_and_help() {
        for b in BINDINGS {
            assert!(!b.chords.is_empty(), "{:?} has no chords", b.action);
            assert!(!b.keys.is_empty() && !b.help.is_empty());
        }
    }

    #[test]
    fn no_chord_is_bound_twice_in_one_context() {
        for (i, a) in BINDINGS.iter().enumerate() {
            for b in &BINDINGS[i + 1..] {
                if a.context == b.context {
                    for chord in a.chords {
                        assert!(!b.chords.contains(chord), "{chord:?} bound twice");
                    }
                }
            }
        }
    }

    #[test]
    fn shifted_letter_is_distinct_and_ctrl_c_works_anywhere() {
        let upper = press(KeyCode::Char('A'), KeyModifiers::SHIFT);
        let lower = press(KeyCode::Char('a'), KeyModifiers::NONE);
        assert_eq!(
            action_for(Context::Dashboard, &upper),
            Some(Action::ToggleAdvertising)
        );
        assert_eq!(
            action_for(Context::Dashboard, &lower),
            Some(Action::AddPeer)
        );
        let ctrl_c = press(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(Context::AddPeer, &ctrl_c), Some(Action::Quit));
        let alt_a = press(KeyCode::Char('a'), KeyModifiers::ALT);
        assert_eq!(action_for(Context::Dashboard, &alt_a), None);
    }
}
