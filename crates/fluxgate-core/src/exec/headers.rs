//! Which headers cross the proxy, in each direction.
//!
//! Inbound credentials (`authorization`, `x-api-key`, `x-goog-api-key`, `api-key`) never go
//! upstream: the provider adds its own key. Hop-by-hop headers, cookies and anything that
//! names a host or a forwarding path are dropped, so no request header can steer the upstream
//! connection. Everything else the client sent (`anthropic-beta`, `anthropic-version`,
//! `openai-beta`, SDK telemetry headers, custom headers) passes unchanged.
//!
//! Back to the client go the upstream's headers except hop-by-hop ones and those that mean
//! something to a browser or an HTTP client rather than to the API answer: CORS grants
//! (`access-control-*`), `www-authenticate`, `location`, `refresh`, cookies. A value that
//! carries the key it was sent is blanked ([`redact`]).

use crate::formats::Dialect;
use crate::secrets::Redactor;
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
    // A client must not turn its POST into another method on the provider's API.
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "sec-fetch-site",
    "sec-fetch-mode",
    "sec-fetch-dest",
];

const DROP_DOWNSTREAM: &[&str] = &[
    "www-authenticate",
    "proxy-authenticate",
    "location",
    "content-location",
    "refresh",
    "clear-site-data",
    "content-security-policy",
    "set-cookie2",
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
        let n = name.as_str();
        if DROP_DOWNSTREAM.contains(&n) || n.starts_with("access-control-") {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream's headers with the key blanked out of every value that carries it.
pub fn redact(upstream: &HeaderMap, redactor: &Redactor) -> HeaderMap {
    if !upstream.values().any(|v| redactor.finds(v.as_bytes())) {
        return upstream.clone();
    }
    let mut out = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        let clean = match redactor.bytes(value.as_bytes()) {
            std::borrow::Cow::Borrowed(_) => value.clone(),
            std::borrow::Cow::Owned(v) => match HeaderValue::from_bytes(&v) {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.append(name.clone(), clean);
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

    #[test]
    fn method_overrides_never_go_upstream() {
        let mut h = HeaderMap::new();
        for k in [
            "x-http-method-override",
            "x-http-method",
            "x-method-override",
        ] {
            h.insert(
                HeaderName::from_static(k),
                HeaderValue::from_static("DELETE"),
            );
        }
        assert!(upstream_headers(&h).get("x-http-method-override").is_none());
        assert_eq!(
            upstream_headers(&h).len(),
            1,
            "only accept-encoding is left"
        );
    }

    #[test]
    fn browser_meaningful_upstream_headers_stay_behind() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-credentials", "true"),
            ("access-control-expose-headers", "x-a"),
            ("www-authenticate", "Bearer realm=x"),
            ("location", "https://evil.example/"),
            ("set-cookie", "a=b"),
            ("refresh", "0;url=https://evil.example/"),
            ("x-request-id", "req_1"),
            ("x-ratelimit-remaining-requests", "9"),
        ] {
            h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        let out = downstream_headers(&h);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["x-request-id", "x-ratelimit-remaining-requests"]);
    }

    #[test]
    fn header_values_carrying_the_key_are_blanked() {
        let key = "sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4";
        let r = Redactor::new(key);
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("x-echo"),
            HeaderValue::from_str(&format!("key <{key}>")).expect("value"),
        );
        h.insert(
            HeaderName::from_static("x-other"),
            HeaderValue::from_static("fine"),
        );
        let out = redact(&h, &r);
        assert_eq!(out["x-echo"], "key <***>");
        assert_eq!(out["x-other"], "fine");
    }
}
