//! Table tests for the selector: each case is a fixture of peers and a script of events,
//! candidate queries and state checks, with what each step must produce. This file holds
//! the harness and the read-side views; the tables live in `exclusion` and `ordering`.

mod exclusion;
mod ordering;

use super::*;

fn pk(id: u8) -> PublicKey {
    PublicKey::from_bytes([id; 32])
}

/// A peer as its cached capacity describes it.
struct Spec {
    id: u8,
    models: &'static [&'static str],
    queue_depth: u32,
    tier: Tier,
    reachable: bool,
}

fn peer(id: u8, queue_depth: u32) -> Spec {
    Spec {
        id,
        models: &["m"],
        queue_depth,
        tier: Tier::Interactive,
        reachable: true,
    }
}

enum Step {
    Event(SelectionEvent, Vec<Effect>),
    Candidates {
        model: &'static str,
        prefer: Tier,
        now: u64,
        expect: Vec<u8>,
    },
    State(u8, u64, PeerState),
}

fn ok(id: u8, latency_ms: u64, now_ms: u64, expect: Vec<Effect>) -> Step {
    let peer = pk(id);
    Step::Event(
        SelectionEvent::Succeeded {
            peer,
            latency_ms,
            now_ms,
        },
        expect,
    )
}

fn reason(now_ms: u64) -> String {
    format!("boom at {now_ms}")
}

fn fail(id: u8, now_ms: u64, expect: Vec<Effect>) -> Step {
    let (peer, reason) = (pk(id), reason(now_ms));
    Step::Event(
        SelectionEvent::Failed {
            peer,
            reason,
            now_ms,
        },
        expect,
    )
}

fn distrust(id: u8, now_ms: u64, expect: Vec<Effect>) -> Step {
    let (peer, reason) = (pk(id), reason(now_ms));
    Step::Event(
        SelectionEvent::Distrusted {
            peer,
            reason,
            now_ms,
        },
        expect,
    )
}

fn tick(now_ms: u64, expect: Vec<Effect>) -> Step {
    Step::Event(SelectionEvent::Tick { now_ms }, expect)
}

fn forget(id: u8, expect: Vec<Effect>) -> Step {
    Step::Event(SelectionEvent::Forget { peer: pk(id) }, expect)
}

fn cands(now: u64, expect: Vec<u8>) -> Step {
    cands_for("m", Tier::Interactive, now, expect)
}

fn cands_for(model: &'static str, prefer: Tier, now: u64, expect: Vec<u8>) -> Step {
    Step::Candidates {
        model,
        prefer,
        now,
        expect,
    }
}

/// `Excluded` caused by the failure reported at `failed_at`.
fn excluded(id: u8, failed_at: u64, until_ms: u64) -> Effect {
    let (peer, reason) = (pk(id), reason(failed_at));
    Effect::Excluded {
        peer,
        until_ms,
        reason,
    }
}

fn readmitted(id: u8) -> Effect {
    Effect::Readmitted { peer: pk(id) }
}

fn restored(id: u8) -> Effect {
    Effect::Restored { peer: pk(id) }
}

struct Case {
    name: &'static str,
    config: SelectionConfig,
    peers: Vec<Spec>,
    steps: Vec<Step>,
}

fn case(name: &'static str, peers: Vec<Spec>, steps: Vec<Step>) -> Case {
    Case {
        name,
        config: SelectionConfig::default(),
        peers,
        steps,
    }
}

fn run(case: Case) {
    let models: Vec<Vec<String>> = case
        .peers
        .iter()
        .map(|s| s.models.iter().map(|m| m.to_string()).collect())
        .collect();
    let views: Vec<PeerView<'_>> = case
        .peers
        .iter()
        .zip(&models)
        .map(|(s, models)| PeerView {
            pubkey: pk(s.id),
            models,
            queue_depth: s.queue_depth,
            tier: s.tier,
            reachable: s.reachable,
        })
        .collect();
    let mut selector = Selector::new(case.config);
    for (i, step) in case.steps.into_iter().enumerate() {
        let at = format!("case {:?}, step {i}", case.name);
        match step {
            Step::Event(event, expect) => assert_eq!(selector.handle(event), expect, "{at}"),
            Step::Candidates {
                model,
                prefer,
                now,
                expect,
            } => {
                let got = selector.candidates(model, prefer, &views, now);
                let expect: Vec<PublicKey> = expect.into_iter().map(pk).collect();
                assert_eq!(got, expect, "{at}");
            }
            Step::State(id, now, state) => assert_eq!(selector.state(&pk(id), now), state, "{at}"),
        }
    }
}

#[test]
fn views_record_reason_until_and_counters() {
    let mut s = Selector::default();
    let (a, b) = (pk(1), pk(2));
    let failed = |peer, reason: &str, now_ms| SelectionEvent::Failed {
        peer,
        reason: reason.into(),
        now_ms,
    };
    s.handle(SelectionEvent::Succeeded {
        peer: a,
        latency_ms: 200,
        now_ms: 0,
    });
    s.handle(failed(a, "connection refused", 1_000));
    s.handle(failed(a, "HTTP 502", 2_000));
    s.handle(failed(b, "timeout", 500));
    s.handle(failed(b, "timeout again", 1_500));

    assert_eq!(
        s.exclusions(11_000),
        vec![
            ExclusionView {
                peer: b,
                reason: "timeout again".into(),
                until_ms: 31_500,
                remaining_ms: 20_500,
            },
            ExclusionView {
                peer: a,
                reason: "HTTP 502".into(),
                until_ms: 32_000,
                remaining_ms: 21_000,
            },
        ]
    );
    assert_eq!(s.exclusions(31_500).len(), 1);
    assert!(s.exclusions(32_000).is_empty());

    let health = s.health(&a).unwrap();
    assert_eq!(
        health,
        PeerHealthView {
            peer: a,
            served: 1,
            failed: 2,
            consecutive_failures: 2,
            ewma_latency_ms: Some(200),
            exclusion: Some(Exclusion {
                reason: "HTTP 502".into(),
                since_ms: 2_000,
                until_ms: 32_000,
            }),
            half_open: false,
            times_excluded: 1,
            last_error: Some("HTTP 502".into()),
        }
    );
    assert_eq!(s.health(&pk(9)), None);
    let all: Vec<PublicKey> = s.health_all().iter().map(|h| h.peer).collect();
    assert_eq!(all, vec![a, b]);

    let json = serde_json::to_value(&health).unwrap();
    assert_eq!(json["ewmaLatencyMs"], 200);
    assert_eq!(json["exclusion"]["untilMs"], 32_000);
    assert_eq!(
        serde_json::to_value(PeerState::Excluded).unwrap(),
        "excluded"
    );
}
