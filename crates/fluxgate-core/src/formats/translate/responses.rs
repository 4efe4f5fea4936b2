//! OpenAI Responses to and from the common shape, including the Responses event sequence
//! (`sequence_number`, output items, content parts) for clients of translated streams.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::chat::{is_reasoning_model, sampling};
use super::ir::{
    merge_usage, text_of, Delta, Finish, ImageSource, Message, Origin, Part, Reasoning, Request,
    Response, ResponseFormat, Role, Tool, ToolChoice, Usage,
};
use super::{
    arr, artefact_in, artefact_out, event_frame, opt_f64, opt_str, opt_u64, parse_args,
    push_json_str, str_or_empty, ClientHints, Decoder, Encoder, Target, TranslateError,
};
use crate::formats::sse::SseEvent;

/// Built-in tools an emulated Responses API cannot run.
const BUILTIN_TOOLS: &[&str] = &[
    "web_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "file_search",
    "code_interpreter",
    "image_generation",
    "computer_use_preview",
    "computer_use",
    "mcp",
    "local_shell",
];

fn content_parts(content: &Value, out: &mut Vec<Part>, dropped: &mut Vec<String>) {
    match content {
        Value::String(s) => out.push(Part::Text(s.clone())),
        Value::Array(items) => {
            for it in items {
                match it.get("type").and_then(Value::as_str).unwrap_or("") {
                    "input_text" | "output_text" | "text" => {
                        out.push(Part::Text(str_or_empty(it, "text")))
                    }
                    "refusal" => out.push(Part::Text(str_or_empty(it, "refusal"))),
                    "input_image" => match it.get("image_url").and_then(Value::as_str) {
                        Some(u) => out.push(Part::Image(ImageSource::from_url(u))),
                        None => dropped.push("input_image by file_id".into()),
                    },
                    other => dropped.push(format!("content part `{other}`")),
                }
            }
        }
        _ => {}
    }
}

/// A `function_call` item as a tool call.
fn function_call(it: &Value) -> Part {
    Part::ToolCall {
        id: str_or_empty(it, "call_id"),
        name: str_or_empty(it, "name"),
        arguments: it
            .get("arguments")
            .and_then(Value::as_str)
            .unwrap_or("{}")
            .to_string(),
    }
}

/// The text of a reasoning item: its summary, then any full reasoning text.
fn reasoning_text(it: &Value) -> String {
    arr(it, "summary")
        .iter()
        .chain(arr(it, "content"))
        .filter_map(|s| s.get("text").and_then(Value::as_str))
        .collect()
}

fn push_part(r: &mut Request, role: Role, part: Part) {
    match r.messages.last_mut() {
        Some(m) if m.role == role => m.parts.push(part),
        _ => r.messages.push(Message {
            role,
            parts: vec![part],
        }),
    }
}

/// Decodes a Responses request. Custom (free-form) tools become function tools taking one
/// string argument `input`; their names are returned in `custom`.
pub(crate) fn decode_request(v: &Value) -> Result<(Request, Vec<String>), TranslateError> {
    let mut r = Request::default();
    let mut custom = Vec::new();
    if let Some(s) = opt_str(v, "instructions") {
        r.system.push(s);
    }
    match v.get("input") {
        Some(Value::String(s)) => r.messages.push(Message {
            role: Role::User,
            parts: vec![Part::Text(s.clone())],
        }),
        Some(Value::Array(items)) => {
            for it in items {
                let ty = it.get("type").and_then(Value::as_str).unwrap_or("message");
                match ty {
                    "message" => {
                        let role = it.get("role").and_then(Value::as_str).unwrap_or("user");
                        let mut parts = Vec::new();
                        content_parts(
                            it.get("content").unwrap_or(&Value::Null),
                            &mut parts,
                            &mut r.dropped,
                        );
                        match role {
                            "system" | "developer" => r.system.push(text_of(&parts)),
                            "assistant" => {
                                for p in parts {
                                    push_part(&mut r, Role::Assistant, p);
                                }
                            }
                            _ => r.messages.push(Message {
                                role: Role::User,
                                parts,
                            }),
                        }
                    }
                    "function_call" => push_part(&mut r, Role::Assistant, function_call(it)),
                    "custom_tool_call" => push_part(
                        &mut r,
                        Role::Assistant,
                        Part::ToolCall {
                            id: str_or_empty(it, "call_id"),
                            name: str_or_empty(it, "name"),
                            arguments: json!({"input": str_or_empty(it, "input")}).to_string(),
                        },
                    ),
                    "function_call_output" | "custom_tool_call_output" => {
                        let mut inner = Vec::new();
                        content_parts(
                            it.get("output").unwrap_or(&Value::Null),
                            &mut inner,
                            &mut r.dropped,
                        );
                        let part = Part::ToolResult {
                            id: str_or_empty(it, "call_id"),
                            content: inner,
                            is_error: false,
                        };
                        match r.messages.last_mut() {
                            Some(m)
                                if m.role == Role::User
                                    && m.parts
                                        .iter()
                                        .all(|p| matches!(p, Part::ToolResult { .. })) =>
                            {
                                m.parts.push(part)
                            }
                            _ => r.messages.push(Message {
                                role: Role::User,
                                parts: vec![part],
                            }),
                        }
                    }
                    "reasoning" => {
                        let text = reasoning_text(it);
                        let artefact = it
                            .get("encrypted_content")
                            .and_then(Value::as_str)
                            .map(|e| artefact_in(Origin::Responses, e));
                        let redacted = matches!(&artefact, Some((Origin::Anthropic, a)) if a.starts_with("redacted:"));
                        let artefact = artefact.map(|(o, a)| match a.strip_prefix("redacted:") {
                            Some(rest) if o == Origin::Anthropic => (o, rest.to_string()),
                            _ => (o, a),
                        });
                        push_part(
                            &mut r,
                            Role::Assistant,
                            Part::Thinking {
                                text,
                                artefact,
                                redacted,
                            },
                        );
                    }
                    other => r.dropped.push(format!("input item `{other}`")),
                }
            }
        }
        _ => {}
    }
    for t in arr(v, "tools") {
        match t.get("type").and_then(Value::as_str).unwrap_or("") {
            "function" => r.tools.push(Tool {
                name: str_or_empty(t, "name"),
                description: opt_str(t, "description"),
                parameters: t
                    .get("parameters")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                strict: t.get("strict").and_then(Value::as_bool),
            }),
            "custom" => {
                let name = str_or_empty(t, "name");
                custom.push(name.clone());
                let mut desc = opt_str(t, "description").unwrap_or_default();
                if let Some(def) = t
                    .get("format")
                    .and_then(|f| f.get("definition"))
                    .and_then(Value::as_str)
                {
                    desc.push_str("\n\nThe `input` must follow this grammar:\n");
                    desc.push_str(def);
                }
                r.tools.push(Tool {
                    name,
                    description: Some(desc),
                    parameters: json!({"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}),
                    strict: None,
                });
            }
            other => r.dropped.push(format!("built-in tool `{other}`")),
        }
    }
    r.tool_choice = match v.get("tool_choice") {
        Some(Value::String(s)) => match s.as_str() {
            "none" => Some(ToolChoice::None),
            "required" => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        },
        Some(o @ Value::Object(_)) => match o.get("type").and_then(Value::as_str) {
            Some("function") | Some("custom") => Some(ToolChoice::Named(str_or_empty(o, "name"))),
            Some(t) if BUILTIN_TOOLS.contains(&t) => {
                return Err(TranslateError::Request(format!(
                    "`tool_choice` requires the built-in tool `{t}`, which this upstream cannot run"
                )))
            }
            _ => Some(ToolChoice::Auto),
        },
        _ => None,
    };
    r.parallel_tool_calls = v.get("parallel_tool_calls").and_then(Value::as_bool);
    r.max_tokens = opt_u64(v, "max_output_tokens");
    r.temperature = opt_f64(v, "temperature");
    r.top_p = opt_f64(v, "top_p");
    if let Some(f) = v.get("text").and_then(|t| t.get("format")) {
        r.response_format = match f.get("type").and_then(Value::as_str) {
            Some("json_object") => Some(ResponseFormat::JsonObject),
            Some("json_schema") => Some(ResponseFormat::JsonSchema {
                name: opt_str(f, "name").unwrap_or_else(|| "response".into()),
                schema: f.get("schema").cloned().unwrap_or(json!({})),
                strict: f.get("strict").and_then(Value::as_bool),
            }),
            _ => None,
        };
    }
    if let Some(e) = v.get("reasoning").and_then(|x| opt_str(x, "effort")) {
        r.reasoning = Some(Reasoning {
            disabled: e == "none",
            effort: Some(e),
            budget_tokens: None,
        });
    }
    r.user = opt_str(v, "safety_identifier").or_else(|| opt_str(v, "user"));
    Ok((r, custom))
}

pub(crate) fn encode_request(r: &Request, t: &Target, notes: &mut Vec<String>) -> Value {
    let mut input = Vec::new();
    let mut any_reasoning = false;
    for m in &r.messages {
        match m.role {
            Role::User => {
                let mut content = Vec::new();
                for p in &m.parts {
                    match p {
                        Part::ToolResult {
                            id,
                            content: c,
                            is_error,
                        } => {
                            let mut text = text_of(c);
                            if *is_error {
                                text = format!("[tool error] {text}");
                            }
                            input.push(json!({"type": "function_call_output", "call_id": id, "output": text}));
                        }
                        Part::Text(x) => content.push(json!({"type": "input_text", "text": x})),
                        Part::Image(s) => content
                            .push(json!({"type": "input_image", "image_url": s.to_url(), "detail": "auto"})),
                        _ => {}
                    }
                }
                if !content.is_empty() {
                    input.push(json!({"type": "message", "role": "user", "content": content}));
                }
            }
            Role::Assistant => {
                let mut text = String::new();
                let flush = |text: &mut String, input: &mut Vec<Value>| {
                    if !text.is_empty() {
                        input.push(json!({"type": "message", "role": "assistant",
                            "content": [{"type": "output_text", "text": text, "annotations": []}]}));
                        text.clear();
                    }
                };
                for p in &m.parts {
                    match p {
                        Part::Text(x) => text.push_str(x),
                        Part::ToolCall {
                            id,
                            name,
                            arguments,
                        } => {
                            flush(&mut text, &mut input);
                            input.push(json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments}));
                        }
                        Part::Thinking {
                            text: summary,
                            artefact: Some((Origin::Responses, enc)),
                            ..
                        } => {
                            flush(&mut text, &mut input);
                            any_reasoning = true;
                            let summary: Vec<Value> = if summary.is_empty() {
                                vec![]
                            } else {
                                vec![json!({"type": "summary_text", "text": summary})]
                            };
                            input.push(json!({"type": "reasoning", "summary": summary, "encrypted_content": enc}));
                        }
                        _ => {}
                    }
                }
                flush(&mut text, &mut input);
            }
        }
    }
    let mut o = Map::new();
    o.insert("model".into(), json!(t.model));
    let system = r.system.join("\n\n");
    if !system.is_empty() {
        o.insert("instructions".into(), json!(system));
    }
    o.insert("input".into(), Value::Array(input));
    if let Some(n) = r.max_tokens {
        o.insert("max_output_tokens".into(), json!(n.max(16)));
    }
    let reasoning_model = is_reasoning_model(t.model);
    sampling(r, reasoning_model, &mut o, notes);
    if !r.stop.is_empty() {
        notes.push("stop sequences dropped: the Responses API has none".into());
    }
    if !r.tools.is_empty() {
        let tools: Vec<Value> = r
            .tools
            .iter()
            .map(|tool| {
                let mut f =
                    json!({"type": "function", "name": tool.name, "parameters": tool.parameters});
                if let Some(d) = &tool.description {
                    f["description"] = json!(d);
                }
                f["strict"] = json!(tool.strict.unwrap_or(false));
                f
            })
            .collect();
        o.insert("tools".into(), Value::Array(tools));
        if let Some(p) = r.parallel_tool_calls {
            o.insert("parallel_tool_calls".into(), json!(p));
        }
        if let Some(tc) = &r.tool_choice {
            o.insert(
                "tool_choice".into(),
                match tc {
                    ToolChoice::Auto => json!("auto"),
                    ToolChoice::None => json!("none"),
                    ToolChoice::Required => json!("required"),
                    ToolChoice::Named(n) => json!({"type": "function", "name": n}),
                },
            );
        }
    }
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            o.insert("text".into(), json!({"format": {"type": "json_object"}}));
        }
        Some(ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        }) => {
            o.insert(
                "text".into(),
                json!({"format": {"type": "json_schema", "name": name, "schema": schema, "strict": strict.unwrap_or(false)}}),
            );
        }
        _ => {}
    }
    if let Some(effort) = r.reasoning.as_ref().and_then(Reasoning::effort) {
        if reasoning_model {
            o.insert(
                "reasoning".into(),
                json!({"effort": effort, "summary": "auto"}),
            );
            any_reasoning = true;
        } else {
            notes.push(format!(
                "reasoning dropped: `{}` is not a reasoning model",
                t.model
            ));
        }
    }
    o.insert("store".into(), json!(false));
    if any_reasoning {
        o.insert("include".into(), json!(["reasoning.encrypted_content"]));
    }
    if let Some(u) = &r.user {
        o.insert("safety_identifier".into(), json!(u));
    }
    if t.stream {
        o.insert("stream".into(), json!(true));
    }
    Value::Object(o)
}

pub(crate) fn usage_of(u: &Value) -> Usage {
    let n = |a: &str, b: Option<(&str, &str)>| match b {
        None => u.get(a).and_then(Value::as_u64).unwrap_or(0),
        Some((x, y)) => u
            .get(x)
            .and_then(|d| d.get(y))
            .and_then(Value::as_u64)
            .unwrap_or(0),
    };
    Usage {
        input: n("input_tokens", None),
        output: n("output_tokens", None),
        cached_input: n("", Some(("input_tokens_details", "cached_tokens"))),
        cache_write: 0,
        reasoning: n("", Some(("output_tokens_details", "reasoning_tokens"))),
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached_input},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.input + u.output,
    })
}

fn output_parts(output: &[Value]) -> Vec<Part> {
    let mut parts = Vec::new();
    for it in output {
        match it.get("type").and_then(Value::as_str).unwrap_or("") {
            "message" => {
                for c in arr(it, "content") {
                    match c.get("type").and_then(Value::as_str) {
                        Some("output_text") => parts.push(Part::Text(str_or_empty(c, "text"))),
                        Some("refusal") => parts.push(Part::Text(str_or_empty(c, "refusal"))),
                        _ => {}
                    }
                }
            }
            "reasoning" => {
                let text = reasoning_text(it);
                parts.push(Part::Thinking {
                    text,
                    artefact: it
                        .get("encrypted_content")
                        .and_then(Value::as_str)
                        .map(|e| (Origin::Responses, e.to_string())),
                    redacted: false,
                });
            }
            "function_call" => parts.push(function_call(it)),
            _ => {}
        }
    }
    parts
}

fn finish_of(v: &Value, parts: &[Part]) -> Finish {
    if v.get("status").and_then(Value::as_str) == Some("incomplete") {
        return match v
            .get("incomplete_details")
            .and_then(|d| d.get("reason"))
            .and_then(Value::as_str)
        {
            Some("content_filter") => Finish::ContentFilter,
            _ => Finish::Length,
        };
    }
    if parts.iter().any(|p| matches!(p, Part::ToolCall { .. })) {
        Finish::ToolCalls
    } else {
        Finish::Stop
    }
}

pub(crate) fn decode_response(v: &Value) -> Result<Response, TranslateError> {
    let output = v
        .get("output")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Response("no `output` in the response".into()))?;
    let parts = output_parts(output);
    Ok(Response {
        id: str_or_empty(v, "id"),
        model: str_or_empty(v, "model"),
        finish: finish_of(v, &parts),
        parts,
        usage: v.get("usage").filter(|u| u.is_object()).map(usage_of),
        created: opt_u64(v, "created_at").unwrap_or(0),
    })
}

fn tool_item(id: &str, call_id: &str, name: &str, arguments: &str, h: &ClientHints) -> Value {
    if h.custom_tools.iter().any(|c| c == name) {
        let input = parse_args(arguments)
            .and_then(|a| a.get("input").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        json!({"id": id, "type": "custom_tool_call", "status": "completed", "call_id": call_id, "name": name, "input": input})
    } else {
        json!({"id": id, "type": "function_call", "status": "completed", "call_id": call_id, "name": name, "arguments": arguments})
    }
}

fn reasoning_item(id: &str, text: &str, artefact: Option<&(Origin, String)>) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        vec![]
    } else {
        vec![json!({"type": "summary_text", "text": text})]
    };
    let enc = match artefact {
        Some((Origin::Anthropic, a)) if a.starts_with("redacted:") => {
            artefact_out(Some(&(Origin::Anthropic, a.clone())), Origin::Responses)
        }
        other => artefact_out(other, Origin::Responses),
    };
    json!({"id": id, "type": "reasoning", "summary": summary, "encrypted_content": enc})
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]})
}

fn envelope(id: &str, model: &str, created: u64, status: &str, output: Vec<Value>) -> Value {
    json!({
        "id": id, "object": "response", "created_at": created, "status": status,
        "model": model, "output": output, "error": null, "incomplete_details": null,
        "instructions": null, "metadata": {}, "parallel_tool_calls": true,
        "temperature": null, "top_p": null, "tool_choice": "auto", "tools": [],
        "store": false, "text": {"format": {"type": "text"}}, "reasoning": {"effort": null, "summary": null},
        "usage": null,
    })
}

fn finalize(env: &mut Value, finish: Finish, usage: Option<&Usage>) {
    match finish {
        Finish::Length => {
            env["status"] = json!("incomplete");
            env["incomplete_details"] = json!({"reason": "max_output_tokens"});
        }
        Finish::ContentFilter => {
            env["status"] = json!("incomplete");
            env["incomplete_details"] = json!({"reason": "content_filter"});
        }
        _ => env["status"] = json!("completed"),
    }
    if let Some(u) = usage {
        env["usage"] = usage_json(u);
    }
}

/// A response id of ours: the prefix tells `previous_response_id` lookups it is stored here.
pub fn response_id(upstream_id: &str) -> String {
    let clean: String = upstream_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    format!("resp_fg{clean}")
}

pub(crate) fn encode_response(r: &Response, h: &ClientHints) -> Value {
    let id = response_id(if h.id_seed.is_empty() {
        &r.id
    } else {
        &h.id_seed
    });
    let mut output = Vec::new();
    let mut text = String::new();
    let mut n = 0;
    let flush = |text: &mut String, output: &mut Vec<Value>, n: &mut usize| {
        if !text.is_empty() {
            output.push(message_item(&format!("msg_{n}{id}"), text, "completed"));
            *n += 1;
            text.clear();
        }
    };
    for p in &r.parts {
        match p {
            Part::Text(t) => text.push_str(t),
            Part::Thinking {
                text: t, artefact, ..
            } => {
                flush(&mut text, &mut output, &mut n);
                output.push(reasoning_item(&format!("rs_{n}{id}"), t, artefact.as_ref()));
                n += 1;
            }
            Part::ToolCall {
                id: call,
                name,
                arguments,
            } => {
                flush(&mut text, &mut output, &mut n);
                output.push(tool_item(&format!("fc_{n}{id}"), call, name, arguments, h));
                n += 1;
            }
            _ => {}
        }
    }
    flush(&mut text, &mut output, &mut n);
    let mut env = envelope(&id, &r.model, r.created, "completed", output);
    finalize(&mut env, r.finish, r.usage.as_ref());
    env
}

/// Upstream Responses events to deltas.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    /// output_index -> our tool index, and whether its arguments were streamed.
    tools: Vec<(u64, usize, bool)>,
    saw_tool: bool,
}

impl Decoder for StreamDecoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError> {
        if ev.data.trim().is_empty() {
            return Ok(());
        }
        if ev.event.as_deref() == Some("response.output_text.delta") {
            // The common event, read without building a JSON tree.
            #[derive(serde::Deserialize)]
            struct Fast<'a> {
                #[serde(borrow)]
                delta: std::borrow::Cow<'a, str>,
            }
            if let Ok(f) = serde_json::from_str::<Fast>(&ev.data) {
                out.push(Delta::Text(f.delta.into_owned()));
                return Ok(());
            }
        }
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|_| TranslateError::Response("a stream event is not JSON".into()))?;
        let oi = v.get("output_index").and_then(Value::as_u64).unwrap_or(0);
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "response.created" => {
                let r = v.get("response").unwrap_or(&Value::Null);
                out.push(Delta::Start {
                    id: str_or_empty(r, "id"),
                    model: str_or_empty(r, "model"),
                });
            }
            "response.output_item.added" => {
                let it = v.get("item").unwrap_or(&Value::Null);
                if it.get("type").and_then(Value::as_str) == Some("function_call") {
                    let i = self.tools.len();
                    self.tools.push((oi, i, false));
                    self.saw_tool = true;
                    out.push(Delta::ToolCallStart {
                        index: i,
                        id: str_or_empty(it, "call_id"),
                        name: str_or_empty(it, "name"),
                    });
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                out.push(Delta::Text(str_or_empty(&v, "delta")))
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                out.push(Delta::Thinking(str_or_empty(&v, "delta")))
            }
            // Separate summary parts read as paragraphs.
            "response.reasoning_summary_part.added"
                if v.get("summary_index").and_then(Value::as_u64).unwrap_or(0) > 0 =>
            {
                out.push(Delta::Thinking("\n\n".into()));
            }
            "response.function_call_arguments.delta" => {
                if let Some(t) = self.tools.iter_mut().find(|t| t.0 == oi) {
                    t.2 = true;
                    out.push(Delta::ToolCallArgs {
                        index: t.1,
                        fragment: str_or_empty(&v, "delta"),
                    });
                }
            }
            "response.output_item.done" => {
                let it = v.get("item").unwrap_or(&Value::Null);
                match it.get("type").and_then(Value::as_str) {
                    Some("reasoning") => {
                        if let Some(e) = it.get("encrypted_content").and_then(Value::as_str) {
                            out.push(Delta::ThinkingArtefact(Origin::Responses, e.to_string()));
                        }
                    }
                    Some("function_call") => {
                        if let Some(t) = self.tools.iter().find(|t| t.0 == oi && !t.2) {
                            out.push(Delta::ToolCallArgs {
                                index: t.1,
                                fragment: str_or_empty(it, "arguments"),
                            });
                        }
                    }
                    _ => {}
                }
            }
            "response.completed" | "response.incomplete" => {
                let r = v.get("response").unwrap_or(&Value::Null);
                if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
                    out.push(Delta::Usage(usage_of(u)));
                }
                let mut f = finish_of(r, &[]);
                if f == Finish::Stop && self.saw_tool {
                    f = Finish::ToolCalls;
                }
                out.push(Delta::Finish(f));
                out.push(Delta::End);
            }
            _ => {}
        }
        Ok(())
    }
}

enum OpenItem {
    Message {
        id: String,
        text: String,
    },
    Reasoning {
        id: String,
        text: String,
        artefact: Option<(Origin, String)>,
    },
    Tool {
        id: String,
        call_id: String,
        name: String,
        args: String,
        custom: bool,
    },
}

/// Deltas to the Responses event sequence for a Responses client.
pub(crate) struct StreamEncoder {
    hints: ClientHints,
    id: String,
    model: String,
    seq: u64,
    started: bool,
    open: Option<OpenItem>,
    open_tool: Option<usize>,
    done: Vec<Value>,
    usage: Option<Usage>,
    finish: Option<Finish>,
    final_response: Option<Value>,
}

impl StreamEncoder {
    pub(crate) fn new(h: &ClientHints) -> Self {
        StreamEncoder {
            hints: h.clone(),
            id: String::new(),
            model: h.model.clone(),
            seq: 0,
            started: false,
            open: None,
            open_tool: None,
            done: Vec::new(),
            usage: None,
            finish: None,
            final_response: None,
        }
    }

    fn emit(&mut self, name: &str, mut body: Value, out: &mut Vec<Bytes>) {
        body["type"] = json!(name);
        body["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(event_frame(name, &body));
    }

    fn ensure_started(&mut self, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = response_id(&self.hints.id_seed);
        }
        let env = envelope(
            &self.id,
            &self.model,
            self.hints.created,
            "in_progress",
            vec![],
        );
        self.emit("response.created", json!({"response": env}), out);
        self.emit("response.in_progress", json!({"response": env}), out);
    }

    fn index(&self) -> usize {
        self.done.len()
    }

    fn item_id(&self, kind: &str) -> String {
        format!("{kind}_{}{}", self.index(), self.id)
    }

    fn close(&mut self, out: &mut Vec<Bytes>) {
        let Some(item) = self.open.take() else {
            return;
        };
        self.open_tool = None;
        let oi = self.index();
        let done = match item {
            OpenItem::Message { id, text } => {
                self.emit("response.output_text.done", json!({"item_id": id, "output_index": oi, "content_index": 0, "text": text, "logprobs": []}), out);
                self.emit("response.content_part.done", json!({"item_id": id, "output_index": oi, "content_index": 0, "part": {"type": "output_text", "text": text, "annotations": [], "logprobs": []}}), out);
                message_item(&id, &text, "completed")
            }
            OpenItem::Reasoning { id, text, artefact } => {
                if !text.is_empty() {
                    self.emit("response.reasoning_summary_text.done", json!({"item_id": id, "output_index": oi, "summary_index": 0, "text": text}), out);
                    self.emit("response.reasoning_summary_part.done", json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": {"type": "summary_text", "text": text}}), out);
                }
                reasoning_item(&id, &text, artefact.as_ref())
            }
            OpenItem::Tool {
                id,
                call_id,
                name,
                args,
                custom,
            } => {
                let item = tool_item(&id, &call_id, &name, &args, &self.hints);
                if custom {
                    let input = item["input"].clone();
                    self.emit(
                        "response.custom_tool_call_input.delta",
                        json!({"item_id": id, "output_index": oi, "delta": input}),
                        out,
                    );
                    self.emit(
                        "response.custom_tool_call_input.done",
                        json!({"item_id": id, "output_index": oi, "input": input}),
                        out,
                    );
                } else {
                    self.emit(
                        "response.function_call_arguments.done",
                        json!({"item_id": id, "output_index": oi, "name": name, "arguments": args}),
                        out,
                    );
                }
                item
            }
        };
        self.emit(
            "response.output_item.done",
            json!({"output_index": oi, "item": done}),
            out,
        );
        self.done.push(done);
    }

    fn open_reasoning(&mut self, out: &mut Vec<Bytes>) {
        if matches!(self.open, Some(OpenItem::Reasoning { .. })) {
            return;
        }
        self.close(out);
        let id = self.item_id("rs");
        let oi = self.index();
        self.emit(
            "response.output_item.added",
            json!({"output_index": oi, "item": {"id": id, "type": "reasoning", "summary": []}}),
            out,
        );
        self.open = Some(OpenItem::Reasoning {
            id,
            text: String::new(),
            artefact: None,
        });
    }

    /// The final `response` object, once the stream completed.
    pub(crate) fn final_response(&self) -> Option<&Value> {
        self.final_response.as_ref()
    }
}

impl Encoder for StreamEncoder {
    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        match d {
            Delta::Start { id, model } => {
                if !self.started {
                    let seed = if self.hints.id_seed.is_empty() {
                        &id
                    } else {
                        &self.hints.id_seed
                    };
                    self.id = response_id(seed);
                    if !model.is_empty() {
                        self.model = model;
                    }
                }
                self.ensure_started(out);
            }
            Delta::Text(t) => {
                self.ensure_started(out);
                if !matches!(self.open, Some(OpenItem::Message { .. })) {
                    self.close(out);
                    let id = self.item_id("msg");
                    let oi = self.index();
                    self.emit("response.output_item.added", json!({"output_index": oi, "item": {"id": id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}}), out);
                    self.emit("response.content_part.added", json!({"item_id": id, "output_index": oi, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": [], "logprobs": []}}), out);
                    self.open = Some(OpenItem::Message {
                        id,
                        text: String::new(),
                    });
                }
                let oi = self.index();
                if let Some(OpenItem::Message { id, text }) = &mut self.open {
                    text.push_str(&t);
                    // The hot path: written without building a JSON tree.
                    let mut s = String::with_capacity(t.len() + id.len() + 192);
                    s.push_str("event: response.output_text.delta\ndata: {\"item_id\":");
                    push_json_str(&mut s, id);
                    s.push_str(",\"output_index\":");
                    s.push_str(&oi.to_string());
                    s.push_str(",\"content_index\":0,\"delta\":");
                    push_json_str(&mut s, &t);
                    s.push_str(",\"logprobs\":[],\"type\":\"response.output_text.delta\",\"sequence_number\":");
                    s.push_str(&self.seq.to_string());
                    s.push_str("}\n\n");
                    self.seq += 1;
                    out.push(Bytes::from(s));
                }
            }
            Delta::Thinking(t) => {
                self.ensure_started(out);
                let fresh = !matches!(self.open, Some(OpenItem::Reasoning { .. }));
                self.open_reasoning(out);
                let oi = self.index();
                if let Some(OpenItem::Reasoning { id, text, .. }) = &mut self.open {
                    let first = fresh || text.is_empty();
                    text.push_str(&t);
                    let id = id.clone();
                    if first {
                        self.emit("response.reasoning_summary_part.added", json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": {"type": "summary_text", "text": ""}}), out);
                    }
                    self.emit(
                        "response.reasoning_summary_text.delta",
                        json!({"item_id": id, "output_index": oi, "summary_index": 0, "delta": t}),
                        out,
                    );
                }
            }
            Delta::ThinkingArtefact(origin, a) => {
                self.ensure_started(out);
                self.open_reasoning(out);
                if let Some(OpenItem::Reasoning { artefact, .. }) = &mut self.open {
                    *artefact = Some((origin, a));
                }
            }
            Delta::ToolCallStart { index, id, name } => {
                self.ensure_started(out);
                self.close(out);
                let item_id = self.item_id("fc");
                let oi = self.index();
                let custom = self.hints.custom_tools.contains(&name);
                let item = if custom {
                    json!({"id": item_id, "type": "custom_tool_call", "status": "in_progress", "call_id": id, "name": name, "input": ""})
                } else {
                    json!({"id": item_id, "type": "function_call", "status": "in_progress", "call_id": id, "name": name, "arguments": ""})
                };
                self.emit(
                    "response.output_item.added",
                    json!({"output_index": oi, "item": item}),
                    out,
                );
                self.open = Some(OpenItem::Tool {
                    id: item_id,
                    call_id: id,
                    name,
                    args: String::new(),
                    custom,
                });
                self.open_tool = Some(index);
            }
            Delta::ToolCallArgs { index, fragment } => {
                if self.open_tool != Some(index) {
                    return Err(TranslateError::Response(format!(
                        "arguments for tool call {index} arrived after another item had started"
                    )));
                }
                let oi = self.index();
                if let Some(OpenItem::Tool {
                    id, args, custom, ..
                }) = &mut self.open
                {
                    args.push_str(&fragment);
                    if !*custom {
                        let id = id.clone();
                        self.emit(
                            "response.function_call_arguments.delta",
                            json!({"item_id": id, "output_index": oi, "delta": fragment}),
                            out,
                        );
                    }
                }
            }
            Delta::Usage(u) => merge_usage(self.usage.get_or_insert_with(Usage::default), &u),
            Delta::Finish(f) => self.finish = Some(f),
            Delta::End => {
                self.ensure_started(out);
                self.close(out);
                let mut env = envelope(
                    &self.id,
                    &self.model,
                    self.hints.created,
                    "completed",
                    self.done.clone(),
                );
                let finish = self.finish.unwrap_or(Finish::Stop);
                finalize(&mut env, finish, self.usage.as_ref());
                let name = if env["status"] == "incomplete" {
                    "response.incomplete"
                } else {
                    "response.completed"
                };
                self.emit(name, json!({"response": env}), out);
                self.final_response = Some(env);
            }
        }
        Ok(())
    }

    fn sequence_number(&self) -> Option<u64> {
        Some(self.seq)
    }

    fn final_response(&self) -> Option<&Value> {
        StreamEncoder::final_response(self)
    }
}

// ---- previous_response_id emulation (the executor stores and loads; these are pure) ----

/// The input items of a Responses request (a string input is one user message).
pub fn input_items(v: &Value) -> Vec<Value> {
    match v.get("input") {
        Some(Value::String(s)) => vec![json!({"type": "message", "role": "user", "content": s})],
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    }
}

/// The output items of a response object, as a client would send them back.
pub fn output_items(response: &Value) -> Vec<Value> {
    arr(response, "output").to_vec()
}

/// The `previous_response_id` of a request, if any.
pub fn previous_response_id(v: &Value) -> Option<&str> {
    v.get("previous_response_id").and_then(Value::as_str)
}

/// Whether an id is one of Fluxgate's emulated responses.
pub fn is_emulated_id(id: &str) -> bool {
    id.starts_with("resp_fg")
}

/// Whether the client allows the response to be stored (`store` defaults to true).
pub fn wants_store(v: &Value) -> bool {
    v.get("store").and_then(Value::as_bool).unwrap_or(true)
}

/// The request with the stored conversation `prior` in front of its input and no
/// `previous_response_id`.
pub fn expand(v: &Value, prior: &[Value]) -> Value {
    let mut out = v.clone();
    let mut items = prior.to_vec();
    items.extend(input_items(v));
    if let Some(o) = out.as_object_mut() {
        o.remove("previous_response_id");
        o.insert("input".into(), Value::Array(items));
    }
    out
}

/// Whether a Responses body uses a built-in tool that `tool_choice` forces; used in tests.
#[cfg(test)]
pub(crate) fn is_builtin(name: &str) -> bool {
    BUILTIN_TOOLS.contains(&name)
}
