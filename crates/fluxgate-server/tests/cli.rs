//! The `fluxgate` binary's offline commands: check, explain, token.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::process::Command;

fn fluxgate(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    fluxgate_in(&[("FLUXGATE_LANG", "en")], args, dir)
}

/// `fluxgate` with these locale variables (and no others of its own).
fn fluxgate_in(
    locale: &[(&str, &str)],
    args: &[&str],
    dir: &std::path::Path,
) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    cmd.args(args)
        .env("HOME", dir)
        .env_remove("FLUXGATE_CONFIG")
        .env_remove("FLUXGATE_DATA_DIR");
    for var in ["FLUXGATE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"] {
        cmd.env_remove(var);
    }
    cmd.envs(locale.iter().copied());
    let out = cmd.output().expect("run fluxgate");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const GOOD: &str = r#"
[providers.anthropic]
kind = "anthropic"
keys = [{ id = "work" }, { id = "spare", secret = "env:FLUXGATE_TEST_UNSET_VAR", weight = 2 }]

[providers.deepseek]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "a", secret = "env:FLUXGATE_TEST_UNSET_VAR" }]
models = ["deepseek-chat"]

[routes."claude-sonnet-4-5"]
targets = ["anthropic/claude-sonnet-4-5", "deepseek/deepseek-chat"]
strategy = "round-robin"
"#;

#[test]
fn check_prints_the_routing_table_and_warnings() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, GOOD).expect("write");
    let (ok, out, err) = fluxgate(
        &["check", "--config", cfg.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("valid"), "{out}");
    assert!(
        out.contains("claude-sonnet-4-5")
            && out.contains("round-robin")
            && out.contains("anthropic/claude-sonnet-4-5 -> deepseek/deepseek-chat"),
        "{out}"
    );
    assert!(
        out.contains("spare (env:FLUXGATE_TEST_UNSET_VAR) weight 2"),
        "{out}"
    );
    assert!(out.contains("FLUXGATE_TEST_UNSET_VAR is not set"), "{out}");
}

#[test]
fn check_and_keys_list_show_each_keys_proxy_and_never_its_password() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        r#"
proxy = "corp"

[proxies.corp]
url = "https://proxy.corp.example:8443"
username = "alice"
password = "env:FLUXGATE_TEST_PROXY_PASSWORD"
ca = "/etc/fluxgate/corp-ca.pem"

[providers.deepseek]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "a", secret = "env:FLUXGATE_TEST_UNSET_VAR" }, { id = "b", secret = "env:FLUXGATE_TEST_UNSET_VAR", proxy = "direct" }]
"#,
    )
    .expect("write");
    let c = cfg.to_str().expect("utf8");
    let (ok, out, err) = fluxgate(&["check", "--config", c], dir.path());
    assert!(ok, "{err}");
    assert!(
        out.contains("a (env:FLUXGATE_TEST_UNSET_VAR) via proxy corp"),
        "{out}"
    );
    assert!(
        out.contains(
            "https://proxy.corp.example:8443, user alice, password env:FLUXGATE_TEST_PROXY_PASSWORD, \
             trusting the CA in /etc/fluxgate/corp-ca.pem; 1 key(s) go through it"
        ),
        "{out}"
    );
    let d = dir.path().join("data");
    let (ok, out, err) = fluxgate(
        &[
            "keys",
            "list",
            "--config",
            c,
            "--data-dir",
            d.to_str().expect("utf8"),
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    let line = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("deepseek/{id} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("a").ends_with("via proxy corp"), "{out}");
    assert!(!line("b").contains("via proxy"), "{out}");
}

#[test]
fn check_rejects_bad_configs_with_the_key_path() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[providers.openai]\nkind = \"openai\"\nkeys = [{ id = \"main\", secret = \"sk-proj-abcdefghijklmnop\" }]\n").expect("write");
    let (ok, out, err) = fluxgate(
        &["check", "--config", cfg.to_str().expect("utf8")],
        dir.path(),
    );
    assert!(!ok);
    assert!(
        err.contains("providers.openai.keys[0].secret")
            && err.contains("fluxgate keys set openai/main"),
        "{err}"
    );
    assert!(
        !err.contains("sk-proj-abcdefghijklmnop") && !out.contains("sk-proj"),
        "the literal key was echoed"
    );
    let (ok, _, err) = fluxgate(
        &[
            "check",
            "--config",
            dir.path().join("missing.toml").to_str().expect("utf8"),
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("does not exist"), "{err}");
}

#[test]
fn explain_lists_candidates_and_skips() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, GOOD).expect("write");
    let data = dir.path().join("data");
    let c = cfg.to_str().expect("utf8");
    let d = data.to_str().expect("utf8");
    let (ok, out, err) = fluxgate(
        &[
            "explain",
            "claude-sonnet-4-5",
            "--dialect",
            "anthropic",
            "--config",
            c,
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("1. anthropic/claude-sonnet-4-5 with key `work`"),
        "{out}"
    );
    assert!(
        out.contains("deepseek/deepseek-chat with key")
            && out.contains("translated to chat_completions"),
        "{out}"
    );
    let (ok, out, _) = fluxgate(
        &[
            "explain",
            "deepseek/deepseek-reasoner",
            "--config",
            c,
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert!(
        ok && out.contains("ProviderModel")
            && out.contains("deepseek/deepseek-reasoner with key `a`"),
        "{out}"
    );
    let (ok, _, err) = fluxgate(
        &[
            "explain",
            "nothing-like-this",
            "--config",
            c,
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert!(!ok && err.contains("no route"), "{err}");
}

const SMART: &str = r#"
[providers.oa]
kind = "openai"
keys = [{ id = "o1", secret = "env:FLUXGATE_TEST_UNSET_VAR" }]
models = ["gpt-4o-mini", "my-model"]

[providers.ds]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "d1", secret = "env:FLUXGATE_TEST_UNSET_VAR" }]
models = ["deepseek-chat"]

[routes.coding]
targets = ["oa/gpt-4o-mini", "oa/my-model", "ds/deepseek-chat"]
strategy = "least-cost"

[routes.vision]
capability = ["vision"]

[[budgets]]
provider = "oa"
daily_usd = 1
"#;

#[test]
fn check_and_explain_show_capabilities_costs_and_budgets() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, SMART).expect("write");
    let body = dir.path().join("req.json");
    std::fs::write(
        &body,
        r#"{"model":"coding","max_tokens":100,"messages":[{"role":"user","content":[{"type":"text","text":"what is this?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#,
    )
    .expect("write");
    let c = cfg.to_str().expect("utf8");
    let d = dir.path().join("data");
    let d = d.to_str().expect("utf8");
    let (ok, out, err) = fluxgate(&["check", "--config", c, "--data-dir", d], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("[capability vision] oa/gpt-4o-mini"), "{out}");
    assert!(
        out.contains("provider oa") && out.contains("$1 a day"),
        "{out}"
    );
    assert!(
        out.contains("not in the model catalogue") && out.contains("oa/my-model"),
        "{out}"
    );
    let b = body.to_str().expect("utf8");
    let (ok, out, err) = fluxgate(
        &[
            "explain",
            "coding",
            "--body",
            b,
            "--config",
            c,
            "--data-dir",
            d,
        ],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("the request needs chat, vision"), "{out}");
    assert!(
        out.contains("1. oa/gpt-4o-mini with key `o1` (same dialect): estimated $"),
        "{out}"
    );
    assert!(
        out.contains("skipped ds/deepseek-chat: the model lacks vision"),
        "{out}"
    );
}

#[test]
fn tokens_are_shown_once_and_stored_hashed() {
    let dir = common::tempdir();
    let d = dir.path().join("data");
    let d = d.to_str().expect("utf8");
    let (ok, token, _) = fluxgate(&["token", "new", "laptop", "--data-dir", d], dir.path());
    assert!(ok);
    let token = token.trim().to_string();
    assert!(token.starts_with("fgk_"), "{token}");
    let (ok, list, _) = fluxgate(&["token", "list", "--data-dir", d], dir.path());
    assert!(ok && list.contains("laptop") && !list.contains(&token));
    let (ok, _, err) = fluxgate(&["token", "new", "laptop", "--data-dir", d], dir.path());
    assert!(!ok && err.contains("exists already"), "{err}");
    for f in std::fs::read_dir(d).expect("data dir").flatten() {
        let bytes = std::fs::read(f.path()).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&token[17..]),
            "{} holds the token",
            f.path().display()
        );
    }
    let (ok, _, _) = fluxgate(&["token", "revoke", "laptop", "--data-dir", d], dir.path());
    assert!(ok);
    let (ok, _, err) = fluxgate(&["token", "revoke", "laptop", "--data-dir", d], dir.path());
    assert!(!ok && err.contains("no token named"), "{err}");
}

#[test]
fn messages_follow_the_locale_and_script_output_does_not() {
    let dir = common::tempdir();
    let d = dir.path().join("data");
    let d = d.to_str().expect("utf8");
    let zh = [("FLUXGATE_LANG", "zh-CN")];
    // Nothing set: English.
    let (ok, list, _) = fluxgate_in(&[], &["token", "list", "--data-dir", d], dir.path());
    assert!(ok && list.contains("no client tokens"), "{list}");
    // The OS locale picks; FLUXGATE_LANG overrides it.
    let (ok, list, _) = fluxgate_in(
        &[("LANG", "zh_CN.UTF-8")],
        &["token", "list", "--data-dir", d],
        dir.path(),
    );
    assert!(ok && list.contains("没有客户端令牌"), "{list}");
    let (ok, list, _) = fluxgate_in(
        &[("LANG", "zh_CN.UTF-8"), ("FLUXGATE_LANG", "en")],
        &["token", "list", "--data-dir", d],
        dir.path(),
    );
    assert!(ok && list.contains("no client tokens"), "{list}");
    // A made token is printed alone on stdout in any language (scripts read it); the
    // explanation around it is translated.
    let (ok, token, err) = fluxgate_in(&zh, &["token", "new", "ci", "--data-dir", d], dir.path());
    assert!(ok, "{err}");
    assert!(
        token.trim().starts_with("fgk_") && token.trim().lines().count() == 1,
        "{token}"
    );
    assert!(err.contains("只显示这一次"), "{err}");
    let (ok, _, err) = fluxgate_in(
        &zh,
        &["token", "revoke", "nobody", "--data-dir", d],
        dir.path(),
    );
    assert!(!ok && err.starts_with("错误："), "{err}");
    let (ok, out, _) = fluxgate_in(&zh, &["token", "revoke", "ci", "--data-dir", d], dir.path());
    assert!(ok && out.contains("已吊销 `ci`"), "{out}");
}

#[test]
fn sigterm_right_after_start_is_a_clean_shutdown() {
    // The signal handlers are in place before the address is printed: a SIGTERM that arrives
    // at once (a supervisor restarting it, a test harness) still drains and exits 0.
    let dir = common::tempdir();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").expect("config");
    let data = dir.path().join("data");
    // The window was microseconds wide, so this is a race the test can only catch sometimes
    // (the Python suite's restarts hit it about once in ten runs).
    for _ in 0..30 {
        let mut p = common::RouterProcess::start(dir.path(), &config, &data, &[], None);
        let pid = p.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = p.child.wait().expect("wait");
        assert!(status.success(), "exit after an early SIGTERM: {status:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_drains_streams_and_ends_the_rest_with_an_error_event() {
    // RELIABILITY.md 25: a stream that finishes within the drain time finishes; one that
    // outlasts it ends with a typed in-band error (never a success terminator); the process
    // flushes its records and exits 0.
    use fluxgate_testkit::{FakeUpstream, Fault};
    let fake = FakeUpstream::start().await;
    let (quick, slow) = (common::canary(), common::canary());
    fake.add_key("quick", &quick);
    fake.add_key("slow", &slow);
    // Every event 400 ms apart: the quick answer takes a couple of seconds, inside the drain.
    fake.set_chunk_delay(std::time::Duration::from_millis(400));
    fake.always(
        "slow",
        Fault::StallAfter {
            events: 2,
            ms: 60_000,
        },
    );
    let dir = common::tempdir();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.q]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\nkeys = [{{ id = \"quick\", secret = \"env:FG_QUICK\" }}]\n\
             [providers.s]\nkind = \"openai\"\nbase_url = \"{url}/v1\"\nkeys = [{{ id = \"slow\", secret = \"env:FG_SLOW\" }}]\n",
            url = fake.url()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let mut p = common::RouterProcess::start(
        dir.path(),
        &config,
        &data,
        &[
            ("FG_QUICK", &quick),
            ("FG_SLOW", &slow),
            ("FLUXGATE_DRAIN_SECS", "3"),
        ],
        None,
    );
    let token = common::RouterProcess::cli(dir.path(), &data, &["token", "new", "drain"]);
    let token = token
        .lines()
        .find(|l| l.starts_with("fgk_"))
        .unwrap_or(&token)
        .trim()
        .to_string();
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let stream = |model: &'static str| {
        let (client, base, token) = (client.clone(), p.base.clone(), token.clone());
        tokio::spawn(async move {
            let r = client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(token)
                .json(&serde_json::json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("send");
            common::body_text(r).await
        })
    };
    let finishing = stream("q/gpt-4o");
    let outlasting = stream("s/gpt-4o");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status()
        .expect("kill")
        .success());
    let finished = finishing.await.expect("quick stream");
    assert!(finished.trim_end().ends_with("data: [DONE]"), "{finished}");
    let cut = outlasting.await.expect("slow stream");
    assert!(cut.contains("shutting_down"), "{cut}");
    assert!(!cut.contains("[DONE]"), "{cut}");
    let status = p.child.wait().expect("wait");
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    // Both requests were recorded before exit.
    let db = rusqlite::Connection::open(data.join("fluxgate.db")).expect("db");
    let codes: Vec<Option<String>> = db
        .prepare("SELECT error_code FROM requests ORDER BY id")
        .expect("sql")
        .query_map([], |r| r.get(0))
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("codes");
    assert!(
        codes.contains(&None) && codes.contains(&Some("shutting_down".to_string())),
        "{codes:?}"
    );
}

#[test]
fn check_says_what_is_shared_with_other_replicas_and_where() {
    let dir = common::tempdir();
    let cfg = dir.path().join("c.toml");
    // `fluxgate check` on this config text; it must pass; its output.
    let check = |text: &str| {
        std::fs::write(&cfg, text).expect("write");
        let (ok, out, err) = fluxgate(
            &["check", "--config", cfg.to_str().expect("utf8")],
            dir.path(),
        );
        assert!(ok, "{err}");
        out
    };
    let out = check(GOOD);
    assert!(
        out.contains("key health, retests") && out.contains("this machine (in-process"),
        "{out}"
    );
    assert!(!out.contains("Redis"), "{out}");

    let team = format!(
        "[state]\nredis = \"redis://cache.example:6379/0\"\nredis_password = \"env:FLUXGATE_TEST_UNSET_VAR\"\n{GOOD}"
    );
    let out = check(&team);
    assert!(
        out.contains("shared in Redis at redis://cache.example:6379/0 (no TLS)"),
        "{out}"
    );
    // An engine on another machine without TLS is worth a warning.
    assert!(
        out.contains("cache.example is reached without TLS"),
        "{out}"
    );
    assert!(!out.contains("PostgreSQL"), "{out}");

    let team = format!(
        "[store]\npostgres = \"postgres://fluxgate@db.example:5432/fluxgate\"\npostgres_password = \"env:FLUXGATE_TEST_UNSET_VAR\"\n{GOOD}"
    );
    let out = check(&team);
    assert!(
        out.contains(
            "the fleet's, in PostgreSQL at postgres://fluxgate@db.example:5432/fluxgate (no TLS)"
        ),
        "{out}"
    );
    assert!(
        out.contains("db.example may be reached without TLS"),
        "{out}"
    );
    assert!(!out.contains("Redis"), "{out}");
}

#[test]
fn help_describes_the_product_not_the_crate() {
    let dir = common::tempdir();
    let (ok, out, _) = fluxgate(&["--help"], dir.path());
    assert!(ok);
    assert!(
        out.starts_with("Fluxgate: one local address for every AI tool"),
        "{out}"
    );
    assert!(!out.contains("axum"), "{out}");
}
