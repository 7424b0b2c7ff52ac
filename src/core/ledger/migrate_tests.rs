//! A ledger in the first schema, written by hand with that schema's table definitions
//! (copied here as they were), converted by `Ledger::new` and read by a read-only open,
//! must answer every query as a ledger built by the current code from the same history.

use redb::{ReadableDatabase, TableDefinition, TableHandle};

use super::super::*;
use crate::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, RequestProof, RequestTarget, SignedConfirmation,
};
use crate::core::store;

/// The first schema, as `ledger` defined it before the compact one.
const OLD_RECEIPTS: TableDefinition<u64, &[u8]> = TableDefinition::new("receipts");
const OLD_NONCES: TableDefinition<&str, u64> = TableDefinition::new("receipt_nonces");
const OLD_BALANCES: TableDefinition<&str, (u64, u64, u64)> = TableDefinition::new("balances");
const OLD_META: TableDefinition<&str, u64> = TableDefinition::new("ledger_meta");
const OLD_UNCONFIRMED: TableDefinition<&str, (u8, u64)> =
    TableDefinition::new("receipt_unconfirmed");
const OLD_UNCONFIRMED_BALANCES: TableDefinition<&str, (u64, u64, u64)> =
    TableDefinition::new("balances_unconfirmed");
const OLD_CONFIRMED_BY: TableDefinition<&str, u64> = TableDefinition::new("receipt_confirmed_by");
const OLD_CONFIRMATIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("confirmations");
const OLD_ANSWERED: TableDefinition<&str, u64> = TableDefinition::new("receipt_answers");
const OLD_PROOFS: TableDefinition<&str, &[u8]> = TableDefinition::new("receipt_request_proofs");

const NOW: u64 = 1_800_000_000_000;

struct History {
    worker: Identity,
    r1: Identity,
    r2: Identity,
    receipts: Vec<SignedReceipt>,
    proofs: Vec<Option<RequestProof>>,
    confirmation: SignedConfirmation,
}

fn proof(requester: &Identity, worker: &Identity, i: u8) -> RequestProof {
    let body = format!("{{\"n\":{i}}}");
    let target = RequestTarget {
        method: "POST",
        path: "/v1/chat/completions",
        body: body.as_bytes(),
        worker: &worker.public(),
    };
    RequestProof::sign(requester, target, NOW).1
}

fn confirmation(
    requester: &Identity,
    worker: &Identity,
    named: Vec<ConfirmedReceipt>,
) -> SignedConfirmation {
    let c = Confirmation {
        version: 1,
        requester_pubkey: requester.public(),
        worker_pubkey: worker.public(),
        confirmed_at: NOW,
        receipts: named,
    };
    SignedConfirmation::sign(c, requester).unwrap()
}

/// Five receipts of a worker: pending, pending then confirmed, anonymous, pending,
/// confirmed then given up (expired); the confirmation also names an unknown receipt.
fn build_history(ledger: &Ledger) -> History {
    let worker = Identity::from_seed([1; 32]);
    let (r1, r2) = (Identity::from_seed([2; 32]), Identity::from_seed([3; 32]));
    let plan = [
        (&r1, Standing::Pending, true),
        (&r1, Standing::Pending, true),
        (&r2, Standing::Anonymous, false),
        (&r2, Standing::Pending, true),
        (&r2, Standing::Confirmed, true),
    ];
    let (mut receipts, mut proofs) = (Vec::new(), Vec::new());
    for (i, (requester, standing, proved)) in plan.into_iter().enumerate() {
        let mut r = crate::core::protocol::receipt_sample(worker.public(), requester.public(), NOW);
        r.input_tokens = 100 * (i as u64 + 1);
        let signed = SignedReceipt::sign(r, &worker).unwrap();
        let p = proved.then(|| proof(requester, &worker, i as u8));
        let rules = AcceptRules {
            now_ms: None,
            party: Party::Any,
        };
        let v = accept(signed.clone(), &rules)
            .unwrap()
            .with_standing(standing)
            .answering(p.clone());
        ledger.append(&[v]).unwrap();
        receipts.push(signed);
        proofs.push(p);
    }
    let unknown = ConfirmedReceipt {
        nonce: "ab".repeat(16),
        signature: "cd".repeat(64),
    };
    let confirmation = confirmation(
        &r1,
        &worker,
        vec![ConfirmedReceipt::of(&receipts[1]), unknown],
    );
    ledger.confirm(&confirmation, &worker.public()).unwrap();
    assert_eq!(
        ledger
            .expire_given_up(&[receipts[4].receipt().nonce.clone()])
            .unwrap(),
        1
    );
    History {
        worker,
        r1,
        r2,
        receipts,
        proofs,
        confirmation,
    }
}

/// Writes `history` as the first schema stored it, copying the tables whose form did not
/// change (balances, totals) from the reference.
fn write_old(path: &std::path::Path, reference: &Ledger, h: &History) {
    let db = redb::Database::create(path).unwrap();
    let tx = db.begin_write().unwrap();
    let read = reference.db().begin_read().unwrap();
    {
        let mut log = tx.open_table(OLD_RECEIPTS).unwrap();
        let mut nonces = tx.open_table(OLD_NONCES).unwrap();
        let mut unconfirmed = tx.open_table(OLD_UNCONFIRMED).unwrap();
        let mut answered = tx.open_table(OLD_ANSWERED).unwrap();
        let mut proofs = tx.open_table(OLD_PROOFS).unwrap();
        for (i, signed) in h.receipts.iter().enumerate() {
            let (seq, nonce) = (i as u64 + 1, signed.receipt().nonce.as_str());
            log.insert(seq, signed.to_json().as_bytes()).unwrap();
            nonces.insert(nonce, seq).unwrap();
            let standing = reference.standing(nonce).unwrap().unwrap();
            if standing != Standing::Confirmed {
                unconfirmed.insert(nonce, (standing.code(), seq)).unwrap();
            }
            if let Some(p) = &h.proofs[i] {
                answered.insert(p.nonce.as_str(), seq).unwrap();
                if standing == Standing::Pending {
                    proofs
                        .insert(nonce, serde_json::to_vec(p).unwrap().as_slice())
                        .unwrap();
                }
            }
        }
        tx.open_table(OLD_CONFIRMED_BY)
            .unwrap()
            .insert(h.receipts[1].receipt().nonce.as_str(), 1)
            .unwrap();
        let json = h.confirmation.to_value().to_string();
        tx.open_table(OLD_CONFIRMATIONS)
            .unwrap()
            .insert(1, json.as_bytes())
            .unwrap();
        for def in [OLD_BALANCES, OLD_UNCONFIRMED_BALANCES] {
            let mut to = tx.open_table(def).unwrap();
            for row in read.open_table(def).unwrap().iter().unwrap() {
                let (k, v) = row.unwrap();
                to.insert(k.value(), v.value()).unwrap();
            }
        }
        let mut meta = tx.open_table(OLD_META).unwrap();
        for row in read.open_table(OLD_META).unwrap().iter().unwrap() {
            let (k, v) = row.unwrap();
            meta.insert(k.value(), v.value()).unwrap();
        }
    }
    tx.commit().unwrap();
}

fn export(ledger: &Ledger) -> Vec<u8> {
    let mut out = Vec::new();
    export_jsonl(ledger, &mut out).unwrap();
    out
}

/// The read-only queries a CLI beside no node runs.
fn same_reads(a: &Ledger, b: &Ledger, h: &History) {
    assert_eq!(a.balances().unwrap(), b.balances().unwrap());
    assert_eq!(a.totals().unwrap(), b.totals().unwrap());
    for id in [&h.worker, &h.r1, &h.r2] {
        assert_eq!(
            a.balance(&id.public()).unwrap(),
            b.balance(&id.public()).unwrap()
        );
    }
    let mut nonces: Vec<String> = h
        .receipts
        .iter()
        .map(|r| r.receipt().nonce.clone())
        .collect();
    nonces.extend(["ab".repeat(16), "not a nonce".into()]);
    for n in &nonces {
        assert_eq!(
            a.confirmation_of(n).unwrap(),
            b.confirmation_of(n).unwrap(),
            "{n}"
        );
        assert_eq!(a.standing(n).unwrap(), b.standing(n).unwrap(), "{n}");
        assert_eq!(
            a.contains_nonce(n).unwrap(),
            b.contains_nonce(n).unwrap(),
            "{n}"
        );
    }
    assert_eq!(a.since(0, 100).unwrap(), b.since(0, 100).unwrap());
    assert_eq!(a.since(2, 2).unwrap(), b.since(2, 2).unwrap());
    assert_eq!(a.newest(3).unwrap(), b.newest(3).unwrap());
    for seq in 0..8 {
        assert_eq!(
            a.receipt_at(seq).unwrap(),
            b.receipt_at(seq).unwrap(),
            "#{seq}"
        );
    }
    let (va, vb) = (verify_ledger(a).unwrap(), verify_ledger(b).unwrap());
    assert!(va.is_ok(), "{va:?}");
    assert_eq!(va, vb);
    assert_eq!(export(a), export(b));
}

#[test]
fn an_old_ledger_converts_and_answers_as_before() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Ledger::new(store::open(&dir.path().join("new.redb")).unwrap()).unwrap();
    let h = build_history(&reference);
    let old_path = dir.path().join("old.redb");
    write_old(&old_path, &reference, &h);

    // Read-only, the old tables answer.
    let read_only = Ledger::new(store::open_read_only(&old_path).unwrap()).unwrap();
    same_reads(&read_only, &reference, &h);
    drop(read_only);

    let migrated = Ledger::new(store::open(&old_path).unwrap()).unwrap();
    let names: Vec<String> = {
        let tx = migrated.db().begin_read().unwrap();
        tx.list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect()
    };
    for old in [
        OLD_NONCES.name(),
        OLD_UNCONFIRMED.name(),
        OLD_CONFIRMED_BY.name(),
        OLD_ANSWERED.name(),
        OLD_PROOFS.name(),
    ] {
        assert!(!names.iter().any(|n| n == old), "{old} is left: {names:?}");
    }
    same_reads(&migrated, &reference, &h);
    for l in [&migrated, &reference] {
        for n in h
            .receipts
            .iter()
            .map(|r| r.receipt().nonce.as_str())
            .chain(["ab".repeat(16).as_str()])
        {
            assert_eq!(
                l.confirmation_of(n).unwrap(),
                reference.confirmation_of(n).unwrap(),
                "{n}"
            );
        }
    }
    assert_eq!(
        migrated
            .confirmation_of(&h.receipts[1].receipt().nonce)
            .unwrap(),
        Some(h.confirmation.clone())
    );
    assert_eq!(migrated.owed().unwrap(), reference.owed().unwrap());
    for r in [&h.r1, &h.r2] {
        assert_eq!(
            migrated.unsettled_for(&r.public(), 10).unwrap(),
            reference.unsettled_for(&r.public(), 10).unwrap()
        );
    }

    // Writes after the conversion: replays, a second receipt for a request, confirmations.
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Any,
    };
    let replay = accept(h.receipts[0].clone(), &rules).unwrap();
    let mut again = crate::core::protocol::receipt_sample(h.worker.public(), h.r1.public(), NOW);
    again.job_id = "again".into();
    let again = accept(SignedReceipt::sign(again, &h.worker).unwrap(), &rules)
        .unwrap()
        .answering(h.proofs[0].clone());
    let batch = [replay, again];
    assert_eq!(
        migrated.append(&batch).unwrap(),
        reference.append(&batch).unwrap()
    );
    let next = [
        confirmation(
            &h.r1,
            &h.worker,
            vec![
                ConfirmedReceipt::of(&h.receipts[0]),
                ConfirmedReceipt::of(&h.receipts[1]),
            ],
        ),
        confirmation(
            &h.r2,
            &h.worker,
            h.receipts[2..].iter().map(ConfirmedReceipt::of).collect(),
        ),
    ];
    for c in &next {
        let me = h.worker.public();
        assert_eq!(
            migrated.confirm(c, &me).unwrap(),
            reference.confirm(c, &me).unwrap()
        );
    }
    same_reads(&migrated, &reference, &h);
    assert_eq!(migrated.owed().unwrap(), reference.owed().unwrap());
    assert_eq!(
        migrated.expire_pending(NOW + 3 * SETTLE_WINDOW_MS).unwrap(),
        reference
            .expire_pending(NOW + 3 * SETTLE_WINDOW_MS)
            .unwrap()
    );
    same_reads(&migrated, &reference, &h);

    // A second open finds nothing to convert.
    drop(migrated);
    let reopened = Ledger::new(store::open(&old_path).unwrap()).unwrap();
    same_reads(&reopened, &reference, &h);
}

#[test]
fn a_read_only_old_ledger_asks_for_an_upgrade_where_it_cannot_answer() {
    let dir = tempfile::tempdir().unwrap();
    let reference = Ledger::new(store::open(&dir.path().join("new.redb")).unwrap()).unwrap();
    let h = build_history(&reference);
    let old_path = dir.path().join("old.redb");
    write_old(&old_path, &reference, &h);
    let read_only = Ledger::new(store::open_read_only(&old_path).unwrap()).unwrap();
    let err = read_only.owed().unwrap_err();
    assert!(err.to_string().contains("start the node once"), "{err}");
    drop(read_only);
    let db = redb::ReadOnlyDatabase::open(&old_path).unwrap();
    let tx = db.begin_read().unwrap();
    assert!(
        tx.list_tables()
            .unwrap()
            .any(|t| t.name() == OLD_NONCES.name())
    );
}
