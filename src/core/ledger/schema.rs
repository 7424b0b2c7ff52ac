//! The ledger's tables and the keys of its indexes. A receipt touches two random places
//! at most: the receipt-nonce index (replays) and the request-nonce index (one receipt
//! per request), both keyed by 16 raw bytes. Everything about a receipt once it is found
//! (its standing, its request proof, the confirmation that settled it) is keyed by its
//! seq, which grows, so a group commit writes those at the end of their trees instead of
//! dirtying a random leaf per receipt in each.
//!
//! Tables whose key or value type changed from the first schema carry a `_v2` suffix
//! (redb refuses to open a table under another type); `migrate` converts the old ones.

use redb::TableDefinition;
use sha2::{Digest, Sha256};

use super::bytes::hex16;

/// A nonce as an index key: the 16 bytes its 32 hex characters spell.
pub type NonceKey = [u8; 16];

/// seq → the receipt as received: a binary record or JSON text (see `record`).
pub const RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
/// receipt nonce → seq of the receipt that used it.
pub const NONCES: TableDefinition<NonceKey, u64> = TableDefinition::new("receipt_nonces_v2");
/// pubkey → (earned, spent, receipts it appears in).
pub const BALANCES: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("balances");
/// Totals and counters: `next_seq`, `receipts`, `tokens`, `next_confirmation`.
pub const LEDGER_META: TableDefinition<&str, u64> = TableDefinition::new("ledger_meta");
/// seq → standing code of every receipt not yet confirmed.
pub const UNCONFIRMED: TableDefinition<u64, u8> = TableDefinition::new("receipt_unconfirmed_v2");
/// pubkey → (earned unconfirmed, spent pending, spent anonymous).
pub const UNCONFIRMED_BALANCES: TableDefinition<&str, (u64, u64, u64)> =
    TableDefinition::new("balances_unconfirmed");
/// seq → id of the confirmation batch that settled it.
pub const CONFIRMED_BY: TableDefinition<u64, u64> = TableDefinition::new("receipt_confirmed_by_v2");
/// batch id → the requester's signed confirmation (see `confirm_record`).
pub const CONFIRMATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("confirmations");
/// request nonce → seq of the receipt that answers it.
pub(super) const ANSWERED: TableDefinition<NonceKey, u64> =
    TableDefinition::new("receipt_answers_v2");
/// seq → JSON of the request proof, for receipts still pending.
pub(super) const PROOFS: TableDefinition<u64, &[u8]> =
    TableDefinition::new("receipt_request_proofs_v2");

/// The index key of a receipt nonce; `None` when `nonce` is not 32 lowercase hex, which
/// no ledgered receipt has (v1 requires it), so such a nonce is simply not found.
pub(super) fn receipt_key(nonce: &str) -> Option<NonceKey> {
    hex16(nonce)
}

/// The index key of a request nonce. Ours and every header we accept are 32 hex, but a
/// proof read from elsewhere need not be: any other string is hashed into the same 16
/// bytes, where it cannot meet a real nonce except by a 2^-128 chance.
pub(super) fn request_key(nonce: &str) -> NonceKey {
    if let Some(key) = hex16(nonce) {
        return key;
    }
    let digest = Sha256::new()
        .chain_update(b"lobstah request nonce\0")
        .chain_update(nonce.as_bytes())
        .finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_keys_are_the_raw_bytes_or_a_hash() {
        let hex = "00112233445566778899aabbccddeeff";
        assert_eq!(request_key(hex), receipt_key(hex).unwrap());
        let cases = ["", "not hex at all", "00112233445566778899AABBCCDDEEFF"];
        for other in cases {
            assert_eq!(receipt_key(other), None, "{other}");
            assert_ne!(request_key(other), request_key(hex), "{other}");
            assert_eq!(request_key(other), request_key(other), "{other}");
        }
        assert_ne!(request_key("a"), request_key("b"));
    }
}
