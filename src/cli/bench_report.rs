//! What `lobstah bench` found, as a table for people and as JSON for scripts.

use std::fmt::Write as _;

use serde::Serialize;

use super::bench_cmds::Load;
use super::bench_probe::{CryptoFloor, Usage, mib};
use crate::core::store::TableSize;

/// Resident memory of both servers after this many requests.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Sample {
    pub requests: u64,
    pub worker_rss_bytes: u64,
    pub router_rss_bytes: u64,
}

impl Sample {
    pub(super) fn at(requests: u64, worker: Usage, router: Usage) -> Self {
        Sample {
            requests,
            worker_rss_bytes: worker.rss_bytes,
            router_rss_bytes: router.rss_bytes,
        }
    }
}

/// A `ledger verify` run over one side's ledger.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerifyRun {
    pub ok: bool,
    pub seconds: f64,
    pub peak_rss_bytes: u64,
}

/// One side's ledger after the run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LedgerSide {
    pub receipts: u64,
    /// The file's length.
    pub file_bytes: u64,
    /// Its allocated blocks (redb grows a file ahead of its data; the tail is sparse).
    pub disk_bytes: u64,
    /// Pages redb has allocated inside the file.
    pub allocated_bytes: u64,
    pub tables: Vec<TableSize>,
    pub verify: VerifyRun,
}

impl LedgerSide {
    fn per_receipt(&self, bytes: u64) -> f64 {
        bytes as f64 / self.receipts.max(1) as f64
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Report {
    pub requests: u64,
    pub clients: usize,
    pub stream: bool,
    pub floor: CryptoFloor,
    pub floor_us: f64,
    pub ledgers_agree: bool,
    pub load: Load,
    pub worker: LedgerSide,
    pub router: LedgerSide,
}

impl Report {
    pub(super) fn table(&self) -> String {
        let mut t = String::new();
        let l = &self.load;
        let f = &self.floor;
        let cpu = l.worker_cpu_us + l.router_cpu_us;
        let mode = if self.stream { "streamed" } else { "whole" };
        let _ = writeln!(
            t,
            "lobstah bench: {} routed requests ({mode} answers), {} clients, synthetic engine",
            l.measured, self.clients
        );
        let _ = writeln!(
            t,
            "  {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            l.measured as f64 / l.seconds.max(1e-9),
            l.p50_ms,
            l.p99_ms,
            l.errors
        );
        let _ = writeln!(
            t,
            "crypto floor: {:.0} µs per request (sign request {:.0}, verify {:.0}, sign receipt {:.0}, verify {:.0})",
            self.floor_us,
            f.sign_request_us,
            f.verify_request_us,
            f.sign_receipt_us,
            f.verify_receipt_us
        );
        let _ = writeln!(
            t,
            "\n{:<34} {:>10} {:>10} {:>10}",
            "", "worker", "router", "both"
        );
        let row = |t: &mut String, name: &str, w: String, r: String, b: String| {
            let _ = writeln!(t, "{name:<34} {w:>10} {r:>10} {b:>10}");
        };
        row(
            &mut t,
            "CPU per request (µs)",
            format!("{:.0}", l.worker_cpu_us),
            format!("{:.0}", l.router_cpu_us),
            format!("{cpu:.0}"),
        );
        row(
            &mut t,
            "  ratio to the crypto floor",
            "".into(),
            "".into(),
            format!("{:.2}×", cpu / self.floor_us),
        );
        for s in &l.samples {
            row(
                &mut t,
                &format!("RSS after {} requests (MiB)", s.requests),
                format!("{:.1}", mib(s.worker_rss_bytes)),
                format!("{:.1}", mib(s.router_rss_bytes)),
                String::new(),
            );
        }
        let (w, r) = (&self.worker, &self.router);
        row(
            &mut t,
            "receipts in the ledger",
            w.receipts.to_string(),
            r.receipts.to_string(),
            String::new(),
        );
        row(
            &mut t,
            "ledger bytes per receipt (pages)",
            format!("{:.0}", w.per_receipt(w.allocated_bytes)),
            format!("{:.0}", r.per_receipt(r.allocated_bytes)),
            String::new(),
        );
        row(
            &mut t,
            "  on disk (allocated blocks)",
            format!("{:.0}", w.per_receipt(w.disk_bytes)),
            format!("{:.0}", r.per_receipt(r.disk_bytes)),
            String::new(),
        );
        row(
            &mut t,
            "  file length",
            format!("{:.0}", w.per_receipt(w.file_bytes)),
            format!("{:.0}", r.per_receipt(r.file_bytes)),
            String::new(),
        );
        row(
            &mut t,
            "ledger verify (s)",
            format!("{:.1}", w.verify.seconds),
            format!("{:.1}", r.verify.seconds),
            String::new(),
        );
        row(
            &mut t,
            "  peak RSS (MiB)",
            format!("{:.1}", mib(w.verify.peak_rss_bytes)),
            format!("{:.1}", mib(r.verify.peak_rss_bytes)),
            String::new(),
        );
        let _ = writeln!(t, "\nlargest tables, bytes per receipt (pages / stored):");
        for (side, name) in [(w, "worker"), (r, "router")] {
            let parts: Vec<String> = side
                .tables
                .iter()
                .take(6)
                .map(|tb| {
                    format!(
                        "{} {:.0}/{:.0}",
                        tb.name,
                        side.per_receipt(tb.page_bytes),
                        side.per_receipt(tb.stored_bytes)
                    )
                })
                .collect();
            let _ = writeln!(t, "  {name}: {}", parts.join(", "));
        }
        let verdict = if self.ledgers_agree {
            "both ledgers hold one receipt per answered request"
        } else {
            "LEDGER MISMATCH: receipts differ from answered requests"
        };
        let _ = writeln!(t, "{verdict}");
        t
    }
}
