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

#[tokio::test]
async fn an_upstream_that_reports_no_usage_shows_none_and_budgets_count_the_estimate() {
    let config = format!(
        "{CONFIG}\n[routes.silent]\ntargets = [\"oa/gpt-4o-no-usage\"]\n\n[models.\"gpt-4o-no-usage\"]\ninput_price = 2.5\noutput_price = 10.0\n\n[[budgets]]\nroute = \"silent\"\ndaily_tokens = 1000000\n"
    );
    let h = Harness::start(&config, &["oa/o1", "ant/a1", "gem/g1"], &[]).await;
    let (status, body) = send(&h, Client::Chat, "silent", true, 0).await;
    assert_eq!(status, 200, "{body}");
    let r = newest_record(&h, 1).await;
    // Unknown is unknown: no tokens, no cost ...
    assert_eq!(r["tokens_in"], Value::Null, "{r}");
    assert_eq!(r["tokens_out"], Value::Null, "{r}");
    assert_eq!(r["cost_usd"], Value::Null, "{r}");
    // ... but budgets count what was estimated before sending, not zero.
    let est = r["est_tokens"].as_u64().expect("an estimate");
    assert!(est > 0, "{r}");
    assert!(r["est_cost_usd"].as_f64().expect("priced") > 0.0, "{r}");
    let budgets = h.admin_json("/admin/api/budgets").await;
    assert_eq!(
        budgets["budgets"][0]["daily"]["tokens"].as_u64(),
        Some(est),
        "{budgets}"
    );
    // And the estimate survives a restart (the spend table holds it).
    let h = h.restart().await;
    let budgets = h.admin_json("/admin/api/budgets").await;
    assert_eq!(
        budgets["budgets"][0]["daily"]["tokens"].as_u64(),
        Some(est),
        "{budgets}"
    );
}

#[tokio::test]
async fn the_charts_series_count_every_request_in_its_bucket_for_each_span() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1", "gem/g1"], &["gem/g1"]).await;
    for n in 0..3 {
        let (status, body) = send(&h, Client::Chat, "to-chat", false, n).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = send(&h, Client::Chat, "to-gemini", false, 9).await;
    assert!(status >= 400, "g1 is refused upstream");
    newest_record(&h, 4).await;
    for span in ["1h", "24h", "7d", "30d"] {
        let v = h
            .admin_json(&format!("/admin/api/usage/series?span={span}"))
            .await;
        let buckets = v["buckets"].as_array().expect("buckets");
        assert_eq!(
            buckets.len(),
            match span {
                "1h" => 60,
                "24h" => 24,
                "7d" => 28,
                _ => 30,
            }
        );
        // The last two buckets: the requests may straddle a bucket's end.
        let recent = &buckets[buckets.len() - 2..];
        let sum = |k: &str| {
            recent
                .iter()
                .map(|b| b[k].as_i64().unwrap_or(0))
                .sum::<i64>()
        };
        assert_eq!((sum("ok"), sum("failed")), (3, 1), "{span}: {recent:?}");
        assert_eq!(sum("tokens_in"), 33, "{span}");
        assert!(
            recent.iter().any(|b| b["cost_usd"].as_f64() > Some(0.0)),
            "{span}"
        );
        let total: i64 = buckets.iter().map(|b| b["ok"].as_i64().unwrap_or(0)).sum();
        assert_eq!(total, 3, "{span}: counted once");
        let width = v["bucket_ms"].as_i64().expect("width");
        assert!(buckets
            .windows(2)
            .all(
                |w| w[1]["t_ms"].as_i64().unwrap_or(0) - w[0]["t_ms"].as_i64().unwrap_or(0)
                    == width
            ));
    }
    let route = h
        .admin_json("/admin/api/usage/series?span=24h&route=to-gemini")
        .await;
    let failed: i64 = route["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["failed"].as_i64().unwrap_or(0))
        .sum();
    let ok: i64 = route["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["ok"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!((ok, failed), (0, 1));
    let (status, body) = h
        .admin_call(
            reqwest::Method::GET,
            "/admin/api/usage/series?span=2w",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("1h, 24h, 7d or 30d"));
    // The hourly rows are written with the records: they outlive a restart.
    let h = h.restart().await;
    let v = h.admin_json("/admin/api/usage/series?span=30d").await;
    let all = v["buckets"].as_array().expect("buckets");
    let sum = |k: &str| all.iter().map(|b| b[k].as_i64().unwrap_or(0)).sum::<i64>();
    assert_eq!((sum("ok"), sum("failed")), (3, 1));
}
