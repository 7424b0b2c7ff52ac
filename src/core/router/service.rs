//! The router's shared state: our identity, the peer book, each peer's cached capacity,
//! the selection state machine, and the ledger receipts land in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::capacity::{self, CapacityState, CapacityTable};
use super::dialects::Upstream;
use super::intake::{ReceiptIntake, ReceiptRejection, Verdict};
use super::jobs::{RouterJobError, RouterJobs};
use super::plausible::Delivered;
use super::selection::{Effect, PeerView, SelectionConfig, SelectionEvent, Selector};
use super::urls::ChatUrls;
use crate::core::peers::{PeerBook, PeerRecord, PeerSource};
use axum::http::HeaderValue;

/// What the router knows of one peer's capacity, owned, for building `PeerView`s.
#[derive(Debug, Clone)]
pub(super) struct PeerSnapshot {
    pub pubkey: PublicKey,
    pub models: Vec<String>,
    pub queue_depth: u32,
    pub tier: Tier,
    pub reachable: bool,
    pub embeddings: bool,
}

impl PeerSnapshot {
    pub(super) fn view(&self) -> PeerView<'_> {
        PeerView {
            pubkey: self.pubkey,
            models: &self.models,
            queue_depth: self.queue_depth,
            tier: self.tier,
            reachable: self.reachable,
        }
    }
}
use crate::core::api_error::ApiError;
use crate::core::clock::SharedClock;
use crate::core::discovery::{Lookup, SystemLookup, UrlPolicy, guarded_client};
use crate::core::ledger::{Ledger, LedgerWriter};
use crate::core::metrics::RouterMetrics;
use crate::core::net::{BrowserPolicy, ServerLimits};
use crate::core::protocol::{Identity, PublicKey, RequestProof, Tier};

/// Told what the router decides (exclusions, refused receipts) as it happens, so a node
/// can publish it as events. Called with no router lock held; must not block.
pub trait RouterObserver: Send + Sync + 'static {
    fn effects(&self, effects: &[Effect]);
    fn receipt_rejected(&self, rejection: &ReceiptRejection);
}

/// Default for `RouterConfig::stream_idle_timeout`: a minute without a token is not
/// a slow model any more, and the worker's own bound (45 s) comes first.
pub const DEFAULT_STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a peer whose link failed is reached at its URL instead, when it has one.
pub(super) const LINK_FALLBACK_HOLD: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct RouterConfig {
    pub identity: Identity,
    pub clock: SharedClock,
    pub selection: SelectionConfig,
    pub body_limit: usize,
    pub connect_timeout: Duration,
    /// How long a peer may take to start answering before the router tries the next.
    pub first_byte_timeout: Duration,
    /// Silence allowed from a peer between two chunks of a stream once it has begun;
    /// beyond, the stream is cut, the client told, the peer charged with a failure.
    pub stream_idle_timeout: Duration,
    /// Connections, request heads and bodies, slow clients.
    pub limits: ServerLimits,
    /// Which web pages may use the router, and by which Host names.
    pub browser: BrowserPolicy,
    pub capacity_timeout: Duration,
    /// Which addresses of discovered (not hand-added) peers may be dialled.
    pub url_policy: UrlPolicy,
    /// Name resolution for discovered peers, checked at every connection.
    pub lookup: Arc<dyn Lookup>,
    /// Poll peers for finished jobs in the background (off: only a client's GET does).
    pub collect_jobs: bool,
    /// How often receipts are counter-signed back to their workers.
    pub confirm_every: Duration,
}

impl RouterConfig {
    pub fn new(identity: Identity, clock: SharedClock) -> Self {
        RouterConfig {
            identity,
            clock,
            selection: SelectionConfig::default(),
            body_limit: 4 * 1024 * 1024,
            connect_timeout: Duration::from_secs(3),
            first_byte_timeout: Duration::from_secs(120),
            stream_idle_timeout: DEFAULT_STREAM_IDLE_TIMEOUT,
            limits: ServerLimits::default(),
            browser: BrowserPolicy::default(),
            capacity_timeout: Duration::from_secs(3),
            url_policy: UrlPolicy::default(),
            lookup: Arc::new(SystemLookup),
            collect_jobs: true,
            confirm_every: Duration::from_millis(500),
        }
    }
}

pub struct RouterService {
    pub(super) config: RouterConfig,
    /// For peers the operator added by hand: dialled as given.
    pub(super) client: reqwest::Client,
    /// For discovered peers: through the URL safety guard.
    pub(super) guarded: reqwest::Client,
    /// The bridge onto peer links, once the node has bound its endpoint.
    #[cfg(unix)]
    links: std::sync::OnceLock<Arc<crate::core::links::Bridge>>,
    pub(super) ledger: Ledger,
    pub(super) writer: LedgerWriter,
    pub(super) book: PeerBook,
    pub(super) metrics: RouterMetrics,
    pub(super) peers: RwLock<Vec<PeerRecord>>,
    /// The URL policy's verdict on each discovered peer's URL without resolving (IP
    /// literals, which no resolver sees): judged when the book is read, since neither the
    /// policy nor a booked URL changes in between.
    url_verdicts: RwLock<HashMap<String, Result<(), String>>>,
    pub(super) capacity: RwLock<CapacityTable>,
    pub(super) selector: Mutex<Selector>,
    pub(super) jobs: Arc<RouterJobs>,
    in_flight: Mutex<HashMap<PublicKey, u32>>,
    pub(super) chat_urls: ChatUrls,
    /// Our public key as the `x-lobstah-requester` header value, formatted once.
    pub(super) requester_header: HeaderValue,
    pub(super) intake: ReceiptIntake,
    pub(super) peer_counters: Mutex<HashMap<PublicKey, super::peer_stats::PeerCounters>>,
    /// Each peer's last minute of tokens and timings (see `peer_stats`).
    pub(super) peer_speed: Mutex<HashMap<PublicKey, super::peer_stats::PeerSpeed>>,
    /// The answers under way, for the operator (see `in_flight`).
    pub(super) in_flight_rows: Mutex<super::in_flight::InFlightTable>,
    refresh: tokio::sync::Mutex<()>,
    observer: OnceLock<Arc<dyn RouterObserver>>,
    /// Routings that may outlive their client (one per connection the listener allows),
    /// so resetting connections cannot pile up unbounded work behind the connection cap.
    pub(super) detached_routings: Arc<tokio::sync::Semaphore>,
    /// Peers to ask for receipts we may never have read (see `reconcile`).
    pub(super) reconciler: super::reconcile::Reconciler,
}

/// Counts a request against a peer while it runs, so load spreads before the next
/// capacity poll shows it.
pub struct InFlight {
    pub(super) service: Arc<RouterService>,
    pub(super) peer: PublicKey,
    /// Its row among the requests in flight (`track_answer`); job offers have none.
    pub(super) row: Option<u64>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut map) = self.service.in_flight.lock()
            && let Some(n) = map.get_mut(&self.peer)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(row) = self.row {
            self.service.lock_in_flight().close(row);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(transparent)]
    Peers(#[from] crate::core::peers::PeerError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("our public key is not a valid HTTP header value")]
    Header,
    #[error("cannot open the job tables: {0}")]
    Jobs(#[from] RouterJobError),
    #[error("cannot open the confirmation tables: {0}")]
    Store(#[from] crate::core::store::StoreError),
}

impl RouterService {
    pub fn new(
        config: RouterConfig,
        ledger: Ledger,
        writer: LedgerWriter,
        book: PeerBook,
    ) -> Result<Arc<Self>, RouterError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(crate::core::net::CLIENT_POOL_IDLE)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let guarded = guarded_client(
            config.url_policy,
            config.lookup.clone(),
            config.connect_timeout,
        )?;
        let peers = book.list()?;
        let url_verdicts = RwLock::new(url_verdicts(&config.url_policy, &peers));
        // A public key's text is 68 ASCII characters: always a valid header value.
        let requester_header = HeaderValue::from_str(&config.identity.public().to_string())
            .map_err(|_| RouterError::Header)?;
        let jobs = Arc::new(RouterJobs::open(ledger.db().clone())?);
        Self::open_confirm_tables(ledger.db())?;
        let config_max_connections = config.limits.max_connections;
        let intake = ReceiptIntake::new(config.identity.public(), writer.clone());
        Ok(Arc::new(RouterService {
            selector: Mutex::new(Selector::new(config.selection.clone())),
            config,
            client,
            guarded,
            #[cfg(unix)]
            links: std::sync::OnceLock::new(),
            ledger,
            writer,
            book,
            metrics: RouterMetrics::new(),
            peers: RwLock::new(peers),
            url_verdicts,
            capacity: RwLock::new(CapacityTable::default()),
            in_flight: Mutex::new(HashMap::new()),
            chat_urls: ChatUrls::new(),
            requester_header,
            intake,
            peer_counters: Mutex::new(HashMap::new()),
            peer_speed: Mutex::new(HashMap::new()),
            in_flight_rows: Mutex::new(Default::default()),
            refresh: tokio::sync::Mutex::new(()),
            observer: OnceLock::new(),
            jobs,
            detached_routings: Arc::new(tokio::sync::Semaphore::new(config_max_connections.max(1))),
            reconciler: Default::default(),
        }))
    }

    /// The client jobs this router holds.
    pub fn jobs(&self) -> &Arc<RouterJobs> {
        &self.jobs
    }

    pub fn pubkey(&self) -> PublicKey {
        self.config.identity.public()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn book(&self) -> &PeerBook {
        &self.book
    }

    pub fn metrics(&self) -> &RouterMetrics {
        &self.metrics
    }

    /// Sets the one observer; `false` if one was set already.
    pub fn set_observer(&self, observer: Arc<dyn RouterObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    pub fn now_ms(&self) -> u64 {
        self.config.clock.now_ms()
    }

    /// Re-reads the peer book (after an add or remove) and forgets removed peers.
    pub fn reload_peers(&self) -> Result<(), RouterError> {
        let fresh = self.book.list()?;
        // Swap the list under a short lock and touch the selector and the capacity table
        // after it: `peers_json` takes those locks in the other order.
        *self.url_verdicts.write().unwrap_or_else(|p| p.into_inner()) =
            url_verdicts(&self.config.url_policy, &fresh);
        let old = std::mem::replace(
            &mut *self.peers.write().unwrap_or_else(|p| p.into_inner()),
            fresh.clone(),
        );
        for unlinked in old.iter().filter(|old| {
            old.is_linked()
                && !fresh
                    .iter()
                    .any(|p| p.pubkey == old.pubkey && p.is_linked())
        }) {
            self.forget_link(&unlinked.pubkey);
        }
        for gone in old
            .iter()
            .filter(|old| !fresh.iter().any(|p| p.pubkey == old.pubkey))
        {
            self.lock_selector()
                .handle(SelectionEvent::Forget { peer: gone.pubkey });
            self.capacity
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&gone.pubkey);
        }
        for moved in fresh.iter().filter(|p| {
            old.iter()
                .any(|o| o.pubkey == p.pubkey && (o.url != p.url || o.link != p.link))
        }) {
            // What we learned at its old address says nothing about the new one.
            self.capacity
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&moved.pubkey);
        }
        Ok(())
    }

    /// The peers as requests reach them now: a peer with both a link and a URL whose
    /// link just failed is, for a while, an HTTP peer (see [`Self::falls_back`]).
    pub fn peer_list(&self) -> Vec<PeerRecord> {
        self.booked_peers()
            .into_iter()
            .map(|p| self.as_reached(p))
            .collect()
    }

    /// The peers as the book holds them, transports and all.
    pub(super) fn booked_peers(&self) -> Vec<PeerRecord> {
        self.peers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn peer_record(&self, peer: &PublicKey) -> Option<PeerRecord> {
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|p| &p.pubkey == peer)
            .cloned()
            .map(|p| self.as_reached(p))
    }

    fn as_reached(&self, mut peer: PeerRecord) -> PeerRecord {
        if self.falls_back(&peer) {
            peer.link = None;
        }
        peer
    }

    /// A peer reachable both ways is dialled on its encrypted link first; when that
    /// dial fails, its URL carries requests for [`LINK_FALLBACK_HOLD`], then the link is
    /// tried again.
    pub(super) fn falls_back(&self, peer: &PeerRecord) -> bool {
        peer.is_linked() && !peer.url.is_empty() && self.link_failed_lately(&peer.pubkey)
    }

    #[cfg(unix)]
    fn link_failed_lately(&self, peer: &PublicKey) -> bool {
        self.links
            .get()
            .is_some_and(|b| b.failed_within(peer, LINK_FALLBACK_HOLD))
    }

    #[cfg(not(unix))]
    fn link_failed_lately(&self, _peer: &PublicKey) -> bool {
        true
    }

    /// The client to reach `peer` with. Peers added by hand are dialled as given;
    /// discovered ones only through the guard, and never at an IP literal the policy
    /// refuses (no resolver sees those).
    pub(super) fn client_for(&self, peer: &PeerRecord) -> Result<reqwest::Client, String> {
        if let Some(addrs) = &peer.link {
            return self.link_client(peer, addrs);
        }
        if peer.source == PeerSource::Manual {
            return Ok(self.client.clone());
        }
        let known = self
            .url_verdicts
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&peer.url)
            .cloned();
        // A record read before the last reload is judged on the spot.
        known
            .unwrap_or_else(|| url_verdict(&self.config.url_policy, &peer.url))
            .map(|()| self.guarded.clone())
    }

    /// A linked peer's client: the link proves who dials and who answers, so the URL
    /// policy (which guards what a discovered URL may point at) has nothing to judge.
    #[cfg(unix)]
    fn link_client(
        &self,
        peer: &PeerRecord,
        addrs: &[std::net::SocketAddr],
    ) -> Result<reqwest::Client, String> {
        let Some(bridge) = self.links.get() else {
            return Err(
                "this router has no link endpoint; start it as a node to reach peers by key".into(),
            );
        };
        let connect_timeout = self.config.connect_timeout;
        bridge.client(&peer.pubkey, addrs, &peer.link_relays, || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .pool_max_idle_per_host(256)
                .pool_idle_timeout(crate::core::net::CLIENT_POOL_IDLE)
                .redirect(reqwest::redirect::Policy::none())
        })
    }

    #[cfg(not(unix))]
    fn link_client(
        &self,
        _peer: &PeerRecord,
        _addrs: &[std::net::SocketAddr],
    ) -> Result<reqwest::Client, String> {
        Err("peer links need a Unix-like system".into())
    }

    /// Gives the router its way onto peer links; set once, when the node starts.
    #[cfg(unix)]
    pub fn attach_links(&self, bridge: Arc<crate::core::links::Bridge>) {
        let _ = self.links.set(bridge);
    }

    /// The link endpoint this router dials from, if it has one.
    #[cfg(unix)]
    pub fn link_endpoint(&self) -> Option<&crate::core::links::LinkEndpoint> {
        self.links.get().map(|b| b.link())
    }

    #[cfg(not(unix))]
    pub fn link_endpoint(&self) -> Option<&crate::core::links::LinkEndpoint> {
        None
    }

    #[cfg(unix)]
    fn forget_link(&self, peer: &PublicKey) {
        if let Some(bridge) = self.links.get() {
            bridge.forget(peer);
        }
    }

    #[cfg(not(unix))]
    fn forget_link(&self, _peer: &PublicKey) {}

    /// How the open link to `peer` is carried, if one is open.
    #[cfg(unix)]
    pub fn link_path(&self, peer: &PublicKey) -> Option<crate::core::links::LinkPath> {
        self.links.get().and_then(|b| b.path(peer))
    }

    #[cfg(not(unix))]
    pub fn link_path(&self, _peer: &PublicKey) -> Option<crate::core::links::LinkPath> {
        None
    }

    pub(super) fn lock_selector(&self) -> std::sync::MutexGuard<'_, Selector> {
        self.selector.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks every peer whose capacity is older than the TTL; `force` asks all of them.
    pub async fn refresh_capacity(&self, force: bool) {
        let _one_at_a_time = self.refresh.lock().await;
        let now = self.now_ms();
        let peers = self.peer_list();
        let due: Vec<PeerRecord> = if force {
            peers
        } else {
            let stale = self
                .capacity
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .stale(peers.iter().map(|p| &p.pubkey), now);
            peers
                .into_iter()
                .filter(|p| stale.contains(&p.pubkey))
                .collect()
        };
        let fetches = due.iter().map(|p| async move {
            match self.client_for(p) {
                Ok(client) => {
                    capacity::fetch(
                        &client,
                        p.base(),
                        &p.pubkey,
                        now,
                        self.config.capacity_timeout,
                    )
                    .await
                }
                Err(reason) => CapacityState::Unreachable {
                    reason,
                    checked_at_ms: now,
                },
            }
        });
        let results = futures_util::future::join_all(fetches).await;
        let current = self.peer_list();
        let mut table = self.capacity.write().unwrap_or_else(|p| p.into_inner());
        for (peer, state) in due.iter().zip(results) {
            if !current
                .iter()
                .any(|p| p.pubkey == peer.pubkey && p.url == peer.url && p.link == peer.link)
            {
                // Removed or moved while we asked: the answer is about an old address.
                continue;
            }
            if let CapacityState::Unreachable { reason, .. } = &state {
                tracing::debug!(peer = %peer.pubkey.short(), %reason, "peer unreachable");
            }
            table.set(peer.pubkey, state);
        }
    }

    /// Makes sure every peer was asked at least once; later refreshes run in the
    /// background so requests do not wait on them.
    pub(super) async fn ensure_capacity(&self) {
        let missing = {
            let table = self.capacity.read().unwrap_or_else(|p| p.into_inner());
            self.peers
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|p| table.get(&p.pubkey).is_none())
        };
        if missing {
            self.refresh_capacity(false).await;
        }
    }

    /// Keeps capacity fresh and expires exclusions until `shutdown`.
    pub fn spawn_maintenance(
        self: &Arc<Self>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = service.now_ms();
                let effects = service
                    .lock_selector()
                    .handle(SelectionEvent::Tick { now_ms: now });
                service.apply_effects(&effects);
                service.refresh_capacity(false).await;
            }
        })
    }

    pub(super) fn peer_snapshots(&self) -> Vec<PeerSnapshot> {
        self.peer_snapshots_for(false)
    }

    /// With `jobs`, a peer's depth also counts the jobs waiting in its job queue: a job
    /// placed there runs after them.
    fn peer_snapshots_for(&self, jobs: bool) -> Vec<PeerSnapshot> {
        let peers = self.peers.read().unwrap_or_else(|p| p.into_inner());
        let table = self.capacity.read().unwrap_or_else(|p| p.into_inner());
        let in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        peers
            .iter()
            .map(|p| match table.get(&p.pubkey) {
                Some(CapacityState::Known { capacity, .. }) => PeerSnapshot {
                    pubkey: p.pubkey,
                    models: capacity.models.clone(),
                    queue_depth: capacity.queue_depth
                        + in_flight.get(&p.pubkey).copied().unwrap_or(0)
                        + if jobs { capacity.jobs_queued } else { 0 },
                    tier: capacity.tier,
                    reachable: true,
                    embeddings: capacity.embeddings,
                },
                _ => PeerSnapshot {
                    pubkey: p.pubkey,
                    models: Vec::new(),
                    queue_depth: 0,
                    tier: Tier::BestEffort,
                    reachable: false,
                    embeddings: false,
                },
            })
            .collect()
    }

    /// Candidates for a request of `kind`: a peer that cannot serve that kind of
    /// request is not offered it.
    pub(super) fn candidates_for(
        &self,
        model: &str,
        kind: Upstream,
        prefer: Tier,
        now_ms: u64,
    ) -> Vec<PublicKey> {
        let mut snapshots = self.peer_snapshots();
        if kind == Upstream::Embeddings {
            snapshots.retain(|s| s.embeddings);
        }
        let views: Vec<PeerView<'_>> = snapshots.iter().map(PeerSnapshot::view).collect();
        self.lock_selector()
            .candidates(model, prefer, &views, now_ms)
    }

    /// Peers to offer a job for `model` to, best first: batch-tier peers lead, any other
    /// capable peer follows.
    pub(super) fn job_candidates(&self, model: &str, now_ms: u64) -> Vec<PublicKey> {
        let snapshots = self.peer_snapshots_for(true);
        let views: Vec<PeerView<'_>> = snapshots.iter().map(PeerSnapshot::view).collect();
        self.lock_selector()
            .candidates(model, Tier::Batch, &views, now_ms)
    }

    /// Whether the last capacity check found `peer` unreachable.
    pub(super) fn known_unreachable(&self, peer: &PublicKey) -> bool {
        matches!(
            self.capacity
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(peer),
            Some(CapacityState::Unreachable { .. })
        )
    }

    pub(super) fn track(self: &Arc<Self>, peer: PublicKey) -> InFlight {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_insert(0) += 1;
        InFlight {
            service: self.clone(),
            peer,
            row: None,
        }
    }

    /// Refuses new work while the ledger cannot be written (a full disk): the receipt
    /// of an answer could not be kept.
    pub(super) fn taking_work(&self) -> Result<(), ApiError> {
        match self.ledger_unavailable() {
            Some(cause) => Err(ApiError::not_taking_work(&cause)),
            None => Ok(()),
        }
    }

    /// Why the ledger refuses writes now, if it does.
    pub fn ledger_unavailable(&self) -> Option<String> {
        self.ledger.db().unavailable()
    }

    pub(super) fn record_success(&self, peer: PublicKey, latency: Duration) {
        let now = self.now_ms();
        let effects = self.lock_selector().handle(SelectionEvent::Succeeded {
            peer,
            latency_ms: latency.as_millis() as u64,
            now_ms: now,
        });
        self.apply_effects(&effects);
    }

    pub(super) fn record_failure(&self, peer: PublicKey, reason: String) {
        self.metrics.peer_failures.inc();
        // It may have finished and committed a receipt we never read.
        let now = self.now_ms();
        self.reconciler.mark(peer, now);
        tracing::warn!(peer = %peer.short(), %reason, "peer attempt failed");
        let effects = self.lock_selector().handle(SelectionEvent::Failed {
            peer,
            reason,
            now_ms: now,
        });
        self.apply_effects(&effects);
    }

    /// The peer lied about the work it did: it sits out at once (see
    /// `SelectionEvent::Distrusted`).
    pub(super) fn record_distrust(&self, peer: PublicKey, reason: String) {
        self.metrics.peer_failures.inc();
        tracing::warn!(peer = %peer.short(), %reason, "peer distrusted");
        let effects = self.lock_selector().handle(SelectionEvent::Distrusted {
            peer,
            reason,
            now_ms: self.now_ms(),
        });
        self.apply_effects(&effects);
    }

    fn apply_effects(&self, effects: &[Effect]) {
        for effect in effects {
            match effect {
                Effect::Excluded {
                    peer,
                    until_ms,
                    reason,
                } => {
                    self.metrics.exclusions.inc();
                    tracing::warn!(peer = %peer.short(), %reason, until_ms, "peer excluded");
                }
                Effect::Readmitted { peer } => {
                    tracing::info!(peer = %peer.short(), "peer readmitted after its cooldown (on probation)");
                }
                Effect::Restored { peer } => {
                    tracing::info!(peer = %peer.short(), "peer healthy again");
                }
                Effect::Forgotten { .. } => {}
            }
        }
        if effects.is_empty() {
            // The common case, once per request: nothing changed, nothing to recount.
            return;
        }
        let now = self.now_ms();
        let excluded = self.lock_selector().exclusions(now).len();
        self.metrics.excluded_peers.set(excluded as i64);
        if let Some(observer) = self.observer.get() {
            observer.effects(effects);
        }
    }

    /// Verifies the receipt a peer sent with its answer and ledgers it (see `intake`),
    /// returning once it is durable; a refused one is logged, counted and remembered,
    /// never ledgered. The caller hands the end of the answer to its client only after
    /// this returns `Ok`: an `Err` means the receipt could not be written, and the
    /// answer is withheld.
    pub(super) async fn take_receipt(
        self: &Arc<Self>,
        peer: PublicKey,
        payload: Option<&str>,
        delivered: Delivered,
        request: Option<RequestProof>,
    ) -> Result<(), ApiError> {
        let verdict = self
            .intake
            .take(peer, payload, delivered, request, self.now_ms())
            .await;
        match verdict {
            Ok(Verdict::Accepted {
                output_tokens,
                took_ms,
            }) => {
                self.metrics.receipts_accepted.inc();
                self.count(peer, |c| c.receipts += 1);
                self.note_output(peer, output_tokens, took_ms);
                Ok(())
            }
            Ok(Verdict::Refused {
                reason,
                detail,
                distrust,
            }) => {
                if distrust {
                    self.record_distrust(peer, format!("implausible receipt: {detail}"));
                }
                self.reject(peer, reason, detail);
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot ledger a verified receipt; the answer is withheld");
                self.metrics.outcome("ledger_unavailable");
                Err(ApiError::ledger_unavailable(&e))
            }
        }
    }

    pub(super) fn reject(&self, peer: PublicKey, reason: &str, detail: String) {
        tracing::warn!(peer = %peer.short(), reason, %detail, "receipt refused");
        self.metrics.rejected(reason);
        self.count(peer, |c| c.refused_receipts += 1);
        let rejection = ReceiptRejection {
            at_ms: self.now_ms(),
            peer,
            reason: reason.to_string(),
            detail,
        };
        if let Some(observer) = self.observer.get() {
            observer.receipt_rejected(&rejection);
        }
        self.intake.remember(rejection);
    }

    pub fn recent_rejections(&self) -> Vec<ReceiptRejection> {
        self.intake.recent()
    }

    /// Waits until every receipt accepted so far is durable.
    pub async fn flush_ledger(&self) {
        let _ = self.writer.flush().await;
    }
}

/// Whether the policy lets a discovered peer's URL through without resolving anything.
fn url_verdict(policy: &UrlPolicy, url: &str) -> Result<(), String> {
    policy
        .check_syntax(url)
        .map(drop)
        .map_err(|e| format!("refused by the URL safety policy: {e}"))
}

fn url_verdicts(policy: &UrlPolicy, peers: &[PeerRecord]) -> HashMap<String, Result<(), String>> {
    peers
        .iter()
        .filter(|p| p.source != PeerSource::Manual)
        .map(|p| (p.url.clone(), url_verdict(policy, &p.url)))
        .collect()
}
