//! One round over a plan's candidates, and what each attempt's outcome does to the request
//! (see the "Failover rules" table in ARCHITECTURE.md): skip a candidate whose key cannot be
//! read or whose budget or local limit is spent, send, then take the outcome into the
//! request's state: an answer ends the request, a failure fails over, the upstream's refusal of
//! the request itself goes back to the client (a 404 moves to the next target).

use tokio::time::Instant;

use super::admit::{self, apply_usage};
use super::attempt::{Attempt, AttemptContext};
use super::request::{Exit, RequestState};
use super::{redact_failure, Executor, ProxyRequest, ProxyResponse};
use crate::config::proxy::Egress;
use crate::config::Timeouts;
use crate::health::{ErrorClass, Failure, FailureKind};
use crate::record::AttemptOutcome;
use crate::routing::{Candidate, Plan, Router};
use crate::secrets::SecretValue;

/// How a round over the plan's candidates ended.
pub(super) enum RoundEnd {
    /// Every candidate was tried or passed over.
    Done,
    /// The attempt limit, the deadline or the retry budget ended it early.
    Stopped,
    /// The request is over.
    Exit(Exit),
}

impl Executor {
    /// One round over the plan's candidates, in order.
    #[expect(clippy::too_many_arguments)]
    pub(super) async fn round(
        &self,
        router: &Router,
        req: &ProxyRequest,
        plan: &Plan,
        state: &mut RequestState,
        timeouts: &Timeouts,
        deadline: Instant,
        max_attempts: u32,
    ) -> RoundEnd {
        // Whether some candidate is not behind a resting proxy (worked out when first needed).
        let mut elsewhere: Option<bool> = None;
        for cand in &plan.candidates {
            if state.attempts >= max_attempts || Instant::now() >= deadline {
                return RoundEnd::Stopped;
            }
            if !state.may_try(cand)
                || (!plan.degraded && !self.health.usable(&cand.account, Instant::now()))
            {
                continue;
            }
            if self.proxy_resting(cand)
                && *elsewhere.get_or_insert_with(|| {
                    plan.candidates
                        .iter()
                        .any(|c| state.may_try(c) && !self.proxy_resting(c))
                })
            {
                // Its proxy failed moments ago and another key can serve: leave it be.
                continue;
            }
            if state.attempts >= 1 && !self.budget.withdraw() {
                tracing::warn!(request_id = %req.request_id, "global retry budget spent; not failing over");
                return RoundEnd::Stopped;
            }
            let Some((secret, egress)) = self.key_secret(router, cand, state) else {
                continue;
            };
            if state.proxy_failed(&egress) {
                // Its proxy already failed this request: the next key behind it would too.
                continue;
            }
            let via = match super::egress::via(&egress, &self.secrets) {
                Ok(v) => v,
                Err(f) => {
                    state.proxy_unusable(cand);
                    self.proxy_failed(req, cand, &egress, state, f);
                    continue;
                }
            };
            // Budgets and local limits again, now that this candidate is next: requests
            // planned at the same time may have taken the room since.
            let reservation = match self.admit(cand, &plan.route, req.client.as_deref()).await {
                Ok(r) => r,
                Err(admit::Refused::Budget(e)) if !plan.budget_fallback => {
                    return RoundEnd::Exit(Exit::Refused(Self::budget_error(&e)));
                }
                Err(admit::Refused::Budget(e)) => {
                    tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, detail = %e, "over budget; skipping the candidate");
                    state.over_budget(e);
                    continue;
                }
                Err(admit::Refused::BudgetUnavailable(why)) => {
                    return RoundEnd::Exit(Exit::Refused(Self::budget_unavailable(&why)));
                }
                Err(admit::Refused::Limit(hit)) => {
                    tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, limit = hit.limit, "key at its local limit; skipping it");
                    continue;
                }
            };
            let number = state.begin_attempt(cand, reservation);
            let _in_flight = self.health.begin(&cand.account);
            let started = Instant::now();
            let ctx = AttemptContext {
                timeouts,
                deadline,
                number,
                outcome: state.outcome.clone(),
                via,
            };
            // Boxed so the (large) attempt state is not copied through every layer that moves
            // the request future.
            let result =
                Box::pin(self.attempt(req, cand, &secret, ctx, || state.hand_over_reservation()))
                    .await;
            match result {
                Attempt::Done(resp, usage) => {
                    if let Some(p) = egress.proxy() {
                        self.health.report_proxy(&p.label, None);
                    }
                    return RoundEnd::Exit(self.succeeded(cand, state, resp, &usage, started));
                }
                Attempt::Failed(f) if f.kind == FailureKind::Proxy => {
                    self.proxy_failed(req, cand, &egress, state, f);
                }
                Attempt::Failed(f) => {
                    if let Some(p) = egress.proxy() {
                        // The tunnel opened: whatever failed, the proxy did its part.
                        self.health.report_proxy(&p.label, None);
                    }
                    self.attempt_failed(req, cand, &secret, state, f, started);
                }
                Attempt::Rejected(mut err, None) => {
                    err.message = secret.redactor().text(&err.message).into_owned();
                    // Fluxgate's own translation refused the request for this candidate (a
                    // forced built-in tool, an OpenAI-only `previous_response_id`, ...); a
                    // candidate of another dialect may still serve it.
                    tracing::info!(request_id = %req.request_id, provider = %cand.provider, detail = %err.message, "this candidate cannot take the request; trying the next");
                    state.refused_by_translation(err);
                }
                Attempt::Rejected(mut err, Some(mut f)) => {
                    if let Some(p) = egress.proxy() {
                        self.health.report_proxy(&p.label, None);
                    }
                    err.message = secret.redactor().text(&err.message).into_owned();
                    redact_failure(&mut f, &secret);
                    self.health.report_failure(&cand.account, &f);
                    let more_targets = plan
                        .candidates
                        .iter()
                        .any(|c| c.target_index > cand.target_index);
                    if let Some(err) =
                        state.rejected_by_upstream(err, f, cand.target_index, more_targets)
                    {
                        return RoundEnd::Exit(Exit::Refused(err));
                    }
                }
            }
        }
        RoundEnd::Done
    }

    /// Whether the candidate's proxy is resting after a failure.
    fn proxy_resting(&self, cand: &Candidate) -> bool {
        cand.proxy.as_ref().is_some_and(|p| {
            self.health
                .proxy_resting(&p.label, Instant::now())
                .is_some()
        })
    }

    /// The candidate's secret and how its requests leave; `None` (noted on the key's health
    /// and the request) when the secret cannot be read.
    fn key_secret(
        &self,
        router: &Router,
        cand: &Candidate,
        state: &mut RequestState,
    ) -> Option<(SecretValue, Egress)> {
        let key = router
            .config()
            .provider(&cand.provider)
            .and_then(|p| p.keys.iter().find(|k| k.id == cand.key_id))?;
        match self.secrets.resolve(&cand.account, &key.secret) {
            Ok(s) => {
                self.health.set_secret_error(&cand.account, None);
                Some((s, key.egress.clone()))
            }
            Err(e) => {
                tracing::warn!(provider = %cand.provider, key = %cand.key_id, error = %e, "cannot read the key's secret; skipping it");
                self.health
                    .set_secret_error(&cand.account, Some(e.to_string()));
                state.key_unreadable(e);
                None
            }
        }
    }

    /// An attempt served the request: health and signals learn it, a complete answer's
    /// usage goes on the record (a stream's when it ends).
    fn succeeded(
        &self,
        cand: &Candidate,
        state: &mut RequestState,
        resp: ProxyResponse,
        usage: &crate::formats::inspect::Usage,
        started: Instant,
    ) -> Exit {
        self.health.report_success(&cand.account);
        let now = Instant::now();
        // Time to first token: the whole answer, or a stream's commit.
        self.signals
            .observe_latency(&cand.account, &cand.model, started.elapsed(), now);
        if !matches!(resp, ProxyResponse::Complete { .. }) {
            return Exit::Streaming(resp);
        }
        let status = match &resp {
            ProxyResponse::Complete { status, .. } => *status,
            ProxyResponse::Stream { .. } => 200,
        };
        state.outcome.attempt_first_byte();
        state
            .outcome
            .close_attempt(AttemptOutcome::Served, Some(status), None);
        // Time to first byte counts from the request's arrival, as a stream's does.
        let first_byte = state.outcome.started.elapsed().as_millis() as u64;
        let record = &mut state.outcome.record;
        record.ttfb_ms = Some(first_byte);
        apply_usage(record, usage, cand);
        // Only a key with a token limit has a token window to correct (a shared window would
        // otherwise cost a round trip per request for nothing).
        if let (Some(i), Some(o), Some(_)) =
            (usage.input_tokens, usage.output_tokens, cand.limits.tpm)
        {
            self.windows
                .settle_tokens(&cand.account, cand.est_tokens, i + o, now);
        }
        Exit::Answer(resp)
    }

    /// The key's proxy failed (or its password could not be read): the proxy's health learns
    /// it, the key's does not, and no other key behind that proxy is tried for this request.
    fn proxy_failed(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        egress: &Egress,
        state: &mut RequestState,
        f: Failure,
    ) {
        tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, detail = %f.message, "the key's proxy failed; failing over");
        if let Some(p) = egress.proxy() {
            self.health.report_proxy(&p.label, Some(&f));
            state.proxy_down(&p.label);
        }
        state.failed(f);
    }

    /// An attempt failed before anything reached the client: health learns it, the request
    /// fails over.
    fn attempt_failed(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        secret: &SecretValue,
        state: &mut RequestState,
        mut f: Failure,
        started: Instant,
    ) {
        redact_failure(&mut f, secret);
        tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, class = f.class.as_str(), status = f.status, detail = %f.message, "attempt failed; failing over");
        if f.class == ErrorClass::AuthFailed {
            // The key may have been replaced in the keychain since it was cached.
            self.secrets.invalidate(&cand.account);
        }
        self.health.report_failure(&cand.account, &f);
        if matches!(f.kind, FailureKind::Timeout(_)) {
            // A key that times out is slow, whatever its past samples say.
            self.signals.observe_latency(
                &cand.account,
                &cand.model,
                started.elapsed(),
                Instant::now(),
            );
        }
        state.failed(f);
    }
}
