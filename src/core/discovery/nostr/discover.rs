//! Reading announcements from relays: one subscription to kind 31474 with `#t=lobstah`
//! and `#d=lobstah-peer` on every relay at once, drained until each relay has sent its
//! stored events (EOSE), nothing arrived for `idle`, or `hard_timeout` passed. Every
//! event is checked by `check_announcement_event`; the newest fresh announcement per
//! lobstah key wins, whichever Nostr key carried it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nostr_sdk::prelude::{
    Client, Event, Filter, Kind, RelayMessage, RelayPoolNotification, RelayUrl, SubscriptionId,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use super::event::{RefusalClass, check_announcement_event};
use super::{ANNOUNCE_HASHTAG, ANNOUNCE_KIND, NostrError, PEER_D_TAG, parse_relays};
use crate::core::protocol::SignedAnnouncement;

/// What a discovery round found. Counters count distinct events, not copies: the same
/// event from three relays is judged once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiscoverReport {
    /// The newest fresh announcement per lobstah key, both signatures verified, sorted by
    /// key.
    pub fresh: Vec<SignedAnnouncement>,
    /// Events whose Nostr id or signature does not verify. nostr-sdk drops most of these
    /// before they reach us, but not a copy reusing an id it already verified from
    /// another relay; this counts the ones that got through.
    pub bad_nostr_signature: usize,
    pub bad_lobstah_signature: usize,
    /// Stale, or dated too far in the future.
    pub stale: usize,
    /// Wrong kind or tags, content that is not a signed announcement, or a
    /// `lobstah_pubkey` tag naming another key than the signer.
    pub malformed: usize,
    /// Relays that sent all their stored events (EOSE).
    pub relays_answered: usize,
    /// One sentence per relay that could not be read, or did not finish in time.
    pub relay_errors: Vec<String>,
}

/// Asks every relay in `relays` for lobstah announcements and checks them at `now_ms`.
/// Fails only when no relay could be reached; a partial answer is a report with
/// `relay_errors`.
pub async fn discover(
    relays: &[String],
    now_ms: u64,
    idle: Duration,
    hard_timeout: Duration,
) -> Result<DiscoverReport, NostrError> {
    let urls = parse_relays(relays)?;
    let deadline = Instant::now() + hard_timeout;
    // Reading needs no signer; a fresh client also means a fresh verification cache.
    let client = Client::default();
    for url in &urls {
        client
            .add_read_relay(url.clone())
            .await
            .map_err(|e| NostrError::Client(e.to_string()))?;
    }
    let round = drain(&client, urls, now_ms, idle, deadline).await;
    client.shutdown().await;
    if round.reached == 0 {
        return Err(NostrError::NoRelayReachable(round.errors));
    }
    Ok(round.tally.into_report(round.answered, round.errors))
}

/// The state of one discovery round.
struct Round {
    id: SubscriptionId,
    /// Relays asked that have not yet finished (EOSE, CLOSED, or failed to open).
    pending: HashSet<RelayUrl>,
    tally: Tally,
    errors: Vec<String>,
    /// Relays that sent EOSE.
    answered: usize,
    /// Relays connected and subscribed.
    reached: usize,
}

impl Round {
    fn on_message(&mut self, relay: &RelayUrl, message: RelayMessage<'_>) {
        match message {
            RelayMessage::Event {
                subscription_id,
                event,
            } if *subscription_id == self.id => self.tally.record(&event),
            RelayMessage::EndOfStoredEvents(sub) if *sub == self.id => self.finish(relay, None),
            RelayMessage::Closed {
                subscription_id,
                message,
            } if *subscription_id == self.id => self.finish(
                relay,
                Some(format!("the relay closed the subscription: {message}")),
            ),
            _ => {}
        }
    }

    fn opened(&mut self, relay: &RelayUrl, result: Result<(), String>) {
        match result {
            Ok(()) => self.reached += 1,
            Err(reason) => self.finish(relay, Some(reason)),
        }
    }

    fn finish(&mut self, relay: &RelayUrl, error: Option<String>) {
        if !self.pending.remove(relay) {
            return;
        }
        match error {
            None => self.answered += 1,
            Some(reason) => self.errors.push(format!("{relay}: {reason}")),
        }
    }
}

/// Connects and subscribes to each relay concurrently while reading what comes back, so
/// a relay that is slow to open delays nobody.
async fn drain(
    client: &Client,
    urls: Vec<RelayUrl>,
    now_ms: u64,
    idle: Duration,
    deadline: Instant,
) -> Round {
    // Subscribed before any REQ goes out, so an early EOSE is not missed.
    let mut notifications = client.notifications();
    let filter = Filter::new()
        .kind(Kind::Custom(ANNOUNCE_KIND))
        .hashtag(ANNOUNCE_HASHTAG)
        .identifier(PEER_D_TAG);
    let mut round = Round {
        id: SubscriptionId::generate(),
        pending: urls.iter().cloned().collect(),
        tally: Tally::new(now_ms),
        errors: Vec::new(),
        answered: 0,
        reached: 0,
    };
    let mut opening: FuturesUnordered<_> = urls
        .into_iter()
        .map(|url| open(client, url, round.id.clone(), filter.clone(), deadline))
        .collect();
    while !round.pending.is_empty() {
        // Idle counts only once every relay has been asked: opening a connection is not
        // silence.
        let wait_until = if opening.is_empty() {
            deadline.min(Instant::now() + idle)
        } else {
            deadline
        };
        tokio::select! {
            Some((url, result)) = opening.next(), if !opening.is_empty() => {
                round.opened(&url, result);
            }
            received = tokio::time::timeout_at(wait_until, notifications.recv()) => {
                match received {
                    Err(_) => break, // idle, or the hard deadline
                    Ok(Err(RecvError::Lagged(missed))) => round.errors.push(format!(
                        "missed {missed} relay messages: they came faster than they could be checked"
                    )),
                    Ok(Err(RecvError::Closed)) => break,
                    Ok(Ok(RelayPoolNotification::Message { relay_url, message })) => {
                        round.on_message(&relay_url, message);
                    }
                    Ok(Ok(_)) => {}
                }
            }
        }
    }
    let waited = if Instant::now() >= deadline {
        "the hard timeout"
    } else {
        "the idle timeout"
    };
    let mut unfinished: Vec<String> = round
        .pending
        .iter()
        .map(|url| format!("{url}: did not send all its stored events within {waited}"))
        .collect();
    unfinished.sort();
    round.errors.extend(unfinished);
    round
}

/// Opens one relay and subscribes to it, both bounded by `deadline`.
async fn open(
    client: &Client,
    url: RelayUrl,
    id: SubscriptionId,
    filter: Filter,
    deadline: Instant,
) -> (RelayUrl, Result<(), String>) {
    let timeout = deadline.saturating_duration_since(Instant::now());
    let result = async {
        client
            .try_connect_relay(url.clone(), timeout)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let output = client
            .subscribe_with_id_to([url.clone()], id, filter, None)
            .await
            .map_err(|e| format!("cannot subscribe: {e}"))?;
        match output.failed.get(&url) {
            Some(reason) => Err(format!("cannot subscribe: {reason}")),
            None => Ok(()),
        }
    }
    .await;
    (url, result)
}

/// The pure part of discovery: judging events and keeping the newest per lobstah key.
struct Tally {
    now_ms: u64,
    /// Whole events already judged; a copy that differs in any field (a forged one
    /// reusing a real id, say) is judged again.
    seen: HashSet<Event>,
    newest: HashMap<String, SignedAnnouncement>,
    bad_nostr_signature: usize,
    bad_lobstah_signature: usize,
    stale: usize,
    malformed: usize,
}

impl Tally {
    fn new(now_ms: u64) -> Self {
        Tally {
            now_ms,
            seen: HashSet::new(),
            newest: HashMap::new(),
            bad_nostr_signature: 0,
            bad_lobstah_signature: 0,
            stale: 0,
            malformed: 0,
        }
    }

    fn record(&mut self, event: &Event) {
        if !self.seen.insert(event.clone()) {
            return;
        }
        match check_announcement_event(event, self.now_ms) {
            Ok(signed) => {
                let key = signed.announcement().pubkey.to_string();
                let newer = self.newest.get(&key).is_none_or(|kept| {
                    signed.announcement().announced_at > kept.announcement().announced_at
                });
                if newer {
                    self.newest.insert(key, signed);
                }
            }
            Err(refusal) => {
                tracing::debug!(event = %event.id, author = %event.pubkey, %refusal, "refused a Nostr announcement");
                match refusal.class() {
                    RefusalClass::BadNostrSignature => self.bad_nostr_signature += 1,
                    RefusalClass::BadLobstahSignature => self.bad_lobstah_signature += 1,
                    RefusalClass::Stale => self.stale += 1,
                    RefusalClass::Malformed => self.malformed += 1,
                }
            }
        }
    }

    fn into_report(self, relays_answered: usize, relay_errors: Vec<String>) -> DiscoverReport {
        let mut fresh: Vec<SignedAnnouncement> = self.newest.into_values().collect();
        fresh.sort_by_key(|s| s.announcement().pubkey.to_string());
        DiscoverReport {
            fresh,
            bad_nostr_signature: self.bad_nostr_signature,
            bad_lobstah_signature: self.bad_lobstah_signature,
            stale: self.stale,
            malformed: self.malformed,
            relays_answered,
            relay_errors,
        }
    }
}

#[cfg(test)]
mod tests {
    use nostr_sdk::prelude::{Keys, Timestamp};

    use super::*;
    use crate::core::discovery::nostr::announcement_event;
    use crate::core::protocol::{Announcement, Identity, Tier};

    const NOW: u64 = 1_800_000_000_000;

    fn event(identity: &Identity, keys: &Keys, announced_at: u64) -> Event {
        let announcement = Announcement {
            version: 1,
            pubkey: identity.public(),
            url: "http://127.0.0.1:17474".into(),
            label: None,
            models: vec!["m".into()],
            tier: Tier::Interactive,
            ttl_seconds: 300,
            announced_at,
            link: None,
        };
        let signed = SignedAnnouncement::sign(announcement, identity).unwrap();
        announcement_event(&signed, keys, Timestamp::from_secs(announced_at / 1000)).unwrap()
    }

    #[test]
    fn copies_are_judged_once_and_the_newest_per_lobstah_key_wins() {
        let (worker, keys, replayer) = (
            Identity::from_seed([1; 32]),
            Keys::generate(),
            Keys::generate(),
        );
        let newest = event(&worker, &keys, NOW - 1_000);
        let older = event(&worker, &replayer, NOW - 60_000);
        let stale = event(&Identity::from_seed([2; 32]), &keys, NOW - 600_000);
        let mut tally = Tally::new(NOW);
        for e in [&older, &newest, &newest, &older, &stale, &stale] {
            tally.record(e);
        }
        let report = tally.into_report(2, Vec::new());
        assert_eq!(report.fresh.len(), 1);
        assert_eq!(report.fresh[0].announcement().announced_at, NOW - 1_000);
        assert_eq!(report.stale, 1, "{report:?}");
        assert_eq!(report.relays_answered, 2);
    }

    #[test]
    fn a_forged_copy_of_a_verified_event_is_still_checked() {
        // nostr-sdk caches verified event ids and skips verification for a later copy
        // with the same id; a relay could pair a real id with other contents.
        let worker = Identity::from_seed([3; 32]);
        let keys = Keys::generate();
        let genuine = event(&worker, &keys, NOW);
        let other = event(&worker, &keys, NOW - 5_000);
        let forged = Event::new(
            genuine.id,
            genuine.pubkey,
            genuine.created_at,
            genuine.kind,
            genuine.tags.iter().cloned(),
            other.content.clone(),
            genuine.sig,
        );
        let mut tally = Tally::new(NOW);
        tally.record(&genuine);
        tally.record(&forged);
        let report = tally.into_report(1, Vec::new());
        assert_eq!(report.bad_nostr_signature, 1);
        assert_eq!(report.fresh.len(), 1);
        assert_eq!(report.fresh[0].announcement().announced_at, NOW);
    }
}
