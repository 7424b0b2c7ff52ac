//! Ledger throughput on a file-backed database in a temporary directory, every commit
//! durable (redb's default, `Durability::Immediate`):
//!
//! - append, one receipt per transaction vs 1,000 per transaction (issue target for the
//!   batched case: ≥ 20,000 receipts/s), with random nonces and 64 workers × 64
//!   requesters as in a real ledger; and the worst case of a new requester per receipt;
//! - balance lookup with 10k, 100k and 1M receipts in the ledger, each receipt with its
//!   own requester so the balances table grows with the log, looked up at random
//!   (target: ≤ 50 µs at 1M, and flat as the ledger grows).
//!
//! Lookups are measured in wall-clock time and in the thread's CPU time (group
//! `balance_lookup_cpu`), which stays meaningful on a shared machine; appends wait on
//! fsync, so they are wall clock only.
//!
//! cargo bench --bench ledger
//! LOBSTAH_BENCH_MAX_RECEIPTS=100000 cargo bench --bench ledger   (skip the 1M size)
//! LOBSTAH_BENCH_MAX_RECEIPTS=0 cargo bench --bench ledger append  (appends only: the
//!     ledger for the lookups is grown outside criterion's filter, so set this when
//!     filtering them out)
//!
//! Receipts are signed and accepted (signature checked) up front, on every core, so the
//! timings cover the ledger only.

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cpu_time::CpuTime;

use criterion::{
    BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use lobstah::core::ledger::{AcceptRules, AppendOutcome, Ledger, Party, Verified, accept};
use lobstah::core::protocol::{Identity, PublicKey, Receipt, SignedReceipt, new_nonce};
use lobstah::core::store;

const WORKERS: usize = 64;
/// Requesters in the realistic append pools (a router's own ledger has one: itself).
const REQUESTERS: u64 = 64;
/// Receipts signed for each append benchmark pool; reused on a fresh database when used up.
const APPEND_POOL: usize = 30_000;
const BATCH: usize = 1_000;
const LOOKUP_SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];

fn workers() -> Vec<Identity> {
    (0..WORKERS)
        .map(|i| Identity::from_seed([i as u8 + 1; 32]))
        .collect()
}

/// A requester of its own for receipt `i` (not a curve point check: requesters are only
/// named, never verified against).
fn requester(i: u64) -> PublicKey {
    let mut bytes = [0u8; 32];
    let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ i;
    bytes[..8].copy_from_slice(&mixed.to_le_bytes());
    bytes[8..16].copy_from_slice(&i.to_le_bytes());
    bytes[16] = 0x5a;
    PublicKey::from_bytes(bytes)
}

/// Who requested receipt `i`, and how its nonce is chosen.
#[derive(Clone, Copy)]
enum Requesters {
    /// `REQUESTERS` identities, as in a real node's ledger; random nonces.
    Few,
    /// A new requester per receipt at a random place in the balances table, random
    /// nonces: the append worst case, every receipt dirties its own pages.
    Unique,
    /// A new requester per receipt, keys and nonces increasing with `i`: grows the
    /// balances table to the size of the log without rewriting pages all over it, so
    /// the 1M-receipt ledger for the lookups builds in reasonable time. Lookups then
    /// pick random keys.
    Growth,
}

/// A requester whose text form sorts by `i`.
fn requester_in_order(i: u64) -> PublicKey {
    let mut bytes = [0x5a; 32];
    bytes[..8].copy_from_slice(&i.to_be_bytes());
    PublicKey::from_bytes(bytes)
}

fn make(workers: &[Identity], i: u64, requesters: Requesters) -> Verified {
    let worker = &workers[i as usize % workers.len()];
    let started_at = 1_700_000_000_000 + i;
    let r = Receipt {
        version: 1,
        job_id: format!("bench-{i:08}-6f1c1c1e-8a43-4d4f"),
        // Random, as real nonces are: inserts land all over the nonce index.
        nonce: match requesters {
            Requesters::Growth => format!("{i:032x}"),
            _ => new_nonce(),
        },
        requester_pubkey: match requesters {
            Requesters::Few => requester(i % REQUESTERS),
            Requesters::Unique => requester(i),
            Requesters::Growth => requester_in_order(i),
        },
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
    accept(SignedReceipt::sign(r, worker).expect("sign"), &rules).expect("accept")
}

/// Receipts `start..start + n`, made on every core, in order.
fn generate(workers: &[Identity], start: u64, n: usize, requesters: Requesters) -> Vec<Verified> {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let chunk = n.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let lo = start + (t * chunk).min(n) as u64;
                let hi = start + ((t + 1) * chunk).min(n) as u64;
                s.spawn(move || {
                    (lo..hi)
                        .map(|i| make(workers, i, requesters))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("generator thread"))
            .collect()
    })
}

struct FileLedger {
    ledger: Ledger,
    _dir: tempfile::TempDir,
}

fn file_ledger() -> FileLedger {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = store::open(&dir.path().join("bench.redb")).expect("open");
    FileLedger {
        ledger: Ledger::new(db).expect("ledger"),
        _dir: dir,
    }
}

/// Hands out pool receipts; when they run out, starts a fresh database so the same
/// receipts are new again (nonces only need to be unique within one ledger).
struct Feed<'a> {
    pool: &'a [Verified],
    next: usize,
    current: FileLedger,
}

impl<'a> Feed<'a> {
    fn new(pool: &'a [Verified]) -> Self {
        Feed {
            pool,
            next: 0,
            current: file_ledger(),
        }
    }

    fn take(&mut self, n: usize) -> (&Ledger, &'a [Verified]) {
        if self.next + n > self.pool.len() {
            self.current = file_ledger();
            self.next = 0;
        }
        let slice = &self.pool[self.next..self.next + n];
        self.next += n;
        (&self.current.ledger, slice)
    }
}

fn appended_all(outcomes: &[AppendOutcome]) -> bool {
    outcomes
        .iter()
        .all(|o| matches!(o, AppendOutcome::Appended { .. }))
}

fn append(c: &mut Criterion) {
    let workers = workers();
    let started = Instant::now();
    let few = generate(&workers, 0, APPEND_POOL, Requesters::Few);
    let unique = generate(&workers, 0, APPEND_POOL, Requesters::Unique);
    eprintln!(
        "signed and accepted {} receipts in {:.1?}",
        few.len() + unique.len(),
        started.elapsed()
    );

    let mut g = c.benchmark_group("ledger_append_durable");
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(2));

    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(6));
    let mut feed = Feed::new(&few);
    g.bench_function("1_receipt_per_txn", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (ledger, one) = feed.take(1);
                let t = Instant::now();
                let out = ledger.append(one).expect("append");
                total += t.elapsed();
                assert!(appended_all(&out));
            }
            total
        })
    });

    g.throughput(Throughput::Elements(BATCH as u64));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for (name, pool) in [
        (format!("{BATCH}_receipts_per_txn"), &few),
        (
            format!("{BATCH}_receipts_per_txn_unique_requesters"),
            &unique,
        ),
    ] {
        let mut feed = Feed::new(pool);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (ledger, batch) = feed.take(BATCH);
                    let t = Instant::now();
                    let out = ledger.append(batch).expect("append");
                    total += t.elapsed();
                    assert!(appended_all(&out));
                }
                total
            })
        });
    }
    g.finish();
}

fn max_receipts() -> usize {
    match std::env::var("LOBSTAH_BENCH_MAX_RECEIPTS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("LOBSTAH_BENCH_MAX_RECEIPTS={v:?} is not a number")),
        Err(_) => *LOOKUP_SIZES.last().unwrap_or(&0),
    }
}

/// Grows `ledger` to `target` receipts: generator threads sign while this thread appends
/// in durable batches.
fn grow(ledger: &Ledger, workers: &[Identity], from: usize, target: usize) {
    const CHUNK: usize = 10_000;
    let (tx, rx) = mpsc::sync_channel::<Vec<Verified>>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut at = from;
            while at < target {
                let n = CHUNK.min(target - at);
                if tx
                    .send(generate(workers, at as u64, n, Requesters::Growth))
                    .is_err()
                {
                    break;
                }
                at += n;
            }
        });
        for chunk in rx {
            for batch in chunk.chunks(CHUNK) {
                let out = ledger.append(batch).expect("append");
                assert!(appended_all(&out));
            }
        }
    });
}

fn balance_lookup(c: &mut Criterion) {
    let workers = workers();
    let max = max_receipts();
    let fl = file_ledger();
    let ledger = &fl.ledger;
    let mut g = c.benchmark_group("balance_lookup");
    g.sample_size(50);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));
    let mut cpu_criterion = CpuTime::available().then(|| {
        Criterion::default()
            .with_measurement(CpuTime)
            .configure_from_args()
    });
    let mut g_cpu = cpu_criterion.as_mut().map(|c| {
        let mut g = c.benchmark_group("balance_lookup_cpu");
        g.sample_size(50);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(3));
        g
    });
    let mut have = 0;
    for size in LOOKUP_SIZES.into_iter().filter(|&s| s <= max) {
        let started = Instant::now();
        grow(ledger, &workers, have, size);
        have = size;
        let totals = ledger.totals().expect("totals");
        assert_eq!(totals.receipts, size as u64);
        eprintln!(
            "ledger grown to {size} receipts ({} identities) in {:.1?}",
            size + WORKERS.min(size),
            started.elapsed()
        );
        // Look up requesters spread over the whole log, and the (hot) workers.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut keys: Vec<PublicKey> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                requester_in_order(state % size as u64)
            })
            .collect();
        keys.extend(workers.iter().map(|w| w.public()));
        for k in &keys {
            assert!(ledger.balance(k).expect("balance").receipts > 0);
        }
        let mut i = 0;
        let mut lookup = || {
            i = (i + 1) % keys.len();
            ledger.balance(black_box(&keys[i])).expect("balance")
        };
        g.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
            b.iter(&mut lookup)
        });
        if let Some(g_cpu) = g_cpu.as_mut() {
            g_cpu.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
                b.iter(&mut lookup)
            });
        }
    }
    g.finish();
    if let Some(g_cpu) = g_cpu {
        g_cpu.finish();
    }
}

criterion_group!(benches, append, balance_lookup);
criterion_main!(benches);
