//! Who gets one of a server's connection slots, so that no one client can hold a
//! listener. Three rules, applied as connections are accepted:
//! - at most `max_connections` are open at once;
//! - at most `max_connections_per_address` of them come from one client address (an
//!   IPv6 address counts by its /64, what one subscriber is usually given); one more is
//!   answered 503 at once and closed, before it costs a task or a slot;
//! - when every slot is taken, the oldest connection that has not yet shown it is a
//!   real client (sent a whole request head, or, on the control API, its token) gives
//!   its slot to the newcomer. Only when all open connections have shown that does a
//!   newcomer wait, in the kernel's accept backlog.
//!
//! The connection's `Standing` is what its serving task and its requests share: a
//! handler proves it, the accept loop evicts it.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::listener::{Limited, set_nodelay};
use super::stats::ConnectionStats;
use crate::core::api_error::ApiError;

/// Whose connections count as one client's for the per-address bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKey {
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6Prefix([u8; 8]),
}

impl AddressKey {
    pub fn of(ip: IpAddr) -> Self {
        let v6 = match ip {
            IpAddr::V4(v4) => return AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => v6,
        };
        if let Some(v4) = v6.to_ipv4_mapped() {
            return AddressKey::V4(v4.octets());
        }
        let mut prefix = [0; 8];
        prefix.copy_from_slice(&v6.octets()[..8]);
        AddressKey::V6Prefix(prefix)
    }
}

/// Whether a connection has shown it is a real client, and the signal that takes its
/// slot away. Cloned into the connection's task and into each of its requests.
#[derive(Debug, Clone, Default)]
pub struct Standing(Arc<StandingInner>);

#[derive(Debug, Default)]
struct StandingInner {
    proven: AtomicBool,
    evicted: CancellationToken,
}

impl Standing {
    /// The connection has shown it is a real client: it keeps its slot until it closes.
    pub fn prove(&self) {
        self.0.proven.store(true, Ordering::Relaxed);
    }

    pub fn is_proven(&self) -> bool {
        self.0.proven.load(Ordering::Relaxed)
    }

    /// Completes when the accept loop has given this connection's slot to another.
    pub fn evicted(&self) -> WaitForCancellationFuture<'_> {
        self.0.evicted.cancelled()
    }

    fn evict(&self) {
        self.0.evicted.cancel();
    }

    fn is_evicted(&self) -> bool {
        self.0.evicted.is_cancelled()
    }
}

#[derive(Default)]
struct Table {
    next_id: u64,
    /// Open connections, oldest first (ids only grow).
    open: BTreeMap<u64, (AddressKey, Standing)>,
    by_address: HashMap<AddressKey, usize>,
}

type SharedTable = Arc<Mutex<Table>>;

fn lock(table: &SharedTable) -> MutexGuard<'_, Table> {
    // The table is consistent after every statement, so a panic elsewhere leaves it usable.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An open connection's place: its permit, and its line in the table, given back when
/// the connection closes.
pub(super) struct Slot {
    id: u64,
    address: AddressKey,
    standing: Standing,
    table: SharedTable,
    stats: ConnectionStats,
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    pub(super) fn standing(&self) -> &Standing {
        &self.standing
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = lock(&self.table);
        table.open.remove(&self.id);
        if let Some(count) = table.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                table.by_address.remove(&self.address);
            }
        }
        self.stats.open.dec();
    }
}

/// The TCP listener with the three rules applied; see the module documentation.
pub struct Admission {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    table: SharedTable,
    per_address: usize,
    write_stall: Duration,
    stats: ConnectionStats,
}

impl Admission {
    /// Bounds are at least 1.
    pub fn new(
        inner: TcpListener,
        max_connections: usize,
        per_address: usize,
        write_stall: Duration,
        stats: ConnectionStats,
    ) -> Self {
        Admission {
            inner,
            permits: Arc::new(Semaphore::new(max_connections.max(1))),
            table: SharedTable::default(),
            per_address: per_address.max(1),
            write_stall,
            stats,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        lock(&self.table).open.len()
    }

    /// The next connection given a slot. Connections refused on the way (over their
    /// address's bound) are answered and closed here.
    pub async fn accept(&mut self) -> (Limited<TcpStream>, SocketAddr) {
        loop {
            let ready = self.permits.clone().try_acquire_owned().ok();
            // axum's accept retries on errors (a full file table among them) by itself.
            let (mut stream, addr) = Listener::accept(&mut self.inner).await;
            let address = AddressKey::of(addr.ip());
            let from_there = lock(&self.table)
                .by_address
                .get(&address)
                .copied()
                .unwrap_or(0);
            if from_there >= self.per_address {
                self.stats.refuse("over_address_bound");
                refuse(&stream, self.per_address);
                continue;
            }
            let permit = match ready {
                Some(permit) => permit,
                None => {
                    self.evict_oldest_unproven();
                    match self.permits.clone().acquire_owned().await {
                        Ok(permit) => permit,
                        // Never closed; were it, this connection cannot be served.
                        Err(_) => continue,
                    }
                }
            };
            set_nodelay(&mut stream);
            let slot = self.register(address, permit);
            return (Limited::new(stream, Some(slot), self.write_stall), addr);
        }
    }

    fn register(&self, address: AddressKey, permit: OwnedSemaphorePermit) -> Slot {
        let standing = Standing::default();
        let mut table = lock(&self.table);
        let id = table.next_id;
        table.next_id += 1;
        table.open.insert(id, (address, standing.clone()));
        *table.by_address.entry(address).or_insert(0) += 1;
        self.stats.open.inc();
        Slot {
            id,
            address,
            standing,
            table: self.table.clone(),
            stats: self.stats.clone(),
            _permit: permit,
        }
    }

    /// Takes the slot of the oldest connection that has not proven itself, if any.
    fn evict_oldest_unproven(&self) {
        let table = lock(&self.table);
        let oldest = table
            .open
            .values()
            .map(|(_, standing)| standing)
            .find(|s| !s.is_proven() && !s.is_evicted());
        if let Some(standing) = oldest {
            standing.evict();
            self.stats.refuse("evicted");
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Answers a connection over its address's bound with a 503 in OpenAI's shape, as far
/// as the socket takes it without waiting; dropping the stream then closes it.
fn refuse(stream: &TcpStream, bound: usize) {
    let body = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_connections",
        format!(
            "this address already has {bound} connections open here, the most one client may hold; close some and retry"
        ),
    )
    .body()
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.try_write(answer.as_bytes());
}

#[cfg(test)]
mod tests;
