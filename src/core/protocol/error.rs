//! Errors raised while parsing, signing or verifying protocol objects.

/// What is wrong with a protocol object. Messages name the offending part so an
/// operator reading a log line knows what to look at.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error(
        "malformed public key {0:?}: expected \"lob1\" followed by 64 lowercase hex characters"
    )]
    BadPublicKey(String),
    #[error("malformed signature: expected 128 lowercase hex characters")]
    BadSignatureEncoding,
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    #[error("unsupported {what} version {version} (this build speaks version 1)")]
    UnsupportedVersion { what: &'static str, version: u64 },
    #[error("signature does not verify against {0}")]
    BadSignature(String),
    #[error("{what} is stale: {age_ms} ms old, the limit is {limit_ms} ms")]
    Stale {
        what: &'static str,
        age_ms: u64,
        limit_ms: u64,
    },
    #[error(
        "{what} is from the future: {ahead_ms} ms ahead of this clock, the limit is {limit_ms} ms"
    )]
    Future {
        what: &'static str,
        ahead_ms: u64,
        limit_ms: u64,
    },
    #[error(
        "cannot sign: the identity {identity} is not the {role} {expected} named in the object"
    )]
    WrongSigner {
        identity: String,
        role: &'static str,
        expected: String,
    },
}

impl ProtocolError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        ProtocolError::Malformed {
            what,
            detail: detail.into(),
        }
    }
}
