//! Panics are bugs, but they must not leak secrets or kill a connection without an answer.
//!
//! - [`install_hook`] replaces the default panic hook (which prints the payload to stderr as
//!   is) with one that logs the location and the payload with anything key-shaped blanked.
//! - [`catch_panic`], the outermost middleware, turns a panic in a request handler into a
//!   typed `500 internal_error` instead of a dropped connection.

use std::panic::AssertUnwindSafe;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fluxgate_core::formats::errors::{error_body, ErrorCode};
use fluxgate_core::formats::Dialect;
use fluxgate_core::health::scrub;
use futures_util::FutureExt;

/// Logs panics through `tracing` with key-shaped words blanked. Idempotent enough: a second
/// call replaces the hook with an identical one.
pub fn install_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, detail = %scrub(&payload), "panic (a bug; please report it)");
    }));
}

/// Answers a request whose handler panicked with a typed 500.
pub async fn catch_panic(req: Request, next: Next) -> Response {
    match AssertUnwindSafe(next.run(req)).catch_unwind().await {
        Ok(resp) => resp,
        Err(_) => {
            let code = ErrorCode::Internal;
            let body = error_body(
                Dialect::OpenaiChat,
                code,
                "Fluxgate hit an internal error (a bug) while handling this request; nothing was lost, and it is in the log",
            );
            (
                axum::http::StatusCode::from_u16(code.status())
                    .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
                axum::Json(body),
            )
                .into_response()
        }
    }
}
