//! Child process for tests/it/durability.rs: appends receipts to a file-backed ledger, one
//! durable transaction each, and prints each receipt's nonce on stdout (flushed) only
//! after its append returned. The test SIGKILLs it mid-stream and checks that every
//! printed nonce survived.
//!
//! Usage: ledger_append_child <database path> <receipts to prepare>
//!
//! The first receipts are signed and accepted before the first append, so that those
//! appends run back to back and the kill lands in (or between) commits, not in signature
//! checks. After them the child goes on signing and appending until it is killed: it
//! never exits on its own, so the test's kill always interrupts it.

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::error::Error;
use std::io::Write;
use std::path::PathBuf;

use lobstah::core::ledger::{AcceptRules, AppendOutcome, Ledger, Party, Verified, accept};
use lobstah::core::protocol::{Identity, Receipt, SignedReceipt, new_nonce};
use lobstah::core::store;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: ledger_append_child <database path> <receipts to prepare>";
    let path = PathBuf::from(args.next().ok_or(usage)?);
    let count: usize = args.next().ok_or(usage)?.parse()?;

    let ids: Vec<Identity> = (1..=3u8).map(|i| Identity::from_seed([i; 32])).collect();
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Any,
    };
    let prepared = prepare(&ids, count, &rules)?;
    let more = (count..).map(|i| make(&ids, i, &rules));

    let ledger = Ledger::new(store::open(&path)?)?;
    let mut stdout = std::io::stdout().lock();
    for verified in prepared.into_iter().map(Ok).chain(more) {
        let verified = verified?;
        let nonce = verified.signed().receipt().nonce.clone();
        let outcome = ledger.append(std::slice::from_ref(&verified))?;
        if !matches!(outcome.as_slice(), [AppendOutcome::Appended { .. }]) {
            return Err(format!("nonce {nonce} was not appended: {outcome:?}").into());
        }
        writeln!(stdout, "{nonce}")?;
        stdout.flush()?;
    }
    Ok(())
}

/// Signs and accepts receipt number `i` among `ids` (self-receipts included).
fn make(ids: &[Identity], i: usize, rules: &AcceptRules) -> Result<Verified, String> {
    let worker = &ids[i % ids.len()];
    let requester = &ids[(i / ids.len()) % ids.len()];
    let started_at = 1_750_000_000_000 + i as u64;
    let receipt = Receipt {
        version: 1,
        job_id: format!("durability-{i}"),
        nonce: new_nonce(),
        requester_pubkey: requester.public(),
        worker_pubkey: worker.public(),
        model: "llama3.1:8b".into(),
        input_tokens: (i as u64 * 7) % 1000,
        output_tokens: (i as u64 * 13) % 2000,
        started_at,
        completed_at: started_at + 500,
    };
    let signed = SignedReceipt::sign(receipt, worker).map_err(|e| e.to_string())?;
    accept(signed, rules).map_err(|e| e.to_string())
}

/// Receipts `0..count`, made on every core.
fn prepare(
    ids: &[Identity],
    count: usize,
    rules: &AcceptRules,
) -> Result<Vec<Verified>, Box<dyn Error>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunks: Vec<Result<Vec<Verified>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| make(ids, i, rules))
                        .collect::<Result<Vec<_>, String>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a signing thread panicked".into()))
            })
            .collect()
    });
    // Thread t made receipts t, t + threads, …: put them back in order.
    let mut per_thread: Vec<std::vec::IntoIter<Verified>> = Vec::with_capacity(threads);
    for chunk in chunks {
        per_thread.push(chunk?.into_iter());
    }
    Ok((0..count)
        .filter_map(|i| per_thread[i % threads].next())
        .collect())
}
