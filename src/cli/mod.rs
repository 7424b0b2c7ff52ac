//! The command-line edge: parses arguments, opens what a command needs, prints results.
//! Errors here are `anyhow` with context; the core's typed errors become sentences.

mod identity_cmds;
mod ledger_cmds;
mod output;
mod serve_cmds;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::core::paths::Paths;

#[derive(Debug, Parser)]
#[command(
    name = "lobstah",
    version,
    about = "Peer-to-peer compute exchange for LLM inference"
)]
pub struct Cli {
    /// Directory for the identity, database and config (default: the platform data dir).
    #[arg(long, global = true, env = "LOBSTAH_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this node's identity (an Ed25519 key pair) and print its public key.
    Keygen {
        /// Replace an existing identity (its credits stay with the old key).
        #[arg(long)]
        force: bool,
    },
    /// Print this node's public key.
    Id,
    /// Show credits: earned, spent, net and available (10,000 allowance + net).
    Balance {
        #[arg(long)]
        json: bool,
        /// Every identity in the ledger, not only this node's.
        #[arg(long)]
        all: bool,
    },
    /// Show the newest receipts in the ledger.
    Receipts {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Check, import or export the ledger.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Serve a local engine to peers.
    Worker {
        #[command(subcommand)]
        command: WorkerCommand,
    },
    /// Run the local OpenAI-compatible router that sends requests to peers.
    Router {
        #[command(subcommand)]
        command: RouterCommand,
    },
    /// Manage the peers the router may use.
    Peers {
        #[command(subcommand)]
        command: PeersCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Start the worker (runs until SIGINT/SIGTERM).
    Start(serve_cmds::WorkerArgs),
}

#[derive(Debug, Subcommand)]
pub enum RouterCommand {
    /// Start the router (runs until SIGINT/SIGTERM).
    Start(serve_cmds::RouterArgs),
}

#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Add (or update) a peer by its public key and worker URL.
    Add {
        pubkey: String,
        url: String,
        label: Option<String>,
    },
    /// Remove a peer.
    Remove { pubkey: String },
    /// List the peer book.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every balance from the stored receipts; exit 1 on any mismatch.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Import signed receipts from a JSONL file (one per line), skipping duplicates.
    Import { file: PathBuf },
    /// Write every receipt as JSONL to stdout, oldest first.
    Export,
}

/// Runs the CLI and maps the outcome to a process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let paths = Paths::resolve(cli.home.as_deref())?;
    init_logging();
    match cli.command {
        Command::Worker {
            command: WorkerCommand::Start(args),
        } => runtime()?.block_on(serve_cmds::worker_start(&paths, args)),
        Command::Router {
            command: RouterCommand::Start(args),
        } => runtime()?.block_on(serve_cmds::router_start(&paths, args)),
        Command::Peers { command } => match command {
            PeersCommand::Add { pubkey, url, label } => {
                serve_cmds::peers_add(&paths, &pubkey, &url, label)
            }
            PeersCommand::Remove { pubkey } => serve_cmds::peers_remove(&paths, &pubkey),
            PeersCommand::List { json } => serve_cmds::peers_list(&paths, json),
        },
        Command::Keygen { force } => identity_cmds::keygen(&paths, force),
        Command::Id => identity_cmds::id(&paths),
        Command::Balance { json, all } => ledger_cmds::balance(&paths, json, all),
        Command::Receipts { limit, json } => ledger_cmds::receipts(&paths, limit, json),
        Command::Ledger { command } => match command {
            LedgerCommand::Verify { json } => ledger_cmds::verify(&paths, json),
            LedgerCommand::Import { file } => ledger_cmds::import(&paths, &file),
            LedgerCommand::Export => ledger_cmds::export(&paths),
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Installed before any client exists; a second install (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Logs go to stderr; `LOBSTAH_LOG` (or `RUST_LOG`) sets the filter, default `info`.
fn init_logging() {
    let filter = std::env::var("LOBSTAH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
