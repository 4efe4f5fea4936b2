use std::time::{Duration, UNIX_EPOCH};

use http::{HeaderMap, HeaderValue};

use super::*;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(*k, HeaderValue::from_static(v));
    }
    m
}

/// The whole taxonomy as one table: (status, body, headers) -> (class, hint).
#[test]
fn taxonomy_table() {
    let none = HeaderMap::new();
    let cases: Vec<(u16, &str, HeaderMap, ErrorClass, Option<Duration>)> = vec![
        (
            401,
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            none.clone(),
            ErrorClass::AuthFailed,
            None,
        ),
        (
            403,
            r#"{"error":{"message":"forbidden"}}"#,
            none.clone(),
            ErrorClass::AuthFailed,
            None,
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#,
            none.clone(),
            ErrorClass::AuthFailed,
            None,
        ),
        (
            402,
            r#"{"error":{"message":"payment required"}}"#,
            none.clone(),
            ErrorClass::QuotaExhausted,
            None,
        ),
        (
            429,
            r#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#,
            none.clone(),
            ErrorClass::QuotaExhausted,
            None,
        ),
        (
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#,
            none.clone(),
            ErrorClass::QuotaExhausted,
            None,
        ),
        (
            429,
            r#"{"error":{"code":429,"message":"Quota exceeded for metric: GenerateRequestsPerDay per day","status":"RESOURCE_EXHAUSTED"}}"#,
            none.clone(),
            ErrorClass::QuotaExhausted,
            None,
        ),
        (
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
            h(&[("retry-after", "7")]),
            ErrorClass::RateLimited,
            Some(Duration::from_secs(7)),
        ),
        (
            429,
            r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"per minute"}}"#,
            h(&[("retry-after-ms", "1500")]),
            ErrorClass::RateLimited,
            Some(Duration::from_millis(1500)),
        ),
        (429, "", none.clone(), ErrorClass::RateLimited, None),
        (
            500,
            r#"{"error":{"type":"server_error"}}"#,
            none.clone(),
            ErrorClass::UpstreamUnavailable,
            None,
        ),
        (
            502,
            "<html>bad gateway</html>",
            none.clone(),
            ErrorClass::UpstreamUnavailable,
            None,
        ),
        (
            503,
            "",
            h(&[("retry-after", "2")]),
            ErrorClass::UpstreamUnavailable,
            Some(Duration::from_secs(2)),
        ),
        (
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            none.clone(),
            ErrorClass::UpstreamUnavailable,
            None,
        ),
        (408, "", none.clone(), ErrorClass::UpstreamUnavailable, None),
        (302, "", none.clone(), ErrorClass::UpstreamUnavailable, None),
        (
            400,
            r#"{"error":{"type":"invalid_request_error","message":"max_tokens too large"}}"#,
            none.clone(),
            ErrorClass::RequestInvalid,
            None,
        ),
        (
            404,
            r#"{"error":{"message":"model not found"}}"#,
            none.clone(),
            ErrorClass::RequestInvalid,
            None,
        ),
        (413, "", none.clone(), ErrorClass::RequestInvalid, None),
        (422, "", none.clone(), ErrorClass::RequestInvalid, None),
        (409, "", none.clone(), ErrorClass::RequestInvalid, None),
    ];
    for (status, body, headers, class, hint) in cases {
        let f = classify_status(status, &headers, body.as_bytes(), now());
        assert_eq!(f.class, class, "status {status} body {body}");
        assert_eq!(f.retry_hint, hint, "status {status} body {body}");
        assert_eq!(f.status, Some(status));
    }
}

#[test]
fn redirects_are_their_own_kind() {
    let f = classify_status(307, &HeaderMap::new(), b"", now());
    assert_eq!(f.kind, FailureKind::Redirect);
    assert!(f.message.contains("never follows"));
}

#[test]
fn in_band_errors() {
    let none = HeaderMap::new();
    let cases = [
        (
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            Some(ErrorClass::UpstreamUnavailable),
        ),
        (
            r#"{"error":{"message":"Rate limit reached","type":"rate_limit_exceeded"}}"#,
            Some(ErrorClass::RateLimited),
        ),
        (
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            Some(ErrorClass::AuthFailed),
        ),
        (
            r#"{"error":{"message":"boom"}}"#,
            Some(ErrorClass::UpstreamUnavailable),
        ),
        (
            r#"{"type":"response.failed","response":{"error":{"code":"server_error","message":"x"}}}"#,
            Some(ErrorClass::UpstreamUnavailable),
        ),
        (r#"{"choices":[{"delta":{"content":"hi"}}]}"#, None),
        (r#"{"error":null,"choices":[]}"#, None),
        (r#"{"type":"message_start","message":{}}"#, None),
    ];
    for (body, want) in cases {
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(
            classify_in_band(&v, &none, now()).map(|f| f.class),
            want,
            "{body}"
        );
    }
}

#[test]
fn every_class_round_trips_and_only_invalid_requests_stay_put() {
    for c in ErrorClass::ALL {
        assert_eq!(ErrorClass::parse(c.as_str()), Some(c));
        assert_eq!(c.fails_over(), c != ErrorClass::RequestInvalid);
    }
}

#[test]
fn scrub_blanks_credentials() {
    let s = scrub("Incorrect API key provided: sk-proj-abcdefghijklmnop1234. You can find");
    assert!(!s.contains("abcdefghijkl"), "{s}");
    assert!(s.contains("Incorrect API key provided"));
    let s = scrub("key=AIzaSyD-1234567890abcdefghijklmnopqrstu bad");
    assert!(!s.contains("AIzaSyD"), "{s}");
    assert_eq!(scrub("plain words stay"), "plain words stay");
    assert!(scrub(&"word ".repeat(200)).chars().count() <= 401);
}

#[test]
fn scrub_blanks_key_shaped_words_wrapped_in_brackets_or_quotes() {
    let key = "sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4";
    for (open, close) in [
        ("(", ")"),
        ("[", "]"),
        ("<", ">"),
        ("{", "}"),
        ("\"", "\""),
        ("'", "'"),
        ("`", "`"),
        ("", ";"),
    ] {
        let s = scrub(&format!("bad key {open}{key}{close} here"));
        assert_eq!(s, format!("bad key {open}***{close} here"));
    }
}
