//! Runs the Node.js side of the client tests (tests/node). A missing `node` or a missing
//! `npm ci` is a test failure with the fix, never a silent skip.

use std::path::PathBuf;
use std::process::{Command, Output};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Fails the test, with the fix, when `node` or the pinned packages are missing.
pub fn require_packages() {
    let out = Command::new("node").arg("--version").output();
    assert!(
        out.as_ref().is_ok_and(|o| o.status.success()),
        "Node.js is missing: install it (the tests drive the router with the official OpenAI Node SDK)"
    );
    assert!(
        dir().join("node_modules/openai/package.json").exists(),
        "the OpenAI Node SDK is not installed: run `npm ci --prefix tests/node`"
    );
}

/// Runs a script in tests/node off the async runtime's threads.
pub async fn run(name: &str, args: Vec<String>) -> Output {
    let path = dir().join(name);
    tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&path)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
    })
    .await
    .expect("node task")
}
