//! Smarter routing through the real server: a least-cost route over three providers with a
//! daily budget on one of them, a capability route for images, the context-window check,
//! client budgets refused before sending, local rate limits, cache-hit rates, and `explain`,
//! `/metrics`, `/admin/api/budgets`, `/admin/api/usage` and `/v1/models` agreeing with what
//! happened.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::Harness;
use fluxgate_core::events::Event;
use serde_json::{json, Value};

/// Three providers on the fake. Prices are overridden so the numbers are round: per million
/// tokens, deepseek-chat costs $10 of output, gpt-4o-mini $20, claude-haiku-4-5 $30 (input
/// free). With `max_tokens = 10` a request reserves $0.0001 / $0.0002 / $0.0003; the fake
/// reports 7 output tokens, so a request really costs $0.00007 / $0.00014 / $0.00021.
const CONFIG: &str = r#"
[providers.ds]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "d1" }]
models = ["deepseek-chat"]

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }, { id = "o2" }]
models = ["gpt-4o-mini"]

[providers.ant]
kind = "anthropic"
base_url = "{FAKE}"
keys = [{ id = "a1" }]
models = ["claude-haiku-4-5"]

[models."deepseek-chat"]
input_price = 0
output_price = 10
[models."gpt-4o-mini"]
input_price = 0
output_price = 20
cached_input_price = 0
[models."claude-haiku-4-5"]
input_price = 0
output_price = 30

[routes.coding]
targets = ["ant/claude-haiku-4-5", "oa/gpt-4o-mini", "ds/deepseek-chat"]
strategy = "least-cost"

[routes.vision]
capability = ["vision"]
strategy = "least-cost"

[[budgets]]
provider = "ds"
daily_usd = 0.00025
"#;

const LABELS: &[&str] = &["ds/d1", "oa/o1", "oa/o2", "ant/a1"];

fn text_request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "write a parser"}]})
}

fn image_request(model: &str) -> Value {
    json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="}}
    ]}]})
}

async fn served_by(h: &Harness, body: Value) -> String {
    let resp = h
        .post("/v1/chat/completions", body)
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.status(),
        200,
        "{}",
        resp.text().await.unwrap_or_default()
    );
    resp.headers()["x-fluxgate-provider"]
        .to_str()
        .expect("provider header")
        .to_string()
}

#[tokio::test]
async fn least_cost_with_a_daily_budget_falls_back_to_the_next_cheapest_and_remembers() {
    let h = Harness::start(CONFIG, LABELS, &[]).await;
    let mut events = h.gateway.events.subscribe();
    // The cheapest provider serves until its budget would be broken: 3 × $0.00007 spent;
    // a 4th would reserve $0.0001 on top of $0.00021 > $0.00025.
    let mut by = Vec::new();
    for _ in 0..6 {
        by.push(served_by(&h, text_request("coding")).await);
    }
    assert_eq!(by, ["ds", "ds", "ds", "oa", "oa", "oa"]);
    // The fake saw exactly three deepseek requests: none was sent and then refused.
    assert_eq!(h.fake.count("d1"), 3);
    // 84% of the budget: one event at 80%, none at 100%.
    let mut thresholds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let Event::BudgetThreshold {
            scope,
            percent,
            period,
            unit,
            ..
        } = e
        {
            thresholds.push((scope, percent, period, unit));
        }
    }
    assert_eq!(
        thresholds,
        [("provider ds".to_string(), 80, "daily", "usd")]
    );

    // Explain says why deepseek is out and what comes first now.
    let ex = h
        .admin_post(
            "/admin/api/explain",
            json!({"request": text_request("coding")}),
        )
        .await;
    assert_eq!(ex["strategy"], "least-cost");
    assert_eq!(ex["candidates"][0]["provider"], "oa");
    assert_eq!(ex["candidates"][2]["provider"], "ant");
    assert!(ex["candidates"][0]["why"]
        .as_str()
        .is_some_and(|w| w.contains("estimated $0.0002")));
    let skipped = &ex["skipped"][0];
    assert_eq!(skipped["provider"], "ds");
    assert_eq!(skipped["reason"]["why"], "over_budget");
    assert!(skipped["why"]
        .as_str()
        .is_some_and(|w| w.contains("daily budget of provider ds")));

    // `/metrics` and the budgets endpoint agree with the spend.
    h.gateway.flush();
    let page = h.admin_get("/metrics").await.text().await.expect("text");
    let spend = |provider: &str, key: &str| {
        page.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "fluxgate_spend_usd_total{{route=\"coding\",provider=\"{provider}\",key=\"{key}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let ds = spend("ds", "d1").expect("ds spend");
    assert!((ds - 0.00021).abs() < 1e-9, "{ds}");
    let oa = spend("oa", "o1").unwrap_or(0.0) + spend("oa", "o2").unwrap_or(0.0);
    assert!((oa - 3.0 * 0.00014).abs() < 1e-9, "{oa}");
    let ratio = page
        .lines()
        .find(|l| {
            l.starts_with(
                r#"fluxgate_budget_used_ratio{scope="provider:ds",period="daily",unit="usd"}"#,
            )
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("budget gauge");
    assert!((ratio - 0.84).abs() < 1e-6, "{ratio}");
    let budgets = h.admin_json("/admin/api/budgets").await;
    assert_eq!(budgets["budgets"][0]["scope"]["kind"], "provider");
    assert!((budgets["budgets"][0]["daily"]["usd"].as_f64().expect("usd") - 0.00021).abs() < 1e-9);

    // The spend survives a restart: deepseek is still over budget.
    let h = h.restart().await;
    assert_eq!(served_by(&h, text_request("coding")).await, "oa");
    let budgets = h.admin_json("/admin/api/budgets").await;
    assert!((budgets["budgets"][0]["daily"]["usd"].as_f64().expect("usd") - 0.00021).abs() < 1e-9);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_route_without_budget_fallback_refuses_instead_of_trading_down() {
    let config = CONFIG.replace(
        "strategy = \"least-cost\"\n\n[routes.vision]",
        "strategy = \"least-cost\"\nbudget_fallback = false\n\n[routes.vision]",
    );
    assert_ne!(config, CONFIG);
    let h = Harness::start(&config, LABELS, &[]).await;
    for _ in 0..3 {
        assert_eq!(served_by(&h, text_request("coding")).await, "ds");
    }
    let resp = h
        .post("/v1/chat/completions", text_request("coding"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(
        h.fake.count("o1") + h.fake.count("o2") + h.fake.count("a1"),
        0
    );
}

#[tokio::test]
async fn images_go_only_to_models_that_can_see_them() {
    let h = Harness::start(CONFIG, LABELS, &[]).await;
    // The capability route holds every configured vision model; the cheapest serves.
    assert_eq!(served_by(&h, image_request("vision")).await, "oa");
    // On the mixed route an image skips deepseek (no vision) although it is cheaper...
    assert_eq!(served_by(&h, image_request("coding")).await, "oa");
    assert_eq!(h.fake.count("d1"), 0);
    // ...and text goes to deepseek.
    assert_eq!(served_by(&h, text_request("coding")).await, "ds");
    let ex = h
        .admin_post(
            "/admin/api/explain",
            json!({"request": image_request("coding")}),
        )
        .await;
    assert_eq!(ex["request"]["needs"], json!(["chat", "vision"]));
    let skip = &ex["skipped"][0];
    assert_eq!(
        (skip["provider"].as_str(), skip["reason"]["why"].as_str()),
        (Some("ds"), Some("missing_capability"))
    );
    // The vision route lists exactly the models that can see.
    let ex = h
        .admin_post(
            "/admin/api/explain",
            json!({"request": image_request("vision")}),
        )
        .await;
    let models: Vec<&str> = ex["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .filter_map(|c| c["model"].as_str())
        .collect();
    assert_eq!(models, ["gpt-4o-mini", "gpt-4o-mini", "claude-haiku-4-5"]);
    // /v1/models reports what a client may rely on.
    let models: Value = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&h.token)
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    let find = |id: &str| {
        models["data"]
            .as_array()
            .and_then(|d| d.iter().find(|m| m["id"] == id).cloned())
            .unwrap_or(Value::Null)
    };
    let mini = find("gpt-4o-mini");
    assert_eq!(mini["context_window"], 128_000);
    assert_eq!(mini["pricing"]["output"], 20.0);
    assert!(mini["capabilities"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("vision"))));
    // A route promises only what all its targets share: deepseek has no vision.
    let coding = find("coding");
    assert!(!coding["capabilities"]
        .as_array()
        .is_some_and(|c| c.contains(&json!("vision"))));
    assert_eq!(coding["context_window"], 128_000);
    assert_eq!(find("vision")["route_capability"], json!(["vision"]));
}

const SMALL: &str = r#"
[providers.local]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "l1" }]

[providers.big]
kind = "openai-compatible"
base_url = "{FAKE}/v1"
keys = [{ id = "b1", rpm = 2 }]

[models."tiny"]
context_window = 2048

[routes.r]
targets = ["local/tiny", "big/deepseek-chat"]

[routes.limited]
targets = ["big/deepseek-chat"]
"#;

const CLIENT_BUDGET: &str = "[[budgets]]\nclient = \"tests\"\ndaily_tokens = 60\n";

#[tokio::test]
async fn a_prompt_longer_than_a_context_window_skips_that_target_before_sending() {
    let h = Harness::start(SMALL, &["local/l1", "big/b1"], &[]).await;
    let long = "the quick brown fox jumps over the lazy dog ".repeat(400); // ~18 KB, ~4.5K tokens
    let resp = h
        .post(
            "/v1/chat/completions",
            json!({"model": "r", "messages": [{"role": "user", "content": long}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-fluxgate-provider"], "big");
    let ex = h
        .admin_post(
            "/admin/api/explain",
            json!({"request": {"model": "r", "messages": [{"role": "user", "content": long}]}}),
        )
        .await;
    let skip = &ex["skipped"][0];
    assert_eq!(skip["model"], "tiny");
    assert_eq!(skip["reason"]["why"], "context_too_small");
    let estimated = skip["reason"]["estimated_tokens"]
        .as_u64()
        .expect("estimate");
    assert!((4_000..5_000).contains(&estimated), "{estimated}");
    assert_eq!(ex["candidates"][0]["model"], "deepseek-chat");
    assert_eq!(
        h.fake.count("l1"),
        0,
        "the small model never saw the long prompt"
    );
    assert_eq!(h.fake.count("b1"), 1);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn a_request_over_a_client_budget_is_refused_before_sending_in_the_clients_dialect() {
    let h = Harness::start(
        &format!("{SMALL}{CLIENT_BUDGET}"),
        &["local/l1", "big/b1"],
        &[],
    )
    .await;
    // Each request reports 18 tokens; the estimate of the next one must fit in what is left
    // of 60 tokens, so a few requests pass and then the budget refuses.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let resp = h
            .post(
                "/v1/chat/completions",
                json!({"model": "local/tiny", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .send()
            .await
            .expect("send");
        statuses.push(resp.status().as_u16());
        if resp.status() == 402 {
            let body: Value = resp.json().await.expect("json");
            assert_eq!(body["error"]["type"], "budget_exceeded", "{body}");
            let msg = body["error"]["message"].as_str().unwrap_or("");
            assert!(msg.contains("daily budget of client tests"), "{msg}");
            assert!(msg.contains("resets in"), "{msg}");
            break;
        }
    }
    let sent = statuses.iter().filter(|s| **s == 200).count();
    assert!((1..=3).contains(&sent), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&402), "{statuses:?}");
    assert_eq!(h.fake.count("l1"), sent, "the refused request never left");
    // The same refusal in Anthropic's shape.
    let resp = h
        .post(
            "/v1/messages",
            json!({"model": "local/tiny", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(h.fake.count("l1"), sent);
}

#[tokio::test]
async fn a_keys_rpm_limit_holds_requests_back_before_the_upstream_sees_them() {
    let h = Harness::start(SMALL, &["local/l1", "big/b1"], &[]).await;
    for _ in 0..2 {
        assert_eq!(
            h.chat("limited", false)
                .send()
                .await
                .expect("send")
                .status(),
            200
        );
    }
    let resp = h.chat("limited", false).send().await.expect("send");
    assert_eq!(resp.status(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("retry-after");
    assert!((50..=60).contains(&retry), "{retry}");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["error"]["type"], "all_keys_cooling");
    assert_eq!(h.fake.count("b1"), 2);
    let ex = h.admin_json("/admin/api/explain?model=limited").await;
    assert_eq!(ex["skipped"][0]["reason"]["why"], "local_limit");
    assert_eq!(ex["skipped"][0]["reason"]["limit"], "rpm");
}

const CACHE: &str = r#"
[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"
keys = [{ id = "o1" }, { id = "o2" }, { id = "o3" }]

[routes.chat]
targets = ["oa/gpt-4o-mini"]
strategy = "round-robin"
"#;

#[tokio::test]
async fn a_conversation_keeps_its_key_and_the_cache_hit_rate_shows_it() {
    let h = Harness::start(CACHE, &["oa/o1", "oa/o2", "oa/o3"], &[]).await;
    // Five conversations of four turns each: affinity keeps each on one key, so every turn
    // after the first is a prompt-cache hit at the (emulated) provider.
    for c in 0..5 {
        let mut messages = vec![json!({"role": "user", "content": format!("conversation {c}")})];
        for turn in 0..4 {
            let resp = h
                .post(
                    "/v1/chat/completions",
                    json!({"model": "chat", "messages": messages}),
                )
                .send()
                .await
                .expect("send");
            assert_eq!(resp.status(), 200);
            messages.push(json!({"role": "assistant", "content": format!("answer {turn}")}));
            messages.push(json!({"role": "user", "content": format!("more {turn}")}));
        }
    }
    let usage = h.admin_json("/admin/api/usage?hours=1").await;
    let route = &usage["usage"]["by_route"][0];
    assert_eq!(route["route"], "chat");
    assert_eq!(route["requests"], 20);
    // 15 of 20 requests read 8 of their 11 input tokens from the cache.
    assert_eq!(route["tokens_cached"], 15 * 8);
    let rate = route["cache_hit_rate"].as_f64().expect("rate");
    assert!((rate - 120.0 / 220.0).abs() < 1e-9, "{rate}");
    // Per key: every conversation's first turn misses, the other three hit.
    for key in usage["usage"]["by_key"].as_array().expect("keys") {
        let n = key["requests"].as_u64().expect("requests");
        assert_eq!(n % 4, 0, "a conversation moved between keys: {usage}");
        assert_eq!(
            key["tokens_cached"].as_u64(),
            Some(n / 4 * 3 * 8),
            "{usage}"
        );
    }
    let page = h.admin_get("/metrics").await.text().await.expect("text");
    assert!(
        page.contains(
            r#"fluxgate_tokens_total{route="chat",provider="oa",direction="cached"} 120"#
        ),
        "{page}"
    );
    // The records carry it too.
    let recent = h.admin_json("/admin/api/requests?limit=1").await;
    assert_eq!(recent["requests"][0]["tokens_cached"], 8);
    assert_eq!(recent["requests"][0]["upstream_model"], "gpt-4o-mini");
}
