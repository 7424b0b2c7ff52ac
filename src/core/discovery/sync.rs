//! One sync from trackers: fetch every `/peers`, check each entry, merge the result into
//! the peer book. Used by the node and by `lobstah peers sync` without one.

use super::merge::{Listing, MergeContext, SyncReport, check_items, merge};
use super::tracker_client;
use crate::core::router::peers::{PeerBook, PeerSource};

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
                });
            }
            Err(e) => report.failures.push(e.to_string()),
        }
    }
    merge(book, &listings, ctx, &mut report).await;
    report
}
