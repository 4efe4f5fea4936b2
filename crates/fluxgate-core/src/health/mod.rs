//! Key health: the error taxonomy, one state machine per key, cooldowns and retests.
//!
//! Only this module changes a key's state. Every change is persisted through a
//! [`HealthBackend`] (SQLite on a workstation; a shared engine for a team later) and published
//! as an [`Event`]. The executor asks [`HealthRegistry::usable`] before each attempt and reports
//! every outcome back; it never edits a state itself.

mod balances;
mod classify;
pub mod hints;
mod proxies;
mod retest;
mod state;
pub mod transport;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use balances::BalanceBook;
pub use balances::{BalancePolicy, BalanceReading, Crossing, KeyBalance, MIN_ON_DEMAND_GAP};
pub use classify::{
    classify_in_band, classify_status, scrub, ErrorClass, Failure, FailureKind, TimeoutPhase,
};
use proxies::ProxyBook;
pub use proxies::ProxyHealth;
pub use retest::{run_scheduler, Retester};
pub use state::{KeyState, KeyStatus, Policy};
pub use transport::{empty_response, BodyError, TransportError};

use crate::config::Config;
use crate::events::{Event, EventBus};

/// A key's state as stored, with wall-clock times so it survives a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedState {
    pub account: String,
    pub status: KeyStatus,
    pub reason: Option<ErrorClass>,
    pub last_status: Option<u16>,
    pub last_message: Option<String>,
    pub until_ms: Option<i64>,
    pub consecutive_failures: u32,
    pub ladder: Option<ErrorClass>,
    pub step: u32,
}

/// Where key health is kept between runs, and shared between instances.
pub trait HealthBackend: Send + Sync {
    fn load_all(&self) -> Vec<PersistedState>;
    fn save(&self, state: PersistedState);
    /// Whether this instance should run the key's due retest. A shared backend answers `true`
    /// to one replica of the fleet at a time (the others learn the result from the shared
    /// state); in-process there is nobody to share with.
    fn claim_retest(&self, _account: &str) -> BoxFuture<bool> {
        Box::pin(std::future::ready(true))
    }
}

/// A boxed future, for the async methods of object-safe traits.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// A backend that keeps nothing (tests, `fluxgate explain` without a data dir).
pub struct NoPersistence;

impl HealthBackend for NoPersistence {
    fn load_all(&self) -> Vec<PersistedState> {
        Vec::new()
    }
    fn save(&self, _state: PersistedState) {}
}

/// A key's health as the API, the CLI and the UI show it.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize)]
pub struct KeyHealth {
    pub provider: String,
    pub key_id: String,
    pub status: KeyStatus,
    /// Why it is out of rotation: none while it is usable or disabled (its last failure is
    /// then history: `last_status`, `last_message`, `last_error_ms`).
    pub reason: Option<ErrorClass>,
    pub last_status: Option<u16>,
    pub last_message: Option<String>,
    /// When this Fluxgate last saw the key fail (Unix milliseconds; none since it started).
    #[cfg_attr(test, ts(type = "number | null"))]
    pub last_error_ms: Option<i64>,
    /// Unix milliseconds when the key comes back or is retested.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub until_ms: Option<i64>,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub retry_in_secs: Option<u64>,
    pub in_flight: u32,
    /// Why the key's secret could not be read, when it could not.
    pub secret_error: Option<String>,
    /// The outbound proxy its requests go through (`None`: direct).
    pub proxy: Option<String>,
    /// What that proxy did wrong, while it is failing (the key itself is not blamed).
    pub proxy_error: Option<String>,
    /// Its remaining credit, where the vendor tells it.
    pub balance: Option<KeyBalance>,
}

struct KeyEntry {
    provider: String,
    key_id: String,
    state: Mutex<KeyState>,
    in_flight: AtomicU32,
    secret_error: Mutex<Option<String>>,
    /// When it last failed (Unix milliseconds; 0: not since start).
    last_error_ms: std::sync::atomic::AtomicI64,
}

/// Maps tokio instants (which tests can pause) to wall-clock time for persistence and display.
#[derive(Clone, Copy)]
struct WallClock {
    wall: SystemTime,
    instant: Instant,
}

impl WallClock {
    fn now() -> Self {
        WallClock {
            wall: crate::clock::wall(),
            instant: Instant::now(),
        }
    }
    fn to_ms(self, at: Instant) -> i64 {
        let wall = if at >= self.instant {
            self.wall + (at - self.instant)
        } else {
            self.wall - (self.instant - at)
        };
        crate::clock::unix_ms(wall)
    }
    fn instant_at_ms(self, ms: i64) -> Instant {
        let now_ms = self.to_ms(self.instant);
        if ms >= now_ms {
            self.instant + Duration::from_millis((ms - now_ms) as u64)
        } else {
            self.instant
        }
    }
}

/// Every key's health, shared by the executor, the retest scheduler and the API.
pub struct HealthRegistry {
    /// foldhash, not SipHash: these keys come from the config, and SipHash showed on the hot path.
    keys: RwLock<HashMap<String, Arc<KeyEntry>, foldhash::fast::RandomState>>,
    policy: Policy,
    events: EventBus,
    backend: Arc<dyn HealthBackend>,
    changed: Notify,
    /// Outbound proxies, as their last use found them.
    proxies: ProxyBook,
    /// Keys' remaining credit, where the vendor tells it.
    balances: BalanceBook,
}

/// Decrements a key's in-flight count when dropped.
pub struct InFlight {
    entry: Arc<KeyEntry>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.entry.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HealthRegistry {
    pub fn new(policy: Policy, events: EventBus, backend: Arc<dyn HealthBackend>) -> Self {
        HealthRegistry {
            keys: RwLock::new(HashMap::default()),
            policy,
            events,
            backend,
            changed: Notify::new(),
            proxies: ProxyBook::default(),
            balances: BalanceBook::default(),
        }
    }

    /// Records how a use of an outbound proxy went (`None`: it went through). A change between
    /// working and failing is logged and published.
    pub fn report_proxy(&self, proxy: &str, failure: Option<&Failure>) {
        let now_ms = crate::clock::unix_ms(crate::clock::wall());
        let Some(changed) = self.proxies.report(proxy, failure, Instant::now(), now_ms) else {
            return;
        };
        match &changed.error {
            Some(e) => tracing::warn!(proxy, detail = %e, "outbound proxy failing"),
            None => tracing::info!(proxy, "outbound proxy working again"),
        }
        self.events.publish(Event::ProxyStateChanged {
            proxy: changed.proxy,
            ok: changed.ok,
            error: changed.error,
        });
    }

    /// How long a proxy still rests after a failure, if it does.
    pub fn proxy_resting(&self, proxy: &str, now: Instant) -> Option<Duration> {
        self.proxies.resting(proxy, now)
    }

    /// Keys whose scheduled balance check is due.
    pub fn balances_due(&self, now: Instant) -> Vec<String> {
        self.balances.due(now).into_iter().map(|(a, _)| a).collect()
    }

    /// Starts a balance check of `account` unless it was asked less than `gap` ago (or has
    /// no balance source); `true` when the check may go ahead.
    pub fn begin_balance_check(&self, account: &str, gap: Duration) -> bool {
        self.balances.begin(account, Instant::now(), gap)
    }

    /// Records a balance check; a key going below its threshold is logged and published once.
    pub fn record_balance(&self, account: &str, result: Result<BalanceReading, String>) {
        let now_ms = crate::clock::unix_ms(crate::clock::wall());
        let Some(crossing) = self.balances.record(account, result, now_ms) else {
            return;
        };
        let Some(key) = crate::vocab::KeyRef::parse(account) else {
            return;
        };
        match crossing {
            Crossing::Low(b) => {
                tracing::warn!(
                    account,
                    remaining = b.remaining,
                    currency = b.currency.as_deref(),
                    out_of_rotation = b.out_of_rotation,
                    "key balance low"
                );
                self.events.publish(Event::BalanceLow {
                    provider: key.provider,
                    key_id: key.key_id,
                    remaining: b.remaining,
                    currency: b.currency,
                    threshold: b.threshold,
                    out_of_rotation: b.out_of_rotation,
                });
            }
            Crossing::Recovered(b) => {
                tracing::info!(
                    account,
                    remaining = b.remaining,
                    "key balance back above its threshold"
                );
            }
        }
        self.changed.notify_one();
    }

    /// The key's balance as last read.
    pub fn balance(&self, account: &str) -> Option<KeyBalance> {
        self.balances.get(account)
    }

    /// The key's balance when it keeps the key out of rotation.
    pub fn balance_out_of_rotation(&self, account: &str) -> Option<KeyBalance> {
        self.balances.out_of_rotation(account)
    }

    /// Every proxy used so far, as its last use found it.
    pub fn proxies(&self) -> Vec<ProxyHealth> {
        self.proxies.list()
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Makes the registry hold exactly the configured keys, restoring persisted state for keys
    /// it has not seen in this run. Keys disabled in the config are `disabled`.
    pub fn sync(&self, config: &Config) {
        let persisted: HashMap<String, PersistedState> = self
            .backend
            .load_all()
            .into_iter()
            .map(|p| (p.account.clone(), p))
            .collect();
        let clock = WallClock::now();
        let mut keys = self.keys.write();
        let mut next = HashMap::default();
        for p in &config.providers {
            for k in &p.keys {
                let account = p.account(&k.id);
                let entry = keys.remove(&account).unwrap_or_else(|| {
                    let state = persisted
                        .get(&account)
                        .map(|s| restore(s, clock))
                        .unwrap_or_default();
                    Arc::new(KeyEntry {
                        provider: p.name.clone(),
                        key_id: k.id.clone(),
                        state: Mutex::new(state),
                        in_flight: AtomicU32::new(0),
                        secret_error: Mutex::new(None),
                        last_error_ms: std::sync::atomic::AtomicI64::new(0),
                    })
                });
                {
                    let mut st = entry.state.lock();
                    let enabled = k.enabled && p.enabled;
                    if !enabled && st.status != KeyStatus::Disabled {
                        st.disable();
                    } else if enabled && st.status == KeyStatus::Disabled {
                        st.enable();
                    }
                }
                next.insert(account, entry);
            }
        }
        *keys = next;
        drop(keys);
        self.balances.sync(config.providers.iter().flat_map(|p| {
            p.balance
                .iter()
                .flat_map(move |b| p.keys.iter().map(move |k| (p.account(&k.id), *b)))
        }));
        self.changed.notify_one();
    }

    fn entry(&self, account: &str) -> Option<Arc<KeyEntry>> {
        self.keys.read().get(account).cloned()
    }

    /// Whether a request may use the key now.
    pub fn usable(&self, account: &str, now: Instant) -> bool {
        self.entry(account)
            .is_some_and(|e| e.state.lock().usable(now))
    }

    pub fn state(&self, account: &str) -> Option<KeyState> {
        self.entry(account).map(|e| e.state.lock().clone())
    }

    pub fn in_flight(&self, account: &str) -> u32 {
        self.entry(account)
            .map_or(0, |e| e.in_flight.load(Ordering::Relaxed))
    }

    /// Counts an attempt as in flight on this key until the guard drops.
    pub fn begin(&self, account: &str) -> Option<InFlight> {
        let entry = self.entry(account)?;
        entry.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight { entry })
    }

    /// When the key is expected back, if it is out.
    pub fn back_at(&self, account: &str) -> Option<Instant> {
        self.entry(account).and_then(|e| e.state.lock().back_at())
    }

    pub fn report_success(&self, account: &str) {
        // The common case, a success on a key with nothing to forget, changes nothing: skip
        // the before/after copies that `update` makes.
        if let Some(e) = self.entry(account) {
            let st = e.state.lock();
            if st.status == KeyStatus::Healthy
                && st.consecutive_failures == 0
                && st.step == 0
                && st.reason.is_none()
            {
                return;
            }
        }
        self.update(account, |s, _| s.on_success());
    }

    pub fn report_failure(&self, account: &str, failure: &Failure) {
        if let Some(e) = self.entry(account) {
            e.last_error_ms
                .store(crate::clock::now_ms(), Ordering::Relaxed);
        }
        let policy = self.policy.clone();
        self.update(account, |s, now| s.on_failure(failure, now, &policy));
    }

    pub fn revive(&self, account: &str) {
        self.update(account, |s, _| s.revive());
    }

    /// Records (or clears) a problem reading the key's secret; shown next to its state.
    pub fn set_secret_error(&self, account: &str, error: Option<String>) {
        if let Some(e) = self.entry(account) {
            *e.secret_error.lock() = error;
        }
    }

    /// Ends cooldowns that are over. Returns the instant of the next scheduled change after `now`.
    pub fn tick(&self, now: Instant) -> Option<Instant> {
        let entries: Vec<(String, Arc<KeyEntry>)> = self
            .keys
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut next: Option<Instant> = None;
        for (account, e) in entries {
            let mut st = e.state.lock();
            let before = st.clone();
            if st.tick(now, &self.policy) {
                let after = st.clone();
                drop(st);
                self.changed_state(&account, &e, &before, &after);
                st = e.state.lock();
            }
            if let Some(u) = st.until.filter(|u| *u > now) {
                next = Some(next.map_or(u, |n| n.min(u)));
            }
        }
        next
    }

    /// Keys whose retest is due.
    pub fn due_retests(&self, now: Instant) -> Vec<(String, Option<ErrorClass>)> {
        self.keys
            .read()
            .iter()
            .filter_map(|(k, e)| {
                let st = e.state.lock();
                st.retest_due(now).then(|| (k.clone(), st.reason))
            })
            .collect()
    }

    /// Resolves when some key's state changed (so the scheduler can re-plan its sleep).
    pub async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Applies a state another replica saved to the shared backend: the local state becomes
    /// it (events and notifications included) without being saved again. A key switched off in
    /// this replica's config stays off, and another replica's `disabled` (its own config) is
    /// not copied.
    pub fn apply_remote(&self, p: &PersistedState) {
        let Some(e) = self.entry(&p.account) else {
            return;
        };
        if p.status == KeyStatus::Disabled {
            return;
        }
        let clock = WallClock::now();
        let (before, after) = {
            let mut st = e.state.lock();
            if st.status == KeyStatus::Disabled {
                return;
            }
            let before = st.clone();
            *st = restore(p, clock);
            (before, st.clone())
        };
        if before.status != after.status {
            self.announce(&e, &before, &after, p.until_ms);
        }
    }

    /// Asks the backend whether this instance runs the key's due retest.
    pub(crate) fn claim_retest(&self, account: &str) -> BoxFuture<bool> {
        self.backend.claim_retest(account)
    }

    fn update(&self, account: &str, f: impl FnOnce(&mut KeyState, Instant)) {
        let Some(e) = self.entry(account) else { return };
        let now = Instant::now();
        let (before, after) = {
            let mut st = e.state.lock();
            let before = st.clone();
            f(&mut st, now);
            (before, st.clone())
        };
        if before != after {
            self.changed_state(account, &e, &before, &after);
        }
    }

    fn changed_state(&self, account: &str, e: &KeyEntry, before: &KeyState, after: &KeyState) {
        let clock = WallClock::now();
        let until_ms = after.until.map(|u| clock.to_ms(u));
        self.backend.save(PersistedState {
            account: account.to_string(),
            status: after.status,
            reason: after.reason,
            last_status: after.last_status,
            last_message: after.last_message.clone(),
            until_ms,
            consecutive_failures: after.consecutive_failures,
            ladder: after.ladder,
            step: after.step,
        });
        if before.status != after.status {
            self.announce(e, before, after, until_ms);
        }
    }

    /// Logs and publishes a change of status (from this replica or another).
    fn announce(&self, e: &KeyEntry, before: &KeyState, after: &KeyState, until_ms: Option<i64>) {
        tracing::info!(provider = %e.provider, key = %e.key_id, from = before.status.as_str(), to = after.status.as_str(), reason = after.reason.map(|r| r.as_str()), "key state changed");
        self.events.publish(Event::KeyStateChanged {
            provider: e.provider.clone(),
            key_id: e.key_id.clone(),
            from: before.status,
            to: after.status,
            reason: after.reason,
            until_ms,
        });
        self.changed.notify_one();
    }

    /// Every key's health, in config order of providers then keys.
    pub fn list(&self, config: &Config) -> Vec<KeyHealth> {
        let clock = WallClock::now();
        let now = Instant::now();
        let mut out = Vec::new();
        for p in &config.providers {
            for k in &p.keys {
                let Some(e) = self.entry(&p.account(&k.id)) else {
                    continue;
                };
                let st = e.state.lock().clone();
                let shown = st.back_at();
                let proxy = k.egress.proxy().map(|p| p.label.clone());
                let proxy_error = proxy.as_ref().and_then(|label| self.proxies.error(label));
                let status = if st.usable(now) {
                    KeyStatus::Healthy
                } else {
                    st.status
                };
                let last_error = e.last_error_ms.load(Ordering::Relaxed);
                out.push(KeyHealth {
                    provider: e.provider.clone(),
                    key_id: e.key_id.clone(),
                    status,
                    reason: st
                        .reason
                        .filter(|_| !matches!(status, KeyStatus::Healthy | KeyStatus::Disabled)),
                    last_error_ms: (last_error > 0).then_some(last_error),
                    last_status: st.last_status,
                    last_message: st.last_message.clone(),
                    until_ms: shown.map(|u| clock.to_ms(u)),
                    retry_in_secs: shown
                        .map(|u| u.saturating_duration_since(now).as_secs_f64().ceil() as u64),
                    in_flight: e.in_flight.load(Ordering::Relaxed),
                    secret_error: e.secret_error.lock().clone(),
                    proxy,
                    proxy_error,
                    balance: self.balances.get(&p.account(&k.id)),
                });
            }
        }
        out
    }
}

fn restore(p: &PersistedState, clock: WallClock) -> KeyState {
    KeyState {
        status: p.status,
        reason: p.reason,
        last_status: p.last_status,
        last_message: p.last_message.clone(),
        until: p.until_ms.map(|ms| clock.instant_at_ms(ms)),
        consecutive_failures: p.consecutive_failures,
        ladder: p.ladder,
        step: p.step,
    }
}

#[cfg(test)]
mod tests;
