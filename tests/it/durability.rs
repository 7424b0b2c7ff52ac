//! Crash durability: a child process appends receipts one durable transaction at a time
//! and prints each nonce after its append returns; the test SIGKILLs it mid-stream, then
//! reopens the database and checks that every printed receipt is there and the ledger is
//! consistent. Three rounds on the same file, so recovery after a kill is itself followed
//! by more appends and another kill.
//!
//! The child is examples/ledger_append_child.rs, which `cargo test` and `cargo nextest
//! run` build next to the test binaries.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use lobstah::core::ledger::{Ledger, Totals, verify_ledger};
use lobstah::core::store;

/// Nonces read from each child before it is killed.
const LINES_PER_ROUND: usize = 100;
/// Receipts each child signs before appending, so the kill lands among back-to-back
/// commits; it keeps going (slower, signing as it goes) after them.
const PREPARED: usize = 2 * LINES_PER_ROUND;
const ROUNDS: usize = 3;
/// A guard against a hung child, not a speed assertion.
const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

fn child_binary() -> PathBuf {
    // target/<profile>/deps/durability-<hash> → target/<profile>/examples/
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join(format!(
        "ledger_append_child{}",
        std::env::consts::EXE_SUFFIX
    ));
    assert!(
        path.is_file(),
        "the durability test's child process is missing: {} does not exist. `cargo test` and \
         `cargo nextest run` build it; when running this test alone, build it first with \
         `cargo build --example ledger_append_child` (add --release for a release test run)",
        path.display()
    );
    path
}

fn is_nonce(line: &str) -> bool {
    line.len() == 32 && line.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Runs one child until it has printed `LINES_PER_ROUND` nonces, kills it, and returns
/// every nonce it printed (including any printed between the last read and the kill).
fn run_and_kill(bin: &Path, db: &Path, deadline: Instant) -> Vec<String> {
    let mut child = Command::new(bin)
        .arg(db)
        .arg(PREPARED.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let mut printed = Vec::new();
    while printed.len() < LINES_PER_ROUND {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => printed.push(line.expect("child stdout is UTF-8")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "the child printed only {} nonces in {GIVE_UP_AFTER:?}; is it hung?",
                    printed.len()
                );
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!(
                    "the child stopped after {} nonces ({status}): {err}",
                    printed.len()
                );
            }
        }
    }
    child.kill().expect("SIGKILL the child");
    let status = child.wait().unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            status.signal(),
            Some(9),
            "the child was not killed mid-stream: {status}"
        );
    }
    #[cfg(not(unix))]
    assert!(!status.success(), "the child was not killed: {status}");
    reader.join().unwrap();
    printed.extend(rx.try_iter().map(|l| l.expect("child stdout is UTF-8")));
    for line in &printed {
        assert!(is_nonce(line), "unexpected child output {line:?}");
    }
    printed
}

/// Reopens the database after a kill and checks it against what the children printed.
fn check_after_crash(db: &Path, printed: &HashSet<String>, rounds_done: usize) {
    let ledger = Ledger::new(store::open(db).expect("reopen after SIGKILL")).unwrap();
    let rows = ledger.since(0, usize::MAX).unwrap();

    let seqs: Vec<u64> = rows.iter().map(|r| r.seq).collect();
    let want: Vec<u64> = (1..=rows.len() as u64).collect();
    assert_eq!(seqs, want, "sequence numbers have gaps or repeats");

    let stored: HashSet<String> = rows
        .iter()
        .map(|r| r.receipt.receipt().nonce.clone())
        .collect();
    assert_eq!(stored.len(), rows.len(), "a nonce is stored twice");
    let lost: Vec<&String> = printed.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} receipts were acknowledged (printed) but are not in the ledger: {lost:?}",
        lost.len()
    );
    // Each kill may land after a commit and before its nonce was printed: at most one
    // unacknowledged receipt per round.
    let unacknowledged = stored.difference(printed).count();
    assert!(
        unacknowledged <= rounds_done,
        "{unacknowledged} receipts in the ledger were never acknowledged"
    );
    for nonce in printed {
        assert!(ledger.contains_nonce(nonce).unwrap());
    }

    let report = verify_ledger(&ledger).unwrap();
    assert!(report.is_ok(), "{:?}", report.mismatches);
    assert_eq!(report.receipts_checked, rows.len() as u64);

    // Balances and totals recomputed here, independently of verify_ledger.
    let mut expected: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut tokens = 0;
    for row in &rows {
        let r = row.receipt.receipt();
        let t = r.total_tokens();
        tokens += t;
        let w = expected.entry(r.worker_pubkey.to_string()).or_default();
        w.0 += t;
        w.2 += 1;
        let q = expected.entry(r.requester_pubkey.to_string()).or_default();
        q.1 += t;
        if r.requester_pubkey != r.worker_pubkey {
            q.2 += 1;
        }
    }
    let have: BTreeMap<String, (u64, u64, u64)> = ledger
        .balances()
        .unwrap()
        .into_iter()
        .map(|b| (b.pubkey.to_string(), (b.earned, b.spent, b.receipts)))
        .collect();
    assert_eq!(have, expected);
    assert_eq!(
        ledger.totals().unwrap(),
        Totals {
            receipts: rows.len() as u64,
            tokens
        }
    );
}

#[test]
fn acknowledged_appends_survive_sigkill() {
    let bin = child_binary();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.redb");
    let deadline = Instant::now() + GIVE_UP_AFTER;
    let mut printed = HashSet::new();
    for round in 1..=ROUNDS {
        let nonces = run_and_kill(&bin, &db, deadline);
        assert!(nonces.len() >= LINES_PER_ROUND);
        let before = printed.len();
        printed.extend(nonces.iter().cloned());
        assert_eq!(
            printed.len(),
            before + nonces.len(),
            "a nonce was printed twice"
        );
        check_after_crash(&db, &printed, round);
    }
}
