//! `ledger verify`: recompute every balance from the stored receipts and compare with
//! the aggregates kept beside them. It streams: one receipt decoded at a time, sums per
//! identity (not per receipt), and at most `MAX_MISMATCHES` described, so its memory does
//! not grow with the ledger; a callback hears how far it got every `PROGRESS_EVERY`.
//! A ledger still in the first schema (opened read-only) is verified through its old
//! nonce-keyed tables.

use std::collections::BTreeMap;

use redb::{ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::keys::KEYS;
use super::migrate::old;
use super::record::decode;
use super::schema::{
    BALANCES, LEDGER_META, NONCES, NonceKey, RECEIPTS, UNCONFIRMED, UNCONFIRMED_BALANCES,
    receipt_key,
};
use super::{Ledger, open_existing, read_meta};
use crate::core::store::StoreError;

/// Receipts between two progress reports.
pub(super) const PROGRESS_EVERY: u64 = 100_000;
/// Disagreements described one by one; the rest are counted in a last line.
const MAX_MISMATCHES: usize = 1_000;

/// How far a verification has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyProgress {
    pub receipts_checked: u64,
    pub receipts_total: u64,
}

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

/// The nonce index of either schema.
enum NonceIndex {
    Current(ReadOnlyTable<NonceKey, u64>),
    Old(ReadOnlyTable<&'static str, u64>),
    Missing,
}

impl NonceIndex {
    fn open(tx: &ReadTransaction, old_schema: bool) -> Result<Self, StoreError> {
        let index = if old_schema {
            open_existing(tx, old::NONCES)?.map(NonceIndex::Old)
        } else {
            open_existing(tx, NONCES)?.map(NonceIndex::Current)
        };
        Ok(index.unwrap_or(NonceIndex::Missing))
    }

    fn seq_of(&self, nonce: &str) -> Result<Option<u64>, StoreError> {
        Ok(match self {
            NonceIndex::Current(t) => match receipt_key(nonce) {
                Some(key) => t.get(key)?.map(|g| g.value()),
                None => None,
            },
            NonceIndex::Old(t) => t.get(nonce)?.map(|g| g.value()),
            NonceIndex::Missing => None,
        })
    }
}

/// Collects disagreements, describing the first `MAX_MISMATCHES`.
fn note(report: &mut VerifyReport, dropped: &mut u64, message: String) {
    if report.mismatches.len() < MAX_MISMATCHES {
        report.mismatches.push(message);
    } else {
        *dropped += 1;
    }
}

/// Reads the whole log in one read transaction, so a concurrent writer cannot make the
/// comparison see half a commit.
pub fn verify_ledger(ledger: &Ledger) -> Result<VerifyReport, StoreError> {
    verify_ledger_with(ledger, &mut |_| {})
}

/// `verify_ledger`, telling `progress` how far it got every `PROGRESS_EVERY` receipts.
pub fn verify_ledger_with(
    ledger: &Ledger,
    progress: &mut dyn FnMut(VerifyProgress),
) -> Result<VerifyReport, StoreError> {
    let tx = ledger.db().begin_read()?;
    let old_schema = ledger.old_schema(&tx)?;
    let mut report = VerifyReport::default();
    let mut dropped = 0u64;
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut tokens_total = 0u64;
    let nonces = NonceIndex::open(&tx, old_schema)?;
    let keys = open_existing(&tx, KEYS)?;
    if let Some(log) = open_existing(&tx, RECEIPTS)? {
        let receipts_total = log.len()?;
        for row in log.iter()? {
            let (k, v) = row?;
            let seq = k.value();
            report.receipts_checked += 1;
            if report.receipts_checked % PROGRESS_EVERY == 0 {
                progress(VerifyProgress {
                    receipts_checked: report.receipts_checked,
                    receipts_total,
                });
            }
            let signed = match decode(v.value(), &keys) {
                Ok(s) => s,
                Err(e) => {
                    let message = format!("receipt #{seq} does not parse: {e}");
                    note(&mut report, &mut dropped, message);
                    continue;
                }
            };
            if let Err(e) = signed.verify_signature() {
                note(&mut report, &mut dropped, format!("receipt #{seq}: {e}"));
            }
            let r = signed.receipt();
            let nonce_seq = nonces.seq_of(&r.nonce)?;
            if nonce_seq != Some(seq) {
                let message = format!(
                    "receipt #{seq}: nonce {} is indexed as {:?}",
                    r.nonce, nonce_seq
                );
                note(&mut report, &mut dropped, message);
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
    check_unconfirmed(&tx, old_schema, &nonces, &mut report)?;
    if report.mismatches.len() > MAX_MISMATCHES {
        dropped += (report.mismatches.len() - MAX_MISMATCHES) as u64;
        report.mismatches.truncate(MAX_MISMATCHES);
    }
    if dropped > 0 {
        report
            .mismatches
            .push(format!("… and {dropped} more disagreements"));
    }
    Ok(report)
}

/// The unconfirmed set of either schema, as (nonce it is keyed by, seq, standing code).
fn unconfirmed_rows(
    tx: &ReadTransaction,
    old_schema: bool,
    each: &mut dyn FnMut(Option<String>, u64, u8) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    if old_schema {
        if let Some(t) = open_existing(tx, old::UNCONFIRMED)? {
            for row in t.iter()? {
                let (k, v) = row?;
                let (code, seq) = v.value();
                each(Some(k.value().to_string()), seq, code)?;
            }
        }
    } else if let Some(t) = open_existing(tx, UNCONFIRMED)? {
        for row in t.iter()? {
            let (k, v) = row?;
            each(None, k.value(), v.value())?;
        }
    }
    Ok(())
}

/// Recomputes the unsettled amounts from the unconfirmed receipts and compares them with
/// the stored ones.
fn check_unconfirmed(
    tx: &ReadTransaction,
    old_schema: bool,
    nonces: &NonceIndex,
    report: &mut VerifyReport,
) -> Result<(), StoreError> {
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let keys = open_existing(tx, KEYS)?;
    if let Some(log) = open_existing(tx, RECEIPTS)? {
        unconfirmed_rows(tx, old_schema, &mut |keyed_by, seq, code| {
            let Some(bytes) = log.get(seq)? else {
                report
                    .mismatches
                    .push(format!("unconfirmed receipt #{seq} is missing"));
                return Ok(());
            };
            let Ok(signed) = decode(bytes.value(), &keys) else {
                return Ok(()); // reported by the main pass
            };
            let r = signed.receipt();
            let points_back = match &keyed_by {
                Some(nonce) => nonce == &r.nonce,
                None => nonces.seq_of(&r.nonce)? == Some(seq),
            };
            if !points_back {
                report.mismatches.push(format!(
                    "unconfirmed entry {} points at receipt #{seq} with nonce {}",
                    keyed_by.as_deref().unwrap_or("(by seq)"),
                    r.nonce
                ));
                return Ok(());
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
            Ok(())
        })?;
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
