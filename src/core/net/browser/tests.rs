use super::*;
use axum::body::Body;

fn browser(bound: &str, origins: &[&str], hosts: &[&str]) -> Browser {
    let policy = BrowserPolicy {
        allowed_origins: origins
            .iter()
            .map(|o| normalize_origin(o).unwrap())
            .collect(),
        allowed_hosts: hosts.iter().map(|h| normalize_host(h).unwrap()).collect(),
    };
    Browser::new(policy, bound.parse().unwrap())
}

/// Listener, allowed origins, allowed hosts, method, headers, refusal expected.
type Case<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a str,
    &'a [(&'a str, &'a str)],
    Option<&'a str>,
);

fn request(method: &str, headers: &[(&str, &str)]) -> Request {
    let mut builder = axum::http::Request::builder()
        .method(method)
        .uri("/v1/jobs");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

#[test]
fn requests_are_refused_exactly_when_a_page_could_have_forged_them() {
    let lo = "127.0.0.1:17475";
    let lan = "0.0.0.0:17474";
    let json = ("content-type", "application/json");
    let text = ("content-type", "text/plain;charset=UTF-8");
    let body = ("content-length", "2");
    #[rustfmt::skip]
    let cases: &[Case] = &[
        // Programs: no Origin, a loopback Host, with or without a content type.
        (lo, &[], &[], "POST", &[("host", "127.0.0.1:17475"), json, body], None),
        (lo, &[], &[], "POST", &[("host", "localhost"), body], None),
        (lo, &[], &[], "GET", &[("host", "[::1]:17475")], None),
        (lo, &[], &[], "GET", &[("host", "api.localhost:9")], None),
        (lo, &[], &[], "GET", &[("host", "127.8.9.10")], None),
        (lo, &[], &[], "GET", &[], None),
        // DNS rebinding: a foreign name on a loopback listener.
        (lo, &[], &[], "GET", &[("host", "evil.example:17475")], Some("forbidden_host")),
        (lo, &[], &[], "GET", &[("host", "0.0.0.0:17475")], Some("forbidden_host")),
        (lo, &[], &[], "GET", &[("host", "::1")], Some("forbidden_host")),
        (lo, &[], &[], "GET", &[("host", "localhost:x")], Some("forbidden_host")),
        (lo, &[], &["My-Mac.lan"], "GET", &[("host", "my-mac.lan:17475")], None),
        (lo, &[], &["*"], "GET", &[("host", "anything.example")], None),
        // Beyond loopback peers use any name; Host is not checked there.
        (lan, &[], &[], "GET", &[("host", "worker.example:17474")], None),
        // Cross-site pages, simple requests included.
        (lo, &[], &[], "POST", &[("origin", "http://evil.example"), text, body], Some("forbidden_origin")),
        (lan, &[], &[], "POST", &[("origin", "http://evil.example"), json, body], Some("forbidden_origin")),
        (lo, &[], &[], "GET", &[("origin", "http://localhost:3000")], Some("forbidden_origin")),
        (lo, &[], &[], "GET", &[("origin", "null")], Some("forbidden_origin")),
        (lo, &["http://localhost:3000"], &[], "GET", &[("origin", "http://LOCALHOST:3000")], None),
        (lo, &["http://localhost:3000"], &[], "GET", &[("origin", "https://localhost:3000")], Some("forbidden_origin")),
        (lo, &["*"], &[], "GET", &[("origin", "http://evil.example")], None),
        (lo, &["null"], &[], "GET", &[("origin", "null")], None),
        // The listener's own origin, and only on loopback.
        (lo, &[], &[], "GET", &[("origin", "http://127.0.0.1:17475")], None),
        (lo, &[], &[], "GET", &[("origin", "http://localhost:17475")], None),
        (lo, &[], &[], "GET", &[("origin", "http://127.0.0.1:17476")], Some("forbidden_origin")),
        (lan, &[], &[], "GET", &[("origin", "http://127.0.0.1:17474")], Some("forbidden_origin")),
        // Bodies that are not JSON.
        (lo, &[], &[], "POST", &[text, body], Some("unsupported_media_type")),
        (lo, &[], &[], "DELETE", &[("content-type", "application/x-www-form-urlencoded"), ("transfer-encoding", "chunked")], Some("unsupported_media_type")),
        (lo, &["*"], &[], "POST", &[("origin", "http://a.example"), ("content-type", "multipart/form-data; boundary=x"), body], Some("unsupported_media_type")),
        (lo, &[], &[], "POST", &[("content-type", "application/merge-patch+json"), body], None),
        (lo, &[], &[], "POST", &[("content-type", "Application/JSON; charset=utf-8"), body], None),
        (lo, &[], &[], "POST", &[("content-type", "+json"), body], Some("unsupported_media_type")),
        (lo, &[], &[], "POST", &[text, ("content-length", "0")], None),
        (lo, &[], &[], "GET", &[text, body], None),
    ];
    for (i, (bound, origins, hosts, method, headers, expected)) in cases.iter().enumerate() {
        let b = browser(bound, origins, hosts);
        let got = refusal(&b, &request(method, headers)).map(|e| e.kind);
        assert_eq!(got, *expected, "case {i}: {method} {headers:?} on {bound}");
    }
}

#[test]
fn settings_are_normalized_or_refused() {
    assert_eq!(
        normalize_origin("HTTP://Localhost:80/").unwrap(),
        "http://localhost"
    );
    assert_eq!(
        normalize_origin(" https://a.example:8443 ").unwrap(),
        "https://a.example:8443"
    );
    assert!(normalize_origin("localhost:3000").is_err());
    assert!(normalize_origin("file:///tmp/x.html").is_err());
    assert_eq!(normalize_host("Box.LAN.:17475").unwrap(), "box.lan");
    assert_eq!(normalize_host("[fd00::1]").unwrap(), "fd00::1");
    assert!(normalize_host("http://box.lan").is_err());
    assert!(normalize_host("").is_err());
}
