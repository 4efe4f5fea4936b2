//! An incremental Server-Sent Events parser that keeps each event's raw bytes.
//!
//! Fed arbitrary chunks, it yields the same events however the input was split (tested with
//! proptest), never panics, and refuses events larger than its bound instead of growing
//! without limit. Each event carries the exact bytes it came from, so same-dialect streams are
//! forwarded byte for byte.

use bytes::{Bytes, BytesMut};

/// The largest event accepted (data plus field lines).
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if any.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The event exactly as received, including its terminating blank line.
    pub raw: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("an event exceeded {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// Parses an SSE byte stream one chunk at a time.
#[derive(Debug)]
pub struct SseParser {
    buf: BytesMut,
    /// How far `buf` has been scanned for an event boundary.
    scanned: usize,
    /// Whether the scan position is at the start of a line with nothing on it yet.
    line_empty: bool,
    max: usize,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    pub fn new() -> Self {
        SseParser {
            buf: BytesMut::new(),
            scanned: 0,
            line_empty: true,
            max: MAX_EVENT_BYTES,
        }
    }

    pub fn with_limit(max: usize) -> Self {
        SseParser {
            buf: BytesMut::new(),
            scanned: 0,
            line_empty: true,
            max,
        }
    }

    /// Adds a chunk and returns every event it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.find_boundary() {
            let raw = self.buf.split_to(end).freeze();
            if let Some(ev) = parse_event(raw) {
                out.push(ev);
            }
        }
        if self.buf.len() > self.max {
            return Err(SseError::TooLarge);
        }
        Ok(out)
    }

    /// Whatever is left when the stream ends: an event not terminated by a blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if self.buf.is_empty() {
            return None;
        }
        let raw = self.buf.split().freeze();
        self.scanned = 0;
        self.line_empty = true;
        parse_event(raw)
    }

    /// Bytes held that do not yet form a whole event.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The end (exclusive) of the first complete event: a line terminator (`\r\n`, `\n` or
    /// `\r`) on an empty line. Scanning resumes where the previous call stopped.
    fn find_boundary(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        let mut i = self.scanned;
        let mut line_empty = self.line_empty;
        while i < b.len() {
            let term = match b[i] {
                b'\n' => 1,
                b'\r' if i + 1 == b.len() => {
                    // Could be the first half of `\r\n`: wait for the next byte.
                    break;
                }
                b'\r' if b[i + 1] == b'\n' => 2,
                b'\r' => 1,
                _ => {
                    line_empty = false;
                    i += 1;
                    continue;
                }
            };
            if line_empty {
                self.scanned = 0;
                self.line_empty = true;
                return Some(i + term);
            }
            line_empty = true;
            i += term;
        }
        self.scanned = i;
        self.line_empty = line_empty;
        None
    }
}

impl SseEvent {
    /// The event `raw` holds (one complete event with its blank line); `None` for a comment
    /// or an event with no data.
    pub fn parse(raw: Bytes) -> Option<SseEvent> {
        parse_event(raw)
    }
}

fn parse_event(raw: Bytes) -> Option<SseEvent> {
    let text = String::from_utf8_lossy(&raw);
    let mut event = None;
    let mut data: Option<String> = None;
    for line in text.split(['\n', '\r']) {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => event = Some(value.to_string()),
            "data" => match data.as_mut() {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            },
            _ => {}
        }
    }
    if event.is_none() && data.is_none() {
        // Comments and keep-alives carry no event; they are still forwarded as raw bytes by
        // callers that want them, via `SseEvent` with empty data.
        return Some(SseEvent {
            event: None,
            data: String::new(),
            raw,
        });
    }
    Some(SseEvent {
        event,
        data: data.unwrap_or_default(),
        raw,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        let mut last = 0;
        for &c in cuts {
            let c = c.min(input.len()).max(last);
            out.extend(p.feed(&input[last..c]).expect("feed"));
            last = c;
        }
        out.extend(p.feed(&input[last..]).expect("feed"));
        out.extend(p.finish());
        out
    }

    #[test]
    fn parses_fields_and_keeps_raw() {
        let input = b"event: message_start\ndata: {\"a\":1}\n\n: ping\n\ndata: x\ndata: y\n\ndata: [DONE]\n\n";
        let ev = all(input, &[]);
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0].event.as_deref(), Some("message_start"));
        assert_eq!(ev[0].data, "{\"a\":1}");
        assert_eq!(&ev[0].raw[..], b"event: message_start\ndata: {\"a\":1}\n\n");
        assert_eq!(ev[1].data, "");
        assert_eq!(ev[2].data, "x\ny");
        assert_eq!(ev[3].data, "[DONE]");
        let joined: Vec<u8> = ev.iter().flat_map(|e| e.raw.to_vec()).collect();
        assert_eq!(joined, input);
    }

    #[test]
    fn crlf_and_cr_line_endings() {
        let ev = all(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n", &[]);
        let data: Vec<&str> = ev.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(data, ["a", "b", "c"]);
    }

    #[test]
    fn oversized_events_are_refused() {
        let mut p = SseParser::with_limit(16);
        assert_eq!(
            p.feed(b"data: 0123456789abcdefghij"),
            Err(SseError::TooLarge)
        );
    }

    #[test]
    fn unterminated_tail_is_returned_by_finish() {
        let mut p = SseParser::new();
        assert!(p.feed(b"data: tail").expect("feed").is_empty());
        assert_eq!(p.finish().map(|e| e.data), Some("tail".to_string()));
        assert_eq!(p.finish(), None);
    }

    fn event_text() -> impl Strategy<Value = String> {
        let line = prop_oneof![
            "[a-z {}\":,]{0,12}".prop_map(|s| format!("data: {s}")),
            "[a-z_.]{1,10}".prop_map(|s| format!("event: {s}")),
            Just(": keep-alive".to_string()),
            Just("data".to_string()),
        ];
        (
            proptest::collection::vec(line, 1..4),
            prop_oneof![Just("\n"), Just("\r\n")],
        )
            .prop_map(|(lines, nl)| {
                let mut s = lines.join(nl);
                s.push_str(nl);
                s.push_str(nl);
                s
            })
    }

    proptest! {
        /// However the bytes are cut, the same events come out, and their raw bytes rebuild the input.
        #[test]
        fn chunking_does_not_matter(events in proptest::collection::vec(event_text(), 0..8), cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let input = events.concat().into_bytes();
            let whole = all(&input, &[]);
            let mut cuts = cuts;
            cuts.sort_unstable();
            let split = all(&input, &cuts);
            prop_assert_eq!(&whole, &split);
            let joined: Vec<u8> = split.iter().flat_map(|e| e.raw.to_vec()).collect();
            prop_assert_eq!(joined, input);
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), cut in 0usize..512) {
            let cut = cut.min(bytes.len());
            let mut p = SseParser::new();
            let _ = p.feed(&bytes[..cut]);
            let _ = p.feed(&bytes[cut..]);
            let _ = p.finish();
        }
    }
}
