//! `lobstah --headless` as launchd or systemd runs it: the real binary with
//! LOBSTAH_HOME in a temporary directory and every port picked by the OS. SIGTERM during
//! traffic loses no receipt and exits 0; a second instance is refused by name;
//! `lobstah status --json` and `lobstah receipts --follow` talk to the running node.

use crate::support;

use std::io::{BufRead, BufReader};

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use lobstah::core::ledger::Ledger;
use lobstah::core::store;
use serde_json::{Value, json};
use support::bin::lobstah;
use support::headless::Headless;

const DEADLINE: Duration = Duration::from_secs(30);

async fn add_own_worker(node: &Headless) {
    let http = support::client();
    let outcome: Value = http
        .post(format!("{}/v1/commands", node.url("control_url")))
        .bearer_auth(node.token())
        .json(&json!({"command": "add-peer", "pubkey": node.info["pubkey"], "url": node.url("worker_url"), "label": "self"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(outcome["ok"], true, "{outcome}");
}

fn output(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_traffic_loses_no_receipt_and_exits_zero() {
    let home = tempfile::tempdir().unwrap();
    // 64 tokens at 400/s: about 160 ms per answer.
    let node = Headless::start(home.path(), "400");
    add_own_worker(&node).await;
    let chat = format!("{}/v1/chat/completions", node.url("router_url"));
    let ok = Arc::new(AtomicU64::new(0));
    let ok_after_term = Arc::new(AtomicU64::new(0));
    let termed = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for i in 0..4 {
        let (chat, ok, ok_after_term, termed) = (
            chat.clone(),
            ok.clone(),
            ok_after_term.clone(),
            termed.clone(),
        );
        clients.push(tokio::spawn(async move {
            let http = support::client();
            let stream = i % 2 == 1;
            // Until the node stops answering.
            loop {
                let Ok(response) = http
                    .post(&chat)
                    .json(&support::chat_body("synthetic", stream))
                    .send()
                    .await
                else {
                    break;
                };
                if response.status() != 200 {
                    break;
                }
                let Ok(body) = response.text().await else {
                    break;
                };
                // A stream counts only if it finished.
                if stream && !body.contains("data: [DONE]") {
                    break;
                }
                ok.fetch_add(1, Ordering::SeqCst);
                if termed.load(Ordering::SeqCst) {
                    ok_after_term.fetch_add(1, Ordering::SeqCst);
                }
            }
        }));
    }
    support::eventually("a few answers", DEADLINE, || ok.load(Ordering::SeqCst) >= 8).await;
    termed.store(true, Ordering::SeqCst);
    node.terminate();
    for c in clients {
        tokio::time::timeout(DEADLINE, c)
            .await
            .expect("clients stop")
            .unwrap();
    }
    let (code, log) = tokio::task::spawn_blocking(move || node.wait())
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{log}");
    assert!(log.contains("node stopped"), "{log}");
    assert!(
        !home.path().join("node.json").exists(),
        "node.json is removed on a clean exit"
    );
    let answered = ok.load(Ordering::SeqCst);
    // Requests in flight at the signal were let finish (4 clients, ~160 ms each).
    assert!(
        ok_after_term.load(Ordering::SeqCst) >= 1,
        "nothing was in flight at SIGTERM"
    );
    let ledger =
        Ledger::new(store::open_read_only(&home.path().join("lobstah.redb")).unwrap()).unwrap();
    assert_eq!(
        ledger.totals().unwrap().receipts,
        answered,
        "every 200 has its receipt, once ({} finished after SIGTERM)",
        ok_after_term.load(Ordering::SeqCst)
    );
}

#[tokio::test]
async fn a_second_instance_is_refused_naming_the_first_and_status_reports() {
    let home = tempfile::tempdir().unwrap();
    let node = Headless::start(home.path(), "0");
    // `peers add` beside a running node goes through its control API.
    let added = lobstah(home.path())
        .args([
            "peers",
            "add",
            node.info["pubkey"].as_str().unwrap(),
            &node.url("worker_url"),
            "self",
        ])
        .output()
        .unwrap();
    assert!(added.status.success(), "{}", output(&added));
    assert!(output(&added).contains("added peer"), "{}", output(&added));

    let started = Instant::now();
    let second = lobstah(home.path())
        .args([
            "--headless",
            "--engine",
            "synthetic",
            "--router-port",
            "0",
            "--worker-port",
            "0",
            "--control-port",
            "0",
        ])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1), "{}", output(&second));
    assert!(started.elapsed() < Duration::from_secs(10), "fails fast");
    let text = output(&second);
    assert!(text.contains("already running"), "{text}");
    assert!(
        text.contains(&format!("pid {}", node.info["pid"])),
        "{text}"
    );
    assert!(text.contains(&node.url("control_url")), "{text}");
    // The refused instance did not take over the running node's files.
    let info: Value =
        serde_json::from_slice(&std::fs::read(home.path().join("node.json")).unwrap()).unwrap();
    assert_eq!(info, node.info);

    let http = support::client();
    let answer = http
        .post(format!("{}/v1/chat/completions", node.url("router_url")))
        .json(&support::chat_body("synthetic", false))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let status = lobstah(home.path())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", output(&status));
    let snapshot: Value = serde_json::from_slice(&status.stdout).expect("status --json is JSON");
    assert_eq!(snapshot["identity"], node.info["pubkey"]);
    assert_eq!(snapshot["routerUrl"], node.info["router_url"]);
    assert_eq!(snapshot["controlUrl"], node.info["control_url"]);
    assert_eq!(snapshot["engine"]["kind"], "synthetic");
    assert_eq!(snapshot["advertising"]["on"], false);
    assert_eq!(snapshot["peers"][0]["label"], "self");
    assert_eq!(snapshot["queue"]["concurrency"], 4);

    let text = lobstah(home.path()).arg("status").output().unwrap();
    let text = output(&text);
    assert!(text.contains("advertising  off"), "{text}");
    assert!(text.contains("peers (1)"), "{text}");

    node.terminate();
    let (code, log) = node.wait();
    assert_eq!(code, Some(0), "{log}");
    let after = lobstah(home.path()).args(["status"]).output().unwrap();
    assert_eq!(after.status.code(), Some(1));
    assert!(
        output(&after).contains("no lobstah node is running"),
        "{}",
        output(&after)
    );
}

#[tokio::test]
async fn receipts_follow_prints_new_receipts_as_they_are_ledgered() {
    let home = tempfile::tempdir().unwrap();
    let node = Headless::start(home.path(), "0");
    add_own_worker(&node).await;
    let mut follow = lobstah(home.path())
        .args(["receipts", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seqs = Vec::new();
    follow_until(&node, &mut rx, &mut seqs, 3).await;
    // The node restarts (new ports, new token): the follower finds it again and goes on.
    node.terminate();
    assert_eq!(node.wait().0, Some(0));
    let node = Headless::start(home.path(), "0");
    add_own_worker(&node).await;
    follow_until(&node, &mut rx, &mut seqs, 5).await;
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "each receipt once, in order: {seqs:?}"
    );
    let _ = follow.kill();
    let _ = follow.wait();
    node.terminate();
    assert_eq!(node.wait().0, Some(0));
}

/// Sends requests until the follower has printed `n` receipts in all; the first ones
/// may go out before it has subscribed (or reconnected), which is why it polls.
async fn follow_until(
    node: &Headless,
    lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    seqs: &mut Vec<u64>,
    n: usize,
) {
    let http = support::client();
    let chat = format!("{}/v1/chat/completions", node.url("router_url"));
    let until = Instant::now() + DEADLINE;
    while seqs.len() < n {
        assert!(Instant::now() < until, "receipts did not show up: {seqs:?}");
        let r = http
            .post(&chat)
            .json(&support::chat_body("synthetic", false))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(300), lines.recv()).await
        {
            let row: Value = serde_json::from_str(&line).expect("a JSON receipt per line");
            assert_eq!(row["role"], "self-served");
            seqs.push(row["seq"].as_u64().unwrap());
        }
    }
}

/// A node started under a low soft open-file limit (macOS gives 256) raises it to what its
/// servers' connection bounds (router, worker, control API) can use, as far as the hard
/// limit allows.
#[cfg(target_os = "linux")]
#[test]
fn a_low_open_file_limit_is_raised_at_start() {
    let home = tempfile::tempdir().unwrap();
    // `sh` lowers the soft limit, then execs lobstah with the test's environment.
    let mut wrapper = Command::new("sh");
    wrapper.args([
        "-c",
        r#"ulimit -Sn 512 && exec "$0" "$@""#,
        env!("CARGO_BIN_EXE_lobstah"),
    ]);
    for (key, value) in lobstah(home.path()).get_envs() {
        match value {
            Some(value) => wrapper.env(key, value),
            None => wrapper.env_remove(key),
        };
    }
    let node = Headless::start_as(wrapper, home.path(), "0");

    let limits = std::fs::read_to_string(format!("/proc/{}/limits", node.child.id())).unwrap();
    let open_files: Vec<u64> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files")
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let (soft, hard) = (open_files[0], open_files[1]);
    // Three servers of 1,024 connections, each counted with an outgoing one, plus 256.
    let needed = 256 + 3 * 2 * 1024;
    assert_eq!(soft, needed.min(hard), "{limits}");
}
