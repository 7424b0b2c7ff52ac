//! Finding peers: what trackers and Nostr relays say about workers, checked before the
//! router believes it (signatures, freshness, and the URL safety policy).

pub mod announcer;
pub mod guarded;
pub mod merge;
pub mod nostr;
pub mod sync;
pub mod tracker_client;
pub mod url_safety;

pub use guarded::{GuardedResolver, Lookup, StaticLookup, SystemLookup, guarded_client};
pub use merge::{Listing, MergeContext, SyncReport, check_items, merge};
pub use sync::{sync_nostr, sync_trackers};
pub use url_safety::{AddressKind, UnsafeUrl, UrlHost, UrlPolicy, classify};
