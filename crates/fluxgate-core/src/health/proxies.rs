//! Outbound proxies' health, apart from the keys behind them: whether each proxy's last use
//! went through, what it did wrong, and a short rest after a failure during which requests
//! that have a key elsewhere do not try it (a proxy that swallows connections would otherwise
//! cost every request a connect timeout). Time is passed in; the registry publishes changes.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use super::Failure;

/// An outbound proxy's health as its last use found it.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProxyHealth {
    /// Its label: the `[proxies]` name, or its address.
    pub proxy: String,
    /// Whether its last use went through.
    pub ok: bool,
    /// What it did wrong last, while it fails.
    pub error: Option<String>,
    /// Unix milliseconds since when it has been failing.
    #[cfg_attr(test, ts(type = "number | null"))]
    pub failing_since_ms: Option<i64>,
    /// Failures in a row.
    pub failures: u32,
}

/// The first rest after a failure; each failure in a row doubles it, up to [`REST_CAP`].
pub const REST_BASE: Duration = Duration::from_secs(2);
pub const REST_CAP: Duration = Duration::from_secs(60);

struct Entry {
    shown: ProxyHealth,
    rest_until: Option<Instant>,
}

/// Every proxy used so far, by label.
#[derive(Default)]
pub struct ProxyBook {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ProxyBook {
    /// Records how a use went (`None`: it went through) at `now` (`now_ms` on the wall
    /// clock). Returns the proxy's health when it changed between working and failing.
    pub fn report(
        &self,
        proxy: &str,
        failure: Option<&Failure>,
        now: Instant,
        now_ms: i64,
    ) -> Option<ProxyHealth> {
        let mut all = self.entries.lock();
        if failure.is_none() && all.get(proxy).is_none_or(|e| e.shown.ok) {
            return None;
        }
        let entry = all.entry(proxy.to_string()).or_insert_with(|| Entry {
            shown: ProxyHealth {
                proxy: proxy.to_string(),
                ok: true,
                error: None,
                failing_since_ms: None,
                failures: 0,
            },
            rest_until: None,
        });
        let was_ok = entry.shown.ok;
        let shown = &mut entry.shown;
        match failure {
            None => {
                shown.ok = true;
                shown.error = None;
                shown.failing_since_ms = None;
                shown.failures = 0;
                entry.rest_until = None;
            }
            Some(f) => {
                shown.ok = false;
                shown.error = Some(f.message.clone());
                if was_ok {
                    shown.failing_since_ms = Some(now_ms);
                }
                let rest = REST_BASE
                    .saturating_mul(1 << shown.failures.min(10))
                    .min(REST_CAP);
                shown.failures = shown.failures.saturating_add(1);
                entry.rest_until = Some(now + rest);
            }
        }
        (was_ok != entry.shown.ok).then(|| entry.shown.clone())
    }

    /// How long the proxy still rests after a failure, if it does.
    pub fn resting(&self, proxy: &str, now: Instant) -> Option<Duration> {
        let all = self.entries.lock();
        let until = all.get(proxy)?.rest_until?;
        (until > now).then(|| until - now)
    }

    /// What the proxy did wrong, while it fails.
    pub fn error(&self, proxy: &str) -> Option<String> {
        self.entries.lock().get(proxy)?.shown.error.clone()
    }

    /// Every proxy used so far, by label.
    pub fn list(&self) -> Vec<ProxyHealth> {
        let mut out: Vec<ProxyHealth> = self
            .entries
            .lock()
            .values()
            .map(|e| e.shown.clone())
            .collect();
        out.sort_by(|a, b| a.proxy.cmp(&b.proxy));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::FailureKind;

    fn down() -> Failure {
        Failure::transport(FailureKind::Proxy, "proxy corp: cannot connect")
    }

    #[test]
    fn failures_rest_the_proxy_longer_each_time_and_a_success_ends_it() {
        let book = ProxyBook::default();
        let t = Instant::now();
        assert_eq!(
            book.report("corp", None, t, 0),
            None,
            "unknown and fine: nothing"
        );
        assert!(book.list().is_empty());
        let flipped = book
            .report("corp", Some(&down()), t, 1_000)
            .expect("a change");
        assert!(!flipped.ok && flipped.failing_since_ms == Some(1_000));
        assert_eq!(book.resting("corp", t), Some(REST_BASE));
        let mut rests = vec![REST_BASE.as_secs()];
        for i in 1..8u64 {
            let at = t + Duration::from_secs(100 * i);
            assert_eq!(
                book.report("corp", Some(&down()), at, 2_000),
                None,
                "still failing"
            );
            rests.push(book.resting("corp", at).expect("resting").as_secs());
        }
        assert_eq!(rests, [2, 4, 8, 16, 32, 60, 60, 60]);
        let shown = &book.list()[0];
        assert_eq!((shown.failures, shown.failing_since_ms), (8, Some(1_000)));
        assert_eq!(
            book.error("corp").as_deref(),
            Some("proxy corp: cannot connect")
        );
        let back = t + Duration::from_secs(1_000);
        let flipped = book.report("corp", None, back, 3_000).expect("back");
        assert!(flipped.ok && flipped.error.is_none() && flipped.failures == 0);
        assert_eq!(book.resting("corp", back), None);
        assert_eq!(book.error("corp"), None);
        // A rest runs out on its own.
        book.report("corp", Some(&down()), back, 4_000);
        assert_eq!(book.resting("corp", back + REST_BASE), None);
    }
}
