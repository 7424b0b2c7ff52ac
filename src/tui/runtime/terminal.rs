//! The real terminal: raw mode, alternate screen and bracketed paste on the way in, and
//! the same undone on the way out — on a normal exit, on an error, and on a panic, so a
//! crash never leaves the operator's shell in raw mode.

use std::io::{self, Write, stdout};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use crossterm::cursor::{Hide, Show};
use crossterm::event::{DisableBracketedPaste, EnableBracketedPaste};
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};

/// Whether this process changed the terminal and has not put it back yet.
static ACTIVE: AtomicBool = AtomicBool::new(false);
static PANIC_HOOK: Once = Once::new();

/// Holds the terminal in TUI mode; dropping it restores the terminal.
pub(super) struct TerminalGuard {
    _private: (),
}

impl TerminalGuard {
    pub(super) fn enter() -> io::Result<Self> {
        install_panic_hook();
        // Marked first: if a later step fails, restoring undoes the steps that succeeded.
        ACTIVE.store(true, Ordering::SeqCst);
        let guard = TerminalGuard { _private: () };
        enable_raw_mode()?;
        execute!(stdout(), EnterAlternateScreen, EnableBracketedPaste, Hide)?;
        Ok(guard)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Puts the terminal back as it was. Safe to call more than once, and from a panic.
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    // Best effort: there is nobody to report a failure to while the terminal is broken.
    let _ = disable_raw_mode();
    let mut out = stdout();
    let _ = execute!(out, DisableBracketedPaste, LeaveAlternateScreen, Show);
    let _ = out.flush();
}

/// Restores the terminal before the default hook prints the panic, so the message lands
/// on a normal screen instead of a raw alternate one that is about to vanish.
fn install_panic_hook() {
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
