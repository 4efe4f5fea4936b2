//! The admin API's writes through the real server: keys are write-only (set, replace, test,
//! disable, enable, delete), providers and routes are edited in the config file with
//! comments kept, invalid edits are refused with nothing written, pause/resume, client
//! setup, and the console's one-time login and session cookie.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use common::{canary, register_canary, Harness};
use reqwest::Method;
use serde_json::{json, Value};

const CONFIG: &str = r#"# Fluxgate config for the management tests
# (this comment must survive every edit)

[providers.oa]
kind = "openai"
base_url = "{FAKE}/v1"   # the fake upstream
keys = [{ id = "o1" }]

[routes.m]
targets = ["oa/m"]  # one target
"#;

fn config_text(h: &Harness) -> String {
    std::fs::read_to_string(h.dir.path().join("config.toml")).expect("config file")
}

#[tokio::test]
async fn keys_are_written_into_the_keychain_and_never_come_back() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let secret = canary();
    h.fake.add_key("o2", &secret);

    // Add a key: into the keychain, the config gets only its id.
    let (status, body) = h
        .admin_call(
            Method::PUT,
            "/admin/api/keys/oa/o2",
            Some(json!({"secret": secret})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stored_in"], "keychain");
    assert_eq!(body["hint"], format!("…{}", &secret[secret.len() - 4..]));
    assert_eq!(h.stored_secret("oa/o2").as_deref(), Some(secret.as_str()));
    let text = config_text(&h);
    assert!(
        text.contains(r#"keys = [{ id = "o1" }, { id = "o2" }]"#),
        "{text}"
    );
    assert!(text.starts_with(
        "# Fluxgate config for the management tests\n# (this comment must survive every edit)\n"
    ));
    assert!(
        text.contains("# the fake upstream") && text.contains("# one target"),
        "{text}"
    );
    assert!(!text.contains(&secret[..12]));

    // It serves at once, and its test passes.
    let (status, body) = h
        .admin_call(Method::POST, "/admin/api/keys/oa/o2/test", None)
        .await;
    assert_eq!((status, body["ok"].clone()), (200, json!(true)), "{body}");
    assert!(h.fake.log().iter().any(|a| a.key == "o2"));

    // Replace it: same id, new secret, 200; the old one is gone from the keychain.
    let newer = canary();
    h.fake.add_key("o2b", &newer);
    let (status, body) = h
        .admin_call(
            Method::PUT,
            "/admin/api/keys/oa/o2",
            Some(json!({"secret": newer})),
        )
        .await;
    assert_eq!(
        (status, body["added"].clone()),
        (200, json!(false)),
        "{body}"
    );
    assert_eq!(h.stored_secret("oa/o2").as_deref(), Some(newer.as_str()));
    let (_, body) = h
        .admin_call(Method::POST, "/admin/api/keys/oa/o2/test", None)
        .await;
    assert_eq!(body["ok"], true, "{body}");
    assert_eq!(
        h.fake.log().last().map(|a| a.key.clone()).as_deref(),
        Some("o2b")
    );

    // A key the upstream rejects fails its test with the reason, and its health says so.
    let bad = canary();
    let (status, _) = h
        .admin_call(
            Method::PUT,
            "/admin/api/keys/oa/o3",
            Some(json!({"secret": bad})),
        )
        .await;
    assert_eq!(status, 201);
    let (_, body) = h
        .admin_call(Method::POST, "/admin/api/keys/oa/o3/test", None)
        .await;
    assert_eq!(
        (body["ok"].clone(), body["class"].clone()),
        (json!(false), json!("auth_failed")),
        "{body}"
    );
    let keys = h.admin_keys().await;
    let o3 = keys["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["key_id"] == "o3")
        .expect("o3")
        .clone();
    assert_eq!(o3["status"], "dead", "{o3}");

    // Disable and enable: written to the file, applied at once.
    let (status, _) = h
        .admin_call(Method::POST, "/admin/api/keys/oa/o3/disable", None)
        .await;
    assert_eq!(status, 200);
    assert!(
        config_text(&h).contains(r#"{ id = "o3", enabled = false }"#),
        "{}",
        config_text(&h)
    );
    let status_of = |keys: &serde_json::Value, id: &str| {
        keys["keys"]
            .as_array()
            .expect("keys")
            .iter()
            .find(|k| k["key_id"] == id)
            .map(|k| k["status"].clone())
    };
    assert_eq!(
        status_of(&h.admin_keys().await, "o3"),
        Some(json!("disabled"))
    );
    let (status, _) = h
        .admin_call(Method::POST, "/admin/api/keys/oa/o3/enable", None)
        .await;
    assert_eq!(status, 200);
    assert!(config_text(&h).contains(r#"{ id = "o3" }"#));

    // Delete: out of the config and out of the keychain.
    let (status, body) = h
        .admin_call(Method::DELETE, "/admin/api/keys/oa/o3", None)
        .await;
    assert_eq!(
        (status, body["keychain_entry_deleted"].clone()),
        (200, json!(true)),
        "{body}"
    );
    assert_eq!(h.stored_secret("oa/o3"), None);
    assert!(!config_text(&h).contains("o3"));
    assert_eq!(status_of(&h.admin_keys().await, "o3"), None);

    // Nothing the admin API answers holds a key: config, keys, requests, explain, events.
    for path in [
        "/admin/api/config",
        "/admin/api/keys",
        "/admin/api/requests",
        "/admin/api/explain?model=m",
        "/metrics",
    ] {
        let text = h.admin_get(path).await.text().await.expect("text");
        for k in [&secret, &newer, &bad] {
            assert!(!text.contains(&k[..12]), "{path} shows a key");
        }
    }
    register_canary(&secret);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn bad_key_writes_are_refused_with_what_to_do() {
    let h = Harness::start(
        &CONFIG.replace(
            r#"keys = [{ id = "o1" }]"#,
            r#"keys = [{ id = "o1" }, { id = "e", secret = "env:FLUXGATE_TEST_UNSET_VAR" }]"#,
        ),
        &["oa/o1"],
        &[],
    )
    .await;
    let before = config_text(&h);
    let cases = [
        (
            "/admin/api/keys/nope/k",
            json!({"secret": "sk-abcdefghijklmnop"}),
            404,
            "add the provider first",
        ),
        (
            "/admin/api/keys/oa/e",
            json!({"secret": "sk-abcdefghijklmnop"}),
            409,
            "env:FLUXGATE_TEST_UNSET_VAR",
        ),
        (
            "/admin/api/keys/oa/k",
            json!({"secret": "  "}),
            400,
            "empty",
        ),
        (
            "/admin/api/keys/oa/k",
            json!({"key": "sk-abcdefghijklmnop"}),
            400,
            "expected {\"secret\"",
        ),
        (
            "/admin/api/keys/oa/bad%20id",
            json!({"secret": "sk-abcdefghijklmnop"}),
            422,
            "not a valid name",
        ),
    ];
    for (path, body, want, says) in cases {
        let (status, answer) = h.admin_call(Method::PUT, path, Some(body)).await;
        assert_eq!(status, want, "{path}: {answer}");
        let msg = answer["error"]["message"].as_str().expect("message");
        assert!(msg.contains(says), "{path}: {msg}");
        assert!(!msg.contains("sk-abcdefghijklmnop"), "{msg}");
    }
    // The refused "bad id" left no secret behind.
    assert_eq!(h.stored_secret("oa/bad id"), None);
    assert_eq!(config_text(&h), before);
}

#[tokio::test]
async fn routes_and_providers_are_edited_with_a_live_preview_and_invalid_edits_change_nothing() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;

    // A draft is explained without being saved.
    let (status, plan) = h
        .admin_call(
            Method::POST,
            "/admin/api/routes/m/preview",
            Some(json!({"targets": ["oa/gpt-4o", "oa/gpt-4o-mini"], "strategy": "priority"})),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let models: Vec<_> = plan["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| c["model"].clone())
        .collect();
    assert_eq!(models, vec![json!("gpt-4o"), json!("gpt-4o-mini")]);
    assert!(config_text(&h).contains(r#"targets = ["oa/m"]  # one target"#));

    // A least-cost draft ranks by the catalogue's list prices and says them (there is no
    // request to estimate).
    let (status, plan) = h
        .admin_call(
            Method::POST,
            "/admin/api/routes/m/preview",
            Some(json!({"targets": ["oa/gpt-4o", "oa/gpt-4o-mini"], "strategy": "least-cost"})),
        )
        .await;
    assert_eq!(status, 200, "{plan}");
    let first = &plan["candidates"][0];
    assert_eq!(
        first["model"], "gpt-4o-mini",
        "the cheaper list price first: {plan}"
    );
    let why = first["why"].as_str().expect("why");
    assert!(
        why.contains("list price $0.15 in / $0.60 out per 1M tokens"),
        "{why}"
    );
    assert!(!plan.to_string().contains("price unknown"), "{plan}");

    // An invalid draft says why.
    let (status, err) = h
        .admin_call(
            Method::POST,
            "/admin/api/routes/m/preview",
            Some(json!({"targets": ["ghost/gpt-4o"]})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("ghost"),
        "{err}"
    );

    // Add a provider and a route over both; the route serves at once.
    let (status, body) = h
        .admin_call(Method::POST, "/admin/api/providers", Some(json!({"name": "second", "kind": "openai-compatible", "base_url": format!("{}/v1", h.fake.url()), "models": ["m2"]})))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = h
        .admin_call(
            Method::PUT,
            "/admin/api/routes/both",
            Some(json!({"targets": ["oa/m", "second/m2"], "strategy": "round-robin"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = h.chat("both", false).send().await.expect("chat");
    assert_eq!(resp.status(), 200);
    let text = config_text(&h);
    assert!(
        text.contains("[providers.second]\nkind = \"openai-compatible\""),
        "{text}"
    );
    assert!(
        text.contains(
            "[routes.both]\ntargets = [\"oa/m\", \"second/m2\"]\nstrategy = \"round-robin\""
        ),
        "{text}"
    );

    // Removing a provider a route still names is refused; the file stays as it was.
    let before = config_text(&h);
    let (status, err) = h
        .admin_call(Method::DELETE, "/admin/api/providers/second", None)
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("msg")
            .contains("both"),
        "{err}"
    );
    assert_eq!(config_text(&h), before);

    // Disabling the provider shows in the config view; deleting the route then the provider works.
    let (status, _) = h
        .admin_call(
            Method::PATCH,
            "/admin/api/providers/second",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 200);
    let conf = h.admin_json("/admin/api/config").await;
    assert_eq!(conf["providers"][1]["enabled"], false, "{conf}");
    // Its base URL and models are edited in place; an invalid URL changes nothing and says why.
    let (status, _) = h
        .admin_call(
            Method::PATCH,
            "/admin/api/providers/second",
            Some(
                json!({"base_url": "http://127.0.0.1:11434/v1", "models": ["llama3.2", "qwen2.5"]}),
            ),
        )
        .await;
    assert_eq!(status, 200);
    let conf = h.admin_json("/admin/api/config").await;
    assert_eq!(
        conf["providers"][1]["base_url"], "http://127.0.0.1:11434/v1",
        "{conf}"
    );
    assert_eq!(
        conf["providers"][1]["models"],
        json!(["llama3.2", "qwen2.5"])
    );
    let before = config_text(&h);
    let (status, err) = h
        .admin_call(
            Method::PATCH,
            "/admin/api/providers/second",
            Some(json!({"base_url": "not a url"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .expect("message")
            .contains("base_url"),
        "{err}"
    );
    assert_eq!(config_text(&h), before);
    let (status, err) = h
        .admin_call(
            Method::PATCH,
            "/admin/api/providers/second",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(
        h.admin_call(Method::DELETE, "/admin/api/routes/both", None)
            .await
            .0,
        200
    );
    assert_eq!(
        h.admin_call(Method::DELETE, "/admin/api/providers/second", None)
            .await
            .0,
        200
    );
    assert!(!config_text(&h).contains("second"));
    assert!(config_text(&h).starts_with("# Fluxgate config for the management tests"));

    // A restart reads the edited file.
    let h = h.restart().await;
    let conf = h.admin_json("/admin/api/config").await;
    assert_eq!(conf["providers"].as_array().expect("providers").len(), 1);
}

#[tokio::test]
async fn pause_refuses_requests_in_the_clients_dialect_until_resumed() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let mut events = h.gateway.events.subscribe();
    let (_, body) = h.admin_call(Method::POST, "/admin/api/pause", None).await;
    assert_eq!(body["paused"], true);
    let sent = h.fake.log().len();
    let r = h.chat("m", false).send().await.expect("chat");
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["type"], "routing_paused", "{body}");
    let r = h.messages("oa/m", false).send().await.expect("messages");
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(
        (body["type"].clone(), body["error"]["type"].clone()),
        (json!("error"), json!("routing_paused"))
    );
    assert_eq!(h.fake.log().len(), sent, "nothing is sent while paused");
    assert_eq!(h.admin_json("/admin/api/config").await["paused"], true);
    let e = events.recv().await.expect("event");
    assert!(
        matches!(
            e,
            fluxgate_core::events::Event::RoutingPaused { paused: true }
        ),
        "{e:?}"
    );
    h.admin_call(Method::POST, "/admin/api/resume", None).await;
    assert_eq!(h.chat("m", false).send().await.expect("chat").status(), 200);
}

#[tokio::test]
async fn client_setup_makes_a_working_token_for_the_tool() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    for (client, needle) in [
        ("claude-code", "ANTHROPIC_BASE_URL="),
        ("codex", "wire_api = \"responses\""),
        ("openai-sdk", "OPENAI_BASE_URL="),
    ] {
        let (status, body) = h
            .admin_call(
                Method::POST,
                "/admin/api/setup",
                Some(json!({"client": client})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let text = body["text"].as_str().expect("text");
        assert!(text.contains(needle) && text.contains(&h.base), "{text}");
        let token = text
            .split(|c: char| c == '=' || c == '"' || c.is_whitespace())
            .find(|w| w.starts_with("fgk_"))
            .unwrap_or_else(|| panic!("a token in {text}"));
        let r = h
            .http
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(token)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .expect("chat");
        assert_eq!(r.status(), 200, "the {client} token works");
    }
    let tokens = h.admin_json("/admin/api/tokens").await;
    let names: Vec<_> = tokens["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["name"].clone())
        .collect();
    assert!(
        names.contains(&json!("claude-code")) && names.contains(&json!("codex")),
        "{names:?}"
    );
    // Each token says when it last let a request in; one never used says none.
    let listed = |name: &str| {
        tokens["tokens"]
            .as_array()
            .and_then(|l| l.iter().find(|t| t["name"] == name))
            .cloned()
            .expect("listed")
    };
    assert!(listed("claude-code")["last_used_ms"].is_i64(), "{tokens}");
    assert_eq!(listed("tests")["last_used_ms"], Value::Null, "{tokens}");
    let (status, _) = h
        .admin_call(
            Method::POST,
            "/admin/api/setup",
            Some(json!({"client": "cursor"})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_console_signs_in_once_per_link_and_its_cookie_cannot_write_cross_site() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let (status, body) = h
        .admin_call(Method::POST, "/admin/api/console/login", None)
        .await;
    assert_eq!(status, 201);
    let url = body["url"].as_str().expect("url").to_string();
    assert!(
        url.starts_with(&format!("{}/admin/login?code=", h.base)),
        "{url}"
    );
    let no_redirect = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = no_redirect.get(&url).send().await.expect("login");
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/admin"),
        "{cookie}"
    );
    let session = cookie.split(';').next().expect("pair").to_string();
    // The session's secret comes in the redirect's fragment, for the page's script only.
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let secret = location
        .strip_prefix("/admin/#fluxgate-session=")
        .expect("the secret in the fragment")
        .to_string();
    assert_eq!(secret.len(), 64, "{location}");
    assert!(
        !cookie.contains(&secret),
        "the cookie must not carry the secret"
    );
    // The link works once.
    assert_eq!(
        no_redirect.get(&url).send().await.expect("again").status(),
        401
    );

    let with = |m: Method, path: &str| {
        no_redirect
            .request(m, h.url(path))
            .header("cookie", session.clone())
            .header("x-fluxgate-session", secret.clone())
    };
    // RELIABILITY.md 28: the cookie alone is what any local port the browser visits receives.
    // Replayed from a non-browser client, with the console's own Origin forged, it is nothing.
    for (m, path) in [
        (Method::GET, "/admin/api/keys"),
        (Method::GET, "/admin/api/config"),
        (Method::POST, "/admin/api/pause"),
        (Method::POST, "/admin/api/console/login"),
    ] {
        let r = no_redirect
            .request(m.clone(), h.url(path))
            .header("cookie", session.clone())
            .header("origin", h.base.clone())
            .send()
            .await
            .expect("replay");
        assert_eq!(r.status(), 401, "{m} {path} with the stolen cookie alone");
        let r = no_redirect
            .request(m.clone(), h.url(path))
            .header("x-fluxgate-session", secret.clone())
            .header("origin", h.base.clone())
            .send()
            .await
            .expect("replay");
        assert_eq!(r.status(), 401, "{m} {path} with the secret but no cookie");
    }
    assert!(!h.gateway.paused.load(std::sync::atomic::Ordering::SeqCst));
    // Another session's secret does not fit this cookie.
    let (_, other) = h
        .admin_call(Method::POST, "/admin/api/console/login", None)
        .await;
    let r = no_redirect
        .get(other["url"].as_str().expect("url"))
        .send()
        .await
        .expect("login");
    let other_secret = r.headers()["location"]
        .to_str()
        .expect("location")
        .trim_start_matches("/admin/#fluxgate-session=")
        .to_string();
    let r = no_redirect
        .get(h.url("/admin/api/keys"))
        .header("cookie", session.clone())
        .header("x-fluxgate-session", other_secret)
        .send()
        .await
        .expect("keys");
    assert_eq!(r.status(), 401, "a secret from another session");
    assert_eq!(
        with(Method::GET, "/admin/api/keys")
            .send()
            .await
            .expect("keys")
            .status(),
        200
    );
    // A write with the cookie but no Origin (not from the console's own page) is refused...
    assert_eq!(
        with(Method::POST, "/admin/api/pause")
            .send()
            .await
            .expect("pause")
            .status(),
        401
    );
    // ... a foreign Origin is refused before anything else ...
    let r = with(Method::POST, "/admin/api/pause")
        .header("origin", "http://evil.example")
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), 403);
    assert!(!h.gateway.paused.load(std::sync::atomic::Ordering::SeqCst));
    // ... and the console's own Origin works.
    let r = with(Method::POST, "/admin/api/pause")
        .header("origin", h.base.clone())
        .send()
        .await
        .expect("pause");
    assert_eq!(r.status(), 200);
    assert!(h.gateway.paused.load(std::sync::atomic::Ordering::SeqCst));
    // A made-up session is nothing.
    let r = no_redirect
        .get(h.url("/admin/api/keys"))
        .header("cookie", "fluxgate_console=00ff")
        .send()
        .await
        .expect("keys");
    assert_eq!(r.status(), 401);
    // Signing out ends the session.
    let r = with(Method::POST, "/admin/api/logout")
        .header("origin", h.base.clone())
        .send()
        .await
        .expect("logout");
    assert_eq!(r.status(), 200);
    assert_eq!(
        with(Method::GET, "/admin/api/keys")
            .send()
            .await
            .expect("keys")
            .status(),
        401
    );
}

#[tokio::test]
async fn the_console_page_is_served_with_a_strict_policy() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let r = h.http.get(h.url("/admin/")).send().await.expect("console");
    let csp = r
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().expect("csp").to_string());
    assert_eq!(
        r.status(),
        200,
        "the console is built into the binary (scripts/test.sh builds ui/ first)"
    );
    let csp = csp.expect("a CSP");
    assert!(
        csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    let html = r.text().await.expect("html");
    assert!(html.contains("<title>Fluxgate</title>"));
    // Every script and stylesheet the page names is served from here with a strict type.
    for part in html.split('"').filter(|p| p.starts_with("/admin/assets/")) {
        let r = h.http.get(h.url(part)).send().await.expect("asset");
        assert_eq!(r.status(), 200, "{part}");
        let ct = r.headers()["content-type"]
            .to_str()
            .expect("type")
            .to_string();
        assert!(
            ct.starts_with("text/javascript") || ct.starts_with("text/css"),
            "{part}: {ct}"
        );
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    }
    assert_eq!(
        h.http
            .get(h.url("/admin/nope.js"))
            .send()
            .await
            .expect("404")
            .status(),
        404
    );
    let r = h
        .http
        .get(h.url("/admin/login?code=bogus"))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 401);
    assert!(r.text().await.expect("page").contains("fluxgate console"));
}

#[tokio::test]
async fn a_key_can_be_read_from_a_file_or_a_variable_instead_of_the_keychain() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    // The keychain's state is known before a key is pasted.
    let kc = h.admin_json("/admin/api/keychain").await;
    assert_eq!(
        (kc["state"].as_str(), kc["available"].as_bool()),
        (Some("ok"), Some(true)),
        "{kc}"
    );

    // A file holding the key: the config names the file, nothing is stored, the key serves.
    // Not a registered canary: the file is the one place it is meant to be (the leak scan
    // reads the test's directory).
    let secret = format!("sk-filekey-{:032x}", rand::random::<u128>());
    h.fake.add_key("o3", &secret);
    let file = h.dir.path().join("o3.key");
    std::fs::write(&file, format!("{secret}\n")).expect("key file");
    let (status, body) = h
        .admin_call(
            Method::PUT,
            "/admin/api/keys/oa/o3",
            Some(json!({"file": file.display().to_string()})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stored_in"], format!("file:{}", file.display()));
    assert_eq!(body["note"], Value::Null, "readable: {body}");
    assert_eq!(h.stored_secret("oa/o3"), None, "nothing in the keychain");
    assert!(config_text(&h).contains(&format!(
        r#"{{ id = "o3", secret = "file:{}" }}"#,
        file.display()
    )));
    h.gateway.health.revive("oa/o1");
    h.fake.script("o1", [fluxgate_testkit::Fault::status(401)]);
    let resp = h.chat("m", false).send().await.expect("send");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-fluxgate-key"],
        "o3",
        "served with the file's key"
    );

    // A variable that is not set: added, and the answer says it is skipped until it is.
    let (status, body) = h
        .admin_call(
            Method::PUT,
            "/admin/api/keys/oa/o4",
            Some(json!({"env": "FLUXGATE_TEST_UNSET_KEY_VAR"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["stored_in"], "env:FLUXGATE_TEST_UNSET_KEY_VAR");
    assert!(
        body["note"]
            .as_str()
            .is_some_and(|n| n.contains("skipped until")),
        "{body}"
    );

    // Bad sources are refused with the reason, and change nothing.
    let before = config_text(&h);
    for (bad, says) in [
        (json!({"file": "relative/path.key"}), "absolute path"),
        (json!({"env": "1BAD NAME"}), "letters, digits and _"),
        (json!({"env": "A", "file": "/x"}), "expected one of"),
        (
            json!({"file": file.display().to_string()}),
            "exists already",
        ),
    ] {
        let path = if says == "exists already" {
            "/admin/api/keys/oa/o3"
        } else {
            "/admin/api/keys/oa/o5"
        };
        let (status, body) = h.admin_call(Method::PUT, path, Some(bad.clone())).await;
        assert!(status == 400 || status == 409, "{bad}: {status} {body}");
        let m = body["error"]["message"].as_str().expect("message");
        assert!(m.contains(says), "{bad}: {m}");
    }
    assert_eq!(config_text(&h), before);
    h.assert_no_canary_leak();
}

#[tokio::test]
async fn budgets_are_set_replaced_and_removed_without_editing_toml() {
    let h = Harness::start(CONFIG, &["oa/o1"], &[]).await;
    let put = |body: Value| h.admin_call(Method::PUT, "/admin/api/budgets", Some(body));
    let (status, body) = put(json!({"kind": "provider", "name": "oa", "daily_usd": 1.5})).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = put(json!({"kind": "all", "monthly_tokens": 1000000})).await;
    assert_eq!(status, 200);
    let text = config_text(&h);
    assert!(
        text.contains("[[budgets]]\nprovider = \"oa\"\ndaily_usd = 1.5\n"),
        "{text}"
    );
    assert!(
        text.contains("[[budgets]]\nmonthly_tokens = 1000000\n"),
        "{text}"
    );
    assert!(text.starts_with("# Fluxgate config for the management tests"));
    let listed = h.admin_json("/admin/api/budgets").await;
    assert_eq!(
        listed["budgets"].as_array().map(Vec::len),
        Some(2),
        "{listed}"
    );

    // The same scope again replaces its entry (not a second one).
    let (status, _) = put(json!({"kind": "provider", "name": "oa", "monthly_usd": 20.0})).await;
    assert_eq!(status, 200);
    let text = config_text(&h);
    assert_eq!(text.matches("provider = \"oa\"").count(), 1, "{text}");
    assert!(
        text.contains("provider = \"oa\"\nmonthly_usd = 20.0\n") && !text.contains("daily_usd"),
        "{text}"
    );

    // A scope the config does not have, or a bad scope, changes nothing and says why.
    let before = config_text(&h);
    for (bad, says) in [
        (
            json!({"kind": "provider", "name": "ghost", "daily_usd": 1.0}),
            "ghost",
        ),
        (
            json!({"kind": "provider", "daily_usd": 1.0}),
            "names its provider",
        ),
        (
            json!({"kind": "galaxy", "daily_usd": 1.0}),
            "all, key, provider, route or client",
        ),
        (
            json!({"kind": "all", "daily_usd": 1.0, "weekly_usd": 2.0}),
            "weekly_usd",
        ),
    ] {
        let (status, body) = put(bad.clone()).await;
        assert!((400..=422).contains(&status), "{bad}: {status} {body}");
        let m = body["error"]["message"].as_str().expect("message");
        assert!(m.contains(says), "{bad}: {m}");
    }
    assert_eq!(config_text(&h), before);

    // No limits removes the scope's budget.
    let (status, body) = put(json!({"kind": "provider", "name": "oa"})).await;
    assert_eq!((status, body["removed"].as_bool()), (200, Some(true)));
    assert!(!config_text(&h).contains("provider = \"oa\""));
    let listed = h.admin_json("/admin/api/budgets").await;
    assert_eq!(
        listed["budgets"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
}
