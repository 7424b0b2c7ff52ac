//! Two homes behind two NATs, as friends' Macs are: network namespaces homeA → natA →
//! pub ← natB ← homeB, each NAT masquerading and dropping new inbound connections on its
//! WAN side (what a home router does), a relay in pub. A worker in home A; a router in
//! home B that knows only the worker's key and the relay. The official OpenAI SDK in
//! home B gets whole and streamed answers, the link turns direct by hole punching (shown
//! in /peers), both ledgers hold the same receipts, and a capture of everything crossing
//! pub holds no byte of the marker prompt, though it does see the relay's plain HTTP.
//!
//! Namespaces need root, as CI has; elsewhere the test fails and says so.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support;
use support::processes::{receipts, unconfirmed, verify};

/// Addresses only inside the namespaces this test makes: the "internet" is 198.18.0.0/15
/// (set aside for benchmarks), the homes 10.1/10.2.
const RELAY_IP: &str = "198.18.1.1";
const RELAY_PORT: &str = "3340";

/// Runs `ip ARGS` (or anything) and fails the test with its output if it fails.
fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn in_ns(ns: &str, args: &[&str]) {
    let mut all = vec!["netns", "exec", ns];
    all.extend_from_slice(args);
    sh("ip", &all);
}

/// The five namespaces, deleted (and every link in them) when dropped.
struct Topology {
    names: [String; 5],
}

impl Topology {
    fn home_a(&self) -> &str {
        &self.names[0]
    }
    fn nat_a(&self) -> &str {
        &self.names[1]
    }
    fn public(&self) -> &str {
        &self.names[2]
    }
    fn nat_b(&self) -> &str {
        &self.names[3]
    }
    fn home_b(&self) -> &str {
        &self.names[4]
    }

    fn build() -> Topology {
        let root = Command::new("id").arg("-u").output().expect("run id -u");
        assert_eq!(
            String::from_utf8_lossy(&root.stdout).trim(),
            "0",
            "this test makes network namespaces and needs root, as CI has (run the tests as root)"
        );
        for tool in ["ip", "iptables", "tcpdump", "ping"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "{tool} is missing: `apt-get install -y iproute2 iptables tcpdump iputils-ping` (.ci/run does)"
            );
        }
        let tag = std::process::id() % 100_000;
        let names = ["ha", "na", "pub", "nb", "hb"].map(|n| format!("lob{tag}{n}"));
        for name in &names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
            sh("ip", &["netns", "add", name]);
        }
        let topology = Topology { names };
        for name in &topology.names {
            in_ns(name, &["ip", "link", "set", "lo", "up"]);
        }
        let pub_ns = topology.public().to_string();
        in_ns(&pub_ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        for (side, nat, home) in [
            ("a", topology.nat_a(), topology.home_a()),
            ("b", topology.nat_b(), topology.home_b()),
        ] {
            let net = if side == "a" { "1" } else { "2" };
            let (wan_pub, wan_nat) = (format!("v{tag}{side}p"), format!("v{tag}{side}w"));
            let (lan_nat, lan_home) = (format!("v{tag}{side}l"), format!("v{tag}{side}h"));
            sh(
                "ip",
                &[
                    "link", "add", &wan_pub, "netns", &pub_ns, "type", "veth", "peer", "name",
                    &wan_nat, "netns", nat,
                ],
            );
            sh(
                "ip",
                &[
                    "link", "add", &lan_nat, "netns", nat, "type", "veth", "peer", "name",
                    &lan_home, "netns", home,
                ],
            );
            let pub_addr = format!("198.18.{net}.1/24");
            let nat_wan = format!("198.18.{net}.2/24");
            let nat_lan = format!("10.{net}.0.1/24");
            let home_addr = format!("10.{net}.0.2/24");
            in_ns(&pub_ns, &["ip", "addr", "add", &pub_addr, "dev", &wan_pub]);
            in_ns(&pub_ns, &["ip", "link", "set", &wan_pub, "up"]);
            in_ns(nat, &["ip", "addr", "add", &nat_wan, "dev", &wan_nat]);
            in_ns(nat, &["ip", "addr", "add", &nat_lan, "dev", &lan_nat]);
            in_ns(nat, &["ip", "link", "set", &wan_nat, "up"]);
            in_ns(nat, &["ip", "link", "set", &lan_nat, "up"]);
            in_ns(
                nat,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("198.18.{net}.1"),
                ],
            );
            in_ns(nat, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
            in_ns(
                nat,
                &[
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-o",
                    &wan_nat,
                    "-j",
                    "MASQUERADE",
                ],
            );
            // The home router's rule: from the WAN, only replies to what went out, to the
            // router itself (INPUT) as to the home behind it (FORWARD). Without the INPUT
            // rule an unasked packet to the NAT's address makes a conntrack entry that
            // moves the home's outgoing flow to another port, and no punch lands.
            for chain in ["INPUT", "FORWARD"] {
                in_ns(
                    nat,
                    &[
                        "iptables",
                        "-A",
                        chain,
                        "-i",
                        &wan_nat,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "ESTABLISHED,RELATED",
                        "-j",
                        "ACCEPT",
                    ],
                );
                in_ns(
                    nat,
                    &["iptables", "-A", chain, "-i", &wan_nat, "-j", "DROP"],
                );
            }
            in_ns(home, &["ip", "addr", "add", &home_addr, "dev", &lan_home]);
            in_ns(home, &["ip", "link", "set", &lan_home, "up"]);
            in_ns(
                home,
                &[
                    "ip",
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("10.{net}.0.1"),
                ],
            );
        }
        // The homes see the public side but not each other: only a punched hole joins them.
        let reach = |from: &str, to: &str| {
            Command::new("ip")
                .args(["netns", "exec", from, "ping", "-c1", "-W1", to])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        assert!(
            reach(topology.home_a(), RELAY_IP),
            "home A reaches the relay"
        );
        assert!(
            reach(topology.home_b(), RELAY_IP),
            "home B reaches the relay"
        );
        assert!(
            !reach(topology.home_b(), "10.1.0.2"),
            "home B cannot reach home A"
        );
        assert!(
            !reach(topology.home_b(), "198.18.1.2"),
            "nat A answers nothing unasked"
        );
        topology
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

/// A process in a namespace, killed when dropped so a failing test leaves none behind.
struct Running {
    child: Child,
    first_line: String,
}

impl Running {
    /// Starts `command`, its stderr in `log`, and waits for a first line saying `expect`.
    fn start(mut command: Command, log: &Path, expect: &str) -> Running {
        let stderr = std::fs::File::create(log).expect("create a log file");
        let mut child = command
            // NAT_TEST_LOG (a log filter, e.g. iroh=debug) for a closer look.
            .env(
                "LOBSTAH_LOG",
                std::env::var("NAT_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start a process in a namespace");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stdout = BufReader::new(stdout);
        let mut first_line = String::new();
        stdout
            .read_line(&mut first_line)
            .expect("read its first line");
        // The rest is read and dropped, so a later line finds the pipe open.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        assert!(
            first_line.contains(expect),
            "unexpected first line: {first_line:?}; its log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        Running { child, first_line }
    }

    /// The http://ADDR in its "listening on http://ADDR" line.
    fn url(&self) -> String {
        self.first_line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("a URL in the first line")
            .to_string()
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exit = self.child.wait().expect("wait");
        assert!(exit.success(), "exits 0 on SIGTERM: {exit:?}");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// tcpdump on every interface of a namespace, writing packets as they come.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(ns: &str, file: &Path) -> Capture {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", ns, "tcpdump", "-i", "any", "-U", "-s", "0", "-w",
            ])
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start tcpdump");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut said = String::new();
        let mut lines = BufReader::new(stderr).lines();
        while !said.contains("listening") {
            match lines.next() {
                Some(Ok(line)) => said.push_str(&line),
                _ => panic!("tcpdump stopped before listening: {said:?}"),
            }
        }
        Capture {
            child,
            file: file.to_path_buf(),
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read(&self.file).expect("read the capture")
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn friends_behind_two_nats_reach_each_other_by_key_encrypted_and_direct() {
    support::python::require_module("openai");
    let topology = Topology::build();
    let dir = tempfile::tempdir().expect("temp dir");
    let (relay_home, worker_home, router_home) = (
        dir.path().join("relay"),
        dir.path().join("worker"),
        dir.path().join("router"),
    );
    let relay_url = format!("http://{RELAY_IP}:{RELAY_PORT}");
    // From before anything starts: the nodes' first words to the relay are in it too.
    let capture = Capture::start(topology.public(), &dir.path().join("pub.pcap"));

    let relay = Running::start(
        {
            let mut c = support::bin::lobstah_in_netns(topology.public(), &relay_home);
            c.args(["relay", "start", "--host", "0.0.0.0", "--port", RELAY_PORT]);
            c.args(["--public-name", RELAY_IP]);
            c
        },
        &dir.path().join("relay.log"),
        "relay listening on",
    );
    let cert = std::fs::read_dir(relay_home.join("relay"))
        .expect("the relay's directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("-cert.pem"))
        .expect("the relay wrote its certificate");
    let cert = cert.to_string_lossy().to_string();
    let link_flags = ["--relay", &relay_url, "--relay-cert", &cert];

    let worker_key = support::processes::id_of(&worker_home);
    let router_key = support::processes::id_of(&router_home);
    let worker = Running::start(
        {
            let mut c = support::bin::lobstah_in_netns(topology.home_a(), &worker_home);
            c.args([
                "worker",
                "start",
                "--engine",
                "synthetic",
                "--synthetic-rate",
                "0",
            ]);
            c.args(["--port", "0", "--trust", &router_key])
                .args(link_flags);
            c
        },
        &dir.path().join("worker.log"),
        "listening on",
    );
    let (ok, out) = support::bin::run(&router_home, &["peers", "add", &worker_key]);
    assert!(ok, "peers add by key alone: {out}");
    let router = Running::start(
        {
            let mut c = support::bin::lobstah_in_netns(topology.home_b(), &router_home);
            c.args(["router", "start", "--port", "0"]).args(link_flags);
            c
        },
        &dir.path().join("router.log"),
        "listening on",
    );

    let marker = format!("nat-marker-{}", uuid::Uuid::new_v4().simple());
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            topology.home_b(),
            &support::python::python(),
        ])
        .arg(support::python::script("nat_client.py"))
        .args([&router.url(), "synthetic", &marker])
        .env("NO_PROXY", "*")
        .output()
        .expect("run the SDK client in home B");
    let captured = capture.finish();
    let logs = || {
        ["relay", "worker", "router"]
            .map(|name| {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")));
                format!("--- {name} log\n{}", log.unwrap_or_default())
            })
            .join("\n")
    };
    assert!(
        out.status.success(),
        "the SDK client failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        logs()
    );
    let seen: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("the client prints JSON");

    eprintln!("the SDK client saw: {seen}");
    assert_eq!(seen["reached"]["state"], "ok", "{seen}");
    assert_eq!(seen["whole_tokens"], 8, "{seen}");
    assert!(seen["stream_pieces"].as_u64().unwrap_or(0) >= 8, "{seen}");
    // The NATs let nothing in that was not asked for, so a direct path is hole punching.
    assert_eq!(seen["final_path"], "direct", "{seen}\n{}", logs());
    assert!(seen["final_rtt_ms"].as_f64().is_some(), "{seen}");
    assert!(
        contains(&captured, b"GET /relay"),
        "the capture should see the relay's plain-HTTP upgrade (else it saw nothing): {} bytes",
        captured.len()
    );
    assert!(
        !contains(&captured, marker.as_bytes()),
        "the marker prompt crossed the public network in the clear"
    );

    router.stop();
    worker.stop();
    relay.stop();
    let (at_router, at_worker) = (receipts(&router_home), receipts(&worker_home));
    assert!(at_router.len() >= 3, "{} receipts", at_router.len());
    assert_eq!(at_router, at_worker, "both ledgers hold the same receipts");
    assert_eq!(unconfirmed(&worker_home), Vec::<String>::new());
    verify(&router_home);
    verify(&worker_home);
    drop(topology);
}
