//! Editing the config file takes effect without a restart; an invalid edit is reported and the
//! running config stays.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxgate_core::config::Config;
use fluxgate_core::events::Event;
use fluxgate_core::gateway::Gateway;
use fluxgate_core::secrets::{MemoryStore, Secrets};
use fluxgate_core::tokens::AdminToken;
use fluxgate_testkit::FakeUpstream;

fn config_text(fake: &str, routes: &str) -> String {
    format!("[providers.oa]\nkind = \"openai-compatible\"\nbase_url = \"{fake}/v1\"\nkeys = [{{ id = \"k\", secret = \"env:FLUXGATE_RELOAD_TEST_KEY\" }}]\n{routes}")
}

#[tokio::test]
async fn config_edits_apply_live_and_bad_edits_are_refused() {
    common::init_logging();
    std::env::set_var(
        "FLUXGATE_RELOAD_TEST_KEY",
        "sk-canary-reload-0123456789abcdef",
    );
    let fake = FakeUpstream::start().await;
    fake.add_key("k", "sk-canary-reload-0123456789abcdef");
    let dir = common::tempdir();
    let path = dir.path().join("config.toml");
    std::fs::write(
        &path,
        config_text(&fake.url(), "[routes.old]\ntargets = [\"oa/m1\"]\n"),
    )
    .expect("write");
    let gateway = Arc::new(
        Gateway::open(
            Config::load(&path).expect("config"),
            &dir.path().join("data"),
            Secrets::with_store(Arc::new(MemoryStore::default())),
        )
        .expect("gateway"),
    );
    let mut events = gateway.events.subscribe();
    let token = gateway.tokens.create("t").expect("token");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    gateway.spawn_config_watch(path.clone(), Duration::from_millis(50), async move {
        let _ = stop_rx.await;
    });
    let admin = AdminToken::load_or_create(&dir.path().join("data")).expect("admin");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = fluxgate_server::serve(gateway.clone(), listener, admin).expect("serve");
    let url = format!("http://{}/v1/chat/completions", handle.addr);
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let ask = |model: &'static str| {
        http.post(&url).bearer_auth(&token).json(&serde_json::json!({"model": model, "messages": [{"role": "user", "content": "x"}]})).send()
    };
    assert_eq!(ask("new").await.expect("send").status(), 404);

    std::fs::write(
        &path,
        config_text(&fake.url(), "[routes.new]\ntargets = [\"oa/m2\"]\n"),
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if ask("new").await.expect("send").status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the edit was not picked up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fake.log().last().and_then(|a| a.model.clone()).as_deref(),
        Some("m2")
    );
    assert_eq!(
        ask("old").await.expect("send").status(),
        404,
        "the removed route still works"
    );

    // An invalid edit: reported, and the running config stays.
    std::fs::write(
        &path,
        config_text(&fake.url(), "[routes.new]\ntargets = [\"nope/m\"]\n"),
    )
    .expect("write");
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
            Ok(Ok(Event::ConfigInvalid { error, .. })) => break error,
            _ => assert!(Instant::now() < deadline, "no ConfigInvalid event"),
        }
    };
    assert!(error.contains("routes.\"new\".targets[0]"), "{error}");
    assert_eq!(ask("new").await.expect("send").status(), 200);

    // A key pasted into the wrong place (RELIABILITY.md 29): reported where it is, never with
    // the key, on the event bus (and so the SSE stream, webhooks and notifications) and in the
    // log.
    let pasted = common::canary();
    for (i, wrong) in [
        format!("[providers.oa]\nkind = \"openai\"\nkeys = [\"{pasted}\"]\n"),
        format!("[providers.oa]\nkind = \"openai\"\nkeys = [{pasted}]\n"),
        format!("[providers.oa]\nkind = \"openai\"\n{pasted} = true\n"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&path, &wrong).expect("write");
        let deadline = Instant::now() + Duration::from_secs(5);
        let error = loop {
            match tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
                Ok(Ok(Event::ConfigInvalid { error, .. })) => break error,
                _ => assert!(
                    Instant::now() < deadline,
                    "no ConfigInvalid event for case {i}"
                ),
            }
        };
        assert!(!error.contains(&pasted[..12]), "case {i}: {error}");
        assert!(
            error.contains("providers") || error.contains("line"),
            "case {i}: {error}"
        );
    }
    let log = std::fs::read_to_string(common::log_file()).unwrap_or_default();
    assert!(log.contains("config"), "the log saw the invalid edits");
    assert!(!log.contains(&pasted[..12]), "the log holds the pasted key");
    // The user's mistake is theirs, not Fluxgate's: take the key out of the file again, so the
    // suite-wide canary scan (which reads every file a test leaves) sees only what Fluxgate wrote.
    std::fs::write(&path, config_text(&fake.url(), "")).expect("write");
    let _ = stop_tx.send(());
    handle.shutdown().await;
}

/// `serve --listen` with no `listen` in the file: edits reload without a "`listen` changed"
/// warning each time; the warning comes once when the file's own `listen` changes.
#[test]
fn a_listen_flag_does_not_make_every_reload_warn() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = common::tempdir();
    let path = dir.path().join("config.toml");
    let base = config_text("http://127.0.0.1:9", "");
    std::fs::write(&path, &base).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("FLUXGATE_RELOAD_TEST_KEY", "sk-reload-listen-0123456789")
        .env("HOME", dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fluxgate serve");
    common::listening(&mut child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // Writes `text` and waits until the reload is logged: the lines logged meanwhile.
    let reload = |text: String| {
        std::fs::write(&path, text).expect("write");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx.recv_timeout(left).expect("no reload logged within 10 s");
            let done = line.contains("config reloaded");
            lines.push(line);
            if done {
                return lines;
            }
        }
    };
    let warned = |lines: &[String]| {
        lines
            .iter()
            .filter(|l| l.contains("`listen` changed"))
            .count()
    };
    for route in ["a", "b"] {
        let lines = reload(format!("{base}[routes.{route}]\ntargets = [\"oa/m1\"]\n"));
        assert_eq!(warned(&lines), 0, "{lines:#?}");
    }
    // The file's own `listen` changes: one warning, and none for the next edit.
    let lines = reload(format!("listen = \"127.0.0.1:1\"\n{base}"));
    assert_eq!(warned(&lines), 1, "{lines:#?}");
    let lines = reload(format!(
        "listen = \"127.0.0.1:1\"\n{base}[routes.c]\ntargets = [\"oa/m1\"]\n"
    ));
    assert_eq!(warned(&lines), 0, "{lines:#?}");
    let _ = child.kill();
    let _ = child.wait();
}
