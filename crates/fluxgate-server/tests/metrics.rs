//! `/metrics` agrees with what happened: requests by status and error, attempts and failovers,
//! tokens, latency histograms, and every key's current state.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::Harness;
use fluxgate_testkit::Fault;

const CONFIG: &str = r#"
[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }, { id = "a2" }]

[routes.c]
targets = ["ant/m"]
"#;

async fn scrape(h: &Harness) -> String {
    let resp = h.admin_get("/metrics").await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    resp.text().await.expect("text")
}

fn value(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let h = Harness::start(CONFIG, &["ant/a1", "ant/a2"], &[]).await;
    // One plain success, one that fails over, then both keys rate-limited: a 503.
    assert_eq!(
        h.messages("c", false).send().await.expect("send").status(),
        200
    );
    h.fake.script("a1", [Fault::status(500)]);
    h.fake.script("a2", [Fault::status(500)]);
    let _ = h.messages("c", false).send().await.expect("send");
    let limit = Fault::status_with(429, &[("retry-after", "60")], "");
    h.fake.always("a1", limit.clone());
    h.fake.always("a2", limit);
    assert_eq!(
        h.messages("c", false).send().await.expect("send").status(),
        503
    );

    let page = scrape(&h).await;
    let ok = r#"fluxgate_requests_total{endpoint="messages",route="c",provider="ant",status="200",error=""}"#;
    assert_eq!(value(&page, ok), Some(2.0), "{page}");
    let cooling = r#"fluxgate_requests_total{endpoint="messages",route="c",provider="ant",status="503",error="all_keys_cooling"}"#;
    assert_eq!(value(&page, cooling), Some(1.0), "{page}");
    // 1 + 3 (500, 500, then another round) + 2 (both 429s).
    assert_eq!(
        value(&page, r#"fluxgate_upstream_attempts_total{route="c"}"#),
        Some(6.0),
        "{page}"
    );
    assert_eq!(
        value(&page, r#"fluxgate_failovers_total{route="c"}"#),
        Some(3.0),
        "{page}"
    );
    assert!(
        value(
            &page,
            r#"fluxgate_tokens_total{route="c",provider="ant",direction="input"}"#
        )
        .is_some_and(|n| n > 0.0),
        "{page}"
    );
    assert_eq!(
        value(
            &page,
            r#"fluxgate_request_duration_seconds_count{route="c"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            &page,
            r#"fluxgate_key_state{provider="ant",key="a1",state="cooling"}"#
        ),
        Some(1.0),
        "{page}"
    );
    assert!(value(
        &page,
        r#"fluxgate_key_recovery_seconds{provider="ant",key="a2"}"#
    )
    .is_some_and(|s| s > 50.0));
    // The admin token is required, and no key ever appears.
    let resp = h
        .http
        .get(h.url("/metrics"))
        .bearer_auth(&h.token)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    for key in h.keys.values() {
        assert!(!page.contains(&key[..12]));
    }
}
