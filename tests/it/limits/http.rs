//! Connections, request heads and bodies, at the worker and the router alike: the
//! connection bound, the header read timeout, 431 for a head over the limit, 413 for a
//! body over it, 408 for a body that trickles.

use std::time::Duration;

use futures_util::stream;
use serde_json::json;

use super::{
    LIMIT, QUIET, addr, closes, get, read_answer, requester, router, send_raw, within, worker,
};
use crate::support;

const MS_200: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_bound_waits_until_one_closes() {
    let worker = worker(|c| c.limits.max_connections = 2).await;
    let router = router(|c| c.limits.max_connections = 2).await;
    for url in [&worker.url, &router.url] {
        let at = addr(url);
        let mut open = Vec::new();
        for _ in 0..2 {
            let mut conn = send_raw(at, &get("/pubkey")).await;
            let answer = within("an answer under the bound", read_answer(&mut conn)).await;
            assert_eq!(answer.map(|a| a.status), Some(200), "{url}");
            // Kept alive: the connection stays open, holding its place.
            open.push(conn);
        }
        let mut extra = send_raw(at, &get("/pubkey")).await;
        let early = tokio::time::timeout(QUIET, read_answer(&mut extra)).await;
        assert!(
            early.is_err(),
            "{url}: a connection beyond the bound was served: {early:?}"
        );
        drop(open.remove(0));
        let answer = within(
            "the extra connection once one closed",
            read_answer(&mut extra),
        )
        .await;
        assert_eq!(answer.map(|a| a.status), Some(200), "{url}");
    }
    router.stop().await;
    worker.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let worker = worker(|c| {
        c.limits.max_connections = 1;
        c.limits.header_read_timeout = MS_200;
    })
    .await;
    let router = router(|c| {
        c.limits.max_connections = 1;
        c.limits.header_read_timeout = MS_200;
    })
    .await;
    for url in [&worker.url, &router.url] {
        let mut slow = send_raw(addr(url), b"GET /pubkey HTTP/1.1\r\nhost: te").await;
        assert!(
            closes(&mut slow).await,
            "{url}: half a head held the connection"
        );
        // Its place is free again: with a bound of one, this is only served if so.
        let mut next = send_raw(addr(url), &get("/pubkey")).await;
        let answer = within("a request after the cut", read_answer(&mut next)).await;
        assert_eq!(answer.map(|a| a.status), Some(200), "{url}");
    }
    router.stop().await;
    worker.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_the_limit_is_431_in_openai_shape() {
    let worker = worker(|_| {}).await;
    let router = router(|_| {}).await;
    let client = support::client();
    for url in [&worker.url, &router.url] {
        let pubkey = |padding: usize| {
            client
                .get(format!("{url}/pubkey"))
                .header("x-padding", "p".repeat(padding))
                .send()
        };
        let fits = within("a head under the limit", pubkey(8 * 1024))
            .await
            .unwrap();
        assert_eq!(fits.status().as_u16(), 200, "{url}");
        let over = within("a head over the limit", pubkey(20 * 1024))
            .await
            .unwrap();
        assert_eq!(over.status().as_u16(), 431, "{url}");
        assert_eq!(over.headers()["connection"], "close");
        let body: serde_json::Value = over.json().await.unwrap();
        assert_eq!(body["error"]["type"], "headers_too_large", "{url}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("16384"));
        // Far beyond: refused before the head is even parsed (no JSON then), and the
        // connection is not kept.
        let huge = format!(
            "GET /pubkey HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
            "p".repeat(100 * 1024)
        );
        let mut conn = send_raw(addr(url), huge.as_bytes()).await;
        let answer = within("a huge head", read_answer(&mut conn)).await;
        assert!(
            answer.as_ref().is_none_or(|a| a.status == 431),
            "{url}: {answer:?}"
        );
        assert!(closes(&mut conn).await);
    }
    router.stop().await;
    worker.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_413_in_openai_shape() {
    let worker = worker(|c| c.body_limit = 1024).await;
    let router = router(|c| c.body_limit = 1024).await;
    let client = support::client();
    let big = json!({"model": "m", "messages": [{"role": "user", "content": "x".repeat(2048)}]});
    for url in [&worker.url, &router.url] {
        let chat = || {
            client
                .post(format!("{url}/v1/chat/completions"))
                .header("x-lobstah-requester", requester())
        };
        // Declared too large, refused before reading; then sent chunked, without a
        // length, refused once the limit is passed.
        let declared = within("a declared large body", chat().json(&big).send())
            .await
            .unwrap();
        let chunks = (0..2).map(|_| Ok::<_, std::io::Error>(vec![b' '; 800]));
        let chunked = chat()
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(stream::iter(chunks)))
            .send();
        let chunked = within("a chunked large body", chunked).await.unwrap();
        for answer in [declared, chunked] {
            assert_eq!(answer.status().as_u16(), 413, "{url}");
            let body: serde_json::Value = answer.json().await.unwrap();
            assert_eq!(body["error"]["type"], "request_too_large", "{url}: {body}");
        }
        let small = support::chat_body("m", false);
        let fits = within("a body under the limit", chat().json(&small).send())
            .await
            .unwrap();
        assert_ne!(fits.status().as_u16(), 413, "{url}");
    }
    router.stop().await;
    worker.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_trickles_is_408_and_its_connection_closed() {
    let worker = worker(|c| c.limits.body_read_timeout = MS_200).await;
    let router = router(|c| c.limits.body_read_timeout = MS_200).await;
    for url in [&worker.url, &router.url] {
        let head = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
             x-lobstah-requester: {}\r\ncontent-length: 100\r\n\r\n{{\"model\"",
            requester()
        );
        let mut conn = send_raw(addr(url), head.as_bytes()).await;
        let started = tokio::time::Instant::now();
        let answer = within("an answer to a trickled body", read_answer(&mut conn))
            .await
            .unwrap_or_else(|| panic!("{url}: closed without an answer"));
        assert_eq!(answer.status, 408, "{url}: {answer:?}");
        assert!(answer.head.contains("connection: close"), "{answer:?}");
        assert_eq!(answer.json()["error"]["type"], "request_timeout");
        assert!(started.elapsed() < LIMIT);
        assert!(closes(&mut conn).await, "{url}: the connection stayed open");
    }
    router.stop().await;
    worker.shutdown.cancel();
}
