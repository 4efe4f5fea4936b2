//! Spending: what each scope (all traffic, a key, a provider, a route, a client token) has
//! spent today and this month, in USD and tokens, and the check that refuses a request before
//! it is sent when its estimated cost would break a `[[budgets]]` limit.
//!
//! Spend is settled from each request's record (its reported usage at the catalogue's prices)
//! in [`crate::recorder::Recorder::record`]; the record writer also adds it to the `spend` table
//! in the same transaction as the record, so the totals survive a restart (and a crash loses
//! at most the records not yet written, about 25 ms). Requests in flight hold a
//! [`Reservation`] of their estimated cost, so concurrent requests cannot together overshoot
//! a limit. Periods are UTC calendar days and months.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::clock::now_ms;
use crate::config::{Budget, BudgetScope};
use crate::events::{Event, EventBus};
use crate::record::{civil_from_days, days_from_civil, RequestRecord};
pub use crate::record::{periods, record_scopes, scope_keys as scopes, Spend};
use crate::store::{Store, StoreError};

/// The fractions of a limit at which an event is published.
pub const THRESHOLDS: [u8; 2] = [80, 100];

impl BudgetScope {
    /// The scope's key in the ledger and the `spend` table.
    pub fn key(&self) -> String {
        match self {
            BudgetScope::All => "all".into(),
            BudgetScope::Key(k) => format!("key:{k}"),
            BudgetScope::Provider(p) => format!("provider:{p}"),
            BudgetScope::Route(r) => format!("route:{r}"),
            BudgetScope::Client(c) => format!("client:{c}"),
        }
    }
}

/// Seconds from `ts_ms` until the period ends (next UTC midnight, or the first of next month).
pub fn seconds_to_reset(ts_ms: i64, period: Period) -> u64 {
    let day = ts_ms.div_euclid(86_400_000);
    let end_day = match period {
        Period::Daily => day + 1,
        Period::Monthly => {
            let (y, m, _) = civil_from_days(day);
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            days_from_civil(ny, nm, 1)
        }
    };
    ((end_day * 86_400_000 - ts_ms) / 1000).max(1) as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// Index 0 of [`periods`].
    Daily = 0,
    /// Index 1 of [`periods`].
    Monthly = 1,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Daily => "daily",
            Period::Monthly => "monthly",
        }
    }
}

/// A limit a request would break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Exceeded {
    pub scope: String,
    pub period: Period,
    /// `usd` or `tokens`.
    pub unit: &'static str,
    pub limit: f64,
    /// Spent and reserved so far in the period.
    pub used: f64,
    /// This request's estimate.
    pub needed: f64,
    pub resets_in_secs: u64,
}

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let money = |v: f64| {
            if self.unit == "usd" {
                format!("${v:.4}")
            } else {
                format!("{} tokens", v.round() as u64)
            }
        };
        let h = self.resets_in_secs / 3600;
        let m = (self.resets_in_secs % 3600) / 60;
        write!(
            f,
            "the {} budget of {} is {} and {} is used; this request needs about {} more. It resets in {h} h {m} min (UTC {})",
            self.period.as_str(),
            self.scope,
            money(self.limit),
            money(self.used),
            money(self.needed),
            if self.period == Period::Daily { "midnight" } else { "month start" },
        )
    }
}

type FastHash = foldhash::fast::RandomState;

#[derive(Default)]
struct Inner {
    /// period key -> scope key -> settled spend (nested, so that settling a request, which
    /// every request does, finds its entries without making a key).
    spent: HashMap<String, HashMap<String, Spend, FastHash>, FastHash>,
    /// (period key, scope key) -> reserved by requests in flight.
    reserved: HashMap<(String, String), Spend>,
    /// (period key, scope key, unit, threshold) already announced.
    announced: HashSet<(String, String, &'static str, u8)>,
    /// The day the maps were last pruned at.
    day: String,
}

/// Every scope's spending, shared by the executor (check, reserve) and the request log
/// (settle).
pub struct Ledger {
    /// Shared with the reservations, which give their amount back when dropped.
    inner: Arc<Mutex<Inner>>,
    /// The current day index and its period keys, so a check formats no dates.
    current: Mutex<(i64, [String; 2])>,
    budgets: RwLock<Arc<Vec<(String, Budget)>>>,
    events: EventBus,
}

/// A request's reserved estimate; released when dropped (its real spend arrives with its
/// record). Whatever the ledger, releasing is the reservation's own job, so no exit can forget
/// it.
pub struct Reservation {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Reservation {
    /// A reservation that runs `release` when dropped.
    pub fn new(release: impl FnOnce() + Send + Sync + 'static) -> Self {
        Reservation {
            release: Some(Box::new(release)),
        }
    }
}

impl Reservation {
    /// One reservation that releases both.
    pub fn join(self, other: Reservation) -> Reservation {
        Reservation::new(move || {
            drop(self);
            drop(other);
        })
    }
}

/// Why the fleet's ledger did not hold a request's estimate.
#[derive(Debug)]
pub enum FleetRefusal {
    /// A budget of the fleet would be broken.
    Exceeded(Exceeded),
    /// The fleet's ledger does not answer and budgets fail closed.
    Unreachable(String),
}

/// The fleet-wide check of budgets (team mode), after this replica's own [`BudgetLedger`]
/// reserved: `reserve` checks the fleet's settled spend and every replica's holds and adds
/// this request's hold in one atomic step, so two replicas cannot both take the last dollar.
/// When the engine does not answer it refuses ([`FleetRefusal::Unreachable`]) or, configured
/// to fail open, holds nothing and lets the local check decide.
pub trait FleetBudgets: Send + Sync {
    fn reserve<'a>(
        &'a self,
        budgets: &'a [(String, Budget)],
        scopes: &'a [String],
        need: Spend,
    ) -> futures_util::future::BoxFuture<'a, Result<Reservation, FleetRefusal>>;
}

/// Every budget with what its scope has `spent` today and this month, and when each period
/// resets (the answer of `/admin/api/budgets`).
pub fn report_with(
    budgets: &[(String, Budget)],
    now: i64,
    spent: impl Fn(Period, &str) -> Spend,
) -> Vec<serde_json::Value> {
    budgets
        .iter()
        .map(|(scope, b)| {
            let (d, m) = (spent(Period::Daily, scope), spent(Period::Monthly, scope));
            serde_json::json!({
                "scope": b.scope,
                "daily": {"usd": d.usd, "tokens": d.tokens, "limit_usd": b.daily_usd, "limit_tokens": b.daily_tokens, "resets_in_secs": seconds_to_reset(now, Period::Daily)},
                "monthly": {"usd": m.usd, "tokens": m.tokens, "limit_usd": b.monthly_usd, "limit_tokens": b.monthly_tokens, "resets_in_secs": seconds_to_reset(now, Period::Monthly)},
            })
        })
        .collect()
}

/// The first limit of `budgets` covering `scopes` that `need` would break, given what each
/// `(period index, scope)` has used (spent and held).
pub fn first_exceeded_by(
    budgets: &[(String, Budget)],
    scopes: &[String],
    need: Spend,
    now: i64,
    used: impl Fn(Period, &str) -> Spend,
) -> Option<Exceeded> {
    for (scope, b) in budgets.iter().filter(|(s, _)| scopes.contains(s)) {
        for (period, unit, limit) in limits(b) {
            let used = used(period, scope).amount(unit);
            let needed = need.amount(unit);
            // Strictly above: a request that lands exactly on the limit is allowed.
            if used + needed > limit + 1e-12 {
                return Some(Exceeded {
                    scope: b.scope.to_string(),
                    period,
                    unit,
                    limit,
                    used,
                    needed,
                    resets_in_secs: seconds_to_reset(now, period),
                });
            }
        }
    }
    None
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

/// Spending per scope and the budgets over it. In-process: [`Ledger`].
///
/// A shared implementation must make [`BudgetLedger::reserve`] atomic across replicas (the
/// check and the hold in one step: a Lua script, `SELECT … FOR UPDATE` or an advisory lock),
/// so two replicas cannot both take the last dollar and a budget is overspent by at most one
/// request's estimate; [`BudgetLedger::check`] (planning, explain) may read a view a second
/// stale, since `reserve` decides. Settled spend must be durable (it is also in each record).
/// When the engine is unreachable, `reserve` fails closed (refuses) or open as the config says,
/// default closed.
pub trait BudgetLedger: Send + Sync {
    /// Applies the config's budgets (on start and every reload).
    fn set_budgets(&self, budgets: &[Budget]);
    fn has_budgets(&self) -> bool;
    /// Adds a finished request's spend to its scopes (and announces crossed thresholds).
    fn settle(&self, r: &RequestRecord);
    /// Whether a request in `scopes` with estimated `need` fits every budget that covers it.
    fn check(&self, scopes: &[String], need: Spend) -> Result<(), Exceeded>;
    /// [`BudgetLedger::check`] and, in the same step, holds `need` against the scopes until
    /// the reservation drops: two requests checked at once cannot both take the last room.
    fn reserve(&self, scopes: &[String], need: Spend) -> Result<Reservation, Exceeded>;
    /// Everything held by requests in flight (zero when none runs).
    fn held(&self) -> Spend;
    /// Every budget with what its scope has used today and this month.
    fn report(&self) -> Vec<serde_json::Value>;
    /// `fluxgate_budget_used_ratio` for `/metrics`.
    fn render_metrics(&self) -> String;
    /// The budgets, each with its scope key.
    fn budget_list(&self) -> Arc<Vec<(String, Budget)>>;
}

impl BudgetLedger for Ledger {
    /// Applies the config's budgets (on start and every reload).
    fn set_budgets(&self, budgets: &[Budget]) {
        let list = budgets.iter().map(|b| (b.scope.key(), b.clone())).collect();
        *self.budgets.write() = Arc::new(list);
    }

    fn has_budgets(&self) -> bool {
        !self.budgets.read().is_empty()
    }

    fn budget_list(&self) -> Arc<Vec<(String, Budget)>> {
        self.budgets.read().clone()
    }

    /// Adds a finished request's spend to its scopes and announces crossed thresholds.
    fn settle(&self, r: &RequestRecord) {
        let Spend { usd, tokens } = r.spend();
        if tokens == 0 && usd == 0.0 {
            return;
        }
        {
            let scopes = record_scopes(r);
            let mut inner = self.inner.lock();
            for period in periods(r.ts_ms) {
                let by_scope = inner.spent.entry(period).or_default();
                for scope in &scopes {
                    let e = match by_scope.get_mut(scope.as_str()) {
                        Some(e) => e,
                        None => by_scope.entry(scope.clone()).or_default(),
                    };
                    e.usd += usd;
                    e.tokens += tokens;
                }
            }
        }
        if self.has_budgets() {
            self.announce(r.ts_ms, false);
        }
    }

    /// Whether a request in `scopes` with estimated `need` fits every budget that covers it.
    fn check(&self, scopes: &[String], need: Spend) -> Result<(), Exceeded> {
        let budgets = self.budgets.read().clone();
        if !budgets.iter().any(|(s, _)| scopes.contains(s)) {
            return Ok(());
        }
        let now = now_ms();
        let periods = self.periods_now(now);
        let mut inner = self.inner.lock();
        match Self::first_exceeded(&mut inner, &budgets, scopes, need, now, &periods) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// [`Ledger::check`] and, in the same step, holds `need` against the scopes until the
    /// reservation drops: two requests checked at once cannot both take the last room.
    fn reserve(&self, scopes: &[String], need: Spend) -> Result<Reservation, Exceeded> {
        let budgets = self.budgets.read().clone();
        let now = now_ms();
        let periods = self.periods_now(now);
        let mut inner = self.inner.lock();
        if let Some(e) = Self::first_exceeded(&mut inner, &budgets, scopes, need, now, &periods) {
            return Err(e);
        }
        let mut entries = Vec::with_capacity(2 * scopes.len());
        for period in &periods {
            for s in scopes {
                let k = (period.clone(), s.clone());
                let r = inner.reserved.entry(k.clone()).or_default();
                r.usd += need.usd;
                r.tokens += need.tokens;
                entries.push(k);
            }
        }
        let inner = self.inner.clone();
        Ok(Reservation::new(move || {
            let mut inner = inner.lock();
            for e in &entries {
                if let Some(r) = inner.reserved.get_mut(e) {
                    r.usd = (r.usd - need.usd).max(0.0);
                    r.tokens = r.tokens.saturating_sub(need.tokens);
                }
            }
        }))
    }

    /// Everything reserved by requests in flight, over every scope and period (zero when no
    /// request is running: a reservation is released on every exit).
    fn held(&self) -> Spend {
        let inner = self.inner.lock();
        inner
            .reserved
            .values()
            .fold(Spend::default(), |a, r| Spend {
                usd: a.usd + r.usd,
                tokens: a.tokens + r.tokens,
            })
    }

    /// Every budget with what its scope has used today and this month.
    fn report(&self) -> Vec<serde_json::Value> {
        let budgets = self.budgets.read().clone();
        let now = now_ms();
        let [day, month] = self.periods_now(now);
        let inner = self.inner.lock();
        report_with(&budgets, now, |period, scope| match period {
            Period::Daily => inner.spent_in(&day, scope),
            Period::Monthly => inner.spent_in(&month, scope),
        })
    }

    /// `fluxgate_budget_used_ratio` for `/metrics`: spent over limit per budget, period and
    /// unit.
    fn render_metrics(&self) -> String {
        let budgets = self.budgets.read().clone();
        let periods = self.periods_now(now_ms());
        let inner = self.inner.lock();
        render_used_ratio(&budgets, |period, scope| {
            inner.spent_in(&periods[period as usize], scope)
        })
    }
}

/// `fluxgate_budget_used_ratio`: what each budget's scope has `spent` over its limit, per
/// period and unit (this replica's ledger, or in team mode the fleet's spend).
pub fn render_used_ratio(
    budgets: &[(String, Budget)],
    spent: impl Fn(Period, &str) -> Spend,
) -> String {
    use std::fmt::Write;
    if budgets.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# HELP fluxgate_budget_used_ratio Spent over limit for each budget, period and unit (1 = exhausted).\n# TYPE fluxgate_budget_used_ratio gauge\n",
    );
    for (scope, b) in budgets {
        for (period, unit, limit) in limits(b) {
            let used = spent(period, scope).amount(unit);
            let _ = writeln!(
                out,
                "fluxgate_budget_used_ratio{{scope=\"{}\",period=\"{}\",unit=\"{unit}\"}} {}",
                scope.replace('\\', "\\\\").replace('"', "\\\""),
                period.as_str(),
                used / limit
            );
        }
    }
    out
}

impl Ledger {
    /// An empty ledger (nothing spent yet, no budgets).
    pub fn new(events: EventBus) -> Ledger {
        Ledger {
            inner: Arc::new(Mutex::new(Inner::default())),
            current: Mutex::new((i64::MIN, [String::new(), String::new()])),
            budgets: RwLock::new(Arc::new(Vec::new())),
            events,
        }
    }

    /// Reads this month's and today's totals from the store; thresholds already crossed are
    /// not announced again.
    pub fn load(store: &Store, events: EventBus, budgets: &[Budget]) -> Result<Ledger, StoreError> {
        let ledger = Ledger::new(events);
        let now = now_ms();
        let [day, month] = periods(now);
        let rows = store.spend_in(&[&day, &month])?;
        {
            let mut inner = ledger.inner.lock();
            inner.day = day;
            for (period, scope, s) in rows {
                inner.spent.entry(period).or_default().insert(scope, s);
            }
        }
        ledger.set_budgets(budgets);
        ledger.announce(now, true);
        Ok(ledger)
    }

    /// Publishes a [`Event::BudgetThreshold`] for every limit newly at 80% or 100%.
    fn announce(&self, now: i64, quietly: bool) {
        let budgets = self.budgets.read().clone();
        let periods = self.periods_now(now);
        let mut inner = self.inner.lock();
        for (scope, b) in budgets.iter() {
            for (period, unit, limit) in limits(b) {
                let pkey = &periods[period as usize];
                let used = inner.spent_in(pkey, scope).amount(unit);
                for t in THRESHOLDS {
                    if used < limit * f64::from(t) / 100.0 {
                        continue;
                    }
                    let mark = (pkey.clone(), scope.clone(), unit, t);
                    if inner.announced.insert(mark) && !quietly {
                        tracing::warn!(scope = %b.scope, period = period.as_str(), unit, percent = t, spent = used, limit, "budget threshold crossed");
                        self.events.publish(Event::BudgetThreshold {
                            scope: b.scope.to_string(),
                            period: period.as_str(),
                            unit,
                            percent: t,
                            spent: used,
                            limit,
                        });
                    }
                }
            }
        }
    }

    /// The day and month period keys of `now` (formatted once a day).
    fn periods_now(&self, now: i64) -> [String; 2] {
        let day = now.div_euclid(86_400_000);
        let mut c = self.current.lock();
        if c.0 != day {
            *c = (day, periods(now));
        }
        c.1.clone()
    }

    /// The first limit among `budgets` covering `scopes` that `need` would break, given what
    /// is spent and reserved. Called with the ledger locked, so that a check and the
    /// reservation that follows it are one step.
    fn first_exceeded(
        inner: &mut Inner,
        budgets: &[(String, Budget)],
        scopes: &[String],
        need: Spend,
        now: i64,
        periods: &[String; 2],
    ) -> Option<Exceeded> {
        if inner.day != periods[0] {
            // A new day: drop the totals of past periods.
            inner.spent.retain(|p, _| periods.contains(p));
            inner.announced.retain(|(p, ..)| periods.contains(p));
            inner.day = periods[0].clone();
        }
        first_exceeded_by(budgets, scopes, need, now, |period, scope| {
            let pkey = &periods[period as usize];
            let (s, r) = (inner.spent_in(pkey, scope), inner.reserved_in(pkey, scope));
            Spend {
                usd: s.usd + r.usd,
                tokens: s.tokens + r.tokens,
            }
        })
    }
}

/// Every limit a budget sets, as (period, unit, limit).
fn limits(b: &Budget) -> impl Iterator<Item = (Period, &'static str, f64)> {
    [
        (Period::Daily, "usd", b.daily_usd),
        (Period::Daily, "tokens", b.daily_tokens.map(|t| t as f64)),
        (Period::Monthly, "usd", b.monthly_usd),
        (
            Period::Monthly,
            "tokens",
            b.monthly_tokens.map(|t| t as f64),
        ),
    ]
    .into_iter()
    .filter_map(|(p, u, l)| Some((p, u, l?)))
}

impl Spend {
    /// The amount in `unit` (`usd` or `tokens`).
    fn amount(&self, unit: &str) -> f64 {
        if unit == "usd" {
            self.usd
        } else {
            self.tokens as f64
        }
    }
}

impl Inner {
    fn spent_in(&self, period: &str, scope: &str) -> Spend {
        self.spent
            .get(period)
            .and_then(|m| m.get(scope))
            .copied()
            .unwrap_or_default()
    }

    fn reserved_in(&self, period: &str, scope: &str) -> Spend {
        lookup(&self.reserved, period, scope)
    }
}

fn lookup(map: &HashMap<(String, String), Spend>, period: &str, scope: &str) -> Spend {
    map.get(&(period.to_string(), scope.to_string()))
        .copied()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_periods_and_resets() {
        // 2026-11-22T09:00:00Z
        let t = 1_795_338_000_000;
        assert_eq!(
            periods(t),
            ["d2026-11-22".to_string(), "m2026-11".to_string()]
        );
        assert_eq!(seconds_to_reset(t, Period::Daily), 15 * 3600);
        assert_eq!(seconds_to_reset(t, Period::Monthly), (8 * 24 + 15) * 3600);
        // Leap day and year ends.
        assert_eq!(civil_from_days(days_from_civil(2028, 2, 29)), (2028, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(2026, 12, 31) + 1),
            (2027, 1, 1)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    fn record(cost: f64, tokens: u64) -> RequestRecord {
        RequestRecord {
            ts_ms: now_ms(),
            provider: Some("openai".into()),
            key_id: Some("a".into()),
            route: Some("coding".into()),
            client: Some("ci".into()),
            tokens_in: Some(tokens),
            tokens_out: Some(0),
            cost_usd: Some(cost),
            ..RequestRecord::default()
        }
    }

    #[test]
    fn reservations_count_until_dropped_and_spend_settles_from_records() {
        let events = EventBus::new();
        let mut rx = events.subscribe();
        let ledger = Arc::new(Ledger::new(events));
        ledger.set_budgets(&[Budget {
            scope: BudgetScope::Provider("openai".into()),
            daily_usd: Some(1.0),
            monthly_usd: None,
            daily_tokens: None,
            monthly_tokens: None,
        }]);
        let scopes = scopes(Some("openai"), Some("a"), Some("coding"), None);
        let need = Spend {
            usd: 0.4,
            tokens: 10,
        };
        let r1 = ledger.reserve(&scopes, need).expect("a value");
        let r2 = ledger.reserve(&scopes, need).expect("a value");
        let e = ledger.reserve(&scopes, need).err().expect("0.4 x 3 > 1");
        assert_eq!((e.unit, e.period), ("usd", Period::Daily));
        assert!((e.used - 0.8).abs() < 1e-9);
        // Another provider's request is not covered by this budget.
        let other = super::scopes(Some("anthropic"), Some("b"), Some("coding"), None);
        ledger.reserve(&other, need).expect("a value");
        drop(r1);
        // The first request really cost 0.5: settled from its record.
        ledger.settle(&record(0.5, 100));
        drop(r2);
        ledger.settle(&record(0.35, 100));
        // 0.85 spent: 80% crossed, once.
        match rx.try_recv() {
            Ok(Event::BudgetThreshold {
                percent, period, ..
            }) => {
                assert_eq!((percent, period), (80, "daily"))
            }
            other => panic!("expected a budget event, got {other:?}"),
        }
        assert!(rx.try_recv().is_err());
        assert!(ledger
            .check(
                &scopes,
                Spend {
                    usd: 0.1,
                    tokens: 0
                }
            )
            .is_ok());
        assert!(ledger
            .check(
                &scopes,
                Spend {
                    usd: 0.2,
                    tokens: 0
                }
            )
            .is_err());
        ledger.settle(&record(0.2, 1));
        assert!(matches!(
            rx.try_recv(),
            Ok(Event::BudgetThreshold { percent: 100, .. })
        ));
    }

    #[test]
    fn concurrent_reservations_never_take_more_than_the_limit() {
        let ledger = Arc::new(Ledger::new(EventBus::new()));
        ledger.set_budgets(&[Budget {
            scope: BudgetScope::All,
            daily_usd: Some(1.0),
            monthly_usd: None,
            daily_tokens: None,
            monthly_tokens: None,
        }]);
        let need = Spend {
            usd: 0.1,
            tokens: 0,
        };
        let held: Vec<Reservation> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..16)
                .map(|_| {
                    let ledger = ledger.clone();
                    s.spawn(move || {
                        (0..20)
                            .filter_map(|_| ledger.reserve(&["all".to_string()], need).ok())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        });
        assert_eq!(held.len(), 10, "exactly $1 / $0.1 reservations fit");
    }
}
