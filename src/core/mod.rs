//! The headless core: protocol, storage, ledger and the services built on them (router,
//! worker, node, control API, discovery, tracker). Nothing in here draws to a terminal:
//! CI builds it without the `tui` feature, so it cannot.

pub mod api_error;
pub mod clock;
pub mod config;
pub mod control;
pub mod demo;
pub mod describe;
pub mod discovery;
pub mod engine;
pub mod format;
pub mod jobs;
pub mod keystore;
pub mod ledger;
pub mod links;
pub mod metrics;
pub mod net;
pub mod node;
pub mod paths;
pub mod peers;
pub mod protocol;
pub mod router;
pub mod store;
pub mod tracker;
pub mod worker;
