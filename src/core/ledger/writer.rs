//! Group commit: request handlers hand verified receipts to one writer thread, which
//! appends everything that queued up meanwhile in a single durable transaction.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{AppendOutcome, Ledger, StoredReceipt, Verified};
use crate::core::store::StoreError;

/// Receipts one transaction takes at most; bounds the latency of the largest commit.
const MAX_BATCH: usize = 4_096;

type Reply = oneshot::Sender<Result<Vec<AppendOutcome>, Arc<StoreError>>>;

enum Request {
    Append(Vec<Verified>, Reply),
}

/// Called after each commit with the receipts it appended.
pub(super) type OnAppended = Box<dyn Fn(&[StoredReceipt]) + Send + 'static>;

/// A cloneable handle to the writer thread. The thread ends when every handle is dropped,
/// after committing what was queued.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::UnboundedSender<Request>,
}

#[derive(Debug, thiserror::Error)]
pub enum WriterClosed {
    #[error("the ledger writer has stopped")]
    Stopped,
    #[error("the ledger commit failed: {0}")]
    Store(Arc<StoreError>),
}

impl LedgerWriter {
    pub fn spawn(
        ledger: Ledger,
        on_appended: Option<OnAppended>,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("lobstah-ledger".into())
            .spawn(move || run(ledger, rx, on_appended))
            .unwrap_or_else(|e| panic!("cannot start the ledger writer thread: {e}"));
        (LedgerWriter { tx }, handle)
    }

    /// Appends and waits until the transaction holding these receipts is durable.
    pub async fn append(
        &self,
        receipts: Vec<Verified>,
    ) -> Result<Vec<AppendOutcome>, WriterClosed> {
        self.enqueue(receipts)?.await
    }

    /// Queues the receipts now (so a later `flush` covers them) and returns a future
    /// that resolves when they are durable.
    pub fn enqueue(
        &self,
        receipts: Vec<Verified>,
    ) -> Result<
        impl Future<Output = Result<Vec<AppendOutcome>, WriterClosed>> + Send + 'static,
        WriterClosed,
    > {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Request::Append(receipts, reply))
            .map_err(|_| WriterClosed::Stopped)?;
        Ok(async move {
            rx.await
                .map_err(|_| WriterClosed::Stopped)?
                .map_err(WriterClosed::Store)
        })
    }

    /// Waits until everything queued before this call is durable.
    pub async fn flush(&self) -> Result<(), WriterClosed> {
        self.append(Vec::new()).await.map(|_| ())
    }
}

fn run(ledger: Ledger, mut rx: mpsc::UnboundedReceiver<Request>, on_appended: Option<OnAppended>) {
    while let Some(first) = rx.blocking_recv() {
        let mut queued = request_len(&first);
        let mut requests = vec![first];
        while queued < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => {
                    queued += request_len(&next);
                    requests.push(next);
                }
                Err(_) => break,
            }
        }
        let mut all = Vec::with_capacity(queued);
        let mut shapes = Vec::with_capacity(requests.len());
        let mut replies = Vec::with_capacity(requests.len());
        for Request::Append(receipts, reply) in requests {
            shapes.push(receipts.len());
            all.extend(receipts);
            replies.push(reply);
        }
        match ledger.append(&all) {
            Ok(outcomes) => {
                if let Some(cb) = &on_appended {
                    let appended: Vec<StoredReceipt> = all
                        .iter()
                        .zip(&outcomes)
                        .filter_map(|(v, o)| match o {
                            AppendOutcome::Appended { seq } => Some(StoredReceipt {
                                seq: *seq,
                                receipt: v.signed().clone(),
                            }),
                            AppendOutcome::Duplicate { .. } => None,
                        })
                        .collect();
                    if !appended.is_empty() {
                        cb(&appended);
                    }
                }
                let mut rest = outcomes.into_iter();
                for (reply, n) in replies.into_iter().zip(shapes) {
                    let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, receipts = all.len(), "ledger commit failed");
                // A full disk: refuse new work until the file can be written again.
                ledger.db().failed(&e);
                let e = Arc::new(e);
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// A flush (empty append) still counts as one, so a stream of flushes cannot spin forever.
fn request_len(request: &Request) -> usize {
    let Request::Append(receipts, _) = request;
    receipts.len().max(1)
}
