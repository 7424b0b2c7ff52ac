//! The time bounds of relaying a stream to a client, for the worker (engine → client)
//! and the router (peer → client) alike: a source that goes silent mid-stream is cut
//! (`pull` answers `Idle`), a client that takes nothing is dropped (`push` answers
//! `Stalled`), and a client that left is noticed at once, even while the source is
//! silent, so whatever the relay holds (an engine slot, a peer's connection) is freed.
//! `SseTail` ends a cut stream with an error event the client's parser reads whole.

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::core::api_error::ApiError;

/// What waiting for the source's next item gave.
#[derive(Debug)]
pub enum Pulled<T> {
    Item(T),
    /// The source ended.
    End,
    /// The source sent nothing for the idle bound.
    Idle,
    /// The client went away while we waited.
    ClientGone,
}

/// The next item of `stream`, unless it stays silent for `idle` (no bound when `None`)
/// or the client — the receiving end of `tx` — leaves first.
pub async fn pull<S, T>(
    stream: &mut S,
    idle: Option<Duration>,
    tx: &mpsc::Sender<T>,
) -> Pulled<S::Item>
where
    S: Stream + Unpin,
{
    let next = async {
        match idle {
            Some(limit) => tokio::time::timeout(limit, stream.next()).await.ok(),
            None => Some(stream.next().await),
        }
    };
    tokio::select! {
        biased;
        item = next => match item {
            Some(Some(item)) => Pulled::Item(item),
            Some(None) => Pulled::End,
            None => Pulled::Idle,
        },
        _ = tx.closed() => Pulled::ClientGone,
    }
}

/// Why an item did not reach the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    #[error("the client went away")]
    Gone,
    #[error("the client took nothing for too long")]
    Stalled,
}

impl Lost {
    /// The metrics outcome for a request that ended this way.
    pub fn outcome(self) -> &'static str {
        match self {
            Lost::Gone => "client_gone",
            Lost::Stalled => "client_stalled",
        }
    }
}

/// Hands `item` to the client, waiting at most `stall` for room. The common case, a
/// channel with room, sets no timer.
pub async fn push<T>(tx: &mpsc::Sender<T>, item: T, stall: Duration) -> Result<(), Lost> {
    let item = match tx.try_send(item) {
        Ok(()) => return Ok(()),
        Err(TrySendError::Closed(_)) => return Err(Lost::Gone),
        Err(TrySendError::Full(item)) => item,
    };
    match tokio::time::timeout(stall, tx.send(item)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(Lost::Gone),
        Err(_) => Err(Lost::Stalled),
    }
}

/// The last bytes sent on an SSE stream, to end it with an error event that stands on
/// its own whatever was sent before (a blank line first if an event was left open).
#[derive(Debug, Default, Clone)]
pub struct SseTail {
    last: Vec<u8>,
}

impl SseTail {
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes bytes that went to the client.
    pub fn sent(&mut self, bytes: &[u8]) {
        self.last
            .extend_from_slice(&bytes[bytes.len().saturating_sub(2)..]);
        let excess = self.last.len().saturating_sub(2);
        self.last.drain(..excess);
    }

    /// `data: {"error":…}` and a blank line, preceded by what closes an open line or
    /// event so the client reads it as an event of its own.
    pub fn error_event(&self, error: &ApiError) -> Bytes {
        let lead = match self.last.as_slice() {
            [] | [.., b'\n', b'\n'] => "",
            [.., b'\n'] => "\n",
            _ => "\n\n",
        };
        Bytes::from(format!("{lead}data: {}\n\n", error.body()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn stalled() -> ApiError {
        ApiError::new(StatusCode::GATEWAY_TIMEOUT, "peer_stream_stalled", "x")
    }

    #[test]
    fn the_error_event_stands_alone_after_whatever_was_sent() {
        let event = "data: {\"error\":{\"type\":\"peer_stream_stalled\",\"message\":\"x\"}}\n\n";
        let cases: [(&[&str], &str); 6] = [
            (&[], ""),
            (&["data: 1\n\n"], ""),
            (&["data: 1\n", "\n"], ""),
            (&["data: 1\n"], "\n"),
            (&["data: 1\n\n", "data: {\"a"], "\n\n"),
            (&["\n", "data: 1"], "\n\n"),
        ];
        for (sent, lead) in cases {
            let mut tail = SseTail::new();
            for s in sent {
                tail.sent(s.as_bytes());
            }
            assert_eq!(
                tail.error_event(&stalled()),
                Bytes::from(format!("{lead}{event}")),
                "{sent:?}"
            );
        }
    }

    #[tokio::test]
    async fn push_tells_a_client_that_left_from_one_that_stalled() {
        let (tx, rx) = mpsc::channel::<u8>(1);
        push(&tx, 1, Duration::from_millis(10)).await.unwrap();
        assert_eq!(
            push(&tx, 2, Duration::from_millis(10)).await,
            Err(Lost::Stalled)
        );
        drop(rx);
        assert_eq!(
            push(&tx, 3, Duration::from_millis(10)).await,
            Err(Lost::Gone)
        );
    }

    #[tokio::test]
    async fn pull_ends_on_silence_or_when_the_client_leaves() {
        let (tx, rx) = mpsc::channel::<u8>(1);
        let mut silent = futures_util::stream::pending::<u8>();
        let idle = pull(&mut silent, Some(Duration::from_millis(10)), &tx).await;
        assert!(matches!(idle, Pulled::Idle));
        drop(rx);
        assert!(matches!(
            pull(&mut silent, None, &tx).await,
            Pulled::ClientGone
        ));
        let mut one = futures_util::stream::iter([7u8]);
        let (tx, _rx) = mpsc::channel::<u8>(1);
        assert!(matches!(pull(&mut one, None, &tx).await, Pulled::Item(7)));
        assert!(matches!(pull(&mut one, None, &tx).await, Pulled::End));
    }
}
