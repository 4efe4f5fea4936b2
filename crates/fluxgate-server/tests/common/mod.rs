//! The in-process test harness: a fake upstream, a gateway on a temporary data directory with
//! canary keys in an in-memory keychain, and the real server on an ephemeral loopback port.
#![allow(dead_code)]

pub mod fleet;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};

use fluxgate_core::config::Config;
use fluxgate_core::gateway::Gateway;
use fluxgate_core::secrets::{MemoryStore, SecretStore, SecretValue, Secrets};
use fluxgate_core::tokens::AdminToken;
use fluxgate_server::ServeHandle;
use fluxgate_testkit::FakeUpstream;
use rand::Rng;

static LOG_INIT: Once = Once::new();

/// Every test binary logs at TRACE into one file that the canary check reads.
pub fn log_file() -> PathBuf {
    std::env::temp_dir().join(format!("fluxgate-test-log-{}.txt", std::process::id()))
}

pub fn init_logging() {
    LOG_INIT.call_once(|| {
        let path = log_file();
        if let Ok(file) = std::fs::File::create(&path) {
            let _ = tracing_subscriber::fmt()
                // The WebSocket tests' own client logs its handshake, token and all, at
                // trace (the server's side of a WebSocket is axum's and logs no headers).
                .with_env_filter(
                    "trace,hyper=info,h2=info,rustls=info,tungstenite=info,tokio_tungstenite=info",
                )
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init();
        }
    });
}

/// A unique fake key: `sk-canary-<32 hex>`, registered for the suite-wide canary scan.
pub fn canary() -> String {
    let b: [u8; 16] = rand::rng().random();
    let key = format!("sk-canary-{}", hex(&b));
    register_canary(&key);
    key
}

/// Records a fake key in `$FLUXGATE_CANARY_DIR` (set by `scripts/test.sh`), whose scan after
/// the whole suite checks that no file the run produced holds it (`scripts/canary_scan.py`).
pub fn register_canary(key: &str) {
    use std::io::Write;
    if let Some(dir) = std::env::var_os("FLUXGATE_CANARY_DIR") {
        let _ = std::fs::create_dir_all(&dir);
        let path = Path::new(&dir).join(format!("rust-{}.txt", std::process::id()));
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{key}");
        }
    }
}

/// A temporary directory, kept after the test when `FLUXGATE_KEEP_TEMP` is set so the
/// suite-wide canary scan can read everything the test left behind.
pub fn tempdir() -> tempfile::TempDir {
    let mut dir = tempfile::Builder::new()
        .prefix("fluxgate-test-")
        .tempdir()
        .expect("tempdir");
    dir.disable_cleanup(std::env::var_os("FLUXGATE_KEEP_TEMP").is_some());
    dir
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub struct Harness {
    pub fake: FakeUpstream,
    pub handle: Option<ServeHandle>,
    pub gateway: Arc<Gateway>,
    pub token: String,
    pub admin_token: String,
    pub dir: tempfile::TempDir,
    /// label -> key value
    pub keys: HashMap<String, String>,
    pub base: String,
    pub http: reqwest::Client,
    config_text: String,
    store: Arc<MemoryStore>,
}

impl Harness {
    /// `config` may use `{FAKE}` for the fake's URL. Every key is `{ id = LABEL }` in the
    /// keychain; `labels` lists "provider/label" pairs whose canary keys go into the keychain
    /// and are registered as valid with the fake (unless listed in `invalid`).
    pub async fn start(config: &str, labels: &[&str], invalid: &[&str]) -> Harness {
        Self::start_prepared(config, labels, invalid, |_| {}).await
    }

    /// As [`Harness::start`], with `prepare` run on the fake before the server starts (so
    /// what the server reads at start, balances say, is already set).
    pub async fn start_prepared(
        config: &str,
        labels: &[&str],
        invalid: &[&str],
        prepare: impl FnOnce(&FakeUpstream),
    ) -> Harness {
        init_logging();
        let fake = FakeUpstream::start().await;
        let store = Arc::new(MemoryStore::default());
        let mut keys = HashMap::new();
        for account in labels {
            let label = account.split('/').nth(1).expect("provider/label");
            let key = canary();
            store
                .set(account, &SecretValue::new(key.clone()))
                .expect("memory store");
            if !invalid.contains(account) {
                fake.add_key(label, &key);
            }
            keys.insert(label.to_string(), key);
        }
        prepare(&fake);
        let dir = tempdir();
        let config_text = config.replace("{FAKE}", &fake.url());
        Self::boot(fake, store, keys, dir, config_text, None).await
    }

    async fn boot(
        fake: FakeUpstream,
        store: Arc<MemoryStore>,
        keys: HashMap<String, String>,
        dir: tempfile::TempDir,
        config_text: String,
        token: Option<String>,
    ) -> Harness {
        // The config lives in the test's own directory: the admin API edits this file.
        // A restart keeps what the admin API wrote there.
        let config_path = dir.path().join("config.toml");
        if !config_path.exists() {
            std::fs::write(&config_path, &config_text).expect("write the test config");
        }
        let text = std::fs::read_to_string(&config_path).expect("read the test config");
        let config = Config::from_toml(&text, &config_path).expect("test config");
        let gateway = Arc::new(
            Gateway::open(config, dir.path(), Secrets::with_store(store.clone())).expect("gateway"),
        );
        let token = match token {
            Some(t) => t,
            None => gateway.tokens.create("tests").expect("token"),
        };
        let admin = AdminToken::load_or_create(dir.path()).expect("admin token");
        let admin_token = admin.value().expect("admin").to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let handle = fluxgate_server::serve(gateway.clone(), listener, admin).expect("serve");
        let base = format!("http://{}", handle.addr);
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        Harness {
            fake,
            handle: Some(handle),
            gateway,
            token,
            admin_token,
            dir,
            keys,
            base,
            http,
            config_text,
            store,
        }
    }

    /// Stops the server and starts a new one on the same data directory and keys.
    pub async fn restart(mut self) -> Harness {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        let Harness {
            fake,
            dir,
            keys,
            config_text,
            store,
            token,
            ..
        } = self;
        Self::boot(fake, store, keys, dir, config_text, Some(token)).await
    }

    pub async fn shutdown(&mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn post(&self, path: &str, body: serde_json::Value) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
    }

    pub fn chat(&self, model: &str, stream: bool) -> reqwest::RequestBuilder {
        self.post("/v1/chat/completions", serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}))
    }

    pub fn messages(&self, model: &str, stream: bool) -> reqwest::RequestBuilder {
        self.post("/v1/messages", serde_json::json!({"model": model, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
    }

    pub fn responses(&self, model: &str, stream: bool) -> reqwest::RequestBuilder {
        self.post(
            "/v1/responses",
            serde_json::json!({"model": model, "stream": stream, "input": "hi"}),
        )
    }

    /// `GET path` with the admin token.
    pub async fn admin_get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("admin api")
    }

    /// `GET path` with the admin token, as JSON.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_get(path).await.json().await.expect("admin json")
    }

    /// `POST path` with the admin token and a JSON body; asserts 200 and returns the JSON.
    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .expect("admin post");
        assert_eq!(resp.status(), 200, "POST {path}");
        resp.json().await.expect("admin json")
    }

    /// `GET /admin/api/events` with the admin token, as a byte stream (a snapshot first).
    pub async fn admin_events(
        &self,
    ) -> impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> {
        self.admin_get("/admin/api/events").await.bytes_stream()
    }

    /// Puts another secret (a proxy's password, say) in the (memory) keychain; the leak check
    /// then looks for it too.
    pub fn store_secret(&mut self, account: &str, value: &str) {
        self.store
            .set(account, &SecretValue::new(value))
            .expect("memory store");
        self.keys.insert(account.to_string(), value.to_string());
    }

    /// The secret the (memory) keychain holds for `account`, if any.
    pub fn stored_secret(&self, account: &str) -> Option<String> {
        self.store.get(account).ok().map(|v| v.expose().to_string())
    }

    /// A request with the admin token and a JSON body (or none); returns status and JSON.
    pub async fn admin_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("admin call");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        )
    }

    /// `GET /admin/api/keys` with the admin token.
    pub async fn admin_keys(&self) -> serde_json::Value {
        self.admin_json("/admin/api/keys").await
    }

    /// Asserts no file in the data dir and no log line holds a key or its first 12 characters.
    pub fn assert_no_canary_leak(&self) {
        self.gateway.flush();
        let mut files = Vec::new();
        collect(self.dir.path(), &mut files);
        files.push(log_file());
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for key in self.keys.values() {
                assert!(
                    !text.contains(key.as_str()),
                    "{} contains a key",
                    f.display()
                );
                assert!(
                    !text.contains(&key[..12]),
                    "{} contains a key prefix",
                    f.display()
                );
            }
            assert!(
                !text.contains(&self.token),
                "{} contains the client token",
                f.display()
            );
        }
    }
}

/// Reads a `fluxgate serve` child's stdout (piped) until it says where it listens, returns
/// that address, and keeps draining the rest so the child never blocks on a full pipe.
pub fn listening(child: &mut std::process::Child) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("fluxgate exited before it listened")
            .expect("read stdout");
        if let Some(addr) = line.strip_prefix("listening on ") {
            break addr.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    base
}

/// Every file under `dir`, recursively, into `out`.
pub fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                collect(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Reads a whole SSE response as text.
pub async fn body_text(resp: reqwest::Response) -> String {
    resp.text()
        .await
        .unwrap_or_else(|e| format!("<body error: {e}>"))
}

/// The real `fluxgate serve` binary as a child process on an ephemeral loopback port.
pub struct RouterProcess {
    pub child: std::process::Child,
    pub base: String,
    pub data: PathBuf,
}

impl Drop for RouterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A home, a data directory and an empty config under `dir`, and the real binary serving them.
pub struct BareRouter {
    pub home: PathBuf,
    pub data: PathBuf,
    pub router: RouterProcess,
}

impl BareRouter {
    pub fn start(dir: &Path) -> BareRouter {
        let home = dir.join("home");
        let data = dir.join("data");
        std::fs::create_dir_all(&home).expect("home");
        let config = dir.join("config.toml");
        std::fs::write(&config, "").expect("config");
        let router = RouterProcess::start(&home, &config, &data, &[], None);
        BareRouter { home, data, router }
    }
}

impl RouterProcess {
    /// Runs `fluxgate ARGS --data-dir DATA` to completion (HOME inside `home`) and returns its
    /// stdout.
    pub fn cli(home: &Path, data: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"))
            .args(args)
            .arg("--data-dir")
            .arg(data)
            .env("HOME", home)
            .output()
            .expect("run fluxgate");
        assert!(out.status.success(), "fluxgate {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Starts `fluxgate serve` with `config` and `data`, extra environment `env`, and stderr
    /// to `log` (or nowhere); returns once it prints its address.
    pub fn start(
        home: &Path,
        config: &Path,
        data: &Path,
        env: &[(&str, &str)],
        log: Option<&Path>,
    ) -> RouterProcess {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fluxgate"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .env("HOME", home)
            .stdout(std::process::Stdio::piped())
            // Without a log file of its own, the log goes next to the data directory, where
            // the canary scan reads it.
            .stderr(std::process::Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log.map_or_else(|| home.join("serve.log"), Path::to_path_buf))
                    .expect("log file"),
            ));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn fluxgate serve");
        let base = listening(&mut child);
        RouterProcess {
            child,
            base,
            data: data.to_path_buf(),
        }
    }

    /// Proportional set size of the process in KiB (shared pages divided among their users).
    pub fn pss_kib(&self) -> u64 {
        Self::smaps_kib(self.child.id(), "Pss")
    }

    /// A field of `/proc/PID/smaps_rollup` in KiB: `Pss`, or `Anonymous` (the heap and other
    /// private memory; unlike PSS it does not move when other processes share fewer pages).
    pub fn smaps_kib(pid: u32, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .expect("admin token")
            .trim()
            .to_string()
    }
}

/// Whether the tools a D-Bus/keychain test needs are on `PATH`. Outside CI a missing tool skips
/// the test (with a note); in CI (`CI=true`) it fails it, since `.ci/run` installs them.
pub fn tools_present(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("command -v {t}"))
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install {missing:?} (dbus, gnome-keyring, curl)"
        );
        eprintln!("skipping: {missing:?} missing");
    }
    missing.is_empty()
}
