//! The last gate before a candidate is sent: its budgets (a reservation of the request's
//! estimated cost, held until the request is recorded) and its key's local `rpm` / `tpm` /
//! `rpd` limits, checked again because requests planned at the same time may have taken the
//! room since. Also how a finished attempt's usage is priced onto its record.

use tokio::time::Instant;

use super::Executor;
use crate::budgets::{Exceeded, FleetRefusal, Reservation, Spend};
use crate::record::RequestRecord;
use crate::routing::{Candidate, LimitHit};

/// Why a candidate cannot be sent now.
pub(super) enum Refused {
    Budget(Exceeded),
    Limit(LimitHit),
    /// The fleet's budgets cannot be checked and fail closed.
    BudgetUnavailable(String),
}

impl Executor {
    /// Reserves the candidate's estimated cost against every budget covering it and takes room
    /// under its key's local limits; `Ok(None)` when no budget applies.
    pub(super) async fn admit(
        &self,
        cand: &Candidate,
        route: &str,
        client: Option<&str>,
    ) -> Result<Option<Reservation>, Refused> {
        let mut reservation = None;
        if let Some(ledger) = self.ledger.as_ref().filter(|l| l.has_budgets()) {
            let scopes = crate::budgets::scopes(
                Some(&cand.provider),
                Some(&cand.key_id),
                Some(route),
                client,
            );
            let need = Spend {
                usd: cand.est_cost.unwrap_or(0.0),
                tokens: cand.est_tokens,
            };
            let mut held = ledger.reserve(&scopes, need).map_err(Refused::Budget)?;
            if let Some(fleet) = &self.fleet_budgets {
                let budgets = ledger.budget_list();
                if budgets.iter().any(|(s, _)| scopes.contains(s)) {
                    let fleet_hold =
                        fleet
                            .reserve(&budgets, &scopes, need)
                            .await
                            .map_err(|r| match r {
                                FleetRefusal::Exceeded(e) => Refused::Budget(e),
                                FleetRefusal::Unreachable(why) => Refused::BudgetUnavailable(why),
                            })?;
                    held = held.join(fleet_hold);
                }
            }
            reservation = Some(held);
        }
        if cand.limits.any() {
            self.windows
                .acquire(&cand.account, &cand.limits, cand.est_tokens, Instant::now())
                .await
                .map_err(Refused::Limit)?;
        }
        Ok(reservation)
    }
}

/// Puts an upstream's reported usage and its cost at the catalogue's prices on a record.
pub(crate) fn apply_usage(
    record: &mut RequestRecord,
    usage: &crate::formats::inspect::Usage,
    cand: &Candidate,
) {
    record.tokens_in = usage.input_tokens;
    record.tokens_out = usage.output_tokens;
    record.tokens_cached = usage.cached_tokens;
    record.cost_usd = cost_of(usage, cand.info.as_ref().and_then(|i| i.prices));
    apply_estimate(record, usage, (cand.est_tokens, cand.est_cost));
}

/// When the upstream reported no usage, the estimate made before sending (what budgets count
/// instead of nothing; the tokens stay unknown).
pub(crate) fn apply_estimate(
    record: &mut RequestRecord,
    usage: &crate::formats::inspect::Usage,
    (tokens, usd): (u64, Option<f64>),
) {
    if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
        record.est_tokens = Some(tokens);
        record.est_cost_usd = usd;
    } else {
        record.est_tokens = None;
        record.est_cost_usd = None;
    }
}

/// The cost of reported usage, when the prices and some usage are known.
pub(crate) fn cost_of(
    usage: &crate::formats::inspect::Usage,
    prices: Option<crate::catalogue::Prices>,
) -> Option<f64> {
    let p = prices?;
    if usage.input_tokens.is_none() && usage.output_tokens.is_none() {
        return None;
    }
    Some(p.cost(
        usage.input_tokens.unwrap_or(0),
        usage.cached_tokens.unwrap_or(0),
        usage.output_tokens.unwrap_or(0),
    ))
}
