//! `lobstah` servers as real processes for the crash and disk tests: started from the
//! built binary in a home of their own, killed or stopped on purpose, and their ledgers
//! read back afterwards.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use lobstah::core::ledger::{Ledger, Standing};
use lobstah::core::store;

use super::bin;

/// A `lobstah` server process, killed when dropped so a failing test leaves none behind.
pub struct Server {
    pub child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `lobstah ARGS` in `home` and waits for the "… listening on …" line.
    pub fn start(home: &Path, args: &[&str]) -> Server {
        let mut child = bin::lobstah(home)
            .args(args)
            .env("LOBSTAH_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the lobstah binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        assert!(
            line.contains("listening on"),
            "unexpected first line: {line:?}"
        );
        Server { child }
    }

    pub fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }

    pub fn sigterm(mut self) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "exits 0 on SIGTERM: {exit:?}");
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// Creates the identity in `home` and returns its public key.
pub fn id_of(home: &Path) -> String {
    let (ok, out) = bin::run(home, &["keygen"]);
    assert!(ok, "lobstah keygen: {out}");
    let (ok, out) = bin::run(home, &["id"]);
    assert!(ok, "lobstah id: {out}");
    out.trim().to_string()
}

/// A worker home and a router home set up for each other: identities made, the worker in
/// the router's peer book and the router trusted by it (credit never interferes). The
/// ports are chosen once, so a restarted server comes back where it was.
pub struct Pair {
    worker_home: PathBuf,
    router_home: PathBuf,
    worker_args: Vec<String>,
    router_args: Vec<String>,
    /// The router's chat endpoint.
    pub chat_url: String,
    /// The router's address.
    pub router_addr: std::net::SocketAddr,
    /// The worker's base URL.
    pub worker_url: String,
}

impl Pair {
    pub fn new(worker_home: &Path, router_home: &Path) -> Pair {
        Pair::with_rate(worker_home, router_home, "0")
    }

    /// A pair whose synthetic engine makes `rate` tokens a second ("0": at once).
    pub fn with_rate(worker_home: &Path, router_home: &Path, rate: &str) -> Pair {
        let (worker_port, router_port) = (free_port().to_string(), free_port().to_string());
        let worker_id = id_of(worker_home);
        let router_id = id_of(router_home);
        let worker_url = format!("http://127.0.0.1:{worker_port}");
        let worker_url_for_peer = worker_url.clone();
        let (ok, out) = bin::run(
            router_home,
            &["peers", "add", &worker_id, &worker_url_for_peer, "w"],
        );
        assert!(ok, "peers add: {out}");
        let worker_args = [
            "worker",
            "start",
            "--engine",
            "synthetic",
            "--synthetic-rate",
            rate,
            "--port",
            &worker_port,
            "--trust",
            &router_id,
        ];
        Pair {
            worker_home: worker_home.to_path_buf(),
            router_home: router_home.to_path_buf(),
            worker_args: worker_args.map(str::to_string).to_vec(),
            router_args: ["router", "start", "--port", &router_port]
                .map(str::to_string)
                .to_vec(),
            chat_url: format!("http://127.0.0.1:{router_port}/v1/chat/completions"),
            router_addr: format!("127.0.0.1:{router_port}")
                .parse()
                .expect("a socket address"),
            worker_url,
        }
    }

    pub fn start_worker(&self) -> Server {
        Server::start(&self.worker_home, &as_strs(&self.worker_args))
    }

    pub fn start_router(&self) -> Server {
        Server::start(&self.router_home, &as_strs(&self.router_args))
    }
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A client for the router under test: bounded waits, never a proxy.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .no_proxy()
        .build()
        .expect("client")
}

/// Whether a client got the whole answer: a JSON completion, or a stream ending in
/// `[DONE]` with no error event in it.
pub fn is_whole(stream: bool, status: u16, body: &str) -> bool {
    if status != 200 {
        return false;
    }
    if stream {
        body.ends_with("data: [DONE]\n\n") && !body.contains("\"error\"")
    } else {
        serde_json::from_str::<serde_json::Value>(body)
            .is_ok_and(|v| v.pointer("/choices/0/message").is_some())
    }
}

/// nonce → (total tokens, signature) of every receipt in the ledger at `home`.
pub fn receipts(home: &Path) -> HashMap<String, (u64, String)> {
    let db = store::open(&home.join("lobstah.redb")).expect("open the ledger");
    ledger_receipts(&Ledger::new(db).expect("ledger"))
}

/// nonce → (total tokens, signature) of every receipt in `ledger`.
pub fn ledger_receipts(ledger: &Ledger) -> HashMap<String, (u64, String)> {
    let mut out = HashMap::new();
    let mut after = 0;
    loop {
        let page = ledger.since(after, 1_000).expect("read receipts");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for stored in page {
            let signed = stored.receipt;
            let r = signed.receipt();
            out.insert(
                r.nonce.clone(),
                (r.total_tokens(), hex::encode(signed.signature().0)),
            );
        }
    }
    out
}

/// Receipts in the ledger at `home` that are not confirmed (a worker's pending ones).
pub fn unconfirmed(home: &Path) -> Vec<String> {
    let db = store::open(&home.join("lobstah.redb")).expect("open the ledger");
    let ledger = Ledger::new(db).expect("ledger");
    let mut out: Vec<String> = ledger_receipts(&ledger)
        .into_keys()
        .filter(|nonce| {
            ledger.standing(nonce).expect("read a standing") != Some(Standing::Confirmed)
        })
        .collect();
    out.sort();
    out
}

pub fn verify(home: &Path) {
    let (ok, out) = bin::run(home, &["ledger", "verify"]);
    assert!(ok && out.contains("ok"), "ledger verify in {home:?}: {out}");
}
