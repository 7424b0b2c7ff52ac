//! The lobstah wire protocol (v1): identities, canonical JSON, signed receipts,
//! announcements, signed requests and receipt confirmations, and (`wire`) the header
//! names and paths both sides use. Pure: no IO, no clock of its own (callers pass `now`).

mod announcement;
mod canonical;
mod confirmation;
mod error;
mod identity;
mod key_cache;
mod link_tag;
mod receipt;
mod request_auth;
mod request_proof;
pub mod wire;

pub use announcement::{
    ANNOUNCE_FUTURE_SKEW_MS, Announcement, LinkDial, MAX_ANNOUNCED_ADDRS, MAX_ANNOUNCED_RELAYS,
    SignedAnnouncement, Tier, unannounce_message,
};
pub use canonical::{canonical_json, canonical_object};
pub use confirmation::{
    Confirmation, ConfirmedReceipt, MAX_CONFIRMED_PER_BATCH, SignedConfirmation,
};
pub use error::ProtocolError;
pub use identity::{Identity, PUBKEY_PREFIX, PublicKey, Signature};
pub use link_tag::LinkRequestTag;
#[cfg(test)]
pub(crate) use receipt::sample as receipt_sample;
pub use receipt::{RECEIPT_SKEW_MS, Receipt, SignedReceipt, new_nonce};
pub use request_auth::{REQUEST_SKEW_MS, RequestAuth, RequestTarget};
pub use request_proof::RequestProof;
pub use wire::{NONCE_HEADER, REQUEST_TAG_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// The only protocol version this implementation speaks; new optional fields, not new
/// versions, are how v1 grows.
pub const PROTOCOL_VERSION: u64 = 1;

/// JavaScript's `Number.MAX_SAFE_INTEGER` (2^53 - 1). JCS writes every number as an IEEE
/// double, so larger integers lose digits in canonical form: 2^60 and 2^60 + 1 would share
/// one signature. Integer fields above this are refused, as the TypeScript network cannot
/// carry them exactly either.
pub(crate) const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Refuses an integer field that canonical JSON cannot carry exactly.
pub(crate) fn check_safe_integer(
    what: &'static str,
    field: &str,
    value: u64,
) -> Result<(), ProtocolError> {
    if value > MAX_SAFE_INTEGER {
        return Err(ProtocolError::Malformed {
            what,
            detail: format!(
                "{field} is {value}, above 2^53 - 1: canonical JSON cannot carry it exactly"
            ),
        });
    }
    Ok(())
}
