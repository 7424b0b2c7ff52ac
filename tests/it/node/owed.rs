//! What a requester owes, end to end: a requester signs chat requests straight to the
//! node's worker and confirms nothing; the node's snapshot, `lobstah status` and
//! `status --json` (over the control API, as an operator reads them) show its tokens
//! and receipt count, and they fall as its confirmations arrive.

use lobstah::core::clock::{Clock, SystemClock};
use lobstah::core::node::{CoreEvent, NodeClient, NodeDeps, OwedRow, Snapshot};
use lobstah::core::protocol::{Identity, PublicKey, SignedReceipt};
use lobstah::core::worker::CONFIRM_PATH;
use serde_json::Value;

use super::support::bin::run;
use super::support::signed::{Sent, confirmation, receipt_of};
use super::support::{chat_body, client};
use super::{start_node, test_config, wait_for};

fn row_of<'a>(snapshot: &'a Snapshot, requester: &PublicKey) -> Option<&'a OwedRow> {
    let key = requester.to_string();
    snapshot.owed.rows.iter().find(|r| r.pubkey == key)
}

/// Whether the event is an owed table whose row for `requester` has `receipts` receipts
/// (`0`: no row at all).
fn owed_with(e: &CoreEvent, requester: &PublicKey, receipts: u64) -> bool {
    let CoreEvent::OwedChanged { owed } = e else {
        return false;
    };
    let key = requester.to_string();
    let found = owed.rows.iter().find(|r| r.pubkey == key);
    match found {
        Some(row) => row.receipts == receipts,
        None => receipts == 0,
    }
}

/// `lobstah ARGS` against the node's home, off the runtime the node runs on.
async fn lobstah(home: &std::path::Path, args: &'static [&'static str]) -> String {
    let home = home.to_path_buf();
    let (ok, text) = tokio::task::spawn_blocking(move || run(&home, args))
        .await
        .expect("the command runs");
    assert!(ok, "lobstah {args:?}: {text}");
    text
}

fn tokens(receipts: &[&SignedReceipt]) -> u64 {
    receipts.iter().map(|r| r.receipt().total_tokens()).sum()
}

#[tokio::test]
async fn unconfirmed_tokens_show_per_requester_until_it_confirms_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), test_config(), NodeDeps::default()).await;
    let mut events = node.subscribe(None).await.unwrap();
    let worker = node.pubkey();
    let requester = Identity::from_seed([42; 32]);
    let who = requester.public();
    let http = client();

    let mut served = Vec::new();
    for _ in 0..2 {
        let sent = Sent::post(
            "/v1/chat/completions",
            &chat_body("synthetic", false),
            &worker,
            Some(&requester),
            &who,
            SystemClock.now_ms(),
        );
        let answer = sent.send(&http, &node.worker_url()).await;
        assert_eq!(answer.status(), 200);
        served.push(receipt_of(&answer));
    }
    let (first, second) = (&served[0], &served[1]);
    let owed = tokens(&[first, second]);
    assert!(owed > 0);

    wait_for(&mut events, "two receipts owed", |e| owed_with(e, &who, 2)).await;
    let snapshot = node.snapshot().await.unwrap();
    let row = row_of(&snapshot, &who).expect("a row for the requester");
    let oldest = first
        .receipt()
        .completed_at
        .min(second.receipt().completed_at);
    assert_eq!(
        (row.tokens, row.receipts, row.oldest_completed_at_ms),
        (owed, 2, Some(oldest))
    );
    assert_eq!(snapshot.owed.cap, Some(50_000));
    // The very figure the credit gate holds against the requester.
    assert_eq!(snapshot.balance.pending_earned, owed);

    let text = lobstah(dir.path(), &["status"]).await;
    let line = text
        .lines()
        .find(|l| l.contains(&who.short()))
        .unwrap_or_else(|| panic!("no row for {} in\n{text}", who.short()));
    let columns: Vec<&str> = line.split_whitespace().collect();
    let figure = |i: usize| columns.get(i).map(|c| c.replace(',', ""));
    assert_eq!(
        (figure(2), figure(3)),
        (Some(owed.to_string()), Some("2".into())),
        "{line}"
    );
    assert!(
        text.contains("owed to this worker (1), unconfirmed; refused at 50,000 tokens"),
        "{text}"
    );
    let json: Value = serde_json::from_str(&lobstah(dir.path(), &["status", "--json"]).await)
        .expect("status --json is JSON");
    assert_eq!(
        json.pointer("/owed/rows/0/pubkey"),
        Some(&Value::from(who.to_string()))
    );
    assert_eq!(
        json.pointer("/owed/rows/0/tokens"),
        Some(&Value::from(owed))
    );
    assert_eq!(json.pointer("/owed/rows/0/receipts"), Some(&Value::from(2)));

    let confirm_url = format!("{}{CONFIRM_PATH}", node.worker_url());
    let steps: [(&SignedReceipt, u64, u64); 2] = [(first, 1, tokens(&[second])), (second, 0, 0)];
    for (settled, left, left_tokens) in steps {
        let c = confirmation(&requester, worker, &[settled], SystemClock.now_ms());
        let answer = http
            .post(&confirm_url)
            .json(&c.to_value())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
        wait_for(&mut events, "a confirmation shown", |e| {
            owed_with(e, &who, left)
        })
        .await;
        let snapshot = node.snapshot().await.unwrap();
        assert_eq!(row_of(&snapshot, &who).map_or(0, |r| r.tokens), left_tokens);
        assert_eq!(snapshot.balance.pending_earned, left_tokens);
    }
    let text = lobstah(dir.path(), &["status"]).await;
    assert!(!text.contains("owed to this worker"), "{text}");
    node.shutdown().await;
}
