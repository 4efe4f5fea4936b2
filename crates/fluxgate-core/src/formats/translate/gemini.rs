//! Google Gemini `generateContent` to and from the common shape.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::ir::{
    merge_usage, Delta, Finish, ImageSource, Message, Origin, Part, Reasoning, Request, Response,
    ResponseFormat, Role, Tool, ToolChoice, Usage,
};
use super::{
    arr, artefact_in, artefact_out, data_frame, opt_f64, opt_str, opt_u64, parse_args,
    str_or_empty, ClientHints, Decoder, Encoder, Target, TranslateError,
};
use crate::formats::sse::SseEvent;

/// What Gemini accepts in place of a thought signature it did not issue (documented by Google
/// for requests whose history came from elsewhere).
pub(crate) const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

/// Another dialect's reasoning artefact as a Gemini client carries it, in the
/// `thoughtSignature` of the part after the thoughts. Gemini clients keep that signature but
/// may drop the thought parts themselves (Gemini CLI keeps no `thought: true` part in its
/// history), and an Anthropic signature is worthless without the thinking it signs, so the
/// value carries the thinking text too: `fgx1.<origin>.t<n>:<artefact, n bytes><text>`
/// (a redacted Anthropic block's artefact is `redacted:<data>`, as elsewhere).
pub(crate) fn pack_foreign(origin: Origin, artefact: &str, text: &str) -> String {
    let inner = format!("t{}:{artefact}{text}", artefact.len());
    artefact_out(Some(&(origin, inner)), Origin::Gemini)
}

/// The thinking a `thoughtSignature` from a Gemini client stands for: its text (empty for
/// Gemini's own signatures, which sign no text), the artefact, and whether it is a redacted
/// Anthropic block.
fn unpack_signature(sig: &str) -> (String, (Origin, String), bool) {
    let (origin, value) = artefact_in(Origin::Gemini, sig);
    if origin != Origin::Gemini {
        let packed = value.strip_prefix('t').and_then(|rest| {
            let (n, rest) = rest.split_once(':')?;
            let (artefact, text) = rest.split_at_checked(n.parse().ok()?)?;
            Some((artefact.to_string(), text.to_string()))
        });
        if let Some((artefact, text)) = packed {
            return match artefact.strip_prefix("redacted:") {
                Some(data) => (String::new(), (origin, data.to_string()), true),
                None => (text, (origin, artefact), false),
            };
        }
    }
    (String::new(), (origin, value), false)
}

/// The `thoughtSignature` a Gemini client gets for a thinking part's artefact (`None`: none).
fn signature_out(p: &Part) -> Option<String> {
    let Part::Thinking {
        text,
        artefact: Some((origin, a)),
        redacted,
    } = p
    else {
        return None;
    };
    Some(match origin {
        Origin::Gemini => a.clone(),
        o if *redacted => pack_foreign(*o, &format!("redacted:{a}"), ""),
        o => pack_foreign(*o, a, text),
    })
}

/// Gemini's OpenAPI-style schemas write types in capitals; JSON Schema wants lower case.
fn schema_in(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut o = Map::new();
            for (k, x) in m {
                if k == "type" {
                    if let Some(s) = x.as_str() {
                        o.insert(k.clone(), json!(s.to_ascii_lowercase()));
                        continue;
                    }
                }
                o.insert(k.clone(), schema_in(x));
            }
            Value::Object(o)
        }
        Value::Array(a) => Value::Array(a.iter().map(schema_in).collect()),
        other => other.clone(),
    }
}

/// Keeps the JSON Schema keywords Gemini's `Schema` understands.
pub(crate) fn schema_out(v: &Value) -> Value {
    const KEEP: &[&str] = &[
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ];
    let Value::Object(m) = v else {
        return v.clone();
    };
    let mut o = Map::new();
    for (k, x) in m {
        if !KEEP.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "properties" => {
                if let Value::Object(props) = x {
                    let mut p = Map::new();
                    for (name, s) in props {
                        p.insert(name.clone(), schema_out(s));
                    }
                    o.insert(k.clone(), Value::Object(p));
                }
            }
            "items" => {
                o.insert(k.clone(), schema_out(x));
            }
            "anyOf" => {
                o.insert(
                    k.clone(),
                    Value::Array(
                        x.as_array()
                            .map(|a| a.iter().map(schema_out).collect())
                            .unwrap_or_default(),
                    ),
                );
            }
            "type" => match x {
                Value::Array(types) => {
                    let non_null: Vec<&Value> = types
                        .iter()
                        .filter(|t| t.as_str() != Some("null"))
                        .collect();
                    if non_null.len() < types.len() {
                        o.insert("nullable".into(), json!(true));
                    }
                    if let Some(t) = non_null.first() {
                        o.insert(k.clone(), (*t).clone());
                    }
                }
                other => {
                    o.insert(k.clone(), other.clone());
                }
            },
            _ => {
                o.insert(k.clone(), x.clone());
            }
        }
    }
    Value::Object(o)
}

pub(crate) fn decode_request(v: &Value) -> Result<Request, TranslateError> {
    let mut r = Request::default();
    if let Some(si) = v
        .get("systemInstruction")
        .or_else(|| v.get("system_instruction"))
    {
        let text: String = arr(si, "parts")
            .iter()
            .map(|p| str_or_empty(p, "text"))
            .collect();
        r.system.push(text);
    }
    let contents = v
        .get("contents")
        .and_then(Value::as_array)
        .ok_or_else(|| TranslateError::Request("`contents` must be an array".into()))?;
    // Gemini matches calls and responses by name (ids are optional): give calls ids and
    // answer each response with the oldest open call of that name.
    let mut n_calls = 0usize;
    let mut open: Vec<(String, String)> = Vec::new();
    for c in contents {
        let role = match c.get("role").and_then(Value::as_str) {
            Some("model") => Role::Assistant,
            _ => Role::User,
        };
        let mut parts = Vec::new();
        for p in arr(c, "parts") {
            if thought_of(p, &mut parts) {
                continue;
            }
            if let Some(t) = p.get("text").and_then(Value::as_str) {
                parts.push(Part::Text(t.to_string()));
            } else if let Some(d) = p.get("inlineData").or_else(|| p.get("inline_data")) {
                parts.push(Part::Image(ImageSource::Base64 {
                    media_type: d
                        .get("mimeType")
                        .or_else(|| d.get("mime_type"))
                        .and_then(Value::as_str)
                        .unwrap_or("image/png")
                        .to_string(),
                    data: str_or_empty(d, "data"),
                }));
            } else if let Some(d) = p.get("fileData").or_else(|| p.get("file_data")) {
                let uri = d
                    .get("fileUri")
                    .or_else(|| d.get("file_uri"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                parts.push(Part::Image(ImageSource::Url(uri.to_string())));
            } else if let Some(fc) = p.get("functionCall").or_else(|| p.get("function_call")) {
                let call = call_of(fc, &mut n_calls);
                if let Part::ToolCall { id, name, .. } = &call {
                    open.push((id.clone(), name.clone()));
                }
                parts.push(call);
            } else if let Some(fr) = p
                .get("functionResponse")
                .or_else(|| p.get("function_response"))
            {
                let name = str_or_empty(fr, "name");
                let id = match opt_str(fr, "id") {
                    Some(id) => {
                        open.retain(|(i, _)| *i != id);
                        id
                    }
                    None => match open.iter().position(|(_, n)| *n == name) {
                        Some(i) => open.remove(i).0,
                        None => format!("call_{name}"),
                    },
                };
                let resp = fr.get("response").cloned().unwrap_or(Value::Null);
                let text = match resp.get("result").or_else(|| resp.get("output")) {
                    Some(Value::String(s)) if resp.as_object().is_some_and(|o| o.len() == 1) => {
                        s.clone()
                    }
                    _ => resp.to_string(),
                };
                parts.push(Part::ToolResult {
                    id,
                    content: vec![Part::Text(text)],
                    is_error: resp.get("error").is_some(),
                });
            } else {
                r.dropped.push("a Gemini part kind".into());
            }
        }
        r.messages.push(Message { role, parts });
    }
    for t in arr(v, "tools") {
        let decls = t
            .get("functionDeclarations")
            .or_else(|| t.get("function_declarations"));
        match decls.and_then(Value::as_array) {
            Some(ds) => {
                for d in ds {
                    let params = d
                        .get("parametersJsonSchema")
                        .cloned()
                        .or_else(|| d.get("parameters").map(schema_in))
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
                    r.tools.push(Tool {
                        name: str_or_empty(d, "name"),
                        description: opt_str(d, "description"),
                        parameters: params,
                        strict: None,
                    });
                }
            }
            None => {
                let kind = t
                    .as_object()
                    .and_then(|o| o.keys().next().cloned())
                    .unwrap_or_default();
                r.dropped.push(format!("built-in tool `{kind}`"));
            }
        }
    }
    if let Some(fc) = v
        .get("toolConfig")
        .and_then(|t| t.get("functionCallingConfig"))
    {
        let names: Vec<String> = arr(fc, "allowedFunctionNames")
            .iter()
            .filter_map(|n| n.as_str().map(str::to_string))
            .collect();
        r.tool_choice = match fc.get("mode").and_then(Value::as_str) {
            Some("NONE") => Some(ToolChoice::None),
            Some("ANY") if names.len() == 1 => Some(ToolChoice::Named(names[0].clone())),
            Some("ANY") => Some(ToolChoice::Required),
            _ => Some(ToolChoice::Auto),
        };
    }
    if let Some(g) = v
        .get("generationConfig")
        .or_else(|| v.get("generation_config"))
    {
        r.max_tokens = opt_u64(g, "maxOutputTokens");
        r.temperature = opt_f64(g, "temperature");
        r.top_p = opt_f64(g, "topP");
        r.top_k = opt_u64(g, "topK");
        r.stop = arr(g, "stopSequences")
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect();
        if g.get("responseMimeType").and_then(Value::as_str) == Some("application/json") {
            r.response_format = Some(
                match g
                    .get("responseJsonSchema")
                    .cloned()
                    .or_else(|| g.get("responseSchema").map(schema_in))
                {
                    Some(schema) => ResponseFormat::JsonSchema {
                        name: "response".into(),
                        schema,
                        strict: None,
                    },
                    None => ResponseFormat::JsonObject,
                },
            );
        }
        if let Some(tc) = g.get("thinkingConfig") {
            let budget = tc.get("thinkingBudget").and_then(Value::as_i64);
            r.reasoning = Some(Reasoning {
                effort: opt_str(tc, "thinkingLevel").map(|l| l.to_ascii_lowercase()),
                budget_tokens: budget.filter(|b| *b > 0).map(|b| b as u64),
                disabled: budget == Some(0),
            });
        }
    }
    Ok(r)
}

fn image_part(src: &ImageSource) -> Value {
    match src {
        ImageSource::Base64 { media_type, data } => {
            json!({"inlineData": {"mimeType": media_type, "data": data}})
        }
        ImageSource::Url(u) => {
            let lower = u.to_ascii_lowercase();
            let mime = if lower.ends_with(".png") {
                "image/png"
            } else if lower.ends_with(".webp") {
                "image/webp"
            } else if lower.ends_with(".gif") {
                "image/gif"
            } else {
                "image/jpeg"
            };
            json!({"fileData": {"mimeType": mime, "fileUri": u}})
        }
    }
}

pub(crate) fn encode_request(r: &Request, t: &Target, notes: &mut Vec<String>) -> Value {
    let needs_signature = t.model.contains("gemini-3");
    let mut names: Vec<(String, String)> = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    for m in &r.messages {
        let role = match m.role {
            Role::User => "user",
            Role::Assistant => "model",
        };
        let mut parts: Vec<Value> = Vec::new();
        let mut pending_sig: Option<String> = None;
        for p in &m.parts {
            let mut part = match p {
                Part::Text(x) if x.is_empty() => continue,
                Part::Text(x) => json!({"text": x}),
                Part::Image(s) => image_part(s),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                } => {
                    names.push((id.clone(), name.clone()));
                    let args = parse_args(arguments).unwrap_or_else(|| {
                        notes.push(format!("tool call `{name}` had arguments that are not a JSON object; sent as {{}}"));
                        json!({})
                    });
                    if pending_sig.is_none() && needs_signature {
                        pending_sig = Some(SKIP_SIGNATURE.to_string());
                    }
                    json!({"functionCall": {"name": name, "args": args}})
                }
                Part::ToolResult {
                    id,
                    content,
                    is_error,
                } => {
                    let name = names
                        .iter()
                        .find(|(i, _)| i == id)
                        .map(|(_, n)| n.clone())
                        .unwrap_or_else(|| id.clone());
                    let text = super::ir::text_of(content);
                    let response = match serde_json::from_str::<Value>(&text) {
                        Ok(o @ Value::Object(_)) if !*is_error => o,
                        _ if *is_error => json!({"error": text}),
                        _ => json!({"result": text}),
                    };
                    json!({"functionResponse": {"name": name, "response": response}})
                }
                Part::Thinking {
                    artefact: Some((Origin::Gemini, sig)),
                    ..
                } => {
                    pending_sig = Some(sig.clone());
                    continue;
                }
                Part::Thinking { .. } => continue,
            };
            if let Some(sig) = pending_sig.take() {
                part["thoughtSignature"] = json!(sig);
            }
            parts.push(part);
        }
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last["role"] == role => {
                if let Some(a) = last["parts"].as_array_mut() {
                    a.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    let mut o = Map::new();
    o.insert("contents".into(), Value::Array(contents));
    let system = r.system.join("\n\n");
    if !system.is_empty() {
        o.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system}]}),
        );
    }
    if !r.tools.is_empty() {
        let decls: Vec<Value> = r
            .tools
            .iter()
            .map(|tool| {
                let mut d = json!({"name": tool.name, "parameters": schema_out(&tool.parameters)});
                if let Some(desc) = &tool.description {
                    d["description"] = json!(desc);
                }
                d
            })
            .collect();
        o.insert("tools".into(), json!([{"functionDeclarations": decls}]));
        if let Some(tc) = &r.tool_choice {
            let cfg = match tc {
                ToolChoice::Auto => json!({"mode": "AUTO"}),
                ToolChoice::None => json!({"mode": "NONE"}),
                ToolChoice::Required => json!({"mode": "ANY"}),
                ToolChoice::Named(n) => json!({"mode": "ANY", "allowedFunctionNames": [n]}),
            };
            o.insert("toolConfig".into(), json!({"functionCallingConfig": cfg}));
        }
    }
    let mut g = Map::new();
    if let Some(n) = r.max_tokens {
        g.insert("maxOutputTokens".into(), json!(n));
    }
    if let Some(x) = r.temperature {
        g.insert("temperature".into(), json!(x));
    }
    if let Some(x) = r.top_p {
        g.insert("topP".into(), json!(x));
    }
    if let Some(x) = r.top_k {
        g.insert("topK".into(), json!(x));
    }
    if !r.stop.is_empty() {
        g.insert("stopSequences".into(), json!(r.stop));
    }
    match &r.response_format {
        Some(ResponseFormat::JsonObject) => {
            g.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            g.insert("responseMimeType".into(), json!("application/json"));
            g.insert("responseSchema".into(), schema_out(schema));
        }
        _ => {}
    }
    let thinks =
        t.model.contains("2.5") || t.model.contains("gemini-3") || t.model.contains("thinking");
    if let Some(re) = r.reasoning.as_ref().filter(|_| {
        thinks || {
            notes.push(format!("reasoning dropped: `{}` does not think", t.model));
            false
        }
    }) {
        if re.disabled {
            g.insert("thinkingConfig".into(), json!({"thinkingBudget": 0}));
        } else if let Some(b) = re.budget() {
            g.insert(
                "thinkingConfig".into(),
                json!({"thinkingBudget": b, "includeThoughts": true}),
            );
        }
    }
    if !g.is_empty() {
        o.insert("generationConfig".into(), Value::Object(g));
    }
    Value::Object(o)
}

fn finish_of(s: Option<&str>) -> Option<Finish> {
    Some(match s? {
        "STOP" => Finish::Stop,
        "MAX_TOKENS" => Finish::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            Finish::ContentFilter
        }
        _ => Finish::Other,
    })
}

fn finish_word(f: Finish) -> &'static str {
    match f {
        Finish::Length => "MAX_TOKENS",
        Finish::ContentFilter => "SAFETY",
        Finish::Stop | Finish::StopSequence | Finish::ToolCalls => "STOP",
        Finish::Other => "OTHER",
    }
}

pub(crate) fn usage_of(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input: n("promptTokenCount"),
        output: n("candidatesTokenCount") + thoughts,
        cached_input: n("cachedContentTokenCount"),
        cache_write: 0,
        reasoning: thoughts,
    }
}

fn usage_json(u: &Usage) -> Value {
    json!({
        "promptTokenCount": u.input,
        "candidatesTokenCount": u.output - u.reasoning.min(u.output),
        "thoughtsTokenCount": u.reasoning,
        "cachedContentTokenCount": u.cached_input,
        "totalTokenCount": u.input + u.output,
    })
}

/// Parts of one candidate, with ids for function calls (`call_{n}` from `next`).
fn candidate_parts(c: &Value, next: &mut usize) -> Vec<Part> {
    let mut parts = Vec::new();
    for p in arr(c.get("content").unwrap_or(&Value::Null), "parts") {
        if thought_of(p, &mut parts) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            if !t.is_empty() {
                parts.push(Part::Text(t.to_string()));
            }
        } else if let Some(fc) = p.get("functionCall") {
            parts.push(call_of(fc, next));
        }
    }
    parts
}

/// Reads a part's thought text and thought signature into `parts` (a signature on a
/// non-thought part becomes an empty thinking part before it). True when the part was a
/// thought, so there is nothing more to read.
fn thought_of(p: &Value, parts: &mut Vec<Part>) -> bool {
    let sig = p.get("thoughtSignature").and_then(Value::as_str);
    let thought = p.get("thought").and_then(Value::as_bool) == Some(true);
    if thought || sig.is_some() {
        let (packed, artefact, redacted) = match sig.map(unpack_signature) {
            Some((text, a, redacted)) => (text, Some(a), redacted),
            None => (String::new(), None, false),
        };
        if !packed.is_empty() {
            // A client that kept the thought parts as well: they are this text, once.
            let start = parts
                .iter()
                .rposition(|p| !matches!(p, Part::Thinking { artefact: None, .. }))
                .map_or(0, |i| i + 1);
            let kept: String = parts[start..]
                .iter()
                .filter_map(|p| match p {
                    Part::Thinking { text, .. } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            if kept == packed {
                parts.truncate(start);
            }
        }
        parts.push(Part::Thinking {
            text: if !packed.is_empty() || !thought {
                packed
            } else {
                str_or_empty(p, "text")
            },
            artefact,
            redacted,
        });
    }
    thought
}

/// A `functionCall` as a tool call; Gemini may give no id, so calls without one get
/// `call_{n}_{name}` (`n` counts them).
fn call_of(fc: &Value, n: &mut usize) -> Part {
    let name = str_or_empty(fc, "name");
    let id = opt_str(fc, "id").unwrap_or_else(|| {
        *n += 1;
        format!("call_{}_{name}", *n)
    });
    Part::ToolCall {
        id,
        name,
        arguments: fc
            .get("args")
            .map(Value::to_string)
            .unwrap_or_else(|| "{}".into()),
    }
}

pub(crate) fn decode_response(v: &Value) -> Result<Response, TranslateError> {
    let c = v.get("candidates").and_then(|c| c.get(0));
    let Some(c) = c else {
        if let Some(reason) = v
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .and_then(Value::as_str)
        {
            return Ok(Response {
                id: str_or_empty(v, "responseId"),
                model: str_or_empty(v, "modelVersion"),
                parts: vec![Part::Text(format!("[blocked by the provider: {reason}]"))],
                finish: Finish::ContentFilter,
                usage: v.get("usageMetadata").map(usage_of),
                created: 0,
            });
        }
        return Err(TranslateError::Response(
            "no `candidates` in the response".into(),
        ));
    };
    let mut next = 0;
    let parts = candidate_parts(c, &mut next);
    let mut finish =
        finish_of(c.get("finishReason").and_then(Value::as_str)).unwrap_or(Finish::Stop);
    if finish == Finish::Stop && parts.iter().any(|p| matches!(p, Part::ToolCall { .. })) {
        finish = Finish::ToolCalls;
    }
    Ok(Response {
        id: str_or_empty(v, "responseId"),
        model: str_or_empty(v, "modelVersion"),
        parts,
        finish,
        usage: v
            .get("usageMetadata")
            .filter(|u| u.is_object())
            .map(usage_of),
        created: 0,
    })
}

/// A part for a Gemini client. A thinking part's signature goes on the next part that is not a
/// thought (`sig` carries it there), where clients keep it.
fn part_json(p: &Part, sig: &mut Option<String>) -> Option<Value> {
    let mut v = match p {
        Part::Text(t) => json!({"text": t}),
        Part::Thinking { text, .. } => {
            if let Some(s) = signature_out(p) {
                *sig = Some(s);
            }
            if text.is_empty() {
                return None;
            }
            return Some(json!({"text": text, "thought": true}));
        }
        Part::ToolCall {
            name,
            arguments,
            id,
            ..
        } => {
            json!({"functionCall": {"id": id, "name": name, "args": parse_args(arguments).unwrap_or_else(|| json!({}))}})
        }
        _ => return None,
    };
    if let Some(s) = sig.take() {
        v["thoughtSignature"] = json!(s);
    }
    Some(v)
}

pub(crate) fn encode_response(r: &Response, _h: &ClientHints) -> Value {
    let mut sig = None;
    let mut parts: Vec<Value> = Vec::new();
    for p in &r.parts {
        if let (Some(s), Part::Thinking { .. }) = (&sig, p) {
            // A block after a signed one with nothing between: the signature keeps a part
            // of its own, before this block's thoughts.
            parts.push(json!({"text": "", "thoughtSignature": s}));
            sig = None;
        }
        parts.extend(part_json(p, &mut sig));
    }
    if let Some(s) = sig {
        // Thoughts with nothing after them: the signature gets a part of its own.
        parts.push(json!({"text": "", "thoughtSignature": s}));
    }
    let mut o = json!({
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish_word(r.finish), "index": 0}],
        "modelVersion": r.model,
        "responseId": r.id,
    });
    if let Some(u) = &r.usage {
        o["usageMetadata"] = usage_json(u);
    }
    o
}

/// Upstream Gemini chunks to deltas. Every chunk is a whole response with new parts; the
/// chunk with a `finishReason` is the last.
#[derive(Default)]
pub(crate) struct StreamDecoder {
    started: bool,
    tools: usize,
    ended: bool,
    /// Thinking text streamed since the last signature (a packed signature repeats it).
    thinking: String,
}

impl Decoder for StreamDecoder {
    fn event(&mut self, ev: &SseEvent, out: &mut Vec<Delta>) -> Result<(), TranslateError> {
        if ev.data.trim().is_empty() || self.ended {
            return Ok(());
        }
        let v: Value = serde_json::from_str(&ev.data)
            .map_err(|_| TranslateError::Response("a stream chunk is not JSON".into()))?;
        if !self.started {
            self.started = true;
            out.push(Delta::Start {
                id: str_or_empty(&v, "responseId"),
                model: str_or_empty(&v, "modelVersion"),
            });
        }
        let c = v.get("candidates").and_then(|c| c.get(0));
        if let Some(c) = c {
            let mut next = self.tools;
            for p in candidate_parts(c, &mut next) {
                match p {
                    Part::Text(t) => out.push(Delta::Text(t)),
                    Part::Thinking { text, artefact, .. } => {
                        // What a packed signature repeats of the thoughts already streamed
                        // is not streamed again.
                        let new = match text.strip_prefix(self.thinking.as_str()) {
                            Some(rest) if matches!(&artefact, Some((o, _)) if *o != Origin::Gemini) => {
                                rest.to_string()
                            }
                            _ => text.clone(),
                        };
                        if !new.is_empty() {
                            out.push(Delta::Thinking(new));
                        }
                        if let Some((o, a)) = artefact {
                            self.thinking.clear();
                            out.push(Delta::ThinkingArtefact(o, a));
                        } else {
                            self.thinking.push_str(&text);
                        }
                    }
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                    } => {
                        let index = self.tools;
                        self.tools += 1;
                        out.push(Delta::ToolCallStart { index, id, name });
                        out.push(Delta::ToolCallArgs {
                            index,
                            fragment: arguments,
                        });
                    }
                    _ => {}
                }
            }
        }
        if let Some(u) = v.get("usageMetadata").filter(|u| u.is_object()) {
            out.push(Delta::Usage(usage_of(u)));
        }
        let finish = c.and_then(|c| finish_of(c.get("finishReason").and_then(Value::as_str)));
        let blocked = v
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .is_some();
        if let Some(mut f) = finish.or(blocked.then_some(Finish::ContentFilter)) {
            if f == Finish::Stop && self.tools > 0 {
                f = Finish::ToolCalls;
            }
            out.push(Delta::Finish(f));
            out.push(Delta::End);
            self.ended = true;
        }
        Ok(())
    }
}

/// Deltas to Gemini chunks for a Gemini client. Tool calls are sent whole (as Gemini does),
/// once their arguments are complete.
pub(crate) struct StreamEncoder {
    model: String,
    id: String,
    tool: Option<(String, String, String)>,
    sig: Option<String>,
    /// The thinking streamed since the last artefact (what another dialect's signature signs).
    thinking: String,
    usage: Option<Usage>,
    finish: Option<Finish>,
}

impl StreamEncoder {
    pub(crate) fn new(h: &ClientHints) -> Self {
        StreamEncoder {
            model: h.model.clone(),
            id: String::new(),
            tool: None,
            sig: None,
            thinking: String::new(),
            usage: None,
            finish: None,
        }
    }

    fn chunk(&self, parts: Vec<Value>, finish: Option<Finish>) -> Bytes {
        let mut cand = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            cand["finishReason"] = json!(finish_word(f));
        }
        let mut o =
            json!({"candidates": [cand], "modelVersion": self.model, "responseId": self.id});
        if let (Some(u), Some(_)) = (&self.usage, finish) {
            o["usageMetadata"] = usage_json(u);
        }
        data_frame(&o)
    }

    fn flush_tool(&mut self, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        if let Some((id, name, args)) = self.tool.take() {
            let p = Part::ToolCall {
                id,
                name,
                arguments: if args.is_empty() { "{}".into() } else { args },
            };
            if let Some(v) = part_json(&p, &mut self.sig) {
                out.push(self.chunk(vec![v], None));
            }
        }
        Ok(())
    }
}

impl Encoder for StreamEncoder {
    fn delta(&mut self, d: Delta, out: &mut Vec<Bytes>) -> Result<(), TranslateError> {
        match d {
            Delta::Start { id, model } => {
                self.id = id;
                if !model.is_empty() {
                    self.model = model;
                }
            }
            Delta::Text(t) => {
                self.flush_tool(out)?;
                let p = part_json(&Part::Text(t), &mut self.sig);
                out.push(self.chunk(p.into_iter().collect(), None));
            }
            Delta::Thinking(t) => {
                self.flush_tool(out)?;
                if let Some(pending) = self.sig.take() {
                    // A new block after a signed one with nothing between: the signature
                    // keeps a part of its own, before this block's thoughts.
                    out.push(
                        self.chunk(vec![json!({"text": "", "thoughtSignature": pending})], None),
                    );
                }
                self.thinking.push_str(&t);
                out.push(self.chunk(vec![json!({"text": t, "thought": true})], None));
            }
            Delta::ThinkingArtefact(origin, s) => {
                let text = std::mem::take(&mut self.thinking);
                if let Some(pending) = self.sig.take() {
                    // Two signed blocks with nothing between: the first keeps a part of its own.
                    out.push(
                        self.chunk(vec![json!({"text": "", "thoughtSignature": pending})], None),
                    );
                }
                self.sig = Some(match origin {
                    Origin::Gemini => s,
                    o => pack_foreign(o, &s, &text),
                });
            }
            Delta::ToolCallStart { id, name, .. } => {
                self.flush_tool(out)?;
                self.tool = Some((id, name, String::new()));
            }
            Delta::ToolCallArgs { fragment, .. } => {
                if let Some((_, _, a)) = &mut self.tool {
                    a.push_str(&fragment);
                }
            }
            Delta::Usage(u) => merge_usage(self.usage.get_or_insert_with(Usage::default), &u),
            Delta::Finish(f) => self.finish = Some(f),
            Delta::End => {
                self.flush_tool(out)?;
                let mut last = json!({"text": ""});
                if let Some(s) = self.sig.take() {
                    last["thoughtSignature"] = json!(s);
                }
                out.push(self.chunk(vec![last], Some(self.finish.unwrap_or(Finish::Stop))));
            }
        }
        Ok(())
    }
}
