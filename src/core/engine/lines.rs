//! Line framing for streamed engine bodies: NDJSON (Ollama) and Server-Sent Events
//! (OpenAI-compatible servers, and lobstah workers for the router).
//!
//! Both are line protocols, so one splitter serves both. It is linear in the bytes it
//! sees (lines are cut off a `BytesMut` without copying the rest) and bounds the length
//! of a line, so an engine that never sends a newline cannot exhaust memory. We parse SSE
//! here rather than with `eventsource-stream` because that crate copies the whole
//! remaining buffer for every line it consumes, which is quadratic when many events
//! arrive in one read, and it does not bound its buffer.

use bytes::{Bytes, BytesMut};

use super::EngineError;

/// Longest line (and longest SSE event) accepted from an engine.
pub(crate) const MAX_LINE: usize = 8 << 20;

/// Splits a byte stream into lines. `\n` ends a line; a `\r` before it is dropped.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    buf: BytesMut,
    /// How far `buf` has been searched for a newline already.
    scanned: usize,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(max: usize) -> Self {
        LineSplitter {
            buf: BytesMut::new(),
            scanned: 0,
            max,
        }
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line, `None` if more bytes are needed.
    pub(crate) fn next_line(&mut self) -> Result<Option<Bytes>, EngineError> {
        match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
            Some(pos) => {
                let end = self.scanned + pos;
                let mut line = self.buf.split_to(end + 1);
                line.truncate(end);
                if line.last() == Some(&b'\r') {
                    line.truncate(end - 1);
                }
                self.scanned = 0;
                Ok(Some(line.freeze()))
            }
            None => {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max {
                    return Err(EngineError::Protocol(format!(
                        "engine sent a line longer than {} bytes",
                        self.max
                    )));
                }
                Ok(None)
            }
        }
    }

    /// Whatever follows the last newline, once the stream has ended.
    pub(crate) fn take_rest(&mut self) -> Option<Bytes> {
        self.scanned = 0;
        let mut rest = self.buf.split();
        if rest.last() == Some(&b'\r') {
            rest.truncate(rest.len() - 1);
        }
        (!rest.is_empty()).then(|| rest.freeze())
    }
}

/// One Server-Sent Events item: an event's data (several `data:` lines joined by `\n`)
/// with its `event:` name if any, or a comment line (text after the `:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SseItem {
    Event { event: Option<String>, data: String },
    Comment(String),
}

/// Assembles SSE events from lines (as the splitter yields them).
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    data: Option<String>,
    event: Option<String>,
    started: bool,
}

impl SseDecoder {
    pub(crate) fn line(&mut self, line: &[u8]) -> Result<Option<SseItem>, EngineError> {
        let mut text = std::str::from_utf8(line)
            .map_err(|_| EngineError::Protocol("event stream is not UTF-8".into()))?;
        if !self.started {
            self.started = true;
            text = text.strip_prefix('\u{feff}').unwrap_or(text);
        }
        if text.is_empty() {
            return Ok(self.dispatch());
        }
        if let Some(comment) = text.strip_prefix(':') {
            return Ok(Some(SseItem::Comment(comment.to_string())));
        }
        let (field, value) = match text.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (text, ""),
        };
        match field {
            "data" => {
                let data = self.data.get_or_insert_with(String::new);
                if data.len() + value.len() > MAX_LINE {
                    return Err(EngineError::Protocol(format!(
                        "engine sent an event longer than {MAX_LINE} bytes"
                    )));
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            "event" => self.event = Some(value.to_string()),
            // id and retry matter to reconnecting browsers, not to a one-shot request.
            _ => {}
        }
        Ok(None)
    }

    /// The pending event at end of stream. Servers that omit the final blank line are
    /// common enough that dropping it (as the spec says) would lose real answers.
    pub(crate) fn finish(&mut self) -> Option<SseItem> {
        self.dispatch()
    }

    fn dispatch(&mut self) -> Option<SseItem> {
        let event = self.event.take();
        self.data.take().map(|data| SseItem::Event { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(chunks: &[&[u8]], max: usize) -> Result<Vec<String>, EngineError> {
        let mut s = LineSplitter::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.push(c);
            while let Some(line) = s.next_line()? {
                out.push(String::from_utf8(line.to_vec()).unwrap());
            }
        }
        if let Some(rest) = s.take_rest() {
            out.push(String::from_utf8(rest.to_vec()).unwrap());
        }
        Ok(out)
    }

    #[test]
    fn lines_split_across_reads_and_many_per_read() {
        let got = split_all(
            &[b"{\"a\"", b":1}\n{\"b\":2}\r\n{\"c\"", b":3}\n\n{\"d\":4}"],
            64,
        );
        assert_eq!(
            got.unwrap(),
            ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "", "{\"d\":4}"]
        );
    }

    #[test]
    fn one_byte_at_a_time() {
        let text = b"first line\nsecond\n";
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(split_all(&chunks, 64).unwrap(), ["first line", "second"]);
    }

    #[test]
    fn overlong_line_is_refused() {
        let err = split_all(&[b"0123456789", b"0123456789"], 16).unwrap_err();
        assert!(matches!(err, EngineError::Protocol(_)), "{err:?}");
        // A long stream of short lines is fine: the bound is per line.
        let many = b"abc\n".repeat(100);
        assert_eq!(split_all(&[&many], 16).unwrap().len(), 100);
    }

    fn decode(lines: &[&str]) -> Vec<SseItem> {
        let mut d = SseDecoder::default();
        let mut out: Vec<SseItem> = lines
            .iter()
            .filter_map(|l| d.line(l.as_bytes()).unwrap())
            .collect();
        out.extend(d.finish());
        out
    }

    fn event(data: &str) -> SseItem {
        SseItem::Event {
            event: None,
            data: data.into(),
        }
    }

    #[test]
    fn sse_events_comments_and_multiline_data() {
        let got = decode(&[
            "\u{feff}data: {\"a\":1}",
            "",
            ":lobstah-receipt:abc",
            "",
            "event: ping",
            "data:x",
            "data: y",
            "id: 7",
            "",
            "data: [DONE]",
        ]);
        assert_eq!(
            got,
            [
                event("{\"a\":1}"),
                SseItem::Comment("lobstah-receipt:abc".into()),
                SseItem::Event {
                    event: Some("ping".into()),
                    data: "x\ny".into()
                },
                event("[DONE]"),
            ]
        );
    }

    #[test]
    fn blank_lines_without_data_dispatch_nothing() {
        assert_eq!(decode(&["", "", "retry: 5", ""]), []);
    }
}
