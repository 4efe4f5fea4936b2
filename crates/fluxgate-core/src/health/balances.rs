//! Keys' remaining credit, where the vendor tells it: the last reading of each key, whether
//! it is below its provider's `low_balance`, and when it may be asked again. Pure apart from a
//! lock; time is passed in. The registry publishes the crossings.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use crate::vocab::BalanceSource;

/// What a vendor's balance answer said.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceReading {
    /// Credit left; `None` for a key with no limit of its own (OpenRouter's unlimited keys).
    pub remaining: Option<f64>,
    /// `USD`, `CNY`, ...
    pub currency: String,
    /// The key's credit limit, where the vendor has one per key.
    pub limit: Option<f64>,
    /// Spent so far, where the vendor says.
    pub usage: Option<f64>,
    /// DeepSeek's `is_available`: whether the account can still make calls.
    pub available: Option<bool>,
}

/// A key's balance as the API, the console, the tray and `/metrics` show it.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyBalance {
    pub source: BalanceSource,
    /// Credit left (`None`: not read yet, or a key without a limit).
    pub remaining: Option<f64>,
    pub currency: Option<String>,
    pub limit: Option<f64>,
    pub usage: Option<f64>,
    /// Unix milliseconds of the last successful reading.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub checked_ms: Option<i64>,
    /// Why the last check failed, when it did (the last good reading is kept).
    pub error: Option<String>,
    /// The provider's `low_balance`, when set.
    pub threshold: Option<f64>,
    /// Below the threshold (or the vendor says the account cannot make calls).
    pub low: bool,
    /// Low, and the provider's `low_balance_action` takes such keys out of rotation.
    pub out_of_rotation: bool,
}

/// What a key's balance is checked against (its provider's settings).
pub use crate::config::BalanceConfig as BalancePolicy;

/// The least time between two checks of one key asked for by people (`Check` in the
/// console, the API): vendors rate-limit these endpoints like any other.
pub const MIN_ON_DEMAND_GAP: Duration = Duration::from_secs(30);

struct Entry {
    shown: KeyBalance,
    policy: BalancePolicy,
    /// When it was last asked (successfully or not).
    asked: Option<Instant>,
}

/// A key's balance crossed its threshold.
#[derive(Debug, Clone, PartialEq)]
pub enum Crossing {
    Low(KeyBalance),
    Recovered(KeyBalance),
}

/// Every key with a balance source, by account.
#[derive(Default)]
pub struct BalanceBook {
    entries: Mutex<HashMap<String, Entry>>,
    /// Whether any key is out of rotation for its balance: routing asks about every
    /// candidate of every request, and almost always the answer is no, without the lock.
    any_out: std::sync::atomic::AtomicBool,
}

impl BalanceBook {
    /// Keeps exactly `keys` (account, policy), with the readings of those already known.
    pub fn sync(&self, keys: impl IntoIterator<Item = (String, BalancePolicy)>) {
        let mut all = self.entries.lock();
        let mut next = HashMap::new();
        for (account, policy) in keys {
            let mut entry = all.remove(&account).unwrap_or(Entry {
                shown: KeyBalance {
                    source: policy.source,
                    remaining: None,
                    currency: None,
                    limit: None,
                    usage: None,
                    checked_ms: None,
                    error: None,
                    threshold: None,
                    low: false,
                    out_of_rotation: false,
                },
                policy,
                asked: None,
            });
            if entry.policy.source != policy.source {
                entry.shown.remaining = None;
                entry.shown.checked_ms = None;
                entry.asked = None;
            }
            entry.shown.source = policy.source;
            entry.policy = policy;
            entry.shown.threshold = policy.threshold;
            let low = is_low(&entry.shown, None, policy.threshold);
            entry.shown.low = low;
            entry.shown.out_of_rotation = low && policy.rotate_out;
            next.insert(account, entry);
        }
        *all = next;
        self.note_any_out(&all);
    }

    fn note_any_out(&self, all: &HashMap<String, Entry>) {
        let any = all.values().any(|e| e.shown.out_of_rotation);
        self.any_out
            .store(any, std::sync::atomic::Ordering::Relaxed);
    }

    /// The keys whose scheduled check is due at `now`, with their source.
    pub fn due(&self, now: Instant) -> Vec<(String, BalanceSource)> {
        self.entries
            .lock()
            .iter()
            .filter(|(_, e)| e.asked.is_none_or(|a| now >= a + e.policy.interval))
            .map(|(a, e)| (a.clone(), e.policy.source))
            .collect()
    }

    /// Marks a check of `account` as started at `now`; `false` (nothing marked) when the key
    /// has no source or was asked less than `gap` ago.
    pub fn begin(&self, account: &str, now: Instant, gap: Duration) -> bool {
        let mut all = self.entries.lock();
        let Some(e) = all.get_mut(account) else {
            return false;
        };
        if e.asked.is_some_and(|a| now < a + gap) {
            return false;
        }
        e.asked = Some(now);
        true
    }

    /// Records a check's result; returns a crossing of the threshold, if any.
    pub fn record(
        &self,
        account: &str,
        result: Result<BalanceReading, String>,
        now_ms: i64,
    ) -> Option<Crossing> {
        let mut all = self.entries.lock();
        let e = all.get_mut(account)?;
        let was_low = e.shown.low;
        match result {
            Err(why) => e.shown.error = Some(why),
            Ok(r) => {
                e.shown.error = None;
                e.shown.checked_ms = Some(now_ms);
                e.shown.remaining = r.remaining;
                e.shown.currency = Some(r.currency.clone());
                e.shown.limit = r.limit;
                e.shown.usage = r.usage;
                e.shown.low = is_low(&e.shown, r.available, e.policy.threshold);
                e.shown.out_of_rotation = e.shown.low && e.policy.rotate_out;
            }
        }
        let crossing = match (was_low, e.shown.low) {
            (false, true) => Some(Crossing::Low(e.shown.clone())),
            (true, false) => Some(Crossing::Recovered(e.shown.clone())),
            _ => None,
        };
        self.note_any_out(&all);
        crossing
    }

    pub fn get(&self, account: &str) -> Option<KeyBalance> {
        self.entries.lock().get(account).map(|e| e.shown.clone())
    }

    /// The key's balance when it keeps the key out of rotation.
    pub fn out_of_rotation(&self, account: &str) -> Option<KeyBalance> {
        if !self.any_out.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        let all = self.entries.lock();
        let e = all.get(account)?;
        e.shown.out_of_rotation.then(|| e.shown.clone())
    }
}

/// Below the threshold, or the vendor says no more calls can be made.
fn is_low(shown: &KeyBalance, available: Option<bool>, threshold: Option<f64>) -> bool {
    if available == Some(false) {
        return true;
    }
    matches!((shown.remaining, threshold), (Some(r), Some(t)) if r < t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(threshold: Option<f64>, rotate_out: bool) -> BalancePolicy {
        BalancePolicy {
            source: BalanceSource::DeepSeek,
            threshold,
            rotate_out,
            interval: Duration::from_secs(600),
        }
    }

    fn reading(remaining: f64) -> BalanceReading {
        BalanceReading {
            remaining: Some(remaining),
            currency: "CNY".into(),
            limit: None,
            usage: None,
            available: Some(true),
        }
    }

    #[test]
    fn a_key_crosses_its_threshold_once_each_way() {
        let book = BalanceBook::default();
        book.sync([("ds/a".to_string(), policy(Some(5.0), true))]);
        assert_eq!(book.record("ds/a", Ok(reading(9.0)), 1), None);
        let Some(Crossing::Low(b)) = book.record("ds/a", Ok(reading(4.0)), 2) else {
            panic!("went low")
        };
        assert!(b.low && b.out_of_rotation && b.remaining == Some(4.0));
        assert_eq!(book.record("ds/a", Ok(reading(3.0)), 3), None, "told once");
        assert!(book.out_of_rotation("ds/a").is_some());
        // A failed check keeps the last reading and says why.
        assert_eq!(book.record("ds/a", Err("timed out".into()), 4), None);
        let b = book.get("ds/a").expect("known");
        assert_eq!(
            (b.remaining, b.error.as_deref(), b.checked_ms),
            (Some(3.0), Some("timed out"), Some(3))
        );
        assert!(matches!(
            book.record("ds/a", Ok(reading(50.0)), 5),
            Some(Crossing::Recovered(_))
        ));
        assert!(book.out_of_rotation("ds/a").is_none());
        // The vendor saying the account cannot call is low whatever the threshold.
        let mut r = reading(50.0);
        r.available = Some(false);
        assert!(matches!(
            book.record("ds/a", Ok(r), 6),
            Some(Crossing::Low(_))
        ));
    }

    #[test]
    fn notify_only_keeps_the_key_and_no_threshold_is_never_low() {
        let book = BalanceBook::default();
        book.sync([
            ("ds/n".to_string(), policy(Some(5.0), false)),
            ("ds/x".to_string(), policy(None, true)),
        ]);
        assert!(matches!(
            book.record("ds/n", Ok(reading(1.0)), 1),
            Some(Crossing::Low(_))
        ));
        assert!(book.out_of_rotation("ds/n").is_none());
        assert_eq!(book.record("ds/x", Ok(reading(0.0)), 1), None);
        // A threshold raised above the balance by a reload applies at once.
        book.sync([("ds/x".to_string(), policy(Some(1.0), true))]);
        assert!(book.out_of_rotation("ds/x").is_some());
        assert!(book.get("ds/n").is_none(), "dropped from the config");
    }

    #[test]
    fn checks_are_spaced_by_the_interval_and_the_on_demand_gap() {
        let book = BalanceBook::default();
        book.sync([("ds/a".to_string(), policy(None, false))]);
        let t = Instant::now();
        assert_eq!(book.due(t).len(), 1, "never asked: due");
        assert!(book.begin("ds/a", t, Duration::ZERO));
        assert!(book.due(t + Duration::from_secs(599)).is_empty());
        assert_eq!(book.due(t + Duration::from_secs(600)).len(), 1);
        assert!(!book.begin("ds/a", t + Duration::from_secs(10), MIN_ON_DEMAND_GAP));
        assert!(book.begin("ds/a", t + MIN_ON_DEMAND_GAP, MIN_ON_DEMAND_GAP));
        assert!(!book.begin("nope/k", t, Duration::ZERO));
    }
}
