//! Two hundred jobs through a router to two workers, all real processes on 127.0.0.1.
//! Mid-run worker A is killed (SIGKILL) and started again on the same port and database,
//! and so is the router. The client submits each job with an idempotency key and retries
//! on a broken connection, as a batch client should; then it fetches every result.
//!
//! At the end every job is done, once: one credited placement each, its receipt in the
//! router's ledger once and in exactly one worker's ledger, and the ledgers agree (what
//! the router spent is what the workers earned, nonce for nonce).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::jobs::JobStatus;
use lobstah::core::ledger::Ledger;
use lobstah::core::protocol::PublicKey;
use lobstah::core::router::jobs::{AttemptOutcome, RouterJobStore};
use lobstah::core::store;
use serde_json::Value;
use tokio::sync::Semaphore;

const JOBS: usize = 200;
const KILL_WORKER_AT: usize = 60;
const KILL_ROUTER_AT: usize = 130;
const IN_FLIGHT: usize = 8;
/// A guard against a hang, not a speed target (the run takes a few seconds).
const DEADLINE: Duration = Duration::from_secs(45);

struct Process {
    child: Child,
    url: String,
    pubkey: PublicKey,
}

impl Process {
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the process must exit 0 (it finished and closed its database).
    fn terminate(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "exits 0 on SIGTERM: {exit:?}");
    }

    fn port(&self) -> String {
        self.url.rsplit(':').next().unwrap().to_string()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lobstah(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lobstah"));
    command.arg("--home").arg(home).env("LOBSTAH_LOG", "warn");
    command
}

/// Starts `lobstah --home HOME ARGS…` and reads the address it prints once listening:
/// "<what> <pubkey> listening on http://ADDR …".
fn spawn(home: &Path, args: &[&str]) -> Process {
    let mut child = lobstah(home)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the lobstah binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("it prints its address");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(
        words.len() >= 5 && words[2] == "listening",
        "unexpected: {line:?}"
    );
    Process {
        pubkey: PublicKey::parse(words[1]).unwrap(),
        url: words[4].to_string(),
        child,
    }
}

/// A batch-tier worker on the synthetic engine, two jobs at a time, each taking 8
/// tokens at `rate` tokens a second.
fn worker(home: &Path, port: &str, rate: &str) -> Process {
    #[rustfmt::skip]
    let args = [
        "worker", "start", "--engine", "synthetic", "--tier", "batch",
        "--synthetic-rate", rate, "--concurrency", "2", "--port", port,
    ];
    spawn(home, &args)
}

/// Worker A is slow (80 ms a job), so it has a backlog, and jobs running, when it dies.
const A_RATE: &str = "100";
const B_RATE: &str = "400";

fn router(home: &Path, port: &str) -> Process {
    spawn(home, &["router", "start", "--port", port])
}

/// Submits job `i` until the router answers with a job (202, or 200 for a retry the
/// router already had); connection errors and 5xx are retried with the same key.
async fn submit(client: &reqwest::Client, url: &str, i: usize) -> String {
    let body = support::jobs::job_body("synthetic", &format!("job {i}"));
    let until = Instant::now() + DEADLINE;
    loop {
        let (status, job) = async {
            let r = client
                .post(format!("{url}/v1/jobs"))
                .header("idempotency-key", format!("restart-test-{i}"))
                .json(&body)
                .send()
                .await
                .ok()?;
            let status = r.status().as_u16();
            Some((status, r.json::<Value>().await.ok()?))
        }
        .await
        .unwrap_or((0, Value::Null));
        if matches!(status, 200 | 202) {
            return job["id"].as_str().expect("a job id").to_string();
        }
        assert!(
            Instant::now() < until,
            "job {i} never submitted: {status} {job}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The job counts a worker's `/capacity` reports.
async fn capacity_jobs(client: &reqwest::Client, url: &str) -> Value {
    let capacity: Value = client
        .get(format!("{url}/capacity"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    capacity["jobs"].clone()
}

fn open_db(path: &Path) -> store::Db {
    // The process that had it may take a moment to let go of the file lock.
    for _ in 0..200 {
        if let Ok(db) = store::open(path) {
            return db;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("cannot open {}", path.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_jobs_survive_a_worker_crash_and_a_router_crash() {
    let started = Instant::now();
    let homes: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a_home, b_home, r_home) = (homes[0].path(), homes[1].path(), homes[2].path());
    let mut a = worker(a_home, "0", A_RATE);
    let b = worker(b_home, "0", B_RATE);
    for (p, label) in [(&a, "a"), (&b, "b")] {
        let added = lobstah(r_home)
            .args(["peers", "add", &p.pubkey.to_string(), &p.url, label])
            .output()
            .unwrap();
        assert!(added.status.success(), "{added:?}");
    }
    let mut r = router(r_home, "0");
    let (url, me) = (r.url.clone(), r.pubkey);
    let client = support::client();

    // Submit with IN_FLIGHT at a time; crash A, then the router, along the way.
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut tasks = Vec::with_capacity(JOBS);
    let mut a_restart = None;
    for i in 0..JOBS {
        let permit = slots.clone().acquire_owned().await.unwrap();
        let (task_client, task_url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let id = submit(&task_client, &task_url, i).await;
            drop(permit);
            id
        }));
        if i == KILL_WORKER_AT {
            let jobs = capacity_jobs(&client, &a.url).await;
            assert!(
                jobs["running"].as_u64() > Some(0),
                "A is busy when it dies: {jobs}"
            );
            a.kill();
            let (home, port) = (a_home.to_path_buf(), a.port());
            a_restart = Some(tokio::task::spawn_blocking(move || {
                std::thread::sleep(Duration::from_millis(300));
                worker(&home, &port, A_RATE)
            }));
        }
        if i == KILL_ROUTER_AT {
            r.kill();
            tokio::time::sleep(Duration::from_millis(100)).await;
            r = router(r_home, &r.port());
        }
    }
    let mut ids = Vec::with_capacity(JOBS);
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let a = a_restart.unwrap().await.unwrap();
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        JOBS,
        "one job per key"
    );

    // Fetch every result.
    let mut tokens_by_job = BTreeMap::new();
    for id in &ids {
        let job = support::jobs::wait_for(&client, &url, id, None, "done", DEADLINE).await;
        assert_eq!(job["receipt"]["status"], "credited", "{job}");
        let by = job["servedBy"].as_str().unwrap();
        assert!(
            by == a.pubkey.to_string() || by == b.pubkey.to_string(),
            "{job}"
        );
        tokens_by_job.insert(id.clone(), job["receipt"]["tokens"].as_u64().unwrap());
    }
    let submitted_and_done = started.elapsed();
    let (a_pk, b_pk) = (a.pubkey, b.pubkey);
    r.terminate();
    a.terminate();
    b.terminate();

    // The router's books: one credited placement per job, one receipt per placement.
    let r_db = open_db(&r_home.join("lobstah.redb"));
    let rows = RouterJobStore::open(r_db.clone())
        .unwrap()
        .list(JOBS + 10, None, SystemClock.now_ms())
        .unwrap();
    assert_eq!(rows.len(), JOBS);
    let mut placed = BTreeSet::new();
    let mut extra = 0;
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        for a in &row.attempts {
            let adopted = a
                .detail
                .as_deref()
                .is_some_and(|d| d.starts_with("adopted"));
            let name = format!("{:?}{}", a.outcome, if adopted { " (adopted)" } else { "" });
            *outcomes.entry(name).or_default() += 1;
        }
        assert_eq!(
            (row.status, row.credited),
            (JobStatus::Done, true),
            "{row:?}"
        );
        let a = row.placed().unwrap();
        assert_eq!(a.outcome, AttemptOutcome::Accepted);
        assert!(
            placed.insert((a.peer, a.worker_job_id.clone())),
            "placed twice: {row:?}"
        );
        // A copy that ran at a second peer (an offer whose answer a crash cut off) is
        // paid for too; it would show here.
        extra += row.extra_receipts.len();
    }
    let r_ledger = Ledger::new(r_db).unwrap();
    let receipts = r_ledger.newest(10 * JOBS).unwrap();
    assert_eq!(receipts.len(), JOBS + extra);
    let receipt_jobs: BTreeSet<(PublicKey, String)> = receipts
        .iter()
        .map(|s| {
            (
                s.receipt.receipt().worker_pubkey,
                s.receipt.receipt().job_id.clone(),
            )
        })
        .collect();
    assert!(
        placed.is_subset(&receipt_jobs),
        "every placement's receipt is ledgered"
    );
    let spent = r_ledger.balance(&me).unwrap().spent;
    let extra_tokens: u64 = rows
        .iter()
        .flat_map(|row| &row.extra_receipts)
        .map(|note| note.tokens)
        .sum();
    assert_eq!(spent, tokens_by_job.values().sum::<u64>() + extra_tokens);

    // The workers' books agree with it, nonce for nonce.
    let mut earned = 0;
    let mut worker_nonces = BTreeSet::new();
    for (home, pk) in [(a_home, a_pk), (b_home, b_pk)] {
        let ledger = Ledger::new(open_db(&home.join("lobstah.redb"))).unwrap();
        let balance = ledger.balance(&pk).unwrap();
        earned += balance.earned;
        assert_eq!(ledger.balance(&me).unwrap().spent, balance.earned);
        for s in ledger.newest(10 * JOBS).unwrap() {
            assert!(
                worker_nonces.insert(s.receipt.receipt().nonce.clone()),
                "a nonce twice"
            );
        }
    }
    let router_nonces: BTreeSet<String> = receipts
        .iter()
        .map(|s| s.receipt.receipt().nonce.clone())
        .collect();
    assert_eq!(
        router_nonces, worker_nonces,
        "the same receipts on both sides"
    );
    assert_eq!(spent, earned, "spent = earned");
    assert_eq!(extra, 0, "no job ran twice in this run");
    eprintln!(
        "{JOBS} jobs submitted and collected in {submitted_and_done:?}, {:?} in all; attempts: {outcomes:?}",
        started.elapsed()
    );
}
