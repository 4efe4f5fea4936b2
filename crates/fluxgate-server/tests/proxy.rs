//! The proxy end to end, in process: real sockets, the real server, a fake upstream.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::{body_text, Harness};
use fluxgate_testkit::Fault;
use serde_json::json;

const POOL: &str = r#"
[providers.oa]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "dead" }, { id = "limited" }, { id = "good" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }, { id = "a2" }]

[routes."gpt-4o"]
targets = ["oa/upstream-model"]

[routes."claude-x"]
targets = ["ant/claude-real"]
"#;

const POOL_KEYS: &[&str] = &["oa/dead", "oa/limited", "oa/good", "ant/a1", "ant/a2"];

async fn pool() -> Harness {
    Harness::start(POOL, POOL_KEYS, &["oa/dead"]).await
}

#[tokio::test]
async fn same_dialect_passthrough_keeps_everything_but_model_and_auth() {
    let h = pool().await;
    let body = json!({"model": "claude-x", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "unknown_field": {"nested": [1, 2]}, "metadata": {"user_id": "u"}});
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &h.token)
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
        )
        .header("x-custom", "kept")
        .header("x-test-id", "t1")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fluxgate-provider"], "ant");
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["content"][0]["text"], "ok from a1");
    let log = h.fake.log();
    assert_eq!(log.len(), 1);
    let a = &log[0];
    assert_eq!(a.model.as_deref(), Some("claude-real"));
    assert_eq!(
        a.headers["anthropic-beta"],
        "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14"
    );
    assert_eq!(a.headers["anthropic-version"], "2023-06-01");
    assert_eq!(a.headers["x-custom"], "kept");
    assert!(!a.foreign_auth, "the client token must not travel upstream");
    assert!(!a.body.contains(&h.token));
    // Only the model changed: the rest of the body is byte-identical.
    let sent = serde_json::to_string(&body).expect("json");
    assert_eq!(
        a.body,
        sent.replace("\"model\":\"claude-x\"", "\"model\":\"claude-real\"")
    );
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_pool_with_a_dead_and_a_rate_limited_key_still_serves_every_request() {
    let h = pool().await;
    h.fake.script(
        "limited",
        [Fault::status_with(
            429,
            &[("retry-after", "2")],
            r#"{"error":{"type":"rate_limit_exceeded","message":"slow down"}}"#,
        )],
    );
    for i in 0..6 {
        let resp = h
            .chat("gpt-4o", false)
            .header("x-test-id", format!("r{i}"))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "request {i}");
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["choices"][0]["message"]["content"], "ok from good");
    }
    // The dead key was tried once and never again; the limited key once (its 429).
    assert_eq!(h.fake.count("unknown"), 1, "dead key retried");
    assert_eq!(h.fake.count("limited"), 1);
    assert_eq!(h.fake.count("good"), 6);
    // After its Retry-After the limited key serves again (priority puts it before good).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let v: serde_json::Value = h
        .chat("gpt-4o", false)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "ok from limited");
    assert_eq!(h.fake.count("unknown"), 1);
    let keys = h.admin_keys().await;
    let dead = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key_id"] == "dead")
        .expect("dead");
    assert_eq!(dead["status"], "dead");
    assert_eq!(dead["reason"], "auth_failed");
    assert_eq!(dead["last_status"], 401);
    assert!(dead["retry_in_secs"].as_u64().expect("countdown") > 200);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_dead_key_stays_out_after_a_restart() {
    let h = pool().await;
    assert_eq!(
        h.chat("gpt-4o", false).send().await.expect("send").status(),
        200
    );
    assert_eq!(h.fake.count("unknown"), 1);
    let h = h.restart().await;
    assert_eq!(
        h.chat("gpt-4o", false).send().await.expect("send").status(),
        200
    );
    assert_eq!(
        h.fake.count("unknown"),
        1,
        "the dead key was used after a restart"
    );
}

#[tokio::test]
async fn every_key_cooling_gives_503_with_retry_after() {
    let h = pool().await;
    let limit = |s: &str| Fault::status_with(429, &[("retry-after", s)], "");
    h.fake.always("a1", limit("30"));
    h.fake.always("a2", limit("12"));
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "12");
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "all_keys_cooling");
    // A second request does not touch the upstream at all.
    let before = h.fake.log().len();
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 503);
    let ra: u64 = resp.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("number");
    assert!((11..=12).contains(&ra), "{ra}");
    assert_eq!(h.fake.log().len(), before);
}

#[tokio::test]
async fn invalid_requests_come_back_unchanged_without_failover() {
    let h = pool().await;
    let body = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: must be positive"}}"#;
    h.fake.script("a1", [Fault::status_with(400, &[], body)]);
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(body_text(resp).await, body);
    assert_eq!(
        h.fake.count("a2"),
        0,
        "a bad request must not be retried on another key"
    );
    assert_eq!(
        h.gateway.health.state("ant/a1").expect("state").status,
        fluxgate_core::health::KeyStatus::Healthy
    );
}

#[tokio::test]
async fn empty_html_and_in_band_200s_are_failures_not_answers() {
    let h = pool().await;
    for fault in [Fault::Empty200, Fault::Html200, Fault::InBandError] {
        h.fake.script("a1", [fault.clone()]);
        let resp = h.messages("claude-x", false).send().await.expect("send");
        assert_eq!(resp.status(), 200, "{fault:?}");
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["content"][0]["text"], "ok from a2", "{fault:?}");
    }
}

#[tokio::test]
async fn upstream_redirects_are_not_followed() {
    let other = fluxgate_testkit::FakeUpstream::start().await;
    let h = pool().await;
    h.fake.script(
        "a1",
        [Fault::Redirect {
            location: format!("{}/v1/messages", other.url()),
        }],
    );
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    assert!(
        other.log().is_empty(),
        "the redirect target saw a request (and the key)"
    );
}

#[tokio::test]
async fn count_tokens_and_models_and_embeddings() {
    let h = pool().await;
    let resp = h
        .post(
            "/v1/messages/count_tokens",
            json!({"model": "claude-x", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["input_tokens"],
        11
    );
    let models: serde_json::Value = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&h.token)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"gpt-4o") && ids.contains(&"claude-x"),
        "{ids:?}"
    );
    let resp = h
        .post(
            "/v1/embeddings",
            json!({"model": "oa/text-embedding-3-small", "input": "x"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn malformed_and_unroutable_requests_get_typed_errors() {
    let h = pool().await;
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["error"]["type"],
        "invalid_request"
    );
    let resp = h
        .post("/v1/chat/completions", json!({"messages": []}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let resp = h.chat("no-such-model", false).send().await.expect("send");
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.json::<serde_json::Value>().await.expect("json")["error"]["type"],
        "no_route"
    );
    // Embeddings exist only on OpenAI-kind upstreams: an Anthropic-only route says so.
    let resp = h
        .post(
            "/v1/embeddings",
            json!({"model": "claude-x", "input": "hi"}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 404);
    let text = body_text(resp).await;
    assert!(text.contains("cannot serve embeddings"), "{text}");
    assert!(h.fake.log().is_empty());
}

#[tokio::test]
async fn requests_are_recorded_without_bodies_or_secrets() {
    let h = pool().await;
    assert_eq!(
        h.chat("gpt-4o", false).send().await.expect("send").status(),
        200
    );
    assert!(
        body_text(h.messages("claude-x", true).send().await.expect("send"))
            .await
            .contains("message_stop")
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.gateway.flush();
    let rows = h.gateway.log.recent(10).expect("records");
    assert_eq!(rows.len(), 2);
    let chat = rows
        .iter()
        .find(|r| r.endpoint == "chat_completions")
        .expect("chat row");
    assert_eq!(chat.route.as_deref(), Some("gpt-4o"));
    assert_eq!(chat.provider.as_deref(), Some("oa"));
    assert_eq!(chat.key_id.as_deref(), Some("limited"));
    assert_eq!(chat.attempts, 2);
    assert_eq!(chat.status, 200);
    assert_eq!(
        chat.error_class,
        Some(fluxgate_core::vocab::ErrorClass::AuthFailed)
    );
    assert_eq!((chat.tokens_in, chat.tokens_out), (Some(11), Some(7)));
    assert!(chat.ttfb_ms.is_some());
    assert_eq!(chat.client.as_deref(), Some("tests"));
    let stream = rows
        .iter()
        .find(|r| r.endpoint == "messages")
        .expect("stream row");
    assert!(stream.stream);
    assert_eq!((stream.tokens_in, stream.tokens_out), (Some(11), Some(7)));
    assert_eq!(stream.error_code, None);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_route_fails_over_across_providers_when_one_is_unreachable() {
    // A port with nothing listening: connections are refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_addr = closed.local_addr().expect("addr");
    drop(closed);
    let config = format!(
        r#"
[timeouts]
total = 5

[providers.down]
kind = "openai-compatible"
base_url = "http://{dead_addr}/v1"
keys = [{{ id = "d1" }}, {{ id = "d2" }}]

[providers.up]
kind = "openai-compatible"
base_url = "{{FAKE}}/v1"
keys = [{{ id = "u1" }}]

[routes.chain]
targets = ["down/model-a", "up/model-b"]
"#
    );
    let h = Harness::start(&config, &["down/d1", "down/d2", "up/u1"], &[]).await;
    for _ in 0..4 {
        let resp = h.chat("chain", false).send().await.expect("send");
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-fluxgate-provider"], "up");
        let v: serde_json::Value = resp.json().await.expect("json");
        assert_eq!(v["choices"][0]["message"]["content"], "ok from u1");
    }
    // The whole target switched: the second provider got its own model name.
    assert!(h
        .fake
        .log()
        .iter()
        .all(|a| a.model.as_deref() == Some("model-b")));
    // After three refused connections in a row a key is cooled, so later requests skip it.
    let keys = h.admin_keys().await;
    let cooling = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|k| k["provider"] == "down" && k["status"] == "cooling")
        .count();
    assert!(cooling >= 1, "{keys}");
    // With every candidate unreachable the client gets a typed error, not a hang.
    h.fake.always("u1", Fault::status(503));
    let started = std::time::Instant::now();
    let resp = h.chat("chain", false).send().await.expect("send");
    assert!(
        resp.status() == 502 || resp.status() == 503,
        "{}",
        resp.status()
    );
    let v: serde_json::Value = resp.json().await.expect("json");
    let t = v["error"]["type"].as_str().expect("type").to_string();
    assert!(
        ["upstream_unavailable", "all_keys_cooling"].contains(&t.as_str()),
        "{t}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_total_deadline_bounds_a_request() {
    let config = r#"
[timeouts]
first_byte = 30
idle = 30
total = 1

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }, { id = "a2" }]

[routes.c]
targets = ["ant/m"]
"#;
    let h = Harness::start(config, &["ant/a1", "ant/a2"], &[]).await;
    h.fake.always("a1", Fault::StallBeforeHeaders { ms: 5000 });
    h.fake.always("a2", Fault::StallBeforeHeaders { ms: 5000 });
    let started = std::time::Instant::now();
    let resp = h.messages("c", false).send().await.expect("send");
    let took = started.elapsed();
    assert_eq!(resp.status(), 504);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "upstream_timeout");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2000),
        "{took:?}"
    );
    assert_eq!(
        h.fake.count("a2"),
        0,
        "no time was left for a second attempt"
    );
}

#[tokio::test]
async fn a_short_rate_limit_on_every_key_is_waited_out_not_refused() {
    let h = pool().await;
    let limit = |ms: &str| Fault::status_with(429, &[("retry-after-ms", ms)], "");
    h.fake.script("a1", [limit("300")]);
    h.fake.script("a2", [limit("600")]);
    let started = std::time::Instant::now();
    let resp = h.messages("claude-x", false).send().await.expect("send");
    let took = started.elapsed();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["content"][0]["text"], "ok from a1");
    assert!(took >= Duration::from_millis(290), "did not wait: {took:?}");
    assert!(took < Duration::from_secs(2), "waited too long: {took:?}");
    let keys: Vec<String> = h.fake.log().iter().map(|a| a.key.clone()).collect();
    assert_eq!(keys, ["a1", "a2", "a1"]);
}

#[tokio::test]
async fn a_cooldown_longer_than_max_wait_is_refused_at_once() {
    let h = Harness::start(
        &POOL.replace(
            "[providers.oa]",
            "[retry]\nmax_wait = 0.2\n\n[providers.oa]",
        ),
        POOL_KEYS,
        &["oa/dead"],
    )
    .await;
    let limit = |ms: &str| Fault::status_with(429, &[("retry-after-ms", ms)], "");
    h.fake.script("a1", [limit("900")]);
    h.fake.script("a2", [limit("900")]);
    let started = std::time::Instant::now();
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 503);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(resp.headers()["retry-after"], "1");
}

#[tokio::test]
async fn transient_failures_on_every_key_get_another_round() {
    let h = pool().await;
    h.fake.script("a1", [Fault::status(500)]);
    h.fake.script("a2", [Fault::ResetAfter { events: 0 }]);
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let keys: Vec<String> = h.fake.log().iter().map(|a| a.key.clone()).collect();
    assert_eq!(keys, ["a1", "a2", "a1"]);
    // Attempts stay bounded by `retry.max_attempts` (4) when every one fails.
    h.fake.clear_log();
    h.fake.always("a1", Fault::status(503));
    h.fake.always("a2", Fault::status(503));
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 502);
    assert_eq!(h.fake.log().len(), 4);
}

#[tokio::test]
async fn keys_cooled_by_upstream_failures_are_tried_when_nothing_else_is_left() {
    let h = pool().await;
    h.fake.always("a1", Fault::status(503));
    h.fake.always("a2", Fault::status(503));
    // Two requests of four failed attempts each: both keys reach the threshold and cool.
    for _ in 0..2 {
        let resp = h.messages("claude-x", false).send().await.expect("send");
        assert!(resp.status().is_server_error());
    }
    let keys = h.admin_keys().await;
    let status = |id: &str| {
        keys["keys"]
            .as_array()
            .and_then(|a| a.iter().find(|k| k["key_id"] == id))
            .map(|k| k["status"].clone())
    };
    assert_eq!(status("a1"), Some(json!("cooling")), "{keys:#}");
    assert_eq!(status("a2"), Some(json!("cooling")), "{keys:#}");
    // The upstream recovers: the next request is served by a cooling key (degraded mode)
    // instead of a 503, and the key is healthy again.
    h.fake.always("a1", Fault::Ok);
    h.fake.always("a2", Fault::Ok);
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    // A key out for a rate limit is never tried in degraded mode.
    let h = pool().await;
    h.fake.always("a1", Fault::status(503));
    h.fake
        .always("a2", Fault::status_with(429, &[("retry-after", "60")], ""));
    for _ in 0..3 {
        let _ = h.messages("claude-x", false).send().await.expect("send");
    }
    h.fake.clear_log();
    h.fake.always("a1", Fault::Ok);
    h.fake.always("a2", Fault::Ok);
    let resp = h.messages("claude-x", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let keys: Vec<String> = h.fake.log().iter().map(|a| a.key.clone()).collect();
    assert_eq!(keys, ["a1"]);
}

/// Sends a Messages request and returns the label of the key that answered it.
async fn served_by(h: &Harness, body: serde_json::Value, session: Option<&str>) -> String {
    let mut req = h.post("/v1/messages", body);
    if let Some(s) = session {
        req = req.header("x-session-id", s);
    }
    let v: serde_json::Value = req.send().await.expect("send").json().await.expect("json");
    v["content"][0]["text"]
        .as_str()
        .unwrap_or("")
        .trim_start_matches("ok from ")
        .to_string()
}

#[tokio::test]
async fn a_conversation_stays_on_one_key_while_it_is_usable() {
    let config = r#"
[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "k1" }, { id = "k2" }, { id = "k3" }]

[routes.c]
targets = ["ant/m"]
strategy = "round-robin"
"#;
    let h = Harness::start(config, &["ant/k1", "ant/k2", "ant/k3"], &[]).await;
    // Each conversation: the same opening, a growing history.
    let turn = |conv: usize, n: usize| {
        let mut messages =
            vec![json!({"role": "user", "content": format!("conversation {conv} opens")})];
        for i in 1..n {
            messages.push(json!({"role": "assistant", "content": format!("answer {i}")}));
            messages.push(json!({"role": "user", "content": format!("question {i}")}));
        }
        json!({"model": "c", "max_tokens": 16, "system": "be brief", "messages": messages})
    };
    let mut keys_of = Vec::new();
    for conv in 0..8 {
        let mut seen = std::collections::BTreeSet::new();
        for n in 1..=4 {
            seen.insert(served_by(&h, turn(conv, n), None).await);
        }
        assert_eq!(
            seen.len(),
            1,
            "conversation {conv} moved between keys: {seen:?}"
        );
        keys_of.push(seen.into_iter().next().expect("a key"));
    }
    // Round-robin alone would have spread every conversation over all three keys; pinned,
    // conversations still spread over the pool.
    let distinct: std::collections::BTreeSet<_> = keys_of.iter().collect();
    assert!(distinct.len() >= 2, "{keys_of:?}");

    // Conversation 0's key goes out: its next turn moves, and stays where it moved.
    let pinned = keys_of[0].clone();
    h.fake.always(
        &pinned,
        Fault::status_with(429, &[("retry-after", "60")], ""),
    );
    let mut after = std::collections::BTreeSet::new();
    for n in 5..=7 {
        after.insert(served_by(&h, turn(0, n), None).await);
    }
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.contains(&pinned));

    // A session id header pins regardless of the body.
    let mut by_session = std::collections::BTreeSet::new();
    for conv in 10..14 {
        by_session.insert(served_by(&h, turn(conv, 1), Some("one-session")).await);
    }
    assert_eq!(by_session.len(), 1, "{by_session:?}");
}
