//! Client tokens with limits (a team's "virtual keys"), through the real server: a token
//! allowed some routes is refused others with `forbidden` in the client's own dialect, a token
//! allowed some providers is served only by them, an expired token is refused saying so, the
//! admin API refuses lists that name nothing in the config, and the limits are listed.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test

mod common;

use common::Harness;
use fluxgate_core::tokens::TokenLimits;
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

[routes.coding]
targets = ["oa/gpt-4o-mini", "ant/claude-haiku-4-5"]

[routes.chat]
targets = ["oa/gpt-4o-mini"]
"#;

async fn send(h: &Harness, token: &str, model: &str) -> (u16, Value, Option<String>) {
    let resp = h
        .http
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let provider = resp
        .headers()
        .get("x-fluxgate-provider")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (status, resp.json().await.unwrap_or_default(), provider)
}

#[tokio::test]
async fn a_token_limited_to_routes_and_providers_is_held_to_them() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    let resp = h
        .http
        .post(h.url("/admin/api/tokens"))
        .bearer_auth(&h.admin_token)
        .json(&json!({"name": "intern", "routes": ["coding"], "providers": ["ant"], "expires_in_days": 30}))
        .send()
        .await
        .expect("create");
    assert_eq!(resp.status(), 201);
    let made: Value = resp.json().await.expect("json");
    let intern = made["token"].as_str().expect("token").to_string();

    // Its route, served only by its provider (the route would pick `oa` first).
    let (status, _, provider) = send(&h, &intern, "coding").await;
    assert_eq!(status, 200);
    assert_eq!(provider.as_deref(), Some("ant"));
    // Another route: refused before anything is sent, saying what it may use.
    let before = h.fake.log().len();
    let (status, body, _) = send(&h, &intern, "chat").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "forbidden", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("`chat`") && message.contains("coding"),
        "{message}"
    );
    assert_eq!(h.fake.log().len(), before, "nothing was sent");
    // An Anthropic-dialect client gets the refusal in its own shape.
    let resp = h
        .http
        .post(h.url("/v1/messages"))
        .header("x-api-key", &intern)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "chat", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["type"], "error", "{body}");

    // It sees only its route in the model list.
    let models: Value = h
        .http
        .get(h.url("/v1/models"))
        .bearer_auth(&intern)
        .send()
        .await
        .expect("models")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["coding"], "{models}");

    // The harness's own token is unlimited.
    let (status, _, provider) = send(&h, &h.token, "coding").await;
    assert_eq!((status, provider.as_deref()), (200, Some("oa")));

    // The list shows the limits, never the token.
    let list = h.admin_json("/admin/api/tokens").await;
    let row = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["name"] == "intern")
        .expect("listed")
        .clone();
    assert_eq!(row["routes"], json!(["coding"]));
    assert_eq!(row["providers"], json!(["ant"]));
    assert!(row["expires_ms"].as_i64().expect("expiry") > fluxgate_core::clock::now_ms());
    assert!(!list.to_string().contains(&intern));
}

#[tokio::test]
async fn an_expired_token_is_refused_saying_so_and_typos_in_limits_are_refused() {
    let h = Harness::start(CONFIG, &["oa/o1", "ant/a1"], &[]).await;
    let old = h
        .gateway
        .tokens
        .create_with(
            "contractor",
            TokenLimits {
                expires_ms: Some(fluxgate_core::clock::now_ms() - 60_000),
                ..TokenLimits::default()
            },
        )
        .expect("create");
    let (status, body, _) = send(&h, &old, "coding").await;
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains("`contractor` expired at"), "{message}");

    for (ask, says) in [
        (
            json!({"name": "x", "routes": ["codng"]}),
            "no route named `codng`",
        ),
        (
            json!({"name": "x", "providers": ["openai"]}),
            "no provider named `openai`",
        ),
        (
            json!({"name": "x", "expires_in_days": 0}),
            "at least one day",
        ),
        (json!({"name": "x", "route": ["coding"]}), "unknown field"),
    ] {
        let resp = h
            .http
            .post(h.url("/admin/api/tokens"))
            .bearer_auth(&h.admin_token)
            .json(&ask)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 400, "{ask}");
        let body: Value = resp.json().await.expect("json");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(says)),
            "{ask} => {body}"
        );
    }
    h.assert_no_canary_leak();
}
