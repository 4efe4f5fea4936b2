//! Budgets of the whole fleet, on PostgreSQL: [`FleetLedger`] is the [`FleetBudgets`] gate a
//! budgeted request passes after this replica's own ledger.
//!
//! A reservation is one transaction on a connection of its own: advisory locks on each
//! budgeted scope the request falls under (taken in sorted order, so two reservations cannot
//! deadlock), then the fleet's settled spend (`fluxgate_spend`) and every replica's live holds
//! (`fluxgate_budget_holds`) for today and this month, the check, and this request's hold.
//! Two replicas reserving the last dollar at once are thus ordered, and the second sees the
//! first's hold. A hold is released in the same transaction that adds its request's spend
//! (`ledger/mod.rs`), and expires after [`HOLD_TTL`] if its replica died. So a budget is overspent
//! by at most what one request spends beyond its estimate.
//!
//! This puts a round trip on budgeted requests only (those a `[[budgets]]` entry covers);
//! when PostgreSQL does not answer within [`WAIT`] they are refused with
//! `budget_unavailable`, or with `budgets_when_unreachable = "open"` decided on this replica's
//! own spend.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tokio_postgres::{Client, Statement};

use super::ledger::FleetLedger;
use crate::budgets::{first_exceeded_by, FleetBudgets, FleetRefusal, Period, Reservation, Spend};
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
                 SELECT $1, p, s, $4, $5, $6 FROM unnest($2::text[]) AS p, unnest($3::text[]) AS s",
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
            let result = match tokio::time::timeout(WAIT, self.hold(budgets, scopes, need)).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", WAIT.as_millis())),
            };
            match result {
                Ok(Ok(hold)) => {
                    self.status().answered();
                    let ledger = Arc::downgrade(self);
                    Ok(Reservation::new(move || {
                        if let Some(l) = ledger.upgrade() {
                            l.release_hold(hold);
                        }
                    }))
                }
                Ok(Err(e)) => {
                    self.status().answered();
                    Err(FleetRefusal::Exceeded(e))
                }
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

impl FleetLedger {
    /// The reservation's transaction: `Ok(Ok(hold id))`, `Ok(Err(exceeded))`, or why
    /// PostgreSQL did not answer.
    async fn hold(
        &self,
        budgets: &[(String, Budget)],
        scopes: &[String],
        need: Spend,
    ) -> Result<Result<String, crate::budgets::Exceeded>, String> {
        let mut covered: Vec<String> = budgets
            .iter()
            .filter(|(s, _)| scopes.contains(s))
            .map(|(s, _)| s.clone())
            .collect();
        covered.sort();
        covered.dedup();
        let now = crate::clock::now_ms();
        let [day, month] = periods(now);
        let hold = self.new_hold_id();
        let conn = self.checkout().await?;
        let outcome = transaction(&conn, budgets, &covered, need, now, [&day, &month], &hold).await;
        match outcome {
            Ok(r) => {
                self.checkin(conn);
                Ok(r.map(|()| hold))
            }
            Err(e) => Err(self.scrub(&e)),
        }
    }
}

/// The reservation's transaction in three round trips: `BEGIN` with the locks, the read, and
/// the hold with `COMMIT` (each pair pipelined: sent together, answered in order). A failed
/// insert makes the `COMMIT` a rollback on the server; any other failure rolls back here.
async fn transaction(
    conn: &Conn,
    budgets: &[(String, Budget)],
    covered: &[String],
    need: Spend,
    now: i64,
    [day, month]: [&String; 2],
    hold: &str,
) -> Result<Result<(), crate::budgets::Exceeded>, tokio_postgres::Error> {
    use futures_util::future::try_join;
    let c = &conn.client;
    let periods = vec![day.clone(), month.clone()];
    let read = async {
        // A hold lives only while its request runs: its commit need not wait for the disk
        // (the locks are held until it returns), and one lost in a database crash only
        // frees room early.
        try_join(
            c.batch_execute("BEGIN; SET LOCAL synchronous_commit TO off"),
            c.execute(&conn.lock, &[&covered]),
        )
        .await?;
        c.query(&conn.used, &[&periods, &covered, &now]).await
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
    let exceeded = first_exceeded_by(budgets, covered, need, now, |period, scope| {
        let p = match period {
            Period::Daily => day,
            Period::Monthly => month,
        };
        used.get(&(p.clone(), scope.to_string()))
            .copied()
            .unwrap_or_default()
    });
    if let Some(e) = exceeded {
        c.batch_execute("ROLLBACK").await?;
        return Ok(Err(e));
    }
    let expires = now + HOLD_TTL.as_millis() as i64;
    let tokens = need.tokens as i64;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 6] =
        [&hold, &periods, &covered, &need.usd, &tokens, &expires];
    try_join(c.execute(&conn.hold, &params), c.batch_execute("COMMIT")).await?;
    Ok(Ok(()))
}
