//! Small formatting helpers shared by the commands that print tables.

use std::time::{Duration, UNIX_EPOCH};

use crate::core::node::{ReceiptRole, ReceiptRow};

/// The column heads of `receipt_line`.
pub(super) fn receipt_header() -> String {
    format!(
        "{:>6}  {:<20}  {:<6}  {:<16}  {:<24}  {:>8}  {:>8}",
        "seq", "completed", "role", "peer", "model", "in", "out"
    )
}

/// One receipt as `receipts` and `receipts --follow` print it.
pub(super) fn receipt_line(r: &ReceiptRow) -> String {
    let role = match r.role {
        ReceiptRole::Earned => "earned",
        ReceiptRole::Spent => "spent",
        ReceiptRole::SelfServed => "self",
    };
    let peer = r
        .peer_label
        .clone()
        .unwrap_or_else(|| r.peer.chars().take(12).collect::<String>() + "…");
    format!(
        "{:>6}  {:<20}  {:<6}  {:<16}  {:<24}  {:>8}  {:>8}",
        r.seq,
        utc_time(r.completed_at_ms),
        role,
        peer.chars().take(16).collect::<String>(),
        r.model.chars().take(24).collect::<String>(),
        r.input_tokens,
        r.output_tokens
    )
}

/// `2026-11-21T22:37:41Z` for a Unix-ms timestamp.
pub(super) fn utc_time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `12,345` / `-1,200`.
pub(super) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(-1234567), "-1,234,567");
        assert_eq!(utc_time(0), "1970-01-01T00:00:00Z");
    }
}
