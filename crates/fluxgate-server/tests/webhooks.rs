//! Webhooks: health events reach the configured URL as JSON, retried when the receiver fails,
//! `route_unavailable` at most once a minute per route, filtered by type, never with a key.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use common::Harness;
use fluxgate_testkit::Fault;
use parking_lot::Mutex;

/// A receiver that answers 500 to its first `fail_first` deliveries, then 204.
async fn receiver(fail_first: usize) -> (String, Arc<Mutex<Vec<(u16, serde_json::Value)>>>) {
    let seen: Arc<Mutex<Vec<(u16, serde_json::Value)>>> = Arc::default();
    let log = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let log = log.clone();
            async move {
                let mut l = log.lock();
                let status = if l.len() < fail_first { 500 } else { 204 };
                l.push((status, serde_json::from_str(&body).unwrap_or_default()));
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, seen)
}

async fn until(seen: &Mutex<Vec<(u16, serde_json::Value)>>, n: usize) {
    let start = Instant::now();
    while seen.lock().len() < n && start.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn health_events_reach_webhooks_with_retries() {
    let (url, seen) = receiver(1).await;
    let (only_routes, seen_routes) = receiver(0).await;
    let config = format!(
        r#"
[[webhooks]]
url = "{url}"

[[webhooks]]
url = "{only_routes}"
events = ["route_unavailable"]

[providers.ant]
kind = "anthropic"
base_url = "{{FAKE}}"
keys = [{{ id = "a1" }}]

[routes.c]
targets = ["ant/m"]
"#
    );
    let h = Harness::start(&config, &["ant/a1"], &[]).await;
    h.fake
        .always("a1", Fault::status_with(429, &[("retry-after", "60")], ""));
    // One 429 (the key cools: key_state_changed and route_unavailable), then two refusals
    // that add no event: the key is already cooling and route_unavailable is rate-limited.
    for _ in 0..3 {
        assert_eq!(
            h.messages("c", false).send().await.expect("send").status(),
            503
        );
    }
    // The first webhook: a 500, the retry of the same event, then the second event.
    until(&seen, 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let got = seen.lock().clone();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(got[0].0, 500);
    assert_eq!(got[0].1, got[1].1, "the retry carries the same event");
    let first = &got[1].1["event"];
    assert_eq!(first["type"], "key_state_changed");
    assert_eq!(first["provider"], "ant");
    assert_eq!(first["key_id"], "a1");
    assert_eq!(first["to"], "cooling");
    assert_eq!(first["reason"], "rate_limited");
    assert!(got[1].1["ts_ms"].as_i64().is_some_and(|t| t > 0));
    assert_eq!(got[2].1["event"]["type"], "route_unavailable");
    assert_eq!(got[2].1["event"]["route"], "c");
    // The filtered webhook got only the route event.
    until(&seen_routes, 1).await;
    let routes = seen_routes.lock().clone();
    assert_eq!(routes.len(), 1, "{routes:#?}");
    assert_eq!(routes[0].1["event"]["type"], "route_unavailable");
    let all = format!("{got:?}{routes:?}");
    assert!(!all.contains(&h.keys["a1"][..12]));
}

#[tokio::test]
async fn bad_webhook_config_is_refused_with_its_path() {
    let bad = [
        ("[[webhooks]]\nurl = \"ftp://x\"\n", "webhooks[0].url"),
        (
            "[[webhooks]]\nurl = \"http://127.0.0.1:9/h\"\nevents = [\"key_changed\"]\n",
            "webhooks[0].events",
        ),
    ];
    for (text, path) in bad {
        let err = fluxgate_core::config::Config::from_toml(text, std::path::Path::new("t.toml"))
            .expect_err("refused");
        assert!(err.to_string().contains(path), "{err}");
    }
}

#[tokio::test]
async fn a_budget_crossing_80_percent_reaches_webhooks_once() {
    let (url, seen) = receiver(0).await;
    // Output at $10 per million tokens, input free: a request reserves 16 x $10/M (its
    // max_tokens) and really costs 7 x $10/M = $0.00007. Eight fit under $0.00068 and bring the
    // spend to $0.00056 (82%); the ninth would break it and is refused.
    let config = format!(
        r#"
[[webhooks]]
url = "{url}"
events = ["budget_threshold"]

[providers.ant]
kind = "anthropic"
base_url = "{{FAKE}}"
keys = [{{ id = "a1" }}]

[models."m"]
input_price = 0
output_price = 10

[routes.c]
targets = ["ant/m"]

[[budgets]]
provider = "ant"
daily_usd = 0.00068
"#
    );
    let h = Harness::start(&config, &["ant/a1"], &[]).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(
            h.messages("c", false)
                .send()
                .await
                .expect("send")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 200, 402, 402]);
    until(&seen, 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = seen.lock().clone();
    assert_eq!(seen.len(), 1, "one event per crossing: {seen:?}");
    let ev = &seen[0].1["event"];
    assert_eq!(ev["type"], "budget_threshold");
    assert_eq!(ev["scope"], "provider ant");
    assert_eq!(ev["period"], "daily");
    assert_eq!(ev["unit"], "usd");
    assert_eq!(ev["percent"], 80);
    assert_eq!(ev["limit"], 0.00068);
}
