//! Cross-language agreement: tests/py/lobstah_ref.py is an independent implementation of
//! canonical JSON (RFC 8785) and Ed25519 signing in Python. Both must produce the same
//! canonical bytes and the same signatures, accept each other's signed objects, and
//! refuse the same tampered ones.
//!
//! Needs Python 3 with the `cryptography` package (`pip install cryptography`); uses
//! `python3` from PATH, or the interpreter named by `LOBSTAH_PYTHON`. Missing either is a
//! test failure, not a skip.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use lobstah::core::protocol::{
    Announcement, Identity, PublicKey, Receipt, SignedAnnouncement, SignedReceipt, Tier,
    canonical_json, unannounce_message,
};
use serde_json::{Map, Value, json};

const MAX_SAFE: u64 = (1 << 53) - 1;
const TRICKY_MODEL: &str = "llama\"3\"\\ ünï 🦞\n\u{7}";

const INSTALL_HINT: &str = "the cross-language test needs Python 3 (python3 on PATH, or \
    LOBSTAH_PYTHON=/path/to/python) with the `cryptography` package; install it with: \
    pip install cryptography";

fn python() -> String {
    std::env::var("LOBSTAH_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/lobstah_ref.py")
}

/// Runs the script's own known-answer tests once; fails loudly when Python or the
/// `cryptography` package is missing.
fn preflight() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let py = python();
        let out = match Command::new(&py).arg(script()).arg("--selftest").output() {
            Ok(out) => out,
            Err(e) => panic!("cannot run `{py}`: {e}.\n{INSTALL_HINT}"),
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => {}
            Some(3) => panic!("{stderr}\n{INSTALL_HINT}"),
            _ => panic!(
                "`{py} {} --selftest` failed ({}):\n{stderr}\n{}",
                script().display(),
                out.status,
                String::from_utf8_lossy(&out.stdout)
            ),
        }
    });
}

/// Sends requests to a fresh Python process and returns its answers in order. Any
/// per-request error fails the test, naming the request.
fn ask(requests: Vec<Value>) -> Vec<Value> {
    preflight();
    let mut input = String::new();
    for (id, mut req) in requests.iter().cloned().enumerate() {
        req["id"] = json!(id);
        input.push_str(&req.to_string());
        input.push('\n');
    }
    let mut child = Command::new(python())
        .arg(script())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}.\n{INSTALL_HINT}", python()));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "lobstah_ref.py failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let answers: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(answers.len(), requests.len(), "one answer per request");
    for (id, (answer, req)) in answers.iter().zip(&requests).enumerate() {
        assert_eq!(answer["id"], json!(id));
        assert!(
            answer.get("error").is_none(),
            "Python failed on {req}: {}",
            answer["error"]
        );
    }
    answers
}

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn char(&mut self) -> char {
        const SPECIAL: &[char] = &[
            '"',
            '\\',
            '/',
            '\u{7f}',
            '\u{80}',
            '\u{2028}',
            '\u{2029}',
            '\u{feff}',
            'é',
            'ö',
            '€',
            '\u{fb33}',
            '\u{e000}',
            '\u{ffff}',
            '🦞',
            '😀',
            '\u{10000}',
            '\u{10ffff}',
        ];
        match self.below(6) {
            0 => char::from_u32(self.below(0x20) as u32).unwrap(),
            1 => SPECIAL[self.below(SPECIAL.len() as u64) as usize],
            2 => loop {
                if let Some(c) = char::from_u32(self.below(0x11_0000) as u32) {
                    break c;
                }
            },
            _ => char::from_u32(0x20 + self.below(0x5f) as u32).unwrap(),
        }
    }

    fn string(&mut self, max: u64) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| self.char()).collect()
    }

    fn int(&mut self) -> u64 {
        match self.below(4) {
            0 => MAX_SAFE - self.below(1000),
            1 => self.below(10),
            _ => self.below(MAX_SAFE),
        }
    }

    fn value(&mut self, depth: u32) -> Value {
        match if depth == 0 {
            self.below(4)
        } else {
            self.below(6)
        } {
            0 => Value::Null,
            1 => json!(self.int()),
            2 => Value::String(self.string(10)),
            3 => json!(self.below(2) == 0),
            4 => Value::Array((0..self.below(4)).map(|_| self.value(depth - 1)).collect()),
            _ => Value::Object(
                (0..self.below(4))
                    .map(|_| (self.string(6), self.value(depth - 1)))
                    .collect(),
            ),
        }
    }
}

fn seed(i: u8) -> [u8; 32] {
    [i.wrapping_mul(37).wrapping_add(5); 32]
}

fn receipt(worker: &Identity, model: &str, i: u64, rng: &mut Rng) -> Receipt {
    let started_at = rng.int();
    Receipt {
        version: 1,
        job_id: format!("job-{i}"),
        nonce: format!("{:032x}", 0xc0ffee_u128 * (i as u128 + 1)),
        requester_pubkey: Identity::from_seed([200; 32]).public(),
        worker_pubkey: worker.public(),
        model: model.into(),
        input_tokens: rng.int(),
        output_tokens: rng.int(),
        started_at,
        completed_at: started_at + rng.below(MAX_SAFE - started_at + 1),
    }
}

fn as_object<T: serde::Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v).unwrap() {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Receipt objects to sign, with the seed of their worker: the documented tricky one,
/// plain ones, random ones with hostile strings and unknown fields.
fn receipt_bodies() -> Vec<([u8; 32], Map<String, Value>)> {
    let mut rng = Rng(7);
    let mut out = Vec::new();
    let w = Identity::from_seed(seed(1));
    out.push((seed(1), as_object(&receipt(&w, "llama3.1:8b", 0, &mut rng))));
    let mut tricky = as_object(&receipt(&w, TRICKY_MODEL, 1, &mut rng));
    tricky.insert("x_future".into(), json!({"a": [1, "é"]}));
    out.push((seed(1), tricky));
    for i in 2..40u64 {
        let s = seed(i as u8);
        let w = Identity::from_seed(s);
        let model = rng.string(24);
        let mut body = as_object(&receipt(&w, &model, i, &mut rng));
        body.insert("jobId".into(), json!(format!("{}-{i}", rng.string(8))));
        for _ in 0..rng.below(3) {
            body.insert(format!("x_{}", rng.string(5)), rng.value(3));
        }
        out.push((s, body));
    }
    out
}

fn announcement_bodies() -> Vec<([u8; 32], Map<String, Value>)> {
    let mut rng = Rng(11);
    let mut out = Vec::new();
    for i in 0..20u8 {
        let s = seed(100 + i);
        let id = Identity::from_seed(s);
        let (label, models) = if i == 0 {
            (
                Some(TRICKY_MODEL.to_string()),
                vec![TRICKY_MODEL.to_string()],
            )
        } else {
            (
                (rng.below(2) == 0).then(|| rng.string(12)),
                (0..rng.below(4)).map(|_| rng.string(12)).collect(),
            )
        };
        let mut body = as_object(&Announcement {
            version: 1,
            pubkey: id.public(),
            url: format!("http://127.0.0.1:{}", 17474 + i as u16),
            label,
            models,
            tier: [Tier::Interactive, Tier::Batch, Tier::BestEffort][i as usize % 3],
            ttl_seconds: rng.int(),
            announced_at: rng.int(),
            link: None,
        });
        if i % 2 == 0 {
            body.insert("x_future".into(), json!({"a": [1, "é"]}));
        }
        if i % 3 == 0 {
            body.insert(format!("x_{}", rng.string(5)), rng.value(3));
        }
        out.push((s, body));
    }
    out
}

fn signed_text(kind: &str, body: &Map<String, Value>, signature_hex: &str) -> String {
    json!({kind: body, "signature": signature_hex}).to_string()
}

/// Tampered versions of a signed object's JSON text, each still valid JSON.
fn tampered(kind: &str, text: &str) -> Vec<(String, String)> {
    let v: Value = serde_json::from_str(text).unwrap();
    let body = v[kind].as_object().unwrap().clone();
    let sig = v["signature"].as_str().unwrap().to_string();
    let mut out = Vec::new();
    let mut with = |what: &str, f: &dyn Fn(&mut Map<String, Value>)| {
        let mut b = body.clone();
        f(&mut b);
        out.push((what.to_string(), signed_text(kind, &b, &sig)));
    };
    let text_field = if kind == "receipt" { "model" } else { "url" };
    let int_field = if kind == "receipt" {
        "inputTokens"
    } else {
        "ttlSeconds"
    };
    let key_field = if kind == "receipt" {
        "workerPubkey"
    } else {
        "pubkey"
    };
    with("text field", &|b| {
        let s = b[text_field].as_str().unwrap().to_string();
        b.insert(text_field.into(), json!(format!("{s}x")));
    });
    with("integer field", &|b| {
        let n = b[int_field].as_u64().unwrap();
        b.insert(int_field.into(), json!(if n == 0 { 1 } else { n - 1 }));
    });
    with("signer key", &|b| {
        b.insert(
            key_field.into(),
            json!(Identity::from_seed([250; 32]).public().to_string()),
        );
    });
    with("added unknown field", &|b| {
        b.insert("x_added".into(), json!([1, "é"]));
    });
    if body.contains_key("x_future") {
        with("removed unknown field", &|b| {
            b.shift_remove("x_future");
        });
        with("nested unknown value", &|b| {
            b.insert("x_future".into(), json!({"a": [1, "e"]}));
        });
    }
    let mut sig_bytes = hex::decode(&sig).unwrap();
    sig_bytes[17] ^= 0x04;
    out.push((
        "signature bit".into(),
        signed_text(kind, &body, &hex::encode(sig_bytes)),
    ));
    out
}

fn rust_accepts(kind: &str, text: &str) -> bool {
    match kind {
        "receipt" => SignedReceipt::from_json(text.as_bytes())
            .map(|s| s.verify_signature().is_ok())
            .unwrap_or(false),
        _ => SignedAnnouncement::from_json(text.as_bytes())
            .map(|s| s.verify_signature().is_ok())
            .unwrap_or(false),
    }
}

/// Signs with the Rust library and returns the signed object's JSON text.
fn rust_sign(kind: &str, seed: [u8; 32], body: &Map<String, Value>) -> String {
    let id = Identity::from_seed(seed);
    match kind {
        "receipt" => SignedReceipt::sign_body(body.clone(), &id)
            .unwrap()
            .to_json(),
        _ => {
            // The typed announcement signer drops unknown fields, so sign the object as
            // given, then check the library parses and verifies it.
            let sig = id.sign(&canonical_json(&Value::Object(body.clone())).unwrap());
            let text = signed_text(kind, body, &sig.to_hex());
            let typed: Announcement = serde_json::from_value(Value::Object(body.clone())).unwrap();
            let known_only = SignedAnnouncement::sign(typed, &id).unwrap();
            known_only.verify_signature().unwrap();
            text
        }
    }
}

fn all_bodies() -> Vec<(&'static str, [u8; 32], Map<String, Value>)> {
    receipt_bodies()
        .into_iter()
        .map(|(s, b)| ("receipt", s, b))
        .chain(
            announcement_bodies()
                .into_iter()
                .map(|(s, b)| ("announcement", s, b)),
        )
        .collect()
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[test]
fn both_sides_pass_the_rfc_known_answers() {
    preflight();
    // RFC 8032 section 7.1, TEST 1.
    let seed: [u8; 32] =
        hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap()
            .try_into()
            .unwrap();
    let id = Identity::from_seed(seed);
    assert_eq!(
        id.public().to_string(),
        "lob1d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    );
    assert_eq!(
        id.sign(b"").to_hex(),
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bac\
         c61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    );
    // RFC 8785 section 3.2.2.
    let sample: Value = serde_json::from_str(
        r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
            "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
            "literals": [null, true, false]}"#,
    )
    .unwrap();
    assert_eq!(
        String::from_utf8(canonical_json(&sample).unwrap()).unwrap(),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

#[test]
fn canonical_bytes_are_identical() {
    let mut values: Vec<Value> = vec![
        json!({}),
        json!([]),
        json!(""),
        json!({"": [], "a": {}, "b": [[]]}),
        // UTF-16 order differs from code point order: U+1F600 (D83D DE00) sorts before
        // U+E000 and U+FB33.
        json!({"\u{e000}": 1, "😀": 2, "\u{fb33}": 3, "\u{80}": 4, "ö": 5, "€": 6, "\r": 7, "1": 8}),
        json!({"s": (0u32..0x20).chain([0x7f, 0x2028, 0x2029])
            .filter_map(char::from_u32).collect::<String>()}),
        json!({"model": TRICKY_MODEL, "x_future": {"a": [1, "é"]}}),
        json!([
            0,
            1,
            -1,
            MAX_SAFE,
            MAX_SAFE + 1,
            1u64 << 60,
            u64::MAX,
            i64::MIN
        ]),
        json!([
            0.1,
            1e21,
            1e20,
            1e-6,
            1e-7,
            123.456,
            5e-324,
            1.7976931348623157e308,
            -1.5,
            -0.0
        ]),
        serde_json::from_str(
            r#"{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001]}"#,
        )
        .unwrap(),
    ];
    let mut rng = Rng(3);
    for _ in 0..150 {
        values.push(rng.value(4));
        values.push(json!({ rng.string(6): rng.string(20), rng.string(6): rng.value(2) }));
    }
    for (_, _, body) in all_bodies() {
        values.push(Value::Object(body));
    }
    let answers = ask(values
        .iter()
        .map(|v| json!({"op": "canonical", "value": v}))
        .collect());
    for (v, answer) in values.iter().zip(answers) {
        let rust = canonical_json(v).unwrap();
        let py = hex::decode(answer["canonical"].as_str().unwrap()).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&rust),
            String::from_utf8_lossy(&py),
            "canonical forms differ for {v}"
        );
        assert_eq!(rust, py);
    }
}

#[test]
fn keys_and_signatures_are_identical() {
    // Ed25519 is deterministic: the same seed and bytes give the same signature.
    let bodies = all_bodies();
    let mut requests = Vec::new();
    for (_, s, body) in &bodies {
        requests.push(json!({"op": "pubkey", "seed": hex::encode(s)}));
        requests.push(json!({"op": "sign", "seed": hex::encode(s), "value": body}));
    }
    let unannounce_id = Identity::from_seed(seed(9));
    let unannounce = unannounce_message(&unannounce_id.public(), 1_700_000_000_123);
    requests.push(json!({"op": "sign_text", "seed": hex::encode(seed(9)), "text": unannounce}));
    let answers = ask(requests);

    for (i, (_, s, body)) in bodies.iter().enumerate() {
        let id = Identity::from_seed(*s);
        assert_eq!(answers[2 * i]["pubkey"], json!(id.public().to_string()));
        let canonical = canonical_json(&Value::Object(body.clone())).unwrap();
        let sign = &answers[2 * i + 1];
        assert_eq!(sign["canonical"], json!(hex::encode(&canonical)));
        assert_eq!(sign["signature"], json!(id.sign(&canonical).to_hex()));
    }
    assert_eq!(
        answers.last().unwrap()["signature"],
        json!(unannounce_id.sign(unannounce.as_bytes()).to_hex())
    );
}

#[test]
fn rust_signed_objects_verify_in_python_and_tampering_fails_in_both() {
    let mut cases = Vec::new(); // (kind, text, should verify)
    for (kind, s, body) in all_bodies() {
        let text = rust_sign(kind, s, &body);
        assert!(
            rust_accepts(kind, &text),
            "Rust refuses its own {kind}: {text}"
        );
        cases.push((kind, "as signed".to_string(), text.clone(), true));
        for (what, bad) in tampered(kind, &text) {
            cases.push((kind, what, bad, false));
        }
    }
    let answers = ask(cases
        .iter()
        .map(|(kind, _, text, _)| json!({"op": "verify_signed", "kind": kind, "signed": text}))
        .collect());
    for ((kind, what, text, want), answer) in cases.iter().zip(answers) {
        assert_eq!(
            answer["valid"],
            json!(want),
            "Python on {kind} ({what}): {text}"
        );
        assert_eq!(
            rust_accepts(kind, text),
            *want,
            "Rust on {kind} ({what}): {text}"
        );
    }
}

#[test]
fn python_signed_objects_verify_in_rust_and_tampering_fails_in_both() {
    let bodies = all_bodies();
    let answers = ask(bodies
        .iter()
        .enumerate()
        .map(|(i, (kind, s, body))| {
            json!({"op": "sign_signed", "kind": kind, "seed": hex::encode(s),
                       "body": body, "pretty": i % 2 == 0})
        })
        .collect());
    let mut checks = Vec::new();
    for ((kind, s, body), answer) in bodies.iter().zip(answers) {
        let text = answer["signed"].as_str().unwrap().to_string();
        // Python writes its own layout (signature first, maybe indented, non-ASCII maybe
        // escaped as surrogate pairs); Rust must verify the object, not the text.
        match *kind {
            "receipt" => {
                let parsed = SignedReceipt::from_json(text.as_bytes()).unwrap();
                parsed.verify_signature().unwrap();
                assert_eq!(parsed.body(), body);
                let ours = SignedReceipt::sign_body(body.clone(), &Identity::from_seed(*s));
                assert_eq!(parsed.signature(), ours.unwrap().signature());
                // Stored and re-sent by Rust, it still verifies in Python.
                checks.push((
                    *kind,
                    "re-serialized by Rust".into(),
                    parsed.to_json(),
                    true,
                ));
            }
            _ => {
                let parsed = SignedAnnouncement::from_json(text.as_bytes()).unwrap();
                parsed.verify_signature().unwrap();
                assert_eq!(parsed.body(), body);
                checks.push((
                    *kind,
                    "re-serialized by Rust".into(),
                    parsed.to_value().to_string(),
                    true,
                ));
            }
        }
        for (what, bad) in tampered(kind, &text) {
            assert!(
                !rust_accepts(kind, &bad),
                "Rust accepts tampered {kind} ({what}): {bad}"
            );
            checks.push((*kind, what, bad, false));
        }
    }
    let answers = ask(checks
        .iter()
        .map(|(kind, _, text, _)| json!({"op": "verify_signed", "kind": kind, "signed": text}))
        .collect());
    for ((kind, what, text, want), answer) in checks.iter().zip(answers) {
        assert_eq!(
            answer["valid"],
            json!(want),
            "Python on {kind} ({what}): {text}"
        );
    }
}

#[test]
fn the_documented_tricky_receipt_agrees_byte_for_byte() {
    let worker = Identity::from_seed(seed(1));
    let mut body = as_object(&Receipt {
        version: 1,
        job_id: "6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
        nonce: "00112233445566778899aabbccddeeff".into(),
        requester_pubkey: PublicKey::parse(
            "lob1d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        )
        .unwrap(),
        worker_pubkey: worker.public(),
        model: TRICKY_MODEL.into(),
        input_tokens: 12,
        output_tokens: 34,
        started_at: 1_700_000_000_000,
        completed_at: 1_700_000_001_000,
    });
    body.insert("x_future".into(), json!({"a": [1, "é"]}));
    let canonical =
        String::from_utf8(canonical_json(&Value::Object(body.clone())).unwrap()).unwrap();
    let expected = format!(
        concat!(
            r#"{{"completedAt":1700000001000,"inputTokens":12,"jobId":"6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060","#,
            r#""model":"llama\"3\"\\ ünï 🦞\n\u0007","nonce":"00112233445566778899aabbccddeeff","#,
            r#""outputTokens":34,"requesterPubkey":"lob1d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a","#,
            r#""startedAt":1700000000000,"version":1,"workerPubkey":"{}","x_future":{{"a":[1,"é"]}}}}"#
        ),
        worker.public()
    );
    assert_eq!(canonical, expected);
    let answers = ask(vec![
        json!({"op": "canonical", "value": body}),
        json!({"op": "sign_signed", "kind": "receipt", "seed": hex::encode(seed(1)), "body": body}),
    ]);
    assert_eq!(
        answers[0]["canonical"],
        json!(hex::encode(expected.as_bytes()))
    );
    let from_python = answers[1]["signed"].as_str().unwrap();
    let parsed = SignedReceipt::from_json(from_python.as_bytes()).unwrap();
    parsed.verify_signature().unwrap();
    assert_eq!(parsed.receipt().model, TRICKY_MODEL);
}
