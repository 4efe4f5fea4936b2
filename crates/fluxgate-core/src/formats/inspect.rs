//! Reading just enough of a response to apply the stream commit rule and record usage:
//! is this event a preamble, real content, a terminator or an in-band error, and what token
//! counts does it report. Classifying an error is the health module's job; this only finds it.

use serde_json::Value;

use super::sse::SseEvent;
use super::Dialect;

/// What one stream event means for the commit rule.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// Comments, keep-alives, `message_start`, `response.created`, a role-only first chunk.
    Preamble,
    /// The first of these commits the stream.
    Content,
    /// The dialect's success terminator (`[DONE]`, `message_stop`, `response.completed`, a
    /// Gemini chunk with `finishReason`).
    Terminator,
    /// An in-band error; the JSON is handed to the health module.
    Error(Value),
}

/// Token counts an upstream reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every input token, cached or not.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// Input tokens read from the provider's prompt cache (Anthropic `cache_read_input_tokens`,
    /// OpenAI `cached_tokens`, Gemini `cachedContentTokenCount`).
    pub cached_tokens: Option<u64>,
}

impl Usage {
    /// Later reports win field by field (Anthropic sends input first, output at the end).
    pub fn merge(&mut self, other: Usage) {
        if other.input_tokens.is_some() {
            self.input_tokens = other.input_tokens;
        }
        if other.output_tokens.is_some() {
            self.output_tokens = other.output_tokens;
        }
        if other.cached_tokens.is_some() {
            self.cached_tokens = other.cached_tokens;
        }
    }
}

/// The meaning of one event, plus anything it reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Inspected {
    pub kind: EventKind,
    pub usage: Option<Usage>,
    /// The Responses API's `sequence_number`, when present.
    pub sequence_number: Option<u64>,
}

fn num(v: &Value, path: &[&str]) -> Option<u64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_u64()
}

/// What a complete (non-streaming) response body says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyCheck {
    /// The body's in-band error object, when it has one (the whole body, for classification).
    pub error: Option<Value>,
    pub usage: Option<Usage>,
}

/// A body that is not a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJson;

/// Every token-count field any dialect uses, read without building a JSON tree.
#[derive(serde::Deserialize, Default)]
struct UsageFields {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    #[serde(rename = "promptTokenCount")]
    prompt_token_count: Option<u64>,
    #[serde(rename = "candidatesTokenCount")]
    candidates_token_count: Option<u64>,
    #[serde(rename = "cachedContentTokenCount")]
    cached_content_token_count: Option<u64>,
    prompt_tokens_details: Option<CachedDetails>,
    input_tokens_details: Option<CachedDetails>,
}

#[derive(serde::Deserialize, Default)]
struct CachedDetails {
    cached_tokens: Option<u64>,
}

impl UsageFields {
    fn for_dialect(&self, dialect: Dialect) -> Option<Usage> {
        let u = match dialect {
            Dialect::OpenaiChat => Usage {
                input_tokens: self.prompt_tokens,
                output_tokens: self.completion_tokens,
                cached_tokens: self
                    .prompt_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens),
            },
            Dialect::OpenaiResponses => Usage {
                input_tokens: self.input_tokens,
                output_tokens: self.output_tokens,
                cached_tokens: self
                    .input_tokens_details
                    .as_ref()
                    .and_then(|d| d.cached_tokens),
            },
            Dialect::Anthropic => {
                let cached = self.cache_read_input_tokens.unwrap_or(0)
                    + self.cache_creation_input_tokens.unwrap_or(0);
                Usage {
                    input_tokens: self.input_tokens.map(|i| i + cached),
                    output_tokens: self.output_tokens,
                    cached_tokens: self.cache_read_input_tokens,
                }
            }
            Dialect::Gemini => Usage {
                input_tokens: self.prompt_token_count,
                output_tokens: self.candidates_token_count,
                cached_tokens: self.cached_content_token_count,
            },
        };
        (u.input_tokens.is_some() || u.output_tokens.is_some()).then_some(u)
    }
}

/// Reads only the top-level fields that matter (`error`, `type`, `usage`) from a JSON body,
/// skipping the rest. `Err` when the body is not a JSON object.
pub fn check_body(dialect: Dialect, body: &[u8]) -> Result<BodyCheck, NotJson> {
    use serde_json::value::RawValue;
    #[derive(serde::Deserialize)]
    struct Top<'a> {
        #[serde(borrow, default)]
        error: Option<&'a RawValue>,
        #[serde(rename = "type", default)]
        kind: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        usage: Option<UsageFields>,
        #[serde(default, rename = "usageMetadata")]
        usage_metadata: Option<UsageFields>,
    }
    let top: Top<'_> = serde_json::from_slice(body).map_err(|_| NotJson)?;
    let has_error = top.error.is_some_and(|e| e.get() != "null")
        || matches!(top.kind.as_deref(), Some("error" | "response.failed"));
    if has_error {
        let whole: Value = serde_json::from_slice(body).map_err(|_| NotJson)?;
        return Ok(BodyCheck {
            error: Some(whole),
            usage: None,
        });
    }
    let usage = top
        .usage
        .or(top.usage_metadata)
        .and_then(|u| u.for_dialect(dialect));
    Ok(BodyCheck { error: None, usage })
}

/// Usage from a complete (non-streaming) response body, or from a stream event's JSON.
pub fn usage_of(dialect: Dialect, v: &Value) -> Option<Usage> {
    let u = match dialect {
        Dialect::OpenaiChat => {
            let u = v.get("usage")?;
            Usage {
                input_tokens: num(u, &["prompt_tokens"]),
                output_tokens: num(u, &["completion_tokens"]),
                cached_tokens: u
                    .get("prompt_tokens_details")
                    .and_then(|d| num(d, &["cached_tokens"])),
            }
        }
        Dialect::OpenaiResponses => {
            let u = v
                .get("usage")
                .or_else(|| v.get("response").and_then(|r| r.get("usage")))?;
            Usage {
                input_tokens: num(u, &["input_tokens"]),
                output_tokens: num(u, &["output_tokens"]),
                cached_tokens: u
                    .get("input_tokens_details")
                    .and_then(|d| num(d, &["cached_tokens"])),
            }
        }
        Dialect::Anthropic => {
            let u = v
                .get("usage")
                .or_else(|| v.get("message").and_then(|m| m.get("usage")))?;
            let cached = num(u, &["cache_read_input_tokens"]).unwrap_or(0)
                + num(u, &["cache_creation_input_tokens"]).unwrap_or(0);
            Usage {
                input_tokens: num(u, &["input_tokens"]).map(|i| i + cached),
                output_tokens: num(u, &["output_tokens"]),
                cached_tokens: num(u, &["cache_read_input_tokens"]),
            }
        }
        Dialect::Gemini => {
            let u = v.get("usageMetadata")?;
            Usage {
                input_tokens: num(u, &["promptTokenCount"]),
                output_tokens: num(u, &["candidatesTokenCount"]),
                cached_tokens: num(u, &["cachedContentTokenCount"]),
            }
        }
    };
    (u.input_tokens.is_some() || u.output_tokens.is_some()).then_some(u)
}

fn has_error(v: &Value) -> bool {
    v.get("error").is_some_and(|e| !e.is_null())
        || v.get("type").and_then(Value::as_str) == Some("error")
}

/// The event's JSON, or the error kind it amounts to (not JSON, or an in-band error object).
fn parse_data(data: &str) -> Result<Value, EventKind> {
    match serde_json::from_str::<Value>(data) {
        Ok(v) if has_error(&v) => Err(EventKind::Error(v)),
        Ok(v) => Ok(v),
        Err(_) => Err(EventKind::Error(
            serde_json::json!({"error": {"message": "a stream event was not JSON"}}),
        )),
    }
}

/// Parses a JSON event (an error object or bad JSON ends there), notes its usage, and lets
/// `kind` say what the event means.
fn with_json(
    mut out: Inspected,
    dialect: Dialect,
    data: &str,
    kind: fn(&Value) -> EventKind,
) -> Inspected {
    match parse_data(data) {
        Ok(v) => {
            out.usage = usage_of(dialect, &v);
            out.kind = kind(&v);
        }
        Err(k) => out.kind = k,
    }
    out
}

/// An OpenAI Chat chunk is content once it carries text, tool calls, reasoning or a finish.
fn chat_kind(v: &Value) -> EventKind {
    let content = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|choices| {
            choices.iter().any(|c| {
                let d = c.get("delta");
                let nonempty = |k: &str| {
                    d.and_then(|d| d.get(k)).is_some_and(|x| match x {
                        Value::String(s) => !s.is_empty(),
                        Value::Null => false,
                        Value::Array(a) => !a.is_empty(),
                        _ => true,
                    })
                };
                nonempty("content")
                    || nonempty("tool_calls")
                    || nonempty("reasoning_content")
                    || nonempty("reasoning")
                    || nonempty("refusal")
                    || nonempty("function_call")
                    || c.get("finish_reason").is_some_and(|f| !f.is_null())
            })
        });
    if content {
        EventKind::Content
    } else {
        EventKind::Preamble
    }
}

/// A Gemini chunk with a `finishReason` ends the answer; any other is content.
fn gemini_kind(v: &Value) -> EventKind {
    let finished = v
        .get("candidates")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.get("finishReason").is_some_and(|f| !f.is_null()))
        });
    if finished {
        EventKind::Terminator
    } else {
        EventKind::Content
    }
}

/// Inspects one event. With `committed` the caller only needs terminators, errors and usage,
/// so events are parsed only when their text suggests they carry one of those.
pub fn inspect(dialect: Dialect, ev: &SseEvent, committed: bool) -> Inspected {
    let mut out = Inspected {
        kind: EventKind::Preamble,
        usage: None,
        sequence_number: None,
    };
    if ev.data.is_empty() && ev.event.is_none() {
        return out;
    }
    match dialect {
        Dialect::OpenaiChat => {
            if ev.data.trim() == "[DONE]" {
                out.kind = EventKind::Terminator;
                return out;
            }
            // `"usage": null` (on every chunk of a stream that asked for usage) is no usage:
            // such a chunk is not parsed.
            if committed
                && !ev.data.contains("\"error\"")
                && !super::chat_usage::may_carry_usage(&ev.data)
            {
                out.kind = EventKind::Content;
                return out;
            }
            return with_json(out, dialect, &ev.data, chat_kind);
        }
        Dialect::OpenaiResponses | Dialect::Anthropic => {
            let name_from_event = ev.event.as_deref();
            let cheap_name = name_from_event.filter(|_| committed);
            if let Some(name) = cheap_name {
                let interesting = matches!(
                    name,
                    "error"
                        | "response.failed"
                        | "response.completed"
                        | "response.incomplete"
                        | "message_stop"
                        | "message_delta"
                        | "message_start"
                );
                if !interesting && !ev.data.contains("\"sequence_number\"") {
                    out.kind = EventKind::Content;
                    return out;
                }
            }
            let v: Value = match serde_json::from_str(&ev.data) {
                Ok(v) => v,
                Err(_) if ev.data.is_empty() => Value::Null,
                Err(_) => {
                    out.kind = EventKind::Error(
                        serde_json::json!({"error": {"message": "a stream event was not JSON"}}),
                    );
                    return out;
                }
            };
            out.sequence_number = v.get("sequence_number").and_then(Value::as_u64);
            let name = v
                .get("type")
                .and_then(Value::as_str)
                .or(name_from_event)
                .unwrap_or("");
            out.kind = match (dialect, name) {
                (_, "error") | (Dialect::OpenaiResponses, "response.failed") => {
                    EventKind::Error(v.clone())
                }
                (
                    Dialect::OpenaiResponses,
                    "response.created" | "response.in_progress" | "response.queued",
                ) => EventKind::Preamble,
                (Dialect::OpenaiResponses, "response.completed" | "response.incomplete") => {
                    EventKind::Terminator
                }
                (Dialect::Anthropic, "message_start" | "ping") => EventKind::Preamble,
                (Dialect::Anthropic, "message_stop") => EventKind::Terminator,
                (_, "") => EventKind::Preamble,
                _ => EventKind::Content,
            };
            if matches!(
                name,
                "message_start" | "message_delta" | "response.completed" | "response.incomplete"
            ) {
                out.usage = usage_of(dialect, &v);
            }
        }
        Dialect::Gemini => return with_json(out, dialect, &ev.data, gemini_kind),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
            raw: bytes::Bytes::new(),
        }
    }

    #[test]
    fn openai_chat_events() {
        let d = Dialect::OpenaiChat;
        assert_eq!(
            inspect(
                d,
                &ev(
                    None,
                    r#"{"choices":[{"delta":{"role":"assistant","content":""}}]}"#
                ),
                false
            )
            .kind,
            EventKind::Preamble
        );
        assert_eq!(
            inspect(
                d,
                &ev(None, r#"{"choices":[{"delta":{"content":"Hi"}}]}"#),
                false
            )
            .kind,
            EventKind::Content
        );
        assert_eq!(
            inspect(
                d,
                &ev(
                    None,
                    r#"{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}"#
                ),
                false
            )
            .kind,
            EventKind::Content
        );
        assert_eq!(
            inspect(
                d,
                &ev(None, r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#),
                false
            )
            .kind,
            EventKind::Content
        );
        assert_eq!(
            inspect(d, &ev(None, "[DONE]"), true).kind,
            EventKind::Terminator
        );
        assert!(matches!(
            inspect(d, &ev(None, r#"{"error":{"message":"x"}}"#), true).kind,
            EventKind::Error(_)
        ));
        let u = inspect(
            d,
            &ev(
                None,
                r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5}}"#,
            ),
            true,
        );
        assert_eq!(
            u.usage,
            Some(Usage {
                input_tokens: Some(3),
                output_tokens: Some(5),
                ..Default::default()
            })
        );
    }

    #[test]
    fn anthropic_events() {
        let d = Dialect::Anthropic;
        let start = inspect(
            d,
            &ev(
                Some("message_start"),
                r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"output_tokens":1}}}"#,
            ),
            false,
        );
        assert_eq!(start.kind, EventKind::Preamble);
        assert_eq!(
            start.usage,
            Some(Usage {
                input_tokens: Some(10),
                output_tokens: Some(1),
                ..Default::default()
            })
        );
        assert_eq!(
            inspect(d, &ev(Some("ping"), r#"{"type":"ping"}"#), false).kind,
            EventKind::Preamble
        );
        assert_eq!(
            inspect(
                d,
                &ev(
                    Some("content_block_delta"),
                    r#"{"type":"content_block_delta"}"#
                ),
                false
            )
            .kind,
            EventKind::Content
        );
        assert!(matches!(
            inspect(
                d,
                &ev(
                    Some("error"),
                    r#"{"type":"error","error":{"type":"overloaded_error"}}"#
                ),
                false
            )
            .kind,
            EventKind::Error(_)
        ));
        assert_eq!(
            inspect(
                d,
                &ev(Some("message_stop"), r#"{"type":"message_stop"}"#),
                true
            )
            .kind,
            EventKind::Terminator
        );
        let delta = inspect(
            d,
            &ev(
                Some("message_delta"),
                r#"{"type":"message_delta","usage":{"output_tokens":42}}"#,
            ),
            true,
        );
        assert_eq!(
            delta.usage,
            Some(Usage {
                input_tokens: None,
                output_tokens: Some(42),
                ..Default::default()
            })
        );
    }

    #[test]
    fn responses_events() {
        let d = Dialect::OpenaiResponses;
        assert_eq!(
            inspect(
                d,
                &ev(
                    Some("response.created"),
                    r#"{"type":"response.created","sequence_number":0}"#
                ),
                false
            )
            .kind,
            EventKind::Preamble
        );
        let delta = inspect(
            d,
            &ev(
                Some("response.output_text.delta"),
                r#"{"type":"response.output_text.delta","delta":"x","sequence_number":4}"#,
            ),
            true,
        );
        assert_eq!(delta.kind, EventKind::Content);
        assert_eq!(delta.sequence_number, Some(4));
        let done = inspect(
            d,
            &ev(
                Some("response.completed"),
                r#"{"type":"response.completed","sequence_number":9,"response":{"usage":{"input_tokens":2,"output_tokens":3}}}"#,
            ),
            true,
        );
        assert_eq!(done.kind, EventKind::Terminator);
        assert_eq!(
            done.usage,
            Some(Usage {
                input_tokens: Some(2),
                output_tokens: Some(3),
                ..Default::default()
            })
        );
        assert!(matches!(
            inspect(
                d,
                &ev(
                    Some("response.failed"),
                    r#"{"type":"response.failed","response":{}}"#
                ),
                true
            )
            .kind,
            EventKind::Error(_)
        ));
    }

    #[test]
    fn gemini_events() {
        let d = Dialect::Gemini;
        assert_eq!(
            inspect(d, &ev(None, r#"{"candidates":[{"content":{}}]}"#), false).kind,
            EventKind::Content
        );
        assert_eq!(inspect(d, &ev(None, r#"{"candidates":[{"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1}}"#), false).kind, EventKind::Terminator);
    }

    #[test]
    fn body_checks() {
        let ok = check_body(Dialect::Anthropic, br#"{"id":"m","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":3,"output_tokens":4}}"#).expect("json");
        assert_eq!(
            ok,
            BodyCheck {
                error: None,
                usage: Some(Usage {
                    input_tokens: Some(3),
                    output_tokens: Some(4),
                    ..Default::default()
                })
            }
        );
        let err = check_body(
            Dialect::Anthropic,
            br#"{"type":"error","error":{"type":"overloaded_error"}}"#,
        )
        .expect("json");
        assert!(err.error.is_some());
        assert_eq!(
            check_body(Dialect::OpenaiChat, br#"{"error":null,"choices":[]}"#)
                .expect("json")
                .error,
            None
        );
        let r = check_body(
            Dialect::OpenaiResponses,
            br#"{"output":[],"usage":{"input_tokens":1,"output_tokens":2}}"#,
        )
        .expect("json");
        assert_eq!(
            r.usage,
            Some(Usage {
                input_tokens: Some(1),
                output_tokens: Some(2),
                ..Default::default()
            })
        );
        assert!(check_body(Dialect::OpenaiChat, b"<html>").is_err());
        assert!(check_body(Dialect::OpenaiChat, b"[1,2]").is_err());
    }

    #[test]
    fn non_json_data_is_an_error() {
        assert!(matches!(
            inspect(Dialect::OpenaiChat, &ev(None, "<html>"), false).kind,
            EventKind::Error(_)
        ));
    }
}
