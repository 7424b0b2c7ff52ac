//! The node: one process running router + worker (and the announcer when advertising is
//! on) over one identity and one database. Front ends see it as a handle, an event bus
//! and a snapshot, through the `NodeClient` trait.
//!
//! `start` assembles the parts; `handle` holds them and the state; `bus` numbers and
//! broadcasts events; `state` is what the snapshot shows of receipts and balance;
//! `snapshot`, `commands` and `advertise` answer front ends; `monitor` turns polled
//! changes (queue, peer health, engine) into events; `observer` turns the router's;
//! `owed` keeps the table of what requesters owe our worker.

mod advertise;
pub mod bus;
pub mod client;
mod commands;
mod discover;
mod engine;
mod handle;
mod links;
mod monitor;
mod observer;
mod owed;
mod snapshot;
mod start;
mod state;
mod toggles;
pub mod types;
mod wiring;

/// The tracker client, where the node's callers have always found it.
pub use crate::core::discovery::tracker_client as tracker;

pub use client::{ClientError, EventItem, EventStream, NodeClient};
pub use engine::{EngineSetup, build_engine};
pub use handle::NodeHandle;
pub use start::{Node, NodeDeps, NodeError};
pub use toggles::save_advertising;
pub use types::*;
pub use wiring::Roles;
