//! The integration tests, in one test binary so a test build links once rather than once
//! per file: each file beside this one is a module, and `support/` is the harness they
//! share. One file's tests: `cargo test --test it beside_node::`. proptest keeps the seeds
//! of past failures in `tests/proptest-regressions/<file>.txt` (beside the directory that
//! holds this `main.rs`, which is where it looks).
//!
//! The one other test binary is `tests/floods.rs`: it saturates both cores for a minute by
//! design, and beside the tests here it once missed its one-second bound (CI, 2 cores), so
//! it runs on its own (cargo runs test binaries one at a time).

// A test states what it expects, and its helpers are `pub` for the modules that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

mod support;

mod beside_node;
mod browser_safety;
mod cancellations;
mod cli_bench;
mod cli_doctor;
mod cli_ledger;
mod cli_node;
mod cli_nostr_key;
mod client_apis;
mod console_e2e;
mod control_api;
mod crash_receipts;
mod cross_language;
mod discovery_e2e;
mod disk_full;
mod durability;
mod engines;
mod failover;
mod fuzz_corpus;
mod headless;
mod interop;
mod jobs_api;
mod jobs_cli;
mod jobs_credit;
mod jobs_restart;
mod jobs_routing;
mod ledger_model;
mod limits;
mod links_nat;
mod node;
mod nostr_discovery;
mod openai_sdk;
mod protocol_props;
mod relay_links;
mod router_bad_input;
mod router_credits;
mod router_embeddings;
mod router_links;
mod router_models;
mod router_receipts;
mod router_streaming;
mod tracker_api;
mod tui_events;
mod tui_logging;
mod tui_render;
mod tui_runtime;
mod tui_update;
mod url_safety;
mod worker_access;
mod worker_http;
mod worker_links;
mod worker_overdraft;
