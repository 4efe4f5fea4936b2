//! Host and Origin checks, and token authentication.
//!
//! DNS rebinding and cross-site requests are stopped before routing: a request is served only
//! when its `Host` is this server's own loopback address and port, and when it carries no
//! foreign `Origin` (`null` and other localhost ports are foreign) and is not marked
//! `Sec-Fetch-Site: cross-site`. No CORS header is ever sent, so browsers on other origins
//! cannot read answers either. The checks fail closed.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fluxgate_core::formats::errors::ErrorCode;

use crate::respond::{dialect_for_path, error_response};
use crate::state::AppState;

/// The hosts and origins this server answers to.
#[derive(Debug, Clone)]
pub struct AllowList {
    hosts: Vec<String>,
    origins: Vec<String>,
    /// With `allow_lan`, any Host is accepted (tokens stay required).
    any_host: bool,
}

impl AllowList {
    /// For a server bound to `port` on loopback (or on the LAN when `any_host`).
    pub fn for_port(port: u16, any_host: bool) -> Self {
        let names = [
            "127.0.0.1".to_string(),
            "localhost".to_string(),
            "[::1]".to_string(),
        ];
        AllowList {
            hosts: names.iter().map(|n| format!("{n}:{port}")).collect(),
            origins: names.iter().map(|n| format!("http://{n}:{port}")).collect(),
            any_host,
        }
    }

    pub fn host_ok(&self, host: Option<&str>) -> bool {
        match host {
            Some(h) => self.any_host || self.hosts.iter().any(|a| a.eq_ignore_ascii_case(h)),
            None => false,
        }
    }

    pub fn origin_ok(&self, headers: &HeaderMap) -> bool {
        if headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"))
        {
            return false;
        }
        self.origin_header_ok(headers)
    }

    /// The `Origin` check alone: absent, or this server's own.
    pub fn origin_header_ok(&self, headers: &HeaderMap) -> bool {
        match headers.get("origin") {
            None => true,
            Some(o) => o
                .to_str()
                .ok()
                .is_some_and(|o| self.origins.iter().any(|a| a.eq_ignore_ascii_case(o))),
        }
    }
}

fn forbidden(path: &str, why: &str) -> Response {
    error_response(dialect_for_path(path), ErrorCode::Forbidden, why, None)
}

/// Whether the request's headers exceed [`crate::serve::MAX_HEADERS`] or
/// [`crate::serve::MAX_HEADER_BYTES`]. hyper enforces both while headers are still arriving;
/// this also catches a head that arrived whole in one read.
fn headers_too_large(headers: &HeaderMap) -> bool {
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    headers.len() > crate::serve::MAX_HEADERS || bytes > crate::serve::MAX_HEADER_BYTES
}

/// Layer 1: header limits, Host and Origin.
pub async fn guard(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if headers_too_large(req.headers()) {
        return (
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "request headers too large\n",
        )
            .into_response();
    }
    let path = req.uri().path().to_string();
    // One Host and at most one Origin: with two, which one a check reads and which one a
    // later layer trusts could differ.
    if req.headers().get_all("host").iter().count() > 1
        || req.headers().get_all("origin").iter().count() > 1
    {
        tracing::warn!(path = %path, "refused a request with a repeated Host or Origin header");
        return forbidden(
            &path,
            "a request may carry one Host header and at most one Origin",
        );
    }
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()));
    // An absolute-form target (`POST http://other/... HTTP/1.1`, as sent to a forward proxy)
    // names a host of its own, which must pass the same check.
    let target_ok = req
        .uri()
        .authority()
        .is_none_or(|a| state.allow.host_ok(Some(a.as_str())));
    if !state.allow.host_ok(host.as_deref()) || !target_ok {
        tracing::warn!(path = %path, "refused a request for a foreign Host (DNS rebinding guard)");
        return forbidden(
            &path,
            "this Fluxgate only answers requests addressed to its own loopback address and port",
        );
    }
    // The console's pages hold no data and may be reached by a top-level navigation from
    // anywhere (a login link opened from a file, a bookmark); `Sec-Fetch-Site` alone does not
    // refuse them. A foreign Origin still does, and the admin API keeps every check.
    let page = matches!(
        *req.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    ) && (path == "/admin" || path.starts_with("/admin/"))
        && !path.starts_with("/admin/api/");
    let origin_ok = if page {
        state.allow.origin_header_ok(req.headers())
    } else {
        state.allow.origin_ok(req.headers())
    };
    if !origin_ok {
        tracing::warn!(path = %path, "refused a cross-origin request");
        return forbidden(&path, "cross-origin requests are not allowed");
    }
    next.run(req).await
}

/// The token a client presented, from whichever header its SDK uses.
pub fn presented_token(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some(t) = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
        {
            return Some(t.trim());
        }
    }
    for h in ["x-api-key", "x-goog-api-key"] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            return Some(v.trim());
        }
    }
    None
}

/// The verified client (its token's name and limits): the proxy routes' extractor, which
/// refuses a request without a valid token, or with an expired one.
#[derive(Debug, Clone)]
pub struct ClientName(pub fluxgate_core::tokens::Client);

/// Layer 3 (proxy): a valid client token. An extractor rather than a middleware layer: it
/// runs at the same point, without boxing the whole request future once more.
impl FromRequestParts<Arc<AppState>> for ClientName {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        use fluxgate_core::tokens::TokenRefusal;
        let checked = presented_token(&parts.headers)
            .ok_or(TokenRefusal::Unknown)
            .and_then(|t| state.gateway.tokens.check(t));
        match checked {
            Ok(c) => Ok(ClientName(c)),
            Err(TokenRefusal::Unknown) => Err(error_response(
                dialect_for_path(parts.uri.path()),
                ErrorCode::Unauthorized,
                "a Fluxgate client token is required (make one with `fluxgate token new NAME` and use it as the API key)",
                None,
            )),
            Err(TokenRefusal::Expired { name, expires_ms }) => Err(error_response(
                dialect_for_path(parts.uri.path()),
                ErrorCode::Unauthorized,
                &format!(
                    "client token `{name}` expired at {}; ask for a new one",
                    fluxgate_core::tokens::utc_minute(expires_ms)
                ),
                None,
            )),
        }
    }
}

/// Layer 3 (admin): the admin token.
pub async fn admin_auth(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .is_some_and(|t| state.admin.verify(t.trim()));
    // A console session: the cookie (which any local port the browser visits receives) and
    // the session's secret header (which only the console's own origin holds), together. The
    // guard has already refused a foreign Origin; a write must also *carry* the console's
    // Origin (browsers send it on every fetch that is not a GET).
    let session = !bearer
        && crate::console::has_session(&state, req.headers())
        && (req.method() == axum::http::Method::GET || req.headers().contains_key("origin"));
    if bearer || session {
        next.run(req).await
    } else {
        let mut r = crate::admin_error::error(
            crate::admin_error::AdminError::Unauthorized,
            "the admin token is required (or open the console from the tray menu or with `fluxgate console`)",
        );
        r.headers_mut().insert(
            "www-authenticate",
            axum::http::HeaderValue::from_static("Bearer"),
        );
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hosts() {
        let a = AllowList::for_port(8414, false);
        for ok in [
            "127.0.0.1:8414",
            "localhost:8414",
            "[::1]:8414",
            "LOCALHOST:8414",
        ] {
            assert!(a.host_ok(Some(ok)), "{ok}");
        }
        for bad in [
            "evil.example",
            "127.0.0.1.nip.io:8414",
            "localhost.evil.example:8414",
            "foo.local:8414",
            "192.168.1.5:8414",
            "127.0.0.1:8415",
            "127.0.0.1",
            "localhost",
        ] {
            assert!(!a.host_ok(Some(bad)), "{bad}");
        }
        assert!(!a.host_ok(None));
        assert!(AllowList::for_port(8414, true).host_ok(Some("192.168.1.5:8414")));
    }

    #[test]
    fn origins() {
        let a = AllowList::for_port(8414, false);
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert!(a.origin_ok(&h(&[])));
        assert!(a.origin_ok(&h(&[("origin", "http://127.0.0.1:8414")])));
        assert!(a.origin_ok(&h(&[("sec-fetch-site", "same-origin")])));
        for bad in [
            "null",
            "http://localhost:3000",
            "https://evil.example",
            "http://127.0.0.1:8414.evil.example",
        ] {
            let mut m = HeaderMap::new();
            m.insert("origin", HeaderValue::from_static(bad));
            assert!(!a.origin_ok(&m), "{bad}");
        }
        assert!(!a.origin_ok(&h(&[("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn token_headers() {
        let mut m = HeaderMap::new();
        m.insert("authorization", HeaderValue::from_static("Bearer fgk_a"));
        assert_eq!(presented_token(&m), Some("fgk_a"));
        let mut m = HeaderMap::new();
        m.insert("x-api-key", HeaderValue::from_static("fgk_b"));
        assert_eq!(presented_token(&m), Some("fgk_b"));
        let mut m = HeaderMap::new();
        m.insert("x-goog-api-key", HeaderValue::from_static("fgk_c"));
        assert_eq!(presented_token(&m), Some("fgk_c"));
        assert_eq!(presented_token(&HeaderMap::new()), None);
    }
}
