//! The node: one process running router + worker (and the announcer when advertising is
//! on) over one identity and one database. Front ends see it as a handle, an event bus
//! and a snapshot, through the `NodeClient` trait.

pub mod client;
pub mod types;

pub use client::{ClientError, EventItem, EventStream, NodeClient};
pub use types::*;
