//! `lobstah receipts --follow`: the node's receipts as they are ledgered, from its
//! control API's event stream. Survives the node restarting: it reconnects, resumes
//! after the last event it saw, and on a resync re-reads the snapshot and prints only
//! the receipts it has not printed (ledger sequence numbers outlive restarts).

use std::process::ExitCode;
use std::time::Duration;

use futures_util::StreamExt;

use super::output::receipt_line;
use crate::core::control::ControlClient;
use crate::core::node::{CoreEvent, EventItem, NodeClient, ReceiptRow};
use crate::core::paths::Paths;

const MAX_BACKOFF: Duration = Duration::from_secs(5);

struct Printer {
    json: bool,
    /// Ledger seq of the newest receipt printed.
    last: u64,
}

impl Printer {
    fn header(&self) {
        if !self.json {
            println!(
                "{:>6}  {:<20}  {:<6}  {:<16}  {:<24}  {:>8}  {:>8}",
                "seq", "completed", "role", "peer", "model", "in", "out"
            );
        }
    }

    fn print(&mut self, r: &ReceiptRow) {
        if r.seq <= self.last {
            return;
        }
        self.last = r.seq;
        if self.json {
            println!("{}", serde_json::to_string(r).unwrap_or_default());
            return;
        }
        println!("{}", receipt_line(r));
    }

    /// Receipts from a snapshot (newest first there), oldest first here.
    fn catch_up(&mut self, rows: &[ReceiptRow], limit: usize) {
        let mut fresh: Vec<&ReceiptRow> = rows
            .iter()
            .filter(|r| r.seq > self.last)
            .take(limit)
            .collect();
        fresh.reverse();
        for r in fresh {
            self.print(r);
        }
    }
}

pub(super) async fn follow(paths: &Paths, limit: usize, json: bool) -> anyhow::Result<ExitCode> {
    let mut client = ControlClient::discover(paths.data_dir())?;
    let snapshot = client.snapshot().await?;
    let mut printer = Printer { json, last: 0 };
    printer.header();
    printer.catch_up(&snapshot.receipts, limit);
    // Printed up to here, even if --limit hid older ones.
    printer.last = printer
        .last
        .max(snapshot.receipts.first().map_or(0, |r| r.seq));
    let mut after = Some(snapshot.seq);
    let mut backoff = Duration::from_millis(200);
    let mut outage_reported = false;
    loop {
        match client.subscribe(after).await {
            Ok(mut stream) => {
                backoff = Duration::from_millis(200);
                outage_reported = false;
                loop {
                    let item = tokio::select! {
                        _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
                        item = stream.next() => item,
                    };
                    match item {
                        None => break,
                        Some(EventItem::Event(e)) => {
                            after = Some(e.seq);
                            match e.event {
                                CoreEvent::Receipt { receipt, .. } => printer.print(&receipt),
                                CoreEvent::ShuttingDown => {
                                    eprintln!(
                                        "the node is shutting down; waiting for it to come back"
                                    );
                                }
                                _ => {}
                            }
                        }
                        Some(EventItem::Resync) => match client.snapshot().await {
                            Ok(s) => {
                                printer.catch_up(&s.receipts, usize::MAX);
                                after = Some(s.seq);
                            }
                            Err(_) => break,
                        },
                    }
                }
            }
            Err(e) => {
                if !outage_reported {
                    eprintln!("waiting for the node: {e}");
                    outage_reported = true;
                }
            }
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::SUCCESS),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        // A restarted node has a new token and maybe a new port.
        if let Ok(fresh) = ControlClient::discover(paths.data_dir()) {
            client = fresh;
        }
    }
}
