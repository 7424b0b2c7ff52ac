//! Both transports side by side (`LOAD_TRANSPORT=both`): an HTTP chain and a link chain
//! in this one process, measured in alternating rounds whose order turns each round, so
//! whatever else runs on the machine falls on both alike. Each figure is the median of
//! its rounds; the last columns put the link against HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Settings;
use crate::chain::{Transport, start_chain, verify_ledgers};
use crate::measure::{Outcome, run};

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The medians of one transport's rounds.
struct Medians {
    rps: f64,
    p50_ms: f64,
    cpu_us: f64,
    errors: u64,
}

impl Medians {
    fn of(rounds: &[Outcome]) -> Self {
        Medians {
            rps: median(rounds.iter().map(Outcome::rps).collect()),
            p50_ms: median(rounds.iter().map(|o| o.percentile_ms(0.5)).collect()),
            cpu_us: median(rounds.iter().map(Outcome::cpu_per_request_us).collect()),
            errors: rounds.iter().map(|o| o.errors).sum(),
        }
    }
}

/// Runs every configuration on both chains, prints the comparison, verifies both
/// chains' ledgers; true on failure.
pub async fn compare(s: Settings) -> bool {
    let chains = [
        start_chain(s.worker_slots, Transport::Http).await,
        start_chain(s.worker_slots, Transport::Link).await,
    ];
    let served = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let direct_ok = Arc::new(AtomicU64::new(0));
    println!(
        "load, router → worker over HTTP and over a peer link (iroh), side by side: median of {} \
         alternating rounds of {} s after {} ms warm-up; {} cores\n\
         (cpu µs: process CPU time per request, clients and servers included; +p50: the chain's \
         p50 above the bare engine's)",
        s.rounds,
        s.measure.as_secs_f64(),
        s.warmup.as_millis(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    crate::crypto_floor();
    println!(
        "{:<6} {:>7} | {:>9} {:>7} {:>6} | {:>9} {:>7} {:>6} | {:>9} {:>7} {:>6} | {:>11} {:>8}",
        "mode",
        "clients",
        "engine/s",
        "p50 ms",
        "",
        "http/s",
        "+p50 ms",
        "cpu µs",
        "link/s",
        "+p50 ms",
        "cpu µs",
        "link req/s",
        "link cpu"
    );
    for &stream in &s.modes {
        for &clients in &s.clients {
            let mut direct = Vec::new();
            let mut rounds: [Vec<Outcome>; 2] = [Vec::new(), Vec::new()];
            for round in 0..s.rounds {
                let engine = &chains[0].engine_url;
                direct.push(run(engine, stream, clients, &s, &direct_ok).await);
                let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let outcome = run(&chains[i].router_url, stream, clients, &s, &served[i]).await;
                    rounds[i].push(outcome);
                }
            }
            let engine = Medians::of(&direct);
            let [http, link] = [Medians::of(&rounds[0]), Medians::of(&rounds[1])];
            println!(
                "{:<6} {:>7} | {:>9.0} {:>7.2} {:>6} | {:>9.0} {:>7.2} {:>6.0} | {:>9.0} {:>7.2} {:>6.0} | {:>+10.1}% {:>+7.1}%{}",
                if stream { "stream" } else { "whole" },
                clients,
                engine.rps,
                engine.p50_ms,
                "",
                http.rps,
                http.p50_ms - engine.p50_ms,
                http.cpu_us,
                link.rps,
                link.p50_ms - engine.p50_ms,
                link.cpu_us,
                100.0 * (link.rps / http.rps - 1.0),
                100.0 * (link.cpu_us / http.cpu_us - 1.0),
                match engine.errors + http.errors + link.errors {
                    0 => String::new(),
                    n => format!("  ({n} errors)"),
                },
            );
        }
    }
    let mut failed = false;
    for (chain, count) in chains.iter().zip(&served) {
        failed |= verify_ledgers(chain, count.load(Ordering::Relaxed)).await;
    }
    failed
}
