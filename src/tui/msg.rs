//! The messages `update` consumes and the commands it hands back. Messages are facts that
//! already happened (a key, an event from the node, a finished request); commands are
//! requests for IO the runtime performs, so `update` itself stays pure and testable.

use crossterm::event::KeyEvent;

use crate::core::node::{ClientError, CommandOutcome, EventItem, NodeCommand, Snapshot};

#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(KeyEvent),
    /// Bracketed paste: the whole pasted text at once.
    Paste(String),
    Resize(u16, u16),
    /// One second passed while a countdown is on screen.
    Tick,
    /// Something arrived on the node's event stream.
    Core(EventItem),
    /// The event stream ended (the daemon went away or restarted).
    EventsClosed,
    /// Boxed: a snapshot is large and every other message is small.
    SnapshotLoaded(Box<Snapshot>),
    SnapshotFailed(ClientError),
    CommandDone {
        command: NodeCommand,
        result: Result<CommandOutcome, ClientError>,
    },
    /// SIGTERM or SIGHUP: leave as if the operator pressed q.
    Terminate,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Quit,
    SendCommand(NodeCommand),
    /// Re-read the snapshot. The runtime coalesces and rate-limits these.
    RefreshSnapshot,
    /// Subscribe again to events after this sequence number.
    Resubscribe {
        after: Option<u64>,
    },
}
