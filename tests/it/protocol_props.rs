//! Property tests of the wire protocol: whatever a receipt or announcement holds, signing,
//! writing it as JSON text and parsing it back must verify, and changing anything the
//! signature covers must not.

use lobstah::core::protocol::{
    Announcement, Identity, PublicKey, Receipt, SignedAnnouncement, SignedReceipt, Tier,
    canonical_json, canonical_object,
};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// JavaScript's `Number.MAX_SAFE_INTEGER`: the largest integer the existing (TypeScript)
/// network, and JCS, can carry exactly.
const MAX_SAFE: u64 = (1 << 53) - 1;

/// Debug-build Ed25519 verification costs ~10 ms, so case counts are kept modest; the
/// tamper properties check ~25 changes per case.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    }
}

fn tamper_config() -> ProptestConfig {
    ProptestConfig {
        cases: 40,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Characters that stress JSON escaping and JCS: quotes, backslashes, every control
/// character, non-ASCII, astral-plane emoji, and anything else `char` can be.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        3 => prop::char::range('a', 'z'),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        2 => prop::sample::select(vec![
            '"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}', '\u{feff}', 'é', 'ü', 'ï',
            '🦞', '😀', '\u{e000}', '\u{10ffff}', ':', '.',
        ]),
        1 => prop::char::range('\u{1f300}', '\u{1faff}'),
    ]
}

fn tricky_string(min: usize, max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), min..max).prop_map(String::from_iter)
}

/// Integers across the whole range the protocol can carry, with the edges well covered.
fn protocol_int() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0..=10_000u64,
        3 => 0..=MAX_SAFE,
        1 => Just(0u64),
        1 => Just(MAX_SAFE),
        1 => (MAX_SAFE - 1_000)..=MAX_SAFE,
    ]
}

fn timestamps() -> impl Strategy<Value = (u64, u64)> {
    prop_oneof![
        (protocol_int(), protocol_int()).prop_map(|(a, b)| (a.min(b), a.max(b))),
        protocol_int().prop_map(|t| (t, t)),
        (1_600_000_000_000u64..1_900_000_000_000, 0..600_000u64).prop_map(|(s, d)| (s, s + d)),
    ]
}

#[derive(Debug, Clone)]
struct ReceiptCase {
    worker_seed: [u8; 32],
    requester: [u8; 32],
    job_id: String,
    nonce: [u8; 16],
    model: String,
    input_tokens: u64,
    output_tokens: u64,
    started_at: u64,
    completed_at: u64,
}

impl ReceiptCase {
    fn worker(&self) -> Identity {
        Identity::from_seed(self.worker_seed)
    }

    fn receipt(&self) -> Receipt {
        Receipt {
            version: 1,
            job_id: self.job_id.clone(),
            nonce: hex::encode(self.nonce),
            requester_pubkey: PublicKey::from_bytes(self.requester),
            worker_pubkey: self.worker().public(),
            model: self.model.clone(),
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            started_at: self.started_at,
            completed_at: self.completed_at,
        }
    }
}

prop_compose! {
    fn receipt_case()(
        worker_seed in any::<[u8; 32]>(),
        requester in any::<[u8; 32]>(),
        job_id in tricky_string(1, 40),
        nonce in any::<[u8; 16]>(),
        model in tricky_string(0, 40),
        input_tokens in protocol_int(),
        output_tokens in protocol_int(),
        (started_at, completed_at) in timestamps(),
    ) -> ReceiptCase {
        ReceiptCase {
            worker_seed, requester, job_id, nonce, model,
            input_tokens, output_tokens, started_at, completed_at,
        }
    }
}

/// Unknown fields a newer peer might add: nested objects, arrays, strings that need
/// escaping, small integers, booleans and null.
fn extra_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0..=MAX_SAFE).prop_map(|n| json!(n)),
        tricky_string(0, 12).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((tricky_string(0, 8), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Names for unknown fields: anything except the ones v1 defines.
fn extra_key() -> impl Strategy<Value = String> {
    tricky_string(1, 12).prop_map(|k| format!("x_{k}"))
}

#[derive(Debug, Clone)]
struct AnnouncementCase {
    seed: [u8; 32],
    url: String,
    label: Option<String>,
    models: Vec<String>,
    tier: Tier,
    ttl_seconds: u64,
    announced_at: u64,
}

impl AnnouncementCase {
    fn identity(&self) -> Identity {
        Identity::from_seed(self.seed)
    }

    fn announcement(&self) -> Announcement {
        Announcement {
            version: 1,
            pubkey: self.identity().public(),
            url: self.url.clone(),
            label: self.label.clone(),
            models: self.models.clone(),
            tier: self.tier,
            ttl_seconds: self.ttl_seconds,
            announced_at: self.announced_at,
            link: None,
        }
    }
}

prop_compose! {
    fn announcement_case()(
        seed in any::<[u8; 32]>(),
        url in tricky_string(0, 30),
        label in prop::option::of(tricky_string(0, 20)),
        models in prop::collection::vec(tricky_string(0, 20), 0..4),
        tier in prop::sample::select(vec![Tier::Interactive, Tier::Batch, Tier::BestEffort]),
        ttl_seconds in protocol_int(),
        announced_at in protocol_int(),
    ) -> AnnouncementCase {
        AnnouncementCase { seed, url, label, models, tier, ttl_seconds, announced_at }
    }
}

// ---------------------------------------------------------------------------------------
// Tampering
// ---------------------------------------------------------------------------------------

/// Changes the last hex digit of a fixed-length hex text (nonce, key), so it stays valid.
fn flip_last_hex(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '0' { '1' } else { '0' };
    }
    chars.into_iter().collect()
}

/// A different protocol integer, still in the range the protocol carries.
fn other_int(n: u64) -> u64 {
    if n == 0 { 1 } else { n - 1 }
}

/// A different JSON value whose canonical form differs, changing something nested when
/// the value has structure.
fn mutate_value(v: &Value) -> Value {
    match v {
        Value::Null => json!(0),
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => match n.as_u64() {
            Some(u) => json!(other_int(u)),
            None => json!(0),
        },
        Value::String(s) => Value::String(format!("{s}!")),
        Value::Array(items) => {
            let mut items = items.clone();
            match items.first_mut() {
                Some(first) => *first = mutate_value(first),
                None => items.push(Value::Null),
            }
            Value::Array(items)
        }
        Value::Object(map) => {
            let mut map = map.clone();
            match map.iter_mut().next() {
                Some((_, first)) => *first = mutate_value(first),
                None => {
                    map.insert("added".into(), Value::Null);
                }
            }
            Value::Object(map)
        }
    }
}

/// Every single-field change of a signed object: each field changed in turn (keeping
/// known fields well-formed where possible), each unknown field removed, an unknown
/// field added, a known field dropped.
fn tampered_bodies(body: &Map<String, Value>) -> Vec<(String, Map<String, Value>)> {
    let mut out = Vec::new();
    for (key, value) in body {
        let changed = match (key.as_str(), value) {
            ("nonce" | "requesterPubkey" | "workerPubkey" | "pubkey", Value::String(s)) => {
                Value::String(flip_last_hex(s))
            }
            ("version", _) => json!(2),
            ("tier", Value::String(s)) => {
                json!(if s == "batch" { "interactive" } else { "batch" })
            }
            _ => mutate_value(value),
        };
        let mut m = body.clone();
        m.insert(key.clone(), changed);
        out.push((format!("changed {key}"), m));

        let mut m = body.clone();
        m.shift_remove(key);
        out.push((format!("removed {key}"), m));
    }
    let mut m = body.clone();
    m.insert("x_tampered".into(), json!({"a": [1, "é"]}));
    out.push(("added an unknown field".into(), m));
    out
}

fn signed_text(wrapper: &str, body: &Map<String, Value>, signature_hex: &str) -> String {
    let mut outer = Map::new();
    outer.insert(wrapper.into(), Value::Object(body.clone()));
    outer.insert("signature".into(), Value::String(signature_hex.into()));
    Value::Object(outer).to_string()
}

fn flip_bit_hex(hex_text: &str, bit: usize) -> String {
    let mut bytes = hex::decode(hex_text).unwrap();
    bytes[bit / 8] ^= 1 << (bit % 8);
    hex::encode(bytes)
}

/// The same object written differently: keys in reverse order, pretty-printed. The
/// signature covers the canonical form, so this must still verify.
fn reformatted(wrapper: &str, body: &Map<String, Value>, signature_hex: &str) -> String {
    let reversed: Map<String, Value> = body
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut outer = Map::new();
    outer.insert("signature".into(), Value::String(signature_hex.into()));
    outer.insert(wrapper.into(), Value::Object(reversed));
    serde_json::to_string_pretty(&Value::Object(outer)).unwrap()
}

fn receipt_accepted(text: &str) -> bool {
    match SignedReceipt::from_json(text.as_bytes()) {
        Ok(parsed) => parsed.verify_signature().is_ok(),
        Err(_) => false,
    }
}

fn announcement_accepted(text: &str) -> bool {
    match SignedAnnouncement::from_json(text.as_bytes()) {
        Ok(parsed) => parsed.verify_signature().is_ok(),
        Err(_) => false,
    }
}

/// Signs an announcement object exactly as given (the library only signs typed ones), the
/// way a newer peer with extra fields would.
fn sign_announcement_body(body: &Map<String, Value>, id: &Identity) -> String {
    let sig = id.sign(&canonical_json(&Value::Object(body.clone())).unwrap());
    signed_text("announcement", body, &sig.to_hex())
}

// ---------------------------------------------------------------------------------------
// Receipts
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn receipt_sign_text_parse_verify(case in receipt_case()) {
        let signed = SignedReceipt::sign(case.receipt(), &case.worker()).unwrap();
        let text = signed.to_json();
        let back = SignedReceipt::from_json(text.as_bytes()).unwrap();
        back.verify_signature().unwrap();
        prop_assert_eq!(back.receipt(), &case.receipt());
        prop_assert_eq!(&back, &signed);

        let from_header = SignedReceipt::from_base64(&signed.to_base64()).unwrap();
        from_header.verify_signature().unwrap();

        let sig = signed.signature().to_hex();
        prop_assert!(receipt_accepted(&reformatted("receipt", signed.body(), &sig)));
    }

}

proptest! {
    #![proptest_config(tamper_config())]

    #[test]
    fn receipt_any_single_field_change_breaks_verification(
        case in receipt_case(),
        extra in prop::option::of((extra_key(), extra_value())),
    ) {
        let mut body = match serde_json::to_value(case.receipt()).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        if let Some((k, v)) = extra {
            body.insert(k, v);
        }
        let signed = SignedReceipt::sign_body(body.clone(), &case.worker()).unwrap();
        let sig = signed.signature().to_hex();
        prop_assert!(receipt_accepted(&signed_text("receipt", &body, &sig)));
        for (what, tampered) in tampered_bodies(&body) {
            let text = signed_text("receipt", &tampered, &sig);
            prop_assert!(!receipt_accepted(&text), "{} still verifies: {}", what, text);
        }
    }

    #[test]
    fn receipt_any_signature_bit_flip_breaks_verification(
        case in receipt_case(),
        bits in prop::collection::vec(0usize..512, 1..5),
    ) {
        let signed = SignedReceipt::sign(case.receipt(), &case.worker()).unwrap();
        let sig = signed.signature().to_hex();
        for bit in bits {
            let text = signed_text("receipt", signed.body(), &flip_bit_hex(&sig, bit));
            let parsed = SignedReceipt::from_json(text.as_bytes()).unwrap();
            prop_assert!(parsed.verify_signature().is_err(), "bit {} flipped still verifies", bit);
        }
    }

}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn receipt_signed_with_unknown_fields_keeps_them(
        case in receipt_case(),
        extras in prop::collection::vec((extra_key(), extra_value()), 1..4),
    ) {
        let mut body = match serde_json::to_value(case.receipt()).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        for (k, v) in &extras {
            body.insert(k.clone(), v.clone());
        }
        let signed = SignedReceipt::sign_body(body.clone(), &case.worker()).unwrap();
        let back = SignedReceipt::from_json(signed.to_json().as_bytes()).unwrap();
        back.verify_signature().unwrap();
        prop_assert_eq!(back.body(), &body);
        prop_assert_eq!(back.receipt(), &case.receipt());
        // And the same through serde, as the ledger and HTTP layers use it.
        let via_serde: SignedReceipt =
            serde_json::from_str(&serde_json::to_string(&back).unwrap()).unwrap();
        via_serde.verify_signature().unwrap();
        prop_assert_eq!(via_serde.body(), &body);
    }

    #[test]
    fn receipt_integers_beyond_javascript_precision_are_refused(
        case in receipt_case(),
        field in prop::sample::select(vec!["inputTokens", "outputTokens", "startedAt", "completedAt"]),
        big in (MAX_SAFE + 1)..=u64::MAX,
    ) {
        // JCS writes numbers as IEEE doubles: 2^53+1 and 2^53 have the same canonical
        // text, so a signature over one would also "verify" the other. Such receipts
        // must not parse (nor be signable) at all.
        let mut body = match serde_json::to_value(case.receipt()).unwrap() {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        body.insert(field.into(), json!(big));
        if field == "startedAt" {
            body.insert("completedAt".into(), json!(big));
        }
        prop_assert!(SignedReceipt::sign_body(body.clone(), &case.worker()).is_err());
        let sig = case.worker().sign(&canonical_json(&Value::Object(body.clone())).unwrap());
        let text = signed_text("receipt", &body, &sig.to_hex());
        prop_assert!(SignedReceipt::from_json(text.as_bytes()).is_err(), "{} = {} parsed", field, big);
    }
}

#[test]
fn receipt_with_the_documented_unknown_field_round_trips() {
    let worker = Identity::from_seed([11; 32]);
    let case = ReceiptCase {
        worker_seed: [11; 32],
        requester: Identity::from_seed([12; 32]).public().as_bytes().to_owned(),
        job_id: "6f1c1c1e-8a43-4d4f-9d0a-1d2e3f405060".into(),
        nonce: [0xab; 16],
        model: "llama\"3\"\\ ünï 🦞\n\u{7}".into(),
        input_tokens: 12,
        output_tokens: 34,
        started_at: 1_700_000_000_000,
        completed_at: 1_700_000_001_000,
    };
    let Value::Object(mut body) = serde_json::to_value(case.receipt()).unwrap() else {
        unreachable!()
    };
    body.insert("x_future".into(), json!({"a": [1, "é"]}));
    let signed = SignedReceipt::sign_body(body.clone(), &worker).unwrap();
    let text = signed.to_json();
    let back = SignedReceipt::from_json(text.as_bytes()).unwrap();
    back.verify_signature().unwrap();
    assert_eq!(back.body()["x_future"], json!({"a": [1, "é"]}));

    // The typed view drops x_future; a re-serialized struct would not verify. This is
    // why the object is kept as received.
    let stripped = SignedReceipt::sign(case.receipt(), &worker).unwrap();
    let forged = signed_text("receipt", stripped.body(), &signed.signature().to_hex());
    assert!(!receipt_accepted(&forged));

    // Nested change inside the unknown field.
    let nested = text.replace("\"é\"", "\"e\"");
    assert_ne!(nested, text);
    assert!(!receipt_accepted(&nested));
}

// ---------------------------------------------------------------------------------------
// Announcements
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn announcement_sign_text_parse_verify(case in announcement_case()) {
        let signed = SignedAnnouncement::sign(case.announcement(), &case.identity()).unwrap();
        let text = signed.to_value().to_string();
        let back = SignedAnnouncement::from_json(text.as_bytes()).unwrap();
        back.verify_signature().unwrap();
        prop_assert_eq!(back.announcement(), &case.announcement());
        prop_assert_eq!(&back, &signed);

        let sig = back_signature(&text);
        prop_assert!(announcement_accepted(&reformatted("announcement", signed.body(), &sig)));
    }

}

proptest! {
    #![proptest_config(tamper_config())]

    #[test]
    fn announcement_any_single_field_change_breaks_verification(
        case in announcement_case(),
        extra in prop::option::of((extra_key(), extra_value())),
    ) {
        let Value::Object(mut body) = serde_json::to_value(case.announcement()).unwrap() else {
            unreachable!()
        };
        if let Some((k, v)) = extra {
            body.insert(k, v);
        }
        let text = sign_announcement_body(&body, &case.identity());
        prop_assert!(announcement_accepted(&text));
        let sig = back_signature(&text);
        for (what, tampered) in tampered_bodies(&body) {
            let text = signed_text("announcement", &tampered, &sig);
            prop_assert!(!announcement_accepted(&text), "{} still verifies: {}", what, text);
        }
        // Adding the optional label when absent is a change too.
        if !body.contains_key("label") {
            let mut m = body.clone();
            m.insert("label".into(), json!("added"));
            prop_assert!(!announcement_accepted(&signed_text("announcement", &m, &sig)));
        }
    }

    #[test]
    fn announcement_any_signature_bit_flip_breaks_verification(
        case in announcement_case(),
        bits in prop::collection::vec(0usize..512, 1..5),
    ) {
        let signed = SignedAnnouncement::sign(case.announcement(), &case.identity()).unwrap();
        let sig = back_signature(&signed.to_value().to_string());
        for bit in bits {
            let text = signed_text("announcement", signed.body(), &flip_bit_hex(&sig, bit));
            let parsed = SignedAnnouncement::from_json(text.as_bytes()).unwrap();
            prop_assert!(parsed.verify_signature().is_err(), "bit {} flipped still verifies", bit);
        }
    }

}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn announcement_signed_with_unknown_fields_keeps_them(
        case in announcement_case(),
        extras in prop::collection::vec((extra_key(), extra_value()), 1..4),
    ) {
        let Value::Object(mut body) = serde_json::to_value(case.announcement()).unwrap() else {
            unreachable!()
        };
        for (k, v) in &extras {
            body.insert(k.clone(), v.clone());
        }
        let text = sign_announcement_body(&body, &case.identity());
        let parsed = SignedAnnouncement::from_json(text.as_bytes()).unwrap();
        parsed.verify_signature().unwrap();
        let again = parsed.to_value().to_string();
        let back = SignedAnnouncement::from_json(again.as_bytes()).unwrap();
        back.verify_signature().unwrap();
        prop_assert_eq!(back.body(), &body);
        prop_assert_eq!(back.announcement(), &case.announcement());
    }

    #[test]
    fn announcement_integers_beyond_javascript_precision_are_refused(
        case in announcement_case(),
        field in prop::sample::select(vec!["ttlSeconds", "announcedAt"]),
        big in (MAX_SAFE + 1)..=u64::MAX,
    ) {
        let Value::Object(mut body) = serde_json::to_value(case.announcement()).unwrap() else {
            unreachable!()
        };
        body.insert(field.into(), json!(big));
        let text = sign_announcement_body(&body, &case.identity());
        prop_assert!(SignedAnnouncement::from_json(text.as_bytes()).is_err(), "{} = {} parsed", field, big);
        let mut typed = case.announcement();
        match field {
            "ttlSeconds" => typed.ttl_seconds = big,
            _ => typed.announced_at = big,
        }
        prop_assert!(SignedAnnouncement::sign(typed, &case.identity()).is_err());
    }
}

fn back_signature(signed_text: &str) -> String {
    let v: Value = serde_json::from_str(signed_text).unwrap();
    v["signature"].as_str().unwrap().to_string()
}

#[test]
fn announcement_with_unknown_field_and_tricky_label_round_trips() {
    let id = Identity::from_seed([21; 32]);
    let Value::Object(mut body) = serde_json::to_value(Announcement {
        version: 1,
        pubkey: id.public(),
        url: "http://127.0.0.1:17474".into(),
        label: Some("llama\"3\"\\ ünï 🦞\n\u{7}".into()),
        models: vec!["llama3.1:8b".into(), "qwen🦞".into()],
        tier: Tier::BestEffort,
        ttl_seconds: 300,
        announced_at: 1_700_000_000_000,
        link: None,
    })
    .unwrap() else {
        unreachable!()
    };
    body.insert("x_future".into(), json!({"a": [1, "é"]}));
    let text = sign_announcement_body(&body, &id);
    assert!(announcement_accepted(&text));
    let nested = text.replace("\"é\"", "\"e\"");
    assert_ne!(nested, text);
    assert!(!announcement_accepted(&nested));
    let model = text.replace("qwen🦞", "qwen🦀");
    assert!(!announcement_accepted(&model));
}

// ---------------------------------------------------------------------------------------
// Canonical JSON: the direct path for flat objects against the JCS crate
// ---------------------------------------------------------------------------------------

/// Keys: mostly ASCII (controls, quotes and backslashes included), sometimes anything.
fn object_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(prop::char::range('\u{0}', '\u{7f}'), 0..10)
            .prop_map(String::from_iter),
        1 => extra_key(),
    ]
}

/// Values: everything the direct path takes, the edges where it stops taking them
/// (2^53, floats, i64 and u64 extremes), and nested values it hands to the crate.
fn object_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        3 => tricky_string(0, 16).prop_map(Value::String),
        2 => protocol_int().prop_map(|n| json!(n)),
        1 => protocol_int().prop_map(|n| json!(-(n as i64))),
        1 => prop::sample::select(vec![
            json!(MAX_SAFE + 1), json!(-(MAX_SAFE as i64) - 1), json!(u64::MAX),
            json!(i64::MIN), json!(i64::MAX), json!(0.0), json!(-0.0), json!(1.0),
            json!(1e21), json!(5e-324),
        ]),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| json!(f)),
        1 => extra_value(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// `canonical_object` writes flat objects itself and hands the rest to the crate;
    /// either way the bytes, which signatures cover, must be the crate's.
    #[test]
    fn canonical_object_writes_what_the_jcs_crate_writes(
        fields in prop::collection::vec((object_key(), object_value()), 0..12),
    ) {
        let object: Map<String, Value> = fields.into_iter().collect();
        prop_assert_eq!(canonical_object(&object).unwrap(), canonical_json(&object).unwrap());
        let text = serde_json::to_string(&object).unwrap();
        let reparsed: Map<String, Value> = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(canonical_object(&reparsed).unwrap(), canonical_json(&reparsed).unwrap());
    }
}

/// Numbers as they arrive in text: `-0`, `1.0` and exponents are not integers to the
/// direct path, whatever their value.
#[test]
fn canonical_object_on_numbers_written_oddly() {
    let text =
        r#"{"a":-0,"b":1.0,"c":1e2,"d":-1,"e":9007199254740991,"f":9007199254740992,"g":0.1}"#;
    let object: Map<String, Value> = serde_json::from_str(text).unwrap();
    assert_eq!(
        canonical_object(&object).unwrap(),
        canonical_json(&object).unwrap()
    );
}
