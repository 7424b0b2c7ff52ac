//! Every user-facing sentence of the console in one place, so wording stays consistent
//! and a reviewer reads the whole voice of the UI in one file. Key names live in
//! `keymap`; this file holds titles, prompts, confirmations and status messages.

pub const APP_NAME: &str = "lobstah";
pub const DEMO_BADGE: &str = " DEMO ";
pub const CONNECTING: &str = "connecting to the node…";
pub const HELP_MORE: &str = "↓ more";
/// The help overlay's legend of the in-flight panel: (term, meaning).
pub const HELP_IN_FLIGHT_HEADING: &str = "Router in flight panel";
pub const HELP_IN_FLIGHT_LEGEND: [(&str, &str); 3] = [
    ("rows", "Requests this router is forwarding to peers now"),
    (
        "consumed",
        "Tokens/s our router received from peers, last minute",
    ),
    ("served", "Tokens/s our worker produced, last minute"),
];
/// The help overlay's legend of the queue panel's job lines: (term, meaning).
pub const HELP_QUEUE_HEADING: &str = "Worker queue panel";
pub const HELP_QUEUE_LEGEND: [(&str, &str); 3] = [
    ("jobs", "Async jobs this worker serves for peers"),
    (
        "sent",
        "Async jobs this node's router holds for its clients",
    ),
    ("q r d e c", "queued, running, done, error, cancelled"),
];
/// The help overlay's legend of the peers table's counters: (column, meaning).
pub const HELP_PEERS_HEADING: &str = "Peers panel";
pub const HELP_PEERS_LEGEND: [(&str, &str); 6] = [
    ("tok/s", "Output tokens per second it gave us, last minute"),
    (
        "ttft",
        "Time to first token of its streams (mean, last minute)",
    ),
    (
        "answer",
        "Whole-answer time, request to end (mean, last minute)",
    ),
    ("ok/fail", "Requests the peer served, and failed"),
    (
        "refused",
        "Receipts refused: bad signature, replayed, implausible",
    ),
    (
        "declined",
        "Times it turned us away: credit, limits, friends list",
    ),
];
pub const TOO_SMALL: &str = "terminal too small";

pub const TITLE_PEERS: &str = "Peers";
pub const TITLE_QUEUE: &str = "Worker queue";
/// This router's own requests to peers, as opposed to the worker's queue.
pub const TITLE_IN_FLIGHT: &str = "Router in flight";
/// After the peers panel's title: the window the speed columns are over.
pub const PEERS_WINDOW: &str = "speeds over the last minute";
pub const TITLE_EXCLUSIONS: &str = "Exclusions";
pub const TITLE_RECEIPTS: &str = "Receipts";
pub const TITLE_BALANCE: &str = "Balance";
/// Requesters owing our worker confirmations.
pub const TITLE_OWED: &str = "Owed to us";
pub const TITLE_HELP: &str = "Keys";
pub const TITLE_ADD_PEER: &str = "Add peer";
pub const TITLE_CONFIRM_REMOVE: &str = "Remove peer?";
pub const TITLE_CONFIRM_ADVERTISE: &str = "Start advertising?";

pub const EMPTY_PEERS: &str = "No peers yet. Press a to add one, or s to sync from trackers.";
pub const EMPTY_EXCLUSIONS: &str = "No peer is excluded.";
pub const EMPTY_RECEIPTS: &str = "No receipts yet.";
pub const EMPTY_IN_FLIGHT: &str = "Nothing in flight through this router.";
pub const EMPTY_OWED: &str = "Every requester has confirmed what it was served.";

pub const FIELD_PUBKEY: &str = "Public key";
pub const FIELD_URL: &str = "Worker URL";
pub const FIELD_LABEL: &str = "Label (optional)";
pub const PLACEHOLDER_PUBKEY: &str = "lob1 followed by 64 hex characters";
pub const PLACEHOLDER_URL: &str = "http://host:17474";
pub const PLACEHOLDER_LABEL: &str = "a name for the table, up to 64 characters";
pub const FIELD_OK: &str = "✓";
pub const PUBKEY_REQUIRED: &str = "a public key is required";
pub const URL_REQUIRED: &str = "a worker URL is required";
pub const PUBKEY_PREFIX_MISSING: &str = "must start with lob1";
pub const PUBKEY_NOT_LOWER_HEX: &str = "after lob1, only the hex digits 0-9 and a-f";
pub const FORM_INVALID: &str = "fix the fields marked in the form first";

pub const ROUTER: &str = "router";
pub const WORKER: &str = "worker";
pub const CONTROL: &str = "control";
pub const OFF: &str = "off";
pub const ADVERTISING_ON: &str = "advertising ON";
pub const ADVERTISING_OFF: &str = "advertising off";
pub const NO_PEER_SELECTED: &str = "no peer selected";
pub const CANCELLED: &str = "cancelled";
pub const RESYNCING: &str = "fell behind the node's events; re-reading its state";
pub const EVENTS_CLOSED: &str = "lost the node's event stream; reconnecting…";
pub const NODE_SHUTTING_DOWN: &str = "the node is shutting down";

/// The pubkey has the wrong length after `lob1`.
pub fn pubkey_wrong_length(hex_chars: usize) -> String {
    format!("needs 64 hex characters after lob1, has {hex_chars}")
}

/// The body of the remove-peer confirmation.
pub fn confirm_remove(name: &str, url: &str) -> String {
    format!(
        "Remove {name} ({url}) from the peer book?\n\n\
         The router stops sending it work. Receipts already in the ledger stay."
    )
}

/// The body of the advertising-on confirmation: it must say what leaves the machine.
pub fn confirm_advertise(
    worker_url: Option<&str>,
    models: &[String],
    targets: &[String],
) -> String {
    let url = worker_url.unwrap_or("this machine's worker address");
    let models = if models.is_empty() {
        "no models yet".to_string()
    } else {
        models.join(", ")
    };
    let targets = if targets.is_empty() {
        "the configured trackers and relays".to_string()
    } else {
        targets.join(", ")
    };
    format!(
        "Advertising publishes this machine's worker address ({url}) and its models \
         ({models}) to {targets}, signed with this node's identity.\n\n\
         Anyone who reads them can send this machine work. Turn advertising on?"
    )
}

pub fn adding_peer(name: &str) -> String {
    format!("adding {name}…")
}

pub fn removing_peer(name: &str) -> String {
    format!("removing {name}…")
}

pub const TURNING_ADVERTISING_ON: &str = "turning advertising on…";
pub const TURNING_ADVERTISING_OFF: &str = "turning advertising off…";
pub const SYNCING_PEERS: &str = "syncing peers…";

/// A command came back; `ok` decides the tone, the node's message is shown as given.
pub fn command_result(ok: bool, message: &str) -> String {
    match (ok, message.is_empty()) {
        (true, true) => "done".to_string(),
        (true, false) => message.to_string(),
        (false, true) => "the node refused".to_string(),
        (false, false) => format!("refused: {message}"),
    }
}

pub fn command_failed(error: &str) -> String {
    format!("command failed: {error}")
}

pub fn snapshot_failed(error: &str) -> String {
    format!("cannot read the node's state: {error}")
}

pub fn events_failed(error: &str) -> String {
    format!("cannot follow the node's events: {error}")
}

pub fn receipt_rejected(peer: &str, reason: &str) -> String {
    format!("receipt from {peer} rejected: {reason}")
}

/// Column headings, short because columns are narrow.
pub mod column {
    pub const LABEL: &str = "label";
    pub const PUBKEY: &str = "pubkey";
    pub const URL: &str = "url";
    pub const MODELS: &str = "models";
    pub const TIER: &str = "tier";
    pub const STATE: &str = "state";
    pub const QUEUE: &str = "q";
    /// Output tokens per second over the last minute.
    pub const TOKENS_PER_SEC: &str = "tok/s";
    /// Time to first token.
    pub const TTFT: &str = "ttft";
    /// Whole-answer time.
    pub const ANSWER: &str = "answer";
    /// In flight: time since the request went to the peer, tokens forwarded so far.
    pub const ELAPSED: &str = "elapsed";
    pub const TOKENS_SO_FAR: &str = "tokens";
    pub const KIND: &str = "kind";
    pub const COUNTS: &str = "ok/fail";
    /// Receipts from the peer refused: bad signature, replayed, implausible counts.
    pub const REFUSED: &str = "refused";
    /// Times the peer turned us away: credit (402), limits (429), friends list (403).
    pub const DECLINED: &str = "declined";
    pub const SOURCE: &str = "source";
    pub const PEER: &str = "peer";
    pub const REASON: &str = "reason";
    pub const LEFT: &str = "left";
    pub const TIME: &str = "time UTC";
    pub const ROLE: &str = "role";
    pub const CREDITS: &str = "credits";
    pub const MODEL: &str = "model";
    pub const TOKENS_IN: &str = "in";
    pub const TOKENS_OUT: &str = "out";
    /// Unconfirmed tokens a requester owes, its receipts, the oldest one's age, and the
    /// share of the cap at which the worker refuses it.
    pub const OWED_TOKENS: &str = "tokens";
    pub const OWED_RECEIPTS: &str = "rcpt";
    pub const OWED_OLDEST: &str = "oldest";
    pub const OWED_CAP: &str = "cap";
}

/// Words inside table cells and panels.
pub mod cell {
    pub const NONE: &str = "—";
    pub const OK: &str = "ok";
    pub const EXCLUDED: &str = "excluded";
    pub const EXCLUDED_SHORT: &str = "excl";
    pub const READMITTING: &str = "readmitting";
    pub const UNREACHABLE: &str = "unreachable";
    pub const UNKNOWN: &str = "unknown";
    pub const EARNED: &str = "earned";
    pub const SPENT: &str = "spent";
    pub const SELF_SERVED: &str = "self";
    pub const RUNNING: &str = "running";
    pub const WAITING: &str = "waiting";
    pub const SLOTS: &str = "slots";
    /// The worker's job queue, and the jobs this node's router holds for its clients.
    pub const JOBS: &str = "jobs";
    pub const SENT: &str = "sent";
    pub const BAL_EARNED: &str = "earned";
    pub const BAL_SPENT: &str = "spent";
    pub const BAL_NET: &str = "net";
    pub const BAL_AVAILABLE: &str = "available";
    pub const BAL_AVAILABLE_SHORT: &str = "avail";
    /// Under earned: not yet counter-signed by the requesters; under spent: not yet
    /// confirmed.
    pub const BAL_PENDING: &str = "pending";
    pub const NET_TREND: &str = "net credits, last receipts";
    /// The two totals of the in-flight panel: tokens/s consumed and served.
    pub const CONSUMED: &str = "consumed";
    pub const SERVED: &str = "served";
    pub const TOKENS_PER_SEC: &str = "tok/s";
    pub const STREAM: &str = "stream";
    pub const WHOLE: &str = "whole";
    /// A stream whose first byte has not come yet.
    pub const WAITING_FIRST: &str = "waiting";
}
