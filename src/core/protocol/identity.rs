//! Ed25519 identities and their text forms: `lob1` + 64 hex public keys and 128-hex
//! signatures.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProtocolError;
use super::key_cache::KEYS;

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
        format!("{PUBKEY_PREFIX}{}…", &lower_hex(&self.0[..4]))
    }

    pub(crate) fn verify(
        &self,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), ProtocolError> {
        let bad = || ProtocolError::BadSignature(self.to_string());
        let key = KEYS.get(&self.0).ok_or_else(bad)?;
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        key.verify_strict(message, &sig).map_err(|_| bad())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // On the stack: a key is written into every receipt, header and ledger row.
        let mut text = [0u8; 68];
        text[..4].copy_from_slice(PUBKEY_PREFIX.as_bytes());
        write_lower_hex(&self.0, &mut text[4..]);
        // Only ASCII was written.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
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
        lower_hex(&self.0)
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

    /// The 32-byte seed, which is also the secret key of this node's peer-link endpoint.
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    pub fn seed_hex(&self) -> String {
        lower_hex(&self.signing.to_bytes())
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

/// Lowercase hex of `bytes`. `hex::encode` builds its string one `char` at a time, which
/// showed up in profiles: keys, signatures and nonces are encoded several times per request.
pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    write_lower_hex(bytes, &mut out);
    // Only ASCII digits and a–f were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Writes the lowercase hex of `bytes` into `out`, which holds exactly twice as many bytes.
fn write_lower_hex(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (pair, byte) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
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
    fn hex_forms_match_the_hex_crate() {
        for seed in [[0u8; 32], [0xff; 32], [0x5a; 32]] {
            let id = Identity::from_seed(seed);
            let pk = id.public();
            assert_eq!(
                pk.to_string(),
                format!("lob1{}", hex::encode(pk.as_bytes()))
            );
            assert_eq!(
                pk.short(),
                format!("lob1{}…", &hex::encode(pk.as_bytes())[..8])
            );
            assert_eq!(id.seed_hex(), hex::encode(seed));
            let sig = id.sign(b"x");
            assert_eq!(sig.to_hex(), hex::encode(sig.0));
        }
        assert_eq!(lower_hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(lower_hex(&[]), "");
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
