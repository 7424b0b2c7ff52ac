//! The peer book: the peers this router may forward to, where they were learned from, kept
//! in the node's redb database beside the ledger so they survive a restart.
//!
//! URLs and labels are validated and normalized on the way in, so everything read back is
//! safe to dial and to draw.

use std::net::SocketAddr;

use redb::{ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::core::protocol::PublicKey;
use crate::core::store::{Db, StoreError};

#[cfg(test)]
mod tests;
mod validate;

pub use validate::{MAX_LABEL_CHARS, MAX_URL_CHARS, normalize_label, normalize_url};

/// pubkey text → JSON of its [`PeerRecord`].
pub const PEERS: TableDefinition<&str, &[u8]> = TableDefinition::new("peers");

/// Where a peer was learned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum PeerSource {
    /// Added by the operator.
    Manual,
    /// Pulled from a tracker's `/peers`.
    Tracker { url: String },
    /// Seen on Nostr relays.
    Nostr,
}

/// "manual", "tracker <url>" or "nostr": how the console, `peers list` and the control
/// API name a source.
impl std::fmt::Display for PeerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerSource::Manual => f.write_str("manual"),
            PeerSource::Tracker { url } => write!(f, "tracker {url}"),
            PeerSource::Nostr => f.write_str("nostr"),
        }
    }
}

/// One peer in the book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerRecord {
    pub pubkey: PublicKey,
    /// Normalized: http or https, no trailing slash.
    pub url: String,
    pub label: Option<String>,
    pub source: PeerSource,
    pub added_at_ms: u64,
    pub updated_at_ms: u64,
    /// Reached by key over a peer link, at these direct addresses (besides the relays
    /// the node uses); `None`: over HTTP at `url` only. A key-only peer has an empty
    /// `url`. Absent in records written before links, which read as HTTP peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Vec<SocketAddr>>,
    /// Relays the peer announced it keeps a home on, dialled besides this node's own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link_relays: Vec<String>,
}

/// The base URL requests to a linked peer are written against. The host is never
/// resolved: the client for a linked peer sends every connection onto its link.
pub const LINK_BASE: &str = "http://link.invalid";
/// [`LINK_BASE`]'s host: a name that never resolves (RFC 6761), so no request meant
/// for a link can leave by DNS and TCP instead.
pub const LINK_HOST: &str = "link.invalid";

/// Direct addresses kept per linked peer.
pub const MAX_LINK_ADDRS: usize = 8;

impl PeerRecord {
    /// Whether this peer is reached by key over a peer link (preferred when it also has
    /// a URL).
    pub fn is_linked(&self) -> bool {
        self.link.is_some()
    }

    /// The base URL request paths are joined to: the worker's URL, or [`LINK_BASE`]
    /// for a linked peer.
    pub fn base(&self) -> &str {
        if self.is_linked() {
            LINK_BASE
        } else {
            &self.url
        }
    }
}

/// `addrs` without repeats, at most [`MAX_LINK_ADDRS`] of them.
fn unique_addrs(addrs: &[SocketAddr]) -> Result<Vec<SocketAddr>, PeerError> {
    if addrs.len() > MAX_LINK_ADDRS {
        return Err(PeerError::TooManyAddrs { count: addrs.len() });
    }
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for addr in addrs {
        if !unique.contains(addr) {
            unique.push(*addr);
        }
    }
    Ok(unique)
}

/// How a peer is reached, as an add leaves it.
struct Transports {
    url: String,
    link: Option<Vec<SocketAddr>>,
    link_relays: Vec<String>,
}

/// What `add` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// The peer was known; its URL, label or source changed.
    Updated,
    /// The peer was known with exactly these details; nothing was written.
    Unchanged,
}

/// Why the peer book refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer URL {url:?} is not a valid URL: {reason}")]
    UrlUnparsable { url: String, reason: String },
    #[error("peer URL {url:?} has no scheme: write http://{url} (or https://)")]
    UrlNoScheme { url: String },
    #[error("peer URL {url:?} must use http or https")]
    UrlScheme { url: String },
    #[error("peer URL {url:?} has no host")]
    UrlNoHost { url: String },
    #[error("peer URL {url:?} must not carry a user name or password")]
    UrlUserinfo { url: String },
    #[error("peer URL {url:?} must not have a query (?…) or fragment (#…)")]
    UrlQueryOrFragment { url: String },
    #[error("peer URL is {chars} characters long; the limit is {MAX_URL_CHARS}")]
    UrlTooLong { chars: usize },
    #[error("peer label {label:?} is {chars} characters long; the limit is {MAX_LABEL_CHARS}")]
    LabelTooLong { label: String, chars: usize },
    #[error("peer label {label:?} contains control characters; use printable text")]
    LabelNotPrintable { label: String },
    #[error("{count} link addresses given; a peer keeps at most {MAX_LINK_ADDRS}")]
    TooManyAddrs { count: usize },
    #[error("cannot encode the peer record for {pubkey}: {reason}")]
    Encode { pubkey: PublicKey, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The peer book over one database.
#[derive(Clone)]
pub struct PeerBook {
    db: Db,
}

impl PeerBook {
    /// Opens the book, creating its table on first use when the database is writable.
    pub fn new(db: Db) -> Result<Self, StoreError> {
        if let Db::Writable(_) = db {
            let tx = db.begin_write()?;
            tx.open_table(PEERS)?;
            tx.commit()?;
        }
        Ok(PeerBook { db })
    }

    /// Adds a peer or updates the one with this pubkey. The URL and label are validated
    /// and normalized first; `added_at_ms` of a known peer is kept.
    pub fn add(
        &self,
        pubkey: PublicKey,
        url: &str,
        label: Option<&str>,
        source: PeerSource,
        now_ms: u64,
    ) -> Result<AddOutcome, PeerError> {
        let url = normalize_url(url)?;
        let label = normalize_label(label)?;
        self.upsert(pubkey, label, source, now_ms, |old| Transports {
            url,
            link: old.and_then(|o| o.link.clone()),
            link_relays: old.map(|o| o.link_relays.clone()).unwrap_or_default(),
        })
    }

    /// Adds a peer reached by key over a link, at `addrs` (may be empty when the relays
    /// find it), or makes a known peer linked; a known peer keeps its URL as a fallback.
    pub fn add_linked(
        &self,
        pubkey: PublicKey,
        addrs: &[SocketAddr],
        label: Option<&str>,
        source: PeerSource,
        now_ms: u64,
    ) -> Result<AddOutcome, PeerError> {
        self.add_link(pubkey, addrs, None, label, source, now_ms)
    }

    /// Books a discovered peer exactly as its newest announcement reaches it: at `url`
    /// (None when its URL may not be dialled) and over a link at `link`'s addresses and
    /// relays (None when it announced no usable link). Both replace what was booked, so
    /// a peer that stops announcing a link, or moves its URL somewhere unsafe, is no
    /// longer dialled there.
    pub fn add_announced(
        &self,
        pubkey: PublicKey,
        url: Option<&str>,
        link: Option<(&[SocketAddr], &[String])>,
        label: Option<&str>,
        source: PeerSource,
        now_ms: u64,
    ) -> Result<AddOutcome, PeerError> {
        let url = url.map(normalize_url).transpose()?.unwrap_or_default();
        let label = normalize_label(label)?;
        let (link, link_relays) = match link {
            Some((addrs, relays)) => {
                if relays.len() > MAX_LINK_ADDRS {
                    return Err(PeerError::TooManyAddrs {
                        count: relays.len(),
                    });
                }
                (Some(unique_addrs(addrs)?), relays.to_vec())
            }
            None => (None, Vec::new()),
        };
        self.upsert(pubkey, label, source, now_ms, |_| Transports {
            url,
            link,
            link_relays,
        })
    }

    fn add_link(
        &self,
        pubkey: PublicKey,
        addrs: &[SocketAddr],
        relays: Option<&[String]>,
        label: Option<&str>,
        source: PeerSource,
        now_ms: u64,
    ) -> Result<AddOutcome, PeerError> {
        if relays.is_some_and(|r| r.len() > MAX_LINK_ADDRS) {
            return Err(PeerError::TooManyAddrs { count: addrs.len() });
        }
        let label = normalize_label(label)?;
        let addrs = unique_addrs(addrs)?;
        self.upsert(pubkey, label, source, now_ms, |old| Transports {
            url: old.map(|o| o.url.clone()).unwrap_or_default(),
            link: Some(addrs),
            link_relays: match relays {
                Some(relays) => relays.to_vec(),
                None => old.map(|o| o.link_relays.clone()).unwrap_or_default(),
            },
        })
    }

    fn upsert(
        &self,
        pubkey: PublicKey,
        label: Option<String>,
        source: PeerSource,
        now_ms: u64,
        transports: impl FnOnce(Option<&PeerRecord>) -> Transports,
    ) -> Result<AddOutcome, PeerError> {
        let key = pubkey.to_string();
        let tx = self.db.begin_write()?;
        let outcome = {
            let mut table = tx.open_table(PEERS).map_err(StoreError::from)?;
            let existing = match table.get(key.as_str()).map_err(StoreError::from)? {
                Some(bytes) => Some(decode(&key, bytes.value())?),
                None => None,
            };
            let Transports {
                url,
                link,
                link_relays,
            } = transports(existing.as_ref());
            let (outcome, added_at_ms) = match existing {
                None => (AddOutcome::Added, now_ms),
                Some(old)
                    if old.url == url
                        && old.link == link
                        && old.link_relays == link_relays
                        && old.label == label
                        && old.source == source =>
                {
                    // Nothing to write: keep updated_at meaningful and skip an fsync.
                    (AddOutcome::Unchanged, old.added_at_ms)
                }
                Some(old) => (AddOutcome::Updated, old.added_at_ms),
            };
            if outcome == AddOutcome::Unchanged {
                drop(table);
                tx.abort().map_err(StoreError::from)?;
                return Ok(outcome);
            }
            let record = PeerRecord {
                pubkey,
                url,
                label,
                source,
                added_at_ms,
                updated_at_ms: now_ms,
                link,
                link_relays,
            };
            let bytes = serde_json::to_vec(&record).map_err(|e| PeerError::Encode {
                pubkey,
                reason: e.to_string(),
            })?;
            table
                .insert(key.as_str(), bytes.as_slice())
                .map_err(StoreError::from)?;
            outcome
        };
        tx.commit().map_err(StoreError::from)?;
        Ok(outcome)
    }

    /// Removes a peer; `false` if it was not in the book. Works on damaged records too.
    pub fn remove(&self, pubkey: &PublicKey) -> Result<bool, PeerError> {
        let key = pubkey.to_string();
        let tx = self.db.begin_write()?;
        let removed = {
            let mut table = tx.open_table(PEERS).map_err(StoreError::from)?;
            table
                .remove(key.as_str())
                .map_err(StoreError::from)?
                .is_some()
        };
        tx.commit().map_err(StoreError::from)?;
        Ok(removed)
    }

    pub fn get(&self, pubkey: &PublicKey) -> Result<Option<PeerRecord>, PeerError> {
        let tx = self.db.begin_read()?;
        let Some(table) = open_existing(&tx)? else {
            return Ok(None);
        };
        let key = pubkey.to_string();
        match table.get(key.as_str()).map_err(StoreError::from)? {
            Some(bytes) => Ok(Some(decode(&key, bytes.value())?)),
            None => Ok(None),
        }
    }

    /// Every peer, oldest first (ties by pubkey), so a list on screen does not reshuffle
    /// when a peer is updated.
    pub fn list(&self) -> Result<Vec<PeerRecord>, PeerError> {
        let tx = self.db.begin_read()?;
        let Some(table) = open_existing(&tx)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for row in table.iter().map_err(StoreError::from)? {
            let (key, bytes) = row.map_err(StoreError::from)?;
            out.push(decode(key.value(), bytes.value())?);
        }
        out.sort_by_key(|r| (r.added_at_ms, r.pubkey));
        Ok(out)
    }
}

/// A read-only database made before the peer book existed has no table: an empty book.
fn open_existing(
    tx: &redb::ReadTransaction,
) -> Result<Option<redb::ReadOnlyTable<&'static str, &'static [u8]>>, StoreError> {
    match tx.open_table(PEERS) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records are written only by `add`, so one that does not parse was damaged or edited;
/// it is reported (and can still be removed), not skipped silently.
fn decode(key: &str, bytes: &[u8]) -> Result<PeerRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "the peer book entry {key} does not parse: {e}; remove the peer and add it again"
        ))
    })
}
