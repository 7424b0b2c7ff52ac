//! The operator console (`lobstah tui`): a client of `core` that draws a live dashboard of
//! a node (peers, queue, exclusions, receipts, balance) and sends it commands (add/remove
//! peer, advertising, sync) through the `NodeClient` trait.
//!
//! Elm style: `App` is UI state only, `update(&mut App, Msg) -> Vec<Cmd>` is the whole
//! behaviour with no IO, `render(frame, &App, now_ms)` draws it, and `runtime` performs the
//! `Cmd`s and feeds back `Msg`s. Keys and their help come from one table (`keymap`), the
//! words on screen from one file (`text`).
//!
//! Entry points: `run(client)` on the real terminal; `drive(terminal, client, app, inputs,
//! clock)` for any ratatui backend and any stream of `Msg` (tests use `TestBackend`).

mod app;
mod apply;
#[cfg(feature = "test-utils")]
#[doc(hidden)]
pub mod fixture;
pub(crate) use crate::core::format;
pub mod keymap;
mod logging;
pub mod modal;
mod msg;
mod render;
mod runtime;
pub mod text;
mod theme;
mod update;

pub use app::{App, Panel, Selection, Status, Tone};
pub use logging::log_to_file;
pub use msg::{Cmd, Msg};
pub use render::layout::{MIN_HEIGHT, MIN_WIDTH};
pub use render::render;
pub use runtime::{drive, msg_from_terminal, restore_terminal, run};
pub use theme::Theme;
pub use update::update;
