//! An accepted connection as the servers drive it: it holds its admission slot until it
//! closes, and fails a write that makes no progress for too long (a client that stopped
//! reading must not hold a slot and a task for ever).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::admission::{Slot, Standing};

/// Turns Nagle's algorithm off on an accepted connection. A streamed answer goes out as
/// many small writes; with Nagle on, each one after the first waits for the peer's
/// delayed ACK (40 ms on Linux), which made every streamed request take 40–90 ms.
pub fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// An accepted connection: holds its slot while open, and fails a write (or flush) the
/// client has taken no byte of for the stall bound.
pub struct Limited<I> {
    io: I,
    slot: Option<Slot>,
    write_stall: Duration,
    /// Running while writes are blocked on the client; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> Limited<I> {
    pub(super) fn new(io: I, slot: Option<Slot>, write_stall: Duration) -> Self {
        Limited {
            io,
            slot,
            write_stall,
            stalled: None,
        }
    }

    /// The connection's standing with the admission rules (none outside a server).
    pub fn standing(&self) -> Standing {
        self.slot
            .as_ref()
            .map(|slot| slot.standing().clone())
            .unwrap_or_default()
    }

    /// Passes a write's result on, timing how long writes stay blocked.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let limit = self.write_stall;
        let timer = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        if timer.as_mut().poll(cx).is_ready() {
            self.stalled = None;
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing for {} ms", limit.as_millis()),
            )));
        }
        Poll::Pending
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Limited<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Limited<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_client_does_not_take_fails_after_the_stall_bound() {
        let (server, mut client) = tokio::io::duplex(16);
        let mut io = Limited::new(server, None, Duration::from_millis(50));
        io.write_all(&[0; 16]).await.unwrap();
        let blocked = tokio::time::timeout(Duration::from_secs(5), io.write_all(&[0; 16]))
            .await
            .expect("the stall bound ends the write");
        assert_eq!(blocked.unwrap_err().kind(), io::ErrorKind::TimedOut);
        // A client that reads keeps the connection going, however slowly.
        let (server, mut client2) = tokio::io::duplex(16);
        let mut io = Limited::new(server, None, Duration::from_millis(200));
        let reader = tokio::spawn(async move {
            let mut buf = [0; 8];
            let mut total = 0;
            while total < 64 {
                tokio::time::sleep(Duration::from_millis(20)).await;
                total += client2.read(&mut buf).await.unwrap();
            }
        });
        io.write_all(&[0; 64]).await.unwrap();
        reader.await.unwrap();
        let _ = client.read(&mut [0; 1]).await;
    }
}
