//! What a web page in the user's browser can do with each listener (router, worker,
//! control API, tracker), on real loopback listeners: a cross-site simple POST, a
//! rebinding Host and a non-JSON body are refused before any handler (nothing billed,
//! ledgered, announced or changed), an allowed origin gets its preflight and CORS
//! answers, and a program with no Origin and a loopback Host is served as before.

use crate::support;

use std::sync::Arc;

use lobstah::core::clock::SystemClock;
use lobstah::core::config::{Config, EngineKind};
use lobstah::core::engine::OpenAiEngine;
use lobstah::core::net::BrowserPolicy;
use lobstah::core::node::{Node, NodeClient, NodeDeps};
use lobstah::core::paths::Paths;
use lobstah::core::protocol::Identity;
use lobstah::core::tracker;
use lobstah::testkit::FakeOpenAi;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ALLOWED: &str = "http://localhost:3000";
const EVIL: &str = "http://evil.example";

fn policy() -> BrowserPolicy {
    BrowserPolicy {
        allowed_origins: vec![ALLOWED.into()],
        allowed_hosts: Vec::new(),
    }
}

/// One listener as the checks see it: where it is, a JSON POST it serves, a GET it
/// serves, and the headers it wants beside (the control API's bearer token, the
/// worker's requester).
struct Target {
    name: &'static str,
    base: String,
    post_path: &'static str,
    post_body: Value,
    get_path: &'static str,
    headers: Vec<(&'static str, String)>,
}

impl Target {
    fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = support::client().request(method, format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            r = r.header(*name, value);
        }
        r
    }

    fn post(&self) -> reqwest::RequestBuilder {
        self.request(Method::POST, self.post_path)
            .body(self.post_body.to_string())
    }
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Option<String>, Value) {
    let status = response.status();
    let acao = header(&response, "access-control-allow-origin");
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, acao, body)
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .reduce(|a, b| format!("{a}, {b}"))
}

fn assert_refusal(what: &str, got: (StatusCode, Option<String>, Value), status: u16, kind: &str) {
    let (code, _, body) = &got;
    assert_eq!(code.as_u16(), status, "{what}: {body}");
    assert_eq!(body["error"]["type"], kind, "{what}: {body}");
    assert_eq!(
        body["error"]["reason"],
        kind.replace('_', "-"),
        "{what}: {body}"
    );
    assert!(body["error"]["message"].is_string(), "{what}: {body}");
}

/// The requests a page could forge; every one must be refused.
async fn forged_requests_are_refused(t: &Target) {
    let n = t.name;
    // A cross-site "simple" POST: text/plain needs no preflight, the page cannot read
    // the answer, and before this change it was served.
    let r = t
        .post()
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    let got = error_of(r).await;
    assert_eq!(got.1, None, "{n}: a refused origin is not granted CORS");
    assert_refusal(
        &format!("{n} cross-site simple POST"),
        got,
        403,
        "forbidden_origin",
    );
    // The same POST as JSON from a foreign page (a real browser would preflight it).
    let r = t
        .post()
        .header("content-type", "application/json")
        .header("origin", EVIL);
    let got = error_of(r.send().await.unwrap()).await;
    assert_refusal(
        &format!("{n} foreign-origin JSON POST"),
        got,
        403,
        "forbidden_origin",
    );
    // DNS rebinding: same-origin for the page, so no Origin on a GET; only Host tells.
    for (method, path) in [(Method::GET, t.get_path), (Method::POST, t.post_path)] {
        let r = t
            .request(method.clone(), path)
            .header("host", format!("evil.example:{}", t.port()))
            .header("content-type", "application/json")
            .body(if method == Method::POST {
                t.post_body.to_string()
            } else {
                String::new()
            });
        let got = error_of(r.send().await.unwrap()).await;
        assert_refusal(
            &format!("{n} {method} with a foreign Host"),
            got,
            403,
            "forbidden_host",
        );
    }
    // A preflight from a page that is not allowed.
    let r = t
        .request(Method::OPTIONS, t.post_path)
        .header("origin", EVIL)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    let got = error_of(r).await;
    assert_eq!(got.1, None, "{n}: a refused preflight grants nothing");
    assert_refusal(
        &format!("{n} refused preflight"),
        got,
        403,
        "forbidden_origin",
    );
    // A body that is not JSON, from anyone: refused with the way to fix it.
    let r = t
        .post()
        .header("content-type", "text/plain")
        .send()
        .await
        .unwrap();
    let got = error_of(r).await;
    let message = got.2["error"]["message"].as_str().unwrap_or("").to_string();
    assert_refusal(
        &format!("{n} text/plain body"),
        got,
        415,
        "unsupported_media_type",
    );
    assert!(
        message.contains("content-type: application/json"),
        "{n}: {message}"
    );
}

/// An allowed page: its preflight is answered, then its request served with CORS.
async fn allowed_page_is_served(t: &Target) {
    let n = t.name;
    let r = t
        .request(Method::OPTIONS, t.post_path)
        .header("origin", ALLOWED)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type, authorization, x-stainless-os",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT, "{n} preflight");
    let h = |name| header(&r, name).unwrap_or_default().to_ascii_lowercase();
    assert_eq!(h("access-control-allow-origin"), ALLOWED, "{n}");
    assert!(h("access-control-allow-methods").contains("post"), "{n}");
    for wanted in [
        "authorization",
        "content-type",
        "x-lobstah-requester",
        "x-stainless-os",
    ] {
        assert!(
            h("access-control-allow-headers").contains(wanted),
            "{n}: {wanted}"
        );
    }
    assert!(
        h("access-control-max-age")
            .parse::<u32>()
            .is_ok_and(|s| s > 0),
        "{n}"
    );
    assert!(h("vary").contains("origin"), "{n}: {}", h("vary"));
    let r = t
        .post()
        .header("content-type", "application/json")
        .header("origin", ALLOWED)
        .send()
        .await
        .unwrap();
    let acao = header(&r, "access-control-allow-origin");
    let vary = header(&r, "vary").unwrap_or_default().to_ascii_lowercase();
    let status = r.status();
    assert!(
        status.is_success(),
        "{n}: {status} {}",
        r.text().await.unwrap()
    );
    assert_eq!(acao.as_deref(), Some(ALLOWED), "{n}");
    assert!(vary.contains("origin"), "{n}: {vary}");
}

/// A program (an SDK, curl): no Origin, Host 127.0.0.1:port (what reqwest sends).
async fn program_is_served(t: &Target) {
    let n = t.name;
    let r = t.request(Method::GET, t.get_path).send().await.unwrap();
    assert_eq!(header(&r, "access-control-allow-origin"), None, "{n}");
    assert!(r.status().is_success(), "{n} GET: {}", r.status());
    let r = t.post().header("content-type", "application/json");
    let r = r.send().await.unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "{n} POST: {status} {}",
        r.text().await.unwrap()
    );
}

/// Existing network clients that send their JSON with no Content-Type at all.
async fn untyped_body_is_served(t: &Target) {
    let r = t.post().send().await.unwrap();
    let status = r.status();
    assert!(
        status.is_success(),
        "{} untyped POST: {status} {}",
        t.name,
        r.text().await.unwrap()
    );
}

fn chat() -> Value {
    support::chat_body("fake-model", false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_and_the_router_bill_nothing_a_page_forged() {
    let engine = FakeOpenAi::start().await.unwrap();
    let clock = Arc::new(SystemClock);
    let openai = Arc::new(OpenAiEngine::new(engine.url(), None).unwrap());
    let worker = support::start_worker_with(
        Identity::from_seed([7; 32]),
        openai,
        support::memory_db(),
        clock.clone(),
        |c| c.browser = policy(),
    )
    .await;
    let router = support::start_router(
        Identity::from_seed([8; 32]),
        support::memory_db(),
        &[(worker.pubkey, worker.url.clone())],
        clock,
        |c| c.browser = policy(),
    )
    .await;
    let targets = [
        Target {
            name: "worker",
            base: worker.url.clone(),
            post_path: "/v1/chat/completions",
            post_body: chat(),
            get_path: "/capacity",
            headers: vec![(
                "x-lobstah-requester",
                Identity::from_seed([9; 32]).public().to_string(),
            )],
        },
        Target {
            name: "router",
            base: router.url.clone(),
            post_path: "/v1/chat/completions",
            post_body: chat(),
            get_path: "/v1/jobs",
            headers: Vec::new(),
        },
    ];
    let ledgers = || {
        let w = worker.ledger.totals().unwrap();
        let r = router.ledger.totals().unwrap();
        (
            engine.request_count(),
            w.receipts,
            w.tokens,
            r.receipts,
            r.tokens,
        )
    };
    for t in &targets {
        let before = ledgers();
        forged_requests_are_refused(t).await;
        assert_eq!(
            ledgers(),
            before,
            "{}: forged requests reached the engine or a ledger",
            t.name
        );
    }
    let before = ledgers();
    for t in &targets {
        allowed_page_is_served(t).await;
        program_is_served(t).await;
        untyped_body_is_served(t).await;
    }
    // Six chats served (three straight to the worker, three through the router): the
    // counters above do move when a request is really served.
    let after = ledgers();
    assert_eq!(after.0, before.0 + 6, "engine calls");
    assert_eq!(after.1, before.1 + 6, "worker receipts");
    assert_eq!(after.3, before.3 + 3, "router receipts");
    router.stop().await;
    worker.shutdown.cancel();
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_does_nothing_a_page_forged() {
    support::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config::defaults();
    c.router.port = 0;
    c.worker.port = 0;
    c.control_port = 0;
    c.engine.kind = EngineKind::Synthetic;
    c.browser = policy();
    let node = Node::start_with(c, Paths::in_dir(dir.path()), NodeDeps::default())
        .await
        .expect("node");
    let token = std::fs::read_to_string(dir.path().join("control.token")).unwrap();
    let control = node.control_url().expect("control url");
    let peer = Identity::from_seed([3; 32]).public().to_string();
    let t = Target {
        name: "control API",
        base: control.trim_end_matches('/').to_string(),
        post_path: "/v1/commands",
        post_body: json!({"command": "add-peer", "pubkey": peer, "url": "http://127.0.0.1:9", "label": null}),
        get_path: "/v1/snapshot",
        headers: vec![("authorization", format!("Bearer {}", token.trim()))],
    };
    let peers = || async { node.snapshot().await.unwrap().peers.len() };
    forged_requests_are_refused(&t).await;
    assert_eq!(peers().await, 0, "a forged command was carried out");
    allowed_page_is_served(&t).await;
    assert_eq!(
        peers().await,
        1,
        "the allowed page's command was carried out"
    );
    program_is_served(&t).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_lists_nothing_a_page_forged() {
    let (listener, addr) = support::listener().await;
    let stop = CancellationToken::new();
    let task = tokio::spawn(tracker::serve(
        listener,
        support::tracker::unlimited(),
        policy(),
        Arc::new(SystemClock),
        stop.clone().cancelled_owned(),
    ));
    let now = lobstah::core::clock::Clock::now_ms(&SystemClock);
    let signed = support::tracker::announcement(&Identity::from_seed([5; 32]), now, 300);
    let t = Target {
        name: "tracker",
        base: format!("http://{addr}"),
        post_path: "/announce",
        post_body: signed.to_value(),
        get_path: "/peers",
        headers: Vec::new(),
    };
    let count = || async {
        let r = support::client()
            .get(format!("http://{addr}/peers"))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["count"].as_u64().unwrap()
    };
    forged_requests_are_refused(&t).await;
    assert_eq!(count().await, 0, "a forged announcement was listed");
    allowed_page_is_served(&t).await;
    assert_eq!(count().await, 1);
    program_is_served(&t).await;
    untyped_body_is_served(&t).await;
    stop.cancel();
    task.await.unwrap().unwrap();
}
