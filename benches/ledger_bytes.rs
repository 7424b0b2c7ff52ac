//! Bytes of ledger per receipt on each side, the way the network writes them: the worker
//! appends its own receipts as pending with the request's proof, in group commits of
//! `COMMIT` receipts (what the writer gathers under 64 clients), and settles them as the
//! router's confirmations arrive, in batches of up to 512; the router appends the same
//! receipts as confirmed with their proofs. At the end it prints, per side, the file's
//! length and redb's allocated bytes per receipt, and each table's stored, metadata and
//! fragmented bytes per receipt. Commits are counted so that
//! `strace -f -c -e trace=pwrite64` on one side gives the pages written per commit.
//!
//! cargo bench --bench ledger_bytes                              # both sides, 150,000
//! LEDGER_BYTES_SIDE=worker LEDGER_BYTES_RECEIPTS=20000 cargo bench --bench ledger_bytes

#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use lobstah::core::ledger::{AcceptRules, Ledger, Party, Standing, Verified, accept, sign_own};
use lobstah::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, MAX_CONFIRMED_PER_BATCH, Receipt, RequestProof,
    RequestTarget, SignedConfirmation, SignedReceipt, new_nonce,
};
use lobstah::core::store;
use redb::{ReadableTableMetadata as _, TableHandle as _};

/// Receipts per group commit: what the worker's writer gathered per commit when measured.
const COMMIT: usize = 14;
/// The router confirms what it has every half second; at ~2,000 receipts a second that is
/// about this many at a time.
const CONFIRM_EVERY: usize = 1_000;

struct Made {
    /// As the worker ledgers it: pending, with the proof of the request it answers.
    worker: Verified,
    /// As the router ledgers it: confirmed, with the same proof.
    router: Verified,
    signed: SignedReceipt,
}

fn make(worker: &Identity, router: &Identity, i: u64) -> Made {
    let body = format!(
        "{{\"model\":\"llama3.1:8b\",\"messages\":[{{\"role\":\"user\",\"content\":\"{i}\"}}]}}"
    );
    let now = 1_800_000_000_000 + i * 3;
    let target = RequestTarget {
        method: "POST",
        path: "/v1/chat/completions",
        body: body.as_bytes(),
        worker: &worker.public(),
    };
    let (_, proof) = RequestProof::sign(router, target, now);
    let receipt = Receipt {
        version: 1,
        job_id: format!("chatcmpl-{}", uuid::Uuid::new_v4().simple()),
        nonce: new_nonce(),
        requester_pubkey: router.public(),
        worker_pubkey: worker.public(),
        model: "llama3.1:8b".into(),
        input_tokens: 20 + i % 300,
        output_tokens: 50 + i % 700,
        started_at: now,
        completed_at: now + 800 + i % 2_000,
    };
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Worker(worker.public()),
    };
    let own = sign_own(receipt, worker).unwrap();
    let signed = own.signed().clone();
    let on_worker = own
        .accept(&rules)
        .unwrap()
        .with_standing(Standing::Pending)
        .answering(Some(proof.clone()));
    let router_rules = AcceptRules {
        now_ms: None,
        party: Party::Requester(router.public()),
    };
    let on_router = accept(signed.clone(), &router_rules)
        .unwrap()
        .answering(Some(proof));
    Made {
        worker: on_worker,
        router: on_router,
        signed,
    }
}

fn confirm_all(
    ledger: &Ledger,
    worker: &Identity,
    router: &Identity,
    waiting: &mut Vec<SignedReceipt>,
) -> usize {
    let mut commits = 0;
    for chunk in waiting.chunks(MAX_CONFIRMED_PER_BATCH) {
        let confirmation = Confirmation {
            version: 1,
            requester_pubkey: router.public(),
            worker_pubkey: worker.public(),
            confirmed_at: 1_800_000_000_000,
            receipts: chunk.iter().map(ConfirmedReceipt::of).collect(),
        };
        let signed = SignedConfirmation::sign(confirmation, router).unwrap();
        ledger.confirm(&signed, &worker.public()).unwrap();
        commits += 1;
    }
    waiting.clear();
    commits
}

fn report(side: &str, path: &Path, ledger: &Ledger, receipts: usize, commits: usize) {
    let per = |bytes: u64| bytes as f64 / receipts as f64;
    let file = std::fs::metadata(path).map_or(0, |m| m.len());
    let tx = ledger.db().begin_write().unwrap();
    let stats = tx.stats().unwrap();
    tx.abort().unwrap();
    let allocated = stats.allocated_pages() * stats.page_size() as u64;
    println!(
        "{side}: {receipts} receipts, {commits} commits; file {:.0} B/receipt, allocated {:.0} B/receipt \
         (stored {:.0}, metadata {:.0}, fragmented {:.0})",
        per(file),
        per(allocated),
        per(stats.stored_bytes()),
        per(stats.metadata_bytes()),
        per(stats.fragmented_bytes()),
    );
    let read = ledger.db().begin_read().unwrap();
    println!(
        "  {:<28} {:>8} {:>8} {:>8} {:>8} {:>10}",
        "table", "rows", "stored", "meta", "frag", "B/receipt"
    );
    for handle in read.list_tables().unwrap() {
        let table = read.open_untyped_table(handle.clone()).unwrap();
        let s = table.stats().unwrap();
        let total = s.stored_bytes() + s.metadata_bytes() + s.fragmented_bytes();
        println!(
            "  {:<28} {:>8} {:>8.1} {:>8.1} {:>8.1} {:>10.1}",
            handle.name(),
            table.len().unwrap(),
            per(s.stored_bytes()),
            per(s.metadata_bytes()),
            per(s.fragmented_bytes()),
            per(total),
        );
    }
}

fn main() {
    let total: usize = std::env::var("LEDGER_BYTES_RECEIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150_000);
    let side = std::env::var("LEDGER_BYTES_SIDE").unwrap_or_else(|_| "both".into());
    let (do_worker, do_router) = (side != "router", side != "worker");
    let worker = Identity::from_seed([1; 32]);
    let router = Identity::from_seed([2; 32]);
    let dir = tempfile::tempdir().unwrap();
    let (worker_path, router_path) = (
        dir.path().join("worker.redb"),
        dir.path().join("router.redb"),
    );
    let worker_ledger = Ledger::new(store::open(&worker_path).unwrap()).unwrap();
    let router_ledger = Ledger::new(store::open(&router_path).unwrap()).unwrap();
    let (mut worker_commits, mut router_commits) = (0, 0);
    let mut waiting = Vec::new();
    let mut done = 0;
    while done < total {
        let n = COMMIT.min(total - done);
        let made: Vec<Made> = (done..done + n)
            .map(|i| make(&worker, &router, i as u64))
            .collect();
        if do_worker {
            let batch: Vec<Verified> = made.iter().map(|m| m.worker.clone()).collect();
            worker_ledger.append(&batch).unwrap();
            worker_commits += 1;
            waiting.extend(made.iter().map(|m| m.signed.clone()));
            if waiting.len() >= CONFIRM_EVERY {
                worker_commits += confirm_all(&worker_ledger, &worker, &router, &mut waiting);
            }
        }
        if do_router {
            let batch: Vec<Verified> = made.into_iter().map(|m| m.router).collect();
            router_ledger.append(&batch).unwrap();
            router_commits += 1;
        }
        done += n;
    }
    if do_worker {
        worker_commits += confirm_all(&worker_ledger, &worker, &router, &mut waiting);
        report(
            "worker",
            &worker_path,
            &worker_ledger,
            total,
            worker_commits,
        );
    }
    if do_router {
        report(
            "router",
            &router_path,
            &router_ledger,
            total,
            router_commits,
        );
    }
}
