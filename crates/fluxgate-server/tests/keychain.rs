//! The real OS keychain: gnome-keyring's Secret Service on a private D-Bus session, driven
//! through the `fluxgate` binary. Skipped only outside CI when the tools are missing; in CI
//! (`CI=true`) a missing tool fails the test.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use fluxgate_testkit::FakeUpstream;

/// Runs `script` in a private session bus with `HOME` set, returning (stdout+stderr, success).
fn in_session(home: &Path, unlock: bool, script: &str) -> (String, bool, Duration) {
    let start_daemon = if unlock {
        "printf test-pass | gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1"
    } else {
        "gnome-keyring-daemon --components=secrets >/dev/null 2>&1"
    };
    let started = Instant::now();
    let out = Command::new("dbus-run-session")
        .arg("--")
        .arg("sh")
        .arg("-c")
        .arg(format!("{start_daemon}\n{script}"))
        .env("HOME", home)
        .env("FLUXGATE_BIN", env!("CARGO_BIN_EXE_fluxgate"))
        .env_remove("DISPLAY")
        .output()
        .expect("dbus-run-session");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.success(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_round_trip_through_gnome_keyring() {
    if !common::tools_present(&["dbus-run-session", "gnome-keyring-daemon", "curl"]) {
        return;
    }
    let fake = FakeUpstream::start().await;
    let secret = format!(
        "sk-canary-kc{:016x}",
        std::process::id() as u64 * 7919 + 12345
    );
    common::register_canary(&secret);
    fake.add_key("kc", &secret);
    let tmp = common::tempdir();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, format!("[providers.p]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nkeys = [{{ id = \"kc\" }}]\n[routes.m]\ntargets = [\"p/upstream\"]\n", fake.url())).expect("config");
    let data = tmp.path().join("data");
    let common = format!(
        "--config {} --data-dir {}",
        config.display(),
        data.display()
    );
    let script = format!(
        r#"set -e
printf '%s' '{secret}' | "$FLUXGATE_BIN" keys set p/kc {common}
"$FLUXGATE_BIN" keys list {common}
"$FLUXGATE_BIN" keys test p/kc {common}
TOKEN=$("$FLUXGATE_BIN" token new kc-test {common} 2>/dev/null)
"$FLUXGATE_BIN" serve {common} --listen 127.0.0.1:0 > "$HOME/serve.out" 2> "$HOME/serve.err" &
PID=$!
for i in $(seq 1 100); do grep -q 'listening on' "$HOME/serve.out" 2>/dev/null && break; sleep 0.05; done
URL=$(sed -n 's/^listening on //p' "$HOME/serve.out")
curl -s "$URL/v1/chat/completions" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{{"model":"m","messages":[{{"role":"user","content":"hi"}}]}}'
echo
kill -TERM $PID
wait $PID
echo "serve exit $?"
"#
    );
    let (out, ok, _) = in_session(&home, true, &script);
    assert!(ok, "{out}");
    assert!(out.contains("stored p/kc in the OS keychain"), "{out}");
    assert!(out.contains("present …"), "{out}");
    assert!(out.contains("ok    HTTP 200"), "{out}");
    assert!(
        out.contains("ok from kc"),
        "the server did not use the keychain key: {out}"
    );
    assert!(out.contains("serve exit 0"), "{out}");
    assert!(
        !out.contains(&secret) && !out.contains(&secret[..12]),
        "the key was printed"
    );
    assert_eq!(fake.count("kc"), 2, "one keys test and one proxied request");
    // The keyring file holds the key encrypted, never in plaintext.
    let keyrings = home.join(".local/share/keyrings");
    for entry in std::fs::read_dir(&keyrings)
        .expect("keyrings dir")
        .flatten()
    {
        let bytes = std::fs::read(entry.path()).expect("read");
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&secret[10..]),
            "{} holds the key in plaintext",
            entry.path().display()
        );
    }
    // Nothing the server wrote holds it either.
    for dir in [&data, &home] {
        for entry in walk(dir) {
            if entry.starts_with(&keyrings) {
                continue;
            }
            let text =
                String::from_utf8_lossy(&std::fs::read(&entry).unwrap_or_default()).into_owned();
            assert!(
                !text.contains(&secret) && !text.contains(&secret[..12]),
                "{} leaks the key",
                entry.display()
            );
        }
    }

    // A locked collection is reported as locked, quickly, and nothing falls back to plaintext.
    let (out, ok, took) = in_session(
        &home,
        false,
        &format!(
            r#""$FLUXGATE_BIN" keys list {common}; printf x | "$FLUXGATE_BIN" keys set p/kc {common}"#
        ),
    );
    assert!(!ok, "setting a key in a locked keychain must fail: {out}");
    assert!(out.contains("locked"), "{out}");
    assert!(
        took < Duration::from_secs(8),
        "keychain calls must be time-limited: {took:?}"
    );

    // No session bus at all.
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["keys", "list", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("HOME", &home)
        .env_remove("DISPLAY")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("UNREADABLE") && text.contains("unavailable"),
        "{text}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    // And removal really removes.
    let (out, ok, _) = in_session(
        &home,
        true,
        &format!(r#""$FLUXGATE_BIN" keys rm p/kc {common} && "$FLUXGATE_BIN" keys list {common}"#),
    );
    assert!(ok && out.contains("MISSING"), "{out}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}
