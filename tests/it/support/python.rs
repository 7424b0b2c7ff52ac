//! Runs the Python side of cross-language tests. A missing interpreter or package is a
//! test failure with instructions, never a silent skip.

use std::path::PathBuf;
use std::process::{Command, Output};

/// `$LOBSTAH_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("LOBSTAH_PYTHON").unwrap_or_else(|_| "python3".into())
}

pub fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Fails the test, with the fix, when `module` cannot be imported.
pub fn require_module(module: &str) {
    let out = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; install Python 3 or set LOBSTAH_PYTHON",
                python()
            )
        });
    assert!(
        out.status.success(),
        "Python package `{module}` is missing for {}: run `python3 -m pip install -r tests/py/requirements.txt`\n{}",
        python(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a script in tests/py off the async runtime's threads and returns its output.
pub async fn run(name: &str, args: Vec<String>) -> Output {
    let path = script(name);
    tokio::task::spawn_blocking(move || {
        Command::new(python())
            .arg(&path)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", path.display()))
    })
    .await
    .expect("python task")
}
