//! The registry: which signed announcements the tracker holds, and the rules for taking
//! one in or letting one go. Pure: no IO, and `now` is passed in, so every rule is a
//! table test.
//!
//! Besides the live entries it keeps, per withdrawn or expired key, a *floor*: the
//! oldest `announcedAt` it will still take from that key. Without it, anyone who saw an
//! announcement could replay it right after its owner withdrew it, and list a dead
//! worker until the copy went stale.

use std::collections::{BTreeSet, HashMap};

use crate::core::protocol::{ProtocolError, PublicKey, SignedAnnouncement};

use super::unannounce::Unannounce;

/// What the registry may hold; `TrackerConfig` fills it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegistryLimits {
    /// Live entries at most; an update for a key already held is always let in.
    pub max_peers: usize,
    /// Longest TTL honoured: a longer one is clamped, and the answer says so.
    pub max_ttl_seconds: u64,
    /// Sum of the entries' JSON sizes, so `/peers` stays small enough for clients to read.
    pub max_listed_bytes: usize,
}

/// Why the registry refused a request. `reason()` is the wire word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    BadSignature(String),
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Future(String),
    #[error("{0}")]
    Replayed(String),
    #[error("{0}")]
    Full(String),
}

impl Refusal {
    /// The machine-readable word clients read from `/error/reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(_) => "malformed",
            Refusal::BadSignature(_) => "bad-signature",
            Refusal::Stale(_) => "stale",
            Refusal::Future(_) => "future",
            Refusal::Replayed(_) => "replayed",
            Refusal::Full(_) => "registry-full",
        }
    }
}

impl From<ProtocolError> for Refusal {
    fn from(e: ProtocolError) -> Self {
        let text = e.to_string();
        match e {
            ProtocolError::BadSignature(_) => Refusal::BadSignature(text),
            ProtocolError::Stale { .. } => Refusal::Stale(text),
            ProtocolError::Future { .. } => Refusal::Future(text),
            _ => Refusal::Malformed(text),
        }
    }
}

/// What an accepted announcement did to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Replaced,
    /// The very announcement already held: announcing is idempotent.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub pubkey: PublicKey,
    /// The TTL the tracker applies (the announced one, clamped to the cap).
    pub ttl_seconds: u64,
    /// Live entries after this one.
    pub registered_count: usize,
    pub change: Change,
}

#[derive(Debug, Clone)]
struct Held {
    signed: SignedAnnouncement,
    expires_at_ms: u64,
    size: usize,
}

#[derive(Debug, Clone, Copy)]
struct Floor {
    /// Announcements dated before this are replays.
    min_announced_at: u64,
    /// After this, any announcement old enough to be refused is stale anyway.
    forget_at_ms: u64,
}

#[derive(Debug)]
pub struct Registry {
    limits: RegistryLimits,
    held: HashMap<PublicKey, Held>,
    /// `(expires_at_ms, key)` for every held entry, so pruning reads only the expired.
    expiries: BTreeSet<(u64, PublicKey)>,
    floors: HashMap<PublicKey, Floor>,
    forgets: BTreeSet<(u64, PublicKey)>,
    bytes: usize,
}

impl Registry {
    pub fn new(limits: RegistryLimits) -> Self {
        Registry {
            limits,
            held: HashMap::new(),
            expiries: BTreeSet::new(),
            floors: HashMap::new(),
            forgets: BTreeSet::new(),
            bytes: 0,
        }
    }

    fn cap_ms(&self) -> u64 {
        self.limits.max_ttl_seconds.saturating_mul(1000)
    }

    /// Takes in a signed announcement: signature, freshness, replay, then room.
    pub fn announce(
        &mut self,
        signed: SignedAnnouncement,
        now_ms: u64,
    ) -> Result<Accepted, Refusal> {
        self.prune(now_ms);
        signed.verify_signature()?;
        signed.check_fresh(now_ms)?;
        let a = signed.announcement();
        let (pubkey, at) = (a.pubkey, a.announced_at);
        let ttl_seconds = a.ttl_seconds.min(self.limits.max_ttl_seconds);
        let expires_at_ms = at.saturating_add(ttl_seconds.saturating_mul(1000));
        if now_ms > expires_at_ms {
            return Err(Refusal::Stale(format!(
                "announcement is {} ms old, older than this tracker's TTL cap of {} s",
                now_ms - at,
                self.limits.max_ttl_seconds
            )));
        }
        let old = self.held.get(&pubkey);
        if let Some(old) = old {
            let held_at = old.signed.announcement().announced_at;
            if at < held_at {
                return Err(Refusal::Replayed(format!(
                    "announcedAt {at} is older than the {held_at} held for {pubkey}"
                )));
            }
            if at == held_at {
                if old.signed == signed {
                    return Ok(self.accepted(pubkey, ttl_seconds, Change::Unchanged));
                }
                return Err(Refusal::Replayed(format!(
                    "a different announcement dated {at} is already held for {pubkey}; \
                     a new one needs a later announcedAt"
                )));
            }
        } else if let Some(floor) = self.floors.get(&pubkey)
            && at < floor.min_announced_at
        {
            return Err(Refusal::Replayed(format!(
                "announcedAt {at} is not newer than {pubkey}'s last withdrawn or expired announcement"
            )));
        }
        let size = signed.to_value().to_string().len();
        let old_size = old.map_or(0, |h| h.size);
        if old.is_none() && self.held.len() >= self.limits.max_peers {
            return Err(Refusal::Full(format!(
                "the registry holds its limit of {} peers",
                self.limits.max_peers
            )));
        }
        // Shrinking or same-size updates always fit; growth must fit the budget.
        if size > old_size && self.bytes - old_size + size > self.limits.max_listed_bytes {
            return Err(Refusal::Full(format!(
                "the registry's announcements would exceed {} bytes",
                self.limits.max_listed_bytes
            )));
        }
        let change = if old.is_some() {
            Change::Replaced
        } else {
            Change::Added
        };
        self.remove(&pubkey);
        self.drop_floor(&pubkey);
        self.expiries.insert((expires_at_ms, pubkey));
        self.bytes += size;
        self.held.insert(
            pubkey,
            Held {
                signed,
                expires_at_ms,
                size,
            },
        );
        Ok(self.accepted(pubkey, ttl_seconds, change))
    }

    fn accepted(&self, pubkey: PublicKey, ttl_seconds: u64, change: Change) -> Accepted {
        Accepted {
            pubkey,
            ttl_seconds,
            registered_count: self.held.len(),
            change,
        }
    }

    /// Withdraws a key's announcement if the signed request is fresh and not older than
    /// it. `Ok(false)`: nothing held, or a withdrawal older than what is held (a replay).
    pub fn unannounce(&mut self, request: &Unannounce, now_ms: u64) -> Result<bool, Refusal> {
        self.prune(now_ms);
        request.verify()?;
        request.check_fresh(now_ms)?;
        let (pubkey, ts) = (request.pubkey, request.timestamp_ms);
        let floor = Floor {
            min_announced_at: ts.saturating_add(1),
            forget_at_ms: ts.saturating_add(self.cap_ms()),
        };
        match self.held.get(&pubkey) {
            Some(h) if h.signed.announcement().announced_at <= ts => {
                self.remove(&pubkey);
                self.set_floor(pubkey, floor, now_ms);
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                // Raise an existing floor only: a key never held leaves no trace.
                if self
                    .floors
                    .get(&pubkey)
                    .is_some_and(|f| f.min_announced_at < floor.min_announced_at)
                {
                    self.set_floor(pubkey, floor, now_ms);
                }
                Ok(false)
            }
        }
    }

    /// The live announcements, newest first.
    pub fn live(&mut self, now_ms: u64) -> Vec<SignedAnnouncement> {
        self.prune(now_ms);
        let mut out: Vec<&Held> = self.held.values().collect();
        out.sort_by(|a, b| {
            let (a, b) = (a.signed.announcement(), b.signed.announcement());
            b.announced_at
                .cmp(&a.announced_at)
                .then(a.pubkey.cmp(&b.pubkey))
        });
        out.into_iter().map(|h| h.signed.clone()).collect()
    }

    /// Live entries, after letting the expired go.
    pub fn count(&mut self, now_ms: u64) -> usize {
        self.prune(now_ms);
        self.held.len()
    }

    /// Held keys with remembered floors, for tests of the bounds.
    pub fn floor_count(&self) -> usize {
        self.floors.len()
    }

    /// Lets expired entries go (each leaves a floor) and forgets floors that no longer
    /// matter.
    fn prune(&mut self, now_ms: u64) {
        while let Some(&(at, key)) = self.forgets.first()
            && at < now_ms
        {
            self.forgets.pop_first();
            self.floors.remove(&key);
        }
        while let Some(&(expires, key)) = self.expiries.first()
            && expires < now_ms
        {
            let Some(held) = self.remove(&key) else {
                self.expiries.pop_first();
                continue;
            };
            let at = held.signed.announcement().announced_at;
            let floor = Floor {
                min_announced_at: at.saturating_add(1),
                forget_at_ms: at.saturating_add(self.cap_ms()),
            };
            self.set_floor(key, floor, now_ms);
        }
    }

    fn remove(&mut self, key: &PublicKey) -> Option<Held> {
        let held = self.held.remove(key)?;
        self.expiries.remove(&(held.expires_at_ms, *key));
        self.bytes -= held.size;
        Some(held)
    }

    fn drop_floor(&mut self, key: &PublicKey) {
        if let Some(f) = self.floors.remove(key) {
            self.forgets.remove(&(f.forget_at_ms, *key));
        }
    }

    /// Floors are bounded like entries; when full, the one closest to mattering no more
    /// goes first (at worst it reopens a replay window of a dead worker's announcement).
    fn set_floor(&mut self, key: PublicKey, floor: Floor, now_ms: u64) {
        self.drop_floor(&key);
        if floor.forget_at_ms < now_ms {
            return;
        }
        if self.floors.len() >= self.limits.max_peers.max(1)
            && let Some((_, evicted)) = self.forgets.pop_first()
        {
            self.floors.remove(&evicted);
        }
        self.forgets.insert((floor.forget_at_ms, key));
        self.floors.insert(key, floor);
    }
}
