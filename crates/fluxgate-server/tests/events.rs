//! `GET /admin/api/events`: a snapshot first, then the router's events as they happen, no key
//! material in any of it, and the stream ends when the server drains.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::{Duration, Instant};

use common::Harness;
use fluxgate_testkit::Fault;
use futures_util::StreamExt;

const CONFIG: &str = r#"
[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }, { id = "a2" }]

[routes.c]
targets = ["ant/m"]

[[budgets]]
provider = "ant"
daily_usd = 5
"#;

/// Reads SSE frames (`event`, parsed `data`) from a byte stream.
struct Frames<S> {
    body: S,
    buf: String,
    pub raw: String,
}

impl<S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin> Frames<S> {
    /// The next event frame (comments skipped); `None` when the stream ends or `wait` passes.
    async fn next(&mut self, wait: Duration) -> Option<(String, serde_json::Value)> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut name = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("event: ") {
                        name = Some(v.to_string());
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        data = serde_json::from_str(v).ok();
                    }
                }
                if let (Some(n), Some(d)) = (name, data) {
                    return Some((n, d));
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.body.next()).await {
                Ok(Some(Ok(chunk))) => {
                    let text = String::from_utf8_lossy(&chunk).into_owned();
                    self.raw.push_str(&text);
                    self.buf.push_str(&text);
                }
                _ => return None,
            }
        }
    }
}

#[tokio::test]
async fn events_start_with_a_snapshot_follow_the_router_and_end_at_shutdown() {
    let mut h = Harness::start(CONFIG, &["ant/a1", "ant/a2"], &[]).await;
    let resp = h
        .http
        .get(h.url("/admin/api/events"))
        .bearer_auth(&h.admin_token)
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut frames = Frames {
        body: resp.bytes_stream(),
        buf: String::new(),
        raw: String::new(),
    };
    let (name, snap) = frames.next(Duration::from_secs(5)).await.expect("snapshot");
    assert_eq!(name, "snapshot");
    let keys = snap["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k["status"] == "healthy"), "{snap}");
    assert_eq!(snap["budgets"][0]["scope"]["name"], "ant");

    // a1 is rate limited: the request fails over to a2 and a1's cooldown is an event.
    h.fake
        .always("a1", Fault::status_with(429, &[("retry-after", "60")], ""));
    assert_eq!(
        h.messages("c", false).send().await.expect("send").status(),
        200
    );
    let (name, ev) = frames
        .next(Duration::from_secs(5))
        .await
        .expect("key event");
    assert_eq!(name, "key_state_changed", "{ev}");
    assert_eq!(ev["type"], "key_state_changed");
    assert_eq!(
        (ev["provider"].as_str(), ev["key_id"].as_str()),
        (Some("ant"), Some("a1"))
    );
    assert_eq!(ev["to"], "cooling");
    assert_eq!(ev["reason"], "rate_limited");
    for key in h.keys.values() {
        assert!(
            !frames.raw.contains(&key[..12]),
            "key material in the stream"
        );
    }

    // Draining ends the stream promptly instead of waiting out the drain timeout.
    let started = Instant::now();
    h.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert!(frames.next(Duration::from_secs(2)).await.is_none());
}
