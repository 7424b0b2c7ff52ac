//! `lobstah keygen` and `lobstah id`.

use std::process::ExitCode;

use anyhow::Context;

use crate::core::discovery::nostr;
use crate::core::keystore::{self, KeystoreError};
use crate::core::paths::Paths;

/// Creates the identity and, beside it, the Nostr key; `force` replaces both. An
/// identity made before lobstah spoke Nostr is kept and only gets the key it lacks.
pub(super) fn keygen(paths: &Paths, force: bool) -> anyhow::Result<ExitCode> {
    let path = paths.identity_file();
    let nostr_path = paths.nostr_key_file();
    let keep_nostr = !force && nostr_path.exists();
    if keep_nostr {
        // Checked before anything is written: an unusable key is not quietly kept.
        keystore::load_nostr_keys(&nostr_path)?;
    }
    let identity = match keystore::create_identity(&path, force) {
        Ok(identity) => {
            eprintln!("wrote {}", path.display());
            identity
        }
        Err(KeystoreError::Exists(..)) if !keep_nostr => {
            let identity =
                keystore::load_identity(&path).context("cannot load the existing identity")?;
            eprintln!("kept the identity at {}", path.display());
            identity
        }
        Err(e) => return Err(e.into()),
    };
    if keep_nostr {
        eprintln!("kept the Nostr key at {}", nostr_path.display());
    } else {
        keystore::create_nostr_keys(&nostr_path, force)?;
        eprintln!("wrote {}", nostr_path.display());
    }
    println!("{}", identity.public());
    Ok(ExitCode::SUCCESS)
}

/// Prints the lobstah public key, and with `nostr` the Nostr one (npub) on a second line.
pub(super) fn id(paths: &Paths, nostr: bool) -> anyhow::Result<ExitCode> {
    let identity = keystore::load_identity(&paths.identity_file())
        .context("cannot load this node's identity")?;
    let npub = if nostr {
        let keys = keystore::load_nostr_keys(&paths.nostr_key_file())
            .context("cannot load this node's Nostr key")?;
        Some(nostr::npub(&keys))
    } else {
        None
    };
    println!("{}", identity.public());
    if let Some(npub) = npub {
        println!("{npub}");
    }
    Ok(ExitCode::SUCCESS)
}
