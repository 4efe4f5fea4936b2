//! A local token estimate for `count_tokens` on routes whose upstream cannot count (anything
//! but Anthropic), so a count never burns a completion.
//!
//! It is a heuristic, not a tokenizer: ASCII text at about four bytes per token, other
//! characters at about one token each (CJK scripts tokenize near one per character), a fixed
//! overhead per message and tool, and a flat figure per image. Four characters per token is
//! the usual rule of thumb for English with OpenAI's and Anthropic's tokenizers; the estimate
//! has not been measured against a real tokenizer here (none is reachable offline), so treat
//! it as a size indication, not a bill.

use serde_json::Value;

use super::ir::{Part, Request};
use super::{decode_request, TranslateError};
use crate::formats::Dialect;

/// Tokens charged per image (Anthropic's figure for a ~1 megapixel image is ~1,300-1,600).
pub const IMAGE_TOKENS: u64 = 1_600;
const PER_MESSAGE: u64 = 4;
const PER_TOOL: u64 = 12;

/// Estimated tokens of a text.
pub fn text_tokens(s: &str) -> u64 {
    let mut ascii = 0u64;
    let mut other = 0u64;
    for c in s.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    ascii.div_ceil(4) + other
}

fn part_tokens(p: &Part) -> u64 {
    match p {
        Part::Text(t) => text_tokens(t),
        Part::Image(_) => IMAGE_TOKENS,
        Part::ToolCall {
            name, arguments, ..
        } => text_tokens(name) + text_tokens(arguments) + PER_TOOL,
        Part::ToolResult { content, .. } => {
            content.iter().map(part_tokens).sum::<u64>() + PER_MESSAGE
        }
        Part::Thinking { text, .. } => text_tokens(text),
    }
}

/// Estimated input tokens of a decoded request.
pub fn request_tokens(r: &Request) -> u64 {
    let mut n = 3;
    for s in &r.system {
        n += text_tokens(s) + PER_MESSAGE;
    }
    for m in &r.messages {
        n += PER_MESSAGE + m.parts.iter().map(part_tokens).sum::<u64>();
    }
    for t in &r.tools {
        n += PER_TOOL
            + text_tokens(&t.name)
            + t.description.as_deref().map_or(0, text_tokens)
            + text_tokens(&t.parameters.to_string());
    }
    n
}

/// Estimated input tokens of a request body in `dialect`.
pub fn count(dialect: Dialect, body: &[u8]) -> Result<u64, TranslateError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Request(format!("the body is not valid JSON ({e})")))?;
    let (r, _) = decode_request(dialect, &v)?;
    Ok(request_tokens(&r))
}
