//! Request-body surgery without re-serialising: read the top-level `model` and `stream`, and
//! replace the model value while every other byte of the client's body stays as sent.
//!
//! Keeping the bytes is not only faster; it keeps the prompt prefix exactly as the client
//! wrote it, which provider prompt caches depend on.

use std::borrow::Cow;
use std::fmt;

use bytes::{Bytes, BytesMut};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;
use serde_json::value::RawValue;

/// What the router needs to know from a request body before routing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub model: Option<String>,
    pub stream: bool,
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

/// Reads `model` and `stream` from a JSON object body.
pub fn read_head(body: &[u8]) -> Result<RequestHead, BodyError> {
    struct HeadVisitor;
    impl<'de> Visitor<'de> for HeadVisitor {
        type Value = Result<RequestHead, BodyError>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut head = RequestHead {
                model: None,
                stream: false,
            };
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                match key.as_ref() {
                    "model" => match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => head.model = Some(s),
                        serde_json::Value::Null => {}
                        _ => return Ok(Err(BodyError::ModelNotString)),
                    },
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
        .deserialize_map(HeadVisitor)
        .map_err(|e| BodyError::NotJson(e.to_string()))?;
    de.end().map_err(|e| BodyError::NotJson(e.to_string()))?;
    head
}

/// Returns `body` with the top-level `model` value replaced by `model` (added when absent).
/// Every other byte is kept.
pub fn rewrite_model(body: &[u8], model: &str) -> Result<Bytes, BodyError> {
    let text = std::str::from_utf8(body).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let span = model_span(text)?;
    let encoded = serde_json::to_string(model).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let mut out = BytesMut::with_capacity(body.len() + encoded.len());
    match span {
        Some((start, end)) => {
            out.extend_from_slice(&body[..start]);
            out.extend_from_slice(encoded.as_bytes());
            out.extend_from_slice(&body[end..]);
        }
        None => {
            // Insert right after the opening brace.
            let brace = text
                .find('{')
                .ok_or_else(|| BodyError::NotJson("no object".into()))?;
            let rest = text[brace + 1..].trim_start();
            out.extend_from_slice(&body[..=brace]);
            out.extend_from_slice(b"\"model\":");
            out.extend_from_slice(encoded.as_bytes());
            if !rest.starts_with('}') {
                out.extend_from_slice(b",");
            }
            out.extend_from_slice(&body[brace + 1..]);
        }
    }
    Ok(out.freeze())
}

/// The byte range of the top-level `model` value, found by letting serde_json walk the
/// object and hand back raw slices of the input.
fn model_span(text: &str) -> Result<Option<(usize, usize)>, BodyError> {
    struct SpanVisitor<'a>(&'a str);
    impl<'de: 'a, 'a> Visitor<'de> for SpanVisitor<'a> {
        type Value = Option<(usize, usize)>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                let raw: &'de RawValue = map.next_value()?;
                if key == "model" {
                    let s = raw.get();
                    let start = s.as_ptr() as usize - self.0.as_ptr() as usize;
                    if !s.starts_with('"') {
                        return Err(de::Error::custom("`model` must be a string"));
                    }
                    found = Some((start, start + s.len()));
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let span = de.deserialize_map(SpanVisitor(text)).map_err(|e| {
        if e.to_string().contains("`model` must be a string") {
            BodyError::ModelNotString
        } else {
            BodyError::NotJson(e.to_string())
        }
    })?;
    de.end().map_err(|e| BodyError::NotJson(e.to_string()))?;
    Ok(span)
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
                stream: true
            })
        );
        assert_eq!(
            read_head(b"{}"),
            Ok(RequestHead {
                model: None,
                stream: false
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
