//! Key balances end to end: the real server reads each key's remaining credit from the fake's
//! DeepSeek, OpenRouter and Moonshot balance endpoints (their documented shapes) on start,
//! shows it in the keys API and `/metrics`, takes a key below its provider's `low_balance` out
//! of rotation (still used when nothing else is left), and never asks one key twice within the
//! on-demand gap.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::Harness;
use serde_json::Value;

const CONFIG: &str = r#"
[providers.ds]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
balance = "deepseek"
low_balance = 5.0
low_balance_action = "rotate-out"
keys = [{ id = "poor" }, { id = "rich" }]

[providers.or]
kind = "openai-compatible"
base_url = "{FAKE}/api/v1"
balance = "openrouter"
keys = [{ id = "or1" }]

[providers.ms]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
balance = "moonshot"
low_balance = 1.0
keys = [{ id = "ms1" }]

[providers.plain]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "p1" }]

[routes.m]
targets = ["ds/upstream-model"]

[routes.only-poor]
targets = ["ds/upstream-model"]
"#;

const KEYS: &[&str] = &["ds/poor", "ds/rich", "or/or1", "ms/ms1", "plain/p1"];

fn balance_of<'a>(keys: &'a Value, account: &str) -> &'a Value {
    let (p, k) = account.split_once('/').expect("provider/key");
    &keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|x| x["provider"] == p && x["key_id"] == k)
        .expect("listed")["balance"]
}

/// Waits (5 s at most) until every key with a balance source has been read once.
async fn read_once(h: &Harness) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let keys = h.admin_keys().await;
        let done = ["ds/poor", "ds/rich", "or/or1", "ms/ms1"]
            .iter()
            .all(|a| balance_of(&keys, a)["checked_ms"].is_number());
        if done || tokio::time::Instant::now() > deadline {
            return keys;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn balances_are_read_shown_and_a_low_key_leaves_rotation() {
    let h = Harness::start_prepared(CONFIG, KEYS, &[], |fake| {
        fake.set_balance("poor", 1.25);
        fake.set_balance("or1", 7.5);
        fake.set_balance("ms1", 49.5);
    })
    .await;
    let keys = read_once(&h).await;
    let poor = balance_of(&keys, "ds/poor");
    assert_eq!(poor["source"], "deepseek");
    assert_eq!(poor["remaining"], 1.25);
    assert_eq!(poor["currency"], "CNY");
    assert_eq!(poor["threshold"], 5.0);
    assert_eq!(
        (poor["low"].as_bool(), poor["out_of_rotation"].as_bool()),
        (Some(true), Some(true))
    );
    let rich = balance_of(&keys, "ds/rich");
    assert_eq!(
        (rich["remaining"].as_f64(), rich["low"].as_bool()),
        (Some(100.0), Some(false))
    );
    let or1 = balance_of(&keys, "or/or1");
    assert_eq!(
        (
            or1["remaining"].as_f64(),
            or1["limit"].as_f64(),
            or1["usage"].as_f64()
        ),
        (Some(7.5), Some(100.0), Some(92.5))
    );
    assert_eq!(or1["currency"], "USD");
    let ms1 = balance_of(&keys, "ms/ms1");
    assert_eq!(
        (ms1["remaining"].as_f64(), ms1["low"].as_bool()),
        (Some(49.5), Some(false))
    );
    assert_eq!(
        balance_of(&keys, "plain/p1"),
        &Value::Null,
        "no source: no balance"
    );

    // The low key is first in its pool but out of rotation: the rich one serves.
    let resp = h.chat("m", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["choices"][0]["message"]["content"], "ok from rich");
    let plan = h.admin_json("/admin/api/explain?model=m").await;
    let skipped = plan["skipped"].as_array().expect("skipped");
    assert!(
        skipped.iter().any(|s| s["key_id"] == "poor"
            && s["why"]
                .as_str()
                .unwrap_or("")
                .contains("low on credit: 1.25 CNY left, below 5.00")),
        "{plan}"
    );
    // `/metrics` has each reading, with the low flag.
    let metrics = h
        .http
        .get(h.url("/metrics"))
        .bearer_auth(&h.admin_token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(
            "fluxgate_key_balance{provider=\"ds\",key=\"poor\",currency=\"CNY\",low=\"1\"} 1.25"
        ),
        "{metrics}"
    );
    assert!(metrics.contains(
        "fluxgate_key_balance{provider=\"or\",key=\"or1\",currency=\"USD\",low=\"0\"} 7.5"
    ));

    // Asking again at once is refused, and the vendor was asked once per key.
    let (status, body) = h
        .admin_call(
            reqwest::Method::POST,
            "/admin/api/keys/ds/poor/balance",
            None,
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["type"], "too_soon");
    assert_eq!(h.fake.balance_calls("poor"), 1);
    let (status, body) = h
        .admin_call(
            reqwest::Method::POST,
            "/admin/api/keys/plain/p1/balance",
            None,
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("not read"),
        "{body}"
    );
    let (status, _) = h
        .admin_call(
            reqwest::Method::POST,
            "/admin/api/keys/ds/nope/balance",
            None,
        )
        .await;
    assert_eq!(status, 404);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn when_every_key_is_low_the_low_ones_still_serve() {
    let h = Harness::start_prepared(CONFIG, KEYS, &[], |fake| {
        fake.set_balance("poor", 0.5);
        fake.set_balance("rich", 0.75);
    })
    .await;
    let keys = read_once(&h).await;
    assert_eq!(balance_of(&keys, "ds/rich")["out_of_rotation"], true);
    let resp = h.chat("m", false).send().await.expect("send");
    assert_eq!(resp.status(), 200, "low keys are better than no answer");
    let plan = h.admin_json("/admin/api/explain?model=m").await;
    assert_eq!(plan["degraded"], true, "{plan}");
}

#[tokio::test]
async fn keys_list_reads_balances_on_demand() {
    let fake = fluxgate_testkit::FakeUpstream::start().await;
    let (rich, poor) = (common::canary(), common::canary());
    fake.add_key("rich", &rich);
    fake.add_key("poor", &poor);
    fake.set_balance("poor", 0.42);
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[providers.ds]
kind = "openai-compatible"
base_url = "{}/v1"
balance = "deepseek"
low_balance = 1.0
keys = [{{ id = "rich", secret = "env:FLUXGATE_TEST_RICH" }}, {{ id = "poor", secret = "env:FLUXGATE_TEST_POOR" }}]
"#,
            fake.url()
        ),
    )
    .expect("write");
    let data = dir.path().join("data");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    cmd.args(["keys", "list", "--balance", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .env("HOME", dir.path())
        .env("FLUXGATE_TEST_RICH", &rich)
        .env("FLUXGATE_TEST_POOR", &poor)
        .env_remove("FLUXGATE_CONFIG");
    // The fake runs on this test's runtime: wait for the CLI off it.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run fluxgate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |id: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("ds/{id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("rich").ends_with("balance 100.00 CNY"), "{text}");
    assert!(
        line("poor").ends_with("LOW balance 0.42 CNY (below 1.00)"),
        "{text}"
    );
    assert!(
        !text.contains(&rich[10..]) && !text.contains(&poor[10..]),
        "no key printed"
    );
    assert_eq!(fake.balance_calls("poor"), 1);
}
