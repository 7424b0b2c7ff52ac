//! Forwards a worker's SSE stream to the client as it arrives, taking out the
//! `:lobstah-receipt:<base64>` comment (and the blank line that ends it) on the way.
//!
//! This works on lines, not parsed events, on purpose: every other byte reaches the
//! client exactly as the worker sent it, with no re-serialization and no buffering
//! beyond an incomplete last line.

use bytes::{Bytes, BytesMut};

const MARKER: &[u8] = crate::core::protocol::wire::RECEIPT_COMMENT.as_bytes();

/// A receipt comment longer than this is not a receipt; it is passed through as is.
pub const MAX_RECEIPT_LINE: usize = 64 * 1024;

#[derive(Debug, Default)]
pub struct ReceiptFilter {
    partial: BytesMut,
    receipt: Option<String>,
    drop_next_blank: bool,
    /// The start of the current line was already forwarded (it grew too long to be a
    /// receipt), so what follows up to the next newline is the rest of that line.
    mid_line: bool,
    /// Set by [`ReceiptFilter::holding_the_end`]: what follows the receipt is kept back
    /// in `end` instead of going out.
    hold_end: bool,
    end: BytesMut,
}

impl ReceiptFilter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A filter that keeps back everything after the receipt (`[DONE]`, the stream's
    /// end) until [`ReceiptFilter::take_end`]: the router hands a client the end of its
    /// answer only once the receipt is durable.
    pub fn holding_the_end() -> Self {
        ReceiptFilter {
            hold_end: true,
            ..Self::default()
        }
    }

    /// What followed the receipt, kept back so far (empty without `holding_the_end`).
    pub fn take_end(&mut self) -> Bytes {
        self.end.split().freeze()
    }

    /// Takes the next chunk; with `holding_the_end`, only what precedes the receipt is
    /// returned, the rest waits for [`ReceiptFilter::take_end`].
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        // Lines after a receipt within this very chunk are kept back by `push_all`.
        let after_receipt = self.holding();
        let out = self.push_all(chunk);
        self.hold_if(after_receipt, out)
    }

    fn holding(&self) -> bool {
        self.hold_end && self.receipt.is_some()
    }

    /// Sends `out` on, or keeps it back when it all comes after a held receipt.
    fn hold_if(&mut self, after_receipt: bool, out: Bytes) -> Bytes {
        if after_receipt {
            self.end.extend_from_slice(&out);
            Bytes::new()
        } else {
            out
        }
    }

    /// Takes the next chunk from the worker; returns what goes to the client now.
    fn push_all(&mut self, chunk: &[u8]) -> Bytes {
        // `partial` never holds a newline between calls: only the new bytes can.
        let held = self.partial.len();
        self.partial.extend_from_slice(chunk);
        let Some(last_newline) = chunk.iter().rposition(|&b| b == b'\n') else {
            // A receipt line is the marker, at most MAX_RECEIPT_LINE bytes and maybe `\r`.
            let len = self.partial.len();
            let too_long = len > MARKER.len() + MAX_RECEIPT_LINE + 1
                || (len > MAX_RECEIPT_LINE && !self.partial.starts_with(MARKER));
            if self.mid_line || too_long {
                // A line that cannot be a receipt: stop holding it back, and remember
                // that what comes up to its newline is not the start of a line. It is
                // not blank either, so it is not the blank line after a receipt.
                self.mid_line = true;
                self.drop_next_blank = false;
                return self.partial.split().freeze();
            }
            return Bytes::new();
        };
        let complete = self.partial.split_to(held + last_newline + 1);
        // Fast path: most chunks hold no receipt and follow no receipt.
        if !self.drop_next_blank && !contains_marker(&complete) {
            self.mid_line = false;
            return complete.freeze();
        }
        let mut out = BytesMut::with_capacity(complete.len());
        for line in complete.split_inclusive(|&b| b == b'\n') {
            if std::mem::take(&mut self.mid_line) {
                // The end of a long line whose start went out already.
                out.extend_from_slice(line);
                continue;
            }
            let content = trim_eol(line);
            if self.drop_next_blank {
                self.drop_next_blank = false;
                if content.is_empty() {
                    continue;
                }
            }
            if let Some(payload) = content.strip_prefix(MARKER)
                && payload.len() <= MAX_RECEIPT_LINE
            {
                self.receipt = Some(String::from_utf8_lossy(payload).trim().to_string());
                self.drop_next_blank = true;
                continue;
            }
            if self.holding() {
                self.end.extend_from_slice(line);
            } else {
                out.extend_from_slice(line);
            }
        }
        out.freeze()
    }

    /// The stream ended: whatever incomplete line is left goes to the client.
    pub fn finish(&mut self) -> Bytes {
        let after_receipt = self.holding();
        let rest = self.partial.split().freeze();
        if !std::mem::take(&mut self.mid_line)
            && let Some(payload) = rest.strip_prefix(MARKER)
            && payload.len() <= MAX_RECEIPT_LINE
        {
            self.receipt = Some(String::from_utf8_lossy(payload).trim().to_string());
            return Bytes::new();
        }
        self.hold_if(after_receipt, rest)
    }

    /// The receipt payload (base64), once seen.
    pub fn receipt(&self) -> Option<&str> {
        self.receipt.as_deref()
    }
}

fn contains_marker(block: &[u8]) -> bool {
    block.starts_with(MARKER)
        || block
            .windows(MARKER.len() + 1)
            .any(|w| w[0] == b'\n' && &w[1..] == MARKER)
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> (String, Option<String>) {
        let mut f = ReceiptFilter::new();
        let mut out = Vec::new();
        for c in chunks {
            out.extend_from_slice(&f.push(c.as_bytes()));
        }
        out.extend_from_slice(&f.finish());
        (
            String::from_utf8(out).unwrap(),
            f.receipt().map(str::to_string),
        )
    }

    #[test]
    fn filter_table() {
        let stream =
            "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n:lobstah-receipt:QUJD\n\ndata: [DONE]\n\n";
        let clean = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        // The same stream cut at every possible point must give the same result.
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(
                run(&[a, b]),
                (clean.to_string(), Some("QUJD".to_string())),
                "cut at {cut}"
            );
        }
        let byte_by_byte: Vec<String> = stream.chars().map(|c| c.to_string()).collect();
        let refs: Vec<&str> = byte_by_byte.iter().map(String::as_str).collect();
        assert_eq!(run(&refs), (clean.to_string(), Some("QUJD".to_string())));
    }

    /// Holding the end: whatever the cut, what precedes the receipt goes out at once and
    /// what follows it (`[DONE]`) only from `take_end`.
    #[test]
    fn holding_the_end_table() {
        let stream =
            "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n:lobstah-receipt:QUJD\n\ndata: [DONE]\n\n";
        let before = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\n";
        let cases: Vec<Vec<&str>> = (0..stream.len())
            .map(|cut| {
                let (a, b) = stream.split_at(cut);
                vec![a, b]
            })
            .chain([stream.split_inclusive('\n').collect()])
            .collect();
        for chunks in cases {
            let mut f = ReceiptFilter::holding_the_end();
            let mut out = Vec::new();
            for c in &chunks {
                out.extend_from_slice(&f.push(c.as_bytes()));
            }
            out.extend_from_slice(&f.finish());
            assert_eq!(String::from_utf8_lossy(&out), before, "{chunks:?}");
            assert_eq!(f.receipt(), Some("QUJD"), "{chunks:?}");
            assert_eq!(&f.take_end()[..], b"data: [DONE]\n\n", "{chunks:?}");
            assert!(f.take_end().is_empty(), "taken once");
        }
        // Without a receipt nothing is held.
        let mut f = ReceiptFilter::holding_the_end();
        assert_eq!(
            &f.push(b"data: x\n\ndata: [DONE]\n\n")[..],
            b"data: x\n\ndata: [DONE]\n\n"
        );
        assert!(f.take_end().is_empty());
    }

    #[test]
    fn other_comments_and_crlf() {
        let cases = [
            (
                ": keep-alive\n\ndata: x\n\n",
                ": keep-alive\n\ndata: x\n\n",
                None,
            ),
            (
                "data: x\r\n\r\n:lobstah-receipt:Zm9v\r\n\r\ndata: [DONE]\r\n\r\n",
                "data: x\r\n\r\ndata: [DONE]\r\n\r\n",
                Some("Zm9v"),
            ),
            (
                "data: x\n\n:lobstah-receipt:Zm9v",
                "data: x\n\n",
                Some("Zm9v"),
            ),
            ("data: x", "data: x", None),
        ];
        for (input, want, receipt) in cases {
            assert_eq!(
                run(&[input]),
                (want.to_string(), receipt.map(str::to_string)),
                "{input:?}"
            );
        }
    }

    /// Found by the `sse_stream` fuzz target: a line too long to be a receipt is let
    /// through before its newline arrives, and the rest of it must not then be read as
    /// a new line (a receipt marker, or the blank line after a receipt). The cut must
    /// not matter, and a stream's unterminated end obeys the same length limit.
    #[test]
    fn long_lines_are_the_same_whatever_the_reads() {
        let long = "x".repeat(MAX_RECEIPT_LINE + 10);
        let over = "A".repeat(MAX_RECEIPT_LINE + 1);
        let cases: [(Vec<String>, Option<&str>); 4] = [
            (
                vec![format!("data: {long}"), ":lobstah-receipt:QUJD\n\n".into()],
                None,
            ),
            (
                vec![
                    ":lobstah-receipt:QUJD\n".into(),
                    long.clone(),
                    "\ndata: [DONE]\n\n".into(),
                ],
                Some("QUJD"),
            ),
            (
                vec!["data: x\n\n:lobstah-receipt:".into(), over.clone()],
                None,
            ),
            (
                vec![":lobstah-receipt:".into(), over.clone(), "\n\n".into()],
                None,
            ),
        ];
        for (reads, receipt) in cases {
            let whole = reads.concat();
            let refs: Vec<&str> = reads.iter().map(String::as_str).collect();
            let (one, one_receipt) = run(&[&whole]);
            let (cut, cut_receipt) = run(&refs);
            let shown = &whole[..whole.len().min(40)];
            assert_eq!(one_receipt.as_deref(), receipt, "{shown:?}");
            assert_eq!(cut_receipt.as_deref(), receipt, "{shown:?}");
            assert!(one == cut, "{shown:?}: the reads changed the bytes");
            let want_len =
                whole.len() - receipt.map_or(0, |r| ":lobstah-receipt:\n".len() + r.len());
            assert_eq!(one.len(), want_len, "{shown:?}");
        }
    }

    #[test]
    fn complete_lines_pass_at_once() {
        let mut f = ReceiptFilter::new();
        assert_eq!(&f.push(b"data: 1\n\ndata: 2")[..], b"data: 1\n\n");
        assert_eq!(&f.push(b"\n\n")[..], b"data: 2\n\n");
    }
}
