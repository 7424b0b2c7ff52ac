//! The files a running node keeps in its data directory: `control.token` (the bearer
//! token, 0600) and `node.json` (where it listens, its pid). Both are written whole via a
//! temporary file and a rename, so a reader never sees half of one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const NODE_FILE: &str = "node.json";
pub const TOKEN_FILE: &str = "control.token";
/// Runtime toggles the operator flipped (advertising), kept across restarts.
pub const TOGGLES_FILE: &str = "toggles.json";

/// What `node.json` says about the running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub pid: u32,
    pub pubkey: String,
    pub control_url: String,
    /// Absent when the node runs no router (`lobstah worker start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_url: Option<String>,
    /// Absent when the node runs no worker (`lobstah router start`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_url: Option<String>,
    pub started_at_ms: u64,
    pub data_dir: PathBuf,
}

pub fn node_file(data_dir: &Path) -> PathBuf {
    data_dir.join(NODE_FILE)
}

pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join(TOKEN_FILE)
}

/// A fresh token: 32 random bytes as 64 hex characters.
pub fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares in time independent of where the first difference is, so the token cannot
/// be guessed a byte at a time. (Its length is public: always 64.)
pub fn tokens_match(given: &str, expected: &str) -> bool {
    let (a, b) = (given.as_bytes(), expected.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn write_atomically(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    // A leftover temporary file may have other permissions; start from none.
    let _ = fs::remove_file(&tmp);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&tmp, path)
}

pub fn write_token(data_dir: &Path, token: &str) -> std::io::Result<PathBuf> {
    let path = token_file(data_dir);
    write_atomically(&path, format!("{token}\n").as_bytes(), true)?;
    Ok(path)
}

pub fn read_token(data_dir: &Path) -> std::io::Result<String> {
    Ok(fs::read_to_string(token_file(data_dir))?.trim().to_string())
}

pub fn write_node_info(data_dir: &Path, info: &NodeInfo) -> std::io::Result<PathBuf> {
    let path = node_file(data_dir);
    let mut body = serde_json::to_vec_pretty(info).map_err(std::io::Error::other)?;
    body.push(b'\n');
    write_atomically(&path, &body, false)?;
    Ok(path)
}

/// `node.json`, or `None` if there is none (no node running, or it exited cleanly). A
/// file that does not parse is treated as absent: it can only be stale.
pub fn read_node_info(data_dir: &Path) -> Option<NodeInfo> {
    let bytes = fs::read(node_file(data_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_is_private_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let token = new_token();
        assert_eq!(token.len(), 64);
        assert_ne!(token, new_token());
        let path = write_token(dir.path(), &token).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert_eq!(read_token(dir.path()).unwrap(), token);
        assert!(tokens_match(&token, &token));
        assert!(!tokens_match(&token[..63], &token));
        let mut wrong = token.clone().into_bytes();
        wrong[63] = if wrong[63] == b'0' { b'1' } else { b'0' };
        assert!(!tokens_match(std::str::from_utf8(&wrong).unwrap(), &token));
    }

    #[test]
    fn node_info_round_trips_and_garbage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_node_info(dir.path()), None);
        let info = NodeInfo {
            pid: 42,
            pubkey: "lob1x".into(),
            control_url: "http://127.0.0.1:1".into(),
            router_url: Some("http://127.0.0.1:2".into()),
            worker_url: Some("http://127.0.0.1:3".into()),
            started_at_ms: 7,
            data_dir: dir.path().to_path_buf(),
        };
        write_node_info(dir.path(), &info).unwrap();
        assert_eq!(read_node_info(dir.path()), Some(info));
        fs::write(node_file(dir.path()), "{").unwrap();
        assert_eq!(read_node_info(dir.path()), None);
    }
}
