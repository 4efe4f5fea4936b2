//! What a request needs from a model: capabilities (tools, images, embeddings), room for its
//! prompt, and an estimate of its tokens for cost and rate limits.
//!
//! Cheap first: the capabilities come from the top-level `tools` and a byte scan for image
//! parts, the size from the body's length. Only when that cheap answer would skip a target
//! (a target without vision, a body longer in bytes than a target's context window) is the
//! body decoded once and the answer confirmed, so ordinary requests pay nothing extra.
//!
//! The token figure is [`crate::formats::translate::estimate`]'s heuristic (about four ASCII
//! bytes per token, one per other character, a flat figure per image); before decoding, a
//! quarter of the body's bytes. Both are estimates, not a tokenizer: see ARCHITECTURE.md
//! ("Context-window check") for how far off they can be.

use std::sync::OnceLock;

use bytes::Bytes;
use memchr::memmem;

use crate::catalogue::{Capability, Caps, ModelInfo};
use crate::formats::translate::{decode_request, estimate, ir::Part};
use crate::formats::Endpoint;

/// The output assumed for cost and rate limits when a request sets no cap.
pub const DEFAULT_OUTPUT_TOKENS: u64 = 1_024;

/// Byte patterns that only occur as JSON keys or values of image parts in one of the dialects
/// (inside a JSON string a quote is escaped, so prompt text cannot match them).
const IMAGE_MARKERS: [&[u8]; 6] = [
    b"\"image_url\"",
    b"\"input_image\"",
    b"\"image\"",
    b"\"inlineData\"",
    b"\"inline_data\"",
    b"\"fileData\"",
];

/// Two anchors between them occur in every marker (`image` in the first three, `ata"` in
/// the rest), so the body is searched twice rather than six times and each hit is checked
/// against the markers around it.
static ANCHORS: std::sync::LazyLock<[memmem::Finder<'static>; 2]> =
    std::sync::LazyLock::new(|| [memmem::Finder::new(b"image"), memmem::Finder::new(b"ata\"")]);

/// Whether any image marker occurs in `body`.
fn has_image_marker(body: &[u8]) -> bool {
    ANCHORS.iter().any(|anchor| {
        anchor.find_iter(body).any(|pos| {
            IMAGE_MARKERS.iter().any(|m| {
                memmem::find(m, anchor.needle())
                    .is_some_and(|k| pos >= k && body[pos - k..].starts_with(m))
            })
        })
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Exact {
    tools: bool,
    vision: bool,
    tokens: u64,
}

/// A request's needs, decoded lazily.
#[derive(Debug)]
pub struct Needs {
    endpoint: Endpoint,
    body: Bytes,
    tools: bool,
    /// Whether the body has image-part markers (scanned on first need: a route whose models
    /// all see images never scans).
    image_marker: OnceLock<bool>,
    /// The client's output cap.
    pub max_output: Option<u64>,
    exact: OnceLock<Option<Exact>>,
}

impl Needs {
    /// `tools` and `max_output` come from [`crate::formats::body::read_head`].
    pub fn new(endpoint: Endpoint, body: Bytes, tools: bool, max_output: Option<u64>) -> Needs {
        // Gemini's body is not read by `read_head` (its model is in the path).
        let tools = tools
            || (endpoint == Endpoint::GenerateContent
                && memmem::find(&body, b"\"functionDeclarations\"").is_some());
        Needs {
            endpoint,
            body,
            tools,
            image_marker: OnceLock::new(),
            max_output,
            exact: OnceLock::new(),
        }
    }

    /// The body decoded once: its tools, images and estimated tokens. `None` when it cannot
    /// be decoded (the cheap answers stand).
    fn exact(&self) -> Option<Exact> {
        *self.exact.get_or_init(|| {
            if self.endpoint == Endpoint::Embeddings {
                return None;
            }
            let v: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
            let (r, _) = decode_request(self.endpoint.dialect(), &v).ok()?;
            let vision = r.messages.iter().any(|m| {
                m.parts.iter().any(|p| match p {
                    Part::Image(_) => true,
                    Part::ToolResult { content, .. } => {
                        content.iter().any(|c| matches!(c, Part::Image(_)))
                    }
                    _ => false,
                })
            });
            Some(Exact {
                tools: !r.tools.is_empty(),
                vision,
                tokens: estimate::request_tokens(&r),
            })
        })
    }

    fn base(&self) -> Caps {
        if self.endpoint == Endpoint::Embeddings {
            Caps::of(&[Capability::Embeddings])
        } else {
            Caps::of(&[Capability::Chat])
        }
    }

    fn image_marker(&self) -> bool {
        *self
            .image_marker
            .get_or_init(|| self.endpoint != Endpoint::Embeddings && has_image_marker(&self.body))
    }

    /// The capabilities the request appears to need (from the cheap scan).
    pub fn caps(&self) -> Caps {
        let mut c = self.base();
        if self.tools {
            c = c.with(Capability::Tools);
        }
        if self.image_marker() {
            c = c.with(Capability::Vision);
        }
        c
    }

    /// The capabilities this request needs that a model with `have` lacks, confirmed by
    /// decoding the body when the scan alone would skip the model.
    pub fn missing(&self, have: Caps) -> Vec<Capability> {
        let mut seen = self.base();
        if self.tools {
            seen = seen.with(Capability::Tools);
        }
        if !have.has(Capability::Vision) && self.image_marker() {
            seen = seen.with(Capability::Vision);
        }
        let cheap = have.missing(seen);
        if cheap.is_empty() {
            return cheap;
        }
        match self.exact() {
            Some(e) => {
                let mut c = self.base();
                if e.tools || self.tools {
                    c = c.with(Capability::Tools);
                }
                if e.vision {
                    c = c.with(Capability::Vision);
                }
                have.missing(c)
            }
            None => cheap,
        }
    }

    /// `Some(estimated prompt tokens)` when the prompt does not fit a `window`-token context.
    /// Bodies no longer in bytes than the window are never decoded (a token is at least a
    /// byte of JSON text in practice).
    pub fn exceeds(&self, window: u64) -> Option<u64> {
        if window == 0 || self.body.len() as u64 <= window {
            return None;
        }
        let tokens = self
            .exact()
            .map_or(self.body.len() as u64 / 4, |e| e.tokens);
        (tokens > window).then_some(tokens)
    }

    /// Estimated prompt tokens: the decoded estimate when the body was decoded, else a quarter
    /// of its bytes.
    pub fn prompt_tokens(&self) -> u64 {
        match self.exact.get() {
            Some(Some(e)) => e.tokens,
            _ => (self.body.len() as u64 / 4).max(1),
        }
    }

    /// Output tokens to expect: the client's cap, else the model's (at most
    /// [`DEFAULT_OUTPUT_TOKENS`]).
    pub fn output_tokens(&self, info: Option<&ModelInfo>) -> u64 {
        if self.endpoint == Endpoint::Embeddings {
            return 0;
        }
        self.max_output.unwrap_or_else(|| {
            info.map_or(DEFAULT_OUTPUT_TOKENS, |i| {
                if i.max_output == 0 {
                    DEFAULT_OUTPUT_TOKENS
                } else {
                    i.max_output.min(DEFAULT_OUTPUT_TOKENS)
                }
            })
        })
    }

    /// Tokens to reserve against limits: prompt plus expected output.
    pub fn tokens(&self, info: Option<&ModelInfo>) -> u64 {
        self.prompt_tokens() + self.output_tokens(info)
    }

    /// The estimated cost in USD on a model, when its prices are known.
    pub fn cost(&self, info: Option<&ModelInfo>) -> Option<f64> {
        let p = info?.prices?;
        Some(p.cost(self.prompt_tokens(), 0, self.output_tokens(info)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Catalogue;

    fn needs(endpoint: Endpoint, body: &str) -> Needs {
        let head = crate::formats::body::read_head(body.as_bytes()).expect("a value");
        Needs::new(
            endpoint,
            Bytes::from(body.to_string()),
            head.tools,
            head.max_output,
        )
    }

    #[test]
    fn images_and_tools_are_needed_in_every_dialect() {
        let text_only = Caps::of(&[Capability::Chat, Capability::Tools]);
        let cases = [
            (
                Endpoint::ChatCompletions,
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
            ),
            (
                Endpoint::Messages,
                r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]}]}"#,
            ),
            (
                Endpoint::Responses,
                r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,AAAA"}]}]}"#,
            ),
            (
                Endpoint::GenerateContent,
                r#"{"contents":[{"role":"user","parts":[{"inlineData":{"mimeType":"image/png","data":"AAAA"}}]}]}"#,
            ),
        ];
        for (ep, body) in cases {
            assert_eq!(
                needs(ep, body).missing(text_only),
                vec![Capability::Vision],
                "{ep:?}"
            );
        }
        let tools = needs(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":{}}}]}"#,
        );
        assert_eq!(
            tools.missing(Caps::of(&[Capability::Chat])),
            vec![Capability::Tools]
        );
    }

    #[test]
    fn every_marker_is_found_and_prose_about_images_is_not() {
        for m in IMAGE_MARKERS {
            let mut body = b"{\"a\":[1,2],\"x\":".to_vec();
            body.extend_from_slice(m);
            body.extend_from_slice(b"}");
            assert!(has_image_marker(&body), "{}", String::from_utf8_lossy(m));
        }
        let prose = br#"{"messages":[{"role":"user","content":"an image of metadata: \"image\" and imageData"}]}"#;
        assert!(!has_image_marker(prose));
    }

    #[test]
    fn a_prompt_that_only_talks_about_images_needs_no_vision() {
        // The scan sees `"image"` as a JSON value (a tool's enum), the decoded body shows no
        // image part: the model without vision is kept.
        let n = needs(
            Endpoint::ChatCompletions,
            r#"{"model":"m","messages":[{"role":"user","content":"describe an \"image_url\""}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"kind":{"enum":["image"]}}}}}]}"#,
        );
        assert!(n.caps().has(Capability::Vision));
        assert!(n
            .missing(Caps::of(&[Capability::Chat, Capability::Tools]))
            .is_empty());
    }

    #[test]
    fn context_is_checked_only_for_bodies_that_could_exceed_it() {
        let big = "word ".repeat(40_000); // 200 KB, about 50K tokens
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{big}"}}]}}"#);
        let n = needs(Endpoint::ChatCompletions, &body);
        assert_eq!(n.exceeds(1_000_000), None);
        assert!(
            n.exact.get().is_none(),
            "a body under the window is not decoded"
        );
        let t = n.exceeds(32_000).expect("exceeds 32K");
        assert!((45_000..=55_000).contains(&t), "{t}");
        assert_eq!(n.exceeds(64_000), None);
    }

    #[test]
    fn cost_uses_the_cap_the_client_set() {
        let c = Catalogue::default();
        let info = c.lookup("p", "claude-sonnet-4-5");
        let n = needs(
            Endpoint::Messages,
            &format!(
                r#"{{"model":"m","max_tokens":1000,"messages":[{{"role":"user","content":"{}"}}]}}"#,
                "a".repeat(3_950)
            ),
        );
        // ~1,000 prompt tokens at $3/M + 1,000 output at $15/M = $0.018.
        let cost = n.cost(info.as_ref()).expect("a value");
        assert!((cost - 0.018).abs() < 0.001, "{cost}");
        assert_eq!(n.cost(None), None);
    }
}
