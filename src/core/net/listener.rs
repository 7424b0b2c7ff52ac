//! A bound on open connections, as an axum `Listener` wrapper: `accept` first takes a
//! permit, so beyond the bound new connections wait in the kernel's backlog (where they
//! cost this process nothing) rather than being accepted. The accepted connection holds
//! its permit until it closes, and fails a write that makes no progress for too long.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// Turns Nagle's algorithm off on an accepted connection. A streamed answer goes out as
/// many small writes; with Nagle on, each one after the first waits for the peer's
/// delayed ACK (40 ms on Linux), which made every streamed request take 40–90 ms.
pub fn set_nodelay(stream: &mut tokio::net::TcpStream) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot set TCP_NODELAY on an accepted connection");
    }
}

/// Accepts from `inner` only while fewer than `max` accepted connections are open.
pub struct ConnectionLimit<L> {
    inner: L,
    permits: Arc<Semaphore>,
    max: usize,
    write_stall: Duration,
}

impl<L: Listener> ConnectionLimit<L> {
    /// `max` is at least 1; `write_stall` bounds a write that makes no progress.
    pub fn new(inner: L, max: usize, write_stall: Duration) -> Self {
        let max = max.max(1);
        ConnectionLimit {
            inner,
            permits: Arc::new(Semaphore::new(max)),
            max,
            write_stall,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.max - self.permits.available_permits()
    }
}

impl<L: Listener> Listener for ConnectionLimit<L> {
    type Io = Limited<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so this only waits; were it closed, serving
        // on without a permit beats refusing to serve at all.
        let permit = self.permits.clone().acquire_owned().await.ok();
        let (io, addr) = self.inner.accept().await;
        (Limited::new(io, permit, self.write_stall), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// An accepted connection: holds its permit while open, and fails a write (or flush)
/// the client has taken no byte of for the stall bound.
pub struct Limited<I> {
    io: I,
    _permit: Option<OwnedSemaphorePermit>,
    write_stall: Duration,
    /// Running while writes are blocked on the client; cleared by any progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> Limited<I> {
    fn new(io: I, permit: Option<OwnedSemaphorePermit>, write_stall: Duration) -> Self {
        Limited {
            io,
            _permit: permit,
            write_stall,
            stalled: None,
        }
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

    /// A listener over an in-memory channel of connections, to count permits.
    struct Fake(tokio::sync::mpsc::Receiver<tokio::io::DuplexStream>);

    impl Listener for Fake {
        type Io = tokio::io::DuplexStream;
        type Addr = ();
        async fn accept(&mut self) -> (Self::Io, ()) {
            match self.0.recv().await {
                Some(io) => (io, ()),
                None => std::future::pending().await,
            }
        }
        fn local_addr(&self) -> io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_connection_holds_its_permit_until_it_closes() {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let mut limit = ConnectionLimit::new(Fake(rx), 1, Duration::from_secs(60));
        for _ in 0..2 {
            tx.send(tokio::io::duplex(64).0).await.unwrap();
        }
        let (first, ()) = limit.accept().await;
        assert_eq!(limit.open(), 1);
        let second = tokio::time::timeout(Duration::from_millis(50), limit.accept()).await;
        assert!(
            second.is_err(),
            "a second connection is accepted beyond the bound"
        );
        drop(first);
        assert_eq!(limit.open(), 0);
        let (_second, ()) = limit.accept().await;
        assert_eq!(limit.open(), 1);
    }

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
