//! Which headers cross the proxy, in each direction.
//!
//! Inbound credentials (`authorization`, `x-api-key`, `x-goog-api-key`, `api-key`) never go
//! upstream: the provider adds its own key. Hop-by-hop headers, cookies and anything that
//! names a host or a forwarding path are dropped, so no request header can steer the upstream
//! connection. Everything else the client sent (`anthropic-beta`, `anthropic-version`,
//! `openai-beta`, SDK telemetry headers, custom headers) passes unchanged.

use crate::formats::Dialect;
use http::header::{HeaderMap, HeaderName, HeaderValue};

const DROP_UPSTREAM: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
    "cookie",
    "accept-encoding",
    "origin",
    "referer",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
];

const DROP_DOWNSTREAM: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "content-encoding",
    "set-cookie",
    "te",
    "trailer",
    "upgrade",
    "alt-svc",
    "strict-transport-security",
];

/// The client headers that go upstream.
pub fn upstream_headers(client: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(client.len());
    for (name, value) in client {
        let n = name.as_str();
        if DROP_UPSTREAM.contains(&n) || n.starts_with("x-fluxgate-") {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    // Streams must arrive uncompressed: Fluxgate reads every event.
    out.insert(
        http::header::ACCEPT_ENCODING,
        HeaderValue::from_static("identity"),
    );
    out
}

/// The upstream response headers that go back to the client.
pub fn downstream_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if DROP_DOWNSTREAM.contains(&name.as_str()) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Adds Fluxgate's own response headers saying who served the request.
pub fn annotate(headers: &mut HeaderMap, provider: &str, key_id: &str, attempts: u32) {
    let put = |h: &mut HeaderMap, name: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    put(headers, "x-fluxgate-provider", provider);
    put(headers, "x-fluxgate-key", key_id);
    put(headers, "x-fluxgate-attempts", &attempts.to_string());
}

/// `x-fluxgate-translated: anthropic->openai` on a translated answer.
pub fn annotate_translation(headers: &mut HeaderMap, client: Dialect, upstream: Dialect) {
    let v = format!("{}->{}", client.as_str(), upstream.as_str());
    if let Ok(v) = HeaderValue::from_str(&v) {
        headers.insert(HeaderName::from_static("x-fluxgate-translated"), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hops_never_go_upstream() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("authorization", "Bearer fgk_client"),
            ("x-api-key", "fgk_client"),
            ("x-goog-api-key", "fgk_client"),
            ("host", "127.0.0.1:8414"),
            ("x-forwarded-host", "evil.example"),
            ("cookie", "a=b"),
            ("accept-encoding", "gzip"),
            (
                "anthropic-beta",
                "prompt-caching-2024-07-31,tools-2024-05-16",
            ),
            ("anthropic-version", "2023-06-01"),
            ("x-custom", "kept"),
            ("x-fluxgate-debug", "dropped"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = upstream_headers(&h);
        for gone in [
            "authorization",
            "x-api-key",
            "x-goog-api-key",
            "host",
            "x-forwarded-host",
            "cookie",
            "x-fluxgate-debug",
        ] {
            assert!(!out.contains_key(gone), "{gone} leaked upstream");
        }
        assert_eq!(
            out["anthropic-beta"],
            "prompt-caching-2024-07-31,tools-2024-05-16"
        );
        assert_eq!(out["anthropic-version"], "2023-06-01");
        assert_eq!(out["x-custom"], "kept");
        assert_eq!(out["accept-encoding"], "identity");
    }
}
