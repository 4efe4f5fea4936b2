//! OpenAI Chat Completions (and the compatible vendors) to and from the common shape.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ir::{
    merge_usage, text_of, Delta, Finish, ImageSource, Message, Part, Reasoning, Request, Response,
    ResponseFormat, Role, Tool, ToolChoice, Usage,
};
use super::{
    arr, data_frame, opt_f64, opt_str, opt_u64, push_json_str, short_tool_id, str_or_empty,
    ClientHints, Decoder, Encoder, Target, TranslateError, Vendor,
};
use crate::formats::sse::SseEvent;

/// Whether `model` is an OpenAI-style reasoning model (takes `reasoning_effort`, refuses
/// `temperature`).
pub(crate) fn is_reasoning_model(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model);
    let b = m.as_bytes();
    (b.len() >= 2 && b[0] == b'o' && b[1].is_ascii_digit())
        || m.starts_with("gpt-5")
        || m.contains("reason")
        || m.contains("-r1")
        || m.contains("thinking")
        || m.starts_with("qwq")
}

/// `temperature` and `top_p` into an OpenAI body, unless the model is one of OpenAI's
/// reasoning models, which refuse them.
pub(crate) fn sampling(
    r: &Request,
    refuses: bool,
    o: &mut Map<String, Value>,
    notes: &mut Vec<String>,
) {
    if refuses {
        if r.temperature.is_some() || r.top_p.is_some() {
            notes.push("temperature/top_p dropped: reasoning models refuse them".into());
        }
        return;
    }
    if let Some(x) = r.temperature {
        o.insert("temperature".into(), json!(x));
    }
    if let Some(x) = r.top_p {
        o.insert("top_p".into(), json!(x));
    }
}

/// The parts of an assistant message: reasoning (`reasoning_content`, or `reasoning` as
/// OpenRouter and Groq send it), content, refusal, tool calls.
fn assistant_parts(m: &Value, dropped: &mut Vec<String>) -> Vec<Part> {
    let mut parts = Vec::new();
    for key in ["reasoning_content", "reasoning"] {
        if let Some(t) = m.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
            parts.push(Part::Thinking {
                text: t.to_string(),
                artefact: None,
                redacted: false,
            });
            break;
        }
    }
    content_parts(
        m.get("content").unwrap_or(&Value::Null),
        &mut parts,
        dropped,
    );
    parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
    if let Some(t) = m.get("refusal").and_then(Value::as_str) {
        parts.push(Part::Text(t.to_string()));
    }
    for tc in arr(m, "tool_calls") {
        let f = tc.get("function").unwrap_or(&Value::Null);
        parts.push(Part::ToolCall {
            id: str_or_empty(tc, "id"),
            name: str_or_empty(f, "name"),
            arguments: f
                .get("arguments")
                .and_then(Value::as_str)
                .unwrap_or("{}")
                .to_string(),
        });
    }
    parts
}

fn content_parts(content: &Value, out: &mut Vec<Part>, dropped: &mut Vec<String>) {
    match content {
        Value::String(s) => out.push(Part::Text(s.clone())),
        Value::Array(items) => {
            for it in items {
                match it.get("type").and_then(Value::as_str).unwrap_or("text") {
                    "text" | "input_text" | "output_text" => {
                        out.push(Part::Text(str_or_empty(it, "text")))
                    }
                    "image_url" => {
                        let url = it
                            .get("image_url")
                            .map(|u| u.get("url").and_then(Value::as_str).or(u.as_str()))
                            .unwrap_or_default()
                            .unwrap_or_default();
                        out.push(Part::Image(ImageSource::from_url(url)));
                    }
                    "refusal" => out.push(Part::Text(str_or_empty(it, "refusal"))),
                    other => dropped.push(format!("content part `{other}`")),
                }
            }
        }
        _ => {}
    }
}

pub(crate) fn decode_request(v: &Value) -> Result<Request, TranslateError> {
    let mut r = Request::default();
    let messages = v
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Request("`messages` must be an array".into()))?;
    for m in messages {
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => {
                let mut parts = Vec::new();
                content_parts(content, &mut parts, &mut r.dropped);
                r.system.push(text_of(&parts));
            }
            "user" => {
                let mut parts = Vec::new();
                content_parts(content, &mut parts, &mut r.dropped);
                r.messages.push(Message {
                    role: Role::User,
                    parts,
                });
            }
            "assistant" => {
                let parts = assistant_parts(m, &mut r.dropped);
                r.messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
            "tool" | "function" => {
                let mut inner = Vec::new();
                content_parts(content, &mut inner, &mut r.dropped);
                let id = m
                    .get("tool_call_id")
                    .or_else(|| m.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let part = Part::ToolResult {
                    id,
                    content: inner,
                    is_error: false,
                };
                // Consecutive tool messages answer one assistant turn: keep them together.
                match r.messages.last_mut() {
                    Some(last)
                        if last.role == Role::User
                            && last
                                .parts
                                .iter()
                                .all(|p| matches!(p, Part::ToolResult { .. })) =>
                    {
                        last.parts.push(part)
                    }
                    _ => r.messages.push(Message {
                        role: Role::User,
                        parts: vec![part],
                    }),
                }
            }
            other => {
                return Err(TranslateError::Request(format!(
                    "unknown message role `{other}`"
                )))
            }
        }
    }
    for t in arr(v, "tools") {
        match t.get("type").and_then(Value::as_str) {
            Some("function") | None => {
                let f = t.get("function").unwrap_or(t);
                r.tools.push(Tool {
                    name: str_or_empty(f, "name"),
                    description: opt_str(f, "description"),
                    parameters: f
                        .get("parameters")
                        .cloned()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    strict: f.get("strict").and_then(Value::as_bool),
                });
            }
            Some(other) => r.dropped.push(format!("tool type `{other}`")),
        }
    }
    r.tool_choice = match v.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Some(o @ Value::Object(_)) => o
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .map(|n| ToolChoice::Named(n.to_string())),
        _ => None,
    };
    r.parallel_tool_calls = v.get("parallel_tool_calls").and_then(Value::as_bool);
    r.max_tokens = opt_u64(v, "max_completion_tokens").or_else(|| opt_u64(v, "max_tokens"));
    r.temperature = opt_f64(v, "temperature");
    r.top_p = opt_f64(v, "top_p");
    r.stop = match v.get("stop") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    r.response_format =
        v.get("response_format")
            .and_then(|f| match f.get("type").and_then(Value::as_str)? {
                "json_object" => Some(ResponseFormat::JsonObject),
                "json_schema" => {
                    let s = f.get("json_schema")?;
                    Some(ResponseFormat::JsonSchema {
                        name: opt_str(s, "name").unwrap_or_else(|| "response".into()),
                        schema: s.get("schema").cloned().unwrap_or(json!({})),
                        strict: s.get("strict").and_then(Value::as_bool),
                    })
                }
                _ => Some(ResponseFormat::Text),
            });
    if let Some(e) = opt_str(v, "reasoning_effort")
        .or_else(|| v.get("reasoning").and_then(|r| opt_str(r, "effort")))
    {
        r.reasoning = Some(Reasoning {
            disabled: e == "none",
            effort: Some(e),
            budget_tokens: None,
        });
    }
    r.user = opt_str(v, "user").or_else(|| opt_str(v, "safety_identifier"));
    Ok(r)
}

fn tool_id(vendor: Vendor, id: &str) -> String {
    if vendor == Vendor::Mistral {
        short_tool_id(id)
    } else {
        id.to_string()
    }
}

fn user_content(parts: &[Part]) -> Value {
    if let [Part::Text(t)] = parts {
        return Value::String(t.clone());
    }
    Value::Array(
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(json!({"type": "text", "text": t})),
                Part::Image(src) => {
                    Some(json!({"type": "image_url", "image_url": {"url": src.to_url()}}))
                }
                _ => None,
            })
            .collect(),
    )
}

pub(crate) fn encode_request(r: &Request, t: &Target, notes: &mut Vec<String>) -> Value {
    let vendor = t.vendor;
    let mut messages = Vec::new();
    if !r.system.is_empty() {
        messages.push(json!({"role": "system", "content": r.system.join("\n\n")}));
    }
    for m in &r.messages {
        match m.role {
            Role::User => {
                let mut rest = Vec::new();
                let mut images = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult {
                            id,
                            content,
                            is_error,
                        } => {
                            let mut text = text_of(content);
                            if *is_error {
                                text = format!("[tool error] {text}");
                            }
                            for c in content {
                                if let Part::Image(_) = c {
                                    images.push(c.clone());
                                }
                            }
                            messages.push(json!({"role": "tool", "tool_call_id": tool_id(vendor, id), "content": text}));
                        }
                        Part::Text(_) | Part::Image(_) => rest.push(p.clone()),
                        _ => {}
                    }
                }
                if !images.is_empty() {
                    notes.push("images in tool results sent as a user message".into());
                    images.extend(rest);
                    rest = images;
                }
                if !rest.is_empty() {
                    messages.push(json!({"role": "user", "content": user_content(&rest)}));
                }
            }
            Role::Assistant => {
                let msg = assistant_message(&m.parts, |id| tool_id(vendor, id));
                messages.push(Value::Object(msg));
            }
        }
    }
    let mut o = Map::new();
    o.insert("model".into(), json!(t.model));
    o.insert("messages".into(), Value::Array(messages));
    let reasoning_model = is_reasoning_model(t.model);
    if let Some(n) = r.max_tokens {
        let field = if matches!(vendor, Vendor::OpenAi | Vendor::Azure) {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        o.insert(field.into(), json!(n));
    }
    sampling(
        r,
        reasoning_model && matches!(vendor, Vendor::OpenAi | Vendor::Azure),
        &mut o,
        notes,
    );
    if r.top_k.is_some() {
        notes.push("top_k dropped".into());
    }
    if !r.stop.is_empty() {
        o.insert("stop".into(), json!(r.stop));
    }
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|tool| {
                let mut f = json!({"name": tool.name, "parameters": tool.parameters});
                if let Some(d) = &tool.description {
                    f["description"] = json!(d);
                }
                if let Some(s) = tool.strict {
                    f["strict"] = json!(s);
                }
                json!({"type": "function", "function": f})
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
        if let Some(p) = r.parallel_tool_calls {
            o.insert("parallel_tool_calls".into(), json!(p));
        }
    }
    if let Some(tc) = &r.tool_choice {
        if !r.tools.is_empty() || *tc == ToolChoice::None {
            let v = match tc {
                ToolChoice::Auto => json!("auto"),
                ToolChoice::None => json!("none"),
                ToolChoice::Required if vendor == Vendor::Mistral => json!("any"),
                ToolChoice::Required => json!("required"),
                ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            };
            o.insert("tool_choice".into(), v);
        }
    }
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            o.insert("response_format".into(), json!({"type": "json_object"}));
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            let mut s = json!({"name": name, "schema": schema});
            if let Some(st) = strict {
                s["strict"] = json!(st);
            }
            o.insert(
                "response_format".into(),
                json!({"type": "json_schema", "json_schema": s}),
            );
        }
        _ => {}
    }
    if let Some(effort) = r.reasoning.as_ref().and_then(Reasoning::effort) {
        if reasoning_model {
            o.insert("reasoning_effort".into(), json!(effort));
        } else {
            notes.push(format!(
                "reasoning dropped: `{}` is not a reasoning model",
                t.model
            ));
        }
    }
    if let Some(u) = &r.user {
        if matches!(vendor, Vendor::OpenAi | Vendor::Azure | Vendor::OpenRouter) {
            o.insert("user".into(), json!(u));
        }
    }
    if t.stream {
        o.insert("stream".into(), json!(true));
        if vendor != Vendor::Mistral {
            o.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Value::Object(o)
}

fn finish_of(s: Option<&str>) -> Finish {
    match s {
        Some("length") => Finish::Length,
        Some("tool_calls") | Some("function_call") => Finish::ToolCalls,
        Some("content_filter") => Finish::ContentFilter,
        Some("stop") | None => Finish::Stop,
        Some(_) => Finish::Other,
    }
}

fn finish_word(f: Finish) -> &'static str {
    match f {
        Finish::Length => "length",
        Finish::ToolCalls => "tool_calls",
        Finish::ContentFilter => "content_filter",
        Finish::Stop | Finish::StopSequence | Finish::Other => "stop",
    }
}

pub(crate) fn usage_of(u: &Value) -> Usage {
    let n = |v: &Value, p: &[&str]| {
        let mut c = v;
        for k in p {
            match c.get(k) {
                Some(x) => c = x,
                None => return 0,
            }
        }
        c.as_u64().unwrap_or(0)
    };
    let cached =
        n(u, &["prompt_tokens_details", "cached_tokens"]).max(n(u, &["prompt_cache_hit_tokens"]));
    Usage {
        input: n(u, &["prompt_tokens"]),
        output: n(u, &["completion_tokens"]),
        cached_input: cached,
        cache_write: 0,
        reasoning: n(u, &["completion_tokens_details", "reasoning_tokens"]),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached_input},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning},
    })
}

pub(crate) fn decode_response(v: &Value) -> Result<Response, TranslateError> {
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| TranslateError::Response("no `choices` in the response".into()))?;
    let m = choice.get("message").unwrap_or(&Value::Null);
    let parts = assistant_parts(m, &mut Vec::new());
    let mut finish = finish_of(choice.get("finish_reason").and_then(Value::as_str));
    if finish == Finish::Stop && parts.iter().any(|p| matches!(p, Part::ToolCall { .. })) {
        finish = Finish::ToolCalls;
    }
    Ok(Response {
        id: str_or_empty(v, "id"),
        model: str_or_empty(v, "model"),
        parts,
        finish,
        usage: v.get("usage").filter(|u| u.is_object()).map(usage_of),
        created: opt_u64(v, "created").unwrap_or(0),
    })
}

/// An assistant message: text (null when there are only tool calls) and tool calls, ids
/// passed through `id`.
fn assistant_message(parts: &[Part], id: impl Fn(&str) -> String) -> Map<String, Value> {
    let text = text_of(parts);
    let calls: Vec<Value> = parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id: call,
                name,
                arguments,
            } => Some(json!({"id": id(call), "type": "function", "function": {"name": name, "arguments": arguments}})),
            _ => None,
        })
        .collect();
    let mut msg = Map::new();
    msg.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    msg.insert("content".into(), content);
    if !calls.is_empty() {
        msg.insert("tool_calls".into(), Value::Array(calls));
    }
    msg
}

pub(crate) fn encode_response(r: &Response, _h: &ClientHints) -> Value {
    let mut msg = assistant_message(&r.parts, str::to_string);
    let thinking: String = r
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Thinking { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    if !thinking.is_empty() {
        msg.insert("reasoning_content".into(), json!(thinking));
    }
    msg.insert("refusal".into(), Value::Null);
    let mut o = json!({
        "id": r.id, "object": "chat.completion", "created": r.created, "model": r.model,
        "choices": [{"index": 0, "message": msg, "finish_reason": finish_word(r.finish), "logprobs": null}],
    });
    if let Some(u) = &r.usage {
        o["usage"] = usage_json(u);
    }
    o
}

/// Upstream Chat chunks to deltas.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    started: bool,
    /// Upstream tool index -> ours, in order of appearance.
    tools: Vec<u64>,
    saw_tool: bool,
}

impl Decoder for StreamDecoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError> {
        let data = ev.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            out.push(Delta::End);
            return Ok(());
        }
        if self.started {
            if let Ok(c) = serde_json::from_str::<FastChunk>(data) {
                if c.is_plain_text() {
                    // The common chunk: one content or reasoning delta, nothing else.
                    if let Some(ch) = c.choices.first() {
                        if let Some(t) = ch
                            .delta
                            .reasoning_content
                            .as_deref()
                            .filter(|t| !t.is_empty())
                        {
                            out.push(Delta::Thinking(t.to_string()));
                        }
                        if let Some(t) = ch.delta.content.as_deref().filter(|t| !t.is_empty()) {
                            out.push(Delta::Text(t.to_string()));
                        }
                    }
                    return Ok(());
                }
            }
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|_| TranslateError::Response("a stream chunk is not JSON".into()))?;
        if !self.started {
            self.started = true;
            out.push(Delta::Start {
                id: str_or_empty(&v, "id"),
                model: str_or_empty(&v, "model"),
            });
        }
        if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
            let d = choice.get("delta").unwrap_or(&Value::Null);
            for key in ["reasoning_content", "reasoning"] {
                if let Some(t) = d.get(key).and_then(Value::as_str).filter(|t| !t.is_empty()) {
                    out.push(Delta::Thinking(t.to_string()));
                    break;
                }
            }
            if let Some(t) = d
                .get("content")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                out.push(Delta::Text(t.to_string()));
            }
            for tc in arr(d, "tool_calls") {
                let up = tc.get("index").and_then(Value::as_u64).unwrap_or(0);
                let f = tc.get("function").unwrap_or(&Value::Null);
                let index = match self.tools.iter().position(|&i| i == up) {
                    Some(i) => i,
                    None => {
                        self.tools.push(up);
                        self.saw_tool = true;
                        let i = self.tools.len() - 1;
                        out.push(Delta::ToolCallStart {
                            index: i,
                            id: str_or_empty(tc, "id"),
                            name: str_or_empty(f, "name"),
                        });
                        i
                    }
                };
                if let Some(a) = f
                    .get("arguments")
                    .and_then(Value::as_str)
                    .filter(|a| !a.is_empty())
                {
                    out.push(Delta::ToolCallArgs {
                        index,
                        fragment: a.to_string(),
                    });
                }
            }
            if let Some(fr) = choice.get("finish_reason").and_then(Value::as_str) {
                let mut f = finish_of(Some(fr));
                if f == Finish::Stop && self.saw_tool {
                    f = Finish::ToolCalls;
                }
                out.push(Delta::Finish(f));
            }
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            out.push(Delta::Usage(usage_of(u)));
        }
        Ok(())
    }
}

/// The shape of the common chunk, read without building a JSON tree. Any other field that
/// matters (tool calls, a finish reason, usage, `reasoning`) sends the chunk down the general
/// path; so does a field of an unexpected type (the parse fails).
#[derive(serde::Deserialize)]
struct FastChunk<'a> {
    #[serde(borrow, default)]
    choices: Vec<FastChoice<'a>>,
    #[serde(default)]
    usage: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct FastChoice<'a> {
    #[serde(borrow, default)]
    delta: FastDelta<'a>,
    #[serde(default)]
    finish_reason: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize, Default)]
struct FastDelta<'a> {
    #[serde(borrow, default)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    reasoning: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

impl FastChunk<'_> {
    fn is_plain_text(&self) -> bool {
        self.usage.is_none()
            && self.choices.len() == 1
            && self.choices[0].finish_reason.is_none()
            && self.choices[0].delta.reasoning.is_none()
            && self.choices[0].delta.tool_calls.is_none()
    }
}

/// Deltas to Chat chunks for a Chat client.
pub(crate) struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    started: bool,
    finish: Option<Finish>,
    usage: Option<Usage>,
    include_usage: bool,
    saw_tool: bool,
    /// `data: {"id":...,"choices":[{"index":0,"delta":` — the same for every chunk.
    prefix: String,
}

impl StreamEncoder {
    pub(crate) fn new(h: &ClientHints) -> Self {
        StreamEncoder {
            id: String::new(),
            model: h.model.clone(),
            created: h.created,
            started: false,
            finish: None,
            usage: None,
            include_usage: h.include_usage,
            saw_tool: false,
            prefix: String::new(),
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Bytes {
        self.chunk_raw(&delta.to_string(), finish)
    }

    /// A chunk around an already-serialised delta object.
    fn chunk_raw(&self, delta: &str, finish: Option<&str>) -> Bytes {
        let mut s = String::with_capacity(self.prefix.len() + delta.len() + 48);
        s.push_str(&self.prefix);
        s.push_str(delta);
        s.push_str(",\"finish_reason\":");
        match finish {
            Some(f) => push_json_str(&mut s, f),
            None => s.push_str("null"),
        }
        s.push_str(",\"logprobs\":null}]}\n\n");
        Bytes::from(s)
    }

    /// A content or reasoning delta, written without building a JSON tree.
    fn text_chunk(&self, field: &str, text: &str) -> Bytes {
        let mut d = String::with_capacity(text.len() + 24);
        d.push_str("{\"");
        d.push_str(field);
        d.push_str("\":");
        push_json_str(&mut d, text);
        d.push('}');
        self.chunk_raw(&d, None)
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if !self.started {
            self.started = true;
            if self.id.is_empty() {
                self.id = "chatcmpl-fluxgate".into();
            }
            let mut p = String::from("data: {\"id\":");
            push_json_str(&mut p, &self.id);
            p.push_str(",\"object\":\"chat.completion.chunk\",\"created\":");
            p.push_str(&self.created.to_string());
            p.push_str(",\"model\":");
            push_json_str(&mut p, &self.model);
            p.push_str(",\"choices\":[{\"index\":0,\"delta\":");
            self.prefix = p;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
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
                out.push(self.text_chunk("content", &t));
            }
            Delta::Thinking(t) => {
                self.ensure_started(out);
                out.push(self.text_chunk("reasoning_content", &t));
            }
            Delta::ThinkingArtefact(..) => {}
            Delta::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.saw_tool = true;
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
                    None,
                ));
            }
            Delta::ToolCallArgs { index, fragment } => {
                self.ensure_started(out);
                out.push(self.chunk(
                    json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
                    None,
                ));
            }
            Delta::Usage(u) => merge_usage(self.usage.get_or_insert_with(Usage::default), &u),
            Delta::Finish(f) => self.finish = Some(f),
            Delta::End => {
                self.ensure_started(out);
                let mut f = self.finish.unwrap_or(Finish::Stop);
                if self.saw_tool && f == Finish::Stop {
                    f = Finish::ToolCalls;
                }
                out.push(self.chunk(json!({}), Some(finish_word(f))));
                if let (true, Some(u)) = (self.include_usage, &self.usage) {
                    out.push(data_frame(&json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage_json(u),
                    })));
                }
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
            }
        }
        Ok(())
    }
}

/// Whether the client asked for a usage chunk.
pub(crate) fn include_usage(v: &Value) -> bool {
    v.get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}
