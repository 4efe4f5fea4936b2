//! The errors Fluxgate itself returns, in the shape of the dialect the client spoke.
//!
//! [`ErrorCode`] is a closed set; the HTTP status comes from one exhaustive `match`. A stream
//! that fails after its first byte ends with [`stream_error_event`], never with a success
//! terminator.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::Dialect;

/// Every error code a client can receive from Fluxgate itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing or wrong client token.
    Unauthorized,
    /// Host or Origin check failed.
    Forbidden,
    /// No route or provider serves the requested model.
    NoRoute,
    /// The request itself is malformed (not JSON, no model, ...).
    InvalidRequest,
    /// An upstream rejected the request as invalid (its own message is kept).
    RequestInvalid,
    PayloadTooLarge,
    /// The request body did not arrive within `limits.body_timeout`.
    RequestTimeout,
    /// Every candidate key is out of rotation; `Retry-After` says until when.
    AllKeysCooling,
    /// Keys could not be read from the OS keychain (locked or missing).
    KeychainUnavailable,
    /// Every attempt failed with an upstream error.
    UpstreamUnavailable,
    /// Every attempt failed and the last one timed out.
    UpstreamTimeout,
    /// The attempt budget ran out before any candidate succeeded.
    AttemptsExhausted,
    /// A stream broke after it had started; the answer is incomplete.
    StreamInterrupted,
    /// Sending would break a `[[budgets]]` limit; refused before it was sent.
    BudgetExceeded,
    /// The router is shutting down.
    ShuttingDown,
    /// The user paused routing (tray or console); nothing is sent upstream until resumed.
    Paused,
    NotFound,
    Internal,
    /// The client went away before its answer ended. Never sent (nobody is listening); it is
    /// how such a request is recorded.
    ClientClosed,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::RequestInvalid => "request_invalid",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::AllKeysCooling => "all_keys_cooling",
            ErrorCode::KeychainUnavailable => "keychain_unavailable",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::AttemptsExhausted => "attempts_exhausted",
            ErrorCode::StreamInterrupted => "stream_interrupted",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Paused => "routing_paused",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal_error",
            ErrorCode::ClientClosed => "client_closed",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NoRoute | ErrorCode::NotFound => 404,
            ErrorCode::InvalidRequest | ErrorCode::RequestInvalid => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RequestTimeout => 408,
            // Payment Required: SDKs do not retry it (a 429 would be retried for nothing until
            // the period resets).
            ErrorCode::BudgetExceeded => 402,
            ErrorCode::AllKeysCooling
            | ErrorCode::KeychainUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::Paused => 503,
            ErrorCode::UpstreamUnavailable
            | ErrorCode::AttemptsExhausted
            | ErrorCode::StreamInterrupted => 502,
            ErrorCode::UpstreamTimeout => 504,
            ErrorCode::Internal => 500,
            // nginx's "client closed request".
            ErrorCode::ClientClosed => 499,
        }
    }

    /// The `status` word Gemini uses for the same condition.
    fn gemini_status(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "PERMISSION_DENIED",
            ErrorCode::NoRoute | ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidRequest | ErrorCode::RequestInvalid | ErrorCode::PayloadTooLarge => {
                "INVALID_ARGUMENT"
            }
            ErrorCode::AllKeysCooling
            | ErrorCode::KeychainUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::Paused
            | ErrorCode::UpstreamUnavailable
            | ErrorCode::AttemptsExhausted => "UNAVAILABLE",
            ErrorCode::UpstreamTimeout | ErrorCode::RequestTimeout => "DEADLINE_EXCEEDED",
            ErrorCode::StreamInterrupted => "ABORTED",
            ErrorCode::BudgetExceeded => "RESOURCE_EXHAUSTED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ClientClosed => "CANCELLED",
        }
    }
}

/// The JSON body of an error response in `dialect`.
pub fn error_body(dialect: Dialect, code: ErrorCode, message: &str) -> serde_json::Value {
    match dialect {
        Dialect::OpenaiChat | Dialect::OpenaiResponses => json!({
            "error": {"message": message, "type": code.as_str(), "code": code.as_str(), "param": null}
        }),
        Dialect::Anthropic => json!({
            "type": "error",
            "error": {"type": code.as_str(), "message": message}
        }),
        Dialect::Gemini => json!({
            "error": {
                "code": code.status(),
                "message": message,
                "status": code.gemini_status(),
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code.as_str(), "domain": "fluxgate"}]
            }
        }),
    }
}

/// The event that ends a broken stream in `dialect`. For the Responses API,
/// `sequence_number` continues the upstream's numbering.
pub fn stream_error_event(
    dialect: Dialect,
    code: ErrorCode,
    message: &str,
    sequence_number: Option<u64>,
) -> Bytes {
    let text = match dialect {
        Dialect::OpenaiChat | Dialect::Gemini => {
            format!("data: {}\n\n", error_body(dialect, code, message))
        }
        Dialect::OpenaiResponses => {
            let body = json!({
                "type": "error",
                "code": code.as_str(),
                "message": message,
                "param": null,
                "sequence_number": sequence_number.unwrap_or(0),
            });
            format!("event: error\ndata: {body}\n\n")
        }
        Dialect::Anthropic => format!(
            "event: error\ndata: {}\n\n",
            error_body(dialect, code, message)
        ),
    };
    Bytes::from(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_per_dialect() {
        let o = error_body(Dialect::OpenaiChat, ErrorCode::AllKeysCooling, "wait");
        assert_eq!(o["error"]["type"], "all_keys_cooling");
        let a = error_body(Dialect::Anthropic, ErrorCode::NoRoute, "none");
        assert_eq!(a["type"], "error");
        assert_eq!(a["error"]["type"], "no_route");
        let g = error_body(Dialect::Gemini, ErrorCode::UpstreamTimeout, "slow");
        assert_eq!(g["error"]["code"], 504);
        assert_eq!(g["error"]["status"], "DEADLINE_EXCEEDED");
    }

    #[test]
    fn stream_errors_never_look_complete() {
        for d in [
            Dialect::OpenaiChat,
            Dialect::OpenaiResponses,
            Dialect::Anthropic,
            Dialect::Gemini,
        ] {
            let ev = stream_error_event(d, ErrorCode::StreamInterrupted, "cut", Some(7));
            let text = std::str::from_utf8(&ev).expect("utf8");
            assert!(text.ends_with("\n\n"));
            for terminator in ["[DONE]", "message_stop", "STOP", "response.completed"] {
                assert!(!text.contains(terminator), "{d:?}: {text}");
            }
            assert!(text.contains("stream_interrupted"));
        }
        let r = stream_error_event(
            Dialect::OpenaiResponses,
            ErrorCode::StreamInterrupted,
            "cut",
            Some(7),
        );
        assert!(std::str::from_utf8(&r)
            .expect("utf8")
            .contains("\"sequence_number\":7"));
    }
}
