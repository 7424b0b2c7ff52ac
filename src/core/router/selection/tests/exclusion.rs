//! Exclusion, cooldown, probation and forgetting, as event scripts.

use super::*;

fn two_peers() -> Vec<Spec> {
    // Different queue depths, so the order is fixed and rotation does not show.
    vec![peer(1, 0), peer(2, 1)]
}

#[test]
fn exclusion_and_readmission_table() {
    let cases = vec![
        case(
            "one failure does not exclude",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                cands(1, vec![1, 2]),
                Step::State(1, 1, PeerState::Ok),
            ],
        ),
        case(
            "two consecutive failures exclude for 30 s with the last reason",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                cands(101, vec![2]),
                Step::State(1, 101, PeerState::Excluded),
                Step::State(2, 101, PeerState::Unknown),
            ],
        ),
        case(
            "a lie excludes at once, even right after a success",
            two_peers(),
            vec![
                ok(1, 50, 10, vec![]),
                distrust(1, 20, vec![excluded(1, 20, 30_020)]),
                cands(21, vec![2]),
                Step::State(1, 21, PeerState::Excluded),
            ],
        ),
        case(
            "a lie while already excluded does not extend the exclusion",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                distrust(1, 200, vec![]),
                tick(30_100, vec![readmitted(1)]),
            ],
        ),
        case(
            "a success resets the failure count",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                ok(1, 50, 10, vec![]),
                fail(1, 20, vec![]),
                cands(21, vec![1, 2]),
                fail(1, 30, vec![excluded(1, 30, 30_030)]),
            ],
        ),
        case(
            "the cooldown ends at until: a tick readmits, candidates include it again",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                tick(30_099, vec![]),
                cands(30_099, vec![2]),
                tick(30_100, vec![readmitted(1)]),
                tick(30_101, vec![]),
                cands(30_100, vec![1, 2]),
            ],
        ),
        case(
            "an expired exclusion is a candidate even before the tick",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                cands(30_100, vec![1, 2]),
                Step::State(1, 30_100, PeerState::Ok),
            ],
        ),
        case(
            "on probation one failure excludes again at once",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                tick(30_100, vec![readmitted(1)]),
                fail(1, 30_200, vec![excluded(1, 30_200, 60_200)]),
                cands(30_201, vec![2]),
            ],
        ),
        case(
            "a failure after the cooldown but before any tick readmits then re-excludes",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                fail(1, 40_000, vec![readmitted(1), excluded(1, 40_000, 70_000)]),
            ],
        ),
        case(
            "a success on probation restores fully: two failures needed again",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                tick(30_100, vec![readmitted(1)]),
                ok(1, 80, 30_200, vec![restored(1)]),
                ok(1, 80, 30_250, vec![]),
                fail(1, 30_300, vec![]),
                fail(1, 30_400, vec![excluded(1, 30_400, 60_400)]),
            ],
        ),
        case(
            "outcomes of requests begun before the exclusion do not change it",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                fail(1, 200, vec![]),
                ok(1, 50, 300, vec![]),
                cands(400, vec![2]),
                tick(30_100, vec![readmitted(1)]),
                ok(1, 50, 30_200, vec![restored(1)]),
            ],
        ),
        case(
            "any event carrying the time readmits every peer that is due, in pubkey order",
            two_peers(),
            vec![
                fail(2, 0, vec![]),
                fail(2, 10, vec![excluded(2, 10, 30_010)]),
                fail(1, 20, vec![]),
                fail(1, 30, vec![excluded(1, 30, 30_030)]),
                ok(3, 5, 30_030, vec![readmitted(1), readmitted(2)]),
            ],
        ),
        case(
            "forget drops the state of a known peer only",
            two_peers(),
            vec![
                fail(1, 0, vec![]),
                fail(1, 100, vec![excluded(1, 100, 30_100)]),
                forget(1, vec![Effect::Forgotten { peer: pk(1) }]),
                Step::State(1, 200, PeerState::Unknown),
                cands(200, vec![1, 2]),
                forget(1, vec![]),
                forget(9, vec![]),
                fail(1, 300, vec![]),
            ],
        ),
        Case {
            name: "configurable: 3 failures, 10 s",
            config: SelectionConfig {
                failures_to_exclude: 3,
                exclusion_ms: 10_000,
                ..SelectionConfig::default()
            },
            peers: two_peers(),
            steps: vec![
                fail(1, 0, vec![]),
                fail(1, 1, vec![]),
                cands(2, vec![1, 2]),
                fail(1, 2, vec![excluded(1, 2, 10_002)]),
                tick(10_001, vec![]),
                tick(10_002, vec![readmitted(1)]),
            ],
        },
        Case {
            name: "a threshold of 0 acts as 1",
            config: SelectionConfig {
                failures_to_exclude: 0,
                ..SelectionConfig::default()
            },
            peers: two_peers(),
            steps: vec![fail(1, 0, vec![excluded(1, 0, 30_000)])],
        },
    ];
    for c in cases {
        run(c);
    }
}
