//! Fake LLM providers for tests: OpenAI Chat, OpenAI Responses, Anthropic Messages and Gemini
//! `generateContent` on one loopback port, with faults scripted per key. What it answers is
//! read from the conversation ([`model`]): text, or a tool call when the prompt asks for one.
//!
//! Every request is an attempt in [`FakeUpstream::log`], with the key's label, the path, the
//! client's `x-test-id` header, how many events were sent and whether the caller went away
//! before the end. Keys are registered with a label; an unknown key gets the vendor's 401. The
//! answer text names the key's label (`ok from LABEL`), never the key.
//!
//! A control API (`/_fake/...`) lets out-of-process tests (the Python SDK suite) script it.
#![allow(clippy::expect_used)] // a test-support crate: a fake upstream that cannot bind should fail the test at once

pub mod chaos;
mod faults;
pub mod model;
pub mod proxies;
pub mod servers;
pub mod tls;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::net::TcpListener;

pub use faults::Fault;
pub use wire::{Wire, FAKE_SIGNATURE, FAKE_THINKING};

/// One request the fake received.
#[derive(Debug, Clone, Serialize)]
pub struct AttemptLog {
    pub id: u64,
    /// The key's label, or `unknown`.
    pub key: String,
    /// The request's path and query.
    pub path: String,
    pub test_id: Option<String>,
    pub model: Option<String>,
    pub stream: bool,
    /// Selected request headers (never credentials).
    pub headers: HashMap<String, String>,
    /// Whether any credential header other than the provider's own arrived.
    pub foreign_auth: bool,
    /// The raw request body.
    pub body: String,
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub events_sent: u32,
    /// The caller dropped the response before it was complete.
    pub cancelled: bool,
    pub fault: String,
}

#[derive(Default)]
pub struct FakeState {
    keys: Mutex<HashMap<String, String>>,
    scripts: Mutex<HashMap<String, VecDeque<Fault>>>,
    always: Mutex<HashMap<String, Fault>>,
    log: Mutex<Vec<AttemptLog>>,
    next_id: AtomicU64,
    in_flight_by_test: Mutex<HashMap<String, u32>>,
    max_in_flight_same_test: AtomicU64,
    epoch: Mutex<Option<Instant>>,
    /// Delay between stream events.
    pub chunk_delay_ms: AtomicU64,
    /// When set, requests are not logged (benchmarks: the log would grow without bound).
    pub quiet: std::sync::atomic::AtomicBool,
    /// Seeded faults for requests with nothing scripted; text answers then start with
    /// `a<attempt id> ` so a client can tell which attempt its bytes came from.
    chaos: Mutex<Option<chaos::Chaos>>,
    /// A provider prompt cache, emulated: (key label, hash of the conversation's first
    /// message) pairs seen before. A repeat is answered with cached input tokens.
    prompt_cache: Mutex<std::collections::HashSet<(String, u64)>>,
    /// Each key's remaining credit for the vendors' balance endpoints (100 when unset), and
    /// how many times each key's balance was asked.
    balances: Mutex<HashMap<String, f64>>,
    balance_calls: Mutex<HashMap<String, u32>>,
}

impl FakeState {
    fn now_ms(&self) -> u64 {
        let mut e = self.epoch.lock();
        e.get_or_insert_with(Instant::now).elapsed().as_millis() as u64
    }

    fn next_fault(&self, label: &str) -> Fault {
        if let Some(f) = self
            .scripts
            .lock()
            .get_mut(label)
            .and_then(|q| q.pop_front())
        {
            return f;
        }
        if let Some(f) = self.always.lock().get(label).cloned() {
            return f;
        }
        self.chaos
            .lock()
            .as_mut()
            .and_then(|c| c.draw())
            .unwrap_or(Fault::Ok)
    }

    pub(crate) fn update(&self, id: u64, f: impl FnOnce(&mut AttemptLog)) {
        if let Some(a) = self.log.lock().iter_mut().find(|a| a.id == id) {
            f(a);
        }
    }

    pub(crate) fn end(&self, id: u64, test_id: Option<&str>, cancelled: bool) {
        let now = self.now_ms();
        self.update(id, |a| {
            if a.ended_ms.is_none() {
                a.ended_ms = Some(now);
                a.cancelled = cancelled;
            }
        });
        if let Some(t) = test_id {
            if let Some(n) = self.in_flight_by_test.lock().get_mut(t) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// A running fake upstream.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Starts on an ephemeral loopback port.
    pub async fn start() -> FakeUpstream {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> FakeUpstream {
        let state = Arc::new(FakeState::default());
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the fake upstream");
        let addr = listener.local_addr().expect("local addr");
        let app = router(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeUpstream { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Registers a valid key under a label.
    pub fn add_key(&self, label: &str, key: &str) {
        self.state
            .keys
            .lock()
            .insert(key.to_string(), label.to_string());
    }

    /// Queues faults for the next requests with this key (then normal answers).
    pub fn script(&self, label: &str, faults: impl IntoIterator<Item = Fault>) {
        self.state
            .scripts
            .lock()
            .entry(label.to_string())
            .or_default()
            .extend(faults);
    }

    /// Sets the credit the balance endpoints report for this key.
    pub fn set_balance(&self, label: &str, remaining: f64) {
        self.state
            .balances
            .lock()
            .insert(label.to_string(), remaining);
    }

    /// How many times this key's balance was asked (any vendor's endpoint).
    pub fn balance_calls(&self, label: &str) -> u32 {
        self.state
            .balance_calls
            .lock()
            .get(label)
            .copied()
            .unwrap_or(0)
    }

    /// Answers every request with this key with `fault` (after any queued ones).
    pub fn always(&self, label: &str, fault: Fault) {
        self.state.always.lock().insert(label.to_string(), fault);
    }

    pub fn log(&self) -> Vec<AttemptLog> {
        self.state.log.lock().clone()
    }

    pub fn count(&self, label: &str) -> usize {
        self.state
            .log
            .lock()
            .iter()
            .filter(|a| a.key == label)
            .count()
    }

    /// The most attempts seen in flight at once for one `x-test-id`.
    pub fn max_in_flight_same_test(&self) -> u64 {
        self.state.max_in_flight_same_test.load(Ordering::SeqCst)
    }

    pub fn set_chunk_delay(&self, d: Duration) {
        self.state
            .chunk_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }

    /// Turns on seeded fault injection for every request with nothing scripted.
    pub fn set_chaos(&self, chaos: chaos::Chaos) {
        *self.state.chaos.lock() = Some(chaos);
    }

    /// How many faults of each kind chaos drew (`none`: normal answers).
    pub fn chaos_drawn(&self) -> HashMap<&'static str, u64> {
        self.state
            .chaos
            .lock()
            .as_ref()
            .map(|c| c.drawn.clone())
            .unwrap_or_default()
    }

    pub fn clear_log(&self) {
        self.state.log.lock().clear();
    }
}

pub fn router(state: Arc<FakeState>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(|s, u, h, b| handle(s, u, h, b, Wire::Chat)),
        )
        .route(
            "/v1/responses",
            post(|s, u, h, b| handle(s, u, h, b, Wire::Responses)),
        )
        .route(
            "/v1/messages",
            post(|s, u, h, b| handle(s, u, h, b, Wire::Messages)),
        )
        .route(
            "/v1/messages/count_tokens",
            post(|s, u, h, b| handle(s, u, h, b, Wire::CountTokens)),
        )
        .route(
            "/v1/embeddings",
            post(|s, u, h, b| handle(s, u, h, b, Wire::Embeddings)),
        )
        .route("/v1beta/models/{*rest}", post(handle_gemini))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(handle_azure),
        )
        .route(
            "/v1/models",
            get(|s, u, h| handle(s, u, h, bytes::Bytes::new(), Wire::Models)),
        )
        // The vendors' balance endpoints, in their documented shapes.
        .route("/user/balance", get(|s, h| balance(s, h, Vendor::DeepSeek)))
        .route("/api/v1/key", get(|s, h| balance(s, h, Vendor::OpenRouter)))
        .route(
            "/v1/users/me/balance",
            get(|s, h| balance(s, h, Vendor::Moonshot)),
        )
        .route("/_fake/keys", post(control_keys))
        .route("/_fake/script/{label}", post(control_script))
        .route("/_fake/always/{label}", post(control_always))
        .route("/_fake/log", get(control_log))
        .route("/_fake/chunk_delay_ms/{ms}", post(control_delay))
        .route("/_fake/reset", post(control_reset))
        .with_state(state)
}

/// Whose balance endpoint is being spoken.
#[derive(Clone, Copy)]
enum Vendor {
    DeepSeek,
    OpenRouter,
    Moonshot,
}

/// A balance answer for the key in `headers`, in `vendor`'s documented shape.
async fn balance(
    State(state): State<Arc<FakeState>>,
    headers: HeaderMap,
    vendor: Vendor,
) -> Response {
    let label = key_of(&headers)
        .0
        .and_then(|k| state.keys.lock().get(&k).cloned());
    let Some(label) = label else {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": {"message": "invalid api key", "type": "authentication_error"}})),
        )
            .into_response();
    };
    *state.balance_calls.lock().entry(label.clone()).or_default() += 1;
    let left = state.balances.lock().get(&label).copied().unwrap_or(100.0);
    let body = match vendor {
        Vendor::DeepSeek => serde_json::json!({
            "is_available": left > 0.0,
            "balance_infos": [{
                "currency": "CNY",
                "total_balance": format!("{left:.2}"),
                "granted_balance": "0.00",
                "topped_up_balance": format!("{left:.2}"),
            }],
        }),
        Vendor::OpenRouter => serde_json::json!({
            "data": {
                "label": "sk-or-v1-fak...e00",
                "limit": 100.0,
                "usage": 100.0 - left,
                "limit_remaining": left,
                "is_free_tier": false,
                "rate_limit": {"requests": 10, "interval": "10s"},
            },
        }),
        Vendor::Moonshot => serde_json::json!({
            "code": 0,
            "data": {"available_balance": left, "voucher_balance": 0.0, "cash_balance": left},
            "scode": "0x0",
            "status": true,
        }),
    };
    axum::Json(body).into_response()
}

fn key_of(headers: &HeaderMap) -> (Option<String>, usize) {
    let mut found = Vec::new();
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        found.push(v.trim_start_matches("Bearer ").to_string());
    }
    for h in ["x-api-key", "x-goog-api-key", "api-key"] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            found.push(v.to_string());
        }
    }
    let n = found.len();
    (found.into_iter().next(), n)
}

async fn handle_gemini(
    state: State<Arc<FakeState>>,
    Path(rest): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let (model, action) = rest.rsplit_once(':').unwrap_or((rest.as_str(), ""));
    let path = (model.to_string(), action == "streamGenerateContent");
    handle_with(state, uri, headers, body, Wire::Gemini, Some(path)).await
}

/// Azure OpenAI: `/openai/deployments/{deployment}/chat/completions?api-version=...`; the
/// deployment is the model.
async fn handle_azure(
    state: State<Arc<FakeState>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream")?.as_bool())
        .unwrap_or(false);
    handle_with(
        state,
        uri,
        headers,
        body,
        Wire::Chat,
        Some((deployment, stream)),
    )
    .await
}

async fn handle(
    state: State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
    wire: Wire,
) -> Response {
    handle_with(state, uri, headers, body, wire, None).await
}

async fn handle_with(
    State(state): State<Arc<FakeState>>,
    uri: Uri,
    headers: HeaderMap,
    body: bytes::Bytes,
    wire: Wire,
    path: Option<(String, bool)>,
) -> Response {
    let (key, n_credentials) = key_of(&headers);
    let label = key.as_ref().and_then(|k| state.keys.lock().get(k).cloned());
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let (model, stream) = match path {
        Some((m, s)) => (Some(m), s),
        None => (
            json.get("model")
                .and_then(|m| m.as_str())
                .map(str::to_string),
            json.get("stream")
                .and_then(|s| s.as_bool())
                .unwrap_or(false),
        ),
    };
    let test_id = headers
        .get("x-test-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let id = state.next_id.fetch_add(1, Ordering::SeqCst);
    let fault = match &label {
        Some(l) => state.next_fault(l).echoing(key.as_deref()),
        None => Fault::Status {
            status: 401,
            headers: HashMap::new(),
            body: wire.auth_error_body(),
        },
    };
    let mut kept = HashMap::new();
    for h in [
        "anthropic-beta",
        "anthropic-version",
        "openai-beta",
        "user-agent",
        "x-test-id",
        "x-custom",
        "accept-encoding",
        "x-forwarded-host",
        "origin",
        "x-http-method-override",
    ] {
        if let Some(v) = headers.get(h).and_then(|v| v.to_str().ok()) {
            kept.insert(h.to_string(), v.to_string());
        }
    }
    let quiet = state.quiet.load(Ordering::Relaxed);
    if !quiet {
        state.log.lock().push(AttemptLog {
            id,
            key: label.clone().unwrap_or_else(|| "unknown".into()),
            path: uri.to_string(),
            test_id: test_id.clone(),
            model: model.clone(),
            stream,
            headers: kept,
            foreign_auth: n_credentials > 1,
            body: String::from_utf8_lossy(&body).into_owned(),
            started_ms: state.now_ms(),
            ended_ms: None,
            events_sent: 0,
            cancelled: false,
            fault: fault.name(),
        });
    }
    if let Some(t) = test_id.as_ref().filter(|_| !quiet) {
        let mut m = state.in_flight_by_test.lock();
        let n = m.entry(t.clone()).or_insert(0);
        *n += 1;
        state
            .max_in_flight_same_test
            .fetch_max(*n as u64, Ordering::SeqCst);
    }
    let label_text = label.clone().unwrap_or_default();
    let cached = {
        use std::hash::{Hash, Hasher};
        let first = ["messages", "input", "contents"]
            .iter()
            .find_map(|k| json.get(*k))
            .map(|v| match v {
                serde_json::Value::Array(a) => a.first().map(|f| f.to_string()).unwrap_or_default(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let mut h = std::hash::DefaultHasher::new();
        first.hash(&mut h);
        !state
            .prompt_cache
            .lock()
            .insert((label_text.clone(), h.finish()))
    };
    // Anthropic with extended thinking on answers with a signed thinking block first.
    let thinking = wire == Wire::Messages
        && json
            .get("thinking")
            .and_then(|t| t.get("type"))
            .and_then(serde_json::Value::as_str)
            == Some("enabled");
    // A model named `…no-usage…` is a server that never reports a stream's usage (some
    // OpenAI-compatible local servers).
    let usage = (wire != Wire::Chat
        || json
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(serde_json::Value::as_bool)
            == Some(true))
        && !model.as_deref().is_some_and(|m| m.contains("no-usage"));
    let ctx = faults::Ctx {
        usage,
        cached,
        thinking,
        state: state.clone(),
        id,
        test_id,
        model: model.unwrap_or_else(|| "fake-model".into()),
        stream,
        wire,
        answer: match model::answer(wire, &json, &label_text) {
            model::Answer::Text(t) if state.chaos.lock().is_some() => {
                model::Answer::Text(format!("a{id} {t}"))
            }
            a => a,
        },
    };
    faults::respond(ctx, fault).await
}

async fn control_keys(
    State(state): State<Arc<FakeState>>,
    Json(v): Json<HashMap<String, String>>,
) -> StatusCode {
    let mut keys = state.keys.lock();
    for (label, key) in v {
        keys.insert(key, label);
    }
    StatusCode::NO_CONTENT
}

async fn control_script(
    State(state): State<Arc<FakeState>>,
    Path(label): Path<String>,
    Json(faults): Json<Vec<Fault>>,
) -> StatusCode {
    state
        .scripts
        .lock()
        .entry(label)
        .or_default()
        .extend(faults);
    StatusCode::NO_CONTENT
}

async fn control_always(
    State(state): State<Arc<FakeState>>,
    Path(label): Path<String>,
    Json(fault): Json<Fault>,
) -> StatusCode {
    state.always.lock().insert(label, fault);
    StatusCode::NO_CONTENT
}

async fn control_delay(State(state): State<Arc<FakeState>>, Path(ms): Path<u64>) -> StatusCode {
    state.chunk_delay_ms.store(ms, Ordering::SeqCst);
    StatusCode::NO_CONTENT
}

async fn control_log(State(state): State<Arc<FakeState>>) -> impl IntoResponse {
    Json(state.log.lock().clone())
}

async fn control_reset(State(state): State<Arc<FakeState>>) -> StatusCode {
    state.log.lock().clear();
    state.scripts.lock().clear();
    state.always.lock().clear();
    StatusCode::NO_CONTENT
}
