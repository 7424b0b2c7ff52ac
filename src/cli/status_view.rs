//! The text form of `lobstah status`: a node snapshot as a short report.

use std::fmt::Write;

use super::output::thousands;
use crate::core::node::{PeerHealth, Snapshot};

fn short(pubkey: &str) -> String {
    pubkey.chars().take(12).collect::<String>() + "…"
}

/// Credits and counts are `u64`; a hostile receipt can carry a count past `i64::MAX`,
/// which is shown as that maximum rather than wrapping negative.
fn count(value: u64) -> String {
    thousands(i64::try_from(value).unwrap_or(i64::MAX))
}

/// ` (320 pending)` after a figure part of which awaits confirmation, or nothing.
fn pending(value: u64) -> String {
    if value == 0 {
        String::new()
    } else {
        format!(" ({} pending)", count(value))
    }
}

/// What a peer did that the operator should know about: receipts of its that were
/// refused (bad signature, replayed, implausible) and times it turned us away (credit,
/// limits, friends list). `None` when both are zero.
fn misconduct(refused: u64, declined: u64) -> Option<String> {
    let plural =
        |n: u64, one: &str, many: &str| format!("{} {}", count(n), if n == 1 { one } else { many });
    let parts: Vec<String> = [
        (refused > 0).then(|| plural(refused, "receipt refused", "receipts refused")),
        (declined > 0).then(|| format!("declined us {}", plural(declined, "time", "times"))),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn seconds_left(until_ms: u64, now_ms: u64) -> String {
    format!("{} s", until_ms.saturating_sub(now_ms).div_ceil(1000))
}

/// The report; `pid` comes from node.json when known.
pub(super) fn render(s: &Snapshot, pid: Option<u32>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lobstah node {}{}{}",
        s.identity,
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
        if s.demo { " — DEMO" } else { "" }
    );
    if let Some(error) = &s.ledger_error {
        let _ = writeln!(
            out,
            "  !! {error}: no new work is taken until it can be written"
        );
    }
    let dash = || "-".to_string();
    let not_run = "-  (not run by this node)";
    match &s.router_url {
        Some(router) => {
            let _ = writeln!(
                out,
                "  router       {router}  (OpenAI base URL {router}/v1)"
            );
        }
        None => {
            let _ = writeln!(out, "  router       {not_run}");
        }
    }
    let _ = writeln!(
        out,
        "  worker       {}",
        s.worker_url.as_deref().unwrap_or(not_run)
    );
    let _ = writeln!(
        out,
        "  control      {}",
        s.control_url.clone().unwrap_or_else(dash)
    );
    let e = &s.engine;
    let engine_state = if s.worker_url.is_none() {
        "(this node runs no worker)".to_string()
    } else if e.ok {
        format!(
            "ok, models: {}",
            if e.models.is_empty() {
                "none".into()
            } else {
                e.models.join(", ")
            }
        )
    } else {
        format!(
            "not ok: {}",
            e.error.clone().unwrap_or_else(|| "unknown".into())
        )
    };
    let _ = writeln!(
        out,
        "  engine       {}{}  {engine_state}",
        e.kind,
        e.url
            .as_ref()
            .map(|u| format!(" at {u}"))
            .unwrap_or_default()
    );
    let a = &s.advertising;
    let targets = if a.targets.is_empty() {
        "no trackers configured".to_string()
    } else {
        a.targets.join(", ")
    };
    let heartbeat = a
        .last_heartbeat
        .as_ref()
        .map(|h| {
            format!(
                "; last: {} ({})",
                h.detail,
                if h.ok { "ok" } else { "failed" }
            )
        })
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  advertising  {}  ({targets}){heartbeat}",
        if a.on { "ON" } else { "off" }
    );
    let q = &s.queue;
    // The queue and the jobs served are the worker's: a router alone has neither.
    let serves = s.worker_url.is_some();
    if serves {
        let _ = writeln!(
            out,
            "  queue        {} running, {} waiting (concurrency {})",
            q.running, q.waiting, q.concurrency
        );
    }
    let jobs = [
        ("jobs served ", q.jobs, serves),
        ("jobs sent   ", q.client_jobs, true),
    ];
    for (label, c, _) in jobs.into_iter().filter(|(_, _, shown)| *shown) {
        let _ = writeln!(
            out,
            "  {label} {} queued, {} running, {} done, {} error, {} cancelled",
            c.queued, c.running, c.done, c.error, c.cancelled
        );
    }
    let b = &s.balance;
    let _ = writeln!(
        out,
        "  balance      earned {}{}, spent {}{}, net {}{}, available {} ({} receipts)",
        count(b.earned),
        pending(b.pending_earned),
        count(b.spent),
        pending(b.pending_spent),
        if b.net > 0 { "+" } else { "" },
        thousands(b.net),
        thousands(b.available),
        b.receipts
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "peers ({})", s.peers.len());
    if s.peers.is_empty() {
        let _ = writeln!(
            out,
            "  none yet: add one with the console, or `lobstah peers add` while the node is stopped"
        );
    } else {
        let _ = writeln!(
            out,
            "  {:<16} {:<14} {:<30} {:<12} {:<20} {:>5} {:>8} {:>13}",
            "label", "pubkey", "reached at", "state", "models", "queue", "latency", "served/failed"
        );
        for p in &s.peers {
            let state = match p.health {
                PeerHealth::Ok => "ok".to_string(),
                PeerHealth::Excluded => format!(
                    "excluded {}",
                    p.excluded_until_ms
                        .map(|u| seconds_left(u, s.taken_at_ms))
                        .unwrap_or_default()
                ),
                PeerHealth::Unreachable => "unreachable".to_string(),
                PeerHealth::Unknown => "unknown".to_string(),
            };
            let _ = writeln!(
                out,
                "  {:<16} {:<14} {:<30} {:<12} {:<20} {:>5} {:>8} {:>13}",
                p.label.clone().unwrap_or_else(dash),
                short(&p.pubkey),
                super::peers_cmds::reached_at(p),
                state,
                if p.models.is_empty() {
                    "-".to_string()
                } else {
                    p.models.join(",")
                },
                p.queue_depth.map(|d| d.to_string()).unwrap_or_else(dash),
                p.latency_ms.map(|l| format!("{l} ms")).unwrap_or_else(dash),
                format!("{}/{}", p.served, p.failed),
            );
            if let Some(reason) = &p.unreachable_reason {
                let _ = writeln!(out, "  {:<16} unreachable: {reason}", "");
            }
            if let Some(what) = misconduct(p.refused_receipts, p.declined) {
                let _ = writeln!(out, "  {:<16} {what}", "");
            }
        }
    }
    super::owed_view::render(&mut out, s);
    let _ = writeln!(out);
    let _ = writeln!(out, "exclusions ({})", s.exclusions.len());
    for x in &s.exclusions {
        let _ = writeln!(
            out,
            "  {:<16} {:<14} {} left: {}",
            x.label.clone().unwrap_or_else(dash),
            short(&x.pubkey),
            seconds_left(x.until_ms, s.taken_at_ms),
            x.reason
        );
    }
    if !s.rejections.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "refused receipts ({}), newest first",
            s.rejections.len()
        );
        for r in s.rejections.iter().take(5) {
            let _ = writeln!(out, "  {:<14} {}: {}", short(&r.peer), r.reason, r.detail);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::node::{ExclusionRow, PeerRow};

    #[test]
    fn renders_the_parts_an_operator_looks_for() {
        let mut s = Snapshot {
            identity: "lob1abc".into(),
            router_url: Some("http://127.0.0.1:17475".into()),
            taken_at_ms: 10_000,
            ..Snapshot::default()
        };
        s.balance.earned = 5_120;
        s.balance.pending_earned = 320;
        s.balance.spent = 3_300;
        s.balance.net = 1500;
        s.balance.available = 11_500;
        s.peers.push(PeerRow {
            pubkey: "lob1ffffffffffffffff".into(),
            label: Some("mac".into()),
            url: "http://127.0.0.1:1".into(),
            transport: None,
            link_addrs: Vec::new(),
            path: None,
            rtt_ms: None,
            source: "manual".into(),
            models: vec!["m".into()],
            tier: None,
            health: PeerHealth::Excluded,
            excluded_until_ms: Some(14_500),
            exclusion_reason: Some("timed out".into()),
            unreachable_reason: None,
            queue_depth: Some(2),
            latency_ms: Some(12),
            served: 3,
            failed: 2,
            receipts: 3,
            refused_receipts: 4,
            declined: 12,
        });
        s.exclusions.push(ExclusionRow {
            pubkey: "lob1ffffffffffffffff".into(),
            label: Some("mac".into()),
            reason: "timed out".into(),
            until_ms: 14_500,
        });
        let text = render(&s, Some(42));
        for needle in [
            "lob1abc (pid 42)",
            "OpenAI base URL http://127.0.0.1:17475/v1",
            "advertising  off  (no trackers configured)",
            "net +1,500, available 11,500",
            "excluded 5 s",
            "5 s left: timed out",
            "3/2",
            "earned 5,120 (320 pending), spent 3,300, net +1,500",
            "4 receipts refused, declined us 12 times",
        ] {
            assert!(text.contains(needle), "{needle:?} in\n{text}");
        }
    }

    #[test]
    fn a_node_with_one_role_says_which_and_shows_only_its_parts() {
        let router = Some("http://127.0.0.1:17475".to_string());
        let worker = Some("http://127.0.0.1:17474".to_string());
        // (router, worker, lines expected, lines not expected)
        let cases = [
            (
                router.clone(),
                worker.clone(),
                vec!["queue  ", "jobs served", "jobs sent"],
                vec!["not run by this node"],
            ),
            (
                router.clone(),
                None,
                vec![
                    "worker       -  (not run by this node)",
                    "this node runs no worker",
                    "jobs sent",
                ],
                vec!["queue  ", "jobs served"],
            ),
            (
                None,
                worker.clone(),
                vec![
                    "router       -  (not run by this node)",
                    "queue  ",
                    "jobs served",
                ],
                vec!["OpenAI base URL"],
            ),
        ];
        for (router_url, worker_url, shown, hidden) in cases {
            let s = Snapshot {
                router_url: router_url.clone(),
                worker_url: worker_url.clone(),
                ..Snapshot::default()
            };
            let text = render(&s, None);
            for line in shown {
                assert!(
                    text.contains(line),
                    "{line:?} for {router_url:?}/{worker_url:?} in\n{text}"
                );
            }
            for line in hidden {
                assert!(
                    !text.contains(line),
                    "{line:?} for {router_url:?}/{worker_url:?} in\n{text}"
                );
            }
        }
    }

    #[test]
    fn a_ledger_that_cannot_be_written_is_said_first() {
        let mut s = Snapshot::default();
        assert!(!render(&s, None).contains("ledger unavailable"));
        s.ledger_error = Some("ledger unavailable: disk full".into());
        let text = render(&s, None);
        let second = text.lines().nth(1).unwrap_or_default();
        assert!(
            second.contains("ledger unavailable: disk full") && second.contains("no new work"),
            "{text}"
        );
    }

    #[test]
    fn counters_and_pending_credits_appear_only_when_there_are_some() {
        let mut s = Snapshot::default();
        s.balance.earned = 900;
        s.balance.spent = 400;
        s.balance.pending_spent = 150;
        let peer = |label: &str, refused_receipts, declined| PeerRow {
            pubkey: "lob1ffffffffffffffff".into(),
            label: Some(label.into()),
            url: "http://127.0.0.1:1".into(),
            transport: None,
            link_addrs: Vec::new(),
            path: None,
            rtt_ms: None,
            source: "manual".into(),
            models: vec![],
            tier: None,
            health: PeerHealth::Ok,
            excluded_until_ms: None,
            exclusion_reason: None,
            unreachable_reason: None,
            queue_depth: None,
            latency_ms: None,
            served: 5,
            failed: 0,
            receipts: 5,
            refused_receipts,
            declined,
        };
        s.peers = vec![
            peer("honest", 0, 0),
            peer("stingy", 0, 1),
            peer("liar", 1, 0),
        ];
        let text = render(&s, None);
        assert!(
            text.contains("earned 900, spent 400 (150 pending), net"),
            "{text}"
        );
        let under = |label: &str| {
            let mut lines = text.lines().skip_while(|l| !l.contains(label));
            lines.next();
            lines.next().unwrap_or_default().to_string()
        };
        assert!(
            under("honest").contains("stingy"),
            "no line for a clean peer:\n{text}"
        );
        assert_eq!(under("stingy").trim(), "declined us 1 time", "{text}");
        assert_eq!(under("liar").trim(), "1 receipt refused", "{text}");
    }
}
