//! The running node's shared core and the cloneable `NodeHandle` front ends hold: it
//! answers `NodeClient` in-process and shuts the node down in order.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::OnceCell;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::advertise::Advertiser;
use super::bus::EventBus;
use super::client::{ClientError, EventStream, NodeClient};
use super::state::{Labels, State};
use super::types::{CommandOutcome, CoreEvent, NodeCommand, Snapshot};
use crate::core::clock::SharedClock;
use crate::core::config::Config;
use crate::core::ledger::{Ledger, LedgerWriter, StoredReceipt};
use crate::core::protocol::{Identity, PublicKey};
use crate::core::router::RouterService;
use crate::core::worker::Worker;

/// How long `close` waits for the database to be let go of.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the control API gets to say goodbye once the node has stopped.
const CONTROL_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// A served listener: its stop signal and its task.
pub(super) struct Served {
    pub token: CancellationToken,
    pub task: JoinHandle<std::io::Result<()>>,
}

/// Background work stopped at shutdown, in this order.
pub(super) struct Tasks {
    pub router: Option<Served>,
    pub worker: Option<Served>,
    pub monitor: CancellationToken,
    pub control: Option<Served>,
}

/// Where the node can be reached.
#[derive(Debug, Clone)]
pub(super) struct Urls {
    pub router: Option<String>,
    pub worker: Option<String>,
    pub control: Option<String>,
}

pub(super) struct Core {
    pub identity: Identity,
    pub clock: SharedClock,
    pub config: Config,
    pub data_dir: PathBuf,
    pub router: Arc<RouterService>,
    /// `None` when the node runs no worker (`lobstah router start`).
    pub worker: Option<Arc<Worker>>,
    pub ledger: Ledger,
    pub writer: LedgerWriter,
    pub engine_kind: &'static str,
    pub engine_url: Option<String>,
    pub urls: Urls,
    pub bus: EventBus,
    pub state: Mutex<State>,
    /// The owed table may be out of date (see `owed`).
    pub owed_stale: AtomicBool,
    /// For trackers: remote, so proxies apply.
    pub http: reqwest::Client,
    pub advertiser: tokio::sync::Mutex<Advertiser>,
    pub tasks: Mutex<Option<Tasks>>,
    pub stopped: OnceCell<()>,
    pub demo: bool,
    /// Removed on a clean exit: `node.json` and `control.token`.
    pub run_files: Mutex<Vec<PathBuf>>,
    /// The ledger writer's thread; it ends, closing the database, once the last writer
    /// handle (held by the router, the worker and this core) is gone.
    pub writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Core {
    pub(super) fn me(&self) -> PublicKey {
        self.identity.public()
    }

    pub(super) fn publish(&self, event: CoreEvent) -> u64 {
        self.bus.publish(self.clock.now_ms(), event)
    }

    /// Changes the state and publishes what changed under one lock, so a snapshot never
    /// shows a change without the event's sequence number covering it.
    pub(super) fn update<R>(&self, f: impl FnOnce(&mut State) -> (R, Vec<CoreEvent>)) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (out, events) = f(&mut state);
        for event in events {
            self.publish(event);
        }
        out
    }

    pub(super) fn labels(&self) -> Labels {
        self.router
            .peer_list()
            .into_iter()
            .map(|p| (p.pubkey, p.label))
            .collect()
    }

    /// The ledger committed receipts (called on its writer thread).
    pub(super) fn on_appended(&self, appended: &[StoredReceipt]) {
        let me = self.me();
        let balance = match self.ledger.balance(&me) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the balance after a commit");
                return;
            }
        };
        let labels = self.labels();
        // Either way round: served by us (owed to us) or by a peer (owed by us).
        if appended.iter().any(|s| {
            let r = s.receipt.receipt();
            r.worker_pubkey != r.requester_pubkey
        }) {
            self.owed_stale.store(true, Ordering::Release);
        }
        self.update(|state| ((), state.apply_receipts(&me, appended, &balance, &labels)));
    }

    /// Stops in order: the router (its in-flight requests may still need our worker),
    /// then the worker, each within what is left of the grace period; then withdraws
    /// the advertisement, makes the ledger durable, tells subscribers, stops the
    /// control API and removes the run files.
    async fn shutdown_inner(self: Arc<Self>) {
        let grace = Duration::from_secs(self.config.shutdown_grace_secs);
        let deadline = tokio::time::Instant::now() + grace;
        let tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).take();
        tracing::info!(
            grace_secs = grace.as_secs(),
            "shutting down: no new requests, finishing in-flight ones"
        );
        let mut control = None;
        if let Some(tasks) = tasks {
            if let Some(router) = tasks.router {
                stop(router, deadline, "router").await;
            }
            if let Some(worker) = tasks.worker {
                stop(worker, deadline, "worker").await;
            }
            tasks.monitor.cancel();
            control = tasks.control;
        }
        self.withdraw_for_shutdown().await;
        if let Err(e) = self.writer.flush().await {
            tracing::error!(error = %e, "cannot flush the ledger at shutdown");
        }
        self.publish(CoreEvent::ShuttingDown);
        self.bus.close();
        if let Some(control) = control {
            stop(
                control,
                tokio::time::Instant::now() + CONTROL_STOP_TIMEOUT,
                "control API",
            )
            .await;
        }
        let files = std::mem::take(&mut *self.run_files.lock().unwrap_or_else(|p| p.into_inner()));
        for file in files {
            if let Err(e) = std::fs::remove_file(&file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(file = %file.display(), error = %e, "cannot remove a run file");
            }
        }
        tracing::info!("node stopped");
    }
}

async fn stop(served: Served, deadline: tokio::time::Instant, what: &str) {
    served.token.cancel();
    let mut task = served.task;
    match tokio::time::timeout_at(deadline, &mut task).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the {what} stopped with an error"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the {what} task failed"),
        Err(_) => {
            tracing::warn!(
                "the {what} still had requests in flight when the grace period ended; cutting them off"
            );
            task.abort();
        }
    }
}

/// A running node. Cheap to clone; every clone drives the same node.
#[derive(Clone)]
pub struct NodeHandle {
    pub(super) core: Arc<Core>,
}

impl NodeHandle {
    pub fn pubkey(&self) -> PublicKey {
        self.core.me()
    }

    /// `http://127.0.0.1:PORT`; the OpenAI base URL is this + `/v1`. Empty when the
    /// node runs no router.
    pub fn router_url(&self) -> String {
        self.core.urls.router.clone().unwrap_or_default()
    }

    /// Empty when the node runs no worker.
    pub fn worker_url(&self) -> String {
        self.core.urls.worker.clone().unwrap_or_default()
    }

    pub fn control_url(&self) -> Option<String> {
        self.core.urls.control.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.core.data_dir
    }

    pub fn config(&self) -> &Config {
        &self.core.config
    }

    pub fn ledger(&self) -> &Ledger {
        &self.core.ledger
    }

    pub fn router(&self) -> &Arc<RouterService> {
        &self.core.router
    }

    /// `None` when the node runs no worker.
    pub fn worker(&self) -> Option<&Arc<Worker>> {
        self.core.worker.as_ref()
    }

    /// The snapshot, without going through the async trait.
    pub fn snapshot_now(&self) -> Snapshot {
        self.core.snapshot()
    }

    /// Stops the node gracefully (see `Core::shutdown_inner`). Every caller waits for
    /// the same single shutdown; calling it again after it finished returns at once.
    pub async fn shutdown(&self) {
        let core = self.core.clone();
        self.core
            .stopped
            .get_or_init(|| core.shutdown_inner())
            .await;
    }

    /// Shuts down, lets go of this handle and waits (up to `CLOSE_TIMEOUT`) for the
    /// database to be closed, so the next open finds it clean rather than in need of
    /// repair. `false` if something still held the node (another handle, a request that
    /// outlived the grace period) when time ran out; the ledger is durable either way.
    pub async fn close(self) -> bool {
        self.shutdown().await;
        let thread = self
            .core
            .writer_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(self);
        let Some(thread) = thread else {
            return true;
        };
        let until = tokio::time::Instant::now() + CLOSE_TIMEOUT;
        // The thread is ending, not working: a short poll is cheaper than a blocking join
        // that could hang a runtime thread if a handle is still alive somewhere.
        while !thread.is_finished() {
            if tokio::time::Instant::now() >= until {
                tracing::warn!(
                    "the database is still in use; it will be repaired on the next start"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        thread.join().is_ok()
    }

    /// Whether `shutdown` has completed.
    pub fn is_stopped(&self) -> bool {
        self.core.stopped.initialized()
    }
}

impl NodeClient for NodeHandle {
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, ClientError>> {
        let snapshot = self.core.snapshot();
        async move { Ok(snapshot) }.boxed()
    }

    fn subscribe(&self, after: Option<u64>) -> BoxFuture<'_, Result<EventStream, ClientError>> {
        let stream = self.core.bus.subscribe(after);
        async move { Ok(stream) }.boxed()
    }

    fn command(&self, command: NodeCommand) -> BoxFuture<'_, Result<CommandOutcome, ClientError>> {
        let core = self.core.clone();
        async move { Ok(core.command(command).await) }.boxed()
    }
}
