//! The ledger against a reference model: random sequences of appends (fresh receipts,
//! replays, duplicates inside one batch, self-receipts) and reopenings of the database
//! file, checked after every step against a HashMap of balances and a set of nonces.
//!
//! Signing and verifying are slow in debug builds, so the receipts come from a pool
//! signed and accepted once per test binary; proptest chooses which of them arrive, in
//! which batches and in which order.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use lobstah::core::clock::{Clock, ManualClock};
use lobstah::core::ledger::{
    self, AcceptRules, AppendOutcome, BALANCES, Balance, LEDGER_META, Ledger, Party, RejectReason,
    Totals, Verified, accept, verify_ledger,
};
use lobstah::core::protocol::{Identity, PublicKey, RECEIPT_SKEW_MS, Receipt, SignedReceipt};
use lobstah::core::store;
use proptest::prelude::*;
use serde_json::{Value, json};

const IDENTITIES: usize = 4;
const POOL_SIZE: usize = 40;
const BASE_TIME: u64 = 1_750_000_000_000;

struct Pool {
    ids: Vec<Identity>,
    receipts: Vec<Verified>,
}

fn identity(i: usize) -> Identity {
    Identity::from_seed([i as u8 + 1; 32])
}

/// A small deterministic generator, so the pool is the same in every run.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 11
}

fn make_receipt(worker: &Identity, requester: PublicKey, i: usize, state: &mut u64) -> Receipt {
    // Mostly small token counts, some at the top of the range the protocol allows.
    let mut tokens = || match lcg(state) % 5 {
        0 => (1 << 53) - 1 - lcg(state) % 1000,
        1 => 0,
        _ => lcg(state) % 5_000,
    };
    let (input_tokens, output_tokens) = (tokens(), tokens());
    let started_at = BASE_TIME + i as u64 * 1_000;
    Receipt {
        version: 1,
        job_id: format!("job-{i}"),
        nonce: format!("{:032x}", 0xfeed_0000_u128 + i as u128),
        requester_pubkey: requester,
        worker_pubkey: worker.public(),
        model: ["llama3.1:8b", "qwen\"2\"\\ ü 🦞", "m\n\u{7}"][i % 3].into(),
        input_tokens,
        output_tokens,
        started_at,
        completed_at: started_at + lcg(state) % 60_000,
    }
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let ids: Vec<Identity> = (0..IDENTITIES).map(identity).collect();
        let mut state = 42;
        let rules = AcceptRules {
            now_ms: None,
            party: Party::Any,
        };
        let receipts = (0..POOL_SIZE)
            .map(|i| {
                // Every (worker, requester) pair, self-receipts included, in turn.
                let worker = &ids[i % IDENTITIES];
                let requester = ids[(i / IDENTITIES) % IDENTITIES].public();
                let receipt = make_receipt(worker, requester, i, &mut state);
                let signed = if i % 7 == 3 {
                    // Some carry fields v1 does not define; the ledger keeps them.
                    let Value::Object(mut body) = serde_json::to_value(&receipt).unwrap() else {
                        unreachable!()
                    };
                    body.insert("x_future".into(), json!({"a": [1, "é"], "i": i}));
                    SignedReceipt::sign_body(body, worker).unwrap()
                } else {
                    SignedReceipt::sign(receipt, worker).unwrap()
                };
                accept(signed, &rules).unwrap()
            })
            .collect();
        Pool { ids, receipts }
    })
}

// ---------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Model {
    /// (seq, receipt) in append order.
    log: Vec<(u64, SignedReceipt)>,
    nonces: HashMap<String, u64>,
    balances: HashMap<PublicKey, (u64, u64, u64)>,
    next_seq: u64,
    tokens: u64,
}

impl Model {
    fn new() -> Self {
        Model {
            next_seq: 1,
            ..Model::default()
        }
    }

    fn append(&mut self, batch: &[&Verified]) -> Vec<AppendOutcome> {
        batch
            .iter()
            .map(|v| {
                let signed = v.signed();
                let r = signed.receipt();
                if let Some(&existing_seq) = self.nonces.get(&r.nonce) {
                    return AppendOutcome::Duplicate { existing_seq };
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                self.nonces.insert(r.nonce.clone(), seq);
                self.log.push((seq, signed.clone()));
                let t = r.total_tokens();
                self.tokens = self.tokens.saturating_add(t);
                let w = self.balances.entry(r.worker_pubkey).or_default();
                w.0 = w.0.saturating_add(t);
                w.2 += 1;
                let q = self.balances.entry(r.requester_pubkey).or_default();
                q.1 = q.1.saturating_add(t);
                if r.requester_pubkey != r.worker_pubkey {
                    q.2 += 1;
                }
                AppendOutcome::Appended { seq }
            })
            .collect()
    }

    fn balance(&self, pk: &PublicKey) -> Balance {
        match self.balances.get(pk) {
            Some(&(earned, spent, receipts)) => Balance {
                pubkey: *pk,
                earned,
                spent,
                receipts,
                ..Balance::empty(*pk)
            },
            None => Balance::empty(*pk),
        }
    }
}

/// Compares every read the ledger offers with the model.
fn check(ledger: &Ledger, model: &Model) {
    let stranger = identity(99).public();
    for pk in pool()
        .ids
        .iter()
        .map(|i| i.public())
        .chain(std::iter::once(stranger))
    {
        assert_eq!(ledger.balance(&pk).unwrap(), model.balance(&pk), "{pk}");
    }

    let mut want: Vec<Balance> = model.balances.keys().map(|pk| model.balance(pk)).collect();
    want.sort_by_key(|b| b.pubkey);
    let mut have = ledger.balances().unwrap();
    have.sort_by_key(|b| b.pubkey);
    assert_eq!(have, want);

    assert_eq!(
        ledger.totals().unwrap(),
        Totals {
            receipts: model.log.len() as u64,
            tokens: model.tokens,
        }
    );

    let len = model.log.len();
    let as_pairs = |rows: Vec<ledger::StoredReceipt>| -> Vec<(u64, SignedReceipt)> {
        rows.into_iter().map(|r| (r.seq, r.receipt)).collect()
    };
    for n in [0, 1, 2, len, len + 5] {
        let want: Vec<_> = model.log.iter().rev().take(n).cloned().collect();
        assert_eq!(as_pairs(ledger.newest(n).unwrap()), want, "newest({n})");
    }
    let last_seq = model.log.last().map(|(s, _)| *s).unwrap_or(0);
    for after in [
        0,
        1,
        last_seq / 2,
        last_seq.saturating_sub(1),
        last_seq,
        last_seq + 3,
    ] {
        for limit in [0, 1, 3, usize::MAX] {
            let want: Vec<_> = model
                .log
                .iter()
                .filter(|(s, _)| *s > after)
                .take(limit)
                .cloned()
                .collect();
            assert_eq!(
                as_pairs(ledger.since(after, limit).unwrap()),
                want,
                "since({after}, {limit})"
            );
        }
    }

    for v in &pool().receipts {
        let nonce = &v.signed().receipt().nonce;
        assert_eq!(
            ledger.contains_nonce(nonce).unwrap(),
            model.nonces.contains_key(nonce),
            "nonce {nonce}"
        );
    }
}

fn check_verify(ledger: &Ledger, model: &Model) {
    let report = verify_ledger(ledger).unwrap();
    assert!(report.is_ok(), "{:?}", report.mismatches);
    assert_eq!(report.receipts_checked, model.log.len() as u64);
    assert_eq!(report.pubkeys_checked, model.balances.len() as u64);
}

fn open_file_ledger(path: &Path) -> Ledger {
    Ledger::new(store::open(path).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------
// Random operation sequences
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    /// A batch of pool receipts, possibly repeating one inside the batch or one that is
    /// already ledgered.
    Append(Vec<usize>),
    /// A batch of receipts already in the ledger, sent again.
    Replay(Vec<prop::sample::Index>),
    /// Close the database file and open it again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => prop::collection::vec(0..POOL_SIZE, 0..8).prop_map(Op::Append),
        2 => prop::collection::vec(any::<prop::sample::Index>(), 1..4).prop_map(Op::Replay),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn ledger_matches_the_model(ops in prop::collection::vec(op(), 1..10)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.redb");
        let mut ledger = open_file_ledger(&path);
        let mut model = Model::new();
        let pool = pool();
        for op in ops {
            match op {
                Op::Append(indices) => {
                    let batch: Vec<&Verified> = indices.iter().map(|&i| &pool.receipts[i]).collect();
                    let want = model.append(&batch);
                    let owned: Vec<Verified> = batch.into_iter().cloned().collect();
                    prop_assert_eq!(ledger.append(&owned).unwrap(), want);
                }
                Op::Replay(picks) => {
                    if model.log.is_empty() {
                        continue;
                    }
                    let again: Vec<Verified> = picks
                        .iter()
                        .map(|p| {
                            let nonce = &model.log[p.index(model.log.len())].1.receipt().nonce;
                            pool.receipts
                                .iter()
                                .find(|v| &v.signed().receipt().nonce == nonce)
                                .unwrap()
                                .clone()
                        })
                        .collect();
                    let outcomes = ledger.append(&again).unwrap();
                    for (v, outcome) in again.iter().zip(&outcomes) {
                        let existing_seq = model.nonces[&v.signed().receipt().nonce];
                        prop_assert_eq!(*outcome, AppendOutcome::Duplicate { existing_seq });
                    }
                }
                Op::Reopen => {
                    drop(ledger);
                    ledger = open_file_ledger(&path);
                }
            }
            check(&ledger, &model);
        }
        check_verify(&ledger, &model);
    }
}

// ---------------------------------------------------------------------------------------
// Durable nonces
// ---------------------------------------------------------------------------------------

#[test]
fn a_nonce_stays_spent_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.redb");
    let pool = pool();
    let first = pool.receipts[5].clone();
    let ledger = open_file_ledger(&path);
    assert_eq!(
        ledger.append(std::slice::from_ref(&first)).unwrap(),
        vec![AppendOutcome::Appended { seq: 1 }]
    );
    let before = (ledger.totals().unwrap(), ledger.balances().unwrap());
    drop(ledger);

    let ledger = open_file_ledger(&path);
    let nonce = first.signed().receipt().nonce.clone();
    assert!(ledger.contains_nonce(&nonce).unwrap());
    // The same receipt again.
    assert_eq!(
        ledger.append(std::slice::from_ref(&first)).unwrap(),
        vec![AppendOutcome::Duplicate { existing_seq: 1 }]
    );
    // A different, validly signed receipt reusing the nonce (a worker trying to be paid
    // twice) is a replay too.
    let worker = &pool.ids[5 % IDENTITIES];
    let mut reused = first.signed().receipt().clone();
    reused.input_tokens += 1_000;
    reused.job_id = "another-job".into();
    let reused = accept(
        SignedReceipt::sign(reused, worker).unwrap(),
        &AcceptRules {
            now_ms: None,
            party: Party::Any,
        },
    )
    .unwrap();
    assert_eq!(
        ledger.append(&[reused]).unwrap(),
        vec![AppendOutcome::Duplicate { existing_seq: 1 }]
    );
    assert_eq!(
        (ledger.totals().unwrap(), ledger.balances().unwrap()),
        before
    );
    assert!(verify_ledger(&ledger).unwrap().is_ok());

    // Read-only opening (what the CLI uses) sees the same nonce.
    drop(ledger);
    let ro = Ledger::new(store::open_read_only(&path).unwrap()).unwrap();
    assert!(ro.contains_nonce(&nonce).unwrap());
}

// ---------------------------------------------------------------------------------------
// Acceptance rules
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum PartyChoice {
    Any,
    Requester(usize),
    Worker(usize),
    Either(usize),
}

fn party_choice() -> impl Strategy<Value = PartyChoice> {
    prop_oneof![
        Just(PartyChoice::Any),
        (0..=IDENTITIES).prop_map(PartyChoice::Requester),
        (0..=IDENTITIES).prop_map(PartyChoice::Worker),
        (0..=IDENTITIES).prop_map(PartyChoice::Either),
    ]
}

fn clock_offset() -> impl Strategy<Value = i64> {
    let skew = RECEIPT_SKEW_MS as i64;
    prop_oneof![
        -3 * skew..=3 * skew,
        prop::sample::select(vec![-skew - 1, -skew, 0, skew, skew + 1]),
    ]
}

/// Everything a reader of the ledger can see, to show a rejection changed nothing.
fn snapshot(ledger: &Ledger) -> (Totals, Vec<Balance>, Vec<ledger::StoredReceipt>) {
    (
        ledger.totals().unwrap(),
        ledger.balances().unwrap(),
        ledger.newest(usize::MAX).unwrap(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn accept_applies_freshness_and_party_and_rejections_change_nothing(
        pick in 0..POOL_SIZE,
        offset in clock_offset(),
        party in party_choice(),
        tamper in any::<bool>(),
    ) {
        let pool = pool();
        // Index IDENTITIES is a stranger that appears in no receipt.
        let key = |i: usize| if i < IDENTITIES { pool.ids[i].public() } else { identity(99).public() };
        let signed = pool.receipts[pick].signed().clone();
        let r = signed.receipt().clone();
        let clock = ManualClock::new(r.completed_at);
        if offset >= 0 {
            clock.advance(offset as u64);
        } else {
            clock.set(r.completed_at - offset.unsigned_abs());
        }
        let (rules_party, ours) = match party {
            PartyChoice::Any => (Party::Any, true),
            PartyChoice::Requester(i) => (Party::Requester(key(i)), r.requester_pubkey == key(i)),
            PartyChoice::Worker(i) => (Party::Worker(key(i)), r.worker_pubkey == key(i)),
            PartyChoice::Either(i) => (
                Party::Either(key(i)),
                r.requester_pubkey == key(i) || r.worker_pubkey == key(i),
            ),
        };
        let candidate = if tamper {
            // Same object, one more output token: the signature no longer matches.
            let mut v = signed.to_value();
            let out = v["receipt"]["outputTokens"].as_u64().unwrap();
            v["receipt"]["outputTokens"] = json!(if out == 0 { 1 } else { out - 1 });
            SignedReceipt::from_value(v).unwrap()
        } else {
            signed.clone()
        };
        let rules = AcceptRules { now_ms: Some(clock.now_ms()), party: rules_party };

        let mut expected_reasons = HashSet::new();
        if !ours {
            expected_reasons.insert(RejectReason::NotOurs);
        }
        if tamper {
            expected_reasons.insert(RejectReason::BadSignature);
        }
        if offset > RECEIPT_SKEW_MS as i64 {
            expected_reasons.insert(RejectReason::Stale);
        }
        if offset < -(RECEIPT_SKEW_MS as i64) {
            expected_reasons.insert(RejectReason::Future);
        }

        // A ledger that already holds a couple of other receipts.
        let ledger = Ledger::new(store::in_memory().unwrap()).unwrap();
        let others: Vec<Verified> = pool.receipts.iter()
            .enumerate()
            .filter(|(i, _)| *i != pick)
            .take(2)
            .map(|(_, v)| v.clone())
            .collect();
        ledger.append(&others).unwrap();
        let before = snapshot(&ledger);

        match accept(candidate, &rules) {
            Ok(verified) => {
                prop_assert!(expected_reasons.is_empty(), "accepted despite {:?}", expected_reasons);
                let outcomes = ledger.append(&[verified]).unwrap();
                prop_assert_eq!(outcomes, vec![AppendOutcome::Appended { seq: 3 }]);
                prop_assert!(ledger.contains_nonce(&r.nonce).unwrap());
                prop_assert_eq!(ledger.totals().unwrap().receipts, before.0.receipts + 1);
            }
            Err(rejection) => {
                prop_assert!(
                    expected_reasons.contains(&rejection.reason),
                    "rejected as {:?}, expected one of {:?}: {}",
                    rejection.reason, expected_reasons, rejection
                );
                // Nothing reached the ledger, and the nonce is still unspent: the genuine
                // receipt is accepted later when it passes the rules.
                prop_assert!(snapshot(&ledger) == before);
                prop_assert!(!ledger.contains_nonce(&r.nonce).unwrap());
                let later = accept(signed, &AcceptRules { now_ms: Some(r.completed_at), party: Party::Any }).unwrap();
                prop_assert_eq!(
                    ledger.append(&[later]).unwrap(),
                    vec![AppendOutcome::Appended { seq: 3 }]
                );
            }
        }
        prop_assert!(verify_ledger(&ledger).unwrap().is_ok());
    }
}

#[test]
fn requester_rule_refuses_receipts_for_someone_else() {
    let pool = pool();
    let me = pool.ids[0].public();
    let ledger = Ledger::new(store::in_memory().unwrap()).unwrap();
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Requester(me),
    };
    let mut accepted = 0;
    for v in &pool.receipts {
        let r = v.signed().receipt();
        match accept(v.signed().clone(), &rules) {
            Ok(ok) => {
                assert_eq!(r.requester_pubkey, me);
                ledger.append(&[ok]).unwrap();
                accepted += 1;
            }
            Err(e) => {
                assert_ne!(r.requester_pubkey, me);
                assert_eq!(e.reason, RejectReason::NotOurs);
            }
        }
    }
    let mine = pool
        .receipts
        .iter()
        .filter(|v| v.signed().receipt().requester_pubkey == me)
        .count();
    assert!(mine > 0 && mine < POOL_SIZE);
    assert_eq!(accepted, mine);
    // Only receipts naming us as requester are ledgered.
    for stored in ledger.newest(usize::MAX).unwrap() {
        assert_eq!(stored.receipt.receipt().requester_pubkey, me);
    }
    assert_eq!(ledger.totals().unwrap().receipts, accepted as u64);
}

#[test]
fn freshness_uses_the_callers_clock_exactly_at_the_edges() {
    let pool = pool();
    let signed = pool.receipts[0].signed().clone();
    let at = signed.receipt().completed_at;
    let clock = ManualClock::new(at);
    let cases = [
        (0i64, None),
        (RECEIPT_SKEW_MS as i64, None),
        (RECEIPT_SKEW_MS as i64 + 1, Some(RejectReason::Stale)),
        (-(RECEIPT_SKEW_MS as i64), None),
        (-(RECEIPT_SKEW_MS as i64) - 1, Some(RejectReason::Future)),
    ];
    for (offset, want) in cases {
        clock.set(at.checked_add_signed(offset).unwrap());
        let rules = AcceptRules {
            now_ms: Some(clock.now_ms()),
            party: Party::Any,
        };
        let got = accept(signed.clone(), &rules).err().map(|e| e.reason);
        assert_eq!(got, want, "offset {offset}");
    }
}

// ---------------------------------------------------------------------------------------
// Arithmetic at the edge
// ---------------------------------------------------------------------------------------

#[test]
fn balances_saturate_instead_of_overflowing() {
    // About 1,024 receipts at the protocol's largest token counts would overflow a u64
    // total; a hostile worker could send them. Start near the edge instead of signing
    // a thousand receipts.
    let pool = pool();
    let ledger = Ledger::new(store::in_memory().unwrap()).unwrap();
    let v = pool.receipts[1].clone();
    let r = v.signed().receipt().clone();
    assert!(r.total_tokens() > 0);
    let store::Db::Writable(db) = ledger.db() else {
        unreachable!()
    };
    let tx = db.begin_write().unwrap();
    {
        let mut balances = tx.open_table(BALANCES).unwrap();
        balances
            .insert(
                r.worker_pubkey.to_string().as_str(),
                (u64::MAX - 1, u64::MAX - 1, 7),
            )
            .unwrap();
        balances
            .insert(
                r.requester_pubkey.to_string().as_str(),
                (0, u64::MAX - 1, 7),
            )
            .unwrap();
        let mut meta = tx.open_table(LEDGER_META).unwrap();
        meta.insert("tokens", u64::MAX - 1).unwrap();
    }
    tx.commit().unwrap();

    ledger.append(&[v]).unwrap();
    let worker = ledger.balance(&r.worker_pubkey).unwrap();
    let requester = ledger.balance(&r.requester_pubkey).unwrap();
    assert_eq!(worker.earned, u64::MAX);
    assert_eq!(requester.spent, u64::MAX);
    assert_eq!(ledger.totals().unwrap().tokens, u64::MAX);
    // Net and available clamp rather than wrap to a misleading sign.
    assert_eq!(requester.net(), i64::MIN);
    assert_eq!(requester.available(), i64::MIN + ledger::ALLOWANCE_TOKENS);
    let rich = Balance {
        pubkey: r.worker_pubkey,
        earned: u64::MAX,
        spent: 0,
        receipts: 1,
        ..Balance::empty(r.worker_pubkey)
    };
    assert_eq!(rich.net(), i64::MAX);
    assert_eq!(rich.available(), i64::MAX);
    assert_eq!(worker.net(), (u64::MAX - (u64::MAX - 1)) as i64);
}
