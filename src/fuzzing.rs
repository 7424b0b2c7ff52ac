//! The bodies of the cargo-fuzz targets in `fuzz/fuzz_targets/`, one function per target.
//!
//! They live in the library, not in the fuzz crate, for two reasons: they reach parsers
//! that are private to the crate (the engines' stream translators), and the committed
//! corpus can be replayed by `tests/it/fuzz_corpus.rs` under a plain `cargo test`, without
//! libFuzzer or a nightly compiler.
//!
//! Each function takes arbitrary bytes and asserts what must hold for every input, not
//! only that nothing panics: what parses round-trips to an equal value, a signature
//! verifies the same after a round trip, a stream cut into arbitrary reads gives what the
//! whole stream gives, and so on. A panic here is a finding. Not part of the API.

#![allow(clippy::expect_used)] // a failed expectation is a finding

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};

use crate::core::engine::estimate::prompt_chars;
use crate::core::engine::lines::{LineSplitter, MAX_LINE, SseDecoder, SseItem};
use crate::core::engine::{
    ChatRequest, EngineError, EstimateWarning, LineTranslator, Meta, OllamaChunkTranslator,
    RequestError, SseTranslator, StreamEvent, to_ollama,
};
use crate::core::jobs::{JobSubmission, SubmissionError};
use crate::core::ledger::{
    AcceptRules, AppendOutcome, ConfirmOutcome, Ledger, Party, RejectReason, Rejection, Standing,
    accept, verify_ledger,
};
use crate::core::node::NodeCommand;
use crate::core::peers::{AddOutcome, PeerBook, PeerSource, normalize_label, normalize_url};
use crate::core::protocol::{
    ANNOUNCE_FUTURE_SKEW_MS, Announcement, Confirmation, Identity, MAX_CONFIRMED_PER_BATCH,
    NONCE_HEADER, ProtocolError, PublicKey, RECEIPT_SKEW_MS, REQUEST_SKEW_MS, RequestAuth,
    RequestTarget, SIGNATURE_HEADER, SignedAnnouncement, SignedConfirmation, SignedReceipt,
    TIMESTAMP_HEADER, canonical_json, canonical_object,
};
use crate::core::router::receipt_filter::{MAX_RECEIPT_LINE, ReceiptFilter};
use crate::core::worker::{AccessPolicy, Caller, Gate, RECEIPT_COMMENT};

/// The seed of the identity the targets sign with, the worker of the corpus's receipts.
pub const FUZZ_WORKER_SEED: [u8; 32] = [0x11; 32];
/// The seed of the requester named in the corpus's receipts.
pub const FUZZ_REQUESTER_SEED: [u8; 32] = [0x22; 32];

/// `SignedReceipt::from_json` / `from_base64`, `verify_signature`, `check_fresh` and the
/// ledger's `accept`, then a ledger append of the receipt re-signed by a known key.
pub fn receipt(data: &[u8]) {
    if let Ok(signed) = SignedReceipt::from_json(data) {
        let value: Value = serde_json::from_slice(data).expect("from_json accepted non-JSON");
        let via_serde: SignedReceipt =
            serde_json::from_slice(data).expect("Deserialize refused what from_json took");
        assert_eq!(via_serde, signed);
        check_receipt(&signed, Some(&value));
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(signed) = SignedReceipt::from_base64(text)
    {
        let bytes = BASE64
            .decode(text.trim())
            .expect("from_base64 took what base64 refuses");
        assert_eq!(SignedReceipt::from_json(&bytes).as_ref(), Ok(&signed));
        check_receipt(&signed, None);
    }
}

fn check_receipt(signed: &SignedReceipt, original: Option<&Value>) {
    // Kept as received: the body is the object that came in, unknown fields included.
    if let Some(original) = original {
        assert_eq!(
            original.get("receipt"),
            Some(&Value::Object(signed.body().clone()))
        );
        assert_eq!(
            original.get("signature").and_then(Value::as_str),
            Some(signed.signature().to_hex().as_str())
        );
    }
    assert_eq!(
        canonical_object(signed.body()),
        canonical_json(signed.body())
    );
    let verdict = signed.verify_signature();

    // Every travelling form parses back to an equal receipt that verifies alike.
    let json = signed.to_json();
    assert_eq!(json, signed.to_value().to_string());
    let back = SignedReceipt::from_json(json.as_bytes()).expect("own JSON refused");
    assert_eq!(&back, signed);
    assert_eq!(back.verify_signature(), verdict);
    let back = SignedReceipt::from_base64(&signed.to_base64()).expect("own base64 refused");
    assert_eq!(&back, signed);

    check_receipt_freshness(signed);
    check_accept(signed, &verdict);
    resign_and_ledger(signed);
}

/// `check_fresh` is exactly the ±5 minute window around `completedAt`.
fn check_receipt_freshness(signed: &SignedReceipt) {
    let at = signed.receipt().completed_at;
    let mut cases = vec![
        (at, true),
        (at + RECEIPT_SKEW_MS, true),
        (at + RECEIPT_SKEW_MS + 1, false),
        (0, at <= RECEIPT_SKEW_MS),
    ];
    if at >= RECEIPT_SKEW_MS {
        cases.push((at - RECEIPT_SKEW_MS, true));
    }
    if at > RECEIPT_SKEW_MS {
        cases.push((at - RECEIPT_SKEW_MS - 1, false));
    }
    for (now, fresh) in cases {
        match signed.check_fresh(now) {
            Ok(()) => assert!(fresh, "fresh at {now}, completed at {at}"),
            Err(ProtocolError::Stale { .. }) => assert!(!fresh && now > at),
            Err(ProtocolError::Future { .. }) => assert!(!fresh && now < at),
            Err(e) => panic!("check_fresh: unexpected {e:?}"),
        }
    }
}

/// `accept` refuses for the first broken rule, in order: party, signature, freshness.
fn check_accept(signed: &SignedReceipt, verdict: &Result<(), ProtocolError>) {
    let r = signed.receipt();
    let other = PublicKey::from_bytes([0xee; 32]);
    let at = r.completed_at;
    // Each party rule once, and each clock case once (a signature check is not cheap).
    let cases = [
        (Party::Any, None),
        (Party::Any, Some(at.saturating_sub(RECEIPT_SKEW_MS + 1))),
        (Party::Requester(r.requester_pubkey), Some(at)),
        (Party::Requester(other), None),
        (
            Party::Worker(r.worker_pubkey),
            Some(at + RECEIPT_SKEW_MS + 1),
        ),
        (Party::Worker(other), Some(at)),
        (Party::Either(r.worker_pubkey), Some(at + RECEIPT_SKEW_MS)),
        (Party::Either(other), None),
    ];
    for (party, now_ms) in cases {
        let ours = match party {
            Party::Any => true,
            Party::Requester(me) => r.requester_pubkey == me,
            Party::Worker(me) => r.worker_pubkey == me,
            Party::Either(me) => r.requester_pubkey == me || r.worker_pubkey == me,
        };
        let want = match (ours, verdict, now_ms) {
            (false, _, _) => Some(RejectReason::NotOurs),
            (true, Err(e), _) => Some(Rejection::from(e.clone()).reason),
            (true, Ok(()), Some(now)) if now > at + RECEIPT_SKEW_MS => Some(RejectReason::Stale),
            (true, Ok(()), Some(now)) if at > now + RECEIPT_SKEW_MS => Some(RejectReason::Future),
            (true, Ok(()), _) => None,
        };
        let got = accept(signed.clone(), &AcceptRules { now_ms, party });
        match (got, want) {
            (Ok(v), None) => assert_eq!(v.signed(), signed),
            (Err(rejection), Some(reason)) => assert_eq!(rejection.reason, reason),
            (got, want) => panic!("{party:?} at {now_ms:?}: got {got:?}, want {want:?}"),
        }
    }
}

/// The receipt's body signed by a known key: it verifies, survives a round trip, is
/// accepted, and enters a ledger exactly once with balances that add up.
fn resign_and_ledger(signed: &SignedReceipt) {
    let worker = Identity::from_seed(FUZZ_WORKER_SEED);
    let mut body = signed.body().clone();
    body.insert(
        "workerPubkey".into(),
        Value::String(worker.public().to_string()),
    );
    let resigned = SignedReceipt::sign_body(body.clone(), &worker)
        .expect("a body that parsed once must sign once its worker is replaced");
    resigned
        .verify_signature()
        .expect("fresh signature refused");
    let back = SignedReceipt::from_json(resigned.to_json().as_bytes()).expect("refused");
    back.verify_signature()
        .expect("signature lost in a round trip");

    // Any change to the signed object, an unknown field included, breaks the signature.
    body.insert("fuzzTamper".into(), Value::Bool(true));
    let tampered = SignedReceipt::from_value(serde_json::json!({
        "receipt": body, "signature": resigned.signature().to_hex()
    }))
    .expect("an added unknown field must still parse");
    assert!(
        tampered.verify_signature().is_err(),
        "tampered receipt verified"
    );

    let r = resigned.receipt().clone();
    let rules = AcceptRules {
        now_ms: Some(r.completed_at),
        party: Party::Worker(worker.public()),
    };
    let verified = accept(resigned.clone(), &rules).expect("re-signed receipt refused");
    let ledger =
        Ledger::new(crate::core::store::in_memory().expect("in-memory db")).expect("ledger tables");
    let outcomes = ledger
        .append(&[verified.clone(), verified.clone()])
        .expect("append");
    assert_eq!(
        outcomes,
        [
            AppendOutcome::Appended { seq: 1 },
            AppendOutcome::Duplicate { existing_seq: 1 }
        ]
    );
    assert_eq!(
        ledger.append(&[verified]).expect("append"),
        [AppendOutcome::Duplicate { existing_seq: 1 }]
    );
    let report = verify_ledger(&ledger).expect("verify");
    assert!(report.is_ok(), "{:?}", report.mismatches);
    let tokens = r.total_tokens();
    let earned = ledger.balance(&r.worker_pubkey).expect("balance");
    let spent = ledger.balance(&r.requester_pubkey).expect("balance");
    assert_eq!(earned.earned, tokens);
    assert_eq!(spent.spent, tokens);
    assert_eq!(ledger.totals().expect("totals").tokens, tokens);
    let stored = ledger.newest(1).expect("newest");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].receipt, resigned);
}

/// `SignedAnnouncement::from_json`, `verify_signature` and `check_fresh`.
pub fn announcement(data: &[u8]) {
    let Ok(signed) = SignedAnnouncement::from_json(data) else {
        return;
    };
    let original: Value = serde_json::from_slice(data).expect("from_json accepted non-JSON");
    assert_eq!(
        original.get("announcement"),
        Some(&Value::Object(signed.body().clone()))
    );
    let via_serde: SignedAnnouncement =
        serde_json::from_slice(data).expect("Deserialize refused what from_json took");
    assert_eq!(via_serde, signed);
    assert_eq!(
        canonical_object(signed.body()),
        canonical_json(signed.body())
    );
    let verdict = signed.verify_signature();
    let text = signed.to_value().to_string();
    assert_eq!(serde_json::to_string(&signed).ok().as_ref(), Some(&text));
    let back = SignedAnnouncement::from_json(text.as_bytes()).expect("own JSON refused");
    assert_eq!(back, signed);
    assert_eq!(back.verify_signature(), verdict);

    check_announcement_freshness(&signed);
    resign_announcement(&signed);
}

/// Fresh from `announcedAt - 5 min` to `announcedAt + ttlSeconds`, both ends included.
fn check_announcement_freshness(signed: &SignedAnnouncement) {
    let a = signed.announcement();
    let at = a.announced_at;
    let ttl_ms = a.ttl_seconds.saturating_mul(1000);
    let mut cases = vec![(at, true), (at + ttl_ms, true), (at + ttl_ms + 1, false)];
    if at >= ANNOUNCE_FUTURE_SKEW_MS {
        cases.push((at - ANNOUNCE_FUTURE_SKEW_MS, true));
    }
    if at > ANNOUNCE_FUTURE_SKEW_MS {
        cases.push((at - ANNOUNCE_FUTURE_SKEW_MS - 1, false));
    }
    for (now, fresh) in cases {
        match signed.check_fresh(now) {
            Ok(()) => assert!(fresh, "fresh at {now}: {a:?}"),
            Err(ProtocolError::Stale { .. }) => assert!(!fresh && now > at),
            Err(ProtocolError::Future { .. }) => assert!(!fresh && now < at),
            Err(e) => panic!("check_fresh: unexpected {e:?}"),
        }
    }
}

/// The body signed by a known key verifies, with its unknown fields; adding one breaks it.
fn resign_announcement(signed: &SignedAnnouncement) {
    let id = Identity::from_seed(FUZZ_WORKER_SEED);
    let mut body = signed.body().clone();
    body.insert("pubkey".into(), Value::String(id.public().to_string()));
    let signature = id.sign(&canonical_object(&body).expect("canonical form"));
    let resigned = SignedAnnouncement::from_value(serde_json::json!({
        "announcement": body.clone(), "signature": signature.to_hex()
    }))
    .expect("only the pubkey changed");
    resigned
        .verify_signature()
        .expect("fresh signature refused");
    body.insert("fuzzTamper".into(), Value::Bool(true));
    let tampered = SignedAnnouncement::from_value(serde_json::json!({
        "announcement": body, "signature": signature.to_hex()
    }))
    .expect("an added unknown field must still parse");
    assert!(
        tampered.verify_signature().is_err(),
        "tampered announcement verified"
    );

    // Signing the typed fields works too (unknown fields are not carried by the type).
    let typed = Announcement {
        pubkey: id.public(),
        ..signed.announcement().clone()
    };
    let again = SignedAnnouncement::sign(typed, &id).expect("typed signing");
    again.verify_signature().expect("typed signature refused");
}

/// Input layout: a flags byte (bit 0: the client wants the usage chunk; bit 1: every
/// 0xff byte stands for a 16 KiB run of `x`, to reach the length limits), a seed for
/// the read sizes, then the stream.
const FLAG_WANTS_USAGE: u8 = 1;
const FLAG_PAD: u8 = 2;
const PAD: usize = 16 * 1024;
const MAX_PADS: usize = 5;

/// A worker's SSE stream through the router's `ReceiptFilter`, and an engine's stream
/// through the line splitter, the SSE decoder and the OpenAI and Ollama translators.
pub fn sse_stream(data: &[u8]) {
    let [flags, seed, body @ ..] = data else {
        return;
    };
    let stream = expand(*flags, body);
    let wants_usage = flags & FLAG_WANTS_USAGE != 0;
    // The receipt a stream carries travels on: its base64 form round-trips. (The
    // `receipt` target checks receipts in depth.)
    if let (_, Some(text)) = filter_reference(&stream)
        && let Ok(signed) = SignedReceipt::from_base64(&text)
    {
        let again = SignedReceipt::from_base64(&signed.to_base64()).expect("own base64 refused");
        assert_eq!(again, signed);
    }
    for chunks in [reads(&stream, *seed), cuts_at_edges(&stream)] {
        check_receipt_filter(&stream, &chunks);
        check_line_splitter(&stream, &chunks);
        check_openai_stream(&stream, &chunks, wants_usage);
        check_ollama_stream(&stream, &chunks, wants_usage);
    }
}

fn expand(flags: u8, body: &[u8]) -> Vec<u8> {
    if flags & FLAG_PAD == 0 {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut pads = 0;
    for &b in body {
        if b == 0xff && pads < MAX_PADS {
            pads += 1;
            out.resize(out.len() + PAD, b'x');
        } else {
            out.push(b);
        }
    }
    out
}

/// The stream cut into reads of pseudo-random sizes (some empty), as a socket gives them.
fn reads(stream: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed).wrapping_mul(0x9e37_79b9) | 1;
    let max = if stream.len() > 4096 {
        4096
    } else if seed & 1 == 0 {
        8
    } else {
        64
    };
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let r = state as usize;
        if r.is_multiple_of(13) {
            out.push(&rest[..0]);
        }
        let (head, tail) = rest.split_at((1 + r % max).min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The stream cut on both sides of every newline and before every receipt marker: the
/// reads where a line-based filter's state changes.
fn cuts_at_edges(stream: &[u8]) -> Vec<&[u8]> {
    let marker = RECEIPT_COMMENT.as_bytes();
    let mut cuts: Vec<usize> = Vec::new();
    for (i, &b) in stream.iter().enumerate() {
        if b == b'\n' {
            cuts.extend([i, i + 1]);
        } else if stream[i..].starts_with(marker) {
            cuts.push(i);
        }
    }
    cuts.push(stream.len());
    cuts.dedup();
    let mut out = Vec::with_capacity(cuts.len());
    let mut start = 0;
    for cut in cuts {
        out.push(&stream[start..cut]);
        start = cut;
    }
    out
}

fn run_filter(chunks: &[&[u8]]) -> (Vec<u8>, Option<String>) {
    let mut filter = ReceiptFilter::new();
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&filter.push(chunk));
    }
    out.extend_from_slice(&filter.finish());
    (out, filter.receipt().map(str::to_string))
}

/// What the filter must do, on the whole stream at once: drop each receipt comment line
/// (payload up to `MAX_RECEIPT_LINE` bytes) and one blank line right after it, keep the
/// last receipt, and forward every other byte unchanged.
fn filter_reference(stream: &[u8]) -> (Vec<u8>, Option<String>) {
    let marker = RECEIPT_COMMENT.as_bytes();
    let payload = |line: &[u8]| {
        line.strip_prefix(marker)
            .filter(|p| p.len() <= MAX_RECEIPT_LINE)
            .map(|p| String::from_utf8_lossy(p).trim().to_string())
    };
    let mut out = Vec::new();
    let mut receipt = None;
    let mut drop_blank = false;
    for line in stream.split_inclusive(|&b| b == b'\n') {
        if !line.ends_with(b"\n") {
            // The unterminated end of the stream.
            match payload(line) {
                Some(p) => receipt = Some(p),
                None => out.extend_from_slice(line),
            }
            break;
        }
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if std::mem::take(&mut drop_blank) && content.is_empty() {
            continue;
        }
        if let Some(p) = payload(content) {
            receipt = Some(p);
            drop_blank = true;
            continue;
        }
        out.extend_from_slice(line);
    }
    (out, receipt)
}

/// Equal forwarded bytes and receipt; on a difference, says where (streams are long).
fn same_filtering(got: &(Vec<u8>, Option<String>), want: &(Vec<u8>, Option<String>), how: &str) {
    if got == want {
        return;
    }
    let at = got
        .0
        .iter()
        .zip(&want.0)
        .take_while(|(a, b)| a == b)
        .count();
    let around = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]).into_owned()
    };
    panic!(
        "{how}: forwarded {} bytes, want {}; first difference at {at}: {:?} vs {:?}; receipt {:?}, want {:?}",
        got.0.len(),
        want.0.len(),
        around(&got.0),
        around(&want.0),
        got.1,
        want.1
    );
}

fn check_receipt_filter(stream: &[u8], chunks: &[&[u8]]) {
    let want = filter_reference(stream);
    same_filtering(
        &run_filter(&[stream]),
        &want,
        "the whole stream in one read",
    );
    same_filtering(&run_filter(chunks), &want, "the stream cut into reads");
}

/// Lines as `LineSplitter` must give them: cut at `\n`, one `\r` before it dropped, and
/// the rest after the last newline (one trailing `\r` dropped) if not empty.
fn lines_reference(stream: &[u8]) -> (Vec<&[u8]>, Option<&[u8]>) {
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let rest = parts.pop().unwrap_or_default();
    let lines = parts
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .collect();
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    (lines, (!rest.is_empty()).then_some(rest))
}

fn check_line_splitter(stream: &[u8], chunks: &[&[u8]]) {
    let (want, want_rest) = lines_reference(stream);
    for reads in [&[stream][..], chunks] {
        let mut splitter = LineSplitter::new(MAX_LINE);
        let mut got: Vec<Bytes> = Vec::new();
        for chunk in reads {
            splitter.push(chunk);
            while let Some(line) = splitter.next_line().expect("no line near MAX_LINE") {
                got.push(line);
            }
        }
        assert_eq!(got, want);
        assert_eq!(splitter.take_rest().as_deref(), want_rest);
    }
    // With a small bound: the lines before a refusal are the right ones, and a refusal
    // only comes when more than the bound is buffered without a newline.
    let max = 32;
    let mut splitter = LineSplitter::new(max);
    let mut got = 0;
    let mut pushed = 0;
    'reads: for chunk in chunks {
        splitter.push(chunk);
        pushed += chunk.len();
        loop {
            match splitter.next_line() {
                Ok(Some(line)) => {
                    assert_eq!(&line[..], want[got]);
                    got += 1;
                }
                Ok(None) => break,
                Err(_) => {
                    let start = stream[..pushed]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |i| i + 1);
                    assert!(pushed - start > max, "refused {} bytes", pushed - start);
                    break 'reads;
                }
            }
        }
    }
}

/// The synchronous twin of the engine adapters' `Drive`: splitter, translator, end.
#[derive(Debug, PartialEq)]
struct Drove {
    events: Vec<StreamEvent>,
    result: Result<(), EngineError>,
    /// Whether the body ran out before the answer did, so `end` was called.
    called_end: bool,
}

fn drive<T: LineTranslator>(
    mut translator: T,
    chunks: &[&[u8]],
    mut on_line: impl FnMut(&[u8], &Result<Vec<StreamEvent>, EngineError>),
) -> Drove {
    let mut splitter = LineSplitter::new(MAX_LINE);
    let mut events = Vec::new();
    let mut take = |r: Result<Vec<StreamEvent>, EngineError>| match r {
        Ok(e) => {
            events.extend(e);
            Ok(())
        }
        Err(e) => Err(e),
    };
    let mut reads = chunks.iter();
    let mut called_end = false;
    let result = 'drive: loop {
        if translator.finished() {
            break Ok(());
        }
        match splitter.next_line() {
            Ok(Some(line)) => {
                let r = translator.line(&line);
                on_line(&line, &r);
                if let Err(e) = take(r) {
                    break Err(e);
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        match reads.next() {
            Some(chunk) => splitter.push(chunk),
            None => {
                if let Some(rest) = splitter.take_rest() {
                    let r = translator.line(&rest);
                    on_line(&rest, &r);
                    if let Err(e) = take(r) {
                        break 'drive Err(e);
                    }
                }
                if translator.finished() {
                    break Ok(());
                }
                called_end = true;
                break take(translator.end());
            }
        }
    };
    Drove {
        events,
        result,
        called_end,
    }
}

/// What every translator promises: at most one usage, last; exactly one when the answer
/// ended well; chunks are JSON objects (as text on one line); no `usage` member on a
/// chunk unless the client asked for it.
fn check_events(drove: &Drove, wants_usage: bool) {
    let usages = drove
        .events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Usage(_)))
        .count();
    assert!(usages <= 1, "{usages} usage events");
    if usages == 1 {
        assert!(matches!(drove.events.last(), Some(StreamEvent::Usage(_))));
    }
    assert_eq!(drove.result.is_ok(), usages == 1, "{:?}", drove.result);
    for event in &drove.events {
        let has_usage = match event {
            StreamEvent::Usage(_) => continue,
            StreamEvent::Chunk(Value::Object(chunk)) => chunk.contains_key("usage"),
            StreamEvent::Chunk(other) => panic!("chunk is not an object: {other}"),
            StreamEvent::ChunkText(text) => {
                assert!(!text.contains(['\n', '\r']), "chunk text spans lines");
                let members: BTreeMap<String, IgnoredAny> =
                    serde_json::from_str(text).expect("chunk text is not a JSON object");
                members.contains_key("usage")
            }
        };
        assert!(wants_usage || !has_usage, "unasked usage");
    }
}

fn openai_translator(wants_usage: bool) -> SseTranslator {
    let warning = EstimateWarning {
        flag: Arc::default(),
        engine: "fuzz".into(),
    };
    SseTranslator::new(wants_usage, 8, warning)
}

/// A chunk as a value, whichever form it took.
fn event_value(event: &StreamEvent) -> Result<Value, String> {
    match event {
        StreamEvent::Chunk(v) => Ok(v.clone()),
        StreamEvent::ChunkText(t) => serde_json::from_str(t).map_err(|e| e.to_string()),
        StreamEvent::Usage(u) => Ok(serde_json::json!({"fuzzUsage": [
            u.input_tokens, u.output_tokens, u.estimated]})),
    }
}

fn check_openai_stream(stream: &[u8], chunks: &[&[u8]], wants_usage: bool) {
    // The same events whatever the reads; and the decoder's view of each line, to know
    // which SSE event the translator was answering.
    let mut decoder = SseDecoder::default();
    let mut items: Vec<SseItem> = Vec::new();
    let mut decoder_failed = false;
    let whole = drive(
        openai_translator(wants_usage),
        &[stream],
        |line, r| match decoder.line(line) {
            Ok(Some(item)) => {
                // JSON by the grammar, that is: a number beyond f64 is JSON that the
                // relay passes on as written, though the general path cannot hold it.
                if let SseItem::Event { event, data } = &item
                    && event.as_deref() != Some("error")
                    && data.trim() != "[DONE]"
                    && serde_json::from_str::<IgnoredAny>(data).is_err()
                {
                    assert!(r.is_err(), "took an event that is not JSON: {data:?}");
                }
                items.push(item);
            }
            Ok(None) => {}
            Err(_) => decoder_failed = true,
        },
    );
    let split = drive(openai_translator(wants_usage), chunks, |_, _| {});
    assert_eq!(whole, split);
    check_events(&whole, wants_usage);
    if decoder_failed {
        return;
    }
    // An event the body ended in, without its blank line, is dispatched by `end`; the
    // general-path stream ends the same way.
    let mut pending = None;
    if whole.called_end
        && let Some(item) = decoder.finish()
    {
        pending = Some(items.len());
        items.push(item);
    }

    // The relay (chunks passed on as text) decides as the general path does: the same
    // events fed with each event's JSON pretty-printed, which the relay never takes.
    let mut lines: Vec<String> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            SseItem::Comment(c) => lines.push(format!(":{c}")),
            SseItem::Event { event, data } => {
                if let Some(name) = event {
                    lines.push(format!("event: {name}"));
                }
                let data = match serde_json::from_str::<Value>(data) {
                    Ok(v @ Value::Object(_)) if data.trim() != "[DONE]" => {
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    }
                    _ => data.clone(),
                };
                for piece in data.split('\n') {
                    lines.push(format!("data: {piece}"));
                }
                if pending != Some(i) {
                    lines.push(String::new());
                }
            }
        }
    }
    let mut general = openai_translator(wants_usage);
    let mut events = Vec::new();
    let mut result = Ok(());
    for line in &lines {
        if general.finished() {
            break;
        }
        match general.line(line.as_bytes()) {
            Ok(e) => events.extend(e),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if result.is_ok() && !general.finished() {
        match general.end() {
            Ok(e) => events.extend(e),
            Err(e) => result = Err(e),
        }
    }
    let values = |events: &[StreamEvent]| events.iter().map(event_value).collect::<Vec<_>>();
    assert_eq!(
        values(&whole.events),
        values(&events),
        "relay and general path"
    );
    assert_eq!(
        whole.result.as_ref().map_err(std::mem::discriminant),
        result.as_ref().map_err(std::mem::discriminant),
        "relay {:?}, general path {:?}",
        whole.result,
        result
    );
}

fn ollama_translator(wants_usage: bool) -> OllamaChunkTranslator {
    let meta = Meta {
        id: "chatcmpl-fuzz".into(),
        created: 1_700_000_000,
        model: "fuzz-model".into(),
    };
    OllamaChunkTranslator::new(meta, wants_usage, 8)
}

/// Tool-call ids invented for Ollama's calls are random: blank them to compare runs.
fn mask_call_ids(drove: &mut Drove) {
    for event in &mut drove.events {
        let StreamEvent::Chunk(chunk) = event else {
            continue;
        };
        let Some(Value::Array(choices)) = chunk.get_mut("choices") else {
            continue;
        };
        for choice in choices {
            if let Some(Value::Array(calls)) = choice.pointer_mut("/delta/tool_calls") {
                for call in calls {
                    if let Some(id) = call.get_mut("id") {
                        *id = Value::Null;
                    }
                }
            }
        }
    }
}

fn check_ollama_stream(stream: &[u8], chunks: &[&[u8]], wants_usage: bool) {
    let mut whole = drive(ollama_translator(wants_usage), &[stream], |line, r| {
        if !line.iter().all(u8::is_ascii_whitespace)
            && serde_json::from_slice::<Value>(line).is_err()
        {
            assert!(r.is_err(), "took a line that is not JSON");
        }
    });
    let mut split = drive(ollama_translator(wants_usage), chunks, |_, _| {});
    mask_call_ids(&mut whole);
    mask_call_ids(&mut split);
    assert_eq!(whole, split);
    check_events(&whole, wants_usage);
    for event in &whole.events {
        if let StreamEvent::Chunk(chunk) = event {
            assert_eq!(chunk["id"], "chatcmpl-fuzz");
            assert_eq!(chunk["object"], "chat.completion.chunk");
        }
    }
}

/// `ChatRequest::parse`, the check both the worker and the router run on a chat body, and
/// what the worker then does with an accepted one before any engine is called.
pub fn chat_request(data: &[u8]) {
    let parsed = ChatRequest::parse(data);
    match serde_json::from_slice::<Value>(data) {
        Ok(value) => assert_eq!(ChatRequest::from_value(value), parsed),
        Err(_) => assert!(matches!(parsed, Err(RequestError::InvalidJson(_)))),
    }
    check_job_submission(data, &parsed);
    let request = match parsed {
        Ok(request) => request,
        Err(e) => {
            let refusal = crate::core::api_error::ApiError::from(e);
            assert_eq!(refusal.status, axum::http::StatusCode::BAD_REQUEST);
            return;
        }
    };
    assert_eq!(
        request.body.get("model"),
        Some(&Value::String(request.model.clone()))
    );
    assert!(!request.model.trim().is_empty());
    assert_eq!(
        request.stream,
        request.body.get("stream") == Some(&Value::Bool(true))
    );

    // What goes to the worker (the router forwards the client's bytes, the jobs API
    // re-serializes) parses back to the same request.
    let bytes = request.to_bytes();
    let back = ChatRequest::parse(&bytes).expect("re-serialized request refused");
    assert_eq!(back, request);
    assert_eq!(back.to_bytes(), bytes, "serialization is not stable");
    assert_eq!(back.wants_stream_usage(), request.wants_stream_usage());

    prompt_chars(&request.body);
    match to_ollama(&request.body, &request.model, request.stream) {
        Ok(Value::Object(out)) => {
            assert_eq!(
                out.get("model"),
                Some(&Value::String(request.model.clone()))
            );
            assert_eq!(out.get("stream"), Some(&Value::Bool(request.stream)));
            let sent = out.get("messages").and_then(Value::as_array).map(Vec::len);
            let asked = request.body["messages"].as_array().map(Vec::len);
            assert_eq!(sent, asked, "messages dropped or invented");
        }
        Ok(other) => panic!("Ollama body is not an object: {other}"),
        Err(e) => assert!(e.is_client_error(), "refused as the engine's fault: {e}"),
    }
}

/// `POST /v1/jobs` takes the same request, less `metadata`, and never streamed.
fn check_job_submission(data: &[u8], parsed: &Result<ChatRequest, RequestError>) {
    match JobSubmission::parse(data) {
        Ok(job) => {
            assert!(!job.request.stream);
            let mut body = job.request.body.clone();
            if let Ok(Value::Object(original)) = serde_json::from_slice::<Value>(data)
                && let Some(metadata) = original.get("metadata")
            {
                body.insert("metadata".into(), metadata.clone());
            }
            if let Ok(request) = parsed {
                assert_eq!(request.body.get("metadata"), body.get("metadata"));
                assert_eq!(request.model, job.request.model);
            }
        }
        Err(SubmissionError::Request(RequestError::InvalidJson(_))) => {
            assert!(matches!(parsed, Err(RequestError::InvalidJson(_))));
        }
        Err(_) => {}
    }
}

/// The control API's `POST /v1/commands`: the body is read as `axum::Json<NodeCommand>`,
/// then the node checks keys, URLs and labels before acting. Those checks run here, and
/// an `add-peer` that passes them is carried out on an in-memory peer book.
pub fn control_command(data: &[u8]) {
    let via_axum = axum::Json::<NodeCommand>::from_bytes(data).map(|axum::Json(c)| c);
    let via_serde = serde_json::from_slice::<NodeCommand>(data);
    assert_eq!(via_axum.as_ref().ok(), via_serde.as_ref().ok());
    let Ok(command) = via_axum else {
        return;
    };
    // The CLI and the console send commands as JSON: they must arrive unchanged.
    let text = serde_json::to_vec(&command).expect("a command serializes");
    let back: NodeCommand = serde_json::from_slice(&text).expect("own JSON refused");
    assert_eq!(back, command);

    match &command {
        NodeCommand::AddPeer { pubkey, url, label } => {
            check_add_peer(pubkey, url, label.as_deref());
        }
        NodeCommand::RemovePeer { pubkey } | NodeCommand::AddLinkedPeer { pubkey, .. } => {
            check_pubkey(pubkey);
        }
        NodeCommand::SyncTracker { url } => {
            check_url(url);
        }
        NodeCommand::SetAdvertising { .. }
        | NodeCommand::SyncPeers
        | NodeCommand::DiscoverNostr { .. } => {}
    }
}

fn check_pubkey(text: &str) -> Option<PublicKey> {
    let key = PublicKey::parse(text.trim()).ok()?;
    assert_eq!(key.to_string(), text.trim(), "a key has one text form");
    Some(key)
}

/// A normal URL is its own normal form, and is an http(s) URL with a host and nothing
/// the book refuses.
fn check_url(text: &str) -> Option<String> {
    let normal = normalize_url(text).ok()?;
    assert_eq!(
        normalize_url(&normal).ok().as_deref(),
        Some(normal.as_str()),
        "normal form of {text:?} is not stable"
    );
    let parsed = url::Url::parse(&normal).expect("normal URL does not parse");
    assert!(matches!(parsed.scheme(), "http" | "https"));
    assert!(parsed.host_str().is_some_and(|h| !h.is_empty()));
    assert!(parsed.query().is_none() && parsed.fragment().is_none());
    assert!(!normal.ends_with('/'));
    Some(normal)
}

fn check_add_peer(pubkey: &str, url: &str, label: Option<&str>) {
    let key = check_pubkey(pubkey);
    let normal = check_url(url);
    let raw_label = label;
    let label = normalize_label(label);
    if let Ok(Some(l)) = &label {
        assert!(!l.is_empty() && !l.chars().any(char::is_control));
        assert_eq!(l.trim(), l);
    }
    let Some(key) = key else {
        return;
    };
    let book =
        PeerBook::new(crate::core::store::in_memory().expect("in-memory db")).expect("peer table");
    let added = book.add(key, url, raw_label, PeerSource::Manual, 1);
    let (Some(normal), Ok(label)) = (normal, label) else {
        assert!(
            added.is_err(),
            "the book took a URL or label its checks refuse"
        );
        return;
    };
    assert_eq!(added.expect("valid peer refused"), AddOutcome::Added);
    let record = book.get(&key).expect("get").expect("added peer missing");
    assert_eq!(record.url, normal);
    assert_eq!(record.label, label);
    // The same peer in its stored spelling is the same peer.
    let again = book
        .add(
            key,
            &record.url,
            record.label.as_deref(),
            PeerSource::Manual,
            2,
        )
        .expect("stored peer refused");
    assert_eq!(again, AddOutcome::Unchanged);
    assert!(book.remove(&key).expect("remove"));
    assert!(!book.remove(&key).expect("remove"));
}

/// The worker's check of a signed request (`RequestAuth::parse`, `check_fresh`,
/// `verify`) and the gate that runs it on every request (`Gate::identify`).
///
/// Input: `requester`, `timestamp`, `nonce`, `signature` and `path` on one line each,
/// then the body. An empty timestamp, nonce or signature line sends no such header.
pub fn request_auth(data: &[u8]) {
    let mut fields = data.splitn(6, |&b| b == b'\n');
    let mut next = || std::str::from_utf8(fields.next().unwrap_or_default()).ok();
    let (Some(requester), Some(timestamp), Some(nonce), Some(signature), Some(path)) =
        (next(), next(), next(), next(), next())
    else {
        return;
    };
    let body = data.splitn(6, |&b| b == b'\n').nth(5).unwrap_or_default();
    let worker = Identity::from_seed(FUZZ_WORKER_SEED).public();
    let target = RequestTarget {
        method: "POST",
        path,
        body,
        worker: &worker,
    };
    let parsed = RequestAuth::parse(requester, timestamp, nonce, signature);
    let now = parsed
        .as_ref()
        .map_or(1_800_000_000_000, |a| a.timestamp_ms);
    let verdict = parsed.as_ref().map(|auth| check_request_auth(auth, target));
    check_gate(
        [requester, timestamp, nonce, signature],
        target,
        now,
        verdict.as_ref().ok(),
    );

    // The same request signed by a known requester passes, once.
    let id = Identity::from_seed(FUZZ_REQUESTER_SEED);
    let signed = RequestAuth::sign(&id, target, now);
    assert_eq!(check_request_auth(&signed, target), Ok(()));
    let [(_, ts), (_, nonce), (_, sig)] = signed.header_values();
    let requester = id.public().to_string();
    check_gate([&requester, &ts, &nonce, &sig], target, now, Some(&Ok(())));
}

/// Parsing is canonical, freshness is the ±1 minute window, and a valid signature binds
/// the worker, path and body (the method is compared without case).
fn check_request_auth(auth: &RequestAuth, target: RequestTarget<'_>) -> Result<(), ProtocolError> {
    let [(_, ts), (_, nonce), (_, sig)] = auth.header_values();
    let again = RequestAuth::parse(&auth.requester.to_string(), &ts, &nonce, &sig);
    assert_eq!(again.as_ref(), Ok(auth));
    let at = auth.timestamp_ms;
    let mut cases = vec![
        (at, true),
        (at + REQUEST_SKEW_MS, true),
        (at + REQUEST_SKEW_MS + 1, false),
    ];
    if at > REQUEST_SKEW_MS {
        cases.extend([
            (at - REQUEST_SKEW_MS, true),
            (at - REQUEST_SKEW_MS - 1, false),
        ]);
    }
    for (now, fresh) in cases {
        assert_eq!(auth.check_fresh(now).is_ok(), fresh, "at {at}, now {now}");
    }
    let verdict = auth.verify(target);
    let lower = RequestTarget {
        method: "post",
        ..target
    };
    assert_eq!(auth.verify(lower), verdict);
    if verdict.is_ok() {
        let other_worker = Identity::from_seed(FUZZ_REQUESTER_SEED).public();
        let longer_path = format!("{}/", target.path);
        let mut longer_body = target.body.to_vec();
        longer_body.push(b' ');
        for moved in [
            RequestTarget {
                worker: &other_worker,
                ..target
            },
            RequestTarget {
                path: &longer_path,
                ..target
            },
            RequestTarget {
                body: &longer_body,
                ..target
            },
            RequestTarget {
                method: "GET",
                ..target
            },
        ] {
            assert!(auth.verify(moved).is_err(), "signature carried over");
        }
    }
    verdict
}

/// `Gate::identify` takes a signed request exactly when the checks above pass, refuses its
/// replay, and takes an unsigned one as anonymous unless signatures are required.
fn check_gate(
    [requester, timestamp, nonce, signature]: [&str; 4],
    target: RequestTarget<'_>,
    now: u64,
    verdict: Option<&Result<(), ProtocolError>>,
) {
    let mut headers = axum::http::HeaderMap::new();
    for (name, value) in [
        (crate::core::worker::REQUESTER_HEADER, requester),
        (TIMESTAMP_HEADER, timestamp),
        (NONCE_HEADER, nonce),
        (SIGNATURE_HEADER, signature),
    ] {
        if value.is_empty() {
            continue;
        }
        let Ok(value) = axum::http::HeaderValue::from_str(value) else {
            return;
        };
        headers.insert(name, value);
    }
    let unsigned = timestamp.is_empty() && nonce.is_empty() && signature.is_empty();
    let worker = *target.worker;
    for require_signed in [false, true] {
        let policy = AccessPolicy {
            require_signed,
            ..AccessPolicy::default()
        };
        // Remembering from time 0: the oracle below is about signatures, not restarts.
        let gate = Gate::new(policy, worker, 0);
        let identify =
            || gate.identify(None, target.method, target.path, &headers, target.body, now);
        let first = identify();
        let signed_ok = !unsigned && !requester.is_empty() && verdict.is_some_and(Result::is_ok);
        match &first {
            Ok(Caller::Signed(key)) => {
                assert!(
                    signed_ok,
                    "gate took a request whose signature does not check"
                );
                assert_eq!(key.to_string(), requester.trim());
                let replay = identify();
                assert!(replay.is_err(), "gate took a replayed nonce");
            }
            Ok(Caller::Anonymous(key)) => {
                assert!(unsigned && !require_signed);
                assert_eq!(key.to_string(), requester.trim());
            }
            Err(refusal) => {
                assert!(
                    !signed_ok,
                    "gate refused a valid signed request: {refusal:?}"
                );
                assert!(refusal.status.is_client_error() || refusal.status.as_u16() == 503);
            }
        }
    }
}

/// A requester's counter-signature (`SignedConfirmation`): parsing, verification, and
/// what a worker's ledger does with it.
pub fn confirmation(data: &[u8]) {
    let Ok(signed) = SignedConfirmation::from_json(data) else {
        return;
    };
    let original: Value = serde_json::from_slice(data).expect("from_json accepted non-JSON");
    let received = confirmation_body(&signed);
    assert_eq!(
        original.get("confirmation"),
        Some(&Value::Object(received.clone()))
    );
    assert_eq!(canonical_object(&received), canonical_json(&received));
    let verdict = signed.verify_signature();
    let text = signed.to_value().to_string();
    let back = SignedConfirmation::from_json(text.as_bytes()).expect("own JSON refused");
    assert_eq!(back, signed);
    assert_eq!(back.verify_signature(), verdict);
    let c = signed.confirmation();
    assert!(!c.receipts.is_empty() && c.receipts.len() <= MAX_CONFIRMED_PER_BATCH);

    // Typed signing by the named requester's stand-in verifies.
    let requester = Identity::from_seed(FUZZ_REQUESTER_SEED);
    let worker = Identity::from_seed(FUZZ_WORKER_SEED);
    let typed = Confirmation {
        requester_pubkey: requester.public(),
        ..c.clone()
    };
    let typed = SignedConfirmation::sign(typed, &requester).expect("typed signing");
    typed.verify_signature().expect("typed signature refused");

    // The body, unknown fields included, re-signed for a receipt a worker ledgered.
    let receipt = ledgered_receipt(&worker, requester.public(), &c.receipts[0].nonce);
    let mut body = received;
    body.insert(
        "requesterPubkey".into(),
        Value::String(requester.public().to_string()),
    );
    body.insert(
        "workerPubkey".into(),
        Value::String(worker.public().to_string()),
    );
    if let Some(Value::Array(list)) = body.get_mut("receipts")
        && let Some(Value::Object(first)) = list.first_mut()
    {
        first.insert(
            "signature".into(),
            Value::String(receipt.signature().to_hex()),
        );
    }
    let sig = requester.sign(&canonical_object(&body).expect("canonical form"));
    let resigned = SignedConfirmation::from_value(serde_json::json!({
        "confirmation": body.clone(), "signature": sig.to_hex()
    }))
    .expect("only keys and a signature changed");
    resigned
        .verify_signature()
        .expect("fresh signature refused");
    body.insert("fuzzTamper".into(), Value::Bool(true));
    let tampered = SignedConfirmation::from_value(serde_json::json!({
        "confirmation": body, "signature": sig.to_hex()
    }))
    .expect("an added unknown field must still parse");
    assert!(
        tampered.verify_signature().is_err(),
        "tampered confirmation verified"
    );
    confirm_in_ledger(&resigned, &receipt, &worker.public());
}

/// A receipt from `worker` to `requester` with `nonce` (when it is one), for a ledger.
fn ledgered_receipt(worker: &Identity, requester: PublicKey, nonce: &str) -> SignedReceipt {
    let receipt = crate::core::protocol::Receipt {
        version: 1,
        job_id: "fuzz-job".into(),
        nonce: nonce.to_string(),
        requester_pubkey: requester,
        worker_pubkey: worker.public(),
        model: "fuzz-model".into(),
        input_tokens: 12,
        output_tokens: 34,
        started_at: 1_800_000_000_000,
        completed_at: 1_800_000_001_000,
    };
    SignedReceipt::sign(receipt, worker).expect("a confirmation's nonce is a receipt nonce")
}

/// The worker's ledger settles the pending receipt the confirmation names first, once,
/// keeps the confirmation as received, and knows nothing of the other nonces.
fn confirm_in_ledger(confirmation: &SignedConfirmation, receipt: &SignedReceipt, me: &PublicKey) {
    let ledger =
        Ledger::new(crate::core::store::in_memory().expect("in-memory db")).expect("ledger tables");
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Worker(*me),
    };
    let pending = accept(receipt.clone(), &rules)
        .expect("own receipt refused")
        .with_standing(Standing::Pending);
    ledger.append(&[pending]).expect("append");
    let nonce = receipt.receipt().nonce.as_str();
    assert_eq!(
        ledger.standing(nonce).expect("standing"),
        Some(Standing::Pending)
    );
    let outcomes = ledger.confirm(confirmation, me).expect("confirm");
    let named = &confirmation.confirmation().receipts;
    assert_eq!(outcomes.len(), named.len());
    assert_eq!(outcomes[0], ConfirmOutcome::Confirmed);
    for (entry, outcome) in named.iter().zip(&outcomes).skip(1) {
        let want = if entry.nonce == nonce {
            ConfirmOutcome::AlreadyConfirmed
        } else {
            ConfirmOutcome::Unknown
        };
        assert_eq!(*outcome, want, "{}", entry.nonce);
    }
    assert_eq!(
        ledger.standing(nonce).expect("standing"),
        Some(Standing::Confirmed)
    );
    let again = ledger.confirm(confirmation, me).expect("confirm");
    assert_eq!(again[0], ConfirmOutcome::AlreadyConfirmed);
    let kept = ledger
        .confirmation_of(nonce)
        .expect("confirmation_of")
        .expect("settling confirmation not kept");
    assert_eq!(confirmation_body(&kept), confirmation_body(confirmation));
    kept.verify_signature()
        .expect("kept confirmation no longer verifies");
    let report = verify_ledger(&ledger).expect("verify");
    assert!(report.is_ok(), "{:?}", report.mismatches);
}

/// The confirmation object as received (its `to_value` keeps it whole).
fn confirmation_body(signed: &SignedConfirmation) -> Map<String, Value> {
    match signed.to_value() {
        Value::Object(mut outer) => match outer.remove("confirmation") {
            Some(Value::Object(body)) => body,
            _ => Map::new(),
        },
        _ => Map::new(),
    }
}
