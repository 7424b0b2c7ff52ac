//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the bodies of the
//! fuzz targets in `lobstah::fuzzing`, so a plain `cargo test` guards every input the
//! fuzzer kept, without libFuzzer or a nightly compiler. A missing or empty corpus
//! directory fails, so the corpus cannot silently go away.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {} is missing: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "corpus {} is empty", dir.display());
    files
}

/// Runs every file; names all the failing ones, not just the first.
fn replay(target: &str, run: fn(&[u8])) {
    let mut failed = Vec::new();
    for path in corpus(target) {
        let data = std::fs::read(&path).expect("read corpus file");
        if catch_unwind(AssertUnwindSafe(|| run(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "{target}: failing inputs {failed:#?}");
}

#[test]
fn receipt_corpus() {
    replay("receipt", lobstah::fuzzing::receipt);
}

#[test]
fn announcement_corpus() {
    replay("announcement", lobstah::fuzzing::announcement);
}

#[test]
fn sse_stream_corpus() {
    replay("sse_stream", lobstah::fuzzing::sse_stream);
}

#[test]
fn chat_request_corpus() {
    replay("chat_request", lobstah::fuzzing::chat_request);
}

#[test]
fn control_command_corpus() {
    replay("control_command", lobstah::fuzzing::control_command);
}

#[test]
fn request_auth_corpus() {
    replay("request_auth", lobstah::fuzzing::request_auth);
}

#[test]
fn confirmation_corpus() {
    replay("confirmation", lobstah::fuzzing::confirmation);
}
