//! Outbound proxies end to end: the real server reaches the fake upstream through a real HTTP
//! `CONNECT` proxy (tinyproxy) and a real SOCKS5 proxy (microsocks) on loopback, with and
//! without credentials; a proxy that refuses, is down or rejects the credentials fails the
//! request over without costing the key anything, and health, explain and events say so.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::Harness;
use fluxgate_testkit::proxies::TestProxy;
use serde_json::Value;

/// A provider `oa` of two keys, `p1` going through `proxy` and `p2` direct, on one route.
fn config(proxies: &str, p1_proxy: &str) -> String {
    format!(
        r#"
{proxies}

[providers.oa]
kind = "openai-compatible"
base_url = "{{FAKE}}/v1"
keys = [{{ id = "p1", proxy = "{p1_proxy}" }}, {{ id = "p2", proxy = "direct" }}]

[routes."gpt-4o"]
targets = ["oa/upstream-model"]
"#
    )
}

/// A random proxy password. Not a registered canary: the test proxies keep it in their own
/// config files, which the canary scan would flag; the harness's leak check looks for it in
/// Fluxgate's log and data directory instead (`store_secret`).
fn proxy_password() -> String {
    use rand::Rng;
    let b: [u8; 12] = rand::rng().random();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn key<'a>(keys: &'a Value, id: &str) -> &'a Value {
    keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key_id"] == id)
        .expect("the key is listed")
}

async fn chat_ok(h: &Harness) -> String {
    let resp = h.chat("gpt-4o", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.expect("json");
    v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string()
}

#[tokio::test]
async fn requests_go_through_an_authenticated_connect_proxy() {
    let password = proxy_password();
    let proxy = TestProxy::http(Some(("alice", &password)));
    let proxies = format!(
        "[proxies.corp]\nurl = \"http://{}\"\nusername = \"alice\"\npassword = \"keychain\"",
        proxy.addr()
    );
    let mut h = Harness::start(&config(&proxies, "corp"), &["oa/p1", "oa/p2"], &[]).await;
    h.store_secret("proxy:corp", &password);
    assert_eq!(chat_ok(&h).await, "ok from p1");
    assert_eq!(chat_ok(&h).await, "ok from p1", "the pool is reused");
    assert!(proxy.tunnels() >= 1, "the proxy opened the tunnel");
    let keys = h.admin_keys().await;
    assert_eq!(key(&keys, "p1")["proxy"], "corp");
    assert_eq!(key(&keys, "p1")["proxy_error"], Value::Null);
    assert_eq!(key(&keys, "p2")["proxy"], Value::Null);
    // explain names the proxy each candidate goes through.
    let plan = h.admin_json("/admin/api/explain?model=gpt-4o").await;
    assert_eq!(plan["candidates"][0]["proxy"], "corp");
    assert_eq!(plan["candidates"][1]["proxy"], Value::Null);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn socks5h_carries_requests_and_a_streamed_answer() {
    let password = proxy_password();
    let proxy = TestProxy::socks5(Some(("bob", &password)));
    let proxies = format!(
        "[proxies.tunnel]\nurl = \"socks5h://{}\"\nusername = \"bob\"\npassword = \"keychain\"",
        proxy.addr()
    );
    let mut h = Harness::start(&config(&proxies, "tunnel"), &["oa/p1", "oa/p2"], &[]).await;
    h.store_secret("proxy:tunnel", &password);
    assert_eq!(chat_ok(&h).await, "ok from p1");
    let resp = h.chat("gpt-4o", true).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.expect("stream");
    assert!(text.contains("data: [DONE]"), "{text}");
    assert!(proxy.tunnels() >= 1, "microsocks connected to the upstream");
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn an_unauthenticated_socks5_url_works_inline() {
    let proxy = TestProxy::socks5(None);
    let url = format!("socks5://{}", proxy.addr());
    let h = Harness::start(&config("", &url), &["oa/p1", "oa/p2"], &[]).await;
    assert_eq!(chat_ok(&h).await, "ok from p1");
    assert!(proxy.tunnels() >= 1, "{}", proxy.log());
    let keys = h.admin_keys().await;
    assert_eq!(key(&keys, "p1")["proxy"], url.as_str());
}

/// Sends one request that the proxied key cannot serve; the direct key serves it. Returns
/// the proxied key's health and the proxy error it shows.
async fn fails_over_without_blame(h: &Harness, says: &str) {
    assert_eq!(chat_ok(h).await, "ok from p2", "the direct key served it");
    let keys = h.admin_keys().await;
    let p1 = key(&keys, "p1");
    assert_eq!(p1["status"], "healthy", "the key is not blamed: {p1}");
    assert_eq!(p1["reason"], Value::Null, "{p1}");
    assert_eq!(p1["last_message"], Value::Null, "{p1}");
    let err = p1["proxy_error"]
        .as_str()
        .expect("the proxy's failure is shown");
    assert!(err.contains(says), "{err}");
    let plan = h.admin_json("/admin/api/explain?model=gpt-4o").await;
    let shown = plan["candidates"][0]["proxy_error"].as_str().unwrap_or("");
    assert!(shown.contains(says), "explain shows it too: {plan}");
}

#[tokio::test]
async fn wrong_credentials_are_the_proxys_failure_not_the_keys() {
    let http = TestProxy::http(Some(("alice", "right")));
    let socks = TestProxy::socks5(Some(("bob", "right")));
    let proxies = format!(
        "[proxies.corp]\nurl = \"http://{}\"\nusername = \"alice\"\npassword = \"keychain\"\n\
         [proxies.tunnel]\nurl = \"socks5h://{}\"\nusername = \"bob\"\npassword = \"keychain\"",
        http.addr(),
        socks.addr()
    );
    for (name, says) in [
        ("corp", "refused the user name and password"),
        ("tunnel", "refused the user name and password"),
    ] {
        let mut h = Harness::start(&config(&proxies, name), &["oa/p1", "oa/p2"], &[]).await;
        h.store_secret(&format!("proxy:{name}"), "wrong");
        fails_over_without_blame(&h, says).await;
        assert_eq!(
            h.fake.log().len(),
            1,
            "only the direct key reached the upstream"
        );
    }
}

#[tokio::test]
async fn a_proxy_that_refuses_the_tunnel_or_is_down_fails_over() {
    let refusing = TestProxy::http_refusing();
    let url = format!("http://{}", refusing.addr());
    let h = Harness::start(&config("", &url), &["oa/p1", "oa/p2"], &[]).await;
    fails_over_without_blame(&h, "refused the tunnel").await;
    assert!(refusing.tunnels() >= 1, "tinyproxy was asked");

    let mut down = TestProxy::socks5(None);
    let url = format!("socks5h://{}", down.addr());
    down.stop();
    let h = Harness::start(&config("", &url), &["oa/p1", "oa/p2"], &[]).await;
    let mut events = Box::pin(h.admin_events().await);
    fails_over_without_blame(&h, "cannot connect to the proxy").await;
    // The console and the tray hear that the proxy is failing.
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains("proxy_state_changed") && tokio::time::Instant::now() < deadline {
        use futures_util::StreamExt;
        match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(Ok(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(seen.contains("proxy_state_changed"), "{seen}");
    // Back up: once its short rest is over (the direct key serves meanwhile), a request goes
    // through it again and clears its error.
    down.start_again();
    let mut served = Vec::new();
    for _ in 0..20 {
        served.push(chat_ok(&h).await);
        if served.last().is_some_and(|s| s == "ok from p1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(
        served.last().map(String::as_str),
        Some("ok from p1"),
        "{served:?}"
    );
    assert!(served.len() > 1, "it rested first: {served:?}");
    let keys = h.admin_keys().await;
    assert_eq!(key(&keys, "p1")["proxy_error"], Value::Null);
}

#[tokio::test]
async fn when_every_key_is_behind_a_dead_proxy_the_client_is_told_so() {
    let mut down = TestProxy::http(None);
    let url = format!("http://{}", down.addr());
    down.stop();
    let only_p1 = config("", &url).replace(", { id = \"p2\", proxy = \"direct\" }", "");
    let h = Harness::start(&only_p1, &["oa/p1"], &[]).await;
    let resp = h.chat("gpt-4o", false).send().await.expect("send");
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.expect("json");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.contains(&format!("proxy {url}")), "{message}");
    assert!(message.contains("cannot connect to the proxy"), "{message}");
    let keys = h.admin_keys().await;
    assert_eq!(key(&keys, "p1")["status"], "healthy");
    // Its proxy rests after the failure, but with no other key to serve, the next request
    // still tries it (and finds out whether it is back).
    down.start_again();
    assert_eq!(chat_ok(&h).await, "ok from p1");
    assert_eq!(h.fake.log().len(), 1);
}

#[tokio::test]
async fn a_proxy_that_swallows_connections_rests_while_other_keys_serve() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    // Accepts connections and never answers, as a wedged proxy would.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(s);
        }
    });
    let url = format!("http://{addr}");
    let h = Harness::start(
        &config("[timeouts]\nconnect = 0.5", &url),
        &["oa/p1", "oa/p2"],
        &[],
    )
    .await;
    fails_over_without_blame(&h, "no tunnel within 0.5 s").await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    // The proxy rests: the next requests go to the direct key without waiting on it.
    assert_eq!(chat_ok(&h).await, "ok from p2");
    assert_eq!(chat_ok(&h).await, "ok from p2");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "the resting proxy was left alone"
    );
    let keys = h.admin_keys().await;
    assert_eq!(keys["proxies"][0]["proxy"], url.as_str());
    assert_eq!(keys["proxies"][0]["ok"], false);
    assert_eq!(keys["proxies"][0]["failures"], 1);
}

#[tokio::test]
async fn a_proxy_password_that_cannot_be_read_is_the_proxys_failure() {
    let proxy = TestProxy::http(Some(("alice", "pw")));
    let proxies = format!(
        "[proxies.corp]\nurl = \"http://{}\"\nusername = \"alice\"\npassword = \"keychain\"",
        proxy.addr()
    );
    // Nothing stored under proxy:corp.
    let h = Harness::start(&config(&proxies, "corp"), &["oa/p1", "oa/p2"], &[]).await;
    fails_over_without_blame(&h, "cannot read its password").await;
    assert_eq!(proxy.tunnels(), 0, "nothing was sent without the password");
}

#[tokio::test]
async fn an_https_proxy_with_a_private_ca_carries_requests_and_others_are_refused() {
    let ca = fluxgate_testkit::tls::TestCa::new();
    let proxy = TestProxy::https(&ca, Some(("alice", "pw")));
    let named = |ca_line: &str| {
        format!(
            "[proxies.tls]\nurl = \"https://{}\"\nusername = \"alice\"\npassword = \"keychain\"\n{ca_line}",
            proxy.addr()
        )
    };
    let trusted = named(&format!("ca = \"{}\"", ca.ca_path().display()));
    let mut h = Harness::start(&config(&trusted, "tls"), &["oa/p1", "oa/p2"], &[]).await;
    h.store_secret("proxy:tls", "pw");
    assert_eq!(chat_ok(&h).await, "ok from p1");
    assert!(
        proxy.tunnels() >= 1,
        "tinyproxy behind TLS opened the tunnel"
    );
    // Without the CA, the proxy's certificate is not trusted: its failure, not the key's.
    let mut h = Harness::start(&config(&named(""), "tls"), &["oa/p1", "oa/p2"], &[]).await;
    h.store_secret("proxy:tls", "pw");
    fails_over_without_blame(&h, "TLS with the proxy").await;
}

#[tokio::test]
async fn tls_to_an_https_upstream_runs_inside_the_tunnel() {
    // An https upstream whose certificate a private CA signed: the public roots Fluxgate
    // trusts for upstreams refuse it. The refusal comes from inside the CONNECT tunnel, so it
    // is the upstream's failure, not the proxy's, and the proxy only ever saw the tunnel.
    let ca = fluxgate_testkit::tls::TestCa::new();
    let proxy = TestProxy::http(None);
    let mut h = Harness::start(
        &config("", &format!("http://{}", proxy.addr())),
        &["oa/p1", "oa/p2"],
        &[],
    )
    .await;
    let port: u16 = h
        .fake
        .url()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let front = fluxgate_testkit::proxies::TlsFront::start(&ca, port);
    let text = std::fs::read_to_string(h.dir.path().join("config.toml")).expect("config");
    let https = text.replace(
        &h.fake.url(),
        &format!("https://127.0.0.1:{}", front.port()),
    );
    std::fs::write(h.dir.path().join("config.toml"), https).expect("write");
    h = h.restart().await;
    let resp = h.chat("gpt-4o", false).send().await.expect("send");
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.expect("json");
    let message = v["error"]["message"].as_str().expect("message");
    assert!(message.contains("certificate"), "{message}");
    assert!(
        !message.contains("proxy"),
        "the upstream's failure, not the proxy's: {message}"
    );
    assert!(
        proxy.tunnels() >= 1,
        "the proxy opened the tunnel: {}",
        proxy.log()
    );
    assert!(
        proxy
            .log()
            .contains(&format!("CONNECT 127.0.0.1:{}", front.port())),
        "{}",
        proxy.log()
    );
    let keys = h.admin_keys().await;
    assert_eq!(key(&keys, "p1")["proxy_error"], Value::Null);
}
