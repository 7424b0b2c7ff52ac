//! `lobstah bench` as a user runs it: the real binary starts its own worker and router
//! processes, routes requests through them and reports what the ledgers hold. The
//! figures themselves are machine-dependent and checked by nobody here; what must hold
//! anywhere is that every answered request left one receipt on each side, that the
//! processes were measured (CPU and memory above zero), and that the crypto floor and
//! ledger sizes were read.

use serde_json::Value;

use crate::support::bin;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_routes_through_two_processes_and_counts_every_receipt() {
    let home = tempfile::tempdir().unwrap();
    let keep = home.path().join("bench");
    let mut command = bin::lobstah(home.path());
    command
        .args([
            "bench",
            "--requests",
            "2000",
            "--clients",
            "8",
            "--json",
            "--keep",
        ])
        .arg(&keep)
        .env("LOBSTAH_LOG", "warn");
    let out = tokio::task::spawn_blocking(move || command.output().expect("run lobstah"))
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("bench --json prints JSON");
    assert_eq!(report["ledgersAgree"], true);
    let load = &report["load"];
    assert_eq!(load["measured"], 2_000);
    assert_eq!(load["errors"], 0);
    // The 400 warm-up requests (a fifth of a short run) are ledgered too.
    for side in ["worker", "router"] {
        let ledger = &report[side];
        assert_eq!(ledger["receipts"], 2_400, "{side}: {ledger}");
        assert!(
            ledger["allocatedBytes"].as_u64().unwrap() > 2_400 * 100,
            "{side}"
        );
        assert!(
            ledger["fileBytes"].as_u64().unwrap() >= ledger["allocatedBytes"].as_u64().unwrap()
        );
        assert_eq!(ledger["verify"]["ok"], true, "{side}: ledger verify failed");
        let tables = ledger["tables"].as_array().unwrap();
        assert!(tables.iter().any(
            |t| t["name"] == "receipts" || t["name"].as_str().unwrap().starts_with("receipts")
        ));
    }
    assert!(load["workerCpuUs"].as_f64().unwrap() > 0.0);
    assert!(load["routerCpuUs"].as_f64().unwrap() > 0.0);
    let samples = load["samples"].as_array().unwrap();
    assert_eq!(samples.first().unwrap()["requests"], 200);
    assert!(
        samples
            .iter()
            .all(|s| s["workerRssBytes"].as_u64().unwrap() > 1 << 20)
    );
    assert!(report["floorUs"].as_f64().unwrap() > 0.0);
    // The homes were kept where asked, with both ledgers in them.
    assert!(keep.join("worker/lobstah.redb").exists());
    assert!(keep.join("router/lobstah.redb").exists());
}
