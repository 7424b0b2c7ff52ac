//! A full disk never means free work: a worker process whose home sits on a 4 MiB tmpfs,
//! a router process in front of it, and the tmpfs filled to the last byte while clients
//! keep asking. Every answer that reaches a client whole has its receipt on disk on both
//! sides, and the refusals say why ("ledger unavailable: disk full"). When space comes
//! back the worker reopens its ledger by itself and serves again, and afterwards both
//! ledgers hold the same receipts and pass `ledger verify`.
//!
//! Mounting needs root, as CI has; elsewhere the test fails and says so.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How soon after space returns the router must be served again: the worker reopens
/// its ledger within about a second, but the router keeps a peer that failed forty
/// times in a row excluded for its backoff (about 30 s here).
const RESUME_DEADLINE: Duration = Duration::from_secs(60);

use support::processes::{self, Pair, is_whole, receipts, unconfirmed, verify};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs failed ({status}): this test needs root, as CI has"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes zeros to `path` until the file system has no space left.
fn fill(path: &Path) {
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", path.display()))
        .output()
        .expect("run dd");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("No space left"),
        "dd stops at a full disk: {text}"
    );
}

async fn ask(client: &reqwest::Client, url: &str, stream: bool) -> (bool, String) {
    let answer = client
        .post(url)
        .json(&support::chat_body("synthetic", stream))
        .send()
        .await;
    match answer {
        Ok(r) => {
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            (is_whole(stream, status, &body), body)
        }
        Err(e) => (false, e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_leaves_without_its_receipt_when_the_disk_is_full() {
    support::install_crypto();
    let disk = Tmpfs::mount("4m");
    let worker_home = disk.path().join("worker");
    std::fs::create_dir(&worker_home).expect("worker home on the tmpfs");
    let router_home = tempfile::tempdir().unwrap();
    let router_home = router_home.path();
    let pair = Pair::new(&worker_home, router_home);
    let worker = pair.start_worker();
    let router = pair.start_router();
    let client = processes::client();
    let url = pair.chat_url.clone();

    for stream in [false, true] {
        let (whole, body) = ask(&client, &url, stream).await;
        assert!(whole, "served before the disk fills: {body}");
    }
    let filler: PathBuf = disk.path().join("filler");
    fill(&filler);

    // The database may have had free pages left, so some may still be served (with
    // their receipts); once it needs room it cannot get, the worker must refuse.
    let mut whole_while_full = 0u64;
    let mut refusal = None;
    let asked = 40;
    for n in 0..asked {
        let (whole, body) = ask(&client, &url, n % 2 == 1).await;
        if whole {
            whole_while_full += 1;
        } else if refusal.is_none() && body.contains("ledger unavailable") {
            refusal = Some(body);
        }
    }

    // Space comes back while both keep running: the worker reopens its ledger by
    // itself and serves again within seconds, with no restart.
    std::fs::remove_file(&filler).expect("free the space");
    let freed = std::time::Instant::now();
    loop {
        let (whole, body) = ask(&client, &url, false).await;
        if whole {
            break;
        }
        assert!(
            freed.elapsed() < RESUME_DEADLINE,
            "still refused {:?} after the space came back: {body}",
            freed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed_after = freed.elapsed();
    let after = 10;
    for n in 0..after {
        let (whole, body) = ask(&client, &url, n % 2 == 1).await;
        assert!(whole, "served again: {body}");
    }
    // Time for the router's confirmations to reach the worker.
    tokio::time::sleep(Duration::from_secs(2)).await;
    router.sigterm();
    worker.sigterm();
    let on_router = receipts(router_home);
    let on_worker = receipts(&worker_home);
    eprintln!(
        "{asked} asked while full, {whole_while_full} whole; resumed {resumed_after:?} after space returned; router ledger {}, worker ledger {}",
        on_router.len(),
        on_worker.len()
    );
    let before_full = 2;
    let whole_total = before_full + whole_while_full + 1 + after;
    assert!(
        on_router.len() as u64 >= whole_total,
        "every whole answer has its receipt on the router: {whole_total} answers, {} receipts",
        on_router.len()
    );
    assert_eq!(on_router, on_worker, "both ledgers hold the same receipts");
    let pending = unconfirmed(&worker_home);
    assert!(pending.is_empty(), "pending on the worker: {pending:?}");
    verify(router_home);
    verify(&worker_home);
    let refusal = refusal.expect("the worker refuses once its ledger cannot grow");
    assert!(
        refusal.contains("disk full"),
        "the refusal says why: {refusal}"
    );
}
