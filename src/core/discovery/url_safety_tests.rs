use std::net::IpAddr;

use super::*;
use crate::core::discovery::guarded::StaticLookup;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

#[test]
fn address_classification_table() {
    use AddressKind::*;
    let cases = [
        ("127.0.0.1", Loopback),
        ("127.255.0.9", Loopback),
        ("0.0.0.0", Unspecified),
        ("0.1.2.3", Unspecified),
        ("169.254.169.254", LinkLocal),
        ("169.254.0.1", LinkLocal),
        ("224.0.0.1", Multicast),
        ("239.255.255.250", Multicast),
        ("255.255.255.255", Broadcast),
        ("10.1.2.3", Private),
        ("172.16.0.1", Private),
        ("172.31.255.255", Private),
        ("192.168.1.10", Private),
        ("100.64.0.1", Private),
        ("100.127.255.254", Private),
        ("100.128.0.1", Public),
        ("172.32.0.1", Public),
        ("8.8.8.8", Public),
        ("203.0.113.7", Public),
        ("::1", Loopback),
        ("::", Unspecified),
        ("fe80::1", LinkLocal),
        ("febf::1", LinkLocal),
        ("fc00::1", Private),
        ("fd12:3456::1", Private),
        ("fec0::1", Private),
        ("ff02::1", Multicast),
        ("2001:db8::1", Public),
        ("2606:4700::1111", Public),
        // IPv6 spellings of IPv4 addresses are judged by the IPv4 inside.
        ("::ffff:127.0.0.1", Loopback),
        ("::ffff:169.254.169.254", LinkLocal),
        ("::ffff:10.0.0.1", Private),
        ("::ffff:8.8.8.8", Public),
        ("::127.0.0.1", Loopback),
        ("64:ff9b::a9fe:a9fe", LinkLocal),
        ("2002:7f00:1::", Loopback),
        ("2002:0808:0808::", Public),
    ];
    for (text, want) in cases {
        assert_eq!(classify(ip(text)), want, "{text}");
    }
}

#[test]
fn policy_table() {
    let default = UrlPolicy::default();
    let strict = UrlPolicy {
        block_private: true,
        allow_local: false,
    };
    let local = UrlPolicy {
        block_private: false,
        allow_local: true,
    };
    // (address, default, block_private, allow_local)
    let cases = [
        ("8.8.8.8", true, true, true),
        ("192.168.1.4", true, false, true),
        ("100.64.3.3", true, false, true),
        ("fd00::4", true, false, true),
        ("127.0.0.1", false, false, true),
        ("::1", false, false, true),
        ("169.254.169.254", false, false, false),
        ("fe80::1", false, false, false),
        ("0.0.0.0", false, false, false),
        ("::", false, false, false),
        ("224.0.0.251", false, false, false),
        ("255.255.255.255", false, false, false),
    ];
    for (text, d, s, l) in cases {
        assert_eq!(default.allows(ip(text)).is_ok(), d, "default {text}");
        assert_eq!(strict.allows(ip(text)).is_ok(), s, "block_private {text}");
        assert_eq!(local.allows(ip(text)).is_ok(), l, "allow_local {text}");
    }
}

#[test]
fn syntax_table() {
    let policy = UrlPolicy::default();
    let ok = [
        ("http://8.8.8.8:17474", UrlHost::Ip(ip("8.8.8.8"))),
        ("https://[2606:4700::1]", UrlHost::Ip(ip("2606:4700::1"))),
        (
            "http://Worker.Example.:17474",
            UrlHost::Name("worker.example".into()),
        ),
    ];
    for (url, host) in ok {
        assert_eq!(policy.check_syntax(url), Ok(host), "{url}");
    }
    let refused = [
        ("ftp://8.8.8.8", "is not http or https"),
        ("file:///etc/passwd", "is not http or https"),
        ("gopher://x", "is not http or https"),
        ("not a url", "is not a URL"),
        (
            "http://127.0.0.1:17474",
            "is a loopback address (127.0.0.1)",
        ),
        ("http://[::1]:1", "is a loopback address"),
        ("http://169.254.169.254/latest", "is a link-local address"),
        ("http://[fe80::1]", "is a link-local address"),
        ("http://[::ffff:169.254.169.254]", "is a link-local address"),
        ("http://0.0.0.0", "is an unspecified address"),
        ("http://0x7f.1", "is a loopback address"),
        ("http://2130706433", "is a loopback address"),
        ("http://224.0.0.1", "is a multicast address"),
    ];
    for (url, message) in refused {
        let error = policy.check_syntax(url).expect_err(url).to_string();
        assert!(error.contains(message), "{url}: {error}");
    }
}

#[tokio::test]
async fn names_are_judged_by_every_address_they_resolve_to() {
    let lookup = StaticLookup::default()
        .with("public.test", &[ip("203.0.113.9")])
        .with("metadata.test", &[ip("169.254.169.254")])
        .with("home.test", &[ip("192.168.1.20")])
        .with("mixed.test", &[ip("203.0.113.9"), ip("127.0.0.1")])
        .with("v6-loopback.test", &[ip("::1")])
        .with("empty.test", &[]);
    let default = UrlPolicy::default();
    let strict = UrlPolicy {
        block_private: true,
        allow_local: false,
    };
    let cases: [(&str, &UrlPolicy, Result<(), &str>); 9] = [
        ("http://public.test:17474", &default, Ok(())),
        ("http://home.test", &default, Ok(())),
        (
            "http://home.test",
            &strict,
            Err("is a private-network address"),
        ),
        (
            "http://metadata.test",
            &default,
            Err("is a link-local address"),
        ),
        ("http://mixed.test", &default, Err("127.0.0.1")),
        (
            "http://v6-loopback.test",
            &default,
            Err("is a loopback address"),
        ),
        (
            "http://empty.test",
            &default,
            Err("does not resolve: no addresses"),
        ),
        ("http://unknown.test", &default, Err("does not resolve")),
        ("http://LOCALHOST.test", &default, Err("does not resolve")),
    ];
    for (url, policy, want) in cases {
        let got = policy.check_url(url, &lookup).await;
        match (got, want) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(text)) => assert!(e.to_string().contains(text), "{url}: {e}"),
            (got, want) => panic!("{url}: got {got:?}, want {want:?}"),
        }
    }
}

#[tokio::test]
async fn localhost_through_the_system_resolver_is_refused() {
    let lookup = crate::core::discovery::guarded::SystemLookup;
    let error = UrlPolicy::default()
        .check_url("http://localhost:17474", &lookup)
        .await
        .expect_err("localhost is loopback");
    assert!(error.to_string().contains("loopback"), "{error}");
}
