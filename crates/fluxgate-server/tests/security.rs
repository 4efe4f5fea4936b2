//! Host, Origin and token checks on every route, and request limits, over raw sockets so every
//! header is exactly what an attacker would send.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::Harness;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONFIG: &str = r#"
[limits]
max_body_mb = 1

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }]

[routes.m]
targets = ["oa/m"]

[routes.c]
targets = ["ant/c"]
"#;

/// Sends one raw HTTP/1.1 request and returns the status code.
async fn raw(addr: &str, method: &str, path: &str, headers: &[(&str, String)], body: &str) -> u16 {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    ));
    s.write_all(req.as_bytes()).await.expect("write");
    // Only the status line is needed (and a stream such as the events endpoint never ends).
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut chunk = [0u8; 1024];
        while !buf.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&buf);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

struct Route {
    method: &'static str,
    path: &'static str,
    body: &'static str,
    admin: bool,
}

const ROUTES: &[Route] = &[
    Route {
        method: "POST",
        path: "/v1/chat/completions",
        body: r#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#,
        admin: false,
    },
    Route {
        method: "POST",
        path: "/v1/responses",
        body: r#"{"model":"m","input":"x"}"#,
        admin: false,
    },
    Route {
        method: "POST",
        path: "/v1/messages",
        body: r#"{"model":"c","max_tokens":1,"messages":[{"role":"user","content":"x"}]}"#,
        admin: false,
    },
    Route {
        method: "POST",
        path: "/v1/messages/count_tokens",
        body: r#"{"model":"c","messages":[{"role":"user","content":"x"}]}"#,
        admin: false,
    },
    Route {
        method: "POST",
        path: "/v1/embeddings",
        body: r#"{"model":"m","input":"x"}"#,
        admin: false,
    },
    Route {
        method: "GET",
        path: "/v1/models",
        body: "",
        admin: false,
    },
    Route {
        method: "GET",
        path: "/admin/api/keys",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/requests",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/keys/oa/o1/revive",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/tokens",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/tokens",
        body: r#"{"name":"made-by-admin"}"#,
        admin: true,
    },
    Route {
        method: "DELETE",
        path: "/admin/api/tokens/victim",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/explain?model=m",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/explain",
        body: r#"{"request":{"model":"m","messages":[{"role":"user","content":"hi"}]}}"#,
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/budgets",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/usage",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/events",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/metrics",
        body: "",
        admin: true,
    },
    Route {
        method: "GET",
        path: "/admin/api/config",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/providers",
        body: r#"{"name":"newp","kind":"openai"}"#,
        admin: true,
    },
    Route {
        method: "PATCH",
        path: "/admin/api/providers/newp",
        body: r#"{"enabled":false}"#,
        admin: true,
    },
    Route {
        method: "PUT",
        path: "/admin/api/keys/oa/o9",
        body: r#"{"secret":"sk-security-table-0000000000"}"#,
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/keys/oa/o9/test",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/keys/oa/o9/disable",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/keys/oa/o9/enable",
        body: "",
        admin: true,
    },
    Route {
        method: "DELETE",
        path: "/admin/api/keys/oa/o9",
        body: "",
        admin: true,
    },
    Route {
        method: "PUT",
        path: "/admin/api/routes/table-route",
        body: r#"{"targets":["oa/gpt-4o"]}"#,
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/routes/table-route/preview",
        body: r#"{"targets":["oa/gpt-4o","ant/claude-haiku-4-5"]}"#,
        admin: true,
    },
    Route {
        method: "DELETE",
        path: "/admin/api/routes/table-route",
        body: "",
        admin: true,
    },
    Route {
        method: "DELETE",
        path: "/admin/api/providers/newp",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/pause",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/resume",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/setup",
        body: r#"{"client":"claude-code"}"#,
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/console/login",
        body: "",
        admin: true,
    },
    Route {
        method: "POST",
        path: "/admin/api/logout",
        body: "",
        admin: true,
    },
];

#[tokio::test]
async fn host_origin_and_token_checks_on_every_route() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    h.gateway.tokens.create("victim").expect("token");
    let addr = h.base.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().expect("port").to_string();
    let good_host = format!("127.0.0.1:{port}");
    let bad_hosts = [
        "evil.example".to_string(),
        format!("127.0.0.1.nip.io:{port}"),
        format!("localhost.evil.example:{port}"),
        format!("foo.local:{port}"),
        format!("192.168.1.20:{port}"),
        "127.0.0.1:1".to_string(),
    ];
    let bad_origins = [
        "null".to_string(),
        "http://localhost:3000".to_string(),
        "https://evil.example".to_string(),
        format!("http://127.0.0.1:{port}.evil.example"),
    ];
    let mut checked = 0;
    for r in ROUTES {
        let right = if r.admin {
            h.admin_token.clone()
        } else {
            h.token.clone()
        };
        let swapped = if r.admin {
            h.token.clone()
        } else {
            h.admin_token.clone()
        };
        let auth = |t: &str| ("authorization", format!("Bearer {t}"));
        let ct = ("content-type", "application/json".to_string());
        for host in &bad_hosts {
            let code = raw(
                &addr,
                r.method,
                r.path,
                &[("host", host.clone()), auth(&right), ct.clone()],
                r.body,
            )
            .await;
            assert_eq!(code, 403, "{} {} with Host {host}", r.method, r.path);
            checked += 1;
        }
        for origin in &bad_origins {
            let code = raw(
                &addr,
                r.method,
                r.path,
                &[
                    ("host", good_host.clone()),
                    ("origin", origin.clone()),
                    auth(&right),
                    ct.clone(),
                ],
                r.body,
            )
            .await;
            assert_eq!(code, 403, "{} {} with Origin {origin}", r.method, r.path);
            // The "simple" cross-site POST a browser sends without a preflight.
            let code = raw(
                &addr,
                r.method,
                r.path,
                &[
                    ("host", good_host.clone()),
                    ("origin", origin.clone()),
                    ("content-type", "text/plain".into()),
                ],
                r.body,
            )
            .await;
            assert_eq!(
                code, 403,
                "{} {} text/plain from {origin}",
                r.method, r.path
            );
            checked += 2;
        }
        let code = raw(
            &addr,
            r.method,
            r.path,
            &[
                ("host", good_host.clone()),
                ("sec-fetch-site", "cross-site".into()),
                auth(&right),
            ],
            r.body,
        )
        .await;
        assert_eq!(code, 403, "{} {} cross-site fetch", r.method, r.path);
        for headers in [vec![ct.clone()], vec![auth("fgk_000000000000_0000000000000000000000000000000000000000000000000000000000000000"), ct.clone()], vec![auth(&swapped), ct.clone()]] {
            let code = raw(&addr, r.method, r.path, &[vec![("host", good_host.clone())], headers.clone()].concat(), r.body).await;
            assert_eq!(code, 401, "{} {} with {:?}", r.method, r.path, headers.iter().map(|h| h.0).collect::<Vec<_>>());
            checked += 1;
        }
        // And with everything right, the request is served.
        let code = raw(
            &addr,
            r.method,
            r.path,
            &[
                ("host", good_host.clone()),
                ("origin", format!("http://127.0.0.1:{port}")),
                auth(&right),
                ct.clone(),
            ],
            r.body,
        )
        .await;
        assert!(
            (200..300).contains(&code),
            "{} {} with the right token: {code}",
            r.method,
            r.path
        );
    }
    assert!(checked > 100);
    // Only the successful requests reached the upstream (the five proxy routes and the key
    // test).
    assert_eq!(h.fake.log().len(), 6, "{:#?}", h.fake.log());
    for open in ["/healthz", "/"] {
        assert_eq!(
            raw(&addr, "GET", open, &[("host", good_host.clone())], "").await,
            200
        );
        assert_eq!(
            raw(&addr, "GET", open, &[("host", "evil.example".into())], "").await,
            403
        );
    }
    assert_eq!(
        raw(&addr, "HEAD", "/", &[("host", good_host.clone())], "").await,
        200
    );
}

#[tokio::test]
async fn body_and_header_limits() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    // A body over max_body_mb, sent chunked with no length up front.
    let big = vec![b'x'; 3 * 1024 * 1024];
    let stream = futures_util::stream::iter(
        big.chunks(64 * 1024)
            .map(|c| Ok::<_, std::io::Error>(bytes::Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 413);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "payload_too_large");
    // Too many headers, and one header too large.
    let addr = h.base.trim_start_matches("http://").to_string();
    let host = ("host", addr.clone());
    let many: Vec<(&str, String)> = std::iter::once(host.clone())
        .chain((0..150).map(|_| ("x-filler", "1".to_string())))
        .collect();
    assert_eq!(raw(&addr, "GET", "/healthz", &many, "").await, 431);
    assert_eq!(
        raw(
            &addr,
            "GET",
            "/healthz",
            &[host.clone(), ("x-big", "y".repeat(100 * 1024))],
            ""
        )
        .await,
        431
    );
    assert!(h.fake.log().is_empty());
}

#[tokio::test]
async fn no_request_can_choose_the_upstream_host() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    let evil = fluxgate_testkit::FakeUpstream::start().await;
    let evil_url = evil.url();
    let addr = h.base.trim_start_matches("http://").to_string();
    let auth = ("authorization", format!("Bearer {}", h.token));
    let ct = ("content-type", "application/json".to_string());
    let host = ("host", addr.clone());
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"api_base":"{evil_url}/v1","base_url":"{evil_url}/v1","api_host":"{evil_url}","custom_llm_provider":"openai","extra_body":{{"base_url":"{evil_url}"}}}}"#
    );
    let mut sent = 0;
    // Body fields, query parameters and headers that other gateways honour.
    for (path, extra) in [
        ("/v1/chat/completions", vec![]),
        (
            "/v1/chat/completions?api_base=EVIL/v1&base_url=EVIL/v1",
            vec![],
        ),
        (
            "/v1/chat/completions",
            vec![
                ("x-forwarded-host", evil.addr.to_string()),
                ("forwarded", format!("host={}", evil.addr)),
                ("x-forwarded-proto", "http".to_string()),
                ("x-original-url", format!("{evil_url}/v1/chat/completions")),
                ("x-api-base", format!("{evil_url}/v1")),
                ("x-base-url", format!("{evil_url}/v1")),
                ("openai-base-url", format!("{evil_url}/v1")),
            ],
        ),
    ] {
        let path = path.replace("EVIL", &evil_url);
        let headers: Vec<(&str, String)> = [host.clone(), auth.clone(), ct.clone()]
            .into_iter()
            .chain(extra)
            .collect();
        assert_eq!(
            raw(&addr, "POST", &path, &headers, &body).await,
            200,
            "{path}"
        );
        sent += 1;
    }
    // An absolute-form request target naming another host, as sent to a forward proxy.
    let target = format!("{evil_url}/v1/chat/completions");
    let code = raw(
        &addr,
        "POST",
        &target,
        &[host.clone(), auth.clone(), ct.clone()],
        &body,
    )
    .await;
    assert_eq!(code, 403, "an absolute-form target naming another host");
    // Our own address in absolute form is fine.
    let own = format!("http://{addr}/v1/chat/completions");
    let code = raw(
        &addr,
        "POST",
        &own,
        &[host.clone(), auth.clone(), ct.clone()],
        &body,
    )
    .await;
    assert_eq!(code, 200, "an absolute-form target naming this server");
    sent += 1;
    // Two Host headers (the second this server's), or two Origins: refused.
    let code = raw(
        &addr,
        "POST",
        "/v1/chat/completions",
        &[
            ("host", "evil.example".to_string()),
            host.clone(),
            auth.clone(),
            ct.clone(),
        ],
        &body,
    )
    .await;
    assert_eq!(code, 403, "a repeated Host");
    let code = raw(
        &addr,
        "POST",
        "/v1/chat/completions",
        &[
            host.clone(),
            ("origin", format!("http://{addr}")),
            ("origin", "https://evil.example".to_string()),
            auth.clone(),
            ct.clone(),
        ],
        &body,
    )
    .await;
    assert_eq!(code, 403, "a repeated Origin");
    assert!(
        evil.log().is_empty(),
        "the other host saw {:#?}",
        evil.log()
    );
    let log = h.fake.log();
    assert_eq!(log.len(), sent);
    for a in &log {
        assert_eq!(a.path, "/v1/chat/completions");
        assert!(!a.headers.contains_key("x-forwarded-host"), "{a:?}");
    }
}

/// The open routes keep the Host and Origin checks: the CLI's challenge endpoint and the
/// console's login page answer only this server's own address, and the challenge endpoint a
/// foreign Origin never.
#[tokio::test]
async fn open_routes_keep_the_host_and_origin_checks() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let addr = h.base.trim_start_matches("http://").to_string();
    let body = format!(r#"{{"challenge":"{}"}}"#, "ab".repeat(16));
    let ct = ("content-type", "application/json".to_string());
    let own = ("host", addr.clone());
    assert_eq!(
        raw(
            &addr,
            "POST",
            "/admin/api/hello",
            &[own.clone(), ct.clone()],
            &body
        )
        .await,
        200
    );
    for host in ["evil.example", "127.0.0.1.nip.io", "localhost:1"] {
        let hh = ("host", host.to_string());
        assert_eq!(
            raw(
                &addr,
                "POST",
                "/admin/api/hello",
                &[hh.clone(), ct.clone()],
                &body
            )
            .await,
            403
        );
        assert_eq!(
            raw(&addr, "GET", "/admin/login?code=00", &[hh], "").await,
            403
        );
    }
    for origin in ["null", "https://evil.example", "http://localhost:3000"] {
        let o = ("origin", origin.to_string());
        let code = raw(
            &addr,
            "POST",
            "/admin/api/hello",
            &[own.clone(), ct.clone(), o],
            &body,
        )
        .await;
        assert_eq!(code, 403, "{origin}");
    }
    // A cross-site navigation to the console's pages is fine (they hold no data) ...
    let xs = ("sec-fetch-site", "cross-site".to_string());
    assert_eq!(
        raw(
            &addr,
            "GET",
            "/admin/login?code=00",
            &[own.clone(), xs.clone()],
            ""
        )
        .await,
        401
    );
    // ... to the admin API it is not.
    let bearer = ("authorization", format!("Bearer {}", h.admin_token));
    assert_eq!(
        raw(
            &addr,
            "GET",
            "/admin/api/keys",
            &[own.clone(), bearer.clone()],
            ""
        )
        .await,
        200
    );
    assert_eq!(
        raw(&addr, "GET", "/admin/api/keys", &[own, bearer, xs], "").await,
        403
    );
}
