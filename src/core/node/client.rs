//! The one trait front ends (the console, `lobstah status`) use to talk to a node,
//! whether it runs in this process or as a daemon behind the control API.

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

use super::types::{CommandOutcome, NodeCommand, SequencedEvent, Snapshot};

/// An item of an event subscription.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem {
    Event(SequencedEvent),
    /// The subscriber fell behind (or resumed from too old an id): events were lost, so it
    /// must re-read the snapshot and carry on from there.
    Resync,
}

pub type EventStream = BoxStream<'static, EventItem>;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ClientError {
    #[error("the node is not reachable: {0}")]
    Unreachable(String),
    #[error("the node refused the request: {0}")]
    Refused(String),
    #[error("the node answered something unexpected: {0}")]
    Protocol(String),
}

pub trait NodeClient: Send + Sync + 'static {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, ClientError>>;

    /// Events with a sequence number greater than `after` (all new ones when `None`).
    fn subscribe(&self, after: Option<u64>) -> BoxFuture<'_, Result<EventStream, ClientError>>;

    fn command(&self, command: NodeCommand) -> BoxFuture<'_, Result<CommandOutcome, ClientError>>;
}
