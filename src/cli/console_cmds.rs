//! `lobstah tui` (and bare `lobstah` on a terminal) and `lobstah demo`: the operator
//! console, attached to a running node or to one started here.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};

use super::node_cmds::NodeFlags;
use super::runtime;
use crate::core::config::Config;
use crate::core::control::{Attached, attach_or_start};
use crate::core::demo::Demo;
use crate::core::node::Roles;
use crate::core::paths::Paths;

fn log_filter() -> String {
    std::env::var("LOBSTAH_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
}

fn require_terminal(what: &str) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        bail!(
            "{what} draws a dashboard and needs a terminal; for a daemon use `lobstah --headless`, for its state `lobstah status`"
        );
    }
    Ok(())
}

/// Attaches to the node running on this home, or starts one in this process for as long
/// as the console is open.
pub(super) fn console(paths: &Paths, flags: &NodeFlags) -> anyhow::Result<ExitCode> {
    require_terminal("the console")?;
    let log = paths.data_dir().join("logs").join("console.log");
    crate::tui::log_to_file(&log, &log_filter())?;
    let config =
        Config::load(paths, &flags.overrides()).context("cannot read the configuration")?;
    runtime()?.block_on(async {
        let attached = attach_or_start(
            config,
            paths.clone(),
            super::node_cmds::node_deps(Roles::BOTH),
        )
        .await
        .context("cannot attach to or start the node")?;
        match &attached {
            Attached::Remote(_) => tracing::info!("console attached to the running node"),
            Attached::Local(_) => tracing::info!("no node running: started one for the console"),
        }
        let result = crate::tui::run(attached.client()).await;
        if let Attached::Local(handle) = attached {
            handle.close().await;
        }
        result.map(|_| ExitCode::SUCCESS)
    })
}

/// A local demo grid with the console on it; everything is removed on exit.
pub(super) fn demo() -> anyhow::Result<ExitCode> {
    require_terminal("the demo")?;
    let log = std::env::temp_dir().join("lobstah-demo.log");
    crate::tui::log_to_file(Path::new(&log), &log_filter())?;
    runtime()?.block_on(async {
        let demo = Demo::start().await.context("cannot start the demo grid")?;
        let result = crate::tui::run(Arc::new(demo.node.clone())).await;
        demo.stop().await;
        result.map(|_| ExitCode::SUCCESS)
    })
}
