//! `lobstah peers add|remove|list` on a stopped node: straight into the peer book.
//! (Beside a running node, `via_node` sends them through its control API.)

use std::process::ExitCode;

use anyhow::Context;

use crate::core::clock::system_clock;
use crate::core::paths::Paths;
use crate::core::peers::{AddOutcome, PeerBook, PeerSource};
use crate::core::protocol::PublicKey;
use crate::core::store;

pub(super) fn open_book(paths: &Paths) -> anyhow::Result<PeerBook> {
    let db = store::open(&paths.database())
        .context("cannot open the peer book (is a router running on this home? stop it first)")?;
    Ok(PeerBook::new(db)?)
}

/// `peers add KEY WORD` with no label: WORD is the label when it cannot be meant as an
/// address (no scheme, no dot, colon or slash), so `peers add KEY alice-mac` books a
/// key-only peer called alice-mac; `192.168.1.20:17474` stays a URL, and is refused for
/// its missing scheme with a hint.
pub(super) fn url_or_label(
    url: Option<String>,
    label: Option<String>,
) -> (Option<String>, Option<String>) {
    match (url, label) {
        (Some(word), None) if !word.contains(['.', ':', '/']) => (None, Some(word)),
        other => other,
    }
}

/// `peers add KEY [URL] --addr …`: a peer reached over a link (and at its URL, if
/// given), written to the book of a stopped node (a running one takes it through its
/// control API).
pub(super) fn peers_add_linked(
    paths: &Paths,
    pubkey: &str,
    url: Option<&str>,
    label: Option<String>,
    addrs: &[std::net::SocketAddr],
) -> anyhow::Result<ExitCode> {
    let pubkey = PublicKey::parse(pubkey)?;
    let book = open_book(paths)?;
    let now = system_clock().now_ms();
    if let Some(url) = url {
        book.add(pubkey, url, label.as_deref(), PeerSource::Manual, now)?;
    }
    book.add_linked(pubkey, addrs, label.as_deref(), PeerSource::Manual, now)?;
    println!("linked peer {pubkey} at {}", addrs_text(addrs));
    if !crate::core::config::Config::load(paths, &Default::default())
        .map(|c| c.links.enabled)
        .unwrap_or(false)
    {
        eprintln!(
            "note: this home's config leaves peer links off: start the node with --links or --relay URL (or set links.enabled = true) to reach this peer"
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn peers_add(
    paths: &Paths,
    pubkey: &str,
    url: &str,
    label: Option<String>,
) -> anyhow::Result<ExitCode> {
    let pubkey = PublicKey::parse(pubkey)?;
    let book = open_book(paths)?;
    let now = system_clock().now_ms();
    let outcome = book.add(pubkey, url, label.as_deref(), PeerSource::Manual, now)?;
    let verb = match outcome {
        AddOutcome::Added => "added",
        AddOutcome::Updated => "updated",
        AddOutcome::Unchanged => "unchanged",
    };
    if let Ok(parsed) = reqwest::Url::parse(url)
        && let Some(host) = parsed.host_str()
        && (host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
    {
        eprintln!("note: {url} is on this machine (loopback)");
    }
    println!("{verb} peer {pubkey} at {url}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn peers_remove(paths: &Paths, pubkey: &str) -> anyhow::Result<ExitCode> {
    let pubkey = PublicKey::parse(pubkey)?;
    let book = open_book(paths)?;
    if book.remove(&pubkey)? {
        println!("removed peer {pubkey}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no peer {pubkey} in the peer book");
        Ok(ExitCode::FAILURE)
    }
}

pub(super) fn peers_list(paths: &Paths, as_json: bool) -> anyhow::Result<ExitCode> {
    let peers = match store::open_read_only(&paths.database()) {
        Ok(db) => PeerBook::new(db)?.list()?,
        Err(store::StoreError::Missing(_)) => Vec::new(),
        Err(e) => return Err(e).context("cannot read the peer book"),
    };
    if as_json {
        // The same shape as beside a running node, so scripts need not care which.
        let rows: Vec<serde_json::Value> = peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "pubkey": p.pubkey.to_string(),
                    "label": p.label,
                    "url": p.url,
                    "transport": if p.is_linked() { "link" } else { "http" },
                    "linkAddrs": p.link,
                    "source": p.source.to_string(),
                    "addedAtMs": p.added_at_ms,
                    "updatedAtMs": p.updated_at_ms,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if peers.is_empty() {
        println!("no peers yet: lobstah peers add <pubkey> <url> [label]");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<16} {:<14} {:<32} source",
        "label", "pubkey", "reached at"
    );
    for p in peers {
        let at = match &p.link {
            Some(addrs) if p.url.is_empty() => format!("link {}", addrs_text(addrs)),
            Some(addrs) => format!("link {} (URL {} kept)", addrs_text(addrs), p.url),
            None => p.url.clone(),
        };
        println!(
            "{:<16} {:<14} {:<32} {}",
            p.label.as_deref().unwrap_or("-"),
            p.pubkey.short(),
            at,
            p.source
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// How `peers list` names a link's addresses; none means the relays find the peer.
pub(super) fn addrs_text<T: std::fmt::Display>(addrs: &[T]) -> String {
    if addrs.is_empty() {
        return "(relays)".into();
    }
    addrs
        .iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a running node reaches a peer: its URL, or for a linked peer the link's path and
/// round-trip time ("link direct 1.4ms", "link relayed 31ms") and, while no link is open,
/// where it will be dialled.
pub(super) fn reached_at(p: &crate::core::node::PeerRow) -> String {
    if p.transport.as_deref() != Some("link") {
        return p.url.clone();
    }
    match (&p.path, p.rtt_ms) {
        (Some(path), Some(rtt)) => format!("link {path} {rtt:.1}ms"),
        (Some(path), None) => format!("link {path}"),
        (None, _) => format!("link {} (not open)", addrs_text(&p.link_addrs)),
    }
}

#[cfg(test)]
mod url_or_label_tests {
    use super::url_or_label;

    #[test]
    fn a_lone_word_that_cannot_be_an_address_is_the_label() {
        let some = |s: &str| Some(s.to_string());
        let cases = [
            ((some("alice-mac"), None), (None, some("alice-mac"))),
            ((some("http://h:1"), None), (some("http://h:1"), None)),
            (
                (some("192.168.1.20:17474"), None),
                (some("192.168.1.20:17474"), None),
            ),
            ((some("mac.local"), None), (some("mac.local"), None)),
            ((some("alice"), some("mac")), (some("alice"), some("mac"))),
            ((None, None), (None, None)),
        ];
        for (given, want) in cases {
            assert_eq!(
                url_or_label(given.0.clone(), given.1.clone()),
                want,
                "{given:?}"
            );
        }
    }
}
