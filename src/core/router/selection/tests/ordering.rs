//! Candidate order: tier preference, queue depth, latency, rotation among equals, and
//! which peers are left out.

use super::*;

fn tiered(id: u8, tier: Tier, queue_depth: u32) -> Spec {
    Spec {
        tier,
        ..peer(id, queue_depth)
    }
}

#[test]
fn candidate_order_table() {
    let three_equal = || vec![peer(1, 0), peer(2, 0), peer(3, 0)];
    let cases = vec![
        case(
            "the preferred tier leads even when busier; others still follow",
            vec![
                tiered(1, Tier::Batch, 0),
                tiered(2, Tier::Interactive, 5),
                tiered(3, Tier::BestEffort, 1),
            ],
            vec![
                cands_for("m", Tier::Interactive, 0, vec![2, 1, 3]),
                cands_for("m", Tier::Batch, 0, vec![1, 3, 2]),
                cands_for("m", Tier::BestEffort, 0, vec![3, 1, 2]),
            ],
        ),
        case(
            "lower queue depth first",
            vec![peer(1, 3), peer(2, 1), peer(3, 2)],
            vec![cands(0, vec![2, 3, 1])],
        ),
        case(
            "lower latency first at equal queue depth",
            three_equal(),
            vec![
                ok(1, 500, 0, vec![]),
                ok(2, 100, 0, vec![]),
                ok(3, 300, 0, vec![]),
                cands(1, vec![2, 3, 1]),
            ],
        ),
        case(
            "a slow peer back from an exclusion is tried first, then ranked by its new latency",
            vec![peer(1, 0), peer(2, 0)],
            vec![
                ok(1, 900, 0, vec![]),
                ok(2, 10, 0, vec![]),
                fail(1, 1, vec![]),
                fail(1, 2, vec![excluded(1, 2, 30_002)]),
                cands(3, vec![2]),
                cands(30_002, vec![1, 2]),
                ok(1, 5, 30_003, vec![readmitted(1), restored(1)]),
                cands(30_004, vec![1, 2]),
                ok(2, 10, 30_005, vec![]),
                ok(1, 900, 30_006, vec![]),
                cands(30_007, vec![2, 1]),
            ],
        ),
        case(
            "queue depth outranks latency",
            vec![peer(1, 0), peer(2, 1)],
            vec![
                ok(1, 900, 0, vec![]),
                ok(2, 10, 0, vec![]),
                cands(1, vec![1, 2]),
            ],
        ),
        case(
            "a peer with no latency yet is tried before measured ones",
            vec![peer(1, 0), peer(2, 0)],
            vec![ok(1, 100, 0, vec![]), cands(1, vec![2, 1])],
        ),
        case(
            "latencies within 20% are equal and rotate; a slower one stays last",
            three_equal(),
            vec![
                ok(1, 100, 0, vec![]),
                ok(2, 115, 0, vec![]),
                ok(3, 300, 0, vec![]),
                cands(1, vec![1, 2, 3]),
                cands(1, vec![2, 1, 3]),
                cands(1, vec![1, 2, 3]),
            ],
        ),
        case(
            "equal peers each come first in turn",
            three_equal(),
            vec![
                cands(0, vec![1, 2, 3]),
                cands(0, vec![2, 3, 1]),
                cands(0, vec![3, 1, 2]),
                cands(0, vec![1, 2, 3]),
            ],
        ),
        case(
            "only peers serving the model",
            vec![
                Spec {
                    models: &["a"],
                    ..peer(1, 0)
                },
                Spec {
                    models: &["b"],
                    ..peer(2, 0)
                },
                Spec {
                    models: &["a", "b"],
                    ..peer(3, 0)
                },
            ],
            vec![
                cands_for("a", Tier::Interactive, 0, vec![1, 3]),
                cands_for("b", Tier::Interactive, 0, vec![3, 2]),
                cands_for("c", Tier::Interactive, 0, vec![]),
                cands_for("A", Tier::Interactive, 0, vec![]),
            ],
        ),
        case(
            "unreachable peers are skipped",
            vec![
                peer(1, 0),
                Spec {
                    reachable: false,
                    ..peer(2, 0)
                },
            ],
            vec![cands(0, vec![1])],
        ),
        case(
            "a peer listed twice is offered once, as first listed",
            vec![peer(1, 5), peer(2, 1), peer(1, 0)],
            vec![cands(0, vec![2, 1])],
        ),
        case("no peers, no candidates", vec![], vec![cands(0, vec![])]),
        // Jobs ask for batch peers (`Tier::Batch`), chat for interactive ones.
        case(
            "a job goes to a batch peer first; chat to an interactive one first",
            vec![
                tiered(1, Tier::Interactive, 0),
                tiered(2, Tier::Batch, 3),
                tiered(3, Tier::Batch, 1),
            ],
            vec![
                cands_for("m", Tier::Batch, 0, vec![3, 2, 1]),
                cands_for("m", Tier::Interactive, 0, vec![1, 3, 2]),
            ],
        ),
        case(
            "with no batch peer a job falls back to any capable peer, least busy first",
            vec![
                tiered(1, Tier::Interactive, 4),
                tiered(2, Tier::BestEffort, 2),
                Spec {
                    models: &["other"],
                    ..tiered(3, Tier::Batch, 0)
                },
            ],
            vec![cands_for("m", Tier::Batch, 0, vec![2, 1])],
        ),
        case(
            "an excluded batch peer leaves jobs to the others until its cooldown ends",
            vec![tiered(1, Tier::Batch, 0), tiered(2, Tier::Interactive, 9)],
            vec![
                fail(1, 10, vec![]),
                fail(1, 20, vec![excluded(1, 20, 30_020)]),
                cands_for("m", Tier::Batch, 30, vec![2]),
                cands_for("m", Tier::Batch, 30_020, vec![1, 2]),
            ],
        ),
        case(
            "an unreachable batch peer is no candidate for jobs",
            vec![
                Spec {
                    reachable: false,
                    ..tiered(1, Tier::Batch, 0)
                },
                tiered(2, Tier::BestEffort, 0),
            ],
            vec![cands_for("m", Tier::Batch, 0, vec![2])],
        ),
    ];
    for c in cases {
        run(c);
    }
}
