//! What the load-aware strategies learn from traffic, per key: time to first token (a peak
//! EWMA), the upstream's own rate-limit counters from its response headers, and local
//! request/token windows for the `rpm` / `tpm` / `rpd` limits configured on a key.
//!
//! Every method takes `now`, so the simulation tests drive them with a virtual clock. The
//! state outlives config reloads (it is keyed by account, `provider/key_id`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

use crate::config::KeyLimits;
use crate::health::hints::{parse_go_duration, parse_rfc3339};

/// The time constant of the latency average, and of its decay while a key is not used: an
/// estimate left alone for `TAU` falls to 37% of itself, so a key that was slow once is
/// probed again after a while instead of being shunned for ever.
pub const TAU: Duration = Duration::from_secs(10);

/// A peak-sensitive moving average of time to first token: a slower sample takes over at
/// once; faster samples pull it down gradually (weight by time since the last sample).
#[derive(Debug, Clone, Copy)]
struct PeakEwma {
    ms: f64,
    at: Instant,
}

impl PeakEwma {
    fn decayed(&self, now: Instant) -> f64 {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.ms * (-dt / TAU.as_secs_f64()).exp()
    }

    fn observe(&mut self, sample_ms: f64, now: Instant) {
        let cur = self.decayed(now);
        if sample_ms >= cur {
            self.ms = sample_ms;
        } else {
            let dt = now.saturating_duration_since(self.at).as_secs_f64();
            let w = (-dt / TAU.as_secs_f64()).exp();
            self.ms = cur * w + sample_ms * (1.0 - w);
        }
        self.at = now;
    }
}

/// The upstream's view of one limit (requests or tokens), from its headers.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct UpstreamQuota {
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    #[serde(skip)]
    resets: Option<Instant>,
}

impl UpstreamQuota {
    /// The fraction left, while the window it was read in lasts.
    fn fraction(&self, now: Instant) -> Option<f64> {
        if self.resets.is_some_and(|r| now >= r) {
            return None;
        }
        let (l, r) = (self.limit?, self.remaining?);
        (l > 0).then(|| (r as f64 / l as f64).clamp(0.0, 1.0))
    }
}

/// A sliding window of amounts (requests: 1 each; tokens: the estimate, then a correction).
#[derive(Debug, Default)]
struct Window {
    entries: VecDeque<(Instant, i64)>,
    sum: i64,
}

impl Window {
    fn expire(&mut self, span: Duration, now: Instant) {
        while let Some((t, n)) = self.entries.front() {
            if now.saturating_duration_since(*t) < span {
                break;
            }
            self.sum -= n;
            self.entries.pop_front();
        }
    }

    fn add(&mut self, n: i64, now: Instant) {
        self.entries.push_back((now, n));
        self.sum += n;
    }

    /// When enough of the window has expired for `need` more to fit under `limit`.
    fn room_at(&self, span: Duration, limit: i64, need: i64) -> Instant {
        let mut sum = self.sum;
        for (t, n) in &self.entries {
            sum -= n;
            if sum + need <= limit {
                return *t + span;
            }
        }
        self.entries
            .back()
            .map_or(Instant::now(), |(t, _)| *t + span)
    }
}

/// The rate-limit headers of one kind of limit (requests or tokens), in both vendors' names;
/// made once, so reading an answer's headers neither formats nor parses a name.
struct HeaderNames {
    openai_remaining: HeaderName,
    openai_reset: HeaderName,
    openai_limit: HeaderName,
    anthropic_remaining: HeaderName,
    anthropic_reset: HeaderName,
    anthropic_limit: HeaderName,
}

const REQUEST_HEADERS: HeaderNames = HeaderNames {
    openai_remaining: HeaderName::from_static("x-ratelimit-remaining-requests"),
    openai_reset: HeaderName::from_static("x-ratelimit-reset-requests"),
    openai_limit: HeaderName::from_static("x-ratelimit-limit-requests"),
    anthropic_remaining: HeaderName::from_static("anthropic-ratelimit-requests-remaining"),
    anthropic_reset: HeaderName::from_static("anthropic-ratelimit-requests-reset"),
    anthropic_limit: HeaderName::from_static("anthropic-ratelimit-requests-limit"),
};

const TOKEN_HEADERS: HeaderNames = HeaderNames {
    openai_remaining: HeaderName::from_static("x-ratelimit-remaining-tokens"),
    openai_reset: HeaderName::from_static("x-ratelimit-reset-tokens"),
    openai_limit: HeaderName::from_static("x-ratelimit-limit-tokens"),
    anthropic_remaining: HeaderName::from_static("anthropic-ratelimit-tokens-remaining"),
    anthropic_reset: HeaderName::from_static("anthropic-ratelimit-tokens-reset"),
    anthropic_limit: HeaderName::from_static("anthropic-ratelimit-tokens-limit"),
};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, Default)]
struct KeySignals {
    /// Per model served with this key.
    latency: HashMap<String, PeakEwma>,
    requests: UpstreamQuota,
    tokens: UpstreamQuota,
    minute_requests: Window,
    minute_tokens: Window,
    day_requests: Window,
}

/// A local limit a request would break.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitHit {
    /// `rpm`, `tpm` or `rpd`.
    pub limit: &'static str,
    pub value: u64,
    /// When the request would fit again.
    #[serde(skip)]
    pub fits_at: Instant,
}

/// What load-aware strategies learn from traffic per key: time to first token per model and
/// the upstream's own rate-limit counters. In-process: [`Signals`].
///
/// A shared implementation may be stale by seconds (these only order candidates; a wrong
/// order costs latency, never correctness), need not be atomic, and when unreachable should
/// answer from the replica's own observations rather than fail.
pub trait LoadSignals: Send + Sync {
    /// Records one attempt's time to first token (a failed attempt records how long it took
    /// to fail, so a key that times out looks slow).
    fn observe_latency(&self, account: &str, model: &str, ttft: Duration, now: Instant);
    /// The key's current latency estimate for a model in milliseconds (`None`: never seen).
    fn latency_ms(&self, account: &str, model: &str, now: Instant) -> Option<f64>;
    /// Reads the upstream's rate-limit headers of one answer.
    fn observe_headers(&self, account: &str, headers: &HeaderMap, now: Instant);
    /// The smallest fraction left of any limit known for the key (upstream headers and local
    /// limits); `None` when nothing is known.
    fn quota_left(&self, account: &str, limits: &KeyLimits, now: Instant) -> Option<f64>;
}

/// The local `rpm` / `tpm` / `rpd` windows per key. In-process: [`Signals`].
///
/// A shared implementation must make [`RateWindows::acquire`] atomic across replicas (check and
/// take in one step, as a Lua script or a row lock would), so the fleet admits exactly the
/// limit; [`RateWindows::check`] (planning) may read a view stale by up to a second, since
/// `acquire` decides. When the shared engine is unreachable it falls back to per-replica
/// windows (admitting up to the limit per replica) and says so, rather than refusing traffic.
pub trait RateWindows: Send + Sync {
    /// Whether a request of `tokens` fits the key's local limits now, without taking it.
    fn check(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit>;
    /// Takes room for one request of `tokens` (estimated) under the key's local limits. Async,
    /// because a shared implementation asks its engine; only called for keys with limits.
    fn acquire<'a>(
        &'a self,
        account: &'a str,
        limits: &'a KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> BoxFuture<'a, Result<(), LimitHit>>;
    /// Corrects the token window once the real usage is known.
    fn settle_tokens(&self, account: &str, estimated: u64, actual: u64, now: Instant);
}

/// The signals and windows of every key, in this process.
#[derive(Default)]
pub struct Signals {
    keys: Mutex<HashMap<String, KeySignals>>,
}

impl LoadSignals for Signals {
    /// Records one attempt's time to first token (a failed attempt records how long it took
    /// to fail, so a key that times out looks slow).
    fn observe_latency(&self, account: &str, model: &str, ttft: Duration, now: Instant) {
        let ms = ttft.as_secs_f64() * 1000.0;
        let mut keys = self.keys.lock();
        let k = keys.entry(account.to_string()).or_default();
        match k.latency.get_mut(model) {
            Some(e) => e.observe(ms, now),
            None => {
                k.latency
                    .insert(model.to_string(), PeakEwma { ms, at: now });
            }
        }
    }

    /// The key's current latency estimate for a model in milliseconds (`None`: never seen).
    fn latency_ms(&self, account: &str, model: &str, now: Instant) -> Option<f64> {
        let keys = self.keys.lock();
        Some(keys.get(account)?.latency.get(model)?.decayed(now))
    }

    /// Reads the upstream's rate-limit headers (OpenAI `x-ratelimit-{limit,remaining,reset}-
    /// {requests,tokens}`, Anthropic `anthropic-ratelimit-{requests,tokens}-{limit,remaining,
    /// reset}`).
    fn observe_headers(&self, account: &str, headers: &HeaderMap, now: Instant) {
        let num = |name: &HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let read = |names: &HeaderNames| -> Option<UpstreamQuota> {
            let (limit, remaining, resets) = if let Some(r) = num(&names.openai_remaining) {
                let reset = text(&names.openai_reset)
                    .and_then(parse_go_duration)
                    .map(|d| now + d);
                (num(&names.openai_limit), r, reset)
            } else {
                let r = num(&names.anthropic_remaining)?;
                let reset = text(&names.anthropic_reset)
                    .and_then(parse_rfc3339)
                    .and_then(|at| at.duration_since(crate::clock::wall()).ok())
                    .map(|d| now + d);
                (num(&names.anthropic_limit), r, reset)
            };
            Some(UpstreamQuota {
                limit,
                remaining: Some(remaining),
                resets,
            })
        };
        let requests = read(&REQUEST_HEADERS);
        let tokens = read(&TOKEN_HEADERS);
        if requests.is_none() && tokens.is_none() {
            return;
        }
        let mut keys = self.keys.lock();
        let k = keys.entry(account.to_string()).or_default();
        if let Some(q) = requests {
            k.requests = q;
        }
        if let Some(q) = tokens {
            k.tokens = q;
        }
    }

    /// The smallest fraction left of any limit known for the key (upstream headers and local
    /// limits); `None` when nothing is known.
    fn quota_left(&self, account: &str, limits: &KeyLimits, now: Instant) -> Option<f64> {
        let mut keys = self.keys.lock();
        let k = keys.get_mut(account)?;
        let mut left: Option<f64> = None;
        let mut take = |f: Option<f64>| {
            if let Some(f) = f {
                left = Some(left.map_or(f, |l| l.min(f)));
            }
        };
        take(k.requests.fraction(now));
        take(k.tokens.fraction(now));
        k.minute_requests.expire(MINUTE, now);
        k.minute_tokens.expire(MINUTE, now);
        k.day_requests.expire(DAY, now);
        let frac = |used: i64, limit: u64| 1.0 - (used.max(0) as f64 / limit as f64).min(1.0);
        take(limits.rpm.map(|l| frac(k.minute_requests.sum, l.into())));
        take(limits.tpm.map(|l| frac(k.minute_tokens.sum, l)));
        take(limits.rpd.map(|l| frac(k.day_requests.sum, l.into())));
        left
    }
}

/// A boxed future borrowing its receiver, for the async methods of object-safe traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl Signals {
    /// [`RateWindows::acquire`] without the future: checks and takes room in one lock.
    pub fn take(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit> {
        self.admit(account, limits, tokens, now, true)
    }

    /// Whether `tokens` more fit the key's local limits; with `take`, takes the room too (in
    /// the same lock, so two requests cannot both take the last room).
    fn admit(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
        take: bool,
    ) -> Result<(), LimitHit> {
        if !limits.any() {
            return Ok(());
        }
        let mut keys = self.keys.lock();
        let k = keys.entry(account.to_string()).or_default();
        Self::fits(k, limits, tokens, now)?;
        if take {
            k.minute_requests.add(1, now);
            k.day_requests.add(1, now);
            k.minute_tokens.add(tokens as i64, now);
        }
        Ok(())
    }

    fn fits(
        k: &mut KeySignals,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit> {
        k.minute_requests.expire(MINUTE, now);
        k.minute_tokens.expire(MINUTE, now);
        k.day_requests.expire(DAY, now);
        if let Some(l) = limits.rpm {
            if k.minute_requests.sum + 1 > i64::from(l) {
                return Err(LimitHit {
                    limit: "rpm",
                    value: l.into(),
                    fits_at: k.minute_requests.room_at(MINUTE, l.into(), 1),
                });
            }
        }
        if let Some(l) = limits.rpd {
            if k.day_requests.sum + 1 > i64::from(l) {
                return Err(LimitHit {
                    limit: "rpd",
                    value: l.into(),
                    fits_at: k.day_requests.room_at(DAY, l.into(), 1),
                });
            }
        }
        if let Some(l) = limits.tpm {
            // A request larger than the whole limit is let through alone, or it could never
            // be sent.
            let need = tokens.min(l) as i64;
            if k.minute_tokens.sum + need > l as i64 {
                return Err(LimitHit {
                    limit: "tpm",
                    value: l,
                    fits_at: k.minute_tokens.room_at(MINUTE, l as i64, need),
                });
            }
        }
        Ok(())
    }
}

impl RateWindows for Signals {
    /// Whether a request of `tokens` fits the key's local limits now, without taking it.
    fn check(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit> {
        self.admit(account, limits, tokens, now, false)
    }

    /// Takes room for one request of `tokens` (estimated) under the key's local limits.
    fn acquire<'a>(
        &'a self,
        account: &'a str,
        limits: &'a KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> BoxFuture<'a, Result<(), LimitHit>> {
        Box::pin(std::future::ready(self.take(account, limits, tokens, now)))
    }

    /// Corrects the token window once the real usage is known.
    fn settle_tokens(&self, account: &str, estimated: u64, actual: u64, now: Instant) {
        let mut keys = self.keys.lock();
        if let Some(k) = keys.get_mut(account) {
            if !k.minute_tokens.entries.is_empty() {
                k.minute_tokens.add(actual as i64 - estimated as i64, now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_sample_takes_over_and_fast_ones_pull_it_down() {
        let s = Signals::default();
        let t0 = Instant::now();
        s.observe_latency("a", "m", Duration::from_millis(100), t0);
        s.observe_latency(
            "a",
            "m",
            Duration::from_millis(900),
            t0 + Duration::from_millis(10),
        );
        let v = s
            .latency_ms("a", "m", t0 + Duration::from_millis(10))
            .expect("a value");
        assert!((v - 900.0).abs() < 1.0, "{v}");
        for i in 1..=100 {
            s.observe_latency(
                "a",
                "m",
                Duration::from_millis(100),
                t0 + Duration::from_millis(10 + i * 200),
            );
        }
        let v = s
            .latency_ms("a", "m", t0 + Duration::from_millis(20_010))
            .expect("a value");
        assert!(v < 150.0, "{v}");
        // Left alone, the estimate decays so the key gets probed again.
        let later = s
            .latency_ms("a", "m", t0 + Duration::from_secs(60))
            .expect("a value");
        assert!(later < v / 10.0, "{later}");
    }

    #[test]
    fn local_limits_refuse_then_let_through_when_the_window_moves() {
        let s = Signals::default();
        let limits = KeyLimits {
            rpm: Some(2),
            tpm: Some(1_000),
            rpd: None,
        };
        let t0 = Instant::now();
        s.take("k", &limits, 100, t0).expect("a value");
        s.take("k", &limits, 100, t0 + Duration::from_secs(1))
            .expect("a value");
        let hit = s
            .take("k", &limits, 100, t0 + Duration::from_secs(2))
            .expect_err("an error");
        assert_eq!(hit.limit, "rpm");
        assert_eq!(hit.fits_at, t0 + Duration::from_secs(60));
        s.take("k", &limits, 100, t0 + Duration::from_secs(60))
            .expect("a value");
        // Tokens: at t0+61 only the request of t0+60 (100 tokens) is in the window.
        s.check("k", &limits, 900, t0 + Duration::from_secs(61))
            .expect("a value");
        let hit = s
            .check("k", &limits, 950, t0 + Duration::from_secs(61))
            .expect_err("an error");
        assert_eq!(hit.limit, "tpm");
        // The quota view reports what is left of the tightest limit: 1 of 2 requests.
        let left = s
            .quota_left("k", &limits, t0 + Duration::from_secs(61))
            .expect("a value");
        assert!((left - 0.5).abs() < 1e-9, "{left}");
    }

    #[test]
    fn upstream_headers_give_the_fraction_left_until_their_reset() {
        let s = Signals::default();
        let t0 = Instant::now();
        let mut h = HeaderMap::new();
        h.insert(
            "x-ratelimit-limit-requests",
            "100".parse().expect("a value"),
        );
        h.insert(
            "x-ratelimit-remaining-requests",
            "25".parse().expect("a value"),
        );
        h.insert(
            "x-ratelimit-reset-requests",
            "30s".parse().expect("a value"),
        );
        s.observe_headers("k", &h, t0);
        let none = KeyLimits::default();
        assert_eq!(s.quota_left("k", &none, t0), Some(0.25));
        assert_eq!(s.quota_left("k", &none, t0 + Duration::from_secs(31)), None);
        let mut a = HeaderMap::new();
        a.insert(
            "anthropic-ratelimit-tokens-limit",
            "80000".parse().expect("a value"),
        );
        a.insert(
            "anthropic-ratelimit-tokens-remaining",
            "60000".parse().expect("a value"),
        );
        s.observe_headers("a", &a, t0);
        assert_eq!(s.quota_left("a", &none, t0), Some(0.75));
    }
}
