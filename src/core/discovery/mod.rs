//! Finding peers: what trackers and Nostr relays say about workers, checked before the
//! router believes it (signatures, freshness, and the URL safety policy).
