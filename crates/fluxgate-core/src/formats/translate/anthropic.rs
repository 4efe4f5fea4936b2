//! Anthropic Messages to and from the common shape.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ir::{
    merge_usage, Delta, Finish, ImageSource, Message, Origin, Part, Reasoning, Request, Response,
    ResponseFormat, Role, Tool, ToolChoice, Usage,
};
use super::{
    arr, artefact_in, artefact_out, event_frame, opt_f64, opt_str, opt_u64, parse_args,
    push_json_str, str_or_empty, ClientHints, Decoder, Encoder, Target, TranslateError,
};
use crate::formats::sse::SseEvent;

fn blocks(content: &Value, out: &mut Vec<Part>, dropped: &mut Vec<String>) {
    match content {
        Value::String(s) => out.push(Part::Text(s.clone())),
        Value::Array(items) => {
            for b in items {
                match b.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text" => out.push(Part::Text(str_or_empty(b, "text"))),
                    "image" => {
                        let s = b.get("source").unwrap_or(&Value::Null);
                        let src = match s.get("type").and_then(Value::as_str) {
                            Some("base64") => ImageSource::Base64 {
                                media_type: str_or_empty(s, "media_type"),
                                data: str_or_empty(s, "data"),
                            },
                            _ => ImageSource::Url(str_or_empty(s, "url")),
                        };
                        out.push(Part::Image(src));
                    }
                    "tool_use" => out.push(Part::ToolCall {
                        id: str_or_empty(b, "id"),
                        name: str_or_empty(b, "name"),
                        arguments: b
                            .get("input")
                            .map(Value::to_string)
                            .unwrap_or_else(|| "{}".into()),
                    }),
                    "tool_result" => {
                        let mut inner = Vec::new();
                        blocks(
                            b.get("content").unwrap_or(&Value::Null),
                            &mut inner,
                            dropped,
                        );
                        out.push(Part::ToolResult {
                            id: str_or_empty(b, "tool_use_id"),
                            content: inner,
                            is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                        });
                    }
                    "thinking" => out.push(Part::Thinking {
                        text: str_or_empty(b, "thinking"),
                        artefact: b
                            .get("signature")
                            .and_then(Value::as_str)
                            .map(|s| artefact_in(Origin::Anthropic, s)),
                        redacted: false,
                    }),
                    "redacted_thinking" => out.push(Part::Thinking {
                        text: String::new(),
                        artefact: Some((Origin::Anthropic, str_or_empty(b, "data"))),
                        redacted: true,
                    }),
                    other => dropped.push(format!("content block `{other}`")),
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn decode_request(v: &Value) -> Result<Request, TranslateError> {
    let mut r = Request::default();
    match v.get("system") {
        Some(Value::String(s)) => r.system.push(s.clone()),
        Some(Value::Array(a)) => {
            for b in a {
                r.system.push(str_or_empty(b, "text"));
            }
        }
        _ => {}
    }
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Request("`messages` must be an array".into()))?;
    for m in messages {
        let role = match m.get("role").and_then(Value::as_str) {
            Some("user") => Role::User,
            Some("assistant") => Role::Assistant,
            // Claude Code puts system reminders among the messages; they join the system
            // text (their position in the conversation is not kept).
            Some("system") | Some("developer") => {
                let mut parts = Vec::new();
                blocks(
                    m.get("content").unwrap_or(&Value::Null),
                    &mut parts,
                    &mut r.dropped,
                );
                r.system.push(super::ir::text_of(&parts));
                continue;
            }
            other => {
                return Err(TranslateError::Request(format!(
                    "unknown message role `{}`",
                    other.unwrap_or("")
                )))
            }
        };
        let mut parts = Vec::new();
        blocks(
            m.get("content").unwrap_or(&Value::Null),
            &mut parts,
            &mut r.dropped,
        );
        r.messages.push(Message { role, parts });
    }
    for t in arr(v, "tools") {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => r.tools.push(Tool {
                name: str_or_empty(t, "name"),
                description: opt_str(t, "description"),
                parameters: t
                    .get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: None,
            }),
            Some(other) => r.dropped.push(format!("server tool `{other}`")),
        }
    }
    if let Some(tc) = v.get("tool_choice") {
        r.tool_choice = match tc.get("type").and_then(Value::as_str) {
            Some("any") => Some(ToolChoice::Required),
            Some("none") => Some(ToolChoice::None),
            Some("tool") => Some(ToolChoice::Named(str_or_empty(tc, "name"))),
            _ => Some(ToolChoice::Auto),
        };
        if tc.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true) {
            r.parallel_tool_calls = Some(false);
        }
    }
    r.max_tokens = opt_u64(v, "max_tokens");
    r.temperature = opt_f64(v, "temperature");
    r.top_p = opt_f64(v, "top_p");
    r.top_k = opt_u64(v, "top_k");
    r.stop = arr(v, "stop_sequences")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    if let Some(t) = v.get("thinking") {
        r.reasoning = match t.get("type").and_then(Value::as_str) {
            Some("enabled") => Some(Reasoning {
                effort: None,
                budget_tokens: opt_u64(t, "budget_tokens"),
                disabled: false,
            }),
            Some("disabled") => Some(Reasoning {
                disabled: true,
                ..Reasoning::default()
            }),
            _ => None,
        };
    }
    if let Some(f) = v.get("output_format").filter(|f| f.is_object()) {
        if f.get("type").and_then(Value::as_str) == Some("json_schema") {
            r.response_format = Some(ResponseFormat::JsonSchema {
                name: "response".into(),
                schema: f.get("schema").cloned().unwrap_or(json!({})),
                strict: Some(true),
            });
        }
    }
    r.user = v.get("metadata").and_then(|m| opt_str(m, "user_id"));
    Ok(r)
}

fn image_block(src: &ImageSource) -> Value {
    match src {
        ImageSource::Base64 { media_type, data } => {
            json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}})
        }
        ImageSource::Url(u) => json!({"type": "image", "source": {"type": "url", "url": u}}),
    }
}

fn encode_parts(parts: &[Part], notes: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    // Tool results lead a user turn.
    for p in parts {
        if let Part::ToolResult {
            id,
            content,
            is_error,
        } = p
        {
            let inner: Vec<Value> = content
                .iter()
                .filter_map(|c| match c {
                    Part::Text(t) if !t.is_empty() => Some(json!({"type": "text", "text": t})),
                    Part::Image(s) => Some(image_block(s)),
                    _ => None,
                })
                .collect();
            let mut b = json!({"type": "tool_result", "tool_use_id": id, "content": inner});
            if *is_error {
                b["is_error"] = json!(true);
            }
            out.push(b);
        }
    }
    for p in parts {
        match p {
            Part::Text(t) if !t.is_empty() => out.push(json!({"type": "text", "text": t})),
            Part::Image(s) => out.push(image_block(s)),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => {
                let input = parse_args(arguments).unwrap_or_else(|| {
                    notes.push(format!(
                        "tool call `{name}` had arguments that are not a JSON object; sent as {{}}"
                    ));
                    json!({})
                });
                out.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            Part::Thinking {
                text,
                artefact: Some((Origin::Anthropic, sig)),
                redacted,
            } => {
                if *redacted {
                    out.push(json!({"type": "redacted_thinking", "data": sig}));
                } else {
                    out.push(json!({"type": "thinking", "thinking": text, "signature": sig}));
                }
            }
            Part::Thinking { .. } => {}
            _ => {}
        }
    }
    out
}

/// Whether extended thinking can be turned on for this request. Anthropic refuses it with a
/// forced tool choice, and when the conversation's last assistant turn made tool calls
/// without a thinking block of its own (history from another provider has none).
fn thinking_allowed(r: &Request, notes: &mut Vec<String>) -> bool {
    if matches!(
        r.tool_choice,
        Some(ToolChoice::Required | ToolChoice::Named(_))
    ) {
        notes.push("thinking off: Anthropic refuses it with a forced tool choice".into());
        return false;
    }
    let last_assistant = r.messages.iter().rev().find(|m| m.role == Role::Assistant);
    if let Some(m) = last_assistant {
        let calls = m.parts.iter().any(|p| matches!(p, Part::ToolCall { .. }));
        let signed = m.parts.iter().any(|p| {
            matches!(
                p,
                Part::Thinking {
                    artefact: Some((Origin::Anthropic, _)),
                    ..
                }
            )
        });
        if calls && !signed {
            notes.push(
                "thinking off: the last tool-calling turn has no Anthropic thinking block".into(),
            );
            return false;
        }
    }
    true
}

/// A default `max_tokens` (Anthropic requires one).
fn default_max_tokens(model: &str) -> u64 {
    if model.contains("claude-3-") && !model.contains("claude-3-5") && !model.contains("claude-3-7")
    {
        4096
    } else {
        8192
    }
}

pub(crate) fn encode_request(r: &Request, t: &Target, notes: &mut Vec<String>) -> Value {
    let mut messages: Vec<Value> = Vec::new();
    let mut last_role: Option<Role> = None;
    for m in &r.messages {
        let content = encode_parts(&m.parts, notes);
        if content.is_empty() {
            continue;
        }
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        // Consecutive turns of one role are merged, tool results first.
        if last_role == Some(m.role) {
            if let Some(prev) = messages
                .last_mut()
                .and_then(|p| p.get_mut("content"))
                .and_then(Value::as_array_mut)
            {
                let mut merged: Vec<Value> = Vec::new();
                let (res, rest): (Vec<Value>, Vec<Value>) = prev
                    .drain(..)
                    .chain(content)
                    .partition(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
                merged.extend(res);
                merged.extend(rest);
                *prev = merged;
                continue;
            }
        }
        last_role = Some(m.role);
        messages.push(json!({"role": role, "content": content}));
    }
    let mut o = Map::new();
    o.insert("model".into(), json!(t.model));
    let budget = r
        .reasoning
        .as_ref()
        .and_then(Reasoning::budget)
        .filter(|_| thinking_allowed(r, notes));
    let mut max = r.max_tokens.unwrap_or_else(|| default_max_tokens(t.model));
    if let Some(b) = budget {
        let b = b.max(1024);
        if max <= b {
            max = b + 4096;
        }
        o.insert(
            "thinking".into(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    }
    o.insert("max_tokens".into(), json!(max));
    let mut system = r.system.join("\n\n");
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            notes.push("JSON mode approximated with an instruction".into());
            system.push_str("\n\nRespond with a single JSON object and nothing else.");
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            notes.push("structured output approximated with an instruction".into());
            system.push_str(&format!(
                "\n\nRespond with a single JSON object that matches this JSON Schema, and nothing else:\n{schema}"
            ));
        }
        _ => {}
    }
    let system = system.trim().to_string();
    if !system.is_empty() {
        o.insert("system".into(), json!(system));
    }
    o.insert("messages".into(), Value::Array(messages));
    if budget.is_some() {
        if r.temperature.is_some() || r.top_k.is_some() {
            notes.push("temperature/top_k dropped: Anthropic thinking refuses them".into());
        }
    } else {
        if let Some(x) = r.temperature {
            if x > 1.0 {
                notes.push("temperature clamped to 1.0".into());
            }
            o.insert("temperature".into(), json!(x.min(1.0)));
        }
        if let Some(x) = r.top_k {
            o.insert("top_k".into(), json!(x));
        }
    }
    if let Some(x) = r.top_p {
        if budget.is_none() || x >= 0.95 {
            o.insert("top_p".into(), json!(x));
        }
    }
    if !r.stop.is_empty() {
        o.insert("stop_sequences".into(), json!(r.stop));
    }
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|tool| {
                // Anthropic takes an object schema; a client's `parameters` that is not a JSON
                // object (a string, a list) cannot be one, so the tool takes any object.
                let mut schema = match &tool.parameters {
                    v @ Value::Object(_) => v.clone(),
                    _ => json!({}),
                };
                if schema.get("type").is_none() {
                    schema["type"] = json!("object");
                }
                let mut b = json!({"name": tool.name, "input_schema": schema});
                if let Some(d) = &tool.description {
                    b["description"] = json!(d);
                }
                b
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
        let mut choice = match &r.tool_choice {
            Some(ToolChoice::Required) => json!({"type": "any"}),
            Some(ToolChoice::None) => json!({"type": "none"}),
            Some(ToolChoice::Named(n)) => json!({"type": "tool", "name": n}),
            Some(ToolChoice::Auto) => json!({"type": "auto"}),
            None => Value::Null,
        };
        if r.parallel_tool_calls == Some(false) {
            if choice.is_null() {
                choice = json!({"type": "auto"});
            }
            choice["disable_parallel_tool_use"] = json!(true);
        }
        if !choice.is_null() {
            o.insert("tool_choice".into(), choice);
        }
    }
    if let Some(u) = &r.user {
        o.insert("metadata".into(), json!({"user_id": u}));
    }
    if t.stream {
        o.insert("stream".into(), json!(true));
    }
    Value::Object(o)
}

fn finish_of(s: Option<&str>) -> Finish {
    match s {
        Some("max_tokens") | Some("model_context_window_exceeded") => Finish::Length,
        Some("tool_use") => Finish::ToolCalls,
        Some("stop_sequence") => Finish::StopSequence,
        Some("refusal") => Finish::ContentFilter,
        Some("end_turn") | None => Finish::Stop,
        Some(_) => Finish::Other,
    }
}

fn finish_word(f: Finish) -> &'static str {
    match f {
        Finish::Length => "max_tokens",
        Finish::ToolCalls => "tool_use",
        Finish::StopSequence => "stop_sequence",
        Finish::ContentFilter => "refusal",
        Finish::Stop | Finish::Other => "end_turn",
    }
}

pub(crate) fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n("cache_read_input_tokens");
    let write = n("cache_creation_input_tokens");
    Usage {
        input: n("input_tokens") + cached + write,
        output: n("output_tokens"),
        cached_input: cached,
        cache_write: write,
        reasoning: 0,
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input.saturating_sub(u.cached_input + u.cache_write),
        "output_tokens": u.output,
        "cache_read_input_tokens": u.cached_input,
        "cache_creation_input_tokens": u.cache_write,
    })
}

pub(crate) fn decode_response(v: &Value) -> Result<Response, TranslateError> {
    let content = v
        .get("content")
        .ok_or_else(|| TranslateError::Response("no `content` in the response".into()))?;
    let mut parts = Vec::new();
    let mut dropped = Vec::new();
    blocks(content, &mut parts, &mut dropped);
    Ok(Response {
        id: str_or_empty(v, "id"),
        model: str_or_empty(v, "model"),
        parts,
        finish: finish_of(v.get("stop_reason").and_then(Value::as_str)),
        usage: v.get("usage").filter(|u| u.is_object()).map(usage_of),
        created: 0,
    })
}

pub(crate) fn encode_response(r: &Response, _h: &ClientHints) -> Value {
    let mut content = Vec::new();
    for p in &r.parts {
        match p {
            Part::Text(t) => content.push(json!({"type": "text", "text": t})),
            Part::Thinking { text, artefact, .. } => content.push(json!({
                "type": "thinking", "thinking": text,
                "signature": artefact_out(artefact.as_ref(), Origin::Anthropic),
            })),
            Part::ToolCall {
                id,
                name,
                arguments,
            } => content.push(json!({
                "type": "tool_use", "id": id, "name": name,
                "input": parse_args(arguments).unwrap_or_else(|| json!({})),
            })),
            _ => {}
        }
    }
    json!({
        "id": r.id, "type": "message", "role": "assistant", "model": r.model,
        "content": content, "stop_reason": finish_word(r.finish), "stop_sequence": null,
        "usage": usage_json(&r.usage.unwrap_or_default()),
    })
}

/// Upstream Anthropic events to deltas.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    /// Anthropic block index -> our tool index.
    tool_blocks: Vec<(u64, usize)>,
    tools: usize,
    saw_tool: bool,
}

impl Decoder for StreamDecoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError> {
        if ev.data.trim().is_empty() {
            return Ok(());
        }
        if ev.event.as_deref() == Some("content_block_delta") {
            // The common event, read without building a JSON tree.
            if let Ok(e) = serde_json::from_str::<FastBlockDelta>(&ev.data) {
                let d = e.delta;
                match (d.kind.as_ref(), d.text, d.thinking, d.partial_json) {
                    ("text_delta", Some(t), _, _) => out.push(Delta::Text(t.into_owned())),
                    ("thinking_delta", _, Some(t), _) => out.push(Delta::Thinking(t.into_owned())),
                    ("input_json_delta", _, _, Some(frag)) => {
                        if let Some(&(_, i)) = self.tool_blocks.iter().find(|(b, _)| *b == e.index)
                        {
                            if !frag.is_empty() {
                                out.push(Delta::ToolCallArgs {
                                    index: i,
                                    fragment: frag.into_owned(),
                                });
                            }
                        }
                    }
                    _ => return self.general(ev, out),
                }
                return Ok(());
            }
        }
        self.general(ev, out)
    }
}

#[derive(serde::Deserialize)]
struct FastBlockDelta<'a> {
    #[serde(default)]
    index: u64,
    #[serde(borrow)]
    delta: FastInner<'a>,
}

#[derive(serde::Deserialize)]
struct FastInner<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<std::borrow::Cow<'a, str>>,
}

impl StreamDecoder {
    /// Any event, through a JSON tree.
    fn general(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError> {
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|_| TranslateError::Response("a stream event is not JSON".into()))?;
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = v.get("message").unwrap_or(&Value::Null);
                out.push(Delta::Start {
                    id: str_or_empty(m, "id"),
                    model: str_or_empty(m, "model"),
                });
                if let Some(u) = m.get("usage").filter(|u| u.is_object()) {
                    out.push(Delta::Usage(usage_of(u)));
                }
            }
            "content_block_start" => {
                let b = v.get("content_block").unwrap_or(&Value::Null);
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                match b.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let i = self.tools;
                        self.tools += 1;
                        self.saw_tool = true;
                        self.tool_blocks.push((idx, i));
                        out.push(Delta::ToolCallStart {
                            index: i,
                            id: str_or_empty(b, "id"),
                            name: str_or_empty(b, "name"),
                        });
                    }
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(Delta::Text(t.to_string()));
                        }
                    }
                    Some("redacted_thinking") => {
                        out.push(Delta::ThinkingArtefact(
                            Origin::Anthropic,
                            format!("redacted:{}", str_or_empty(b, "data")),
                        ));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                let idx = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                match d.get("type").and_then(Value::as_str).unwrap_or("") {
                    "text_delta" => out.push(Delta::Text(str_or_empty(d, "text"))),
                    "thinking_delta" => out.push(Delta::Thinking(str_or_empty(d, "thinking"))),
                    "signature_delta" => out.push(Delta::ThinkingArtefact(
                        Origin::Anthropic,
                        str_or_empty(d, "signature"),
                    )),
                    "input_json_delta" => {
                        let frag = str_or_empty(d, "partial_json");
                        if let Some(&(_, i)) = self.tool_blocks.iter().find(|(b, _)| *b == idx) {
                            if !frag.is_empty() {
                                out.push(Delta::ToolCallArgs {
                                    index: i,
                                    fragment: frag,
                                });
                            }
                        }
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    out.push(Delta::Usage(usage_of(u)));
                }
                let s = v
                    .get("delta")
                    .and_then(|d| d.get("stop_reason"))
                    .and_then(Value::as_str);
                if s.is_some() {
                    out.push(Delta::Finish(finish_of(s)));
                }
            }
            "message_stop" => out.push(Delta::End),
            _ => {}
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Open {
    Text,
    Thinking,
    Tool(usize),
}

/// Deltas to Anthropic events for an Anthropic client.
pub(crate) struct StreamEncoder {
    model: String,
    id: String,
    started: bool,
    block: u64,
    open: Option<Open>,
    /// The artefact of the open thinking block, if any was sent.
    signed: bool,
    thinking_origin: Option<Origin>,
    closed_tools: Vec<usize>,
    usage: Usage,
    finish: Option<Finish>,
    saw_tool: bool,
}

impl StreamEncoder {
    pub(crate) fn new(h: &ClientHints) -> Self {
        StreamEncoder {
            model: h.model.clone(),
            id: String::new(),
            started: false,
            block: 0,
            open: None,
            signed: false,
            thinking_origin: None,
            closed_tools: Vec::new(),
            usage: Usage::default(),
            finish: None,
            saw_tool: false,
        }
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = "msg_fluxgate".into();
        }
        out.push(event_frame(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage_json(&self.usage),
            }}),
        ));
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else {
            return;
        };
        if open == Open::Thinking && !self.signed {
            // Every thinking block carries a signature; a foreign one is marked so that it is
            // dropped before it could reach Anthropic.
            let origin = self.thinking_origin.unwrap_or(Origin::Chat);
            out.push(self.block_delta(json!({"type": "signature_delta",
                "signature": artefact_out(Some(&(origin, String::new())), Origin::Anthropic)})));
        }
        if let Open::Tool(i) = open {
            self.closed_tools.push(i);
        }
        out.push(event_frame(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.block}),
        ));
        self.block += 1;
    }

    fn open(&mut self, kind: Open, block: Value, out: &mut Vec<Bytes>) {
        self.close(out);
        self.open = Some(kind);
        self.signed = false;
        out.push(event_frame(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.block, "content_block": block}),
        ));
    }

    /// Makes sure a thinking block is open (the message started).
    fn open_thinking(&mut self, out: &mut Vec<Bytes>) {
        self.ensure_started(out);
        if self.open != Some(Open::Thinking) {
            self.open(
                Open::Thinking,
                json!({"type": "thinking", "thinking": "", "signature": ""}),
                out,
            );
        }
    }

    /// A text, thinking or argument delta, written without building a JSON tree.
    fn text_delta(&self, kind: &str, field: &str, text: &str) -> Bytes {
        let mut s = String::with_capacity(text.len() + 128);
        s.push_str(
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        s.push_str(&self.block.to_string());
        s.push_str(",\"delta\":{\"type\":\"");
        s.push_str(kind);
        s.push_str("\",\"");
        s.push_str(field);
        s.push_str("\":");
        push_json_str(&mut s, text);
        s.push_str("}}\n\n");
        Bytes::from(s)
    }

    fn block_delta(&self, delta: Value) -> Bytes {
        event_frame(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.block, "delta": delta}),
        )
    }
}

impl Encoder for StreamEncoder {
    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        match d {
            Delta::Start { id, model } => {
                if !id.is_empty() {
                    self.id = id;
                }
                if !model.is_empty() {
                    self.model = model;
                }
                self.ensure_started(out);
            }
            Delta::Text(t) => {
                self.ensure_started(out);
                if self.open != Some(Open::Text) {
                    self.open(Open::Text, json!({"type": "text", "text": ""}), out);
                }
                out.push(self.text_delta("text_delta", "text", &t));
            }
            Delta::Thinking(t) => {
                self.open_thinking(out);
                out.push(self.text_delta("thinking_delta", "thinking", &t));
            }
            Delta::ThinkingArtefact(origin, a) => {
                self.open_thinking(out);
                self.thinking_origin = Some(origin);
                self.signed = true;
                out.push(self.block_delta(json!({"type": "signature_delta",
                    "signature": artefact_out(Some(&(origin, a)), Origin::Anthropic)})));
            }
            Delta::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.saw_tool = true;
                self.open(
                    Open::Tool(index),
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
            }
            Delta::ToolCallArgs { index, fragment } => {
                if self.open != Some(Open::Tool(index)) {
                    return Err(TranslateError::Response(format!(
                        "arguments for tool call {index} arrived after another tool call had started"
                    )));
                }
                out.push(
                    self.block_delta(json!({"type": "input_json_delta", "partial_json": fragment})),
                );
            }
            Delta::Usage(u) => merge_usage(&mut self.usage, &u),
            Delta::Finish(f) => self.finish = Some(f),
            Delta::End => {
                self.ensure_started(out);
                self.close(out);
                let mut f = self.finish.unwrap_or(Finish::Stop);
                if self.saw_tool && f == Finish::Stop {
                    f = Finish::ToolCalls;
                }
                out.push(event_frame(
                    "message_delta",
                    &json!({"type": "message_delta",
                        "delta": {"stop_reason": finish_word(f), "stop_sequence": null},
                        "usage": usage_json(&self.usage)}),
                ));
                out.push(event_frame(
                    "message_stop",
                    &json!({"type": "message_stop"}),
                ));
            }
        }
        Ok(())
    }
}
