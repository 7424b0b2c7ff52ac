//! Where lobstah keeps its files: `LOBSTAH_HOME` (or `--home`) when set, otherwise the
//! platform's data and config directories from `directories`.

use std::path::{Path, PathBuf};

use directories::ProjectDirs;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    data: PathBuf,
    config: PathBuf,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot find a home directory for lobstah's data; set LOBSTAH_HOME")]
pub struct NoHomeDir;

impl Paths {
    /// `home` is the `--home` flag or `LOBSTAH_HOME`; both data and config live there.
    pub fn resolve(home: Option<&Path>) -> Result<Self, NoHomeDir> {
        if let Some(home) = home {
            return Ok(Paths::in_dir(home));
        }
        let dirs = ProjectDirs::from("", "", "lobstah").ok_or(NoHomeDir)?;
        Ok(Paths {
            data: dirs.data_dir().to_path_buf(),
            config: dirs.config_dir().to_path_buf(),
        })
    }

    pub fn in_dir(dir: &Path) -> Self {
        Paths {
            data: dir.to_path_buf(),
            config: dir.to_path_buf(),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    pub fn identity_file(&self) -> PathBuf {
        self.data.join("identity.json")
    }

    /// The secp256k1 key that signs this node's Nostr events (separate from the identity).
    pub fn nostr_key_file(&self) -> PathBuf {
        self.data.join("nostr.key")
    }

    pub fn database(&self) -> PathBuf {
        self.data.join("lobstah.redb")
    }
}
