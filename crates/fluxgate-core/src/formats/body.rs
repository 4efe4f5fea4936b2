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
            };
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
                    _ => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
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

    #[test]
    fn reads_model_and_stream() {
        assert_eq!(
            read_head(br#"{"messages":[{"model":"x"}],"model":"gpt-4o","stream":true}"#),
            Ok(RequestHead {
                model: Some("gpt-4o".into()),
                stream: true,
                model_span: Some((36, 44)),
            })
        );
        assert_eq!(
            read_head(b"{}"),
            Ok(RequestHead {
                model: None,
                stream: false,
                model_span: None,
            })
        );
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
