//! One measurement: keep-alive clients sending back to back against a URL, with the
//! latencies, errors and process CPU time of the measured window.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// What one configuration measured.
pub struct Outcome {
    /// Successful requests started in the measured window.
    pub measured: u64,
    pub elapsed: Duration,
    /// Per measured request, microseconds, sorted.
    pub latencies_us: Vec<u32>,
    pub errors: u64,
    /// Process CPU time (all threads) spent during the measured window.
    pub cpu: Option<Duration>,
}

impl Outcome {
    pub fn rps(&self) -> f64 {
        self.measured as f64 / self.elapsed.as_secs_f64()
    }

    /// Microseconds of CPU per measured request (clients, servers and ledgers together).
    pub fn cpu_per_request_us(&self) -> f64 {
        match self.cpu {
            Some(cpu) if self.measured > 0 => cpu.as_secs_f64() * 1e6 / self.measured as f64,
            _ => f64::NAN,
        }
    }

    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

fn body(stream: bool) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "model": "fake-model",
            "stream": stream,
            "messages": [{"role": "user", "content": "say hello"}],
        })
        .to_string(),
    )
}

/// One request, read to the end. True when it succeeded as a client would judge it: a
/// 200 with a JSON body, or a 200 stream that ends with `[DONE]` and carries no receipt.
async fn one(client: &reqwest::Client, url: &str, body: Bytes, stream: bool) -> bool {
    let response = match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) => r,
        Err(_) => return false,
    };
    if !response.status().is_success() {
        return false;
    }
    let Ok(bytes) = response.bytes().await else {
        return false;
    };
    if stream {
        bytes.ends_with(b"data: [DONE]\n\n")
            && !bytes.windows(17).any(|w| w == b":lobstah-receipt:")
    } else {
        bytes.first() == Some(&b'{')
    }
}

/// `clients` tasks, each with its own keep-alive connection, send requests back to
/// back for `warmup + measure`; only requests started after the warm-up are measured.
/// `succeeded` counts every success, warm-up included (each one is a receipt).
pub async fn run(
    url: &str,
    stream: bool,
    clients: usize,
    s: &crate::Settings,
    succeeded: &Arc<AtomicU64>,
) -> Outcome {
    let url = Arc::new(format!("{url}/v1/chat/completions"));
    let body = body(stream);
    // Building a client loads the platform's root certificates (milliseconds each), so
    // it happens before the clock starts.
    let connections: Vec<reqwest::Client> = (0..clients)
        .map(|_| {
            reqwest::Client::builder()
                .no_proxy()
                .tcp_nodelay(true)
                .pool_max_idle_per_host(1)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client")
        })
        .collect();
    let start = Instant::now();
    let measure_from = start + s.warmup;
    let until = measure_from + s.measure;
    let tasks: Vec<_> = connections
        .into_iter()
        .map(|client| {
            let (url, body, succeeded) = (url.clone(), body.clone(), succeeded.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut errors = 0u64;
                loop {
                    let t0 = Instant::now();
                    if t0 >= until {
                        break;
                    }
                    let ok = one(&client, &url, body.clone(), stream).await;
                    let took = t0.elapsed();
                    if ok {
                        succeeded.fetch_add(1, Ordering::Relaxed);
                    } else {
                        errors += 1;
                    }
                    if t0 >= measure_from && ok {
                        latencies.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = process_cpu();
    let mut latencies_us = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("client task");
        latencies_us.extend(l);
        errors += e;
    }
    let elapsed = measure_from.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    latencies_us.sort_unstable();
    Outcome {
        measured: latencies_us.len() as u64,
        elapsed,
        latencies_us,
        errors,
        cpu,
    }
}

/// CPU time this process has used (all threads, user + system), from /proc on Linux.
/// Other engineers' builds share the machine, so throughput swings; CPU time per request
/// is the steadier yardstick when comparing two versions of the code.
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(Duration::from_millis(ticks * 10))
}
