//! Budgets of the whole fleet, on PostgreSQL: [`FleetLedger`] is the [`FleetBudgets`] gate a
//! budgeted request passes after this replica's own ledger.
//!
//! A request takes its estimate from this replica's lease of each budgeted scope it falls
//! under, in memory (`leases.rs`). Only when a lease has no room does it run a transaction,
//! on a pooled connection: advisory locks on those scopes (taken in sorted order, so two
//! transactions cannot deadlock), then the fleet's settled spend (`fluxgate_spend`) and every
//! replica's live holds (`fluxgate_budget_holds`, leases included) for today and this month,
//! the check, and a new lease's hold. Two replicas taking the last dollar at once are thus
//! ordered, and the second sees the first's hold. A hold is deleted in the writer's
//! transaction that adds the spend of the last request that took from it (`ledger/mod.rs`), and
//! expires after [`HOLD_TTL`] if its replica died. So a budget is overspent by at most what
//! requests spend beyond their estimates.
//!
//! When PostgreSQL does not answer within [`WAIT`], a request that needs a new lease is
//! refused with `budget_unavailable`, or with `budgets_when_unreachable = "open"` decided on
//! this replica's own spend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio_postgres::{Client, Statement};

use super::leases::{lease_size, HoldGuard, Left, Release};
use super::ledger::FleetLedger;
use crate::budgets::{
    first_exceeded_by, Exceeded, FleetBudgets, FleetRefusal, Period, Reservation, Spend,
};
use crate::config::Budget;
use crate::record::periods;

/// How long a hold outlives a replica that died before releasing it.
pub const HOLD_TTL: Duration = Duration::from_secs(15 * 60);
/// How long a request waits for the fleet's budgets (a new pooled connection authenticates
/// first).
pub const WAIT: Duration = Duration::from_secs(2);

/// A pooled connection with the reservation's statements prepared on it (a statement sent as
/// text would be parsed again on every request).
pub(super) struct Conn {
    pub(super) client: Client,
    lock: Statement,
    used: Statement,
    hold: Statement,
}

impl Conn {
    pub(super) async fn prepare(client: Client) -> Result<Conn, tokio_postgres::Error> {
        // The locks are taken in the order of the (sorted) array.
        let lock = client
            .prepare(
                "SELECT pg_advisory_xact_lock(hashtextextended('fluxgate-budget:' || s, 7305)) FROM unnest($1::text[]) AS s",
            )
            .await?;
        let used = client
            .prepare(
                "SELECT period, scope, usd, tokens FROM fluxgate_spend WHERE period = ANY($1) AND scope = ANY($2)
                 UNION ALL
                 SELECT period, scope, SUM(usd)::float8, SUM(tokens)::bigint FROM fluxgate_budget_holds
                 WHERE period = ANY($1) AND scope = ANY($2) AND expires_ms > $3 GROUP BY period, scope",
            )
            .await?;
        let hold = client
            .prepare(
                "INSERT INTO fluxgate_budget_holds (hold, period, scope, usd, tokens, expires_ms)
                 SELECT h.id, p, h.s, h.u, h.t, $6 FROM unnest($2::text[]) AS p,
                 unnest($1::text[], $3::text[], $4::float8[], $5::bigint[]) AS h(id, s, u, t)",
            )
            .await?;
        Ok(Conn {
            client,
            lock,
            used,
            hold,
        })
    }
}

impl FleetBudgets for Arc<FleetLedger> {
    fn reserve<'a>(
        &'a self,
        budgets: &'a [(String, Budget)],
        scopes: &'a [String],
        need: Spend,
    ) -> BoxFuture<'a, Result<Reservation, FleetRefusal>> {
        async move {
            let result = match tokio::time::timeout(
                WAIT,
                self.reserve_leased(budgets, scopes, need),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", WAIT.as_millis())),
            };
            match result {
                Ok(Ok(holds)) => Ok(Reservation::new(move || drop(holds))),
                Ok(Err(e)) => Err(FleetRefusal::Exceeded(e)),
                Err(reason) => {
                    self.status().failed("budgets", &reason);
                    if self.budgets_fail_open() {
                        Ok(Reservation::new(|| {}))
                    } else {
                        Err(FleetRefusal::Unreachable(format!(
                            "PostgreSQL at {}: {reason}",
                            self.url()
                        )))
                    }
                }
            }
        }
        .boxed()
    }
}

/// The holds a reservation keeps alive (one per budgeted scope), or the limit it would break.
type Granted = Result<Vec<Arc<HoldGuard>>, Exceeded>;

impl FleetLedger {
    /// Takes `need` from this replica's leases, taking new leases in PostgreSQL for the scopes
    /// whose lease has no room: the holds, `Ok(Err(exceeded))`, or why PostgreSQL did not
    /// answer.
    async fn reserve_leased(
        self: &Arc<Self>,
        budgets: &[(String, Budget)],
        scopes: &[String],
        need: Spend,
    ) -> Result<Granted, String> {
        let covered = merged(budgets, scopes);
        let covered: Vec<(&str, &Budget)> = covered.iter().map(|(s, b)| (s.as_str(), b)).collect();
        let now_ms = crate::clock::now_ms();
        let [day, month] = periods(now_ms);
        let now = Instant::now();
        let mut taken = self.leases.take(&covered, need, &day, now);
        if taken.lacking.is_empty() {
            self.count_reservation(false);
            return Ok(Ok(holds_of(taken.holds)));
        }
        // One grant at a time on this replica: requests arriving meanwhile wait for it and
        // then take from the lease it brings.
        let _granting = self.granting.lock().await;
        let lacking: Vec<(&str, &Budget)> = covered
            .iter()
            .filter(|(s, _)| taken.lacking.iter().any(|l| l == s))
            .copied()
            .collect();
        let again = self.leases.take(&lacking, need, &day, Instant::now());
        taken.holds.extend(again.holds);
        if again.lacking.is_empty() {
            self.count_reservation(false);
            return Ok(Ok(holds_of(taken.holds)));
        }
        let grant: Vec<(String, Budget)> = lacking
            .iter()
            .filter(|(s, _)| again.lacking.iter().any(|l| l == s))
            .map(|(s, b)| (s.to_string(), (*b).clone()))
            .collect();
        self.count_reservation(true);
        let outcome = self.grant(&grant, need, now_ms, [&day, &month]).await;
        let granted = match outcome {
            Ok(Ok(granted)) => granted,
            Ok(Err(e)) => {
                self.leases.give_back(taken.holds, need);
                return Ok(Err(e));
            }
            Err(reason) => {
                self.leases.give_back(taken.holds, need);
                return Err(reason);
            }
        };
        let mut holds = holds_of(taken.holds);
        let now = Instant::now();
        for ((scope, budget), (id, left)) in grant.iter().zip(granted) {
            let ledger = Arc::downgrade(self);
            let release: Release = Arc::new(move |id| {
                if let Some(l) = ledger.upgrade() {
                    l.release_hold(id);
                }
            });
            let hold = HoldGuard::new(id, release);
            holds.push(
                self.leases
                    .install(scope, hold, budget, &day, left, need, now),
            );
        }
        Ok(Ok(holds))
    }

    /// The grant's transaction: a new lease for each of `grant` (sorted by scope), sized from
    /// what the fleet has used, when `need` fits them all.
    async fn grant(
        &self,
        grant: &[(String, Budget)],
        need: Spend,
        now: i64,
        days: [&String; 2],
    ) -> Result<Result<Vec<(String, Left)>, Exceeded>, String> {
        let conn = self.checkout().await?;
        let ids: Vec<String> = grant.iter().map(|_| self.new_hold_id()).collect();
        match transaction(&conn, grant, &ids, need, now, days).await {
            Ok(r) => {
                self.status().answered();
                self.checkin(conn);
                Ok(r)
            }
            Err(e) => Err(self.scrub(&e)),
        }
    }
}

fn holds_of(holds: Vec<(String, Arc<HoldGuard>)>) -> Vec<Arc<HoldGuard>> {
    holds.into_iter().map(|(_, h)| h).collect()
}

/// The budgets covering `scopes`, one per scope (two `[[budgets]]` of one scope become one
/// with the tighter of each limit), sorted by scope: the order the locks are taken in.
fn merged(budgets: &[(String, Budget)], scopes: &[String]) -> Vec<(String, Budget)> {
    let mut out: Vec<(String, Budget)> = Vec::new();
    for (scope, b) in budgets.iter().filter(|(s, _)| scopes.contains(s)) {
        match out.iter_mut().find(|(s, _)| s == scope) {
            None => out.push((scope.clone(), b.clone())),
            Some((_, m)) => {
                m.daily_usd = tighter(m.daily_usd, b.daily_usd);
                m.monthly_usd = tighter(m.monthly_usd, b.monthly_usd);
                m.daily_tokens = tighter(m.daily_tokens, b.daily_tokens);
                m.monthly_tokens = tighter(m.monthly_tokens, b.monthly_tokens);
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn tighter<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b < a { b } else { a }),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The grant's transaction in three round trips: `BEGIN` with the locks, the read, and the
/// leases' holds with `COMMIT` (each pair pipelined: sent together, answered in order). A
/// failed insert makes the `COMMIT` a rollback on the server; any other failure rolls back
/// here.
async fn transaction(
    conn: &Conn,
    grant: &[(String, Budget)],
    ids: &[String],
    need: Spend,
    now: i64,
    [day, month]: [&String; 2],
) -> Result<Result<Vec<(String, Left)>, Exceeded>, tokio_postgres::Error> {
    use futures_util::future::try_join;
    let c = &conn.client;
    let periods = vec![day.clone(), month.clone()];
    let scopes: Vec<String> = grant.iter().map(|(s, _)| s.clone()).collect();
    let read = async {
        // A hold lives only while its requests run: its commit need not wait for the disk
        // (the locks are held until it returns), and one lost in a database crash only
        // frees room early.
        try_join(
            c.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
            c.execute(&conn.lock, &[&scopes]),
        )
        .await?;
        c.query(&conn.used, &[&periods, &scopes, &now]).await
    };
    let rows = match read.await {
        Ok(rows) => rows,
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    };
    let mut used: HashMap<(String, String), Spend> = HashMap::new();
    for row in rows {
        let e = used.entry((row.get(0), row.get(1))).or_default();
        e.usd += row.get::<_, f64>(2);
        e.tokens += row.get::<_, i64>(3).max(0) as u64;
    }
    let used_in = |period: Period, scope: &str| {
        let p = match period {
            Period::Daily => day,
            Period::Monthly => month,
        };
        used.get(&(p.clone(), scope.to_string()))
            .copied()
            .unwrap_or_default()
    };
    if let Some(e) = first_exceeded_by(grant, &scopes, need, now, used_in) {
        c.batch_execute("ROLLBACK").await?;
        return Ok(Err(e));
    }
    let (mut usd, mut tokens, mut lefts) = (Vec::new(), Vec::new(), Vec::new());
    for ((scope, budget), id) in grant.iter().zip(ids) {
        let (hold, left) = lease_size(
            budget,
            need,
            [
                used_in(Period::Daily, scope),
                used_in(Period::Monthly, scope),
            ],
        );
        usd.push(hold.usd);
        tokens.push(hold.tokens as i64);
        lefts.push((id.clone(), left));
    }
    let expires = now + HOLD_TTL.as_millis() as i64;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&ids, &periods, &scopes, &usd, &tokens, &expires];
    try_join(c.execute(&conn.hold, &params), c.batch_execute("COMMIT")).await?;
    Ok(Ok(lefts))
}
