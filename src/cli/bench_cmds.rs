//! `lobstah bench`: how fast and how small this build is on this machine, measured the
//! way a user runs it. It starts a worker (synthetic engine) and a router as two child
//! processes of this binary, each with its own home and ledger in a scratch directory,
//! sends routed requests from keep-alive clients here, and reads the children's CPU time
//! and memory from outside. Then it stops them, sizes both ledgers, times `ledger
//! verify` on each, and checks that every answered request left one receipt per side.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::bench_probe::{self, Usage, mib};
use super::bench_report::{LedgerSide, Report, Sample, VerifyRun};
use crate::core::ledger::Ledger;
use crate::core::store;

/// What the user asked for.
#[derive(Debug, Clone)]
pub(super) struct BenchArgs {
    pub requests: u64,
    pub clients: usize,
    pub stream: bool,
    pub keep: Option<PathBuf>,
    pub json: bool,
}

/// Requests sent before measuring, so connection set-up and first allocations do not
/// count (a fifth of a short run).
const WARMUP: u64 = 2_000;
/// The memory reading the end is compared with: after 10,000 requests.
const EARLY_MARK: u64 = 10_000;
/// Fewer requests than this measure nothing steady.
const MIN_REQUESTS: u64 = 1_000;

fn warmup(requests: u64) -> u64 {
    WARMUP.min(requests / 5)
}

pub(super) fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    if args.requests < MIN_REQUESTS || args.clients == 0 {
        bail!("--requests must be at least {MIN_REQUESTS} and --clients at least 1");
    }
    let scratch = match &args.keep {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => std::env::temp_dir().join(format!("lobstah-bench-{}", uuid::Uuid::new_v4())),
    };
    let outcome = super::runtime()?.block_on(bench(&args, &scratch));
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let report = outcome?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.ledgers_agree {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("lobstah bench: the ledgers do not hold one receipt per answered request");
        std::process::ExitCode::FAILURE
    })
}

async fn bench(args: &BenchArgs, scratch: &Path) -> anyhow::Result<Report> {
    let exe = std::env::current_exe().context("finding this lobstah binary")?;
    let body = request_body(args.stream);
    let floor = bench_probe::crypto_floor(&body)?;
    let (worker_home, router_home) = (scratch.join("worker"), scratch.join("router"));
    let router_key = keygen(&exe, &router_home).await?;
    keygen(&exe, &worker_home).await?;
    let mut worker = start(&exe, &worker_args(&worker_home, &router_key, args.clients)).await?;
    let outcome = async {
        lobstah(&exe, &peers_add(&router_home, &worker.key, &worker.url)).await?;
        let mut router = start(&exe, &router_args(&router_home)).await?;
        let load = drive(args, &body, &router.url, worker.pid, router.pid).await;
        stop(&mut router.child, router.pid).await;
        load
    }
    .await;
    stop(&mut worker.child, worker.pid).await;
    let load = outcome?;
    let worker_side = ledger_side(&exe, &worker_home).await?;
    let router_side = ledger_side(&exe, &router_home).await?;
    let answered = load.answered_total;
    Ok(Report {
        requests: args.requests,
        clients: args.clients,
        stream: args.stream,
        floor,
        floor_us: floor.total_us(),
        ledgers_agree: worker_side.receipts == answered && router_side.receipts == answered,
        load,
        worker: worker_side,
        router: router_side,
    })
}

fn request_body(stream: bool) -> Vec<u8> {
    serde_json::json!({
        "model": "synthetic",
        "messages": [{"role": "user", "content": "say something about lobsters"}],
        "max_tokens": 16,
        "stream": stream,
    })
    .to_string()
    .into_bytes()
}

fn worker_args(home: &Path, router_key: &str, clients: usize) -> Vec<String> {
    let queue = clients.max(64).to_string();
    [
        "worker",
        "start",
        "--engine",
        "synthetic",
        "--synthetic-rate",
        "0",
        "--port",
        "0",
        "--trust",
        router_key,
        "--per-requester-concurrency",
        "0",
        "--per-requester-per-minute",
        "1000000000",
        "--max-queue",
        &queue,
    ]
    .iter()
    .map(|s| s.to_string())
    .chain(home_arg(home))
    .collect()
}

fn router_args(home: &Path) -> Vec<String> {
    ["router", "start", "--port", "0"]
        .iter()
        .map(|s| s.to_string())
        .chain(home_arg(home))
        .collect()
}

fn peers_add(home: &Path, key: &str, url: &str) -> Vec<String> {
    ["peers", "add", key, url, "bench"]
        .iter()
        .map(|s| s.to_string())
        .chain(home_arg(home))
        .collect()
}

fn home_arg(home: &Path) -> [String; 2] {
    ["--home".into(), home.display().to_string()]
}

/// Runs a short lobstah command to completion; its output, or why it failed.
async fn lobstah(exe: &Path, args: &[String]) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .args(args)
        .env_remove("LOBSTAH_HOME")
        .output()
        .await
        .with_context(|| format!("running lobstah {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "lobstah {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn keygen(exe: &Path, home: &Path) -> anyhow::Result<String> {
    lobstah(
        exe,
        &["keygen".into(), "--home".into(), home.display().to_string()],
    )
    .await?;
    let id = lobstah(
        exe,
        &["id".into(), "--home".into(), home.display().to_string()],
    )
    .await?;
    let key = id.split_whitespace().next().unwrap_or_default().to_string();
    crate::core::protocol::PublicKey::parse(&key).context("reading the new identity")?;
    Ok(key)
}

struct Server {
    child: Child,
    pid: u32,
    key: String,
    url: String,
}

/// Starts a server and waits for its "… lob1… listening on URL" line.
async fn start(exe: &Path, args: &[String]) -> anyhow::Result<Server> {
    let mut child = Command::new(exe)
        .args(args)
        .env_remove("LOBSTAH_HOME")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting lobstah {}", args.join(" ")))?;
    let pid = child.id().context("the server exited at once")?;
    let stdout = child.stdout.take().context("no stdout from the server")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(" listening on ") {
                return Ok::<_, std::io::Error>(Some(line));
            }
        }
        Ok(None)
    })
    .await
    .context("the server did not start within 30 s")??
    .with_context(|| format!("lobstah {} exited before listening", args.join(" ")))?;
    // Keep reading so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let mut words = line.split_whitespace();
    let key = words.nth(1).unwrap_or_default().to_string();
    let url = words.nth(2).unwrap_or_default().to_string();
    if !url.starts_with("http://") {
        bail!("cannot read the server's address from: {line}");
    }
    Ok(Server {
        child,
        pid,
        key,
        url,
    })
}

/// SIGTERM, as launchd or systemd would stop it, then wait; killed after 20 s.
async fn stop(child: &mut Child, pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    if tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// What the load phase saw.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Load {
    pub measured: u64,
    pub errors: u64,
    pub answered_total: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub worker_cpu_us: f64,
    pub router_cpu_us: f64,
    pub samples: Vec<Sample>,
}

async fn drive(
    args: &BenchArgs,
    body: &[u8],
    router_url: &str,
    worker_pid: u32,
    router_pid: u32,
) -> anyhow::Result<Load> {
    let url: Arc<str> = format!("{router_url}/v1/chat/completions").into();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    let body = bytes::Bytes::copy_from_slice(body);
    let warmup = warmup(args.requests);
    let warm = run_clients(
        &client,
        &url,
        &body,
        (args.clients, warmup, args.stream),
        Arc::new(AtomicU64::new(0)),
    )
    .await;
    if warm.errors > 0 {
        bail!(
            "{} of {warmup} warm-up requests failed: {}",
            warm.errors,
            warm.first_error
        );
    }
    let before = (read(worker_pid)?, read(router_pid)?);
    let started = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let sampler = tokio::spawn(sample_memory(
        sent.clone(),
        args.requests,
        worker_pid,
        router_pid,
    ));
    let main = run_clients(
        &client,
        &url,
        &body,
        (args.clients, args.requests, args.stream),
        sent.clone(),
    )
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let after = (read(worker_pid)?, read(router_pid)?);
    sent.store(u64::MAX, Ordering::Relaxed);
    let mut samples = sampler.await.unwrap_or_default();
    samples.push(Sample::at(args.requests, after.0, after.1));
    let ok = main.latencies_us.len() as u64;
    let per_request = |a: Usage, b: Usage| (b.cpu - a.cpu).as_secs_f64() * 1e6 / ok.max(1) as f64;
    let mut latencies = main.latencies_us;
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |us| f64::from(*us) / 1000.0)
    };
    if main.errors > 0 {
        eprintln!(
            "{} requests failed; the first: {}",
            main.errors, main.first_error
        );
    }
    Ok(Load {
        measured: ok,
        errors: main.errors,
        answered_total: ok + warmup,
        seconds,
        p50_ms: pct(0.5),
        p99_ms: pct(0.99),
        worker_cpu_us: per_request(before.0, after.0),
        router_cpu_us: per_request(before.1, after.1),
        samples,
    })
}

fn read(pid: u32) -> anyhow::Result<Usage> {
    bench_probe::usage(pid).with_context(|| format!("cannot read process {pid}'s usage"))
}

/// Memory of both servers at 10,000 requests and every tenth of the run.
async fn sample_memory(sent: Arc<AtomicU64>, total: u64, worker: u32, router: u32) -> Vec<Sample> {
    let mut marks: Vec<u64> = (1..10).map(|i| total * i / 10).collect();
    marks.push(EARLY_MARK.min(total));
    marks.sort_unstable();
    marks.dedup();
    let mut samples = Vec::new();
    let mut next = marks.into_iter().peekable();
    while let Some(&mark) = next.peek() {
        let now = sent.load(Ordering::Relaxed);
        if now == u64::MAX {
            break;
        }
        if now >= mark {
            if let (Some(w), Some(r)) = (bench_probe::usage(worker), bench_probe::usage(router)) {
                samples.push(Sample::at(mark, w, r));
                eprintln!(
                    "{mark:>9} requests: worker {:.1} MiB, router {:.1} MiB",
                    mib(w.rss_bytes),
                    mib(r.rss_bytes)
                );
            }
            next.next();
        } else {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    samples
}

/// Both ledgers, read after the servers stopped: size and a timed `ledger verify`.
async fn ledger_side(exe: &Path, home: &Path) -> anyhow::Result<LedgerSide> {
    let path = home.join("lobstah.redb");
    let (on_disk, length) = bench_probe::file_sizes(&path)?;
    let db = store::open(&path).context("opening a ledger the bench wrote")?;
    let receipts = Ledger::new(db.clone())?.totals()?.receipts;
    let sizes = store::sizes(&db)?;
    drop(db);
    let verify = verify(exe, home).await?;
    Ok(LedgerSide {
        receipts,
        file_bytes: length,
        disk_bytes: on_disk,
        allocated_bytes: sizes.allocated_bytes.unwrap_or(0),
        tables: sizes.tables,
        verify,
    })
}

/// `ledger verify` as a child, its peak memory read from outside while it runs.
async fn verify(exe: &Path, home: &Path) -> anyhow::Result<VerifyRun> {
    let started = Instant::now();
    let mut child = Command::new(exe)
        .args(["ledger", "verify", "--json", "--home"])
        .arg(home)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting ledger verify")?;
    let pid = child.id().unwrap_or(0);
    let mut peak = 0;
    let status = loop {
        if let Some(u) = bench_probe::usage(pid) {
            peak = peak.max(u.peak_rss_bytes.max(u.rss_bytes));
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    Ok(VerifyRun {
        ok: status.success(),
        seconds: started.elapsed().as_secs_f64(),
        peak_rss_bytes: peak,
    })
}

/// What a set of clients saw.
struct ClientsOutcome {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: String,
}

/// `clients` tasks send requests until `sent` reaches `total` (it counts every start).
async fn run_clients(
    client: &reqwest::Client,
    url: &Arc<str>,
    body: &bytes::Bytes,
    (clients, total, stream): (usize, u64, bool),
    sent: Arc<AtomicU64>,
) -> ClientsOutcome {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, body, sent) =
                (client.clone(), url.clone(), body.clone(), sent.clone());
            tokio::spawn(async move {
                let mut out = ClientsOutcome {
                    latencies_us: Vec::new(),
                    errors: 0,
                    first_error: String::new(),
                };
                while sent.fetch_add(1, Ordering::Relaxed) < total {
                    let t = Instant::now();
                    match one(&client, &url, body.clone(), stream).await {
                        Ok(()) => out
                            .latencies_us
                            .push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Err(e) => {
                            if out.errors == 0 {
                                out.first_error = e;
                            }
                            out.errors += 1;
                        }
                    }
                }
                out
            })
        })
        .collect();
    let mut all = ClientsOutcome {
        latencies_us: Vec::new(),
        errors: 0,
        first_error: String::new(),
    };
    for task in tasks {
        if let Ok(part) = task.await {
            all.latencies_us.extend(part.latencies_us);
            if all.errors == 0 {
                all.first_error = part.first_error;
            }
            all.errors += part.errors;
        }
    }
    all
}

/// One request, its answer read to the end (a stream to its last event).
async fn one(
    client: &reqwest::Client,
    url: &str,
    body: bytes::Bytes,
    stream: bool,
) -> Result<(), String> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status();
    let text = response.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", String::from_utf8_lossy(&text)));
    }
    if stream && !text.ends_with(b"data: [DONE]\n\n") {
        return Err("the stream did not end with [DONE]".into());
    }
    Ok(())
}
