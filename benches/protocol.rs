//! Protocol throughput: canonicalize + sign, verify (the router's per-receipt cost; issue
//! target ≥ 15,000 verifications/s on one core), and the pieces they are made of.
//!
//! Every benchmark runs twice: wall clock (groups `receipt`, …) and the thread's CPU time
//! (groups `receipt_cpu`, …), which stays meaningful when the machine is shared.
//!
//! cargo bench --bench protocol

// A test states what it expects, and its helpers are `pub` for the files that share them.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::hint::black_box;
use std::time::Duration;

use cpu_time::CpuTime;
use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use lobstah::core::protocol::{
    Announcement, Confirmation, ConfirmedReceipt, Identity, Receipt, RequestAuth, RequestTarget,
    SignedAnnouncement, SignedConfirmation, SignedReceipt, Tier, canonical_json,
};
use serde_json::{Value, json};

fn receipt(worker: &Identity) -> Receipt {
    Receipt {
        version: 1,
        job_id: "6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        requester_pubkey: Identity::from_seed([2; 32]).public(),
        worker_pubkey: worker.public(),
        model: "llama3.1:8b".into(),
        input_tokens: 1_234,
        output_tokens: 567,
        started_at: 1_700_000_000_000,
        completed_at: 1_700_000_012_345,
    }
}

fn receipts<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let worker = Identity::from_seed([1; 32]);
    let r = receipt(&worker);
    let signed = SignedReceipt::sign(r.clone(), &worker).unwrap();
    let text = signed.to_json();
    let header = signed.to_base64();

    let mut g = c.benchmark_group(format!("receipt{suffix}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("canonicalize_and_sign", |b| {
        b.iter(|| SignedReceipt::sign(black_box(r.clone()), &worker).unwrap())
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| black_box(&signed).verify_signature().unwrap())
    });
    g.bench_function("parse_header_and_verify", |b| {
        b.iter(|| {
            let s = SignedReceipt::from_base64(black_box(&header)).unwrap();
            s.verify_signature().unwrap();
            s
        })
    });
    g.bench_function("parse_json", |b| {
        b.iter(|| SignedReceipt::from_json(black_box(text.as_bytes())).unwrap())
    });
    g.bench_function("to_json", |b| b.iter(|| black_box(&signed).to_json()));
    let body = signed.to_value()["receipt"].clone();
    g.bench_function("canonical_json", |b| {
        b.iter(|| canonical_json(black_box(&body)).unwrap())
    });
    g.finish();

    // The raw curve operations, to tell protocol overhead from Ed25519 cost.
    let key = SigningKey::from_bytes(&[1; 32]);
    let message = canonical_json(&body).unwrap();
    let sig = key.sign(&message);
    let vk = key.verifying_key();
    let mut g = c.benchmark_group(format!("ed25519_dalek{suffix}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign", |b| b.iter(|| key.sign(black_box(&message))));
    g.bench_function("verify_strict", |b| {
        b.iter(|| vk.verify_strict(black_box(&message), &sig).unwrap())
    });
    // verify_signature decompresses the public key on every call.
    let pk_bytes = vk.to_bytes();
    g.bench_function("verifying_key_from_bytes", |b| {
        b.iter(|| VerifyingKey::from_bytes(black_box(&pk_bytes)).unwrap())
    });
    g.finish();
    let mut g = c.benchmark_group(format!("serde_json{suffix}"));
    g.bench_function("clone_receipt_body", |b| {
        b.iter(|| black_box(signed.body()).clone())
    });
}

fn announcements<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let id = Identity::from_seed([3; 32]);
    let a = Announcement {
        version: 1,
        pubkey: id.public(),
        url: "http://127.0.0.1:17474".into(),
        label: Some("my-mac".into()),
        models: vec!["llama3.1:8b".into(), "qwen2.5:14b".into()],
        tier: Tier::Interactive,
        ttl_seconds: 300,
        announced_at: 1_700_000_000_000,
        link: None,
    };
    let signed = SignedAnnouncement::sign(a.clone(), &id).unwrap();
    let mut g = c.benchmark_group(format!("announcement{suffix}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("canonicalize_and_sign", |b| {
        b.iter(|| SignedAnnouncement::sign(black_box(a.clone()), &id).unwrap())
    });
    g.bench_function("verify_signature", |b| {
        b.iter(|| black_box(&signed).verify_signature().unwrap())
    });
    g.finish();

    // A larger object: canonicalization cost grows with it, the curve cost does not.
    let Value::Object(mut big) = signed.to_value()["announcement"].clone() else {
        unreachable!()
    };
    big.insert(
        "x_models_detail".into(),
        json!(
            (0..50)
                .map(|i| json!({"name": format!("model-{i}"), "ctx": 8192, "q": "Q4_K_M"}))
                .collect::<Vec<_>>()
        ),
    );
    let big = Value::Object(big);
    let mut g = c.benchmark_group(format!("canonical_json{suffix}"));
    g.bench_function("announcement_with_50_extra_models", |b| {
        b.iter(|| canonical_json(black_box(&big)).unwrap())
    });
    g.finish();
}

/// What signed requests and confirmations add per request: the router signs, the
/// worker verifies; a confirmation of 64 receipts is signed and verified once.
fn requests<M: Measurement>(c: &mut Criterion<M>, suffix: &str) {
    let router = Identity::from_seed([5; 32]);
    let worker = Identity::from_seed([6; 32]).public();
    let body = serde_json::to_vec(&json!({
        "model": "llama3.1:8b",
        "messages": [{"role": "user", "content": "x".repeat(1_000)}],
    }))
    .unwrap();
    let target = RequestTarget {
        method: "POST",
        path: "/v1/chat/completions",
        body: &body,
        worker: &worker,
    };
    let auth = RequestAuth::sign(&router, target, 1_700_000_000_000);
    let mut g = c.benchmark_group(format!("signed_request{suffix}"));
    g.throughput(Throughput::Elements(1));
    g.bench_function("sign_1kb_body", |b| {
        b.iter(|| RequestAuth::sign(&router, black_box(target), 1_700_000_000_000))
    });
    g.bench_function("verify_1kb_body", |b| {
        b.iter(|| black_box(&auth).verify(target).unwrap())
    });
    g.finish();

    let receipts: Vec<ConfirmedReceipt> = (0..64)
        .map(|i| ConfirmedReceipt {
            nonce: format!("{i:032x}"),
            signature: "ab".repeat(64),
        })
        .collect();
    let confirmation = Confirmation {
        version: 1,
        requester_pubkey: router.public(),
        worker_pubkey: worker,
        confirmed_at: 1_700_000_000_000,
        receipts,
    };
    let signed = SignedConfirmation::sign(confirmation.clone(), &router).unwrap();
    let mut g = c.benchmark_group(format!("confirmation_of_64{suffix}"));
    g.throughput(Throughput::Elements(64));
    g.bench_function("sign", |b| {
        b.iter(|| SignedConfirmation::sign(black_box(confirmation.clone()), &router).unwrap())
    });
    g.bench_function("verify", |b| {
        b.iter(|| black_box(&signed).verify_signature().unwrap())
    });
    g.finish();
}

fn wall(c: &mut Criterion) {
    receipts(c, "");
    announcements(c, "");
    requests(c, "");
}

fn cpu(c: &mut Criterion<CpuTime>) {
    if !CpuTime::available() {
        eprintln!("per-thread CPU time is not available here; CPU-time groups skipped");
        return;
    }
    receipts(c, "_cpu");
    announcements(c, "_cpu");
    requests(c, "_cpu");
}

/// Short runs: these are µs-scale; both clocks together take about two minutes.
fn config<M: Measurement>(c: Criterion<M>) -> Criterion<M> {
    c.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = wall_clock;
    config = config(Criterion::default());
    targets = wall
}
criterion_group! {
    name = cpu_clock;
    config = config(Criterion::default().with_measurement(CpuTime));
    targets = cpu
}
criterion_main!(wall_clock, cpu_clock);
