//! `GET /admin/api/events` (admin token): the router's events as Server-Sent Events, for the
//! console and the desktop shell.
//!
//! The stream opens with a `snapshot` event (every key's health, the budgets and the time), so
//! a client never has to combine a poll with the stream; then one event per [`Event`], named
//! by its type (`key_state_changed`, `route_unavailable`, `config_reloaded`,
//! `config_invalid`, `budget_threshold`) with the event as JSON data. A client too slow to keep
//! up gets a `lagged` event saying how many it missed (and should take a new snapshot by
//! reconnecting). A comment every 15 s keeps proxies and idle timers from closing the stream;
//! the stream ends when the server starts draining, so it never holds a shutdown up.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fluxgate_core::events::Event;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// How often a keep-alive comment is sent.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the stream checks whether the server is draining.
const SHUTDOWN_CHECK: Duration = Duration::from_millis(250);

fn frame(name: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn snapshot(s: &AppState) -> Bytes {
    let config = s.gateway.config();
    let budgets = s
        .gateway
        .log
        .ledger()
        .map(|l| l.report())
        .unwrap_or_default();
    let ts_ms = fluxgate_core::clock::now_ms() as u64;
    frame(
        "snapshot",
        &json!({
            "ts_ms": ts_ms,
            "keys": s.gateway.health.list(&config),
            "budgets": budgets,
        }),
    )
}

pub async fn events(State(s): State<Arc<AppState>>) -> Response {
    // Subscribe before the snapshot, so nothing falls between the two.
    let rx = s.gateway.events.subscribe();
    let first = snapshot(&s);
    struct St {
        state: Arc<AppState>,
        rx: tokio::sync::broadcast::Receiver<Event>,
        first: Option<Bytes>,
        since_data: Duration,
    }
    let st = St {
        state: s,
        rx,
        first: Some(first),
        since_data: Duration::ZERO,
    };
    let stream = futures_util::stream::unfold(st, |mut st| async move {
        if let Some(b) = st.first.take() {
            return Some((Ok::<_, Infallible>(b), st));
        }
        loop {
            if st.state.shutting_down.load(Ordering::SeqCst) {
                return None;
            }
            tokio::select! {
                got = st.rx.recv() => {
                    st.since_data = Duration::ZERO;
                    let bytes = match got {
                        Ok(ev) => {
                            let v = serde_json::to_value(&ev).unwrap_or_default();
                            frame(fluxgate_core::webhooks::event_type(&ev), &v)
                        }
                        Err(RecvError::Lagged(n)) => frame("lagged", &json!({"missed": n})),
                        Err(RecvError::Closed) => return None,
                    };
                    return Some((Ok(bytes), st));
                }
                _ = tokio::time::sleep(SHUTDOWN_CHECK) => {
                    st.since_data += SHUTDOWN_CHECK;
                    if st.since_data >= KEEP_ALIVE {
                        st.since_data = Duration::ZERO;
                        return Some((Ok(Bytes::from_static(b": keep-alive\n\n")), st));
                    }
                }
            }
        }
    });
    let mut r = Body::from_stream(stream).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    r
}
