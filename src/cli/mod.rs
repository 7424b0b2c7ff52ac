//! The command-line edge: parses arguments, opens what a command needs, prints results.
//! Errors here are `anyhow` with context; the core's typed errors become sentences.

mod access_flags;
mod bench_cmds;
mod bench_probe;
mod bench_report;
mod connection_flags;
#[cfg(feature = "tui")]
mod console_cmds;
#[cfg(not(feature = "tui"))]
#[path = "no_console.rs"]
mod console_cmds;
mod discovery_cmds;
mod doctor_cmds;
mod follow_cmds;
mod identity_cmds;
mod jobs_cmds;
mod ledger_cmds;
mod link_flags;
mod models_cmds;
mod node_cmds;
mod output;
mod owed_view;
mod peers_cmds;
mod relay_cmds;
mod serve_cmds;
mod service_cmds;
mod service_files;
mod status_view;
mod tracker_cmds;
mod via_node;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::core::config::LogFormat;
use crate::core::node::NodeCommand;
use crate::core::paths::Paths;

/// What `lobstah --help` ends with: the commands people type first, and exit codes.
const TOP_EXAMPLES: &str = "\
Examples:
  lobstah demo                                   a local grid with the console on it
  lobstah worker start --engine ollama           serve your Ollama to peers
  lobstah peers add lob1… http://192.168.1.20:17474 alice
  lobstah router start                           OpenAI base URL http://127.0.0.1:17475/v1
  lobstah status                                 what the running node is doing
  lobstah balance --all                          every identity's credits
  lobstah --headless                             the node, as launchd or systemd runs it

Exit codes:
  0  done
  1  failed or refused (the reason is on stderr): a node refused a command, a ledger
     mismatch in `ledger verify`, a job that failed, nothing reachable
  2  the command line is wrong (unknown flag, bad value)";

#[derive(Debug, Parser)]
#[command(
    name = "lobstah",
    version,
    about = "Peer-to-peer compute exchange for LLM inference",
    after_help = TOP_EXAMPLES
)]
pub struct Cli {
    /// Directory for the identity, database and config (default: the platform data dir).
    #[arg(long, global = true, env = "LOBSTAH_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Run the node (router + worker + control API) with no UI, logging to stderr; what
    /// launchd and systemd start. SIGTERM or SIGINT stops it gracefully.
    #[arg(long)]
    pub headless: bool,

    #[command(flatten)]
    pub node: node_cmds::NodeFlags,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Open the operator console on the running node (or start one here).
    Tui,
    /// A local demo grid (synthetic engines) with the console on it.
    Demo,
    /// Create this node's identity (an Ed25519 key pair) and print its public key.
    Keygen {
        /// Replace an existing identity (its credits stay with the old key).
        #[arg(long)]
        force: bool,
    },
    /// Print this node's public key.
    Id {
        /// Also print the Nostr public key (npub) on a second line.
        #[arg(long)]
        nostr: bool,
    },
    /// Show credits: earned, spent, net and available (10,000 allowance + net).
    Balance {
        /// Print JSON instead of a table (stable field names, for scripts).
        #[arg(long)]
        json: bool,
        /// Every identity in the ledger, not only this node's.
        #[arg(long)]
        all: bool,
    },
    /// Show the newest receipts in the ledger.
    Receipts {
        /// How many receipts, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print JSON instead of a table (stable field names, for scripts).
        #[arg(long)]
        json: bool,
        /// Keep printing new receipts as the running node ledgers them (via its control
        /// API), resuming across reconnects; Ctrl-C to stop.
        #[arg(long)]
        follow: bool,
    },
    /// Show the running node: identity, addresses, engine, advertising, peers,
    /// exclusions, queue and balance (through its control API).
    Status {
        /// Print the node's whole snapshot as JSON: identity, routerUrl, workerUrl,
        /// controlUrl (null for a server the node does not run), engine, advertising,
        /// peers, exclusions, queue, balance, receipts, rejections, owed.
        #[arg(long)]
        json: bool,
    },
    /// Check the setup: the configured engine (reachable? its models, embeddings) and,
    /// when a node runs here, what its router and worker serve. Exit 1 on a problem.
    #[command(after_help = "\
Examples:
  lobstah doctor                                 is my engine up, and what does my node serve?
  lobstah --engine-url http://127.0.0.1:11500 doctor   check another engine address
  lobstah doctor --json                          the same facts for scripts

Each problem comes with a line saying what to do; exit 0 when everything answers.")]
    Doctor {
        /// Print the report as JSON: ok, configFile, engine, node (router with its
        /// endpoints, worker with its capabilities; null with no node), problems.
        #[arg(long)]
        json: bool,
    },
    /// Measure this build here: a worker and a router as two processes, routed requests
    /// from keep-alive clients; prints the crypto floor, CPU per request and its ratio to
    /// the floor, memory of both, ledger bytes per receipt and `ledger verify`.
    #[command(after_help = "\
Nothing leaves this machine: both servers listen on 127.0.0.1 with their own homes in a
scratch directory (deleted after, unless --keep), the worker serving the synthetic engine
and trusting the router. Exit 1 if a ledger does not hold one receipt per answered request.

Example:
  lobstah bench --requests 150000 --clients 64")]
    Bench {
        /// Routed requests to measure, after 2,000 of warm-up (at least 1,000).
        #[arg(long, default_value_t = 150_000)]
        requests: u64,
        /// Concurrent keep-alive clients.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Streamed answers (SSE) instead of whole ones.
        #[arg(long)]
        stream: bool,
        /// Keep both homes (identities, ledgers) in DIR instead of a scratch directory.
        #[arg(long, value_name = "DIR")]
        keep: Option<PathBuf>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Switch advertising on the running node (announcements to the configured trackers
    /// and Nostr relays); the switch is kept for the next start. With no node running,
    /// it says how the next start will be.
    Advertise {
        /// on or off.
        #[arg(value_enum)]
        switch: Switch,
    },
    /// Show the models the router can serve now: how many healthy peers serve each, and
    /// what it can do.
    Models {
        /// The router, e.g. http://127.0.0.1:17475 (default: the running node's router).
        #[arg(long, env = "LOBSTAH_ROUTER_URL", value_name = "URL")]
        router: Option<String>,
        /// Print the router's model list as JSON (OpenAI's shape plus `peers` and
        /// `capabilities`).
        #[arg(long)]
        json: bool,
    },
    /// Show the effective configuration and where each value came from.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the node at login under launchd (macOS) or systemd (Linux).
    Service {
        #[command(subcommand)]
        command: ServiceCommand,
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
    /// Run a discovery tracker that workers announce to and routers sync peers from.
    Tracker {
        #[command(subcommand)]
        command: TrackerCommand,
    },
    /// Run a relay for peer links: nodes behind NAT keep a home on it, links go through
    /// it until hole punching makes them direct.
    Relay {
        #[command(subcommand)]
        command: RelayCommand,
    },
    /// Async jobs through the router: submit, get (--wait), cancel, list.
    Jobs {
        #[command(subcommand)]
        command: jobs_cmds::JobsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Start the worker (runs until SIGINT/SIGTERM).
    #[command(after_help = "\
Examples:
  lobstah worker start                                    Ollama at OLLAMA_HOST or 127.0.0.1:11434
  lobstah worker start --engine openai --engine-url http://127.0.0.1:8080   llama.cpp, vLLM…
  lobstah worker start --trust lob1… --serve-only lob1…,lob1…              friends only
  lobstah worker start --host 0.0.0.0 --announce-to http://tracker.example:17476 \\
      --announce-url http://my-mac.example:17474            reachable and advertised

It prints `worker lob1… listening on http://ADDR (KIND engine)` once it serves.")]
    Start(Box<serve_cmds::WorkerArgs>),
}

#[derive(Debug, Subcommand)]
pub enum RouterCommand {
    /// Start the router (runs until SIGINT/SIGTERM).
    #[command(after_help = "\
Examples:
  lobstah router start                       then point OpenAI clients at http://127.0.0.1:17475/v1
  lobstah router start --port 0              a free port, printed at start
  lobstah peers add lob1… http://HOST:17474  add a worker while it runs

It prints `router lob1… listening on http://ADDR (OpenAI base URL: http://ADDR/v1)`.")]
    Start(serve_cmds::RouterArgs),
}

#[derive(Debug, Subcommand)]
pub enum TrackerCommand {
    /// Start the tracker (runs until SIGINT/SIGTERM).
    Start(tracker_cmds::TrackerArgs),
}

#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Start the relay (runs until SIGINT/SIGTERM).
    #[command(after_help = "\
Examples:
  lobstah relay start --host 0.0.0.0 --public-name 203.0.113.7    for the world (or --admit)
  lobstah relay start --host 0.0.0.0 --admit lob1… --admit lob1…    friends only

Nodes then take --relay http://203.0.113.7:3340 --relay-cert FILE (the file it prints).
It prints `relay listening on http://ADDR (relay URL …)` once it serves.")]
    Start(relay_cmds::RelayArgs),
}

#[derive(Debug, Subcommand)]
pub enum PeersCommand {
    /// Add (or update) a peer by its public key and worker URL.
    #[command(after_help = "\
Example:
  lobstah peers add lob1c0ffee… http://192.168.1.20:17474 alice

Beside a running node it goes through the node and applies at once.")]
    Add {
        /// The peer's public key: lob1 and 64 hex characters (`lobstah id` on its machine).
        pubkey: String,
        /// Its worker's base URL, http:// or https://, e.g. http://192.168.1.20:17474.
        /// Without one, the peer is reached by key over an encrypted peer link (the node
        /// needs `links.enabled`). A lone word with no dot, colon or slash is the label
        /// (`peers add KEY alice-mac`).
        url: Option<String>,
        /// A name for it in the console and in `receipts` (printable, up to 64 characters).
        label: Option<String>,
        /// A direct UDP address of the peer's link endpoint (repeatable); implies a link,
        /// beside the URL if one is given.
        #[arg(long = "addr", value_name = "IP:PORT")]
        addrs: Vec<std::net::SocketAddr>,
    },
    /// Remove a peer.
    Remove {
        /// The peer's public key (lob1…).
        pubkey: String,
    },
    /// List the peer book.
    List {
        /// Print JSON instead of a table (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
    /// Book the peers a tracker lists: each announcement verified, fresh and at a safe
    /// URL; the newest per pubkey wins; peers this tracker no longer lists are dropped.
    Sync {
        /// The tracker, e.g. http://tracker.example:17476
        tracker: String,
        /// The counts as JSON (reads the peer book directly, so not beside a running node).
        #[arg(long)]
        json: bool,
    },
    /// Book the peers announced on Nostr relays: both signatures (Nostr and lobstah)
    /// verified, fresh, at a safe URL; the newest per pubkey wins.
    Discover {
        /// A relay to read (repeatable; default: discovery.nostr_relays).
        #[arg(long = "nostr-relay", value_name = "URL")]
        relays: Vec<String>,
        /// The counts as JSON (reads the peer book directly, so not beside a running node).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting (flags > LOBSTAH_* environment > config.toml > defaults).
    Show {
        /// Print JSON instead of a table (stable field names, for scripts).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write the launchd agent or systemd user unit for `lobstah --headless` and load it.
    Install(service_cmds::ServiceArgs),
    /// Stop and remove it.
    Uninstall(service_cmds::ServiceArgs),
    /// Say whether it is installed and running.
    Status(service_cmds::ServiceArgs),
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every balance from the stored receipts; exit 1 on any mismatch.
    Verify {
        /// Print the report as JSON (receipts_checked, pubkeys_checked, mismatches).
        #[arg(long)]
        json: bool,
    },
    /// Import signed receipts from a JSONL file (one per line), skipping duplicates.
    Import {
        /// The file, one signed receipt per line (as `ledger export` writes).
        file: PathBuf,
    },
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
    let Some(command) = cli.command else {
        if cli.headless {
            return node_cmds::headless(&paths, &cli.node);
        }
        // Bare `lobstah` on a terminal opens the console; elsewhere it explains itself.
        if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            return console_cmds::console(&paths, &cli.node);
        }
        Cli::command().print_help()?;
        println!();
        return Ok(ExitCode::SUCCESS);
    };
    if cli.headless {
        anyhow::bail!("--headless runs the node and takes no subcommand");
    }
    // The console logs to a file; everything else to stderr.
    if !matches!(command, Command::Tui | Command::Demo) {
        init_logging(LogFormat::Text);
    }
    match command {
        Command::Tui => console_cmds::console(&paths, &cli.node),
        Command::Demo => console_cmds::demo(),
        Command::Worker {
            command: WorkerCommand::Start(args),
        } => runtime()?.block_on(serve_cmds::worker_start(&paths, *args)),
        Command::Router {
            command: RouterCommand::Start(args),
        } => runtime()?.block_on(serve_cmds::router_start(&paths, args)),
        Command::Tracker {
            command: TrackerCommand::Start(args),
        } => runtime()?.block_on(tracker_cmds::tracker_start(&paths, args)),
        Command::Relay {
            command: RelayCommand::Start(args),
        } => runtime()?.block_on(relay_cmds::relay_start(&paths, args)),
        // Beside a running node these go through its control API (it owns the file).
        Command::Peers { command } => match command {
            PeersCommand::Add {
                pubkey,
                url,
                label,
                addrs,
            } => {
                let (url, label) = peers_cmds::url_or_label(url, label);
                peers_add(&paths, pubkey, url, label, addrs)
            }
            PeersCommand::Remove { pubkey } => {
                let via = NodeCommand::RemovePeer {
                    pubkey: pubkey.clone(),
                };
                via_node::node_command(&paths, via)
                    .unwrap_or_else(|| peers_cmds::peers_remove(&paths, &pubkey))
            }
            PeersCommand::List { json } => via_node::peers_list(&paths, json)
                .unwrap_or_else(|| peers_cmds::peers_list(&paths, json)),
            PeersCommand::Sync { tracker, json } => {
                discovery_cmds::peers_sync(&paths, &tracker, json)
            }
            PeersCommand::Discover { relays, json } => {
                discovery_cmds::peers_discover(&paths, relays, json)
            }
        },
        Command::Keygen { force } => identity_cmds::keygen(&paths, force),
        Command::Id { nostr } => identity_cmds::id(&paths, nostr),
        Command::Balance { json, all } => via_node::balances(&paths, json, all)
            .unwrap_or_else(|| ledger_cmds::balance(&paths, json, all)),
        Command::Receipts {
            limit,
            json,
            follow: true,
        } => runtime()?.block_on(follow_cmds::follow(&paths, limit, json)),
        Command::Receipts { limit, json, .. } => via_node::receipts(&paths, limit, json)
            .unwrap_or_else(|| ledger_cmds::receipts(&paths, limit, json)),
        Command::Status { json } => runtime()?.block_on(node_cmds::status(&paths, json)),
        Command::Doctor { json } => doctor_cmds::run(&paths, &cli.node, json),
        Command::Bench {
            requests,
            clients,
            stream,
            keep,
            json,
        } => bench_cmds::run(bench_cmds::BenchArgs {
            requests,
            clients,
            stream,
            keep,
            json,
        }),
        Command::Advertise { switch } => {
            let on = switch == Switch::On;
            via_node::node_command(&paths, NodeCommand::SetAdvertising { on })
                .unwrap_or_else(|| node_cmds::advertise_next_start(&paths, on))
        }
        Command::Config {
            command: ConfigCommand::Show { json },
        } => node_cmds::config_show(&paths, &cli.node, json),
        Command::Service { command } => match command {
            ServiceCommand::Install(args) => service_cmds::install(cli.home.as_deref(), &args),
            ServiceCommand::Uninstall(args) => service_cmds::uninstall(&args),
            ServiceCommand::Status(args) => service_cmds::status(&paths, &args),
        },
        Command::Models { router, json } => {
            let config = crate::core::config::Config::load(&paths, &cli.node.overrides())
                .map_err(anyhow::Error::from);
            models_cmds::run(&paths, config, router.as_deref(), json)
        }
        Command::Jobs { command } => {
            let config = crate::core::config::Config::load(&paths, &cli.node.overrides())
                .map_err(anyhow::Error::from);
            jobs_cmds::run(&paths, config, command)
        }
        Command::Ledger { command } => match command {
            LedgerCommand::Verify { json } => {
                via_node::verify(&paths, json).unwrap_or_else(|| ledger_cmds::verify(&paths, json))
            }
            LedgerCommand::Import { file } => ledger_cmds::import(&paths, &file),
            LedgerCommand::Export => {
                via_node::export(&paths).unwrap_or_else(|| ledger_cmds::export(&paths))
            }
        },
    }
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // Installed before any client exists; a second install (tests) is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

/// Logs go to stderr; `LOBSTAH_LOG` (or `RUST_LOG`) sets the filter, default `info`.
pub(crate) fn init_logging(format: LogFormat) {
    let filter = std::env::var("LOBSTAH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

#[cfg(test)]
mod help_tests;

/// `peers add`: through the running node's control API when there is one (it owns the
/// book), else into the book on disk.
fn peers_add(
    paths: &Paths,
    pubkey: String,
    url: Option<String>,
    label: Option<String>,
    addrs: Vec<std::net::SocketAddr>,
) -> anyhow::Result<ExitCode> {
    match url {
        Some(url) if addrs.is_empty() => {
            let via = NodeCommand::AddPeer {
                pubkey: pubkey.clone(),
                url: url.clone(),
                label: label.clone(),
            };
            via_node::node_command(paths, via)
                .unwrap_or_else(|| peers_cmds::peers_add(paths, &pubkey, &url, label))
        }
        url => {
            let via = NodeCommand::AddLinkedPeer {
                pubkey: pubkey.clone(),
                url: url.clone(),
                label: label.clone(),
                addrs: addrs.iter().map(|a| a.to_string()).collect(),
            };
            via_node::node_command(paths, via).unwrap_or_else(|| {
                peers_cmds::peers_add_linked(paths, &pubkey, url.as_deref(), label, &addrs)
            })
        }
    }
}
