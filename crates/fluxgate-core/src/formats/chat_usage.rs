//! OpenAI Chat streams report usage only when the request sets
//! `stream_options.include_usage`, and most OpenAI-compatible tools do not set it, so a
//! same-dialect stream would be recorded with no tokens and no cost. Fluxgate asks for usage
//! itself ([`ask_for_usage`]) and gives the client back the stream it asked for: the usage
//! chunk ([`is_usage_chunk`]) and the `"usage": null` on every other chunk
//! ([`without_null_usage`]) are taken out again. Byte-level and pure.

use std::borrow::Cow;

use bytes::Bytes;
use memchr::memmem;

/// The body with `stream_options.include_usage` set to true; `None` when the client already
/// asked (or the body is not a JSON object, which the upstream will refuse on its own).
pub fn ask_for_usage(body: &[u8]) -> Option<Bytes> {
    if memmem::find(body, b"\"stream_options\"").is_none() {
        // The common case: no `stream_options` at all. Add it as the object's first member,
        // without parsing the (possibly large) rest.
        let open = body.iter().position(|b| !b.is_ascii_whitespace())?;
        if body[open] != b'{' {
            return None;
        }
        let rest = &body[open + 1..];
        let empty = rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_none_or(|b| *b == b'}');
        let member: &[u8] = if empty {
            br#""stream_options":{"include_usage":true}"#
        } else {
            br#""stream_options":{"include_usage":true},"#
        };
        let mut out = Vec::with_capacity(body.len() + member.len());
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(member);
        out.extend_from_slice(rest);
        return Some(Bytes::from(out));
    }
    let mut v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let o = v.as_object_mut()?;
    let options = o
        .entry("stream_options")
        .or_insert_with(|| serde_json::json!({}));
    if !options.is_object() {
        *options = serde_json::json!({});
    }
    let options = options.as_object_mut()?;
    if options
        .get("include_usage")
        .and_then(serde_json::Value::as_bool)
        == Some(true)
    {
        return None;
    }
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::to_vec(&v).ok().map(Bytes::from)
}

/// Whether a chunk may hold usage: it names `usage`, and not as `"usage": null` (which every
/// chunk of a stream that asked for usage carries). A byte search, no parse.
pub fn may_carry_usage(data: &str) -> bool {
    let b = data.as_bytes();
    memmem::find(b, b"\"usage\"").is_some()
        && memmem::find(b, b"\"usage\":null").is_none()
        && memmem::find(b, b"\"usage\": null").is_none()
}

/// Whether a chunk's data is the usage chunk: an object with a `usage` object and no
/// choices (`"choices": []`).
pub fn is_usage_chunk(data: &str) -> bool {
    // Every other chunk carries `"usage": null` (or no usage at all): only the rare chunk
    // with a usage object is parsed.
    if !may_carry_usage(data) {
        return false;
    }
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    v.get("usage").is_some_and(serde_json::Value::is_object)
        && v.get("choices")
            .and_then(serde_json::Value::as_array)
            .is_none_or(Vec::is_empty)
}

/// Appends a chunk to `out` without the `"usage": null` member an asked-for usage adds to
/// every chunk (copied around it, nothing allocated).
pub fn push_without_null_usage(raw: &[u8], out: &mut bytes::BytesMut) {
    for pattern in [
        &b",\"usage\":null"[..],
        b", \"usage\": null",
        b",\"usage\": null",
        b"\"usage\":null,",
        b"\"usage\": null, ",
        b"\"usage\": null,",
    ] {
        if let Some(at) = memmem::find(raw, pattern) {
            out.extend_from_slice(&raw[..at]);
            out.extend_from_slice(&raw[at + pattern.len()..]);
            return;
        }
    }
    out.extend_from_slice(raw);
}

/// [`push_without_null_usage`] into a new buffer.
pub fn without_null_usage(raw: &[u8]) -> Cow<'_, [u8]> {
    let mut out = bytes::BytesMut::with_capacity(raw.len());
    push_without_null_usage(raw, &mut out);
    if out.len() == raw.len() {
        Cow::Borrowed(raw)
    } else {
        Cow::Owned(out.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: Option<Bytes>) -> Option<String> {
        b.map(|b| String::from_utf8(b.to_vec()).expect("utf8"))
    }

    #[test]
    fn usage_is_asked_for_unless_the_client_did() {
        let cases: [(&str, Option<&str>); 7] = [
            (
                r#"{"model":"m","stream":true}"#,
                Some(r#"{"stream_options":{"include_usage":true},"model":"m","stream":true}"#),
            ),
            (
                " \n{ \"model\": \"m\" }",
                Some(" \n{\"stream_options\":{\"include_usage\":true}, \"model\": \"m\" }"),
            ),
            ("{}", Some(r#"{"stream_options":{"include_usage":true}}"#)),
            (
                r#"{"model":"m","stream_options":{"include_obfuscation":false}}"#,
                Some(
                    r#"{"model":"m","stream_options":{"include_obfuscation":false,"include_usage":true}}"#,
                ),
            ),
            (
                r#"{"model":"m","stream_options":{"include_usage":false}}"#,
                Some(r#"{"model":"m","stream_options":{"include_usage":true}}"#),
            ),
            (
                r#"{"model":"m","stream_options":{"include_usage":true}}"#,
                None,
            ),
            ("[1]", None),
        ];
        for (body, want) in cases {
            let got = text(ask_for_usage(body.as_bytes()));
            assert_eq!(got.as_deref(), want, "{body}");
            if let Some(g) = got {
                let v: serde_json::Value = serde_json::from_str(&g).expect("still JSON");
                assert_eq!(v["stream_options"]["include_usage"], true);
            }
        }
    }

    #[test]
    fn the_usage_chunk_and_null_usages_are_recognised() {
        assert!(is_usage_chunk(
            r#"{"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":7}}"#
        ));
        assert!(is_usage_chunk(r#"{"usage": {"prompt_tokens": 1}}"#));
        for not in [
            r#"{"choices":[{"index":0,"delta":{"content":"hi"}}],"usage":null}"#,
            r#"{"choices":[{"index":0,"delta":{}}],"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[]}"#,
            "[DONE]",
            "not json \"usage\"",
        ] {
            assert!(!is_usage_chunk(not), "{not}");
        }
        let raw = b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}],\"usage\":null}\n\n";
        assert_eq!(
            without_null_usage(raw).as_ref(),
            b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n"
        );
        let spaced = b"data: {\"usage\": null, \"choices\": []}\n\n";
        assert_eq!(
            without_null_usage(spaced).as_ref(),
            b"data: {\"choices\": []}\n\n"
        );
        let plain = b"data: {\"choices\":[]}\n\n";
        assert!(matches!(without_null_usage(plain), Cow::Borrowed(_)));
    }
}
