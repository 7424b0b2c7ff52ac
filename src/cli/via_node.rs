//! Peer and ledger commands beside a running node. The node owns the database while it
//! runs, so when `node.json` names a node that answers, `peers add|remove|list`,
//! `balance [--all]`, `receipts` and `ledger verify|export` go through its control API
//! instead of the file. Every kind of node has one: `--headless`, `tui`, `router start`
//! and `worker start`.

use std::future::Future;
use std::process::ExitCode;

use super::output::{receipt_header, receipt_line};
use crate::core::control::ControlClient;
use crate::core::ledger::Balance;
use crate::core::node::{ClientError, NodeClient, NodeCommand};
use crate::core::paths::Paths;
use crate::core::protocol::PublicKey;

/// `Some` when a node runs on this home and answered (or refused); `None` to use the
/// database directly (no node, or a stale node.json).
fn with_node<F, Fut>(paths: &Paths, f: F) -> Option<anyhow::Result<ExitCode>>
where
    F: FnOnce(ControlClient) -> Fut,
    Fut: Future<Output = Result<ExitCode, ClientError>>,
{
    let client = ControlClient::discover(paths.data_dir()).ok()?;
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(e) => return Some(Err(e)),
    };
    match runtime.block_on(f(client)) {
        Err(ClientError::Unreachable(_)) => None,
        other => Some(other.map_err(anyhow::Error::from)),
    }
}

fn outcome_code(ok: bool, message: &str) -> ExitCode {
    if ok {
        println!("{message}");
        ExitCode::SUCCESS
    } else {
        eprintln!("{message}");
        ExitCode::FAILURE
    }
}

pub(super) fn node_command(
    paths: &Paths,
    command: NodeCommand,
) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let outcome = node.command(command).await?;
        Ok(outcome_code(outcome.ok, &outcome.message))
    })
}

pub(super) fn peers_list(paths: &Paths, as_json: bool) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let peers = node.snapshot().await?.peers;
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(&peers).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if peers.is_empty() {
            println!("no peers yet");
            return Ok(ExitCode::SUCCESS);
        }
        println!(
            "{:<16} {:<14} {:<40} {:<12} source",
            "label", "pubkey", "reached at", "state"
        );
        for p in peers {
            let at = super::peers_cmds::reached_at(&p);
            println!(
                "{:<16} {:<14} {:<40} {:<12} {}",
                p.label.as_deref().unwrap_or("-"),
                p.pubkey.chars().take(12).collect::<String>() + "…",
                at,
                format!("{:?}", p.health).to_lowercase(),
                p.source
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// The newest receipts the node's snapshot holds (up to 200).
pub(super) fn receipts(
    paths: &Paths,
    limit: usize,
    as_json: bool,
) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let rows: Vec<_> = node
            .snapshot()
            .await?
            .receipts
            .into_iter()
            .take(limit)
            .collect();
        if as_json {
            println!(
                "{}",
                serde_json::to_string_pretty(&rows).unwrap_or_default()
            );
            return Ok(ExitCode::SUCCESS);
        }
        if rows.is_empty() {
            println!("no receipts yet");
            return Ok(ExitCode::SUCCESS);
        }
        println!("{}", receipt_header());
        for r in rows {
            println!("{}", receipt_line(&r));
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// `balance` (the node's own) or `balance --all`, printed as offline.
pub(super) fn balances(
    paths: &Paths,
    as_json: bool,
    all: bool,
) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let balances = node.balances().await?;
        let printed = if all {
            super::ledger_cmds::print_balances(&balances, as_json)
        } else {
            // node.json names the node's key: no second request for it.
            let me = match node.info() {
                Some(info) => info.pubkey.clone(),
                None => node.snapshot().await?.identity,
            };
            let mine = balances
                .iter()
                .find(|b| b.pubkey.to_string() == me)
                .copied()
                .or_else(|| PublicKey::parse(&me).ok().map(Balance::empty));
            match mine {
                Some(b) => super::ledger_cmds::print_balance(&b, as_json),
                None => Err(anyhow::anyhow!("the node named a malformed identity: {me}")),
            }
        };
        Ok(printed.map_or_else(
            |e| {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            },
            |()| ExitCode::SUCCESS,
        ))
    })
}

/// `ledger verify`, run by the node over its own database and printed as offline.
pub(super) fn verify(paths: &Paths, as_json: bool) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let report = node.verify_ledger().await?;
        Ok(
            super::ledger_cmds::print_verify(&report, as_json).unwrap_or_else(|e| {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }),
        )
    })
}

/// `ledger export`: the node's receipts, streamed to stdout as JSON lines.
pub(super) fn export(paths: &Paths) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let stdout = std::io::stdout();
        node.export_ledger(&mut stdout.lock()).await?;
        Ok(ExitCode::SUCCESS)
    })
}
