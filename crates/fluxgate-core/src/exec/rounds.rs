//! What happens between rounds of a request's candidates: the conversation key that keeps a
//! conversation on one key, the pause before another round after transient failures, and the
//! wait for a cooling key that is back soon (see ARCHITECTURE.md, "Rounds, waiting and
//! degraded mode").

use std::collections::HashSet;
use std::time::Duration;

use http::HeaderMap;
use tokio::time::Instant;

use super::Executor;
use crate::health;
use crate::routing::Plan;

/// The pause before another round over a route's keys after they all failed transiently.
pub(super) const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The conversation key of a request: a session id header the client sent (Codex's
/// `session_id`, Claude Code's `x-claude-code-session-id`, a generic `x-session-id`), else what
/// the body gave.
pub fn conversation_key(headers: &HeaderMap, from_body: Option<u64>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    for name in ["x-session-id", "session_id", "x-claude-code-session-id"] {
        if let Some(v) = headers.get(name).filter(|v| !v.is_empty()) {
            let mut h = std::hash::DefaultHasher::new();
            ("session", v.as_bytes()).hash(&mut h);
            return Some(h.finish());
        }
    }
    from_body
}

impl Executor {
    /// How long to wait for the first of a plan's keys to come back from cooling, when none
    /// can be tried now and that is within `budget` and before the deadline.
    pub(super) fn recovery_wait(
        &self,
        plan: &Plan,
        dead_targets: &HashSet<usize>,
        deadline: Instant,
        budget: Duration,
    ) -> Option<Duration> {
        if budget.is_zero() {
            return None;
        }
        let now = Instant::now();
        let router = self.router();
        let config = router.config();
        let mut accounts: Vec<String> = Vec::new();
        for c in &plan.candidates {
            if dead_targets.contains(&c.target_index) {
                continue;
            }
            if self.health.usable(&c.account, now) {
                // Something is usable but was not tried (attempt budget, deadline): no wait.
                return None;
            }
            accounts.push(c.account.clone());
        }
        for s in &plan.skipped {
            if let (crate::routing::SkipReason::Unavailable { .. }, Some(key)) =
                (&s.reason, &s.key_id)
            {
                if let Some(p) = config.provider(&s.provider) {
                    accounts.push(p.account(key));
                }
            }
        }
        let back = accounts
            .iter()
            .filter_map(|a| {
                let st = self.health.state(a)?;
                (st.status == health::KeyStatus::Cooling)
                    .then_some(st.until)
                    .flatten()
            })
            .min()?;
        // A little past the end so the key is usable when the round starts.
        let wait = back.saturating_duration_since(now) + Duration::from_millis(5);
        (wait <= budget && now + wait < deadline).then_some(wait)
    }
}
