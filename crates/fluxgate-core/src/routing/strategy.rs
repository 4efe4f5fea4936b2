//! Strategies order a route's usable candidates.
//!
//! A strategy receives the whole candidate list (target × key, already filtered by health) so
//! strategies that weigh targets against each other (latency, cost, quota) fit the same trait.
//! The four built in here keep the route's targets as a fallback chain and order keys within
//! each target's pool.

use std::sync::atomic::{AtomicU64, Ordering};

use rand::Rng;

use super::Candidate;
use crate::config::StrategyKind;

/// What a strategy may consult besides the candidates.
pub struct StrategyContext<'a> {
    /// A per-route request counter (round-robin position).
    pub counter: u64,
    /// Attempts currently in flight per key account.
    pub in_flight: &'a dyn Fn(&str) -> u32,
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

pub fn for_kind(kind: StrategyKind) -> &'static dyn Strategy {
    match kind {
        StrategyKind::Priority => &Priority,
        StrategyKind::RoundRobin => &RoundRobin,
        StrategyKind::Weighted => &Weighted,
        StrategyKind::LeastInFlight => &LeastInFlight,
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
