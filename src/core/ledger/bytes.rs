//! The byte-level pieces the ledger's compact records share: unsigned LEB128 varints,
//! length-prefixed strings and fixed arrays, and a reader over stored bytes that refuses
//! (never panics on) anything short, overlong or left over. A hand-written LEB128: no
//! varint crate is among the dependencies, and ten lines do not justify one.

/// Why stored bytes do not decode; the caller names the row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum RecordError {
    #[error("the record is empty")]
    Empty,
    #[error("unknown record tag {0:#04x}")]
    UnknownTag(u8),
    #[error("the record ends inside {0}")]
    Short(&'static str),
    #[error("{0} does not fit in 64 bits")]
    Overlong(&'static str),
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    #[error("{0} bytes are left over after the record")]
    Trailing(usize),
    #[error("{0}")]
    Invalid(String),
}

/// Appends `value` as an unsigned LEB128 varint.
pub(super) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `text` with its length in front.
pub(super) fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Reads a record front to back.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(super) fn varint(&mut self, what: &'static str) -> Result<u64, RecordError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.rest.split_first().ok_or(RecordError::Short(what))?;
            self.rest = rest;
            let low = u64::from(byte & 0x7f);
            // The tenth byte may only carry the top bit of a u64.
            if shift == 63 && low > 1 {
                return Err(RecordError::Overlong(what));
            }
            value |= low << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::Overlong(what))
    }

    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Short(what));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], RecordError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N, what)?);
        Ok(out)
    }

    pub(super) fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        let len = self.varint(what)?;
        let len = usize::try_from(len).map_err(|_| RecordError::Short(what))?;
        let raw = self.bytes(len, what)?;
        String::from_utf8(raw.to_vec()).map_err(|_| RecordError::NotUtf8(what))
    }

    /// The record must end here.
    pub(super) fn finish(self) -> Result<(), RecordError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(RecordError::Trailing(n)),
        }
    }
}

/// 32 lowercase hex characters as 16 bytes; `None` for anything else.
pub(super) fn hex16(text: &str) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    let lower = text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (lower && hex::decode_to_slice(text, &mut out).is_ok()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        for value in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut r = Reader::new(&out);
            assert_eq!(r.varint("v"), Ok(value), "{value}");
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn bad_varints_are_refused() {
        let cases: [(&[u8], RecordError); 4] = [
            (&[], RecordError::Short("v")),
            (&[0x80], RecordError::Short("v")),
            (&[0xff; 10], RecordError::Overlong("v")),
            (
                &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
                RecordError::Overlong("v"),
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(Reader::new(bytes).varint("v"), Err(want), "{bytes:?}");
        }
    }

    #[test]
    fn hex16_takes_only_canonical_nonces() {
        let cases = [
            ("00112233445566778899aabbccddeeff", true),
            ("00112233445566778899AABBCCDDEEFF", false),
            ("00112233445566778899aabbccddeef", false),
            ("00112233445566778899aabbccddeeffff", false),
            ("zz112233445566778899aabbccddeeff", false),
            ("", false),
        ];
        for (text, ok) in cases {
            assert_eq!(hex16(text).is_some(), ok, "{text}");
        }
    }
}
