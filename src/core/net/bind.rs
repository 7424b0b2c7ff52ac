//! Binding a server's listener with a deep accept backlog. A flood opens connections in
//! bursts of thousands; with the usual backlog (1,024 in tokio) the kernel drops the
//! SYNs that do not fit, and an honest client caught in the burst waits a whole second
//! for its SYN to be sent again. 4,096 (Linux's default cap, `net.core.somaxconn`;
//! the kernel lowers a larger ask to it) holds a burst of the default connection bound
//! several times over.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

/// The accept backlog asked for.
pub const ACCEPT_BACKLOG: u32 = 4096;

/// A listener on `addr` with `ACCEPT_BACKLOG` (and `SO_REUSEADDR`, as the standard
/// library sets it, so a restart does not wait for old connections to time out).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_loopback_on_a_free_port_and_accepts() {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let (connected, accepted) =
            tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        assert!(connected.is_ok() && accepted.is_ok());
        // A second listener on the same port is refused, not shared.
        assert!(bind(addr).await.is_err());
    }
}
