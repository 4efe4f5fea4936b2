//! The errors Fluxgate itself returns, in the shape of the dialect the client spoke.
//!
//! [`ErrorCode`] is a closed set; the HTTP status comes from one exhaustive `match`. A stream
//! that fails after its first byte ends with [`stream_error_event`], never with a success
//! terminator.

use bytes::Bytes;
use serde_json::json;

use super::Dialect;
pub use crate::vocab::ErrorCode;

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
