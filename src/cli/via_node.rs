//! Peer and ledger commands beside a running node. The node owns the database while it
//! runs, so when `node.json` names a node that answers, `peers add|remove|list`,
//! `balance` and `receipts` go through its control API instead of the file.

use std::future::Future;
use std::process::ExitCode;

use serde_json::json;

use super::output::{receipt_header, receipt_line, thousands};
use crate::core::control::ControlClient;
use crate::core::ledger::ALLOWANCE_TOKENS;
use crate::core::node::{ClientError, NodeClient, NodeCommand};
use crate::core::paths::Paths;

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

pub(super) fn peers_command(
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
            "{:<16} {:<14} {:<32} {:<12} source",
            "label", "pubkey", "url", "state"
        );
        for p in peers {
            println!(
                "{:<16} {:<14} {:<32} {:<12} {}",
                p.label.as_deref().unwrap_or("-"),
                p.pubkey.chars().take(12).collect::<String>() + "…",
                p.url,
                format!("{:?}", p.health).to_lowercase(),
                p.source
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) fn balance(paths: &Paths, as_json: bool) -> Option<anyhow::Result<ExitCode>> {
    with_node(paths, |node| async move {
        let s = node.snapshot().await?;
        let b = s.balance;
        if as_json {
            let out = json!({"pubkey": s.identity, "earned": b.earned, "spent": b.spent,
                "net": b.net, "available": b.available, "receipts": b.receipts});
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            return Ok(ExitCode::SUCCESS);
        }
        println!("identity   {}", s.identity);
        println!("earned     {}", thousands(b.earned as i64));
        println!("spent      {}", thousands(b.spent as i64));
        println!(
            "net        {}{}",
            if b.net > 0 { "+" } else { "" },
            thousands(b.net)
        );
        println!(
            "available  {}  ({} allowance + net)",
            thousands(b.available),
            thousands(ALLOWANCE_TOKENS)
        );
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
