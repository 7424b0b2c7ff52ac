use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;
use tokio::sync::mpsc;

use super::*;

const STALL: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_millis(150);
const SOON: Duration = Duration::from_secs(5);

#[test]
fn addresses_are_grouped_as_one_subscriber_holds_them() {
    let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
    let v6 = |s: &str| IpAddr::V6(s.parse::<Ipv6Addr>().unwrap());
    let cases = [
        (v4(127, 0, 0, 1), v4(127, 0, 0, 1), true),
        (v4(127, 0, 0, 1), v4(127, 0, 0, 2), false),
        (v6("::ffff:127.0.0.2"), v4(127, 0, 0, 2), true),
        (v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"), true),
        (v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"), false),
        (v6("::1"), v4(127, 0, 0, 1), false),
    ];
    for (a, b, same) in cases {
        assert_eq!(AddressKey::of(a) == AddressKey::of(b), same, "{a} vs {b}");
    }
}

/// An admission loop on 127.0.0.1 handing what it accepts to the test.
async fn admitting(
    max: usize,
    per_address: usize,
) -> (
    SocketAddr,
    mpsc::Receiver<Limited<TcpStream>>,
    ConnectionStats,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = ConnectionStats::default();
    let mut admission = Admission::new(listener, max, per_address, STALL, stats.clone());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let (io, _) = admission.accept().await;
            if tx.send(io).await.is_err() {
                return;
            }
        }
    });
    (addr, rx, stats)
}

async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(to).await.unwrap()
}

async fn next(rx: &mut mpsc::Receiver<Limited<TcpStream>>) -> Limited<TcpStream> {
    tokio::time::timeout(SOON, rx.recv())
        .await
        .expect("a connection is admitted")
        .expect("the loop runs")
}

#[tokio::test]
async fn one_address_over_its_bound_is_answered_503_and_others_still_get_in() {
    let (addr, mut rx, stats) = admitting(8, 2).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let _client = connect_from([127, 0, 0, 2], addr).await;
        held.push((_client, next(&mut rx).await));
    }
    let mut third = connect_from([127, 0, 0, 2], addr).await;
    let mut answer = String::new();
    tokio::time::timeout(SOON, third.read_to_string(&mut answer))
        .await
        .expect("the refused connection is closed")
        .ok();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(answer.contains("too_many_connections"), "{answer:?}");
    assert_eq!(stats.refused_for("over_address_bound"), 1);
    assert!(
        tokio::time::timeout(QUIET, rx.recv()).await.is_err(),
        "the refused connection was admitted"
    );
    // Another address is not held back by the first one's connections.
    let _other = connect_from([127, 0, 0, 1], addr).await;
    let _admitted = next(&mut rx).await;
    assert_eq!(stats.open.get(), 3);
    // A closed connection gives its address's place back.
    drop(held.remove(0));
    tokio::time::sleep(QUIET).await;
    let _again = connect_from([127, 0, 0, 2], addr).await;
    let _readmitted = next(&mut rx).await;
    assert_eq!(stats.refused_for("over_address_bound"), 1);
}

#[tokio::test]
async fn when_full_the_oldest_unproven_connection_gives_way() {
    let (addr, mut rx, stats) = admitting(2, 8).await;
    let _a = connect_from([127, 0, 0, 1], addr).await;
    let oldest = next(&mut rx).await;
    let _b = connect_from([127, 0, 0, 1], addr).await;
    let younger = next(&mut rx).await;
    let _c = connect_from([127, 0, 0, 1], addr).await;
    // The newcomer waits for the oldest to be cut; its task would drop it on this signal.
    let (oldest_standing, younger_standing) = (oldest.standing(), younger.standing());
    tokio::time::timeout(SOON, oldest_standing.evicted())
        .await
        .expect("the oldest unproven connection is evicted");
    assert!(!younger_standing.is_evicted());
    assert_eq!(stats.refused_for("evicted"), 1);
    drop(oldest);
    let newcomer = next(&mut rx).await;
    assert_eq!(stats.open.get(), 2);

    // Proven connections are never evicted: the next newcomer waits for a close.
    younger_standing.prove();
    newcomer.standing().prove();
    let _d = connect_from([127, 0, 0, 1], addr).await;
    assert!(
        tokio::time::timeout(QUIET, rx.recv()).await.is_err(),
        "a connection was admitted beyond the bound"
    );
    assert_eq!(stats.refused_for("evicted"), 1);
    assert!(!younger_standing.is_evicted());
    drop(younger);
    let _last = next(&mut rx).await;
}
