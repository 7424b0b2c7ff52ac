//! lobstah: a peer-to-peer compute exchange for LLM inference.
//!
//! `core` is the headless engine (protocol, ledger, worker, router); `cli` is the
//! command-line edge; `tui` will be the operator console, a client of `core`;
//! `testkit` holds fake engines for tests and benchmarks.

pub mod cli;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod testkit;
#[cfg(feature = "tui")]
pub mod tui;
