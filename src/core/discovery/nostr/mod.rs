//! Discovery over Nostr relays: a worker publishes its signed announcement as a
//! parameterized-replaceable event (kind 31474) and withdraws it with a NIP-09 deletion;
//! a router subscribes, checks both signatures (the Nostr envelope's and the lobstah
//! announcement's) and keeps the newest fresh announcement per lobstah key.
//!
//! `event` builds and checks events without IO; `publish` and `discover` talk to relays
//! through nostr-sdk. The Nostr key (secp256k1) is separate from the lobstah identity and
//! lives in `nostr.key` (see `core::keystore`): it signs the envelope, the identity signs
//! what a router acts on.

mod discover;
mod event;
mod publish;

use std::fmt;

pub use discover::{DiscoverReport, discover};
pub use event::{
    Refusal, RefusalClass, announcement_event, check_announcement_event, deletion_event,
    receipt_event,
};
pub use publish::NostrPublisher;

/// Kind of the announcement event: parameterized replaceable (30000–39999), so a relay
/// keeps one per Nostr author and `d` tag.
pub const ANNOUNCE_KIND: u16 = 31474;
/// Kind of the optional public receipt event (regular, kept as published).
pub const RECEIPT_KIND: u16 = 1474;
/// The `d` tag of announcements: one announcement per Nostr key.
pub const PEER_D_TAG: &str = "lobstah-peer";
/// The `t` tag subscribers filter announcements on.
pub const ANNOUNCE_HASHTAG: &str = "lobstah";
/// The `t` tag of receipt events.
pub const RECEIPT_HASHTAG: &str = "lobstah-receipt";
/// The tag naming the announcement's lobstah key, so relays can be asked about one peer.
pub const LOBSTAH_PUBKEY_TAG: &str = "lobstah_pubkey";

/// Well-known public relays that accept any kind; the operator can give others.
pub const DEFAULT_RELAYS: &[&str] = &[
    "wss://relay.damus.io",
    "wss://nos.lol",
    "wss://relay.primal.net",
];

/// What can go wrong talking to relays. A single relay's failure is not an error: it is
/// reported (`PublishReport::failures`, `DiscoverReport::relay_errors`) and the others
/// carry on; these are the cases where nothing useful happened.
#[derive(Debug, thiserror::Error)]
pub enum NostrError {
    #[error("no Nostr relays given")]
    NoRelays,
    #[error("bad relay URL {url:?}: {reason}")]
    BadRelayUrl { url: String, reason: String },
    #[error("cannot reach any Nostr relay: {}", .0.join("; "))]
    NoRelayReachable(Vec<String>),
    #[error("no relay accepted the event: {0}")]
    NotAccepted(PublishReport),
    #[error("nothing to withdraw: no announcement has been published")]
    NothingPublished,
    #[error("cannot build the Nostr event: {0}")]
    Event(String),
    #[error("the Nostr client failed: {0}")]
    Client(String),
}

/// One relay that did not do what was asked, with the reason as a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayFailure {
    pub relay: String,
    pub reason: String,
}

impl fmt::Display for RelayFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.relay, self.reason)
    }
}

/// The outcome of sending one event to every relay of a publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReport {
    /// Hex id of the event sent.
    pub event_id: String,
    /// Relays that answered `OK true`, sorted.
    pub accepted: Vec<String>,
    /// Relays that refused the event or could not be asked, sorted by relay.
    pub failures: Vec<RelayFailure>,
}

impl PublishReport {
    pub fn accepted_count(&self) -> usize {
        self.accepted.len()
    }
}

impl fmt::Display for PublishReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.accepted.len() + self.failures.len();
        write!(f, "accepted by {} of {total} relays", self.accepted.len())?;
        for failure in &self.failures {
            write!(f, "; {failure}")?;
        }
        Ok(())
    }
}

/// Parses relay URLs up front so a typo is an error naming it, not a silent skip.
fn parse_relays(relays: &[String]) -> Result<Vec<nostr_sdk::prelude::RelayUrl>, NostrError> {
    if relays.is_empty() {
        return Err(NostrError::NoRelays);
    }
    let mut urls = Vec::with_capacity(relays.len());
    for url in relays {
        let parsed =
            nostr_sdk::prelude::RelayUrl::parse(url).map_err(|e| NostrError::BadRelayUrl {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        // A relay listed twice would be asked twice and answer once.
        if !urls.contains(&parsed) {
            urls.push(parsed);
        }
    }
    Ok(urls)
}

/// The bech32 `npub1…` form of a Nostr public key, as Nostr clients show it.
pub fn npub(keys: &nostr_sdk::prelude::Keys) -> String {
    use nostr_sdk::prelude::ToBech32;
    let public = keys.public_key();
    // Encoding 32 bytes cannot fail; the hex form is a usable fallback all the same.
    public.to_bech32().unwrap_or_else(|_| public.to_hex())
}
