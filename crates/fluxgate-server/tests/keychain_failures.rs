//! The real keychain failing under `fluxgate serve` (RELIABILITY.md 9): a locked collection
//! (gnome-keyring running, not unlocked), a session bus with no Secret Service at all, and no
//! session bus. Each must show in health (`/admin/api/keys` → `secret_error`) and answer the
//! request with a typed `503 keychain_unavailable` within 3 s, sending nothing upstream.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::path::Path;
use std::process::Command;

use fluxgate_testkit::FakeUpstream;

/// Starts `fluxgate serve`, sends one request, prints `STATUS code seconds`, the body and the
/// admin API's key list, and stops the server.
fn serve_script(common: &str) -> String {
    format!(
        r#"TOKEN=$("$FLUXGATE_BIN" token new kc-{{n}} {common} 2>/dev/null)
"$FLUXGATE_BIN" serve {common} --listen 127.0.0.1:0 > "$HOME/serve.out" 2> "$HOME/serve.err" &
PID=$!
for i in $(seq 1 100); do grep -q 'listening on' "$HOME/serve.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^listening on //p' "$HOME/serve.out")
ADMIN=$(cat "$DATA/admin-token")
curl -s -o "$HOME/body" -w 'STATUS %{{http_code}} %{{time_total}}\n' "$URL/v1/chat/completions" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"model":"m","messages":[{{"role":"user","content":"hi"}}]}}'
cat "$HOME/body"; echo
curl -s "$URL/admin/api/keys" -H "Authorization: Bearer $ADMIN"; echo
kill -TERM $PID
wait $PID
"#
    )
}

struct Seen {
    status: u16,
    secs: f64,
    body: serde_json::Value,
    keys: serde_json::Value,
}

fn parse(out: &str) -> Seen {
    let mut lines = out.lines().skip_while(|l| !l.starts_with("STATUS "));
    let head = lines
        .next()
        .unwrap_or_else(|| panic!("no status line: {out}"));
    let mut parts = head.split_whitespace().skip(1);
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(99.0);
    let body = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let keys = lines
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    Seen {
        status,
        secs,
        body,
        keys,
    }
}

fn run(home: &Path, data: &Path, prelude: &str, script: &str, session: Option<&Path>) -> String {
    let mut cmd = match session {
        // A private session bus; with a config file, one without any activatable services.
        Some(conf) if conf.as_os_str().is_empty() => {
            let mut c = Command::new("dbus-run-session");
            c.arg("--");
            c
        }
        Some(conf) => {
            let mut c = Command::new("dbus-run-session");
            c.arg(format!("--config-file={}", conf.display())).arg("--");
            c
        }
        None => {
            let mut c = Command::new("env");
            c.arg("-u").arg("DBUS_SESSION_BUS_ADDRESS");
            c
        }
    };
    let out = cmd
        .arg("sh")
        .arg("-c")
        .arg(format!("{prelude}\n{script}"))
        .env("HOME", home)
        .env("DATA", data)
        // No default bus socket to fall back on.
        .env("XDG_RUNTIME_DIR", home.join("run"))
        .env("FLUXGATE_BIN", env!("CARGO_BIN_EXE_fluxgate"))
        .env_remove("DISPLAY")
        .output()
        .expect("run the session");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn check(name: &str, out: &str, fake: &FakeUpstream, expect_in_error: &str) {
    let seen = parse(out);
    assert_eq!(seen.status, 503, "{name}: {out}");
    assert_eq!(
        seen.body["error"]["type"], "keychain_unavailable",
        "{name}: {out}"
    );
    assert!(
        seen.secs < 3.0,
        "{name}: the 503 took {} s (limit 3 s)",
        seen.secs
    );
    let err = seen.keys["keys"][0]["secret_error"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(
        err.contains(expect_in_error),
        "{name}: health shows {:?}, expected it to mention {expect_in_error:?}: {out}",
        seen.keys
    );
    assert!(fake.log().is_empty(), "{name}: a request went upstream");
    println!("{name}: 503 in {:.3} s; health: {err}", seen.secs);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_keychain_failure_is_a_typed_503_within_three_seconds() {
    if !common::tools_present(&[
        "dbus-run-session",
        "dbus-daemon",
        "gnome-keyring-daemon",
        "curl",
    ]) {
        return;
    }
    let fake = FakeUpstream::start().await;
    let tmp = common::tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(home.join("run")).expect("home");
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, format!("[providers.p]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nkeys = [{{ id = \"kc\" }}]\n[routes.m]\ntargets = [\"p/upstream\"]\n", fake.url())).expect("config");
    let data = tmp.path().join("data");
    let common = format!(
        "--config {} --data-dir {}",
        config.display(),
        data.display()
    );
    // Store a key in an unlocked keyring first, so the locked case has a collection to lock.
    let out = run(
        &home,
        &data,
        "printf test-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1",
        &format!(
            r#"printf sk-canary-locked0000000000000000 | "$FLUXGATE_BIN" keys set p/kc {common}"#
        ),
        Some(Path::new("")),
    );
    assert!(out.contains("stored p/kc"), "{out}");

    // 1. Locked: the daemon runs, the login collection stays locked.
    let out = run(
        &home,
        &data,
        "gnome-keyring-daemon --components=secrets >/dev/null 2>&1",
        &serve_script(&common).replace("{n}", "1"),
        Some(Path::new("")),
    );
    check("locked collection", &out, &fake, "locked");

    // 2. A session bus without any Secret Service (nothing can be activated).
    let conf = tmp.path().join("bare-session.conf");
    std::fs::write(
        &conf,
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=/tmp</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
    )
    .expect("bus config");
    let out = run(
        &home,
        &data,
        "",
        &serve_script(&common).replace("{n}", "2"),
        Some(&conf),
    );
    check(
        "no Secret Service",
        &out,
        &fake,
        "no secret service is running",
    );

    // 3. No session bus at all.
    let out = run(
        &home,
        &data,
        "",
        &serve_script(&common).replace("{n}", "3"),
        None,
    );
    check("no session bus", &out, &fake, "no d-bus session bus");
}
