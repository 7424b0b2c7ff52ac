//! `lobstah keygen` and `lobstah id`.

use std::process::ExitCode;

use anyhow::Context;

use crate::core::keystore;
use crate::core::paths::Paths;

pub fn keygen(paths: &Paths, force: bool) -> anyhow::Result<ExitCode> {
    let path = paths.identity_file();
    let identity = keystore::create_identity(&path, force)?;
    eprintln!("wrote {}", path.display());
    println!("{}", identity.public());
    Ok(ExitCode::SUCCESS)
}

pub fn id(paths: &Paths) -> anyhow::Result<ExitCode> {
    let identity = keystore::load_identity(&paths.identity_file())
        .context("cannot load this node's identity")?;
    println!("{}", identity.public());
    Ok(ExitCode::SUCCESS)
}
