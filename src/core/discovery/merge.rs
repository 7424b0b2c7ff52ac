//! Merging discovered announcements into the peer book: verify each as received, keep
//! the newest per pubkey, apply the URL safety policy (to announced link addresses and
//! relays too), and book the rest under their
//! source. Peers a source booked earlier and no longer lists (withdrawn or expired) leave
//! the book, so a worker that shut down stops being a candidate at the next sync. Peers
//! the operator added by hand are never touched.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::guarded::Lookup;
use super::url_safety::UrlPolicy;
use crate::core::peers::{AddOutcome, MAX_LINK_ADDRS, PeerBook, PeerSource};
use crate::core::protocol::{LinkDial, ProtocolError, PublicKey, SignedAnnouncement};

/// How a sync went, in the counts an operator reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Booked from a source that no longer lists them.
    pub removed: usize,
    pub bad_signature: usize,
    pub unsafe_url: usize,
    /// Expired, or dated too far in the future.
    pub stale: usize,
    pub malformed: usize,
    /// Listed, but the operator added this peer by hand; left as they added it.
    pub kept_manual: usize,
    /// Sources that answered, and why the others did not.
    pub sources_answered: usize,
    pub failures: Vec<String>,
}

impl SyncReport {
    /// Whether the book changed, so the router must re-read it.
    pub fn changed(&self) -> bool {
        self.added + self.updated + self.removed > 0
    }

    /// One sentence: "3 added, 1 updated, …"; the rarer counts only when not zero.
    pub fn summary(&self) -> String {
        let mut parts = vec![
            format!("{} added", self.added),
            format!("{} updated", self.updated),
            format!("{} unchanged", self.unchanged),
            format!("{} removed", self.removed),
            format!("{} bad signature", self.bad_signature),
            format!("{} unsafe URL", self.unsafe_url),
            format!("{} stale", self.stale),
        ];
        let refusals = [
            (self.malformed, "malformed"),
            (self.kept_manual, "kept as added by hand"),
        ];
        parts.extend(
            refusals
                .iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, what)| format!("{n} {what}")),
        );
        let mut text = parts.join(", ");
        for failure in &self.failures {
            text.push_str("; ");
            text.push_str(failure);
        }
        text
    }
}

/// Announcements one source vouched for, already verified and fresh.
#[derive(Debug, Clone)]
pub struct Listing {
    pub source: PeerSource,
    pub fresh: Vec<SignedAnnouncement>,
    /// The listing is the source's whole word, so what it booked earlier and no longer
    /// lists may go. False when part of it did not answer (a relay that was down).
    pub complete: bool,
}

/// Checks raw `/peers` entries as received; the verified, fresh ones come back and the
/// rest are counted in `report`.
pub fn check_items(
    items: &[Value],
    now_ms: u64,
    report: &mut SyncReport,
) -> Vec<SignedAnnouncement> {
    let mut fresh = Vec::new();
    for item in items {
        let signed = match SignedAnnouncement::from_value(item.clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "malformed announcement");
                report.malformed += 1;
                continue;
            }
        };
        if let Err(e) = signed.verify_signature() {
            tracing::debug!(error = %e, peer = %signed.announcement().pubkey.short(), "announcement with a bad signature");
            report.bad_signature += 1;
            continue;
        }
        match signed.check_fresh(now_ms) {
            Ok(()) => fresh.push(signed),
            Err(ProtocolError::Stale { .. } | ProtocolError::Future { .. }) => report.stale += 1,
            Err(e) => {
                tracing::debug!(error = %e, "announcement refused");
                report.malformed += 1;
            }
        }
    }
    fresh
}

/// What a merge needs besides the listings.
pub struct MergeContext<'a> {
    /// This node's own key: its own announcement is not a peer.
    pub me: PublicKey,
    pub now_ms: u64,
    pub policy: UrlPolicy,
    pub lookup: &'a dyn Lookup,
    /// This node dials peer links: announced dial information is booked.
    pub links: bool,
}

/// Books what `listings` vouch for and prunes what their sources no longer list.
pub async fn merge(
    book: &PeerBook,
    listings: &[Listing],
    ctx: &MergeContext<'_>,
    report: &mut SyncReport,
) {
    // Newest per pubkey across every source, remembering which source said so.
    let mut newest: HashMap<PublicKey, (&SignedAnnouncement, &PeerSource)> = HashMap::new();
    for listing in listings {
        for signed in &listing.fresh {
            let a = signed.announcement();
            let newer = newest
                .get(&a.pubkey)
                .is_none_or(|(held, _)| held.announcement().announced_at < a.announced_at);
            if newer {
                newest.insert(a.pubkey, (signed, &listing.source));
            }
        }
    }
    let mut vouched: HashSet<PublicKey> = HashSet::new();
    for (pubkey, (signed, source)) in newest {
        if pubkey == ctx.me {
            continue;
        }
        let a = signed.announcement();
        if let Ok(Some(existing)) = book.get(&pubkey)
            && existing.source == PeerSource::Manual
        {
            report.kept_manual += 1;
            continue;
        }
        let url_safe = match ctx.policy.check_url(&a.url, ctx.lookup).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(peer = %pubkey.short(), url = %a.url, reason = %e, "discovered peer's URL refused: unsafe URL");
                false
            }
        };
        let link = match (&a.link, ctx.links) {
            (Some(dial), true) => safe_dial(dial, ctx).await,
            _ => None,
        };
        if link.is_none() && !url_safe {
            report.unsafe_url += 1;
            continue;
        }
        let booked = book.add_announced(
            pubkey,
            url_safe.then_some(a.url.as_str()),
            link.as_ref()
                .map(|(addrs, relays)| (addrs.as_slice(), relays.as_slice())),
            a.label.as_deref(),
            source.clone(),
            ctx.now_ms,
        );
        match booked {
            Ok(outcome) => {
                vouched.insert(pubkey);
                match outcome {
                    AddOutcome::Added => report.added += 1,
                    AddOutcome::Updated => report.updated += 1,
                    AddOutcome::Unchanged => report.unchanged += 1,
                }
            }
            Err(e) => {
                tracing::debug!(peer = %pubkey.short(), error = %e, "discovered peer refused by the book");
                report.malformed += 1;
            }
        }
    }
    prune(book, listings, &vouched, report);
}

/// The parts of announced dial information this node may use: direct addresses the URL
/// policy allows and relays whose URLs it allows; None when nothing is left.
async fn safe_dial(
    dial: &LinkDial,
    ctx: &MergeContext<'_>,
) -> Option<(Vec<std::net::SocketAddr>, Vec<String>)> {
    let addrs: Vec<std::net::SocketAddr> = dial
        .addrs
        .iter()
        .filter_map(|a| a.parse::<std::net::SocketAddr>().ok())
        .filter(|a| ctx.policy.allows(a.ip()).is_ok())
        .take(MAX_LINK_ADDRS)
        .collect();
    let mut relays = Vec::new();
    for relay in &dial.relays {
        match ctx.policy.check_url(relay, ctx.lookup).await {
            Ok(()) => relays.push(relay.clone()),
            Err(e) => tracing::warn!(relay = %relay, reason = %e, "announced relay refused"),
        }
    }
    (!addrs.is_empty() || !relays.is_empty()).then_some((addrs, relays))
}

fn prune(
    book: &PeerBook,
    listings: &[Listing],
    vouched: &HashSet<PublicKey>,
    report: &mut SyncReport,
) {
    let answered: Vec<&PeerSource> = listings
        .iter()
        .filter(|l| l.complete)
        .map(|l| &l.source)
        .collect();
    let booked = match book.list() {
        Ok(peers) => peers,
        Err(e) => {
            report
                .failures
                .push(format!("cannot read the peer book: {e}"));
            return;
        }
    };
    for peer in booked {
        if answered.contains(&&peer.source) && !vouched.contains(&peer.pubkey) {
            match book.remove(&peer.pubkey) {
                Ok(true) => report.removed += 1,
                Ok(false) => {}
                Err(e) => report
                    .failures
                    .push(format!("cannot remove {}: {e}", peer.pubkey.short())),
            }
        }
    }
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
