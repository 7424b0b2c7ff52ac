//! The tracker: a deliberately dumb registry of signed announcements with a TTL, served
//! over HTTP for `lobstah tracker start`.
