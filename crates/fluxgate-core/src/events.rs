//! Typed events that the health module and the executor publish on a broadcast channel.
//!
//! The UI, the tray, notifications and the store subscribe; nothing here performs I/O.

use serde::Serialize;
use tokio::sync::broadcast;

use crate::vocab::{ErrorClass, KeyStatus};

/// Something that happened inside the router that other parts may want to show or record.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A key moved between health states.
    KeyStateChanged {
        provider: String,
        key_id: String,
        from: KeyStatus,
        to: KeyStatus,
        reason: Option<ErrorClass>,
        /// Unix milliseconds at which the key is expected back, when known.
        #[cfg_attr(test, ts(type = "number | null"))]
        until_ms: Option<i64>,
    },
    /// An outbound proxy started failing, or works again. Keys behind it are not blamed.
    ProxyStateChanged {
        proxy: String,
        ok: bool,
        /// What it did wrong, while it fails.
        error: Option<String>,
    },
    /// A key's remaining credit fell below its provider's `low_balance` (once until it is
    /// topped up).
    BalanceLow {
        provider: String,
        key_id: String,
        remaining: Option<f64>,
        currency: Option<String>,
        threshold: Option<f64>,
        /// The provider's `low_balance_action` takes it out of rotation while low.
        out_of_rotation: bool,
    },
    /// A request asked for a route and found no candidate that could serve it.
    RouteUnavailable {
        route: String,
        #[cfg_attr(test, ts(type = "number"))]
        retry_after_secs: u64,
    },
    /// The config file changed and the new config is in force.
    ConfigReloaded { path: String },
    /// The config file changed but is invalid; the running config stays in force.
    ConfigInvalid { path: String, error: String },
    /// The user paused or resumed routing (tray or console).
    RoutingPaused { paused: bool },
    /// Spending in a budget's scope crossed 80% or 100% of one of its limits (once per
    /// limit, threshold and period).
    BudgetThreshold {
        /// `all traffic`, `provider openai`, `key openai/work`, `route coding`, `client ci`.
        scope: String,
        /// `daily` or `monthly`.
        period: &'static str,
        /// `usd` or `tokens`.
        unit: &'static str,
        percent: u8,
        spent: f64,
        limit: f64,
    },
}

/// A cloneable handle to the event channel.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }

    /// Publishes an event. Having no subscriber is normal (headless, no UI) and not an error.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}
