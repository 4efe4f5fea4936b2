//! The executor's test harness: a scripted [`Upstream`] that answers each key from its own
//! queue and remembers who was called, and an executor over it with real health, a real
//! in-memory SQLite record store and budgets.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use parking_lot::Mutex;

use super::super::upstream::{BodyError, BodyStream, Inbound, Outbound, TransportError, Upstream};
use super::super::*;
use crate::budgets::Ledger;
use crate::config::Config;
use crate::formats::translate::TranslatorRegistry;
use crate::health::{KeyStatus, NoPersistence, Policy};
use crate::secrets::{MemoryStore, SecretStore};

/// What the scripted upstream answers one call with.
#[derive(Clone)]
pub(super) enum Reply {
    /// A status and a JSON body, with extra headers.
    Json(u16, &'static str, Vec<(&'static str, &'static str)>),
    /// A `text/event-stream` 200: these chunks, then how it ends.
    Sse(Vec<&'static str>, Then),
    /// The connection broke before the response head.
    Reset,
    /// No response head, ever.
    Hang,
    /// Another reply, after a pause.
    After(Duration, Box<Reply>),
}

#[derive(Clone, Copy)]
pub(super) enum Then {
    End,
    Break,
}

pub(super) const OK: &str = r#"{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#;
pub(super) const CHUNK: &str = "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n";
pub(super) const DONE: &str = "data: [DONE]\n\n";
pub(super) const IN_BAND: &str =
    "data: {\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n";

pub(super) fn ok() -> Reply {
    Reply::Json(200, OK, vec![])
}
pub(super) fn status(code: u16) -> Reply {
    Reply::Json(code, r#"{"error":{"message":"no","type":"x"}}"#, vec![])
}

/// Answers each key from its own queue (an empty queue answers 200), and remembers who was
/// called in what order.
#[derive(Default)]
pub(super) struct Script {
    replies: Mutex<HashMap<String, VecDeque<Reply>>>,
    calls: Mutex<Vec<String>>,
}

impl Script {
    pub(super) fn on(&self, key: &str, replies: impl IntoIterator<Item = Reply>) {
        self.replies
            .lock()
            .entry(key.to_string())
            .or_default()
            .extend(replies);
    }

    pub(super) fn calls(&self) -> Vec<String> {
        self.calls.lock().clone()
    }
}

impl Upstream for Script {
    fn send(
        &self,
        req: Outbound,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Inbound, TransportError>> + Send + '_>,
    > {
        let auth = req
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let key = auth
            .strip_prefix("Bearer sk-test-")
            .unwrap_or("?")
            .to_string();
        self.calls.lock().push(key.clone());
        let reply = self
            .replies
            .lock()
            .get_mut(&key)
            .and_then(|q| q.pop_front())
            .unwrap_or_else(ok);
        Box::pin(async move {
            let mut reply = reply;
            while let Reply::After(pause, then) = reply {
                tokio::time::sleep(pause).await;
                reply = *then;
            }
            let body = |chunks: Vec<Result<Bytes, BodyError>>, stall: bool| -> BodyStream {
                let s = futures_util::stream::iter(chunks);
                if stall {
                    Box::pin(s.chain(futures_util::stream::pending()))
                } else {
                    Box::pin(s)
                }
            };
            match reply {
                Reply::Reset => Err(TransportError {
                    connect: false,
                    timed_out: false,
                    detail: "connection reset".into(),
                    proxy: None,
                }),
                Reply::Hang => std::future::pending().await,
                Reply::After(..) => unreachable!("unwrapped above"),
                Reply::Json(code, text, extra) => {
                    let mut headers = http::HeaderMap::new();
                    headers.insert("content-type", "application/json".parse().expect("value"));
                    for (k, v) in extra {
                        headers.insert(k, v.parse().expect("value"));
                    }
                    Ok(Inbound {
                        status: code,
                        headers,
                        body: body(vec![Ok(Bytes::from_static(text.as_bytes()))], false),
                    })
                }
                Reply::Sse(chunks, then) => {
                    let mut headers = http::HeaderMap::new();
                    headers.insert("content-type", "text/event-stream".parse().expect("value"));
                    let mut items: Vec<Result<Bytes, BodyError>> = chunks
                        .into_iter()
                        .map(|c| Ok(Bytes::from_static(c.as_bytes())))
                        .collect();
                    if let Then::Break = then {
                        items.push(Err(BodyError {
                            detail: "connection reset".into(),
                        }));
                    }
                    Ok(Inbound {
                        status: 200,
                        headers,
                        body: body(items, false),
                    })
                }
            }
        })
    }
}

pub(super) struct Harness {
    pub(super) exec: Executor,
    pub(super) script: Arc<Script>,
    pub(super) ledger: Arc<Ledger>,
}

/// An executor over `providers` (openai kind, keys `sk-test-<id>` in an in-memory keychain),
/// with `extra` config after them.
pub(super) fn harness(config: &str) -> Harness {
    let config = Config::from_toml(config, Path::new("t.toml")).expect("config");
    let events = EventBus::new();
    let health = Arc::new(HealthRegistry::new(
        Policy::default(),
        events.clone(),
        Arc::new(NoPersistence),
    ));
    health.sync(&config);
    let keychain = Arc::new(MemoryStore::default());
    for p in &config.providers {
        for k in &p.keys {
            if k.id != "unreadable" {
                keychain
                    .set(
                        &p.account(&k.id),
                        &crate::secrets::SecretValue::new(format!("sk-test-{}", k.id)),
                    )
                    .expect("set");
            }
        }
    }
    let store = crate::store::Store::memory().expect("store");
    let ledger = Arc::new(Ledger::load(&store, events.clone(), &config.budgets).expect("ledger"));
    let log = Recorder::start(&store).with_ledger(ledger.clone());
    let router = Arc::new(Router::new(Arc::new(config), TranslatorRegistry::builtin()));
    let script = Arc::new(Script::default());
    let exec = Executor::new(
        router,
        health,
        Arc::new(Secrets::with_store(keychain)),
        log,
        events,
    )
    .with_upstream(script.clone())
    .with_response_store(Arc::new(store));
    Harness {
        exec,
        script,
        ledger,
    }
}

pub(super) const TWO_KEYS: &str = r#"
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "a" }, { id = "b" }]

[routes.r]
targets = ["p/m"]
"#;

pub(super) const TWO_TARGETS: &str = r#"
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "a" }, { id = "b" }]

[providers.q]
kind = "openai-compatible"
base_url = "https://q.test/v1"
keys = [{ id = "c" }]

[routes.r]
targets = ["p/m", "q/m"]
"#;

pub(super) const ONE_KEY: &str = r#"
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "a" }]

[routes.r]
targets = ["p/m"]
"#;

pub(super) fn chat(stream: bool) -> ProxyRequest {
    let body = if stream {
        r#"{"model":"r","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
    } else {
        r#"{"model":"r","messages":[{"role":"user","content":"hi"}]}"#
    };
    let body = Bytes::from_static(body.as_bytes());
    let head = crate::formats::body::read_head(&body).expect("head");
    ProxyRequest {
        endpoint: Endpoint::ChatCompletions,
        dialect: Dialect::OpenaiChat,
        model: "r".into(),
        model_span: head.model_span,
        stream,
        body,
        headers: HeaderMap::new(),
        client: None,
        limits: None,
        request_id: "req-1".into(),
        conversation: None,
        tools: false,
        max_output: None,
    }
}

impl Harness {
    pub(super) async fn run(&self, req: ProxyRequest) -> Result<ProxyResponse, ProxyError> {
        self.exec.execute(req).await
    }

    /// Every record written so far, oldest first.
    pub(super) fn records(&self) -> Vec<crate::record::RequestRecord> {
        let mut r = self.exec.log().recent(100).expect("records");
        r.reverse();
        r
    }

    /// The one record of a one-request test.
    pub(super) fn record(&self) -> crate::record::RequestRecord {
        let mut r = self.records();
        assert_eq!(r.len(), 1, "recorded exactly once: {r:?}");
        r.remove(0)
    }

    pub(super) fn status(&self, account: &str) -> KeyStatus {
        self.exec
            .health()
            .state(account)
            .map_or(KeyStatus::Healthy, |s| s.status)
    }

    pub(super) fn assert_nothing_reserved(&self) {
        assert_eq!(self.ledger.held(), crate::budgets::Spend::default());
    }
}

/// The whole body of a stream.
pub(super) async fn drain(resp: ProxyResponse) -> String {
    let ProxyResponse::Stream { mut body, .. } = resp else {
        panic!("not a stream");
    };
    let mut out = Vec::new();
    while let Some(b) = body.recv().await {
        out.extend_from_slice(&b);
    }
    String::from_utf8(out).expect("utf-8")
}

pub(super) fn complete(resp: &ProxyResponse) -> (u16, String) {
    match resp {
        ProxyResponse::Complete { status, body, .. } => {
            (*status, String::from_utf8_lossy(body).into_owned())
        }
        ProxyResponse::Stream { .. } => panic!("a stream"),
    }
}
