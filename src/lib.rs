//! lobstah: a peer-to-peer compute exchange for LLM inference.
//!
//! `core` is the headless engine (protocol, ledger, worker, router); `cli` is the
//! command-line edge; `tui` is the operator console, a client of `core` (the default
//! `tui` feature); `testkit` (fake engines) and `fuzzing` (fuzz bodies) exist only with
//! the `test-utils` feature, which tests, benches and the fuzz crate turn on.

pub mod cli;
pub mod core;
#[cfg(feature = "test-utils")]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "test-utils")]
#[doc(hidden)]
pub mod testkit;
#[cfg(feature = "tui")]
pub mod tui;
