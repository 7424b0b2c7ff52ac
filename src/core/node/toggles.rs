//! What the operator switched on a running node (advertising, from the console or a
//! command), kept in `toggles.json` beside the database so a restart keeps it. A flag or
//! environment variable given at start still wins: it is the operator speaking now.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::core::config::{Config, Source};
use crate::core::control::files::{TOGGLES_FILE, write_atomically};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Toggles {
    /// The last advertising switch; `None` until the operator flips it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advertising: Option<bool>,
}

/// The saved toggles; a missing file is none saved, and an unreadable one is reported
/// and treated the same (the node starts from its configuration).
pub(super) fn load(data_dir: &Path) -> Toggles {
    let path = data_dir.join(TOGGLES_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Toggles::default(),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the saved toggles; using the configuration");
            return Toggles::default();
        }
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        tracing::warn!(file = %path.display(), error = %e, "the saved toggles do not parse; using the configuration");
        Toggles::default()
    })
}

/// Keeps the advertising switch for the next start (what `SetAdvertising` does on a
/// running node, and `lobstah advertise` on a stopped one).
pub fn save_advertising(data_dir: &Path, on: bool) -> std::io::Result<()> {
    let mut toggles = load(data_dir);
    toggles.advertising = Some(on);
    save(data_dir, &toggles)
}

pub(super) fn save(data_dir: &Path, toggles: &Toggles) -> std::io::Result<()> {
    let mut body = serde_json::to_vec_pretty(toggles).map_err(std::io::Error::other)?;
    body.push(b'\n');
    write_atomically(&data_dir.join(TOGGLES_FILE), &body, true)
}

/// Whether to advertise at start: a flag or environment variable, else the operator's
/// last switch, else config.toml (or the default, off).
pub(super) fn advertise_at_start(config: &Config, saved: &Toggles) -> bool {
    let given_now = matches!(
        config.source("advertise.enabled"),
        Some(Source::Flag { .. } | Source::Env { .. })
    );
    match saved.advertising {
        Some(on) if !given_now => on,
        _ => config.advertise.enabled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_toggles_round_trip_and_a_broken_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), Toggles::default());
        let on = Toggles {
            advertising: Some(true),
        };
        save(dir.path(), &on).unwrap();
        assert_eq!(load(dir.path()), on);
        std::fs::write(dir.path().join(TOGGLES_FILE), b"{not json").unwrap();
        assert_eq!(load(dir.path()), Toggles::default());
    }
}
