//! The lobstah wire protocol (v1): identities, canonical JSON, signed receipts and
//! announcements. Pure: no IO, no clock of its own (callers pass `now`).

mod announcement;
mod canonical;
mod error;
mod identity;
mod receipt;

pub use announcement::{
    ANNOUNCE_FUTURE_SKEW_MS, Announcement, SignedAnnouncement, Tier, unannounce_message,
};
pub use canonical::canonical_json;
pub use error::ProtocolError;
pub use identity::{Identity, PUBKEY_PREFIX, PublicKey, Signature};
pub use receipt::{RECEIPT_SKEW_MS, Receipt, SignedReceipt, new_nonce};

/// The only protocol version this implementation speaks; new optional fields, not new
/// versions, are how v1 grows.
pub const PROTOCOL_VERSION: u64 = 1;
