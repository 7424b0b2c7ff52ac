//! The key files: the lobstah identity (`{"version":1,"publicKey":"lob1…","secretKey":
//! "<seed hex>"}`) and the Nostr key (one line, the secp256k1 secret in hex) that signs
//! the envelope of Nostr announcements. Both mode 0600; a file others can read is
//! refused, not silently fixed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use nostr_sdk::prelude::Keys;
use serde::{Deserialize, Serialize};

use crate::core::protocol::{Identity, PublicKey};

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("no identity at {0}: run `lobstah keygen` to create one")]
    Missing(PathBuf),
    #[error(
        "an identity already exists at {0} ({1}); pass --force to replace it (the old key and its credits are lost)"
    )]
    Exists(PathBuf, String),
    #[error(
        "no Nostr key at {0}: run `lobstah keygen` to create one (an existing identity is kept)"
    )]
    NostrKeyMissing(PathBuf),
    #[error("a Nostr key already exists at {0} ({1}); pass --force to replace it")]
    NostrKeyExists(PathBuf, String),
    #[error(
        "the {what} {path} can be read by other users (mode {mode:04o}); fix it with: chmod 600 {path}"
    )]
    TooOpen {
        what: &'static str,
        path: PathBuf,
        mode: u32,
    },
    #[error("the {what} {path} is not valid: {detail}")]
    Invalid {
        what: &'static str,
        path: PathBuf,
        detail: String,
    },
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityFile {
    version: u64,
    public_key: String,
    secret_key: String,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeystoreError + '_ {
    move |source| KeystoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const IDENTITY: &str = "identity file";
const NOSTR_KEY: &str = "Nostr key file";

/// Reads a key file, refusing one that group or others can read; `missing` names the
/// error for an absent file, as each key has its own way to be created.
fn read_private(
    path: &Path,
    what: &'static str,
    missing: fn(PathBuf) -> KeystoreError,
) -> Result<Vec<u8>, KeystoreError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(missing(path.to_path_buf()));
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    check_private(path, &meta, what)?;
    fs::read(path).map_err(io_err(path))
}

/// Loads the identity at `path`, refusing files that group or others can read.
pub fn load_identity(path: &Path) -> Result<Identity, KeystoreError> {
    let text = read_private(path, IDENTITY, KeystoreError::Missing)?;
    let invalid = |detail: String| KeystoreError::Invalid {
        what: IDENTITY,
        path: path.to_path_buf(),
        detail,
    };
    let file: IdentityFile = serde_json::from_slice(&text)
        .map_err(|e| invalid(format!("not the expected JSON: {e}")))?;
    if file.version != 1 {
        return Err(invalid(format!("unsupported version {}", file.version)));
    }
    let identity = Identity::from_seed_hex(&file.secret_key).map_err(|e| invalid(e.to_string()))?;
    let claimed = PublicKey::parse(&file.public_key).map_err(|e| invalid(e.to_string()))?;
    if claimed != identity.public() {
        return Err(invalid(format!(
            "publicKey {claimed} does not belong to the secret key (which gives {})",
            identity.public()
        )));
    }
    Ok(identity)
}

#[cfg(unix)]
fn check_private(
    path: &Path,
    meta: &fs::Metadata,
    what: &'static str,
) -> Result<(), KeystoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeystoreError::TooOpen {
            what,
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(
    _path: &Path,
    _meta: &fs::Metadata,
    _what: &'static str,
) -> Result<(), KeystoreError> {
    Ok(())
}

/// Creates a new identity at `path` (0600, written to a temporary file and renamed so a
/// crash never leaves half a key). Refuses to replace one unless `force`.
pub fn create_identity(path: &Path, force: bool) -> Result<Identity, KeystoreError> {
    if !force && path.exists() {
        let current = load_identity(path)
            .map(|id| id.public().to_string())
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        return Err(KeystoreError::Exists(path.to_path_buf(), current));
    }
    let identity = Identity::generate();
    write_identity(path, &identity)?;
    Ok(identity)
}

pub fn write_identity(path: &Path, identity: &Identity) -> Result<(), KeystoreError> {
    let body = serde_json::to_vec_pretty(&IdentityFile {
        version: 1,
        public_key: identity.public().to_string(),
        secret_key: identity.seed_hex(),
    })
    .map_err(|e| KeystoreError::Invalid {
        what: IDENTITY,
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    let mut body = body;
    body.push(b'\n');
    write_private(path, &body)
}

/// Loads the Nostr key at `path` (hex or `nsec1…`), with the identity's file rules.
pub fn load_nostr_keys(path: &Path) -> Result<Keys, KeystoreError> {
    let text = read_private(path, NOSTR_KEY, KeystoreError::NostrKeyMissing)?;
    let invalid = |detail: String| KeystoreError::Invalid {
        what: NOSTR_KEY,
        path: path.to_path_buf(),
        detail,
    };
    let text = std::str::from_utf8(&text).map_err(|_| invalid("not UTF-8 text".into()))?;
    // The error from nostr names the key's problem without echoing the secret.
    Keys::parse(text.trim()).map_err(|e| {
        invalid(format!(
            "expected a secp256k1 secret key in hex or nsec form: {e}"
        ))
    })
}

/// Creates a new Nostr key at `path` (0600, atomically). Refuses to replace one unless
/// `force`; the key carries no credits, but peers watching relays know it.
pub fn create_nostr_keys(path: &Path, force: bool) -> Result<Keys, KeystoreError> {
    if !force && path.exists() {
        let current = load_nostr_keys(path)
            .map(|keys| keys.public_key().to_hex())
            .unwrap_or_else(|e| format!("unreadable: {e}"));
        return Err(KeystoreError::NostrKeyExists(path.to_path_buf(), current));
    }
    let keys = Keys::generate();
    let mut body = keys.secret_key().to_secret_hex().into_bytes();
    body.push(b'\n');
    write_private(path, &body)?;
    Ok(keys)
}

/// The Nostr key at `path`, created when absent: a node upgraded from a version without
/// Nostr has an identity but no Nostr key, and the key holds nothing worth asking about.
pub fn load_or_create_nostr_keys(path: &Path) -> Result<Keys, KeystoreError> {
    match load_nostr_keys(path) {
        Err(KeystoreError::NostrKeyMissing(_)) => create_nostr_keys(path, false),
        other => other,
    }
}

/// Writes `body` to `path` with mode 0600, through a temporary file renamed into place so
/// a crash never leaves half a key.
fn write_private(path: &Path, body: &[u8]) -> Result<(), KeystoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io_err(&tmp))?;
    file.write_all(body).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    Ok(())
}

fn create_private_dir(dir: &Path) -> Result<(), KeystoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn create_load_and_refuse_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.json");
        let id = create_identity(&path, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_identity(&path).unwrap().public(), id.public());
        assert!(matches!(
            create_identity(&path, false),
            Err(KeystoreError::Exists(..))
        ));
        let replaced = create_identity(&path, true).unwrap();
        assert_ne!(replaced.public(), id.public());
    }

    #[test]
    fn refuses_readable_and_invalid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("identity.json");
        create_identity(&path, false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_identity(&path).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");

        let cases = [
            ("{", "not the expected JSON"),
            (
                r#"{"version":2,"publicKey":"x","secretKey":"y"}"#,
                "unsupported version",
            ),
            (
                r#"{"version":1,"publicKey":"x","secretKey":"zz"}"#,
                "secret key",
            ),
        ];
        for (text, needle) in cases {
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
            let err = load_identity(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let other = Identity::from_seed([5; 32]);
        let mismatched = format!(
            r#"{{"version":1,"publicKey":"{}","secretKey":"{}"}}"#,
            Identity::from_seed([6; 32]).public(),
            other.seed_hex()
        );
        fs::write(&path, mismatched).unwrap();
        let err = load_identity(&path).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        assert!(matches!(
            load_identity(&dir.path().join("nope.json")),
            Err(KeystoreError::Missing(_))
        ));
    }

    #[test]
    fn nostr_key_follows_the_identity_file_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nostr.key");
        assert!(matches!(
            load_nostr_keys(&path),
            Err(KeystoreError::NostrKeyMissing(_))
        ));
        let keys = create_nostr_keys(&path, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            load_nostr_keys(&path).unwrap().public_key(),
            keys.public_key()
        );
        assert_eq!(
            load_or_create_nostr_keys(&path).unwrap().public_key(),
            keys.public_key()
        );
        let err = create_nostr_keys(&path, false).unwrap_err();
        assert!(matches!(err, KeystoreError::NostrKeyExists(..)), "{err}");
        assert!(err.to_string().contains("--force"), "{err}");
        let replaced = create_nostr_keys(&path, true).unwrap();
        assert_ne!(replaced.public_key(), keys.public_key());

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = load_nostr_keys(&path).unwrap_err().to_string();
        assert!(
            err.contains("Nostr key file") && err.contains("chmod 600"),
            "{err}"
        );

        let secret = "zz".repeat(32);
        fs::write(&path, &secret).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_nostr_keys(&path).unwrap_err().to_string();
        assert!(err.contains("not valid"), "{err}");
        assert!(!err.contains(&secret), "the error echoes the file: {err}");

        // An nsec written by hand (or by another Nostr tool) loads too.
        use nostr_sdk::prelude::ToBech32;
        let nsec = keys.secret_key().to_bech32().unwrap();
        fs::write(&path, format!("{nsec}\n")).unwrap();
        assert_eq!(
            load_nostr_keys(&path).unwrap().public_key(),
            keys.public_key()
        );

        let fresh = dir.path().join("sub").join("nostr.key");
        let created = load_or_create_nostr_keys(&fresh).unwrap();
        assert_eq!(
            load_nostr_keys(&fresh).unwrap().public_key(),
            created.public_key()
        );
    }
}
