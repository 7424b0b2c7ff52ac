//! JSONL import and export: one signed receipt per line, the format the existing Lobstah
//! network keeps in `~/.lobstah/ledger.jsonl`.

use std::io::{BufRead, Write};

use serde::Serialize;

use super::{AcceptRules, AppendOutcome, Ledger, Party, Verified, accept};
use crate::core::protocol::SignedReceipt;
use crate::core::store::StoreError;

/// Lines per transaction during an import: big enough to amortize the fsync.
const IMPORT_BATCH: usize = 2_000;
/// How many invalid lines an import report describes one by one.
const MAX_REPORTED_PROBLEMS: usize = 20;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ImportReport {
    pub imported: u64,
    pub duplicate: u64,
    pub invalid: u64,
    /// `(line number, what is wrong)` for the first invalid lines.
    pub problems: Vec<(u64, String)>,
}

/// Imports every valid line; duplicates and invalid lines are counted and skipped, and
/// nothing already in the ledger changes. Freshness is not checked: history is old.
pub fn import_jsonl<R: BufRead>(ledger: &Ledger, reader: R) -> Result<ImportReport, ImportError> {
    let rules = AcceptRules {
        now_ms: None,
        party: Party::Any,
    };
    let mut report = ImportReport::default();
    let mut batch: Vec<Verified> = Vec::with_capacity(IMPORT_BATCH);
    let mut reader = reader;
    let mut line = Vec::new();
    let mut line_no = 0u64;
    loop {
        // Bytes, not `lines()`: a line that is not UTF-8 is one invalid line (the JSON
        // parser says so), not the end of the import.
        line.clear();
        line_no += 1;
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|source| ImportError::Read {
                line: line_no,
                source,
            })?;
        if read == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let checked = SignedReceipt::from_json(&line)
            .map_err(|e| e.to_string())
            .and_then(|signed| accept(signed, &rules).map_err(|e| e.to_string()));
        match checked {
            Ok(v) => batch.push(v),
            Err(why) => {
                report.invalid += 1;
                if report.problems.len() < MAX_REPORTED_PROBLEMS {
                    report.problems.push((line_no, why));
                }
            }
        }
        if batch.len() >= IMPORT_BATCH {
            flush(ledger, &mut batch, &mut report)?;
        }
    }
    flush(ledger, &mut batch, &mut report)?;
    Ok(report)
}

fn flush(
    ledger: &Ledger,
    batch: &mut Vec<Verified>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    if batch.is_empty() {
        return Ok(());
    }
    for outcome in ledger.append(batch)? {
        match outcome {
            AppendOutcome::Appended { .. } => report.imported += 1,
            AppendOutcome::Duplicate { .. } => report.duplicate += 1,
        }
    }
    batch.clear();
    Ok(())
}

/// Writes every receipt, oldest first, one JSON object per line.
pub fn export_jsonl<W: Write>(ledger: &Ledger, mut out: W) -> Result<u64, ImportError> {
    let mut after = 0;
    let mut count = 0;
    loop {
        let page = ledger.since(after, 10_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for stored in &page {
            writeln!(out, "{}", stored.receipt.to_json()).map_err(ImportError::Write)?;
            count += 1;
        }
    }
    out.flush().map_err(ImportError::Write)?;
    Ok(count)
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read line {line}: {source}")]
    Read {
        line: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write: {0}")]
    Write(#[source] std::io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}
