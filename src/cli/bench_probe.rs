//! What `lobstah bench` reads off the machine: the crypto floor measured in this
//! process, and the CPU time and resident memory of the router and worker processes it
//! started, read from outside them (Linux: /proc; elsewhere: `ps`).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::core::protocol::{Identity, Receipt, RequestAuth, RequestTarget, SignedReceipt};

/// The four Ed25519 operations every routed request needs, measured here: the router
/// signs the request and the worker verifies it; the worker signs the receipt and the
/// router verifies it. Canonical JSON and digests included, as the nodes do them.
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CryptoFloor {
    pub sign_request_us: f64,
    pub verify_request_us: f64,
    pub sign_receipt_us: f64,
    pub verify_receipt_us: f64,
}

impl CryptoFloor {
    pub(super) fn total_us(&self) -> f64 {
        self.sign_request_us
            + self.verify_request_us
            + self.sign_receipt_us
            + self.verify_receipt_us
    }
}

/// The fastest of a few rounds, so a busy moment of the machine does not raise the floor.
fn best_of<T>(rounds: u32, per_round: u32, mut op: impl FnMut() -> T) -> f64 {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..per_round {
                std::hint::black_box(op());
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(per_round)
        })
        .fold(f64::INFINITY, f64::min)
}

pub(super) fn crypto_floor(body: &[u8]) -> anyhow::Result<CryptoFloor> {
    const ROUNDS: u32 = 5;
    const PER_ROUND: u32 = 400;
    let router = Identity::generate();
    let worker = Identity::generate();
    let worker_pk = worker.public();
    let target = RequestTarget {
        method: "POST",
        path: "/v1/chat/completions",
        body,
        worker: &worker_pk,
    };
    let sign_request_us = best_of(ROUNDS, PER_ROUND, || RequestAuth::sign(&router, target, 1));
    let auth = RequestAuth::sign(&router, target, 1);
    auth.verify(target)?;
    let verify_request_us = best_of(ROUNDS, PER_ROUND, || auth.verify(target).is_ok());
    let receipt = Receipt {
        version: 1,
        job_id: format!("chatcmpl-{}", uuid::Uuid::new_v4()),
        nonce: crate::core::protocol::new_nonce(),
        requester_pubkey: router.public(),
        worker_pubkey: worker_pk,
        model: "synthetic".into(),
        input_tokens: 12,
        output_tokens: 16,
        started_at: 1_800_000_000_000,
        completed_at: 1_800_000_000_004,
    };
    let signed = SignedReceipt::sign(receipt.clone(), &worker)?;
    signed.verify_signature()?;
    let sign_receipt_us = best_of(ROUNDS, PER_ROUND, || {
        SignedReceipt::sign(receipt.clone(), &worker).is_ok()
    });
    let verify_receipt_us = best_of(ROUNDS, PER_ROUND, || signed.verify_signature().is_ok());
    Ok(CryptoFloor {
        sign_request_us,
        verify_request_us,
        sign_receipt_us,
        verify_receipt_us,
    })
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Usage {
    /// User + system time since the process started.
    pub cpu: Duration,
    pub rss_bytes: u64,
    /// The most it has been resident (Linux only; 0 elsewhere).
    pub peak_rss_bytes: u64,
}

#[cfg(target_os = "linux")]
pub(super) fn usage(pid: u32) -> Option<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name, which sits in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Some(Usage {
        // USER_HZ is 100 on every Linux this runs on.
        cpu: Duration::from_millis(ticks * 10),
        rss_bytes: kib("VmRSS:") * 1024,
        peak_rss_bytes: kib("VmHWM:") * 1024,
    })
}

/// `ps` on macOS prints CPU time as `M:SS.cc` and RSS in KiB.
#[cfg(not(target_os = "linux"))]
pub(super) fn usage(pid: u32) -> Option<Usage> {
    let out = std::process::Command::new("ps")
        .args(["-o", "rss=,time=", "-p", &pid.to_string()])
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts = text.split_whitespace();
    let rss_kib: u64 = parts.next()?.parse().ok()?;
    let mut seconds = 0.0;
    for piece in parts.next()?.split(':') {
        seconds = seconds * 60.0 + piece.parse::<f64>().ok()?;
    }
    Some(Usage {
        cpu: Duration::from_secs_f64(seconds),
        rss_bytes: rss_kib * 1024,
        peak_rss_bytes: 0,
    })
}

/// Bytes the file takes on disk (its allocated blocks; a file redb has grown ahead of
/// its data is sparse at the end) and its length.
pub(super) fn file_sizes(path: &Path) -> anyhow::Result<(u64, u64)> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let on_disk = {
        use std::os::unix::fs::MetadataExt;
        meta.blocks() * 512
    };
    #[cfg(not(unix))]
    let on_disk = meta.len();
    Ok((on_disk, meta.len()))
}

pub(super) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
