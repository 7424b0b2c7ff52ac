//! Property tests: random event sequences over a small set of peers, checking after every
//! step that candidates respect exclusions and capability. Exclusions are tracked from the
//! emitted effects, not read back from the selector, so the check is independent of its
//! internals.

use std::collections::{HashMap, HashSet};

use proptest::prelude::*;

use super::*;

const PEERS: u8 = 5;
const MODELS: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
struct PeerSpec {
    models: Vec<String>,
    queue_depth: u32,
    tier: Tier,
    reachable: bool,
}

#[derive(Debug, Clone)]
enum Op {
    Succeed { peer: u8, latency_ms: u64 },
    Fail { peer: u8 },
    Tick,
    Forget { peer: u8 },
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![
        Just(Tier::Interactive),
        Just(Tier::Batch),
        Just(Tier::BestEffort)
    ]
}

fn peer_spec() -> impl Strategy<Value = PeerSpec> {
    (
        proptest::sample::subsequence(MODELS.to_vec(), 0..=MODELS.len()),
        0u32..4,
        tier(),
        proptest::bool::weighted(0.85),
    )
        .prop_map(|(models, queue_depth, tier, reachable)| PeerSpec {
            models: models.into_iter().map(String::from).collect(),
            queue_depth,
            tier,
            reachable,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..PEERS, 0u64..2_000).prop_map(|(peer, latency_ms)| Op::Succeed { peer, latency_ms }),
        4 => (0..PEERS).prop_map(|peer| Op::Fail { peer }),
        2 => Just(Op::Tick),
        1 => (0..PEERS).prop_map(|peer| Op::Forget { peer }),
    ]
}

fn config() -> impl Strategy<Value = SelectionConfig> {
    // Short exclusions against small clock steps, so that steps often land exactly on an
    // exclusion's end, where off-by-one mistakes live.
    (0u32..4, 1u64..20).prop_map(|(failures_to_exclude, exclusion_ms)| SelectionConfig {
        failures_to_exclude,
        exclusion_ms,
        ..SelectionConfig::default()
    })
}

fn pk(id: u8) -> PublicKey {
    PublicKey::from_bytes([id; 32])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn candidates_respect_exclusions_and_capability(
        config in config(),
        specs in proptest::collection::vec(peer_spec(), PEERS as usize),
        // Each op comes with how far the clock moves before it (time never runs back).
        ops in proptest::collection::vec((0u64..8, op()), 1..80),
        model_pick in proptest::collection::vec(0..MODELS.len(), 80),
        prefer in tier(),
        // Some peers listed twice, to check nothing is offered twice.
        duplicate in proptest::collection::vec(0..PEERS, 0..3),
    ) {
        let mut views: Vec<PeerView<'_>> = specs
            .iter()
            .enumerate()
            .map(|(i, s)| PeerView {
                pubkey: pk(i as u8),
                models: &s.models,
                queue_depth: s.queue_depth,
                tier: s.tier,
                reachable: s.reachable,
            })
            .collect();
        for d in duplicate {
            views.push(views[usize::from(d)]);
        }
        let mut selector = Selector::new(config);
        // Exclusions in force as announced by the effects: peer → until.
        let mut excluded_until: HashMap<PublicKey, u64> = HashMap::new();
        let mut now = 0u64;
        for (step, (advance, op)) in ops.into_iter().enumerate() {
            now += advance;
            let event = match op {
                Op::Succeed { peer, latency_ms } => SelectionEvent::Succeeded {
                    peer: pk(peer),
                    latency_ms,
                    now_ms: now,
                },
                Op::Fail { peer } => SelectionEvent::Failed {
                    peer: pk(peer),
                    reason: format!("failure {step}"),
                    now_ms: now,
                },
                Op::Tick => SelectionEvent::Tick { now_ms: now },
                Op::Forget { peer } => SelectionEvent::Forget { peer: pk(peer) },
            };
            for effect in selector.handle(event) {
                match effect {
                    Effect::Excluded { peer, until_ms, .. } => {
                        prop_assert!(until_ms > now, "an exclusion must lie in the future");
                        excluded_until.insert(peer, until_ms);
                    }
                    Effect::Readmitted { peer } => {
                        let until = excluded_until.remove(&peer);
                        prop_assert!(until.is_some_and(|u| u <= now), "readmitted early or twice");
                    }
                    Effect::Forgotten { peer } => {
                        excluded_until.remove(&peer);
                    }
                    Effect::Restored { .. } => {}
                }
            }

            let model = MODELS[model_pick[step]];
            let got = selector.candidates(model, prefer, &views, now);
            let unique: HashSet<PublicKey> = got.iter().copied().collect();
            prop_assert_eq!(unique.len(), got.len(), "a peer appears twice: {:?}", got);
            let is_excluded = |p: &PublicKey| excluded_until.get(p).is_some_and(|u| now < *u);
            // The first view of each pubkey is the one that counts.
            let mut first_seen = HashSet::new();
            let eligible: HashSet<PublicKey> = views
                .iter()
                .filter(|v| first_seen.insert(v.pubkey))
                .filter(|v| v.reachable && v.serves(model) && !is_excluded(&v.pubkey))
                .map(|v| v.pubkey)
                .collect();
            // Exactly the eligible peers: none excluded or incapable, none capable left out.
            prop_assert_eq!(&unique, &eligible);
            for p in &got {
                prop_assert_ne!(selector.state(p, now), PeerState::Excluded);
            }
            let listed: HashSet<PublicKey> =
                selector.exclusions(now).iter().map(|e| e.peer).collect();
            let expected: HashSet<PublicKey> =
                excluded_until.keys().filter(|p| is_excluded(p)).copied().collect();
            prop_assert_eq!(listed, expected);
            // The preferred tier always leads.
            let tiers: Vec<bool> = got
                .iter()
                .filter_map(|p| views.iter().find(|v| v.pubkey == *p))
                .map(|v| v.tier == prefer)
                .collect();
            prop_assert!(tiers.windows(2).all(|w| w[0] || !w[1]), "tier order {:?}", tiers);
        }
    }
}
