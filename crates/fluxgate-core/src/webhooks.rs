//! Webhooks: events from the bus POSTed as JSON to the URLs in `[[webhooks]]`.
//!
//! - A bounded queue ([`QUEUE`] events): when a receiver is slow or down and the queue is full,
//!   new events are dropped with a warning rather than held without bound.
//! - Each delivery is retried up to [`ATTEMPTS`] times with growing pauses on a transport error,
//!   a timeout, 408, 429 or 5xx; any other answer ends it. Redirects are not followed.
//! - `route_unavailable` is sent at most once a minute per route (it is published per refused
//!   request).
//! - The body is `{"ts_ms": ..., "event": {"type": ..., ...}}`: provider, key ids, states and
//!   reasons, never key material. Webhook URLs can carry their own secrets, so they are never
//!   logged; a webhook is named by its position in the config.
//! - The config is read per event, so webhook edits apply without a restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::clock::now_ms;
use crate::config::{Config, Timeouts, Webhook};
use crate::events::{Event, EventBus};
use crate::exec::client::HttpClient;
use crate::exec::upstream::Outbound;

/// Events waiting for delivery, at most.
pub const QUEUE: usize = 256;
/// Tries per delivery.
pub const ATTEMPTS: u32 = 4;
/// Per try.
const TRY_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause before the second try; doubles each time.
const FIRST_PAUSE: Duration = Duration::from_millis(500);
/// `route_unavailable` for one route at most this often.
const ROUTE_UNAVAILABLE_EVERY: Duration = Duration::from_secs(60);

/// The event's `type` as the config names it.
pub fn event_type(e: &Event) -> &'static str {
    match e {
        Event::KeyStateChanged { .. } => "key_state_changed",
        Event::ProxyStateChanged { .. } => "proxy_state_changed",
        Event::BalanceLow { .. } => "balance_low",
        Event::RouteUnavailable { .. } => "route_unavailable",
        Event::ConfigReloaded { .. } => "config_reloaded",
        Event::ConfigInvalid { .. } => "config_invalid",
        Event::RoutingPaused { .. } => "routing_paused",
        Event::BudgetThreshold { .. } => "budget_threshold",
    }
}

fn wants(w: &Webhook, e: &Event) -> bool {
    w.events.is_empty() || w.events.iter().any(|t| t == event_type(e))
}

/// Starts the queue and the sender; they stop with `shutdown` (the queue is not drained).
pub fn spawn(
    config: impl Fn() -> Option<Arc<Config>> + Send + Sync + 'static,
    events: &EventBus,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let mut rx = events.subscribe();
    let (tx, queue) = mpsc::channel::<(i64, Event)>(QUEUE);
    let config = Arc::new(config);
    let sender = tokio::spawn(send_all(config.clone(), queue));
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut last_unavailable: HashMap<String, Instant> = HashMap::new();
        let mut dropped: u64 = 0;
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                e = rx.recv() => e,
            };
            let event = match event {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "webhooks fell behind the event bus");
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if config().is_none_or(|c| c.webhooks.is_empty()) {
                continue;
            }
            if let Event::RouteUnavailable { route, .. } = &event {
                let now = Instant::now();
                if last_unavailable
                    .get(route)
                    .is_some_and(|t| now.duration_since(*t) < ROUTE_UNAVAILABLE_EVERY)
                {
                    continue;
                }
                last_unavailable.insert(route.clone(), now);
            }
            if tx.try_send((now_ms(), event)).is_err() {
                dropped += 1;
                tracing::warn!(
                    dropped,
                    "webhook queue full ({QUEUE} events); an event was dropped"
                );
            }
        }
        sender.abort();
    })
}

async fn send_all(
    config: Arc<impl Fn() -> Option<Arc<Config>> + Send + Sync + 'static>,
    mut queue: mpsc::Receiver<(i64, Event)>,
) {
    let client = HttpClient::new(&Timeouts {
        connect: Duration::from_secs(5),
        ..Timeouts::default()
    });
    while let Some((ts_ms, event)) = queue.recv().await {
        let body = Bytes::from(serde_json::json!({"ts_ms": ts_ms, "event": event}).to_string());
        let Some(cfg) = config() else { continue };
        for (i, w) in cfg.webhooks.iter().enumerate() {
            if wants(w, &event) {
                deliver(&client, i, w, body.clone(), event_type(&event)).await;
            }
        }
    }
}

/// One delivery with retries; returns whether it was accepted.
pub async fn deliver(client: &HttpClient, i: usize, w: &Webhook, body: Bytes, kind: &str) -> bool {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(concat!("fluxgate/", env!("CARGO_PKG_VERSION"))),
    );
    let mut pause = FIRST_PAUSE;
    for attempt in 1..=ATTEMPTS {
        let sent = tokio::time::timeout(
            TRY_TIMEOUT,
            client.request(Outbound {
                method: Method::POST,
                url: w.url.clone(),
                headers: headers.clone(),
                body: body.clone(),
                via: None,
            }),
        )
        .await;
        let retry = match sent {
            Ok(Ok(resp)) => {
                let status = resp.status;
                if (200..300).contains(&status) {
                    return true;
                }
                let retry = status == 408 || status == 429 || status >= 500;
                tracing::warn!(
                    webhook = i,
                    event = kind,
                    status,
                    attempt,
                    "webhook answered an error"
                );
                retry
            }
            Ok(Err(e)) => {
                tracing::warn!(webhook = i, event = kind, attempt, error = %crate::health::scrub(&e.detail), "webhook delivery failed");
                true
            }
            Err(_) => {
                tracing::warn!(webhook = i, event = kind, attempt, "webhook timed out");
                true
            }
        };
        if !retry || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
    tracing::warn!(webhook = i, event = kind, "webhook gave up on an event");
    false
}
