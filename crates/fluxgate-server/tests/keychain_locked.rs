//! When the keychain cannot be read, requests get a typed 503 and the key's health shows why,
//! without any plaintext fallback and without waiting on the keychain.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxgate_core::config::Config;
use fluxgate_core::gateway::Gateway;
use fluxgate_core::secrets::{SecretError, SecretStore, SecretValue, Secrets};
use fluxgate_core::tokens::AdminToken;
use fluxgate_testkit::FakeUpstream;

/// A keychain whose collection is locked.
struct Locked;

impl SecretStore for Locked {
    fn get(&self, _account: &str) -> Result<SecretValue, SecretError> {
        Err(SecretError::KeychainLocked)
    }
    fn set(&self, _account: &str, _value: &SecretValue) -> Result<(), SecretError> {
        Err(SecretError::KeychainLocked)
    }
    fn delete(&self, _account: &str) -> Result<(), SecretError> {
        Err(SecretError::KeychainLocked)
    }
    fn name(&self) -> &'static str {
        "locked"
    }
}

#[tokio::test]
async fn a_locked_keychain_is_a_typed_503_and_shows_in_health() {
    let fake = FakeUpstream::start().await;
    let dir = common::tempdir();
    let text = format!("[providers.ant]\nkind = \"anthropic\"\nbase_url = \"{}\"\nkeys = [{{ id = \"k\" }}]\n[routes.c]\ntargets = [\"ant/m\"]\n", fake.url());
    let config = Config::from_toml(&text, Path::new("t.toml")).expect("config");
    let gateway = Arc::new(
        Gateway::open(config, dir.path(), Secrets::with_store(Arc::new(Locked))).expect("gateway"),
    );
    let token = gateway.tokens.create("t").expect("token");
    let admin = AdminToken::load_or_create(dir.path()).expect("admin");
    let admin_token = admin.value().expect("value").to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = fluxgate_server::serve(gateway, listener, admin).expect("serve");
    let base = format!("http://{}", handle.addr);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = Instant::now();
    let resp = http
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", &token)
        .json(&serde_json::json!({"model": "c", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .expect("send");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(resp.status(), 503);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "keychain_unavailable");
    assert!(v["error"]["message"]
        .as_str()
        .expect("message")
        .contains("locked"));
    assert!(
        fake.log().is_empty(),
        "nothing may reach the upstream without a key"
    );
    let keys: serde_json::Value = http
        .get(format!("{base}/admin/api/keys"))
        .bearer_auth(&admin_token)
        .send()
        .await
        .expect("admin")
        .json()
        .await
        .expect("json");
    assert!(
        keys["keys"][0]["secret_error"]
            .as_str()
            .expect("secret error")
            .contains("locked"),
        "{keys}"
    );
    handle.shutdown().await;
}
