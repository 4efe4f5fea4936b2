//! Strategies order a route's usable candidates.
//!
//! A strategy receives the whole candidate list (target × key, already filtered by health,
//! capability, limits and budgets). `priority`, `round-robin`, `weighted` and
//! `least-in-flight` keep the route's targets as a fallback chain and order keys within each
//! target's pool; `least-latency`, `least-cost` and `quota-aware` weigh every candidate
//! against every other, across targets, and note their score on each (for `explain`).

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use tokio::time::Instant;

use super::{Candidate, LoadSignals};
use crate::config::StrategyKind;

/// What a strategy may consult besides the candidates.
pub struct StrategyContext<'a> {
    /// A per-route request counter (round-robin position).
    pub counter: u64,
    /// Attempts currently in flight per key account.
    pub in_flight: &'a dyn Fn(&str) -> u32,
    /// Latency and quota learned from traffic.
    pub signals: &'a dyn LoadSignals,
    pub now: Instant,
}

pub trait Strategy: Send + Sync {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>);
}

/// Applies `f` to each run of candidates that share a target.
fn per_target(candidates: &mut [Candidate], mut f: impl FnMut(&mut [Candidate])) {
    let mut start = 0;
    while start < candidates.len() {
        let t = candidates[start].target_index;
        let end = candidates[start..]
            .iter()
            .position(|c| c.target_index != t)
            .map_or(candidates.len(), |n| start + n);
        f(&mut candidates[start..end]);
        start = end;
    }
}

/// Targets in order, keys in the order the config lists them.
pub struct Priority;

impl Strategy for Priority {
    fn order(&self, candidates: &mut [Candidate], _ctx: &StrategyContext<'_>) {
        candidates.sort_by_key(|c| (c.target_index, c.key_index));
    }
}

/// Each request starts one key further along the pool.
pub struct RoundRobin;

impl Strategy for RoundRobin {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        Priority.order(candidates, ctx);
        per_target(candidates, |group| {
            let n = group.len();
            if n > 1 {
                group.rotate_left((ctx.counter % n as u64) as usize);
            }
        });
    }
}

/// Keys drawn at random in proportion to their weight (without replacement, so the rest of the
/// pool still follows as fallbacks).
pub struct Weighted;

impl Strategy for Weighted {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        Priority.order(candidates, ctx);
        let mut rng = rand::rng();
        per_target(candidates, |group| {
            // Efraimidis–Spirakis: sort by u^(1/w) descending.
            let mut keyed: Vec<(f64, Candidate)> = group
                .iter()
                .map(|c| {
                    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
                    (u.powf(1.0 / c.weight.max(1) as f64), c.clone())
                })
                .collect();
            keyed.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (slot, (_, c)) in group.iter_mut().zip(keyed) {
                *slot = c;
            }
        });
    }
}

/// The key with the fewest attempts in flight first (config order breaks ties).
pub struct LeastInFlight;

impl Strategy for LeastInFlight {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        Priority.order(candidates, ctx);
        per_target(candidates, |group| {
            group.sort_by_key(|c| (ctx.in_flight)(&c.account))
        });
    }
}

/// A 64-bit mix of `x` (SplitMix64's finaliser): the pair least-latency compares is drawn
/// from the route's request counter, so a simulation with the same traffic is repeatable.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Power of two choices over a peak-EWMA of time to first token, weighted by the attempts in
/// flight: two candidates drawn at random, the one with the lower `latency × (in flight + 1)`
/// first, the rest by that score. A key never measured scores 0 and is tried at once; an
/// estimate decays while its key is not used (see [`super::TAU`]), so a key that was slow is
/// probed again and traffic moves back when it recovers.
pub struct LeastLatency;

impl Strategy for LeastLatency {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        Priority.order(candidates, ctx);
        let mut scored: Vec<(f64, Candidate)> = candidates
            .iter()
            .map(|c| {
                let ms = ctx.signals.latency_ms(&c.account, &c.model, ctx.now);
                let load = f64::from((ctx.in_flight)(&c.account)) + 1.0;
                let mut c = c.clone();
                c.note = Some(match ms {
                    Some(ms) => {
                        format!("time to first token ~{ms:.0} ms, {} in flight", load - 1.0)
                    }
                    None => "latency not measured yet (tried to learn it)".into(),
                });
                (ms.unwrap_or(0.0) * load, c)
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = scored.len();
        if n >= 2 {
            let r = mix(ctx.counter);
            let i = (r % n as u64) as usize;
            let j = ((r >> 32) % (n as u64 - 1)) as usize;
            let j = if j >= i { j + 1 } else { j };
            // Sorted by score: the lower index of the pair is the better one.
            let winner = i.min(j);
            let w = scored.remove(winner);
            scored.insert(0, w);
        }
        for (slot, (_, c)) in candidates.iter_mut().zip(scored) {
            *slot = c;
        }
    }
}

/// The lowest estimated cost of this request first (the catalogue's prices × its estimated
/// tokens), models without a known price last; keys of the same model take turns. Without a
/// request (a route's preview), the list prices rank: a nominal request of
/// [`NOMINAL_TOKENS`] in and out.
pub struct LeastCost;

/// The request a preview ranks by when there is none: this many tokens in and this many out.
pub const NOMINAL_TOKENS: u64 = 1000;

/// A model's list prices as words: `$2.50 in / $10.00 out per 1M tokens`.
fn list_prices(c: &Candidate) -> Option<String> {
    let p = c.info.as_ref()?.prices?;
    Some(format!(
        "${:.2} in / ${:.2} out per 1M tokens",
        p.input, p.output
    ))
}

impl Strategy for LeastCost {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        RoundRobin.order(candidates, ctx);
        let cost = |c: &Candidate| {
            c.est_cost
                .or_else(|| {
                    let p = c.info.as_ref()?.prices?;
                    Some(p.cost(NOMINAL_TOKENS, 0, NOMINAL_TOKENS))
                })
                .unwrap_or(f64::INFINITY)
        };
        candidates.sort_by(|a, b| cost(a).total_cmp(&cost(b)));
        for c in candidates.iter_mut() {
            let list = list_prices(c);
            c.note = Some(match (c.est_cost, list) {
                (Some(v), Some(l)) => format!("estimated ${v:.6} for this request ({l})"),
                (Some(v), None) => format!("estimated ${v:.6} for this request"),
                (None, Some(l)) => format!("list price {l}"),
                (None, None) => "price unknown (add it under [models])".into(),
            });
        }
    }
}

/// The most rate-limit headroom first: the smallest fraction left of any limit known for the
/// key, from the upstream's rate-limit headers and the key's own `rpm` / `tpm` / `rpd`; keys
/// with nothing known count as full; ties take turns.
pub struct QuotaAware;

impl Strategy for QuotaAware {
    fn order(&self, candidates: &mut [Candidate], ctx: &StrategyContext<'_>) {
        RoundRobin.order(candidates, ctx);
        let mut scored: Vec<(f64, Candidate)> = candidates
            .iter()
            .map(|c| {
                let left = ctx.signals.quota_left(&c.account, &c.limits, ctx.now);
                let mut c = c.clone();
                c.note = Some(match left {
                    Some(f) => format!("{:.0}% of its tightest rate limit left", f * 100.0),
                    None => "no rate limit known (counted as full)".into(),
                });
                (left.unwrap_or(1.0), c)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (slot, (_, c)) in candidates.iter_mut().zip(scored) {
            *slot = c;
        }
    }
}

pub fn for_kind(kind: StrategyKind) -> &'static dyn Strategy {
    match kind {
        StrategyKind::Priority => &Priority,
        StrategyKind::RoundRobin => &RoundRobin,
        StrategyKind::Weighted => &Weighted,
        StrategyKind::LeastInFlight => &LeastInFlight,
        StrategyKind::LeastLatency => &LeastLatency,
        StrategyKind::LeastCost => &LeastCost,
        StrategyKind::QuotaAware => &QuotaAware,
    }
}

/// A counter per route for round-robin.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Orders each target's keys by a rendezvous (highest-random-weight) score of the conversation
/// key and the key's account: stable for a conversation, spread across conversations, and
/// when a key leaves the pool only its conversations move.
pub fn pin_conversation(candidates: &mut [Candidate], conversation: u64) {
    use std::hash::{Hash, Hasher};
    let score = |c: &Candidate| {
        let mut h = std::hash::DefaultHasher::new();
        (conversation, c.account.as_str()).hash(&mut h);
        h.finish()
    };
    per_target(candidates, |group| {
        group.sort_by_cached_key(|c| std::cmp::Reverse(score(c)));
    });
}
