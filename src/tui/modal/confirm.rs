//! Yes/no dialogs for the two commands that deserve a second thought: removing a peer and
//! publishing this machine. The dialog carries the exact command it will send, so what
//! the operator confirmed is what goes to the node.

use crate::core::node::NodeCommand;

/// An open question. `command` is sent on yes; nothing happens on no.
#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    pub title: &'static str,
    pub body: String,
    pub command: NodeCommand,
    /// What the status line says while the command runs.
    pub pending: String,
}

impl Confirm {
    pub fn new(
        title: &'static str,
        body: String,
        command: NodeCommand,
        pending: impl Into<String>,
    ) -> Self {
        Confirm {
            title,
            body,
            command,
            pending: pending.into(),
        }
    }
}
