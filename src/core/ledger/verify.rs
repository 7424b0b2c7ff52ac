//! `ledger verify`: recompute every balance from the stored receipts and compare with
//! the aggregates kept beside them.

use std::collections::BTreeMap;

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::{
    BALANCES, LEDGER_META, Ledger, NONCES, RECEIPTS, UNCONFIRMED, UNCONFIRMED_BALANCES,
    open_existing, read_meta,
};
use crate::core::protocol::SignedReceipt;
use crate::core::store::StoreError;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub receipts_checked: u64,
    pub pubkeys_checked: u64,
    /// Human-readable descriptions of every disagreement found.
    pub mismatches: Vec<String>,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Reads the whole log in one read transaction, so a concurrent writer cannot make the
/// comparison see half a commit.
pub fn verify_ledger(ledger: &Ledger) -> Result<VerifyReport, StoreError> {
    let tx = ledger.db().begin_read()?;
    let mut report = VerifyReport::default();
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut tokens_total = 0u64;
    let nonces = open_existing(&tx, NONCES)?;
    if let Some(log) = open_existing(&tx, RECEIPTS)? {
        for row in log.iter()? {
            let (k, v) = row?;
            let seq = k.value();
            report.receipts_checked += 1;
            let signed = match SignedReceipt::from_json(v.value()) {
                Ok(s) => s,
                Err(e) => {
                    report
                        .mismatches
                        .push(format!("receipt #{seq} does not parse: {e}"));
                    continue;
                }
            };
            if let Err(e) = signed.verify_signature() {
                report.mismatches.push(format!("receipt #{seq}: {e}"));
            }
            let r = signed.receipt();
            let nonce_seq = match &nonces {
                Some(t) => t.get(r.nonce.as_str())?.map(|g| g.value()),
                None => None,
            };
            if nonce_seq != Some(seq) {
                report.mismatches.push(format!(
                    "receipt #{seq}: nonce {} is indexed as {:?}",
                    r.nonce, nonce_seq
                ));
            }
            let tokens = r.total_tokens();
            tokens_total = tokens_total.saturating_add(tokens);
            let worker = r.worker_pubkey.to_string();
            let requester = r.requester_pubkey.to_string();
            let w = expected.entry(worker.clone()).or_default();
            w.0 = w.0.saturating_add(tokens);
            w.2 += 1;
            let q = expected.entry(requester.clone()).or_default();
            q.1 = q.1.saturating_add(tokens);
            if requester != worker {
                q.2 += 1;
            }
        }
    }
    let mut stored: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    if let Some(table) = open_existing(&tx, BALANCES)? {
        for row in table.iter()? {
            let (k, v) = row?;
            stored.insert(k.value().to_string(), v.value());
        }
    }
    for (key, want) in &expected {
        match stored.get(key) {
            Some(have) if have == want => {}
            Some(have) => report.mismatches.push(format!(
                "{key}: stored earned/spent/receipts {have:?}, recomputed {want:?}"
            )),
            None => report
                .mismatches
                .push(format!("{key}: no stored balance, recomputed {want:?}")),
        }
    }
    for key in stored.keys().filter(|k| !expected.contains_key(*k)) {
        report
            .mismatches
            .push(format!("{key}: stored balance has no receipts behind it"));
    }
    report.pubkeys_checked = expected.len() as u64;
    if let Some(meta) = open_existing(&tx, LEDGER_META)? {
        let (receipts, tokens) = (read_meta(&meta, "receipts")?, read_meta(&meta, "tokens")?);
        if receipts != report.receipts_checked {
            report.mismatches.push(format!(
                "total receipts stored as {receipts}, counted {}",
                report.receipts_checked
            ));
        }
        if tokens != tokens_total {
            report.mismatches.push(format!(
                "total tokens stored as {tokens}, recomputed {tokens_total}"
            ));
        }
    }
    check_unconfirmed(&tx, &mut report)?;
    Ok(report)
}

/// Recomputes the unsettled amounts from the unconfirmed receipts and compares them with
/// the stored ones.
fn check_unconfirmed(
    tx: &redb::ReadTransaction,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    if let (Some(unconfirmed), Some(log)) = (
        open_existing(tx, UNCONFIRMED)?,
        open_existing(tx, RECEIPTS)?,
    ) {
        for row in unconfirmed.iter()? {
            let (k, v) = row?;
            let (code, seq) = v.value();
            let Some(bytes) = log.get(seq)? else {
                report.mismatches.push(format!(
                    "unconfirmed nonce {} points at missing receipt #{seq}",
                    k.value()
                ));
                continue;
            };
            let Ok(signed) = SignedReceipt::from_json(bytes.value()) else {
                continue; // reported by the main pass
            };
            let r = signed.receipt();
            if r.nonce != k.value() {
                report.mismatches.push(format!(
                    "unconfirmed nonce {} points at receipt #{seq} with nonce {}",
                    k.value(),
                    r.nonce
                ));
                continue;
            }
            let tokens = r.total_tokens();
            let w = expected.entry(r.worker_pubkey.to_string()).or_default();
            w.0 = w.0.saturating_add(tokens);
            let q = expected.entry(r.requester_pubkey.to_string()).or_default();
            match code {
                1 => q.1 = q.1.saturating_add(tokens),
                2 | 3 => q.2 = q.2.saturating_add(tokens),
                other => report.mismatches.push(format!(
                    "unconfirmed receipt #{seq} has unknown standing {other}"
                )),
            }
        }
    }
    let mut stored: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    if let Some(table) = open_existing(tx, UNCONFIRMED_BALANCES)? {
        for row in table.iter()? {
            let (k, v) = row?;
            stored.insert(k.value().to_string(), v.value());
        }
    }
    expected.retain(|_, v| *v != (0, 0, 0));
    if expected != stored {
        for key in expected.keys().chain(stored.keys()) {
            let (want, have) = (expected.get(key), stored.get(key));
            if want != have {
                report.mismatches.push(format!(
                    "{key}: unconfirmed earned/pending/anonymous stored {have:?}, recomputed {want:?}"
                ));
            }
        }
        report.mismatches.dedup();
    }
    Ok(())
}
