//! Logs while the console is up. Anything written to stderr would tear the full-screen
//! drawing, so the console's caller sends `tracing` output to a file instead.

use std::fs::{self, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;

/// Sends `tracing` events at `filter` (an `EnvFilter` directive such as `info` or
/// `lobstah=debug`) to `path`, appending, without colour codes. Creates the parent
/// directory. Fails if a global subscriber is already installed: that one would keep
/// writing wherever it writes, which is the thing to avoid.
pub fn log_to_file(path: &Path, filter: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create the log directory {}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(Mutex::new(file))
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot send logs to {}: {e}", path.display()))
}
