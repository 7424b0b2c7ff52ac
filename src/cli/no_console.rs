//! `lobstah tui` and `lobstah demo` in a build without the `tui` feature: they say so,
//! and point at what works without a terminal console.

use std::process::ExitCode;

use anyhow::bail;

use super::node_cmds::NodeFlags;
use crate::core::paths::Paths;

const NOT_BUILT: &str = "this lobstah was built without the terminal console (the `tui` feature); run the node with `lobstah --headless` and read it with `lobstah status`";

pub(crate) fn console(_paths: &Paths, _flags: &NodeFlags) -> anyhow::Result<ExitCode> {
    bail!(NOT_BUILT)
}

pub(crate) fn demo() -> anyhow::Result<ExitCode> {
    bail!(NOT_BUILT)
}
