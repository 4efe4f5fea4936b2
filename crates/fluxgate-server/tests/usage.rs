//! Usage is never silently zero: every client dialect, streamed or not, against a Chat, an
//! Anthropic and a Gemini upstream (the fake reports usage only where the real API would: a
//! Chat stream only when `stream_options.include_usage` asks), is recorded with the tokens the
//! upstream counted and a cost. A Chat client that did not ask for usage gets no usage chunk
//! and no `"usage": null`s it did not ask for; one that asked gets its usage chunk.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[providers.oa]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }]

[providers.gem]
kind = "gemini"
base_url = "{FAKE}"
keys = [{ id = "g1" }]

[routes.to-chat]
targets = ["oa/gpt-4o"]

[routes.to-anthropic]
targets = ["ant/claude-sonnet-4-5"]

[routes.to-gemini]
targets = ["gem/gemini-2.5-pro"]
"#;

#[derive(Clone, Copy, Debug)]
enum Client {
    Chat,
    Responses,
    Anthropic,
    Gemini,
}

/// Sends one request in `client`'s dialect; returns the status and the body as text.
async fn send(h: &Harness, client: Client, route: &str, stream: bool, n: usize) -> (u16, String) {
    let words = format!("count my tokens, request {n}");
    let (path, body) = match client {
        Client::Chat => (
            "/v1/chat/completions".to_string(),
            json!({"model": route, "stream": stream, "messages": [{"role": "user", "content": words}]}),
        ),
        Client::Responses => (
            "/v1/responses".to_string(),
            json!({"model": route, "stream": stream, "input": words}),
        ),
        Client::Anthropic => (
            "/v1/messages".to_string(),
            json!({"model": route, "stream": stream, "max_tokens": 64, "messages": [{"role": "user", "content": words}]}),
        ),
        Client::Gemini => (
            if stream {
                format!("/v1beta/models/{route}:streamGenerateContent?alt=sse")
            } else {
                format!("/v1beta/models/{route}:generateContent")
            },
            json!({"contents": [{"role": "user", "parts": [{"text": words}]}]}),
        ),
    };
    let resp = h.post(&path, body).send().await.expect("send");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The newest record once there are `count` of them (records are written off the request
/// path; a stream's when its pump ends).
async fn newest_record(h: &Harness, count: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        h.gateway.flush();
        let v = h.admin_json("/admin/api/requests?limit=1000").await;
        let rows = v["requests"].as_array().cloned().unwrap_or_default();
        if rows.len() >= count || tokio::time::Instant::now() > deadline {
            assert_eq!(rows.len(), count, "records: {v}");
            return rows
                .into_iter()
                .max_by_key(|r| {
                    (
                        r["ts_ms"].as_i64(),
                        r["request_id"].as_str().map(str::to_string),
                    )
                })
                .expect("a record");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_dialect_streamed_or_not_is_recorded_with_tokens_and_cost() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1", "gem/g1"], &[]).await;
    let mut n = 0;
    let mut seen = Vec::new();
    for client in [
        Client::Chat,
        Client::Responses,
        Client::Anthropic,
        Client::Gemini,
    ] {
        for route in ["to-chat", "to-anthropic", "to-gemini"] {
            for stream in [false, true] {
                n += 1;
                let (status, body) = send(&h, client, route, stream, n).await;
                assert_eq!(status, 200, "{client:?} {route} stream={stream}: {body}");
                // Records may land out of order: find this one by its request's order.
                let r = newest_record(&h, n).await;
                let case = format!("{client:?} -> {route}, stream={stream}: {r}");
                assert_eq!(r["tokens_in"], 11, "{case}");
                assert_eq!(r["tokens_out"], 7, "{case}");
                assert!(r["cost_usd"].as_f64().is_some_and(|c| c > 0.0), "{case}");
                if matches!(client, Client::Chat) && stream {
                    // The client asked for no usage: its stream carries none.
                    assert!(!body.contains("\"usage\""), "{case}\n{body}");
                    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
                }
                seen.push(case);
            }
        }
    }
    assert_eq!(seen.len(), 24);
    // Every record, whatever order they landed in.
    h.gateway.flush();
    let all = h.admin_json("/admin/api/requests?limit=1000").await;
    for r in all["requests"].as_array().expect("records") {
        assert_eq!(
            (r["tokens_in"].as_u64(), r["tokens_out"].as_u64()),
            (Some(11), Some(7)),
            "{r}"
        );
    }
}

#[tokio::test]
async fn a_chat_client_that_asks_for_usage_gets_its_usage_chunk() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1", "gem/g1"], &[]).await;
    for (i, route) in ["to-chat", "to-anthropic", "to-gemini"]
        .into_iter()
        .enumerate()
    {
        let body = json!({"model": route, "stream": true, "stream_options": {"include_usage": true},
                          "messages": [{"role": "user", "content": format!("usage please {i}")}]});
        let resp = h
            .post("/v1/chat/completions", body)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.expect("body");
        let usage: Vec<Value> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter(|v| v["usage"].is_object())
            .collect();
        assert_eq!(usage.len(), 1, "{route}: one usage chunk\n{text}");
        assert_eq!(usage[0]["usage"]["prompt_tokens"], 11, "{route}");
        assert_eq!(usage[0]["usage"]["completion_tokens"], 7, "{route}");
        let r = newest_record(&h, i + 1).await;
        assert_eq!(
            (r["tokens_in"].as_u64(), r["tokens_out"].as_u64()),
            (Some(11), Some(7))
        );
    }
    // The upstream was asked for usage on every Chat stream, the client's own request or not.
    let log = h.fake.log();
    let chat = log
        .iter()
        .find(|a| a.body.contains("usage please 0"))
        .expect("sent");
    assert!(
        chat.body.contains("\"include_usage\":true"),
        "{}",
        chat.body
    );
}
