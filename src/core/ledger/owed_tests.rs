//! The owed report on a real ledger file: amounts equal to what the credit gate reads,
//! counts and oldest ages per requester, through confirmations, a reopen and a cut.

use super::*;
use crate::core::ledger::{AcceptRules, Party, accept};
use crate::core::protocol::{
    Confirmation, ConfirmedReceipt, Identity, Receipt, SignedConfirmation, SignedReceipt,
};

const MINUTE: u64 = 60_000;
const NOW: u64 = 1_700_000_000_000;

fn receipt(worker: &Identity, requester: &PublicKey, tokens: u64, n: u8, at: u64) -> SignedReceipt {
    let r = Receipt {
        version: 1,
        job_id: format!("job-{n}"),
        nonce: format!("{n:032x}"),
        requester_pubkey: *requester,
        worker_pubkey: worker.public(),
        model: "m".into(),
        input_tokens: tokens,
        output_tokens: 0,
        started_at: at.saturating_sub(1),
        completed_at: at,
    };
    SignedReceipt::sign(r, worker).expect("sign")
}

fn ledgered(ledger: &Ledger, signed: &SignedReceipt, standing: Standing) {
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Any,
    };
    let verified = accept(signed.clone(), &rules)
        .expect("accept")
        .with_standing(standing);
    ledger.append(&[verified]).expect("append");
}

fn confirm(ledger: &Ledger, requester: &Identity, me: &Identity, receipts: &[&SignedReceipt]) {
    let c = Confirmation {
        version: 1,
        requester_pubkey: requester.public(),
        worker_pubkey: me.public(),
        confirmed_at: NOW,
        receipts: receipts.iter().map(|r| ConfirmedReceipt::of(r)).collect(),
    };
    let signed = SignedConfirmation::sign(c, requester).expect("sign");
    ledger.confirm(&signed, &me.public()).expect("confirm");
}

type Row = (PublicKey, u64, u64, Option<u64>);

/// (requester, tokens, receipts, age of the oldest) per row, by the test's clock; also
/// checks every amount against the balance the credit gate reads.
fn table(ledger: &Ledger, now: u64) -> Vec<Row> {
    let report = ledger.owed().expect("owed");
    assert!(!report.partial);
    for row in &report.rows {
        let gate = ledger
            .balance(&row.requester)
            .expect("balance")
            .pending_spent;
        assert_eq!(row.tokens, gate, "the gate's figure for {}", row.requester);
    }
    report
        .rows
        .iter()
        .map(|o| (o.requester, o.tokens, o.receipts, o.age_ms(now)))
        .collect()
}

fn file_ledger(dir: &tempfile::TempDir) -> Ledger {
    let db = crate::core::store::open(&dir.path().join("ledger.redb")).expect("db");
    Ledger::new(db).expect("ledger")
}

#[test]
fn pending_receipts_per_requester_with_the_oldest_age_until_confirmed() {
    let me = Identity::from_seed([1; 32]);
    let alice = Identity::from_seed([2; 32]);
    let bob = Identity::from_seed([3; 32]);
    let stranger = Identity::from_seed([4; 32]);
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = file_ledger(&dir);
    let (a, b, s) = (alice.public(), bob.public(), stranger.public());
    let a1 = receipt(&me, &a, 300, 1, NOW - 7 * MINUTE);
    let a2 = receipt(&me, &a, 200, 2, NOW - 2 * MINUTE);
    let b1 = receipt(&me, &b, 1_000, 3, NOW - MINUTE);
    let cases = [
        (&a1, Standing::Pending),
        (&a2, Standing::Pending),
        (&b1, Standing::Pending),
        // Served to an unsigned request: never charged, so never owed (the gate does
        // not count it either).
        (
            &receipt(&me, &s, 50, 4, NOW - 30 * MINUTE),
            Standing::Anonymous,
        ),
        // Confirmed from the start: nothing owed.
        (
            &receipt(&me, &s, 70, 5, NOW - 40 * MINUTE),
            Standing::Confirmed,
        ),
        // What we spent at alice's worker, as her router verified it.
        (
            &receipt(&alice, &me.public(), 90, 6, NOW),
            Standing::Confirmed,
        ),
    ];
    for (signed, standing) in cases {
        ledgered(&ledger, signed, standing);
    }
    let both = vec![(b, 1_000, 1, Some(MINUTE)), (a, 500, 2, Some(7 * MINUTE))];
    assert_eq!(table(&ledger, NOW), both);
    assert_eq!(ledger.balance(&s).expect("balance").pending_spent, 0);
    // Ages move with the caller's clock alone.
    assert_eq!(table(&ledger, NOW + 3 * MINUTE)[1].3, Some(10 * MINUTE));

    // A confirmation with someone else's signature on the receipt settles nothing.
    let forged = receipt(&alice, &a, 300, 1, NOW - 7 * MINUTE);
    confirm(&ledger, &alice, &me, &[&forged]);
    assert_eq!(table(&ledger, NOW), both);

    let steps: [(&Identity, &SignedReceipt, Vec<Row>); 3] = [
        // The younger receipt becomes alice's oldest.
        (
            &alice,
            &a1,
            vec![(b, 1_000, 1, Some(MINUTE)), (a, 200, 1, Some(2 * MINUTE))],
        ),
        // Bob settles everything: his row goes.
        (&bob, &b1, vec![(a, 200, 1, Some(2 * MINUTE))]),
        (&alice, &a2, vec![]),
    ];
    for (requester, settled, expected) in steps {
        confirm(&ledger, requester, &me, &[settled]);
        assert_eq!(
            table(&ledger, NOW),
            expected,
            "after {}",
            requester.public()
        );
    }
}

#[test]
fn the_report_survives_a_reopen_and_finds_the_oldest_out_of_ledger_order() {
    let me = Identity::from_seed([1; 32]);
    let alice = Identity::from_seed([2; 32]).public();
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let ledger = file_ledger(&dir);
        // A slow request is ledgered after a quick one that finished later.
        ledgered(
            &ledger,
            &receipt(&me, &alice, 40, 1, NOW - MINUTE),
            Standing::Pending,
        );
        ledgered(
            &ledger,
            &receipt(&me, &alice, 60, 2, NOW - 9 * MINUTE),
            Standing::Pending,
        );
    }
    let ledger = file_ledger(&dir);
    assert_eq!(table(&ledger, NOW), [(alice, 100, 2, Some(9 * MINUTE))]);
}

#[test]
fn a_cut_read_keeps_exact_amounts_and_the_oldest_receipts() {
    let me = Identity::from_seed([1; 32]);
    let alice = Identity::from_seed([2; 32]).public();
    let bob = Identity::from_seed([3; 32]).public();
    let dir = tempfile::tempdir().expect("temp dir");
    let ledger = file_ledger(&dir);
    let rows = [
        (&alice, 10, NOW - 5 * MINUTE),
        (&bob, 20, NOW - 4 * MINUTE),
        (&alice, 30, NOW - 3 * MINUTE),
        (&bob, 40, NOW - 2 * MINUTE),
    ];
    for (n, (who, tokens, at)) in rows.into_iter().enumerate() {
        let n = u8::try_from(n).expect("few receipts") + 1;
        ledgered(
            &ledger,
            &receipt(&me, who, tokens, n, at),
            Standing::Pending,
        );
    }
    let cut = ledger.owed_reading(3).expect("owed");
    assert!(cut.partial);
    let got: Vec<Row> = cut
        .rows
        .iter()
        .map(|o| (o.requester, o.tokens, o.receipts, o.age_ms(NOW)))
        .collect();
    assert_eq!(
        got,
        [
            (bob, 60, 1, Some(4 * MINUTE)),
            (alice, 40, 2, Some(5 * MINUTE))
        ]
    );
    assert_eq!(ledger.owed().expect("owed").rows[0].receipts, 2);
}

#[test]
fn an_empty_ledger_owes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert_eq!(
        file_ledger(&dir).owed().expect("owed"),
        OwedReport::default()
    );
}
