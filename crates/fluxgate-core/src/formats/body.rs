//! Request-body surgery without re-serialising: read the top-level `model` and `stream`, and
//! replace the model value while every other byte of the client's body stays as sent.
//!
//! Keeping the bytes is not only faster; it keeps the prompt prefix exactly as the client
//! wrote it, which provider prompt caches depend on.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;

/// What the router needs to know from a request body before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub model: Option<String>,
    pub stream: bool,
    /// Where the top-level `model` value (quotes included) sits in the body, so that
    /// [`replace_model`] needs no second parse.
    pub model_span: Option<(usize, usize)>,
    /// A key that stays the same for every turn of one conversation (session affinity): the
    /// client's `prompt_cache_key`, else its `metadata` (Claude Code puts its session there),
    /// else a hash of the system prompt and the first message.
    pub conversation: Option<u64>,
    /// The output cap the client asked for (`max_tokens`, `max_completion_tokens`,
    /// `max_output_tokens`; Gemini's nested `maxOutputTokens` is not read).
    pub max_output: Option<u64>,
    /// Whether the request offers tools (a non-empty top-level `tools`).
    pub tools: bool,
}

/// The parts of a body a conversation key is made from.
#[derive(Default)]
struct ConversationParts<'a> {
    cache_key: Option<&'a str>,
    metadata: Option<&'a str>,
    system: Option<&'a str>,
    /// The conversation's opening: leading system/developer items and the first other one.
    first: Vec<&'a str>,
}

impl ConversationParts<'_> {
    fn key(&self) -> Option<u64> {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        if let Some(k) = self.cache_key {
            ("prompt_cache_key", k).hash(&mut h);
        } else if let Some(m) = self.metadata {
            ("metadata", m).hash(&mut h);
        } else {
            if self.first.is_empty() {
                return None;
            }
            ("conversation", self.system, &self.first).hash(&mut h);
        }
        Some(h.finish())
    }
}

/// The raw text of an array's leading system/developer items and its first other item (or the
/// value itself when it is a string, like a Responses `input`), skipping the rest without
/// building anything.
fn first_element<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<&'de str>, A::Error> {
    #[derive(serde::Deserialize)]
    struct Role<'a> {
        #[serde(borrow, default)]
        role: Option<&'a str>,
    }
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Vec<&'de str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(
            self,
            mut seq: S,
        ) -> Result<Self::Value, S::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<&'de RawValue>()? {
                out.push(item.get());
                let role = serde_json::from_str::<Role<'_>>(item.get())
                    .ok()
                    .and_then(|r| r.role);
                if !matches!(role, Some("system" | "developer")) {
                    break;
                }
            }
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(out)
        }
        fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(vec![v])
        }
        fn visit_str<E>(self, _v: &str) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<M: MapAccess<'de>>(self, mut m: M) -> Result<Self::Value, M::Error> {
            while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Vec::new())
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_bool<E>(self, _v: bool) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_i64<E>(self, _v: i64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_u64<E>(self, _v: u64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_f64<E>(self, _v: f64) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
    }
    struct Seed;
    impl<'de> serde::de::DeserializeSeed<'de> for Seed {
        type Value = Vec<&'de str>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(First)
        }
    }
    map.next_value_seed(Seed)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is not a JSON object: {0}")]
    NotJson(String),
    #[error("`model` must be a string")]
    ModelNotString,
    #[error("`stream` must be true or false")]
    StreamNotBool,
}

/// Reads `model` (and where it sits) and `stream` from a JSON object body.
pub fn read_head(body: &[u8]) -> Result<RequestHead, BodyError> {
    struct HeadVisitor<'b>(&'b [u8]);
    impl<'de: 'b, 'b> Visitor<'de> for HeadVisitor<'b> {
        type Value = Result<RequestHead, BodyError>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut head = RequestHead {
                model: None,
                stream: false,
                model_span: None,
                conversation: None,
                max_output: None,
                tools: false,
            };
            let mut parts = ConversationParts::default();
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "model" => {
                        let raw: &'de RawValue = map.next_value()?;
                        let text = raw.get();
                        if text == "null" {
                            continue;
                        }
                        let Ok(model) = serde_json::from_str::<String>(text) else {
                            return Ok(Err(BodyError::ModelNotString));
                        };
                        let start = text.as_ptr() as usize - self.0.as_ptr() as usize;
                        head.model = Some(model);
                        head.model_span = Some((start, start + text.len()));
                    }
                    "stream" => match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::Bool(b) => head.stream = b,
                        serde_json::Value::Null => {}
                        _ => return Ok(Err(BodyError::StreamNotBool)),
                    },
                    "messages" | "input" | "contents" => parts.first = first_element(&mut map)?,
                    "system" | "instructions" | "systemInstruction" => {
                        parts.system = Some(map.next_value::<&'de RawValue>()?.get());
                    }
                    "prompt_cache_key" => {
                        parts.cache_key = map.next_value::<&'de RawValue>()?.get().into();
                    }
                    "metadata" => parts.metadata = Some(map.next_value::<&'de RawValue>()?.get()),
                    "max_tokens" | "max_completion_tokens" | "max_output_tokens" => {
                        if let serde_json::Value::Number(n) = map.next_value()? {
                            head.max_output = n.as_u64();
                        }
                    }
                    "tools" => {
                        let raw = map.next_value::<&'de RawValue>()?.get();
                        head.tools = raw.starts_with('[') && raw[1..].trim_start() != "]";
                    }
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            head.conversation = parts.key();
            Ok(Ok(head))
        }
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let head = de
        .deserialize_map(HeadVisitor(body))
        .map_err(|e| BodyError::NotJson(e.to_string()))?;
    de.end().map_err(|e| BodyError::NotJson(e.to_string()))?;
    head
}

/// Returns `body` with the top-level `model` value replaced by `model` (added when absent).
/// Every other byte is kept.
pub fn rewrite_model(body: &[u8], model: &str) -> Result<Bytes, BodyError> {
    replace_model(body, read_head(body)?.model_span, model)
}

/// Like [`rewrite_model`], with the span [`read_head`] already found.
pub fn replace_model(
    body: &[u8],
    span: Option<(usize, usize)>,
    model: &str,
) -> Result<Bytes, BodyError> {
    let encoded = serde_json::to_string(model).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let mut out = BytesMut::with_capacity(body.len() + encoded.len());
    match span {
        Some((start, end)) if end <= body.len() && start < end => {
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(encoded.as_bytes());
            out.extend_from_slice(&body[end..]);
        }
        _ => {
            // Insert right after the opening brace.
            let brace = body
                .iter()
                .position(|b| *b == b'{')
                .ok_or_else(|| BodyError::NotJson("no object".into()))?;
            let rest = body[brace + 1..].trim_ascii_start();
            out.extend_from_slice(&body[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(encoded.as_bytes());
            if !rest.starts_with(b"}") {
                out.extend_from_slice(b",");
            }
            out.extend_from_slice(&body[brace + 1..]);
        }
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(body: &str) -> Option<u64> {
        read_head(body.as_bytes()).expect("head").conversation
    }

    #[test]
    fn a_conversation_keeps_its_key_from_turn_to_turn() {
        // Chat: the system message and first user message stay; later turns are appended.
        let t1 = r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"alpha"}]}"#;
        let t2 = r#"{"model":"m","stream":true,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"alpha"},{"role":"assistant","content":"ok"},{"role":"user","content":"more"}],"temperature":0.2}"#;
        assert!(conv(t1).is_some());
        assert_eq!(conv(t1), conv(t2));
        let other = r#"{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"beta"}]}"#;
        assert_ne!(conv(t1), conv(other));
        // Anthropic: top-level system.
        let a1 = r#"{"model":"c","system":"sys","max_tokens":5,"messages":[{"role":"user","content":"x"}]}"#;
        let a2 = r#"{"model":"c","system":"sys","max_tokens":9,"messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"},{"role":"user","content":"z"}]}"#;
        assert_eq!(conv(a1), conv(a2));
        assert_ne!(conv(a1), conv(&a1.replace("\"sys\"", "\"other\"")));
        // Responses: instructions and input (array or a plain string).
        let r1 = r#"{"model":"g","instructions":"i","input":[{"role":"user","content":"q"}]}"#;
        let r2 = r#"{"model":"g","instructions":"i","input":[{"role":"user","content":"q"},{"type":"function_call_output","call_id":"c","output":"o"}]}"#;
        assert_eq!(conv(r1), conv(r2));
        assert!(conv(r#"{"model":"g","input":"hello"}"#).is_some());
        // Gemini: contents.
        let g1 = r#"{"contents":[{"role":"user","parts":[{"text":"q"}]}]}"#;
        let g2 = r#"{"contents":[{"role":"user","parts":[{"text":"q"}]},{"role":"model","parts":[{"text":"a"}]}]}"#;
        assert_eq!(conv(g1), conv(g2));
        // The client's own keys win: prompt_cache_key, then metadata.
        let k1 = r#"{"model":"g","prompt_cache_key":"conv-1","input":"first"}"#;
        let k2 = r#"{"model":"g","prompt_cache_key":"conv-1","input":"something else"}"#;
        assert_eq!(conv(k1), conv(k2));
        let m1 = r#"{"model":"c","metadata":{"user_id":"u_session_1"},"messages":[{"role":"user","content":"a"}]}"#;
        let m2 = r#"{"model":"c","metadata":{"user_id":"u_session_1"},"messages":[{"role":"user","content":"b"}]}"#;
        assert_eq!(conv(m1), conv(m2));
        // Nothing to go by: no key.
        assert_eq!(conv(r#"{"model":"m"}"#), None);
    }

    #[test]
    fn reads_model_and_stream() {
        let head = read_head(br#"{"messages":[{"model":"x"}],"model":"gpt-4o","stream":true}"#)
            .expect("head");
        assert_eq!(
            (head.model.as_deref(), head.stream, head.model_span),
            (Some("gpt-4o"), true, Some((36, 44)))
        );
        assert!(head.conversation.is_some());
        assert_eq!(
            read_head(b"{}"),
            Ok(RequestHead {
                model: None,
                stream: false,
                model_span: None,
                conversation: None,
                max_output: None,
                tools: false,
            })
        );
        let h = read_head(br#"{"model":"a","max_tokens":512,"tools":[ {"name":"x"} ]}"#)
            .expect("a value");
        assert_eq!((h.max_output, h.tools), (Some(512), true));
        let h = read_head(br#"{"model":"a","max_output_tokens":9,"tools":[ ]}"#).expect("a value");
        assert_eq!((h.max_output, h.tools), (Some(9), false));
        assert_eq!(read_head(br#"{"model":3}"#), Err(BodyError::ModelNotString));
        assert_eq!(
            read_head(br#"{"model":"a","stream":"yes"}"#),
            Err(BodyError::StreamNotBool)
        );
        assert!(matches!(read_head(b"[1]"), Err(BodyError::NotJson(_))));
        assert!(matches!(
            read_head(br#"{"model":"a"} trailing"#),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn rewrites_only_the_model() {
        let body = br#"{ "z_unknown": {"model": "inner"}, "model" : "alias", "messages":[{"role":"user","content":"hi \"model\""}] }"#;
        let out = rewrite_model(body, "real-model").expect("rewrite");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf8"),
            r#"{ "z_unknown": {"model": "inner"}, "model" : "real-model", "messages":[{"role":"user","content":"hi \"model\""}] }"#
        );
        let escaped = rewrite_model(br#"{"model":"a\"b"}"#, "q\"uote").expect("rewrite");
        assert_eq!(&escaped[..], br#"{"model":"q\"uote"}"#);
    }

    #[test]
    fn the_span_from_read_head_rewrites_the_same_bytes() {
        for body in [
            &br#"{ "a": {"model": "x"}, "model" : "alias\u0041", "b": 1 }"#[..],
            br#"{"messages":[]}"#,
            br#"{"model":null,"x":2}"#,
        ] {
            let head = read_head(body).expect("head");
            let once = replace_model(body, head.model_span, "real").expect("replace");
            assert_eq!(
                once,
                rewrite_model(body, "real").expect("rewrite"),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(
                read_head(&once).expect("head").model.as_deref(),
                Some("real")
            );
        }
        assert_eq!(
            read_head(br#"{"model":"\u0041b"}"#)
                .expect("head")
                .model
                .as_deref(),
            Some("Ab")
        );
    }

    #[test]
    fn adds_a_missing_model() {
        assert_eq!(
            &rewrite_model(b"{}", "m").expect("rewrite")[..],
            br#"{"model":"m"}"#
        );
        assert_eq!(
            &rewrite_model(br#"{"a":1}"#, "m").expect("rewrite")[..],
            br#"{"model":"m","a":1}"#
        );
    }
}
