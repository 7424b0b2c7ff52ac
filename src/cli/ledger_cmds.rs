//! `lobstah balance`, `receipts` and `ledger verify|import|export`.
//!
//! Offline: they open the database (read-only where they only read). Beside a running
//! node, which holds it, `via_node` asks the node instead and prints with the same
//! functions here, so the answer looks the same either way.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;

use super::output::{thousands, utc_time};
use crate::core::keystore;
use crate::core::ledger::{self, ALLOWANCE_TOKENS, Balance, Ledger, VerifyReport};
use crate::core::paths::Paths;
use crate::core::store::{self, StoreError};

/// The ledger for reading, or `None` when nothing was ever ledgered here.
fn read_ledger(paths: &Paths) -> anyhow::Result<Option<Ledger>> {
    match store::open_read_only(&paths.database()) {
        Ok(db) => Ok(Some(Ledger::new(db)?)),
        Err(StoreError::Missing(_)) => Ok(None),
        Err(e) => Err(e).context("cannot read the ledger"),
    }
}

fn write_ledger(paths: &Paths) -> anyhow::Result<Ledger> {
    let db = store::open(&paths.database()).context("cannot open the ledger for writing")?;
    Ok(Ledger::new(db)?)
}

fn balance_json(b: &Balance) -> serde_json::Value {
    json!({
        "pubkey": b.pubkey.to_string(),
        "earned": b.earned,
        "spent": b.spent,
        "pendingEarned": b.pending_earned,
        "pendingSpent": b.pending_spent,
        "anonymousSpent": b.anonymous_spent,
        "net": b.net(),
        "available": b.available(),
        "receipts": b.receipts,
    })
}

pub(super) fn balance(paths: &Paths, as_json: bool, all: bool) -> anyhow::Result<ExitCode> {
    let ledger = read_ledger(paths)?;
    if all {
        let balances = match &ledger {
            Some(l) => l.balances()?,
            None => Vec::new(),
        };
        print_balances(&balances, as_json)?;
        return Ok(ExitCode::SUCCESS);
    }
    let me = keystore::load_identity(&paths.identity_file())
        .context("cannot load this node's identity")?;
    let b = match &ledger {
        Some(l) => l.balance(&me.public())?,
        None => Balance::empty(me.public()),
    };
    print_balance(&b, as_json)?;
    Ok(ExitCode::SUCCESS)
}

/// `balance`: this node's own.
pub(super) fn print_balance(b: &Balance, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(&balance_json(b))?);
    } else {
        println!("identity   {}", b.pubkey);
        if b.pending_earned > 0 {
            println!(
                "earned     {} confirmed, {} pending (waiting for the requesters' counter-signatures)",
                thousands(b.confirmed_earned() as i64),
                thousands(b.pending_earned as i64)
            );
        } else {
            println!("earned     {}", thousands(b.earned as i64));
        }
        println!("spent      {}", thousands(b.spent as i64));
        println!(
            "net        {}{}  (confirmed earnings - spent)",
            if b.net() > 0 { "+" } else { "" },
            thousands(b.net())
        );
        println!(
            "available  {}  ({} allowance + net)",
            thousands(b.available()),
            thousands(ALLOWANCE_TOKENS)
        );
    }
    Ok(())
}

/// `balance --all`: every identity in the ledger.
pub(super) fn print_balances(balances: &[Balance], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        let rows: Vec<_> = balances.iter().map(balance_json).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<70} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "pubkey", "earned", "pending", "spent", "net", "available"
    );
    for b in balances {
        println!(
            "{:<70} {:>12} {:>12} {:>12} {:>12} {:>12}",
            b.pubkey.to_string(),
            thousands(b.earned as i64),
            thousands(b.pending_earned as i64),
            thousands(b.spent as i64),
            thousands(b.net()),
            thousands(b.available())
        );
    }
    Ok(())
}

pub(super) fn receipts(paths: &Paths, limit: usize, as_json: bool) -> anyhow::Result<ExitCode> {
    let rows = match read_ledger(paths)? {
        Some(l) => l.newest(limit)?,
        None => Vec::new(),
    };
    if as_json {
        let out: Vec<_> = rows
            .iter()
            .map(|r| json!({"seq": r.seq, "signedReceipt": r.receipt}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let me = keystore::load_identity(&paths.identity_file())
        .ok()
        .map(|i| i.public());
    if rows.is_empty() {
        println!("no receipts yet");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<20}  {:<6}  {:<14}  {:<24}  {:>8}  {:>8}",
        "seq", "completed", "role", "peer", "model", "in", "out"
    );
    for row in rows {
        let r = row.receipt.receipt();
        let (role, peer) = match me {
            Some(me) if r.worker_pubkey == me && r.requester_pubkey == me => {
                ("self", r.worker_pubkey)
            }
            Some(me) if r.worker_pubkey == me => ("earned", r.requester_pubkey),
            Some(me) if r.requester_pubkey == me => ("spent", r.worker_pubkey),
            _ => ("other", r.worker_pubkey),
        };
        let model: String = r.model.chars().take(24).collect();
        println!(
            "{:>6}  {:<20}  {:<6}  {:<14}  {:<24}  {:>8}  {:>8}",
            row.seq,
            utc_time(r.completed_at),
            role,
            peer.short(),
            model,
            r.input_tokens,
            r.output_tokens
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn verify(paths: &Paths, as_json: bool) -> anyhow::Result<ExitCode> {
    // Progress goes to stderr, and not at all under --json (a script reads stdout).
    let mut progress = |p: ledger::VerifyProgress| {
        if !as_json {
            eprintln!(
                "verified {} of {} receipts…",
                p.receipts_checked, p.receipts_total
            );
        }
    };
    let report = match read_ledger(paths)? {
        Some(l) => ledger::verify_ledger_with(&l, &mut progress)?,
        None => ledger::VerifyReport::default(),
    };
    print_verify(&report, as_json)
}

pub(super) fn print_verify(report: &VerifyReport, as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!(
            "checked {} receipts and {} identities",
            report.receipts_checked, report.pubkeys_checked
        );
        for m in &report.mismatches {
            println!("MISMATCH {m}");
        }
        if report.is_ok() {
            println!("ledger ok: every stored balance equals the recomputation");
        }
    }
    Ok(if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub(super) fn import(paths: &Paths, file: &Path) -> anyhow::Result<ExitCode> {
    let reader = BufReader::new(
        File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let ledger = write_ledger(paths)?;
    let report = ledger::import_jsonl(&ledger, reader)
        .with_context(|| format!("import of {} stopped", file.display()))?;
    for (line, why) in &report.problems {
        eprintln!("{}:{line}: {why}", file.display());
    }
    if report.invalid as usize > report.problems.len() {
        eprintln!(
            "… and {} more invalid lines",
            report.invalid as usize - report.problems.len()
        );
    }
    println!(
        "imported {}, duplicate {}, invalid {}",
        report.imported, report.duplicate, report.invalid
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn export(paths: &Paths) -> anyhow::Result<ExitCode> {
    if let Some(l) = read_ledger(paths)? {
        let stdout = std::io::stdout();
        ledger::export_jsonl(&l, stdout.lock())?;
    }
    Ok(ExitCode::SUCCESS)
}
