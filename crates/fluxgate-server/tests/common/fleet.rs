//! Team mode end to end: real `fluxgate serve` replicas sharing one key pool through a real
//! `redis-server` and PostgreSQL (started by the tests on loopback ports), in front of the
//! fake upstream. The helpers `team.rs` (Redis) and `team_ledger.rs` (PostgreSQL) share.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fluxgate_testkit::servers::{PostgresServer, RedisServer, POSTGRES_PASSWORD};
use fluxgate_testkit::{FakeUpstream, Fault};

/// One replica: its own data directory, client token and admin token; the config and the
/// keys (from the environment) are the fleet's.
pub struct Replica {
    pub child: Child,
    pub base: String,
    pub token: String,
    pub admin: String,
    pub _dir: tempfile::TempDir,
}

pub fn fluxgate() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fluxgate"));
    c.env_remove("FLUXGATE_CONFIG")
        .env_remove("FLUXGATE_DATA_DIR")
        .env("RUST_LOG", "info");
    c
}

pub fn replica(config: &str, keys: &HashMap<&str, String>) -> Replica {
    let dir = super::tempdir();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config).expect("write config");
    let data = dir.path().join("data");
    let out = fluxgate()
        .args(["token", "new", "team", "--data-dir"])
        .arg(&data)
        .env("HOME", dir.path())
        .output()
        .expect("token new");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut cmd = fluxgate();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .env("HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in keys {
        cmd.env(name, value);
    }
    let mut child = cmd.spawn().expect("serve");
    let base = super::listening(&mut child);
    let admin = std::fs::read_to_string(data.join("admin-token"))
        .expect("admin token")
        .trim()
        .to_string();
    Replica {
        child,
        base,
        token,
        admin,
        _dir: dir,
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

pub async fn chat(r: &Replica, stream: bool) -> reqwest::Response {
    http()
        .post(format!("{}/v1/chat/completions", r.base))
        .bearer_auth(&r.token)
        .json(&serde_json::json!({
            "model": "m",
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        }))
        .send()
        .await
        .expect("send")
}

pub async fn metrics(r: &Replica) -> String {
    http()
        .get(format!("{}/metrics", r.base))
        .bearer_auth(&r.admin)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// Polls a replica's `/metrics` (every 100 ms, `tries` times) until it holds every `needle`.
pub async fn wait_for_metrics(r: &Replica, needles: &[&str], tries: usize) -> bool {
    for _ in 0..tries {
        let m = metrics(r).await;
        if needles.iter().all(|n| m.contains(n)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// A 429 with `Retry-After: 60`.
pub fn rate_limited(body: &str) -> Fault {
    Fault::Status {
        status: 429,
        headers: HashMap::from([("retry-after".to_string(), "60".to_string())]),
        body: body.into(),
    }
}

/// `[state]` naming this Redis.
pub fn redis_section(redis: &RedisServer) -> String {
    format!("[state]\nredis = \"{}\"\n", redis.url())
}

/// `[store]` naming this PostgreSQL, its password from `FLUXGATE_PG_PASSWORD`.
pub fn postgres_section(pg: &PostgresServer) -> String {
    format!(
        "[store]\npostgres = \"{}\"\npostgres_password = \"env:FLUXGATE_PG_PASSWORD\"\n",
        pg.url()
    )
}

/// The fake with keys `k1` and `k2`, and the fleet's config (with `engines`) and environment.
pub async fn fleet_setup(
    engines: &str,
    limits: &str,
) -> (FakeUpstream, String, HashMap<&'static str, String>) {
    let fake = FakeUpstream::start().await;
    let mut keys = HashMap::new();
    for (label, var) in [("k1", "TEAM_E2E_K1"), ("k2", "TEAM_E2E_K2")] {
        let key = super::canary();
        fake.add_key(label, &key);
        keys.insert(var, key);
    }
    keys.insert("FLUXGATE_PG_PASSWORD", POSTGRES_PASSWORD.to_string());
    let config = format!(
        "{engines}\n[providers.fake]\nkind = \"openai-compatible\"\nbase_url = \"{}/v1\"\n\
         keys = [{{ id = \"k1\", secret = \"env:TEAM_E2E_K1\"{limits} }}, {{ id = \"k2\", secret = \"env:TEAM_E2E_K2\"{limits} }}]\n\n\
         [routes.m]\ntargets = [\"fake/m\"]\n",
        fake.url()
    );
    (fake, config, keys)
}

/// Runs `fluxgate serve` with this config, expects it to exit with an error, and returns its
/// standard error.
pub fn serve_fails(config: &str, keys: &HashMap<&str, String>) -> String {
    let dir = super::tempdir();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, config).expect("write");
    let out = fluxgate()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env("HOME", dir.path())
        .envs(keys.iter().map(|(k, v)| (k.to_string(), v.clone())))
        .output()
        .expect("serve");
    assert!(!out.status.success(), "serve started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub async fn admin_get(r: &Replica, path: &str) -> serde_json::Value {
    http()
        .get(format!("{}{path}", r.base))
        .bearer_auth(&r.admin)
        .send()
        .await
        .expect("admin request")
        .json()
        .await
        .expect("json")
}

/// Requests on route `m` in a usage answer.
pub fn route_requests(usage: &serde_json::Value) -> i64 {
    usage["usage"]["by_route"]
        .as_array()
        .expect("by_route")
        .iter()
        .filter(|r| r["route"] == "m")
        .map(|r| r["requests"].as_i64().expect("requests"))
        .sum()
}
