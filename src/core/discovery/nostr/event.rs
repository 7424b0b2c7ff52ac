//! Building and checking lobstah's Nostr events, without IO. Checking verifies the
//! event id and Schnorr signature itself: nostr-sdk and relays usually do too, but a
//! router acts on these announcements, so it does not take anyone's word for them.

use nostr_sdk::prelude::{
    Coordinate, Event, EventBuilder, EventDeletionRequest, EventId, Keys, Kind, Tag, TagKind,
    Timestamp,
};

use super::{
    ANNOUNCE_HASHTAG, ANNOUNCE_KIND, LOBSTAH_PUBKEY_TAG, NostrError, PEER_D_TAG, RECEIPT_HASHTAG,
    RECEIPT_KIND,
};
use crate::core::protocol::{ProtocolError, SignedAnnouncement, SignedReceipt};

/// An announcement is a few hundred bytes; anything this large is refused unparsed.
const MAX_CONTENT_BYTES: usize = 64 * 1024;

/// Why an event is not believed. The class says which `DiscoverReport` counter it goes to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("kind {0} is not a lobstah announcement (kind {ANNOUNCE_KIND})")]
    WrongKind(u16),
    #[error("wrong tags: {0}")]
    WrongTags(String),
    #[error("the Nostr event id does not match the event's contents")]
    BadNostrId,
    #[error("the Nostr signature does not verify against the event's author")]
    BadNostrSignature,
    #[error("the content is not a signed announcement: {0}")]
    Malformed(String),
    #[error("the lobstah_pubkey tag says {tag} but the announcement is signed as {announced}")]
    PubkeyMismatch { tag: String, announced: String },
    #[error("the lobstah signature does not verify: {0}")]
    BadLobstahSignature(String),
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Future(String),
}

/// The counters of a discovery report, one per kind of refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalClass {
    BadNostrSignature,
    BadLobstahSignature,
    /// Stale or dated in the future.
    Stale,
    /// Wrong kind or tags, unparseable content, a tag naming another key.
    Malformed,
}

impl Refusal {
    pub fn class(&self) -> RefusalClass {
        match self {
            Refusal::BadNostrId | Refusal::BadNostrSignature => RefusalClass::BadNostrSignature,
            Refusal::BadLobstahSignature(_) => RefusalClass::BadLobstahSignature,
            Refusal::Stale(_) | Refusal::Future(_) => RefusalClass::Stale,
            Refusal::WrongKind(_)
            | Refusal::WrongTags(_)
            | Refusal::Malformed(_)
            | Refusal::PubkeyMismatch { .. } => RefusalClass::Malformed,
        }
    }
}

/// The value of every `[name, value, …]` tag of `event`.
fn tag_values<'a>(event: &'a Event, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    event
        .tags
        .iter()
        .filter_map(move |tag| match tag.as_slice() {
            [n, value, ..] if n == name => Some(value.as_str()),
            _ => None,
        })
}

/// Checks a kind-31474 event end to end and returns the announcement it carries:
/// kind and tags, the Nostr id and signature, the content, the lobstah signature, the
/// `lobstah_pubkey` tag against the signer, and freshness at `now_ms`.
pub fn check_announcement_event(event: &Event, now_ms: u64) -> Result<SignedAnnouncement, Refusal> {
    let kind = event.kind.as_u16();
    if kind != ANNOUNCE_KIND {
        return Err(Refusal::WrongKind(kind));
    }
    if tag_values(event, "d").next() != Some(PEER_D_TAG) {
        return Err(Refusal::WrongTags(format!(
            "the first \"d\" tag must be {PEER_D_TAG:?}"
        )));
    }
    if !tag_values(event, "t").any(|t| t == ANNOUNCE_HASHTAG) {
        return Err(Refusal::WrongTags(format!(
            "no \"t\" tag {ANNOUNCE_HASHTAG:?}"
        )));
    }
    let mut claimed = tag_values(event, LOBSTAH_PUBKEY_TAG);
    let (Some(claimed), None) = (claimed.next(), claimed.next()) else {
        return Err(Refusal::WrongTags(format!(
            "expected exactly one {LOBSTAH_PUBKEY_TAG:?} tag"
        )));
    };
    if !event.verify_id() {
        return Err(Refusal::BadNostrId);
    }
    if !event.verify_signature() {
        return Err(Refusal::BadNostrSignature);
    }
    if event.content.len() > MAX_CONTENT_BYTES {
        return Err(Refusal::Malformed(format!(
            "{} bytes, more than the {MAX_CONTENT_BYTES} an announcement may take",
            event.content.len()
        )));
    }
    let signed = SignedAnnouncement::from_json(event.content.as_bytes())
        .map_err(|e| Refusal::Malformed(e.to_string()))?;
    let announced = signed.announcement().pubkey.to_string();
    if claimed != announced {
        return Err(Refusal::PubkeyMismatch {
            tag: claimed.to_owned(),
            announced,
        });
    }
    signed
        .verify_signature()
        .map_err(|e| Refusal::BadLobstahSignature(e.to_string()))?;
    signed.check_fresh(now_ms).map_err(|e| match e {
        ProtocolError::Future { .. } => Refusal::Future(e.to_string()),
        other => Refusal::Stale(other.to_string()),
    })?;
    Ok(signed)
}

fn sign(builder: EventBuilder, keys: &Keys) -> Result<Event, NostrError> {
    builder
        .sign_with_keys(keys)
        .map_err(|e| NostrError::Event(e.to_string()))
}

fn custom_tag(name: &str, value: impl Into<String>) -> Tag {
    Tag::custom(TagKind::custom(name), [value.into()])
}

/// The kind-31474 event carrying `signed`, dated `created_at`.
pub fn announcement_event(
    signed: &SignedAnnouncement,
    keys: &Keys,
    created_at: Timestamp,
) -> Result<Event, NostrError> {
    let content =
        serde_json::to_string(&signed.to_value()).map_err(|e| NostrError::Event(e.to_string()))?;
    let builder = EventBuilder::new(Kind::Custom(ANNOUNCE_KIND), content)
        .tags([
            Tag::identifier(PEER_D_TAG),
            Tag::hashtag(ANNOUNCE_HASHTAG),
            custom_tag(LOBSTAH_PUBKEY_TAG, signed.announcement().pubkey.to_string()),
        ])
        .custom_created_at(created_at);
    sign(builder, keys)
}

/// The NIP-09 deletion of announcement `target`. Besides the `e` tag it names the
/// replaceable coordinate, so relays also drop versions they hold that we never saw
/// acknowledged, and `k` so relays can index it.
pub fn deletion_event(
    target: EventId,
    keys: &Keys,
    created_at: Timestamp,
) -> Result<Event, NostrError> {
    let coordinate =
        Coordinate::new(Kind::Custom(ANNOUNCE_KIND), keys.public_key()).identifier(PEER_D_TAG);
    let request = EventDeletionRequest::new()
        .id(target)
        .coordinate(coordinate)
        .reason("lobstah worker stopped advertising");
    let builder = EventBuilder::delete(request)
        .tag(custom_tag("k", ANNOUNCE_KIND.to_string()))
        .custom_created_at(created_at);
    sign(builder, keys)
}

/// The kind-1474 public receipt event for `signed`, dated `created_at`.
pub fn receipt_event(
    signed: &SignedReceipt,
    keys: &Keys,
    created_at: Timestamp,
) -> Result<Event, NostrError> {
    let receipt = signed.receipt();
    let builder = EventBuilder::new(Kind::Custom(RECEIPT_KIND), signed.to_json())
        .tags([
            Tag::hashtag(RECEIPT_HASHTAG),
            custom_tag("worker_pubkey", receipt.worker_pubkey.to_string()),
            custom_tag("requester_pubkey", receipt.requester_pubkey.to_string()),
            custom_tag("nonce", receipt.nonce.clone()),
        ])
        .custom_created_at(created_at);
    sign(builder, keys)
}
