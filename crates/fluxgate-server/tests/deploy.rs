//! The team deployment recipe in `deploy/`: the systemd unit passes `systemd-analyze verify`,
//! the example config is valid, and the unit's own command line, run twice with the example
//! config and secrets file pointed at a real Redis and PostgreSQL, makes two replicas that
//! share one pool.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fluxgate_testkit::servers::{PostgresServer, RedisServer, POSTGRES_PASSWORD};
use fluxgate_testkit::FakeUpstream;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

fn read(file: &str) -> String {
    std::fs::read_to_string(deploy(file)).expect("deploy file")
}

/// The unit's `ExecStart=` with `%i` as `instance`, split into words.
fn exec_start(instance: &str) -> Vec<String> {
    let unit = read("systemd/fluxgate@.service");
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    line.replace("%i", instance)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// `KEY=value` lines of an environment file.
fn env_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let dir = common::tempdir();
    // The unit as installed, with the binary where this build put it (verify checks that
    // ExecStart= names an executable).
    let unit = read("systemd/fluxgate@.service")
        .replace("/usr/bin/fluxgate", env!("CARGO_BIN_EXE_fluxgate"));
    std::fs::write(dir.path().join("fluxgate@.service"), unit).expect("write");
    let instance = dir.path().join("fluxgate@8081.service");
    std::os::unix::fs::symlink(dir.path().join("fluxgate@.service"), &instance).expect("link");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .output()
        .expect("systemd-analyze runs (scripts/deps.sh test installs systemd)");
    let err = String::from_utf8_lossy(&out.stderr);
    // Only what it says about this unit counts (other units on the machine are not ours).
    let ours: Vec<&str> = err.lines().filter(|l| l.contains("fluxgate")).collect();
    assert!(out.status.success() && ours.is_empty(), "{err}");

    // And it does say so when a unit is wrong.
    std::fs::write(
        dir.path().join("fluxgate@.service"),
        read("systemd/fluxgate@.service")
            .replace("ExecStart=/usr/bin/fluxgate", "ExecStart=fluxgate-missing"),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&instance)
        .output()
        .expect("systemd-analyze");
    assert!(!out.status.success(), "a broken unit passed verify");
}

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the unit's command line for port `instance`, with `/etc/fluxgate` and
/// `/var/lib/fluxgate` under `root` and the secrets file as its environment.
fn start_replica(root: &Path, instance: &str, env: &HashMap<String, String>) -> Replica {
    let words = exec_start(instance);
    assert_eq!(words[0], "/usr/bin/fluxgate");
    let args: Vec<String> = words[1..]
        .iter()
        .map(|w| {
            w.replace("/etc/fluxgate", &root.join("etc").display().to_string())
                .replace("/var/lib/fluxgate", &root.join("var").display().to_string())
                // The port the unit names, on loopback for the test.
                .replace("0.0.0.0:", "127.0.0.1:")
        })
        .collect();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", root)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let base = common::listening(&mut child);
    Replica { child, base }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipe_runs_two_replicas_that_share_one_pool() {
    let redis = RedisServer::start_with(Some("redis-test-password-3c9a"));
    let pg = PostgresServer::start();
    let fake = FakeUpstream::start().await;
    let root = common::tempdir();
    std::fs::create_dir_all(root.path().join("etc")).expect("etc");

    // The example config, pointed at this test's engines, plus a provider on the fake.
    let config = read("config.example.toml")
        .replace("redis://127.0.0.1:6379/0", &redis.url())
        .replace("postgres://fluxgate@127.0.0.1:5432/fluxgate", &pg.url())
        + &format!(
            "\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}/v1\"\nkeys = [{{ id = \"k1\", secret = \"env:FAKE_KEY\" }}]\n\n[routes.m]\ntargets = [\"fake/m\"]\n",
            fake.url()
        );
    let cfg = root.path().join("etc/config.toml");
    std::fs::write(&cfg, &config).expect("config");
    let mut env = env_file(&read("secrets.env.example"));
    assert!(env.contains_key("FLUXGATE_PG_PASSWORD"), "{env:?}");
    env.insert(
        "FLUXGATE_REDIS_PASSWORD".into(),
        "redis-test-password-3c9a".into(),
    );
    env.insert("FLUXGATE_PG_PASSWORD".into(), POSTGRES_PASSWORD.into());
    let key = common::canary();
    fake.add_key("k1", &key);
    env.insert("FAKE_KEY".into(), key);

    // The example config is valid as it is.
    let out = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["check", "--config"])
        .arg(deploy("config.example.toml"))
        .env("HOME", root.path())
        .output()
        .expect("check");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (pa, pb) = (free_port().to_string(), free_port().to_string());
    let a = start_replica(root.path(), &pa, &env);
    let b = start_replica(root.path(), &pb, &env);
    assert!(a.base.ends_with(&format!(":{pa}")), "{}", a.base);
    assert!(root
        .path()
        .join("var")
        .join(&pb)
        .join("admin-token")
        .exists());

    // A client token made on the fleet (as an operator would, with the fleet's config) works
    // on both replicas.
    let out = Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .args(["token", "new", "ops", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(root.path().join("var/cli"))
        .env("HOME", root.path())
        .env("FLUXGATE_PG_PASSWORD", POSTGRES_PASSWORD)
        .output()
        .expect("token new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    for r in [&a, &b] {
        let mut status = 0;
        for _ in 0..50 {
            status = http
                .post(format!("{}/v1/chat/completions", r.base))
                .bearer_auth(&token)
                .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(status, 200, "{}", r.base);
    }
    assert_eq!(fake.count("k1"), 2);
}
