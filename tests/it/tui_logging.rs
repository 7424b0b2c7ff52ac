//! Logs go to a file while the console draws: `log_to_file` creates the directory, appends
//! plain text (no colour codes), and refuses to install over an existing subscriber.
//! It installs the process-wide subscriber, so it is the only test in the binary that may
//! install one; events from tests running beside it land in its file, at no harm.

use lobstah::tui::log_to_file;

#[test]
fn logs_land_in_the_file_and_a_second_install_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("logs/console.log");
    log_to_file(&path, "info").expect("first install");
    tracing::info!(peer = "gpu-box", "excluded for 30 s");
    tracing::debug!("below the filter");

    let written = std::fs::read_to_string(&path).expect("log file");
    assert!(
        written.contains("excluded for 30 s") && written.contains("gpu-box"),
        "{written}"
    );
    assert!(!written.contains("below the filter"));
    assert!(
        !written.contains('\u{1b}'),
        "no terminal escapes in a file: {written:?}"
    );

    let again = log_to_file(&dir.path().join("other.log"), "info");
    assert!(
        again.is_err(),
        "a second subscriber would be silently ignored"
    );
}
