//! What a client is told when no attempt served its request: budgets only
//! (`budget_exceeded`), every key out of rotation (`all_keys_cooling` with `Retry-After`), no
//! target able to serve it (`no_route`), unreadable keys, or the last upstream failure.

use tokio::time::Instant;

use super::{Executor, ProxyError};
use crate::events::Event;
use crate::formats::errors::ErrorCode;
use crate::health::{Failure, FailureKind};
use crate::routing::Plan;
use crate::secrets::SecretError;

impl Executor {
    /// The typed error for a request that only budgets stand in the way of.
    pub(super) fn budget_error(e: &crate::budgets::Exceeded) -> ProxyError {
        let mut err = ProxyError::new(
            ErrorCode::BudgetExceeded,
            format!("refused before sending: {e}"),
        );
        err.retry_after_secs = Some(e.resets_in_secs);
        err
    }

    /// The typed error when the fleet's budgets cannot be checked and fail closed.
    pub(super) fn budget_unavailable(why: &str) -> ProxyError {
        ProxyError::new(
            ErrorCode::BudgetUnavailable,
            format!("refused before sending: the fleet's budgets cannot be checked ({why}); `store.budgets_when_unreachable = \"open\"` lets requests through meanwhile, on each replica's own spend"),
        )
    }

    pub(super) fn publish_route_unavailable(&self, plan: &Plan, retry_after_secs: u64) {
        tracing::warn!(route = %plan.route, retry_after_secs, "no key available for the route");
        self.events.publish(Event::RouteUnavailable {
            route: plan.route.clone(),
            retry_after_secs,
        });
    }

    /// The error when no attempt succeeded.
    pub(super) fn exhausted(
        &self,
        plan: &Plan,
        attempts: u32,
        last: Option<Failure>,
        secret_error: Option<SecretError>,
    ) -> ProxyError {
        let now = Instant::now();
        // When every candidate is now out of rotation, say when the first comes back.
        let mut earliest: Option<u64> = plan.earliest_back_in();
        let mut all_out = true;
        for c in &plan.candidates {
            if self.health.usable(&c.account, now) {
                all_out = false;
            } else if let Some(b) = self.health.back_at(&c.account) {
                let secs = b.saturating_duration_since(now).as_secs_f64().ceil() as u64;
                earliest = Some(earliest.map_or(secs, |e| e.min(secs)));
            }
        }
        if attempts == 0 {
            if let Some(f) = last.as_ref().filter(|f| f.kind == FailureKind::Proxy) {
                return ProxyError::new(
                    ErrorCode::UpstreamUnavailable,
                    format!("no attempt could be made: {}", f.message),
                );
            }
            if let Some(e) = secret_error.as_ref().filter(|e| e.is_keychain()) {
                return ProxyError::new(
                    ErrorCode::KeychainUnavailable,
                    format!("the keys for `{}` cannot be read: {e}", plan.route),
                );
            }
            if plan.candidates.is_empty() && !plan.only_health_skips() && earliest.is_none() {
                let why: Vec<String> = plan
                    .skipped
                    .iter()
                    .map(|s| format!("{}/{}: {}", s.provider, s.model, s.reason))
                    .collect();
                let why = if why.is_empty() {
                    "no target has a usable key".to_string()
                } else {
                    why.join("; ")
                };
                return ProxyError::new(
                    ErrorCode::NoRoute,
                    format!(
                        "`{}` has no target that can serve this request: {why}",
                        plan.route
                    ),
                );
            }
            if let Some(e) = secret_error {
                return ProxyError::new(
                    ErrorCode::KeychainUnavailable,
                    format!("the keys for `{}` cannot be read: {e}", plan.route),
                );
            }
        }
        if all_out || attempts == 0 {
            let wait = earliest.unwrap_or(1).max(1);
            let mut err = ProxyError::new(
                ErrorCode::AllKeysCooling,
                format!(
                    "every key for `{}` is out of rotation; the first is back in {wait} s",
                    plan.route
                ),
            );
            err.retry_after_secs = Some(wait);
            return err;
        }
        match last {
            Some(f) if matches!(f.kind, FailureKind::Timeout(_)) => ProxyError::new(
                ErrorCode::UpstreamTimeout,
                format!(
                    "the upstream timed out after {attempts} attempt(s): {}",
                    f.message
                ),
            ),
            Some(f) => ProxyError::new(
                ErrorCode::UpstreamUnavailable,
                format!(
                    "{attempts} attempt(s) failed; last: {} ({})",
                    f.message,
                    f.class.as_str()
                ),
            ),
            None => ProxyError::new(
                ErrorCode::AttemptsExhausted,
                "no attempt could be made".to_string(),
            ),
        }
    }
}
