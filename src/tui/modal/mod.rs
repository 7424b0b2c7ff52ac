//! Overlays that take input before the dashboard: the add-peer form and confirmations.
//! Each owns its state (the form owns its text areas); the help overlay is not a modal
//! because it holds no state beyond being open.

mod add_peer;
mod confirm;

pub use add_peer::{AddPeerForm, Field, FieldState};
pub use confirm::Confirm;

use crate::tui::keymap::Context;

#[derive(Debug)]
pub enum Modal {
    AddPeer(Box<AddPeerForm>),
    Confirm(Confirm),
}

impl Modal {
    /// The binding context keys are looked up in while this modal is open.
    pub fn context(&self) -> Context {
        match self {
            Modal::AddPeer(_) => Context::AddPeer,
            Modal::Confirm(_) => Context::Confirm,
        }
    }
}
