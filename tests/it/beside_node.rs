//! Every command beside a running node, through real processes. With `worker start`,
//! `router start` and `--headless` each holding its home (and its database), `balance`,
//! `balance --all`, `receipts`, `peers add|remove|list`, `ledger verify|export` and
//! `advertise` answer through the node's control API (and `jobs list` and `models`
//! through the router that `node.json` names); the ledger's answers are the same
//! byte for byte once the node has stopped and the command reads the file itself. The
//! advertising switch survives a restart.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;
use crate::support::bin;
use crate::support::headless::Headless;
use crate::support::processes::{Pair, client, free_port, id_of};

const DEADLINE: Duration = Duration::from_secs(20);

/// Commands whose output must not depend on whether a node holds the database.
const SAME_EITHER_WAY: &[&[&str]] = &[
    &["balance"],
    &["balance", "--json"],
    &["balance", "--all"],
    &["balance", "--all", "--json"],
    &["ledger", "verify"],
    &["ledger", "verify", "--json"],
    &["ledger", "export"],
];

fn ok(home: &Path, args: &[&str]) -> String {
    let out = bin::lobstah(home).args(args).output().expect("run lobstah");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "lobstah {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn json(home: &Path, args: &[&str]) -> Value {
    let text = ok(home, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("lobstah {args:?}: {e}: {text}"))
}

/// Until every balance in `home` is settled (nothing pending on either side), so the
/// outputs compared before and after the stop cannot differ by a late confirmation.
fn settled(home: &Path, receipts: u64) {
    let until = Instant::now() + DEADLINE;
    loop {
        let rows = json(home, &["balance", "--all", "--json"]);
        let rows = rows.as_array().expect("an array of balances");
        let counted: u64 = rows.iter().filter_map(|b| b["receipts"].as_u64()).sum();
        let pending = rows.iter().any(|b| {
            b["pendingEarned"].as_u64() != Some(0) || b["pendingSpent"].as_u64() != Some(0)
        });
        if counted >= receipts && !pending {
            return;
        }
        assert!(
            Instant::now() < until,
            "never settled in {home:?}: {rows:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the ledger commands print beside the running node.
fn ledger_answers(home: &Path) -> Vec<(Vec<&'static str>, String)> {
    SAME_EITHER_WAY
        .iter()
        .map(|args| (args.to_vec(), ok(home, args)))
        .collect()
}

fn assert_same_offline(home: &Path, beside: &[(Vec<&'static str>, String)]) {
    for (args, before) in beside {
        assert_eq!(
            &ok(home, args),
            before,
            "lobstah {args:?} answers differently once the node has stopped"
        );
    }
}

/// `peers add`, `list` and `remove` beside whatever runs on `home`.
fn peers_round_trip(home: &Path, stranger: &str) {
    let added = ok(
        home,
        &["peers", "add", stranger, "http://127.0.0.1:9", "spare"],
    );
    assert!(added.contains("added"), "{added}");
    let listed = json(home, &["peers", "list", "--json"]);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pubkey"] == stranger && p["label"] == "spare"),
        "{listed}"
    );
    let removed = ok(home, &["peers", "remove", stranger]);
    assert!(removed.contains("removed"), "{removed}");
    let listed = json(home, &["peers", "list", "--json"]);
    assert!(
        !listed.to_string().contains(stranger),
        "still listed: {listed}"
    );
}

async fn chat(url: &str, n: usize) {
    support::install_crypto();
    let http = client();
    for _ in 0..n {
        let response = http
            .post(url)
            .json(&support::chat_body("synthetic", false))
            .send()
            .await
            .expect("the router answers");
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_beside_worker_start_and_router_start() {
    let (worker_home, router_home, spare) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let stranger = id_of(spare.path());
    let pair = Pair::new(worker_home.path(), router_home.path());
    let worker = pair.start_worker();
    let router = pair.start_router();
    chat(&pair.chat_url, 3).await;
    settled(worker_home.path(), 3);
    settled(router_home.path(), 3);

    let mut beside = Vec::new();
    for home in [worker_home.path(), router_home.path()] {
        let export = ok(home, &["ledger", "export"]);
        assert_eq!(export.lines().count(), 3, "{export}");
        let report = json(home, &["ledger", "verify", "--json"]);
        assert_eq!(report["receipts_checked"], 3, "{report}");
        let receipts = json(home, &["receipts", "--json"]);
        assert_eq!(receipts.as_array().map(Vec::len), Some(3), "{receipts}");
        peers_round_trip(home, &stranger);
        beside.push(ledger_answers(home));
    }
    let jobs = ok(router_home.path(), &["jobs", "list"]);
    assert!(jobs.contains("no jobs"), "{jobs}");
    let models = json(router_home.path(), &["models", "--json"]);
    assert_eq!(models["data"][0]["id"], "synthetic", "{models}");
    assert_eq!(models["data"][0]["peers"], 1, "{models}");
    let table = ok(router_home.path(), &["models"]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["synthetic", "1", "chat,", "embeddings"]),
        "{table}"
    );
    // Each says which server it runs.
    let status = json(worker_home.path(), &["status", "--json"]);
    assert!(status["routerUrl"].is_null(), "{status}");
    assert_eq!(status["workerUrl"], pair.worker_url.as_str(), "{status}");
    let status = json(router_home.path(), &["status", "--json"]);
    assert!(status["workerUrl"].is_null(), "{status}");
    assert!(status["routerUrl"].is_string(), "{status}");

    router.sigterm();
    worker.sigterm();
    assert_same_offline(worker_home.path(), &beside[0]);
    assert_same_offline(router_home.path(), &beside[1]);
}

/// Stops `node` with SIGTERM and checks it exits 0 (having removed its `node.json`).
fn stop(node: Headless) {
    node.terminate();
    assert_eq!(node.wait().0, Some(0), "exits 0 on SIGTERM");
}

fn advertising(home: &Path) -> bool {
    let status = json(home, &["status", "--json"]);
    status["advertising"]["on"]
        .as_bool()
        .unwrap_or_else(|| panic!("no advertising in {status}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_answers_beside_headless_and_advertising_survives_a_restart() {
    let (home, spare) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let home = home.path();
    let stranger = id_of(spare.path());
    let worker_port = free_port();
    let node = Headless::start_on(home, "0", worker_port);
    let me = ok(home, &["id"]).trim().to_string();
    let worker_url = format!("http://127.0.0.1:{worker_port}");
    ok(home, &["peers", "add", &me, &worker_url, "me"]);
    let status = json(home, &["status", "--json"]);
    let router = status["routerUrl"]
        .as_str()
        .expect("a router URL")
        .to_string();
    chat(&format!("{router}/v1/chat/completions"), 2).await;
    settled(home, 2);

    let export = ok(home, &["ledger", "export"]);
    assert_eq!(export.lines().count(), 2, "{export}");
    peers_round_trip(home, &stranger);
    let jobs = ok(home, &["jobs", "list"]);
    assert!(jobs.contains("no jobs"), "{jobs}");
    let beside = ledger_answers(home);

    // Off by default; switched on, it stays on across a restart, and off stays off.
    assert!(!advertising(home));
    let switched = ok(home, &["advertise", "on"]);
    assert!(switched.contains("advertising on"), "{switched}");
    assert!(advertising(home));
    stop(node);
    assert_same_offline(home, &beside);

    let node = Headless::start_on(home, "0", worker_port);
    assert!(
        advertising(home),
        "advertising is off again after a restart"
    );
    ok(home, &["advertise", "off"]);
    stop(node);
    let node = Headless::start_on(home, "0", worker_port);
    assert!(
        !advertising(home),
        "advertising is on again after a restart"
    );
    stop(node);
}
