//! Budget leases: how a replica spends fleet-wide budgets without a round trip per request.
//!
//! A reservation that finds no room in this replica's lease for one of its budgeted scopes
//! takes a new lease in PostgreSQL (`budgets.rs`): a hold, like a request's, but sized for
//! many requests — a share of the limit ([`LEASE_SHARE`]), never more than a quarter of the
//! room the fleet has left, never less than the request's own estimate. Requests that follow
//! take their estimate from the lease here, in memory, until it runs out.
//!
//! Why the fleet's budget still holds: a lease is a hold other replicas count before they
//! take room, and this replica takes nothing beyond its leases. A request's estimate is
//! taken from the lease for good (it is not given back when the request ends), so a lease
//! lets through at most what it holds. What a lease costs is slack: while it lives, the spend
//! of its finished requests is counted twice (settled spend and the lease's hold), and what
//! it has not handed out is held from other replicas. Both end when the lease is retired —
//! when a request finds it empty, when it has been idle for [`LEASE_IDLE`], or when the day
//! changes — and its hold is deleted once the last request that took from it has ended (in
//! the writer's transaction that adds that request's spend). As the fleet's room shrinks,
//! leases shrink with it, down to one request's estimate: the last requests before a limit
//! are decided exactly, one transaction each.
//!
//! This file is the in-memory half, with time passed in.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::budgets::Spend;
use crate::config::Budget;

/// The largest lease, as a share of a limit (of the smaller, when a scope has a daily and a
/// monthly limit in the same unit).
pub const LEASE_SHARE: f64 = 0.02;
/// A lease no request has taken from for this long is retired (so its unused part stops
/// holding room other replicas may need).
pub const LEASE_IDLE: Duration = Duration::from_secs(3);

/// A hold in PostgreSQL, released (with the next batch of records) when the last request that
/// took from it has ended and its lease is retired.
pub(super) struct HoldGuard {
    id: String,
    release: Release,
}

/// What releases a hold (queues its deletion with the next batch of records).
pub(super) type Release = Arc<dyn Fn(String) + Send + Sync>;

impl HoldGuard {
    pub(super) fn new(id: String, release: Release) -> Arc<HoldGuard> {
        Arc::new(HoldGuard { id, release })
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        (self.release)(std::mem::take(&mut self.id));
    }
}

/// What a lease has left to hand out; `INFINITY` in a unit its budget does not limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Left {
    pub usd: f64,
    pub tokens: f64,
}

impl Left {
    fn fits(&self, need: Spend) -> bool {
        need.usd <= self.usd + 1e-12 && need.tokens as f64 <= self.tokens
    }

    fn take(&mut self, need: Spend) {
        self.usd -= need.usd;
        self.tokens -= need.tokens as f64;
    }

    fn give(&mut self, need: Spend) {
        self.usd += need.usd;
        self.tokens += need.tokens as f64;
    }
}

struct Lease {
    hold: Arc<HoldGuard>,
    /// The day (`periods()[0]`) its hold counts in, and the budget it was sized for: a lease
    /// of another day or of a budget since changed is not used.
    day: String,
    budget: Budget,
    left: Left,
    used_at: Instant,
}

/// This replica's leases, one per budgeted scope.
#[derive(Default)]
pub(super) struct Leases {
    by_scope: Mutex<HashMap<String, Lease>>,
}

/// What [`Leases::take`] took: the holds the request keeps alive, and the scopes it found
/// no room for.
pub(super) struct Taken {
    pub holds: Vec<(String, Arc<HoldGuard>)>,
    pub lacking: Vec<String>,
}

impl Leases {
    /// Takes `need` from the lease of each of `scopes` (budgeted scopes, with their budgets)
    /// that has room for it; the others are `lacking`.
    pub(super) fn take(
        &self,
        scopes: &[(&str, &Budget)],
        need: Spend,
        day: &str,
        now: Instant,
    ) -> Taken {
        let mut map = self.by_scope.lock();
        let mut taken = Taken {
            holds: Vec::new(),
            lacking: Vec::new(),
        };
        for (scope, budget) in scopes {
            match map.get_mut(*scope) {
                Some(l) if l.day == day && l.budget == **budget && l.left.fits(need) => {
                    l.left.take(need);
                    l.used_at = now;
                    taken.holds.push((scope.to_string(), l.hold.clone()));
                    if !l.left.fits(need) {
                        // Spent (for requests of this size): retired now, so its hold ends
                        // with its last request rather than counting twice until it idles.
                        map.remove(*scope);
                    }
                }
                _ => taken.lacking.push(scope.to_string()),
            }
        }
        taken
    }

    /// Gives `need` back to the leases it was taken from (the request was refused), when
    /// they are still the scopes' leases.
    pub(super) fn give_back(&self, holds: Vec<(String, Arc<HoldGuard>)>, need: Spend) {
        let mut map = self.by_scope.lock();
        for (scope, hold) in holds {
            if let Some(l) = map.get_mut(&scope) {
                if Arc::ptr_eq(&l.hold, &hold) {
                    l.left.give(need);
                }
            }
        }
    }

    /// Makes a new lease the scope's (what it has left after the request of estimate `need`
    /// that took it), and returns its hold for that request. The lease it replaces is
    /// retired; a lease with no room for another such request is not kept (its hold is the
    /// request's alone).
    #[expect(
        clippy::too_many_arguments,
        reason = "one lease's fields, each named at the call"
    )]
    pub(super) fn install(
        &self,
        scope: &str,
        hold: Arc<HoldGuard>,
        budget: &Budget,
        day: &str,
        left: Left,
        need: Spend,
        now: Instant,
    ) -> Arc<HoldGuard> {
        let mut map = self.by_scope.lock();
        if !left.fits(need) {
            map.remove(scope);
            return hold;
        }
        map.insert(
            scope.to_string(),
            Lease {
                hold: hold.clone(),
                day: day.to_string(),
                budget: budget.clone(),
                left,
                used_at: now,
            },
        );
        hold
    }

    /// Retires leases idle since before `now - LEASE_IDLE` or of another day than `day`;
    /// returns how many.
    pub(super) fn retire_idle(&self, day: &str, now: Instant) -> usize {
        let mut map = self.by_scope.lock();
        let before = map.len();
        map.retain(|_, l| l.day == day && now.saturating_duration_since(l.used_at) < LEASE_IDLE);
        before - map.len()
    }

    /// Retires every lease (the budgets changed, or the replica stops).
    pub(super) fn retire_all(&self) {
        self.by_scope.lock().clear();
    }

    pub(super) fn len(&self) -> usize {
        self.by_scope.lock().len()
    }
}

/// The size of a new lease for a scope whose `budget` has `used` (the fleet's spend and holds
/// today and this month), for a request of estimate `need` that fits: the hold's amount and
/// what the lease has left once the request has taken its part. In each limited unit: the
/// smaller of [`LEASE_SHARE`] of the limit and a quarter of the room left, rounded down to a
/// whole number of `need`, and never less than `need`.
pub(super) fn lease_size(budget: &Budget, need: Spend, used: [Spend; 2]) -> (Spend, Left) {
    let usd = size_in(
        [budget.daily_usd, budget.monthly_usd],
        need.usd,
        [used[0].usd, used[1].usd],
    );
    let tokens = size_in(
        [
            budget.daily_tokens.map(|t| t as f64),
            budget.monthly_tokens.map(|t| t as f64),
        ],
        need.tokens as f64,
        [used[0].tokens as f64, used[1].tokens as f64],
    );
    let hold = Spend {
        usd: usd.unwrap_or(need.usd),
        // Whole tokens, never below the request's own need.
        tokens: tokens.map_or(need.tokens, |t| (t.floor() as u64).max(need.tokens)),
    };
    let left = Left {
        usd: usd.map_or(f64::INFINITY, |u| u - need.usd),
        tokens: tokens.map_or(f64::INFINITY, |_| (hold.tokens - need.tokens) as f64),
    };
    (hold, left)
}

/// A lease's amount in one unit: `None` when no limit of the unit applies.
fn size_in(limits: [Option<f64>; 2], need: f64, used: [f64; 2]) -> Option<f64> {
    let mut cap = f64::INFINITY;
    let mut room = f64::INFINITY;
    let mut any = false;
    for (limit, used) in limits.iter().zip(used) {
        if let Some(limit) = limit {
            any = true;
            cap = cap.min(limit * LEASE_SHARE);
            room = room.min(limit - used);
        }
    }
    // A whole number of estimates, so requests of one size leave nothing stranded.
    any.then(|| {
        let x = (room / 4.0).min(cap);
        if need > 0.0 {
            ((x / need + 1e-9).floor() * need).max(need)
        } else {
            x
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BudgetScope;

    fn budget(daily_tokens: Option<u64>, monthly_usd: Option<f64>) -> Budget {
        Budget {
            scope: BudgetScope::All,
            daily_usd: None,
            monthly_usd,
            daily_tokens,
            monthly_tokens: None,
        }
    }

    fn spend(usd: f64, tokens: u64) -> Spend {
        Spend { usd, tokens }
    }

    fn counting() -> (Arc<Mutex<Vec<String>>>, Release) {
        let released = Arc::new(Mutex::new(Vec::new()));
        let r = released.clone();
        (released, Arc::new(move |id| r.lock().push(id)))
    }

    #[test]
    fn a_lease_is_a_share_of_the_limit_a_quarter_of_the_room_at_most_and_the_need_at_least() {
        let b = budget(Some(1_000_000), None);
        // Plenty of room: 2% of the limit.
        let (hold, left) = lease_size(&b, spend(0.0, 100), [spend(0.0, 0), spend(0.0, 0)]);
        assert_eq!(hold.tokens, 20_000);
        assert_eq!(left.tokens, 19_900.0);
        assert_eq!(left.usd, f64::INFINITY, "usd is not limited");
        assert_eq!(hold.usd, 0.0);
        // 40 000 left: a quarter of it.
        let (hold, _) = lease_size(&b, spend(0.0, 100), [spend(0.0, 960_000), spend(0.0, 0)]);
        assert_eq!(hold.tokens, 10_000);
        // 40 120 left: a quarter is 10 030, rounded down to whole requests.
        let (hold, _) = lease_size(&b, spend(0.0, 100), [spend(0.0, 959_880), spend(0.0, 0)]);
        assert_eq!(hold.tokens, 10_000);
        // 200 left: the request's own need, nothing more.
        let (hold, left) = lease_size(&b, spend(0.0, 100), [spend(0.0, 999_800), spend(0.0, 0)]);
        assert_eq!((hold.tokens, left.tokens), (100, 0.0));
        // The monthly usd limit sizes the usd part, from the month's use.
        let b = budget(None, Some(100.0));
        let (hold, left) = lease_size(&b, spend(0.5, 10), [spend(99.0, 0), spend(90.0, 0)]);
        assert!((hold.usd - 2.0).abs() < 1e-9, "{hold:?}");
        assert!((left.usd - 1.5).abs() < 1e-9);
        assert_eq!(left.tokens, f64::INFINITY);
        assert_eq!(hold.tokens, 10, "an unlimited unit holds the estimate");
    }

    #[test]
    fn requests_take_from_a_lease_until_it_is_empty_and_never_beyond() {
        let (released, release) = counting();
        let leases = Leases::default();
        let b = budget(Some(1500), None);
        let now = Instant::now();
        let scopes = [("all", &b)];
        let ten = spend(0.0, 10);
        let t = leases.take(&scopes, ten, "d1", now);
        assert_eq!(t.lacking, vec!["all".to_string()], "no lease yet");
        let (hold, left) = lease_size(&b, ten, [Spend::default(); 2]);
        assert_eq!(hold.tokens, 30, "three requests");
        let first = leases.install(
            "all",
            HoldGuard::new("h1".into(), release),
            &b,
            "d1",
            left,
            ten,
            now,
        );
        let t = leases.take(&scopes, ten, "d1", now);
        assert!(t.lacking.is_empty());
        assert_eq!(t.holds.len(), 1);
        assert!(Arc::ptr_eq(&t.holds[0].1, &first));
        // Given back (the request was refused elsewhere): room for two again.
        leases.give_back(t.holds, ten);
        let t2 = leases.take(&scopes, ten, "d1", now);
        let t3 = leases.take(&scopes, ten, "d1", now);
        assert!(t2.lacking.is_empty() && t3.lacking.is_empty());
        // Empty now, so retired at once: the next request lacks room, and the hold ends
        // with the last request that took from it.
        assert_eq!(leases.len(), 0);
        assert_eq!(
            leases.take(&scopes, spend(0.0, 1), "d1", now).lacking.len(),
            1
        );
        drop((first, t2));
        assert!(released.lock().is_empty());
        drop(t3);
        assert_eq!(*released.lock(), vec!["h1".to_string()]);
        // A lease with no room after its first request is not kept.
        let (released, release) = counting();
        let (_, left) = lease_size(&budget(Some(10), None), ten, [Spend::default(); 2]);
        drop(leases.install(
            "all",
            HoldGuard::new("h2".into(), release),
            &b,
            "d1",
            left,
            ten,
            now,
        ));
        assert_eq!((leases.len(), released.lock().len()), (0, 1));
        // A lease of another day, or sized for another budget, is not used.
        let (_, left) = lease_size(&b, spend(0.0, 1), [Spend::default(); 2]);
        let (_, release) = counting();
        leases.install(
            "all",
            HoldGuard::new("h3".into(), release),
            &b,
            "d1",
            left,
            ten,
            now,
        );
        assert_eq!(
            leases.take(&scopes, spend(0.0, 1), "d2", now).lacking.len(),
            1
        );
        let other = budget(Some(2000), None);
        assert_eq!(
            leases
                .take(&[("all", &other)], spend(0.0, 1), "d1", now)
                .lacking
                .len(),
            1
        );
    }

    #[test]
    fn a_hold_is_released_once_its_lease_is_retired_and_its_last_request_ended() {
        let (released, release) = counting();
        let leases = Leases::default();
        let b = budget(Some(1_000_000), None);
        let t0 = Instant::now();
        let (_, left) = lease_size(&b, spend(0.0, 10), [Spend::default(); 2]);
        let ten = spend(0.0, 10);
        let for_first = leases.install(
            "all",
            HoldGuard::new("h".into(), release),
            &b,
            "d1",
            left,
            ten,
            t0,
        );
        let t = leases.take(&[("all", &b)], spend(0.0, 10), "d1", t0 + LEASE_IDLE / 2);
        // Used recently: not retired.
        assert_eq!(leases.retire_idle("d1", t0 + LEASE_IDLE), 0);
        assert_eq!(leases.retire_idle("d1", t0 + LEASE_IDLE * 2), 1);
        assert_eq!(leases.len(), 0);
        drop(for_first);
        assert!(released.lock().is_empty(), "a request still runs on it");
        drop(t);
        assert_eq!(*released.lock(), vec!["h".to_string()]);
        // A new day retires at once.
        let (released, release) = counting();
        leases.install(
            "all",
            HoldGuard::new("d".into(), release),
            &b,
            "d1",
            left,
            ten,
            t0,
        );
        assert_eq!(leases.retire_idle("d2", t0), 1);
        assert_eq!(released.lock().len(), 1);
        let (released, release) = counting();
        leases.install(
            "all",
            HoldGuard::new("x".into(), release),
            &b,
            "d1",
            left,
            ten,
            t0,
        );
        leases.retire_all();
        assert_eq!(released.lock().len(), 1);
    }
}
