//! `lobstah --headless` as a real process, as launchd or systemd runs it: its home in a
//! temporary directory, the router and control ports picked by the OS, and `node.json`
//! read once it appears (it is written once the control API answers).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::bin::lobstah;

const DEADLINE: Duration = Duration::from_secs(30);

/// A headless node on the synthetic engine, paced so requests are in flight long
/// enough to be caught by a signal.
pub struct Headless {
    pub child: Child,
    pub home: PathBuf,
    /// What `node.json` said once it appeared.
    pub info: Value,
}

impl Headless {
    pub fn start(home: &Path, rate: &str) -> Headless {
        Self::start_as(lobstah(home), home, rate)
    }

    /// Starts the node with its worker on `worker_port` (so a restart comes back where
    /// the peer book says it is).
    pub fn start_on(home: &Path, rate: &str, worker_port: u16) -> Headless {
        Self::launch(lobstah(home), home, rate, worker_port)
    }

    /// Starts the node from `command`: `lobstah` itself, or a wrapper that execs it.
    pub fn start_as(command: Command, home: &Path, rate: &str) -> Headless {
        Self::launch(command, home, rate, 0)
    }

    fn launch(mut command: Command, home: &Path, rate: &str, worker_port: u16) -> Headless {
        let child = command
            .args([
                "--headless",
                "--engine",
                "synthetic",
                "--synthetic-rate",
                rate,
            ])
            .args([
                "--router-port",
                "0",
                "--worker-port",
                &worker_port.to_string(),
            ])
            .env("LOBSTAH_CONTROL_PORT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start lobstah --headless");
        let node_file = home.join("node.json");
        let until = Instant::now() + DEADLINE;
        let info = loop {
            if let Some(v) = std::fs::read(&node_file)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            {
                break v;
            }
            assert!(Instant::now() < until, "node.json did not appear");
            std::thread::sleep(Duration::from_millis(20));
        };
        Headless {
            child,
            home: home.to_path_buf(),
            info,
        }
    }

    pub fn url(&self, key: &str) -> String {
        self.info[key].as_str().unwrap().to_string()
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.home.join("control.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits for exit; returns the code and what it logged.
    pub fn wait(mut self) -> (Option<i32>, String) {
        let until = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut log = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut err, &mut log);
                }
                return (status.code(), log);
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                panic!("lobstah --headless did not exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Headless {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
