//! Memory and disk of a growing ledger: appends signed, accepted receipts to a file-backed
//! ledger in batches of 1,000 (as the group-commit writer does under load) and prints,
//! at 10k, 100k, 300k and 1M receipts, the process's resident memory, the file's bytes
//! per receipt, and the time of a balance lookup.
//!
//! cargo bench --bench ledger_memory                       # the node's default cache
//! LOBSTAH_LEDGER_CACHE_MIB=1024 cargo bench --bench ledger_memory   # redb's default
//! LEDGER_MEMORY_RECEIPTS=300000 cargo bench --bench ledger_memory   # stop earlier
//!
//! One process per configuration: memory a process has touched is not handed back
//! reliably, so two configurations in one run would measure each other.

// A bench states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use lobstah::core::ledger::{AcceptRules, Ledger, Party, Verified, accept};
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt, new_nonce};
use lobstah::core::store;

const BATCH: usize = 1_000;
const CHECKPOINTS: [usize; 4] = [10_000, 100_000, 300_000, 1_000_000];
const WORKERS: u8 = 8;

/// Resident memory of this process, from /proc (Linux); 0 where there is none.
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn requester(i: u64) -> PublicKey {
    let mut bytes = [0x5a; 32];
    bytes[..8].copy_from_slice(&(i % 64).to_le_bytes());
    PublicKey::from_bytes(bytes)
}

/// Receipts `start..start + n`, signed and accepted, made on every core.
fn batch(workers: &[Identity], start: u64, n: usize) -> Vec<Verified> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per = n.div_ceil(threads);
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let from = start + (t * per) as u64;
                    let to = (start + n as u64).min(from + per as u64);
                    (from..to)
                        .map(|i| {
                            let worker = &workers[i as usize % workers.len()];
                            let started_at = 1_700_000_000_000 + i;
                            let receipt = Receipt {
                                version: 1,
                                job_id: uuid::Uuid::new_v4().to_string(),
                                nonce: new_nonce(),
                                requester_pubkey: requester(i),
                                worker_pubkey: worker.public(),
                                model: "llama3.1:8b".into(),
                                input_tokens: 100 + i % 900,
                                output_tokens: 200 + i % 1800,
                                started_at,
                                completed_at: started_at + 2_500,
                            };
                            let rules = AcceptRules {
                                now_ms: None,
                                party: Party::Any,
                            };
                            accept(SignedReceipt::sign(receipt, worker).unwrap(), &rules).unwrap()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

fn main() {
    let cache_mib: u64 = std::env::var("LOBSTAH_LEDGER_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(store::DEFAULT_CACHE_MIB);
    let total: usize = std::env::var("LEDGER_MEMORY_RECEIPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let ledger = Ledger::new(store::open_with_cache(&path, cache_mib).unwrap()).unwrap();
    let workers: Vec<Identity> = (1..=WORKERS)
        .map(|i| Identity::from_seed([i; 32]))
        .collect();
    println!("ledger cache {cache_mib} MiB, {total} receipts, batches of {BATCH}");
    println!("receipts    RSS MiB   ledger bytes/receipt   balance lookup µs");
    let mut done = 0;
    for checkpoint in CHECKPOINTS.into_iter().filter(|&c| c <= total) {
        while done < checkpoint {
            let receipts = batch(&workers, done as u64, BATCH);
            ledger.append(&receipts).unwrap();
            done += BATCH;
        }
        let started = Instant::now();
        let lookups = 1_000;
        for i in 0..lookups {
            std::hint::black_box(ledger.balance(&requester(i)).unwrap());
        }
        let lookup_us = started.elapsed().as_secs_f64() * 1e6 / lookups as f64;
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!(
            "{:>8} {:>9.1} {:>22.0} {:>19.1}",
            done,
            rss_mib(),
            bytes as f64 / done as f64,
            lookup_us
        );
    }
}
