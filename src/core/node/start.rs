//! Starting a node: take the database (one process per data directory), load or create
//! the identity, build the engine, wire router + worker to one ledger writer whose
//! commits become events, bind the listeners, write the control token and `node.json`,
//! and start serving.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::advertise::Advertiser;
use super::bus::{EventBus, RING_CAPACITY};
use super::handle::{Core, NodeHandle, Served, Tasks, Urls};
use super::observer::Observer;
use super::wiring::{self, Roles};
use super::{build_engine, discover, links, monitor, owed, state, toggles};
use crate::core::clock::{SharedClock, system_clock};
use crate::core::config::Config;
use crate::core::control::{self, ControlError, NodeInfo, files};
use crate::core::engine::Engine;
use crate::core::keystore::{self, KeystoreError};
use crate::core::ledger::{Ledger, LedgerWriter};
use crate::core::paths::Paths;
use crate::core::peers::PeerBook;
use crate::core::protocol::Identity;
use crate::core::router::{RouterError, RouterService};
use crate::core::store::{self, StoreError};
use crate::core::worker::Worker;

/// The engine kind a node without a worker shows.
pub(super) const NO_ENGINE: &str = "none";

/// What a node is started with besides its configuration; tests inject a clock and an
/// engine here.
#[derive(Clone)]
pub struct NodeDeps {
    pub clock: SharedClock,
    /// Serve this engine instead of building the configured one.
    pub engine: Option<Arc<dyn Engine>>,
    /// Sent to an OpenAI-compatible engine as a bearer token.
    pub engine_api_key: Option<String>,
    /// Marks the snapshot as `lobstah demo`'s grid.
    pub demo: bool,
    /// The servers to run; the ledger, peer book and control API are always there.
    pub roles: Roles,
}

impl Default for NodeDeps {
    fn default() -> Self {
        NodeDeps {
            clock: system_clock(),
            engine: None,
            engine_api_key: None,
            demo: false,
            roles: Roles::BOTH,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(
        "lobstah is already running on {data_dir} (pid {pid}, control API {control_url}); stop it first, or talk to it with `lobstah status`"
    )]
    AlreadyRunning {
        data_dir: PathBuf,
        pid: u32,
        control_url: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot load this node's identity: {0}")]
    Identity(#[from] KeystoreError),
    #[error("cannot set up the engine: {0}")]
    Engine(String),
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error("cannot open the peer-link endpoint: {0}")]
    Links(#[from] crate::core::links::LinkError),
    #[error("cannot read the relay certificate {file}: {reason}")]
    RelayCert { file: PathBuf, reason: String },
    #[cfg(unix)]
    #[error("cannot set up peer links: {0}")]
    Bridge(#[from] crate::core::links::BridgeError),
    #[error("cannot open the job queue: {0}")]
    Jobs(#[from] crate::core::worker::JobError),
    #[error("cannot write {path}: {source}")]
    RunFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Starts nodes.
pub struct Node;

impl Node {
    /// Starts a node with the system clock and the configured engine.
    pub async fn start(config: Config, paths: Paths) -> Result<NodeHandle, NodeError> {
        Self::start_with(config, paths, NodeDeps::default()).await
    }

    pub async fn start_with(
        config: Config,
        paths: Paths,
        deps: NodeDeps,
    ) -> Result<NodeHandle, NodeError> {
        // The first client built needs a TLS provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let data_dir = paths.data_dir().to_path_buf();
        // The database first: a second node on this directory must fail before it
        // touches ports or the running node's token.
        let db = match store::open_with_cache(&paths.database(), config.ledger_cache_mib) {
            Ok(db) => db,
            Err(StoreError::InUse(path)) => {
                return Err(match files::read_node_info(&data_dir) {
                    Some(info) => NodeError::AlreadyRunning {
                        data_dir,
                        pid: info.pid,
                        control_url: info.control_url,
                    },
                    None => StoreError::InUse(path).into(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let identity = load_or_create_identity(&paths)?;
        let roles = deps.roles;
        // A router alone has no engine to build (or to fail to build).
        let engine = if !roles.worker {
            None
        } else if let Some(engine) = deps.engine.clone() {
            Some((engine, config.engine.url.clone()))
        } else {
            let setup = build_engine(&config.engine, deps.engine_api_key.clone())
                .map_err(NodeError::Engine)?;
            Some((setup.engine, setup.url))
        };
        let ledger = Ledger::new(db.clone())?;
        let book = PeerBook::new(db)?;

        // Commits become events; the callback finds the core once it exists, and holds
        // it weakly because the core owns the writer.
        let cell: Arc<OnceLock<Weak<Core>>> = Arc::new(OnceLock::new());
        let callback_cell = cell.clone();
        let (writer, writer_thread) = LedgerWriter::spawn(
            ledger.clone(),
            Some(Box::new(move |appended| {
                if let Some(core) = callback_cell.get().and_then(Weak::upgrade) {
                    core.on_appended(appended);
                }
            })),
        );

        // The router exists whatever the roles: it owns the peer book and the client
        // job store that commands and the snapshot read; only its listener is a role.
        let router_config = wiring::router_config(&config, identity.clone(), deps.clock.clone());
        let router = RouterService::new(router_config, ledger.clone(), writer.clone(), book)?;
        let worker = match &engine {
            Some((engine, _)) => {
                let worker_config = wiring::worker_config(
                    &config,
                    identity.clone(),
                    engine.clone(),
                    deps.clock.clone(),
                );
                Some(Worker::with_jobs(worker_config, &ledger, writer.clone())?)
            }
            None => None,
        };
        crate::core::net::fd_limit::raise_for_servers(&[
            config.router.connections.max_connections,
            config.worker.connections.max_connections,
            control::server::MAX_CONNECTIONS,
        ]);

        let worker_listener = match roles.worker {
            true => Some(bind(config.worker.host, config.worker.port, "worker").await?),
            false => None,
        };
        let router_listener = match roles.router {
            true => Some(bind(config.router.host, config.router.port, "router").await?),
            false => None,
        };
        let control_listener =
            control::bind(SocketAddr::from(([127, 0, 0, 1], config.control_port))).await?;
        let urls = Urls {
            router: router_listener
                .as_ref()
                .map(|l| url_of(l, "router"))
                .transpose()?,
            worker: worker_listener
                .as_ref()
                .map(|l| url_of(l, "worker"))
                .transpose()?,
            control: Some(url_of(&control_listener, "control API")?),
        };

        let me = identity.public();
        let state = state::initial(&config, &me, &ledger, &router, worker.as_deref(), &engine)?;

        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(RouterError::from)?;
        let core = Arc::new(Core {
            identity: identity.clone(),
            clock: deps.clock.clone(),
            config: config.clone(),
            data_dir: data_dir.clone(),
            router: router.clone(),
            worker: worker.clone(),
            ledger,
            writer,
            engine_kind: engine.as_ref().map_or(NO_ENGINE, |(e, _)| e.kind()),
            engine_url: engine.as_ref().and_then(|(_, url)| url.clone()),
            urls: urls.clone(),
            bus: EventBus::new(RING_CAPACITY),
            state: Mutex::new(state),
            owed_stale: AtomicBool::new(false),
            http,
            advertiser: tokio::sync::Mutex::new(Advertiser::default()),
            tasks: Mutex::new(None),
            stopped: OnceCell::new(),
            demo: deps.demo,
            run_files: Mutex::new(Vec::new()),
            writer_thread: Mutex::new(Some(writer_thread)),
        });
        let _ = cell.set(Arc::downgrade(&core));
        router.set_observer(Arc::new(Observer(Arc::downgrade(&core))));
        // Job receipts are ledgered by the jobs' own transactions, not the writer:
        // their commits become receipt events the same way.
        let hook: crate::core::jobs::ReceiptHook = {
            let core = Arc::downgrade(&core);
            Arc::new(move |appended| {
                if let Some(core) = core.upgrade() {
                    core.on_appended(appended);
                }
            })
        };
        router.jobs().set_receipt_hook(hook.clone());
        if let Some(jobs) = worker.as_ref().and_then(|w| w.jobs()) {
            jobs.set_receipt_hook(hook);
        }
        let handle = NodeHandle { core: core.clone() };

        let link = links::open(&config, &identity, &router, &data_dir).await?;
        let monitor_stop = CancellationToken::new();
        let control_stop = CancellationToken::new();
        let worker_task = worker
            .clone()
            .zip(worker_listener)
            .map(|(worker, listener)| {
                let stop = CancellationToken::new();
                let task = tokio::spawn(links::serve_worker(worker, listener, link, stop.clone()));
                Served { token: stop, task }
            });
        let router_task = router_listener.map(|listener| {
            let stop = CancellationToken::new();
            Served {
                token: stop.clone(),
                task: tokio::spawn(router.clone().serve(listener, stop)),
            }
        });
        monitor::spawn(Arc::downgrade(&core), monitor_stop.clone());
        owed::spawn(Arc::downgrade(&core), monitor_stop.clone());
        if roles.router
            && config.discovery.sync_every_secs > 0
            && (!config.trackers.is_empty() || config.discovery.discover_via_nostr)
        {
            discover::spawn_periodic_sync(
                Arc::downgrade(&core),
                Duration::from_secs(config.discovery.sync_every_secs),
                monitor_stop.clone(),
            );
        }

        // The token exists before the API answers, and node.json (which points at it)
        // only once both are ready.
        let token = files::new_token();
        let token_path =
            files::write_token(&data_dir, &token).map_err(|source| NodeError::RunFile {
                path: files::token_file(&data_dir),
                source,
            })?;
        let control_task = {
            let handle = handle.clone();
            let stop = control_stop.clone();
            let browser = config.browser.clone();
            tokio::spawn(async move {
                control::serve(control_listener, handle, &token, browser, stop).await
            })
        };
        *core.tasks.lock().unwrap_or_else(|p| p.into_inner()) = Some(Tasks {
            router: router_task,
            worker: worker_task,
            monitor: monitor_stop,
            control: Some(Served {
                token: control_stop,
                task: control_task,
            }),
        });
        core.run_files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(token_path);
        let info = NodeInfo {
            pid: std::process::id(),
            pubkey: me.to_string(),
            control_url: urls.control.clone().unwrap_or_default(),
            router_url: urls.router.clone(),
            worker_url: urls.worker.clone(),
            started_at_ms: deps.clock.now_ms(),
            data_dir: data_dir.clone(),
        };
        match files::write_node_info(&data_dir, &info) {
            Ok(path) => core
                .run_files
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(path),
            Err(source) => {
                handle.shutdown().await;
                return Err(NodeError::RunFile {
                    path: files::node_file(&data_dir),
                    source,
                });
            }
        }

        monitor::check_engine(&core).await;
        tracing::info!(
            pubkey = %me,
            router = urls.router.as_deref().unwrap_or("-"),
            worker = urls.worker.as_deref().unwrap_or("-"),
            control = urls.control.as_deref().unwrap_or("-"),
            engine = core.engine_kind,
            peers = router.peer_list().len(),
            "node running"
        );
        if roles.worker && toggles::advertise_at_start(&config, &toggles::load(&data_dir)) {
            let outcome = core.set_advertising(true).await;
            tracing::info!(ok = outcome.ok, "{}", outcome.message);
        }
        Ok(handle)
    }
}

fn load_or_create_identity(paths: &Paths) -> Result<Identity, KeystoreError> {
    let path = paths.identity_file();
    match keystore::load_identity(&path) {
        Err(KeystoreError::Missing(_)) => {
            let id = keystore::create_identity(&path, false)?;
            tracing::info!(pubkey = %id.public(), path = %path.display(), "created a new identity");
            Ok(id)
        }
        other => other,
    }
}

async fn bind(host: IpAddr, port: u16, what: &'static str) -> Result<TcpListener, NodeError> {
    let addr = SocketAddr::new(host, port);
    if !host.is_loopback() {
        tracing::warn!(%addr, "the {what} listens beyond loopback: anyone who can reach this address can use it");
    }
    crate::core::net::bind(addr)
        .await
        .map_err(|source| NodeError::Bind { what, addr, source })
}

fn url_of(listener: &TcpListener, what: &'static str) -> Result<String, NodeError> {
    let addr = listener.local_addr().map_err(|source| NodeError::Bind {
        what,
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    Ok(format!("http://{addr}"))
}
