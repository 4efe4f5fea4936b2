//! Translation between the four dialects: one translator per (client endpoint, upstream
//! endpoint) pair, registered in one table ([`TranslatorRegistry::builtin`]). The executor asks
//! for a [`Codec`] per attempt, so a route can fail over from a same-dialect target
//! (passthrough) to a target of another dialect (translated) inside one request.
//!
//! Passthrough is not a translator: it forwards the client's bytes with only the model
//! rewritten (and foreign reasoning artefacts removed, see [`strip_foreign_artefacts`]), and
//! upstream events byte for byte.
//!
//! A translator for a pair is the client dialect's decoder followed by the upstream dialect's
//! encoder ([`ir`] is the common shape), and for responses the reverse; streams go through
//! an explicit decoder state machine and an encoder state machine, one event at a time.
//! Everything here is pure: no I/O, no clocks (the caller passes the time in).
//!
//! Reasoning artefacts (Anthropic thinking signatures, Responses encrypted reasoning, Gemini
//! thought signatures) are only ever sent to the dialect that made them. When a client of
//! another dialect has to carry one (a Codex reasoning item holding an Anthropic signature),
//! it is wrapped as `fgx1.<origin>.<artefact>`; on the way back it is unwrapped for its own
//! dialect and dropped for every other, before any upstream could reject it.

pub mod anthropic;
pub mod chat;
pub mod estimate;
pub mod gemini;
pub mod ir;
pub mod responses;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::sse::SseEvent;
use super::{Dialect, Endpoint};
use crate::config::ProviderKind;
use ir::{Delta, Origin};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("cannot translate this request: {0}")]
    Request(String),
    #[error("cannot translate the upstream response: {0}")]
    Response(String),
}

/// The vendor behind an upstream, for the quirks of OpenAI-compatible APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    OpenAi,
    Azure,
    DeepSeek,
    OpenRouter,
    Groq,
    Mistral,
    Ollama,
    LmStudio,
    Anthropic,
    Gemini,
    /// Any other OpenAI-compatible server.
    Other,
}

impl Vendor {
    /// The vendor from a provider's kind and base URL.
    pub fn detect(kind: ProviderKind, base_url: &str) -> Vendor {
        match kind {
            ProviderKind::Openai => return Vendor::OpenAi,
            ProviderKind::AzureOpenai => return Vendor::Azure,
            ProviderKind::Anthropic => return Vendor::Anthropic,
            ProviderKind::Gemini => return Vendor::Gemini,
            ProviderKind::OpenaiCompatible => {}
        }
        let u = base_url.to_ascii_lowercase();
        if u.contains("deepseek") {
            Vendor::DeepSeek
        } else if u.contains("openrouter") {
            Vendor::OpenRouter
        } else if u.contains("groq") {
            Vendor::Groq
        } else if u.contains("mistral") {
            Vendor::Mistral
        } else if u.contains(":11434") || u.contains("ollama") {
            Vendor::Ollama
        } else if u.contains(":1234") || u.contains("lmstudio") {
            Vendor::LmStudio
        } else {
            Vendor::Other
        }
    }
}

/// What a translated request is for.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub model: &'a str,
    pub stream: bool,
    pub vendor: Vendor,
    /// Seconds since the epoch, for `created` fields.
    pub now: u64,
}

/// What the response side needs to know about the client's request.
#[derive(Debug, Clone, Default)]
pub struct ClientHints {
    /// The model to report until the upstream names one.
    pub model: String,
    /// OpenAI Chat: the client asked for a usage chunk.
    pub include_usage: bool,
    /// OpenAI Chat passed through: Fluxgate asked the upstream for usage the client did not
    /// ask for, so the stream's usage chunk and `"usage": null`s are taken out again.
    pub hide_usage: bool,
    /// Responses: custom (free-form) tools, answered as `custom_tool_call` items.
    pub custom_tools: Vec<String>,
    pub created: u64,
    /// Unique per request (the executor's request id): makes emulated Responses ids unique
    /// even when an upstream reuses its own ids.
    pub id_seed: String,
}

/// A translated request.
#[derive(Debug, Clone)]
pub struct Translated {
    pub body: Bytes,
    pub hints: ClientHints,
    /// What could not be expressed for the upstream (dropped or approximated), for the log.
    pub notes: Vec<String>,
    /// A Responses client's input items, when it allows storing (`store`, the default): kept
    /// with the emulated response for `previous_response_id`.
    pub keep_input: Option<Vec<Value>>,
}

/// Converts requests and responses between two endpoints.
pub trait Translator: Send + Sync {
    /// The upstream request body for `target`.
    fn request(&self, client_body: &[u8], target: &Target) -> Result<Translated, TranslateError>;
    /// The client's response body from the upstream's.
    fn response(&self, upstream_body: &[u8], hints: &ClientHints) -> Result<Bytes, TranslateError>;
    /// A fresh state machine for one streamed response.
    fn stream(&self, hints: &ClientHints) -> Box<dyn StreamTranslator>;
}

/// Turns upstream stream events into client stream events, one event at a time.
pub trait StreamTranslator: Send {
    /// The client events (complete SSE frames) produced by one upstream event.
    fn event(&mut self, upstream: &SseEvent) -> Result<Vec<Bytes>, TranslateError>;
    /// The next `sequence_number` (Responses clients), for an error event after a break.
    fn sequence_number(&self) -> Option<u64> {
        None
    }
    /// The final Responses `response` object, once the stream completed.
    fn final_response(&self) -> Option<&Value> {
        None
    }
}

/// How one attempt's bodies are handled.
#[derive(Clone)]
pub enum Codec {
    /// Same endpoint on both sides: rewrite the model, forward bytes.
    Passthrough,
    Translated(Arc<dyn Translator>),
}

impl std::fmt::Debug for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Codec::Passthrough => f.write_str("Passthrough"),
            Codec::Translated(_) => f.write_str("Translated"),
        }
    }
}

/// Every translator Fluxgate knows, by (client, upstream) endpoint.
#[derive(Default, Clone)]
pub struct TranslatorRegistry {
    table: HashMap<(Endpoint, Endpoint), Arc<dyn Translator>>,
}

/// The main endpoint of each dialect.
pub fn main_endpoint(d: Dialect) -> Endpoint {
    match d {
        Dialect::OpenaiChat => Endpoint::ChatCompletions,
        Dialect::OpenaiResponses => Endpoint::Responses,
        Dialect::Anthropic => Endpoint::Messages,
        Dialect::Gemini => Endpoint::GenerateContent,
    }
}

pub const DIALECTS: [Dialect; 4] = [
    Dialect::OpenaiChat,
    Dialect::OpenaiResponses,
    Dialect::Anthropic,
    Dialect::Gemini,
];

impl TranslatorRegistry {
    /// The built-in table: every ordered pair of the four dialects' main endpoints.
    pub fn builtin() -> Self {
        let mut r = Self::default();
        for client in DIALECTS {
            for upstream in DIALECTS {
                if client != upstream {
                    r.register(
                        main_endpoint(client),
                        main_endpoint(upstream),
                        Arc::new(Pair { client, upstream }),
                    );
                }
            }
        }
        r
    }

    pub fn register(&mut self, client: Endpoint, upstream: Endpoint, t: Arc<dyn Translator>) {
        self.table.insert((client, upstream), t);
    }

    /// The codec for an attempt, or `None` when no translator covers the pair.
    pub fn codec(&self, client: Endpoint, upstream: Endpoint) -> Option<Codec> {
        if client == upstream {
            return Some(Codec::Passthrough);
        }
        self.table
            .get(&(client, upstream))
            .cloned()
            .map(Codec::Translated)
    }
}

/// A request decoded from a client dialect.
pub fn decode_request(d: Dialect, v: &Value) -> Result<(ir::Request, Vec<String>), TranslateError> {
    match d {
        Dialect::OpenaiChat => chat::decode_request(v).map(|r| (r, Vec::new())),
        Dialect::OpenaiResponses => responses::decode_request(v),
        Dialect::Anthropic => anthropic::decode_request(v).map(|r| (r, Vec::new())),
        Dialect::Gemini => gemini::decode_request(v).map(|r| (r, Vec::new())),
    }
}

/// A request encoded for an upstream dialect.
pub fn encode_request(d: Dialect, r: &ir::Request, t: &Target, notes: &mut Vec<String>) -> Value {
    match d {
        Dialect::OpenaiChat => chat::encode_request(r, t, notes),
        Dialect::OpenaiResponses => responses::encode_request(r, t, notes),
        Dialect::Anthropic => anthropic::encode_request(r, t, notes),
        Dialect::Gemini => gemini::encode_request(r, t, notes),
    }
}

pub fn decode_response(d: Dialect, v: &Value) -> Result<ir::Response, TranslateError> {
    match d {
        Dialect::OpenaiChat => chat::decode_response(v),
        Dialect::OpenaiResponses => responses::decode_response(v),
        Dialect::Anthropic => anthropic::decode_response(v),
        Dialect::Gemini => gemini::decode_response(v),
    }
}

pub fn encode_response(d: Dialect, r: &ir::Response, h: &ClientHints) -> Value {
    match d {
        Dialect::OpenaiChat => chat::encode_response(r, h),
        Dialect::OpenaiResponses => responses::encode_response(r, h),
        Dialect::Anthropic => anthropic::encode_response(r, h),
        Dialect::Gemini => gemini::encode_response(r, h),
    }
}

/// A stream decoder: upstream events to deltas.
pub(crate) trait Decoder: Send {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError>;
}

/// A stream encoder: deltas to client events.
pub(crate) trait Encoder: Send {
    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) -> Result<(), TranslateError>;
    fn sequence_number(&self) -> Option<u64> {
        None
    }
    fn final_response(&self) -> Option<&Value> {
        None
    }
}

fn decoder(d: Dialect) -> Box<dyn Decoder> {
    match d {
        Dialect::OpenaiChat => Box::<chat::StreamDecoder>::default(),
        Dialect::OpenaiResponses => Box::<responses::StreamDecoder>::default(),
        Dialect::Anthropic => Box::<anthropic::StreamDecoder>::default(),
        Dialect::Gemini => Box::<gemini::StreamDecoder>::default(),
    }
}

fn encoder(d: Dialect, h: &ClientHints) -> Box<dyn Encoder> {
    match d {
        Dialect::OpenaiChat => Box::new(chat::StreamEncoder::new(h)),
        Dialect::OpenaiResponses => Box::new(responses::StreamEncoder::new(h)),
        Dialect::Anthropic => Box::new(anthropic::StreamEncoder::new(h)),
        Dialect::Gemini => Box::new(gemini::StreamEncoder::new(h)),
    }
}

/// The translator for one (client, upstream) dialect pair.
pub struct Pair {
    pub client: Dialect,
    pub upstream: Dialect,
}

fn parse_json(body: &[u8], what: fn(String) -> TranslateError) -> Result<Value, TranslateError> {
    serde_json::from_slice(body).map_err(|e| what(format!("the body is not valid JSON ({e})")))
}

impl Translator for Pair {
    fn request(&self, client_body: &[u8], target: &Target) -> Result<Translated, TranslateError> {
        let v = parse_json(client_body, TranslateError::Request)?;
        let mut keep_input = None;
        if self.client == Dialect::OpenaiResponses {
            // Fluxgate's own ids were expanded before translation; any left is OpenAI's.
            if let Some(id) = responses::previous_response_id(&v) {
                return Err(TranslateError::Request(format!(
                    "previous_response_id '{id}' was created by OpenAI's Responses API; only an OpenAI Responses upstream can continue it (send the full input instead)"
                )));
            }
            keep_input = responses::wants_store(&v).then(|| responses::input_items(&v));
        }
        let (mut req, custom_tools) = decode_request(self.client, &v)?;
        req.stream = target.stream;
        let mut notes = std::mem::take(&mut req.dropped);
        let out = encode_request(self.upstream, &req, target, &mut notes);
        let body = serde_json::to_vec(&out)
            .map_err(|e| TranslateError::Request(format!("cannot serialise: {e}")))?;
        Ok(Translated {
            body: Bytes::from(body),
            hints: ClientHints {
                model: target.model.to_string(),
                include_usage: self.client == Dialect::OpenaiChat && chat::include_usage(&v),
                hide_usage: false,
                custom_tools,
                created: target.now,
                id_seed: String::new(),
            },
            notes,
            keep_input,
        })
    }

    fn response(&self, upstream_body: &[u8], hints: &ClientHints) -> Result<Bytes, TranslateError> {
        let v = parse_json(upstream_body, TranslateError::Response)?;
        let mut r = decode_response(self.upstream, &v)?;
        if r.model.is_empty() {
            r.model = hints.model.clone();
        }
        if r.created == 0 {
            r.created = hints.created;
        }
        let out = encode_response(self.client, &r, hints);
        serde_json::to_vec(&out)
            .map(Bytes::from)
            .map_err(|e| TranslateError::Response(format!("cannot serialise: {e}")))
    }

    fn stream(&self, hints: &ClientHints) -> Box<dyn StreamTranslator> {
        Box::new(PairStream {
            decoder: decoder(self.upstream),
            encoder: encoder(self.client, hints),
            deltas: Vec::new(),
        })
    }
}

/// A decoder and an encoder joined by a reusable delta buffer.
struct PairStream {
    decoder: Box<dyn Decoder>,
    encoder: Box<dyn Encoder>,
    deltas: Vec<Delta>,
}

impl StreamTranslator for PairStream {
    fn event(&mut self, upstream: &SseEvent) -> Result<Vec<Bytes>, TranslateError> {
        self.decoder.event(upstream, &mut self.deltas)?;
        let mut out = Vec::new();
        for d in self.deltas.drain(..) {
            self.encoder.delta(d, &mut out)?;
        }
        Ok(out)
    }

    fn sequence_number(&self) -> Option<u64> {
        self.encoder.sequence_number()
    }

    fn final_response(&self) -> Option<&Value> {
        self.encoder.final_response()
    }
}

// ---- artefacts ----

impl Origin {
    fn name(self) -> &'static str {
        match self {
            Origin::Anthropic => "anthropic",
            Origin::Responses => "responses",
            Origin::Gemini => "gemini",
            Origin::Chat => "chat",
        }
    }

    fn from_name(s: &str) -> Option<Origin> {
        Some(match s {
            "anthropic" => Origin::Anthropic,
            "responses" => Origin::Responses,
            "gemini" => Origin::Gemini,
            "chat" => Origin::Chat,
            _ => return None,
        })
    }
}

const ARTEFACT_PREFIX: &str = "fgx1.";

/// The artefact as a client of dialect `native` carries it: unchanged when `native` made it,
/// else wrapped with its origin.
pub(crate) fn artefact_out(a: Option<&(Origin, String)>, native: Origin) -> String {
    match a {
        Some((o, s)) if *o == native => s.clone(),
        Some((o, s)) => format!("{ARTEFACT_PREFIX}{}.{s}", o.name()),
        None => format!("{ARTEFACT_PREFIX}chat."),
    }
}

/// The origin and artefact a client of dialect `native` sent back.
pub(crate) fn artefact_in(native: Origin, s: &str) -> (Origin, String) {
    if let Some(rest) = s.strip_prefix(ARTEFACT_PREFIX) {
        if let Some((o, a)) = rest.split_once('.') {
            if let Some(o) = Origin::from_name(o) {
                return (o, a.to_string());
            }
        }
    }
    (native, s.to_string())
}

/// For a same-dialect (passthrough) attempt: removes reasoning artefacts that another
/// dialect's upstream made (wrapped `fgx1.` values), which this upstream would reject. Returns
/// `None`, without parsing, when the body holds none (the common case).
pub fn strip_foreign_artefacts(d: Dialect, body: &[u8]) -> Option<Bytes> {
    if d == Dialect::OpenaiChat || memchr::memmem::find(body, ARTEFACT_PREFIX.as_bytes()).is_none()
    {
        return None;
    }
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let foreign = |s: Option<&Value>| {
        s.and_then(Value::as_str)
            .is_some_and(|s| s.starts_with(ARTEFACT_PREFIX))
    };
    let mut changed = false;
    match d {
        Dialect::Anthropic => {
            for m in v.get_mut("messages")?.as_array_mut()? {
                if let Some(c) = m.get_mut("content").and_then(Value::as_array_mut) {
                    let before = c.len();
                    c.retain(|b| {
                        !(b.get("type").and_then(Value::as_str) == Some("thinking")
                            && foreign(b.get("signature")))
                    });
                    changed |= c.len() != before;
                }
            }
        }
        Dialect::OpenaiResponses => {
            if let Some(items) = v.get_mut("input").and_then(Value::as_array_mut) {
                let before = items.len();
                items.retain(|it| {
                    !(it.get("type").and_then(Value::as_str) == Some("reasoning")
                        && foreign(it.get("encrypted_content")))
                });
                changed |= items.len() != before;
            }
        }
        Dialect::Gemini => {
            // A foreign signature rides on the part after the thoughts: a function call keeps
            // Google's placeholder (Gemini 3 wants one on a turn's first call), any other part loses
            // it, and a part that was only the signature goes.
            for c in v.get_mut("contents")?.as_array_mut()? {
                let Some(parts) = c.get_mut("parts").and_then(Value::as_array_mut) else {
                    continue;
                };
                parts.retain_mut(|p| {
                    if !foreign(p.get("thoughtSignature")) {
                        return true;
                    }
                    changed = true;
                    let Some(o) = p.as_object_mut() else {
                        return true;
                    };
                    if o.contains_key("functionCall") || o.contains_key("function_call") {
                        o.insert(
                            "thoughtSignature".into(),
                            Value::from(gemini::SKIP_SIGNATURE),
                        );
                        return true;
                    }
                    o.remove("thoughtSignature");
                    !(o.len() == 1 && o.get("text").and_then(Value::as_str) == Some(""))
                });
            }
        }
        Dialect::OpenaiChat => {}
    }
    if !changed {
        return None;
    }
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

// ---- small helpers shared by the dialect modules ----

pub(crate) fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(crate) fn str_or_empty(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

pub(crate) fn opt_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

pub(crate) fn opt_u64(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

pub(crate) fn opt_f64(v: &Value, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

/// Tool-call arguments as a JSON object (`""` counts as `{}`); `None` when they are not one.
pub(crate) fn parse_args(s: &str) -> Option<Value> {
    if s.trim().is_empty() {
        return Some(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(s) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ => None,
    }
}

/// A 9-character alphanumeric tool-call id (Mistral accepts no other), the same for the same
/// input so a call and its result still match.
pub(crate) fn short_tool_id(id: &str) -> String {
    if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALPHABET[(h % 62) as usize] as char;
            h /= 62;
            c
        })
        .collect()
}

/// Appends `s` as a JSON string literal (quotes and escapes), without building a `Value`: the
/// streaming encoders' hot path writes text deltas this way.
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

pub(crate) fn data_frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(128);
    s.push_str("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

pub(crate) fn event_frame(name: &str, v: &Value) -> Bytes {
    let mut s = String::with_capacity(128);
    s.push_str("event: ");
    s.push_str(name);
    s.push_str("\ndata: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

#[cfg(test)]
mod tests;
