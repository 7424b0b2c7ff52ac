//! Ed25519 identities and their text forms: `lob1` + 64 hex public keys and 128-hex
//! signatures.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProtocolError;

pub const PUBKEY_PREFIX: &str = "lob1";

/// A peer's public key. Its text form is the only form that travels.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PublicKey(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses `lob1` + 64 lowercase hex characters; anything else is refused.
    pub fn parse(text: &str) -> Result<Self, ProtocolError> {
        let bad = || ProtocolError::BadPublicKey(text.chars().take(80).collect());
        let hex_part = text.strip_prefix(PUBKEY_PREFIX).ok_or_else(bad)?;
        Ok(PublicKey(decode_lower_hex::<32>(hex_part).ok_or_else(bad)?))
    }

    /// A short form for tables: `lob1` + the first 8 hex characters.
    pub fn short(&self) -> String {
        format!("{PUBKEY_PREFIX}{}…", &hex::encode(self.0)[..8])
    }

    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), ProtocolError> {
        let bad = || ProtocolError::BadSignature(self.to_string());
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| bad())?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).map_err(|_| bad())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBKEY_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = ProtocolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::parse(s)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PublicKey::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 signature; travels as 128 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl Signature {
    pub fn parse_hex(text: &str) -> Result<Self, ProtocolError> {
        decode_lower_hex::<64>(text)
            .map(Signature)
            .ok_or(ProtocolError::BadSignatureEncoding)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", self.to_hex())
    }
}

/// A key pair able to sign receipts and announcements.
#[derive(Clone)]
pub struct Identity {
    signing: SigningKey,
    public: PublicKey,
}

impl Identity {
    pub fn generate() -> Self {
        Identity::from_seed(rand::random())
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let public = PublicKey(signing.verifying_key().to_bytes());
        Identity { signing, public }
    }

    /// Parses the 64-hex seed kept in identity files.
    pub fn from_seed_hex(text: &str) -> Result<Self, ProtocolError> {
        decode_lower_hex::<32>(text)
            .map(Identity::from_seed)
            .ok_or_else(|| {
                ProtocolError::malformed("secret key", "expected 64 lowercase hex characters")
            })
    }

    pub fn seed_hex(&self) -> String {
        hex::encode(self.signing.to_bytes())
    }

    pub fn public(&self) -> PublicKey {
        self.public
    }

    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret half.
        write!(f, "Identity({})", self.public)
    }
}

/// Decodes exactly `N` bytes of lowercase hex; uppercase is refused because the text
/// forms are canonical and compared as strings by other implementations.
fn decode_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2
        || !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trips() {
        let id = Identity::from_seed([7; 32]);
        let text = id.public().to_string();
        assert!(text.starts_with("lob1") && text.len() == 68);
        assert_eq!(PublicKey::parse(&text).unwrap(), id.public());
    }

    #[test]
    fn malformed_public_keys_are_refused() {
        let good = Identity::from_seed([1; 32]).public().to_string();
        let cases = [
            String::new(),
            "lob1".into(),
            good[..67].to_string(),
            format!("{good}0"),
            good.replacen("lob1", "lob2", 1),
            good.to_uppercase(),
            format!("lob1{}", "g".repeat(64)),
        ];
        for case in cases {
            assert!(PublicKey::parse(&case).is_err(), "accepted {case:?}");
        }
    }

    #[test]
    fn sign_and_verify() {
        let id = Identity::from_seed([9; 32]);
        let sig = id.sign(b"hello");
        id.public().verify(b"hello", &sig).unwrap();
        assert!(id.public().verify(b"hellp", &sig).is_err());
        let sig2 = Signature::parse_hex(&sig.to_hex()).unwrap();
        assert_eq!(sig, sig2);
    }
}
