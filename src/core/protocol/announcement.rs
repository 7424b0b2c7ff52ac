//! Signed announcements: a worker's statement of where it serves, which models, and for
//! how long the statement holds. Kept as received, like receipts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::{
    Identity, PROTOCOL_VERSION, ProtocolError, PublicKey, Signature, canonical_object,
    check_safe_integer,
};

/// How far ahead of the verifier's clock an announcement may be dated.
pub const ANNOUNCE_FUTURE_SKEW_MS: u64 = 5 * 60 * 1000;

/// The service class a worker offers: chat prefers interactive peers, jobs batch peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tier {
    #[default]
    Interactive,
    Batch,
    BestEffort,
}

impl Tier {
    pub fn as_str(&self) -> &'static str {
        match self {
            Tier::Interactive => "interactive",
            Tier::Batch => "batch",
            Tier::BestEffort => "best-effort",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "interactive" => Ok(Tier::Interactive),
            "batch" => Ok(Tier::Batch),
            "best-effort" => Ok(Tier::BestEffort),
            other => Err(format!(
                "unknown tier {other:?}: expected interactive, batch or best-effort"
            )),
        }
    }
}

/// The fields of a v1 announcement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    pub version: u64,
    pub pubkey: PublicKey,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub models: Vec<String>,
    pub tier: Tier,
    pub ttl_seconds: u64,
    pub announced_at: u64,
    /// How to reach the worker by key over a peer link: absent from announcements of
    /// workers without links, so theirs are byte for byte what they were. Covered by the
    /// signature like every field; old peers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkDial>,
}

/// Dial information for a worker's peer link: the relays it keeps a home on and the
/// UDP addresses it may be reached at directly.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDial {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addrs: Vec<String>,
}

/// At most this many relays and addresses in an announcement's dial information.
pub const MAX_ANNOUNCED_RELAYS: usize = 4;
pub const MAX_ANNOUNCED_ADDRS: usize = 8;
/// The longest relay URL announced.
const MAX_RELAY_URL_BYTES: usize = 256;

/// An announcement with its signature.
#[derive(Debug, Clone, PartialEq)]
pub struct SignedAnnouncement {
    body: Map<String, Value>,
    announcement: Announcement,
    signature: Signature,
}

impl SignedAnnouncement {
    pub fn sign(announcement: Announcement, identity: &Identity) -> Result<Self, ProtocolError> {
        if identity.public() != announcement.pubkey {
            return Err(ProtocolError::WrongSigner {
                identity: identity.public().to_string(),
                role: "announcer",
                expected: announcement.pubkey.to_string(),
            });
        }
        check_fields(&announcement)?;
        let Value::Object(body) = serde_json::to_value(&announcement)
            .map_err(|e| ProtocolError::malformed("announcement", e.to_string()))?
        else {
            return Err(ProtocolError::malformed(
                "announcement",
                "did not serialize to an object",
            ));
        };
        let signature = identity.sign(&canonical_object(&body)?);
        Ok(SignedAnnouncement {
            body,
            announcement,
            signature,
        })
    }

    /// Parses `{"announcement":{…},"signature":"…"}` without verifying it.
    pub fn from_value(value: Value) -> Result<Self, ProtocolError> {
        let Value::Object(mut outer) = value else {
            return Err(ProtocolError::malformed(
                "signed announcement",
                "expected a JSON object",
            ));
        };
        let Some(Value::Object(body)) = outer.remove("announcement") else {
            return Err(ProtocolError::malformed(
                "signed announcement",
                "missing the \"announcement\" object",
            ));
        };
        let Some(Value::String(sig)) = outer.remove("signature") else {
            return Err(ProtocolError::malformed(
                "signed announcement",
                "missing the \"signature\" string",
            ));
        };
        let signature = Signature::parse_hex(&sig)?;
        let announcement: Announcement = serde_json::from_value(Value::Object(body.clone()))
            .map_err(|e| ProtocolError::malformed("announcement", e.to_string()))?;
        check_fields(&announcement)?;
        Ok(SignedAnnouncement {
            body,
            announcement,
            signature,
        })
    }

    pub fn from_json(text: &[u8]) -> Result<Self, ProtocolError> {
        let value: Value = serde_json::from_slice(text).map_err(|e| {
            ProtocolError::malformed("signed announcement", format!("invalid JSON: {e}"))
        })?;
        Self::from_value(value)
    }

    pub fn to_value(&self) -> Value {
        let mut outer = Map::with_capacity(2);
        outer.insert("announcement".into(), Value::Object(self.body.clone()));
        outer.insert("signature".into(), Value::String(self.signature.to_hex()));
        Value::Object(outer)
    }

    pub fn verify_signature(&self) -> Result<(), ProtocolError> {
        let message = canonical_object(&self.body)?;
        self.announcement.pubkey.verify(&message, &self.signature)
    }

    /// Fresh when dated no more than 5 minutes ahead and no older than its TTL.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), ProtocolError> {
        let at = self.announcement.announced_at;
        if at > now_ms + ANNOUNCE_FUTURE_SKEW_MS {
            return Err(ProtocolError::Future {
                what: "announcement",
                ahead_ms: at - now_ms,
                limit_ms: ANNOUNCE_FUTURE_SKEW_MS,
            });
        }
        let ttl_ms = self.announcement.ttl_seconds.saturating_mul(1000);
        if now_ms > at.saturating_add(ttl_ms) {
            return Err(ProtocolError::Stale {
                what: "announcement",
                age_ms: now_ms - at,
                limit_ms: ttl_ms,
            });
        }
        Ok(())
    }

    pub fn announcement(&self) -> &Announcement {
        &self.announcement
    }

    pub fn body(&self) -> &Map<String, Value> {
        &self.body
    }
}

impl Serialize for SignedAnnouncement {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> Deserialize<'de> for SignedAnnouncement {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SignedAnnouncement::from_value(Value::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The rules a v1 announcement obeys beyond its JSON shape, for signing and parsing alike.
fn check_fields(announcement: &Announcement) -> Result<(), ProtocolError> {
    if announcement.version != PROTOCOL_VERSION {
        return Err(ProtocolError::UnsupportedVersion {
            what: "announcement",
            version: announcement.version,
        });
    }
    check_safe_integer("announcement", "ttlSeconds", announcement.ttl_seconds)?;
    check_safe_integer("announcement", "announcedAt", announcement.announced_at)?;
    if let Some(link) = &announcement.link {
        check_link(link)?;
    }
    Ok(())
}

/// Bounded and well formed; whether the addresses are safe to dial is the URL policy's
/// call when the announcement is merged.
fn check_link(link: &LinkDial) -> Result<(), ProtocolError> {
    let bad = |why: String| ProtocolError::malformed("announcement link", why);
    if link.relays.len() > MAX_ANNOUNCED_RELAYS || link.addrs.len() > MAX_ANNOUNCED_ADDRS {
        return Err(bad(format!(
            "at most {MAX_ANNOUNCED_RELAYS} relays and {MAX_ANNOUNCED_ADDRS} addresses"
        )));
    }
    for relay in &link.relays {
        let parsed = url::Url::parse(relay).map_err(|e| bad(format!("relay {relay:?}: {e}")))?;
        if relay.len() > MAX_RELAY_URL_BYTES
            || !matches!(parsed.scheme(), "http" | "https")
            || parsed.host().is_none()
        {
            return Err(bad(format!(
                "relay {relay:?} is not an http(s) URL with a host"
            )));
        }
    }
    for addr in &link.addrs {
        addr.parse::<std::net::SocketAddr>()
            .map_err(|_| bad(format!("{addr:?} is not IP:PORT")))?;
    }
    Ok(())
}

/// The text an unannounce request signs: `unannounce:<pubkey>:<timestamp>`.
pub fn unannounce_message(pubkey: &PublicKey, timestamp_ms: u64) -> String {
    format!("unannounce:{pubkey}:{timestamp_ms}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: &Identity, at: u64) -> Announcement {
        Announcement {
            version: 1,
            pubkey: id.public(),
            url: "http://127.0.0.1:17474".into(),
            label: Some("my-mac".into()),
            models: vec!["llama3.1:8b".into()],
            tier: Tier::Batch,
            ttl_seconds: 300,
            announced_at: at,
            link: None,
        }
    }

    #[test]
    fn round_trip_and_tamper() {
        let id = Identity::from_seed([4; 32]);
        let signed = SignedAnnouncement::sign(sample(&id, 1_000_000), &id).unwrap();
        let text = signed.to_value().to_string();
        let back = SignedAnnouncement::from_json(text.as_bytes()).unwrap();
        back.verify_signature().unwrap();
        let tampered = text.replace("my-mac", "my-mad");
        let bad = SignedAnnouncement::from_json(tampered.as_bytes()).unwrap();
        assert!(bad.verify_signature().is_err());
    }

    #[test]
    fn freshness_table() {
        let id = Identity::from_seed([4; 32]);
        let at = 10_000_000;
        let signed = SignedAnnouncement::sign(sample(&id, at), &id).unwrap();
        let cases = [
            (at, true),
            (at + 300_000, true),
            (at + 300_001, false),
            (at - ANNOUNCE_FUTURE_SKEW_MS, true),
            (at - ANNOUNCE_FUTURE_SKEW_MS - 1, false),
        ];
        for (now, fresh) in cases {
            assert_eq!(signed.check_fresh(now).is_ok(), fresh, "now={now}");
        }
    }

    #[test]
    fn dial_information_is_signed_bounded_and_absent_unless_given() {
        let id = Identity::from_seed([5; 32]);
        let plain = SignedAnnouncement::sign(sample(&id, 1_000_000), &id).unwrap();
        assert!(
            plain.to_value()["announcement"].get("link").is_none(),
            "an announcement without links is what it was before links"
        );

        let mut linked = sample(&id, 1_000_000);
        linked.link = Some(LinkDial {
            relays: vec!["http://198.18.1.1:3340".into()],
            addrs: vec!["198.18.1.2:55068".into()],
        });
        let signed = SignedAnnouncement::sign(linked.clone(), &id).unwrap();
        let back = SignedAnnouncement::from_value(signed.to_value()).unwrap();
        back.verify_signature().unwrap();
        assert_eq!(back.announcement().link, linked.link);
        let mut moved = signed.to_value();
        moved["announcement"]["link"]["addrs"][0] = Value::from("203.0.113.66:55068");
        let moved = SignedAnnouncement::from_value(moved).unwrap();
        assert!(
            moved.verify_signature().is_err(),
            "the signature covers the link"
        );

        let bad = |link: LinkDial| {
            let mut a = sample(&id, 1_000_000);
            a.link = Some(link);
            SignedAnnouncement::sign(a, &id).is_err()
        };
        assert!(bad(LinkDial {
            relays: vec![],
            addrs: vec!["not-an-address".into()],
        }));
        assert!(bad(LinkDial {
            relays: vec!["ftp://relay.example".into()],
            addrs: vec![],
        }));
        assert!(bad(LinkDial {
            relays: vec![],
            addrs: vec!["198.18.1.2:1".into(); MAX_ANNOUNCED_ADDRS + 1],
        }));
    }
}
