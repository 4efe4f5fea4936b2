//! The error taxonomy: every upstream failure is classified here and nowhere else.
//!
//! Retry, failover, cooldown, the client-facing error code and the UI all read the
//! [`Failure`] this module produces. The table (DESIGN.md §3):
//!
//! | upstream says | class |
//! |---|---|
//! | 401, 403, invalid-key bodies | `auth_failed` |
//! | 402, quota/billing bodies | `quota_exhausted` |
//! | 429 | `rate_limited` |
//! | 5xx, 529, 408, overloaded, timeout, connection error, redirect | `upstream_unavailable` |
//! | 400, 404, 413, 422 and other 4xx | `request_invalid` |
//! | 200 with an empty, HTML or in-band error body | as the in-band error says, else `upstream_unavailable` |

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::hints;
pub use crate::vocab::ErrorClass;

/// How the failure showed itself; decides the client-facing code when nothing else is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// An HTTP error status.
    Status(u16),
    /// A 200 whose body or first stream event was an error.
    InBand,
    /// A 200 with nothing usable in it (empty, HTML, not the expected format).
    Empty,
    /// No connection could be made.
    Connect,
    /// The connection broke.
    Reset,
    /// A deadline passed.
    Timeout(TimeoutPhase),
    /// The upstream answered with a redirect, which is never followed.
    Redirect,
    /// The outbound proxy failed (down, refused the credentials or the tunnel, could not
    /// reach the upstream): the request fails over, the key's state is left alone.
    Proxy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutPhase {
    Connect,
    FirstByte,
    Idle,
    Total,
}

impl TimeoutPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutPhase::Connect => "connect",
            TimeoutPhase::FirstByte => "first byte",
            TimeoutPhase::Idle => "idle between events",
            TimeoutPhase::Total => "total",
        }
    }
}

/// A classified upstream failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub class: ErrorClass,
    pub kind: FailureKind,
    /// The upstream's status code, when there was a response.
    pub status: Option<u16>,
    /// A short, scrubbed message for people (never a secret).
    pub message: String,
    /// How long the upstream asked us to wait, when it said.
    pub retry_hint: Option<Duration>,
}

impl Failure {
    pub fn transport(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure {
            class: ErrorClass::UpstreamUnavailable,
            kind,
            status: None,
            message: message.into(),
            retry_hint: None,
        }
    }
}

/// The `type`/`code`/`status` strings of an error object in any dialect, lower-cased.
fn error_words(body: &serde_json::Value) -> (String, String) {
    let err = body.get("error").unwrap_or(body);
    let mut words = String::new();
    for field in ["type", "code", "status", "reason"] {
        if let Some(s) = err.get(field).and_then(|v| v.as_str()) {
            words.push_str(&s.to_ascii_lowercase());
            words.push(' ');
        }
    }
    if let Some(details) = err.get("details").and_then(|d| d.as_array()) {
        for d in details {
            if let Some(s) = d.get("reason").and_then(|v| v.as_str()) {
                words.push_str(&s.to_ascii_lowercase());
                words.push(' ');
            }
        }
    }
    let message = match err {
        serde_json::Value::String(s) => s.clone(),
        _ => err
            .get("message")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string(),
    };
    (words, message)
}

/// Classifies an in-band error object by its words (no status code to go by).
fn class_from_words(words: &str, message: &str) -> Option<ErrorClass> {
    let m = message.to_ascii_lowercase();
    let has = |needle: &str| words.contains(needle);
    if has("insufficient_quota")
        || has("billing")
        || m.contains("credit balance")
        || m.contains("exceeded your current quota")
        || m.contains("per day")
    {
        return Some(ErrorClass::QuotaExhausted);
    }
    if has("authentication")
        || has("invalid_api_key")
        || has("permission")
        || has("api_key_invalid")
        || has("unauthenticated")
        || m.contains("api key not valid")
        || m.contains("invalid api key")
        || m.contains("incorrect api key")
    {
        return Some(ErrorClass::AuthFailed);
    }
    if has("rate_limit") || has("resource_exhausted") {
        return Some(ErrorClass::RateLimited);
    }
    if has("overloaded")
        || has("server_error")
        || has("api_error")
        || has("internal")
        || has("unavailable")
        || has("timeout")
    {
        return Some(ErrorClass::UpstreamUnavailable);
    }
    if has("invalid_request")
        || has("not_found")
        || has("invalid_argument")
        || has("request_too_large")
    {
        return Some(ErrorClass::RequestInvalid);
    }
    None
}

/// Classifies an HTTP error response (status >= 300).
pub fn classify_status(status: u16, headers: &HeaderMap, body: &[u8], now: SystemTime) -> Failure {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let (words, message) = json.as_ref().map(error_words).unwrap_or_default();
    let by_words = class_from_words(&words, &message);
    let class = match status {
        401 | 403 => ErrorClass::AuthFailed,
        402 => ErrorClass::QuotaExhausted,
        429 => match by_words {
            Some(ErrorClass::QuotaExhausted) => ErrorClass::QuotaExhausted,
            _ => ErrorClass::RateLimited,
        },
        408 | 500..=599 => ErrorClass::UpstreamUnavailable,
        300..=399 => ErrorClass::UpstreamUnavailable,
        // Some vendors answer a bad key (Gemini) or an empty balance (Anthropic) with 400.
        400 => match by_words {
            Some(ErrorClass::AuthFailed) => ErrorClass::AuthFailed,
            Some(ErrorClass::QuotaExhausted) => ErrorClass::QuotaExhausted,
            _ => ErrorClass::RequestInvalid,
        },
        _ => ErrorClass::RequestInvalid,
    };
    let kind = if (300..400).contains(&status) {
        FailureKind::Redirect
    } else {
        FailureKind::Status(status)
    };
    let message = if message.is_empty() {
        if kind == FailureKind::Redirect {
            "the upstream answered with a redirect, which Fluxgate never follows".to_string()
        } else {
            format!("HTTP {status}")
        }
    } else {
        message
    };
    let retry_hint = match class {
        ErrorClass::RateLimited | ErrorClass::QuotaExhausted | ErrorClass::UpstreamUnavailable => {
            hints::retry_hint(headers, now)
        }
        _ => None,
    };
    Failure {
        class,
        kind,
        status: Some(status),
        message: scrub(&message),
        retry_hint,
    }
}

/// Classifies the body of a 200 response, or the first event of a 200 stream, that turned out
/// to be an error. Returns `None` when `value` holds no error.
pub fn classify_in_band(
    value: &serde_json::Value,
    headers: &HeaderMap,
    now: SystemTime,
) -> Option<Failure> {
    let is_error = value.get("type").and_then(|t| t.as_str()) == Some("error")
        || value.get("error").is_some_and(|e| !e.is_null())
        || value.get("type").and_then(|t| t.as_str()) == Some("response.failed");
    if !is_error {
        return None;
    }
    let inner = value
        .get("response")
        .filter(|_| value.get("type").and_then(|t| t.as_str()) == Some("response.failed"))
        .unwrap_or(value);
    let (words, message) = error_words(inner);
    let class = class_from_words(&words, &message).unwrap_or(ErrorClass::UpstreamUnavailable);
    let message = if message.is_empty() {
        "in-band error in a 200 response".to_string()
    } else {
        message
    };
    Some(Failure {
        class,
        kind: FailureKind::InBand,
        status: Some(200),
        message: scrub(&message),
        retry_hint: hints::retry_hint(headers, now),
    })
}

/// Shortens an upstream message and blanks any word that looks like a credential (long
/// letters-and-digits tokens, `sk-…`, `AIza…`), bare or wrapped in quotes or brackets.
///
/// This is the heuristic for text no known secret can be checked against (panics, webhook
/// errors). Text an upstream sent in answer to a request is first cleaned with the actual
/// key's [`crate::secrets::Redactor`], which catches the key in any form.
pub fn scrub(text: &str) -> String {
    let mut out = crate::secrets::blank_secret_words(text);
    if out.chars().count() > 300 {
        out = out.chars().take(300).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests;
