//! The real binary in a real terminal (tmux): a headless node runs, `lobstah tui`
//! attaches to it, a peer is added with keystrokes, shows on screen, and is in
//! `lobstah status --json`.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lobstah::core::protocol::Identity;

const BIN: &str = env!("CARGO_BIN_EXE_lobstah");

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("tmux is needed for this test (apt-get install tmux): {e}"))
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.run(&["capture-pane", "-p", "-t", "console"]).stdout)
            .into_owned()
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.screen();
            if screen.contains(needle) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "console"];
        args.extend_from_slice(keys);
        assert!(self.run(&args).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

struct Headless(Child);

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn add_a_peer_from_the_console_of_a_running_node() {
    let home = tempfile::tempdir().unwrap();
    let home_str = home.path().to_str().unwrap().to_string();
    let node = Headless(
        Command::new(BIN)
            .args(["--home", &home_str, "--headless", "--engine", "synthetic"])
            .args([
                "--router-port",
                "0",
                "--worker-port",
                "0",
                "--control-port",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_file(&home.path().join("node.json"));

    let tmux = Tmux {
        socket: format!("lobstah-e2e-{}", std::process::id()),
    };
    let console = format!("{BIN} --home {home_str} tui");
    let started = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "console",
        "-x",
        "120",
        "-y",
        "40",
        &console,
    ]);
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    tmux.wait_for("Peers (0)");

    let pubkey = Identity::from_seed([77; 32]).public().to_string();
    tmux.keys(&["a"]);
    tmux.wait_for("Add peer");
    tmux.keys(&["-l", &pubkey]);
    tmux.keys(&["Tab"]);
    tmux.keys(&["-l", "http://127.0.0.1:9"]);
    tmux.keys(&["Tab"]);
    tmux.keys(&["-l", "friend-mac"]);
    tmux.keys(&["Enter"]);
    // The label is typed into the form first; the table counting one peer is the proof.
    let screen = tmux.wait_for("Peers (1)");
    assert!(
        screen.contains("friend-mac") && !screen.contains("Add peer"),
        "{screen}"
    );

    let status = Command::new(BIN)
        .args(["--home", &home_str, "status", "--json"])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let snapshot: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let peers = snapshot["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "{snapshot}");
    assert_eq!(peers[0]["pubkey"], pubkey.as_str());
    assert_eq!(peers[0]["label"], "friend-mac");
    assert_eq!(peers[0]["url"], "http://127.0.0.1:9");

    tmux.keys(&["q"]);
    drop(tmux);
    drop(node);
}
