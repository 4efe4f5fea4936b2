//! The stream commit rule, timeouts and cancellation, against a fake upstream.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::{Duration, Instant};

use common::{body_text, Harness};
use fluxgate_testkit::{Fault, Wire};
use futures_util::StreamExt;

const CONFIG: &str = r#"
[timeouts]
first_byte = 0.6
idle = 0.6
total = 20

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }, { id = "o2" }]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }, { id = "a2" }]

[routes.chat]
targets = ["oa/m"]

[routes.claude]
targets = ["ant/m"]
"#;

const KEYS: &[&str] = &["oa/o1", "oa/o2", "ant/a1", "ant/a2"];

#[derive(Clone, Copy, Debug)]
enum D {
    Chat,
    Responses,
    Messages,
}

impl D {
    const ALL: [D; 3] = [D::Chat, D::Responses, D::Messages];
    fn wire(self) -> Wire {
        match self {
            D::Chat => Wire::Chat,
            D::Responses => Wire::Responses,
            D::Messages => Wire::Messages,
        }
    }
    /// The first and second key's labels.
    fn keys(self) -> (&'static str, &'static str) {
        match self {
            D::Messages => ("a1", "a2"),
            _ => ("o1", "o2"),
        }
    }
    fn request(self, h: &Harness, test_id: &str) -> reqwest::RequestBuilder {
        match self {
            D::Chat => h.chat("chat", true),
            D::Responses => h.responses("chat", true),
            D::Messages => h.messages("claude", true),
        }
        .header("x-test-id", test_id)
    }
    fn terminators(self) -> &'static [&'static str] {
        match self {
            D::Chat => &["[DONE]"],
            D::Responses => &["response.completed"],
            D::Messages => &["message_stop"],
        }
    }
    fn error_marker(self) -> &'static str {
        match self {
            D::Chat => "data: {\"error\"",
            D::Responses | D::Messages => "event: error",
        }
    }
}

/// The text the client received in content deltas, whatever the dialect.
fn streamed_text(body: &str) -> String {
    let mut out = String::new();
    for line in body.lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
            continue;
        };
        if let Some(s) = v["choices"][0]["delta"]["content"].as_str() {
            out.push_str(s);
        }
        if v["type"] == "response.output_text.delta" {
            out.push_str(v["delta"].as_str().unwrap_or(""));
        }
        if v["type"] == "content_block_delta" {
            out.push_str(v["delta"]["text"].as_str().unwrap_or(""));
        }
    }
    out
}

#[tokio::test]
async fn failures_before_commit_are_invisible() {
    let h = Harness::start(CONFIG, KEYS, &[]).await;
    for d in D::ALL {
        let (first, _) = d.keys();
        let preamble = d.wire().preamble_len() as u32;
        for fault in [
            Fault::InBandError,
            Fault::ResetAfter { events: 0 },
            Fault::ResetAfter { events: preamble },
            Fault::TruncateAfter { events: preamble },
            Fault::status(529),
        ] {
            h.fake.script(first, [fault.clone()]);
            let resp = d.request(&h, "pre").send().await.expect("send");
            assert_eq!(resp.status(), 200, "{d:?} {fault:?}");
            let body = body_text(resp).await;
            let (_, second) = d.keys();
            assert_eq!(
                streamed_text(&body),
                format!("ok from {second}"),
                "{d:?} {fault:?}: {body}"
            );
            assert!(
                d.terminators().iter().all(|t| body.contains(t)),
                "{d:?} {fault:?}: no terminator: {body}"
            );
            assert!(
                !body.contains(d.error_marker()),
                "{d:?} {fault:?}: the failed attempt leaked: {body}"
            );
            // The failed attempt's preamble must not have reached the client either.
            let starts = body.matches("event: message_start").count()
                + body.matches("event: response.created").count();
            assert!(starts <= 1, "{d:?} {fault:?}: two preambles: {body}");
        }
    }
    assert_eq!(
        h.fake.max_in_flight_same_test(),
        1,
        "two attempts in flight for one request"
    );
}

#[tokio::test]
async fn a_break_after_commit_ends_with_an_error_event_and_is_never_replayed() {
    let h = Harness::start(CONFIG, KEYS, &[]).await;
    // Paced events, so the break arrives after the content event has committed the stream
    // (data and a reset in one read surface as a reset first, which is a pre-commit failure).
    h.fake.set_chunk_delay(Duration::from_millis(40));
    for d in D::ALL {
        let (first, second) = d.keys();
        let preamble = d.wire().preamble_len() as u32;
        for (i, fault) in [
            Fault::ResetAfter {
                events: preamble + 2,
            },
            Fault::TruncateAfter {
                events: preamble + 2,
            },
            Fault::InBandErrorAfter {
                events: preamble + 1,
            },
        ]
        .into_iter()
        .enumerate()
        {
            h.fake.clear_log();
            h.fake.script(first, [fault.clone()]);
            let test_id = format!("post-{d:?}-{i}");
            let resp = d.request(&h, &test_id).send().await.expect("send");
            assert_eq!(resp.status(), 200);
            let body = body_text(resp).await;
            assert!(
                body.contains(d.error_marker()),
                "{d:?} {fault:?}: no error event: {body}"
            );
            for t in d.terminators() {
                assert!(
                    !body.contains(t),
                    "{d:?} {fault:?}: a broken stream looks complete: {body}"
                );
            }
            assert!(!body.contains("finish_reason\":\"stop"), "{d:?}: {body}");
            assert!(
                body.ends_with("\n\n"),
                "{d:?}: the error event is not a whole frame"
            );
            let attempts: Vec<_> = h
                .fake
                .log()
                .into_iter()
                .filter(|a| a.test_id.as_deref() == Some(&test_id))
                .collect();
            assert_eq!(
                attempts.len(),
                1,
                "{d:?} {fault:?}: sent upstream again after the first byte"
            );
            assert_eq!(h.fake.count(second), 0);
        }
    }
}

#[tokio::test]
async fn first_byte_timeout_fails_over_and_idle_timeout_breaks_the_stream() {
    let h = Harness::start(CONFIG, KEYS, &[]).await;
    h.fake
        .script("a1", [Fault::StallBeforeHeaders { ms: 3000 }]);
    let started = Instant::now();
    let body = body_text(D::Messages.request(&h, "fb").send().await.expect("send")).await;
    assert_eq!(streamed_text(&body), "ok from a2");
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "first-byte timeout did not fire: {:?}",
        started.elapsed()
    );

    let preamble = Wire::Messages.preamble_len() as u32;
    h.fake.script(
        "a2",
        [Fault::StallAfter {
            events: preamble + 2,
            ms: 5000,
        }],
    );
    h.fake.script("a1", [Fault::status(503)]);
    let started = Instant::now();
    let body = body_text(D::Messages.request(&h, "idle").send().await.expect("send")).await;
    let took = started.elapsed();
    assert!(
        body.contains("event: error") && body.contains("upstream_timeout"),
        "{body}"
    );
    assert!(!body.contains("message_stop"));
    assert!(
        took < Duration::from_millis(1600),
        "idle timeout fired late: {took:?}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request() {
    let h = Harness::start(CONFIG, KEYS, &[]).await;
    h.fake.set_chunk_delay(Duration::from_millis(150));
    let resp = D::Chat.request(&h, "gone").send().await.expect("send");
    let mut stream = resp.bytes_stream();
    let first = stream.next().await.expect("a first chunk").expect("bytes");
    assert!(!first.is_empty());
    drop(stream);
    let dropped = Instant::now();
    let deadline = dropped + Duration::from_secs(3);
    loop {
        let a = h
            .fake
            .log()
            .into_iter()
            .find(|a| a.test_id.as_deref() == Some("gone"))
            .expect("attempt");
        if a.ended_ms.is_some() {
            assert!(a.cancelled, "the upstream stream ran to its end");
            break;
        }
        assert!(Instant::now() < deadline, "upstream not cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        dropped.elapsed() < Duration::from_millis(500),
        "cancellation took {:?}",
        dropped.elapsed()
    );
    assert_eq!(
        h.fake.log().len(),
        1,
        "a cancelled request must not be retried"
    );
}

#[tokio::test]
async fn streams_are_forwarded_as_they_arrive() {
    let h = Harness::start(CONFIG, KEYS, &[]).await;
    h.fake.set_chunk_delay(Duration::from_millis(250));
    let started = Instant::now();
    let resp = D::Messages.request(&h, "live").send().await.expect("send");
    let mut stream = resp.bytes_stream();
    let mut arrivals = Vec::new();
    while let Some(chunk) = stream.next().await {
        chunk.expect("bytes");
        arrivals.push(started.elapsed());
    }
    // 10 events 250 ms apart: a buffered proxy would deliver everything at the end.
    assert!(arrivals.len() >= 5, "{arrivals:?}");
    let spread = *arrivals.last().expect("last") - arrivals[0];
    assert!(
        spread > Duration::from_millis(1000),
        "events arrived together: {arrivals:?}"
    );
}
