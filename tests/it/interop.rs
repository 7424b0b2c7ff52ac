//! Interop with the existing Lobstah network's wire format, checked against an
//! independent implementation: a Python worker (tests/py/interop_worker.py, written from
//! DESIGN.md) serves the Rust router and its receipts are ledgered; receipts signed by the
//! Rust worker verify in the independent Python verifier (tests/py/lobstah_ref.py).

use crate::support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;

use base64::Engine as _;
use lobstah::core::clock::SystemClock;
use lobstah::core::engine::{SyntheticConfig, SyntheticEngine};
use lobstah::core::protocol::{Identity, PublicKey};
use serde_json::{Value, json};

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_worker_serves_the_rust_router() {
    support::python::require_module("cryptography");
    let seed = "4c0ffee0".repeat(8);
    let mut child = Command::new(support::python::python())
        .arg(support::python::script("interop_worker.py"))
        .args([seed.as_str(), "py-model"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the Python worker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let child = Child(child);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"listening"), "{line:?}");
    let (url, pubkey) = (words[1].to_string(), PublicKey::parse(words[2]).unwrap());
    assert_eq!(
        pubkey,
        Identity::from_seed_hex(&seed).unwrap().public(),
        "same key derivation"
    );

    let me = Identity::from_seed([21; 32]);
    let router = support::start_router(
        me.clone(),
        support::memory_db(),
        &[(pubkey, url)],
        Arc::new(SystemClock),
        |_| {},
    )
    .await;
    let client = support::client();
    for stream in [false, true] {
        let r = client
            .post(format!("{}/v1/chat/completions", router.url))
            .json(&support::chat_body("py-model", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let text = r.text().await.unwrap();
        assert!(
            text.contains("Bonjour") && !text.contains("lobstah-receipt"),
            "{text}"
        );
    }
    support::eventually(
        "both Python receipts ledgered",
        std::time::Duration::from_secs(5),
        || router.ledger.totals().unwrap().receipts == 2,
    )
    .await;
    assert!(
        router.service.recent_rejections().is_empty(),
        "{:?}",
        router.service.recent_rejections()
    );
    let stored = router.ledger.newest(2).unwrap();
    for s in &stored {
        // The field v1 does not define survived, and the signature still verifies.
        assert_eq!(s.receipt.body()["workerSoftware"], "interop-worker.py é");
        s.receipt.verify_signature().unwrap();
    }
    let balance = router.ledger.balance(&me.public()).unwrap();
    assert_eq!(
        balance.spent,
        stored
            .iter()
            .map(|s| s.receipt.receipt().total_tokens())
            .sum::<u64>()
    );
    router.stop().await;
    drop(child);
}

#[tokio::test]
async fn receipts_from_the_rust_worker_verify_in_the_independent_verifier() {
    support::python::require_module("cryptography");
    let engine = Arc::new(SyntheticEngine::new(SyntheticConfig {
        models: vec!["m".into()],
        tokens_per_second: 0.0,
    }));
    let worker = support::start_worker(
        Identity::from_seed([22; 32]),
        engine,
        support::memory_db(),
        Arc::new(SystemClock),
    )
    .await;
    let requester = Identity::from_seed([23; 32]).public();
    let client = support::client();
    let mut signed_texts = Vec::new();
    for stream in [false, true] {
        let r = client
            .post(format!("{}/v1/chat/completions", worker.url))
            .header("x-lobstah-requester", requester.to_string())
            .json(&support::chat_body("m", stream))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let b64 = if stream {
            let text = r.text().await.unwrap();
            let line = text
                .lines()
                .find_map(|l| l.strip_prefix(":lobstah-receipt:"))
                .expect("receipt comment in the stream")
                .to_string();
            assert!(
                text.trim_end().ends_with("data: [DONE]"),
                "[DONE] follows the receipt: {text}"
            );
            line
        } else {
            r.headers()["x-lobstah-receipt"]
                .to_str()
                .unwrap()
                .to_string()
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("standard base64");
        signed_texts.push(String::from_utf8(bytes).unwrap());
    }
    // Ask the independent verifier; a tampered copy must fail there too.
    let mut tampered: Value = serde_json::from_str(&signed_texts[0]).unwrap();
    tampered["receipt"]["outputTokens"] =
        json!(tampered["receipt"]["outputTokens"].as_u64().unwrap() + 1);
    let mut requests = String::new();
    for (i, text) in signed_texts.iter().enumerate() {
        requests.push_str(
            &json!({"id": i, "op": "verify_signed", "kind": "receipt", "signed": text}).to_string(),
        );
        requests.push('\n');
    }
    requests.push_str(
        &json!({"id": 9, "op": "verify_signed", "kind": "receipt", "signed": tampered.to_string()})
            .to_string(),
    );
    requests.push('\n');
    let mut verifier = Command::new(support::python::python())
        .arg(support::python::script("lobstah_ref.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    verifier
        .stdin
        .take()
        .unwrap()
        .write_all(requests.as_bytes())
        .unwrap();
    let out = verifier.wait_with_output().unwrap();
    assert!(out.status.success());
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let valid: Vec<(u64, bool)> = answers
        .iter()
        .map(|a| (a["id"].as_u64().unwrap(), a["valid"].as_bool().unwrap()))
        .collect();
    assert_eq!(valid, vec![(0, true), (1, true), (9, false)]);
    worker.shutdown.cancel();
}
