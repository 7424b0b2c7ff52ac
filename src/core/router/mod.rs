//! The router: what local clients call. It chooses a capable, healthy peer, fails over to
//! the next, verifies each receipt and ledgers it.
//!
//! `selection` decides which peers a request is offered to and tracks their health (a pure
//! state machine fed with events and the time); the durable peer book is `core::peers`;
//! `capacity` caches what each peer can do; `service` holds the shared state; `failover`
//! is the one loop that offers a request to candidates in turn; `forward` and `api` are
//! the HTTP shell; `receipt_filter` takes receipts out of streams; `intake` checks
//! and ledgers them; `jobs`
//! holds clients' async jobs.

mod api;
pub mod capacity;
mod confirm;
mod dialects;
mod endpoints;
mod failover;
mod forward;
mod in_flight;
mod intake;
pub mod jobs;
mod models;
mod peer_stats;
pub(crate) mod plausible;
pub mod receipt_filter;
pub mod reconcile;
pub mod selection;
mod service;
mod signing;
mod urls;

pub use confirm::{ConfirmRound, Owing};
pub use endpoints::ROUTER_ENDPOINTS;
pub use forward::SERVED_BY_HEADER;
pub use in_flight::InFlightView;
pub use intake::ReceiptRejection;
pub use peer_stats::{PeerCounters, SpeedFigures, WINDOW_SECS as SPEED_WINDOW_SECS};
pub use plausible::{Delivered, INPUT_SLACK, OUTPUT_SLACK};
pub use service::DEFAULT_STREAM_IDLE_TIMEOUT;
pub use service::{InFlight, RouterConfig, RouterError, RouterObserver, RouterService};
