//! Turning executor results into HTTP responses in the client's dialect.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use fluxgate_core::exec::{ProxyError, ProxyResponse};
use fluxgate_core::formats::errors::{error_body, ErrorCode};
use fluxgate_core::formats::Dialect;

/// The dialect of errors for a path (used before the handler knows more).
pub fn dialect_for_path(path: &str) -> Dialect {
    if path.starts_with("/v1/messages") {
        Dialect::Anthropic
    } else if path.starts_with("/v1/responses") {
        Dialect::OpenaiResponses
    } else if path.starts_with("/v1beta/") {
        Dialect::Gemini
    } else {
        Dialect::OpenaiChat
    }
}

/// Fluxgate's own error in `dialect`.
pub fn error_response(
    dialect: Dialect,
    code: ErrorCode,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = error_body(dialect, code, message).to_string();
    let mut r = Response::new(Body::from(body));
    *r.status_mut() =
        StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = r.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("x-fluxgate-error", HeaderValue::from_static(code.as_str()));
    if let Some(secs) = retry_after {
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            h.insert("retry-after", v);
        }
    }
    r
}

/// An executor error: the upstream's own rejection when there is one, else ours.
pub fn proxy_error(dialect: Dialect, err: ProxyError) -> Response {
    if let Some((status, body)) = err.upstream {
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r.headers_mut().insert(
            "x-fluxgate-error",
            HeaderValue::from_static(err.code.as_str()),
        );
        return r;
    }
    error_response(dialect, err.code, &err.message, err.retry_after_secs)
}

/// A successful executor result.
pub fn proxy_response(resp: ProxyResponse) -> Response {
    match resp {
        ProxyResponse::Complete {
            status,
            headers,
            body,
        } => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            *r.headers_mut() = headers;
            r
        }
        ProxyResponse::Stream { headers, body } => {
            let s = futures_util::stream::unfold(body, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
            });
            let mut r = Response::new(Body::from_stream(s));
            *r.headers_mut() = headers;
            r.headers_mut()
                .insert("x-accel-buffering", HeaderValue::from_static("no"));
            r
        }
    }
}
