//! One sync from a discovery source: fetch every tracker's `/peers` (or read the Nostr
//! relays), check each entry, merge the result into the peer book. Used by the node and
//! by `lobstah peers sync|discover` without one.

use std::time::Duration;

use super::merge::{Listing, MergeContext, SyncReport, check_items, merge};
use super::nostr;
use super::tracker_client;
use crate::core::peers::{PeerBook, PeerSource};

/// Fetches every tracker's `/peers`, checks each entry and merges the result into `book`.
/// A tracker that does not answer is reported and its peers are left as they were.
pub async fn sync_trackers(
    http: &reqwest::Client,
    book: &PeerBook,
    trackers: &[String],
    ctx: &MergeContext<'_>,
) -> SyncReport {
    let fetched = futures_util::future::join_all(
        trackers
            .iter()
            .map(|t| tracker_client::fetch_items(http, t)),
    )
    .await;
    let mut report = SyncReport::default();
    let mut listings = Vec::new();
    for (tracker_url, result) in trackers.iter().zip(fetched) {
        match result {
            Ok(items) => {
                report.sources_answered += 1;
                listings.push(Listing {
                    source: PeerSource::Tracker {
                        url: tracker_url.clone(),
                    },
                    fresh: check_items(&items, ctx.now_ms, &mut report),
                    complete: true,
                });
            }
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    merge(book, &listings, ctx, &mut report).await;
    report
}

/// How long discovery waits for relays to go quiet, and at most in all.
pub const NOSTR_IDLE: Duration = Duration::from_secs(2);
pub const NOSTR_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads lobstah announcements from `relays` (both signatures checked there) and merges
/// them into `book` as Nostr peers. Peers booked from Nostr earlier and no longer seen
/// are dropped only when every relay answered.
pub async fn sync_nostr(book: &PeerBook, relays: &[String], ctx: &MergeContext<'_>) -> SyncReport {
    let mut report = SyncReport::default();
    let found = match nostr::discover(relays, ctx.now_ms, NOSTR_IDLE, NOSTR_TIMEOUT).await {
        Ok(found) => found,
        Err(e) => {
            report.failures.push(format!("Nostr: {e}"));
            return report;
        }
    };
    report.sources_answered = found.relays_answered;
    report.bad_signature = found.bad_nostr_signature + found.bad_lobstah_signature;
    report.stale = found.stale;
    report.malformed = found.malformed;
    report.failures = found.relay_errors.clone();
    let listing = Listing {
        source: PeerSource::Nostr,
        fresh: found.fresh,
        complete: found.relay_errors.is_empty() && found.relays_answered > 0,
    };
    merge(book, std::slice::from_ref(&listing), ctx, &mut report).await;
    report
}
