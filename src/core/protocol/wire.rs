//! The names on the wire both sides must agree on, in one place: HTTP headers, the
//! in-stream receipt marker and the paths of the worker's and router's APIs. The router
//! and the worker (and tests, and other implementations) read them here, so neither
//! imports the other to learn what the other calls things. (ALPNs join them with the
//! peer-link transport.)

/// The worker's signed receipt on a whole answer (base64 of the receipt JSON).
pub const RECEIPT_HEADER: &str = "x-lobstah-receipt";
/// On a streamed answer the receipt travels as an SSE comment line with this prefix,
/// just before `data: [DONE]`.
pub const RECEIPT_COMMENT: &str = ":lobstah-receipt:";
/// The requester a request is made for (the router's public key).
pub const REQUESTER_HEADER: &str = "x-lobstah-requester";
/// Which peer served an answer, on what the router returns to its client.
pub const SERVED_BY_HEADER: &str = "x-lobstah-served-by";
/// The job id the router proposes when it offers a job to a worker.
pub const JOB_ID_HEADER: &str = "x-lobstah-job-id";
/// Signed requests: when, a one-time nonce, and the Ed25519 signature over both.
pub const TIMESTAMP_HEADER: &str = "x-lobstah-timestamp";
pub const NONCE_HEADER: &str = "x-lobstah-nonce";
pub const SIGNATURE_HEADER: &str = "x-lobstah-signature";
/// A chat request over a peer link: the router's own tag in place of a signature
/// (see `protocol::link_tag`).
pub const REQUEST_TAG_HEADER: &str = "x-lobstah-request-tag";

/// OpenAI-compatible chat, on both the worker and the router.
pub const CHAT_PATH: &str = "/v1/chat/completions";
pub const MODELS_PATH: &str = "/v1/models";
/// Embeddings, on routers and on workers that list `embeddings` in their capabilities.
pub const EMBEDDINGS_PATH: &str = "/v1/embeddings";
/// What a worker's `/capacity` may list under `capabilities` (a field lobstah added:
/// a peer that does not send it serves chat only, as the existing network's do).
pub const CAPABILITY_CHAT: &str = "chat";
pub const CAPABILITY_EMBEDDINGS: &str = "embeddings";
pub const JOBS_PATH: &str = "/v1/jobs";
/// The worker's capacity probe and identity.
pub const CAPACITY_PATH: &str = "/capacity";
pub const PUBKEY_PATH: &str = "/pubkey";
/// Requesters counter-sign the receipts they ledgered here, in batches.
pub const CONFIRM_PATH: &str = "/v1/receipts/confirm";
/// What a worker holds unconfirmed for a requester, for reconciling after a loss.
pub const UNSETTLED_PATH: &str = "/v1/receipts/unsettled";
/// Receipts one answer of `UNSETTLED_PATH` lists at most; the requester asks again.
pub const MAX_UNSETTLED_PER_ANSWER: usize = 256;
