//! The failover executor: one client request, a bounded series of upstream attempts.
//!
//! For each candidate of the plan, in order: check health again, resolve the key, translate
//! (or pass through) the body, send, classify. A failure before commit moves on to the next
//! candidate, invisibly to the client. A streaming response is committed at its first real
//! content event; after that nothing is sent upstream again, and a break ends the client's
//! stream with an error event in its dialect (see [`stream`]). Attempts run strictly one after
//! another, so a client request never has two upstream attempts in flight.
//!
//! The executor does not decide what a failure means (`health` does) nor which candidates
//! exist (`routing` does). Its parts:
//!
//! - this file: the request's loop over rounds and candidates ([`Executor::execute`]);
//! - [`request`]: the request as a value (attempts, last failure, reservation, record) and its
//!   named transitions; the one place a request is recorded;
//! - [`attempt`]: one attempt as prepare → send → interpret;
//! - [`upstream`]: the [`Upstream`] trait everything is sent through ([`client`] is the real
//!   one);
//! - [`stream`]: the stream commit rule and the post-commit pump;
//! - `admit`, `rounds`, `refusal`, `budget`: admission (budgets, local limits), waiting between
//!   rounds, the error when nothing served, the global retry budget;
//! - [`probe`] and `retest`: one call with a key outside a request (retests, `keys test`);
//! - `conversation`: emulated `previous_response_id` and local `count_tokens`.

mod admit;
mod attempt;
mod budget;
pub mod client;
mod conversation;
pub mod headers;
pub mod probe;
mod refusal;
mod request;
mod retest;
mod rounds;
mod stream;
#[cfg(test)]
mod tests;
pub mod upstream;

use std::sync::Arc;

use bytes::Bytes;
use http::HeaderMap;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use attempt::MAX_RESPONSE_BYTES;
pub use budget::RetryBudget;
pub use retest::HttpRetester;
pub use upstream::Upstream;

use crate::budgets::BudgetLedger;
use crate::config::Timeouts;
use crate::events::EventBus;
use crate::formats::errors::ErrorCode;
use crate::formats::{Dialect, Endpoint};
use crate::health::{ErrorClass, Failure, FailureKind, HealthRegistry};
use crate::recorder::Recorder;
use crate::routing::{
    Ask, Candidate, Live, LoadSignals, Needs, Plan, RateWindows, Router, Signals,
};
use crate::secrets::{SecretValue, Secrets};
use crate::store::Conversations;
use admit::apply_usage;
use attempt::{Attempt, AttemptContext};
use client::HttpClient;
use request::{AfterRound, Exit, RequestState};
pub use rounds::conversation_key;
use rounds::RETRY_PAUSE;

/// A request as the executor sees it.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    pub endpoint: Endpoint,
    /// The dialect errors must be written in.
    pub dialect: Dialect,
    pub model: String,
    /// Where the model value sits in `body` (from [`crate::formats::body::read_head`]), so a
    /// passthrough attempt rewrites it without parsing the body again.
    pub model_span: Option<(usize, usize)>,
    pub stream: bool,
    pub body: Bytes,
    /// Client headers already filtered by [`headers::upstream_headers`].
    pub headers: HeaderMap,
    /// The client token's name.
    pub client: Option<String>,
    pub request_id: String,
    /// Session affinity: the same for every turn of one conversation (see
    /// [`crate::formats::body::RequestHead::conversation`] and [`conversation_key`]).
    pub conversation: Option<u64>,
    /// The request offers tools (from `read_head`).
    pub tools: bool,
    /// The client's output cap (from `read_head`).
    pub max_output: Option<u64>,
}

/// An error Fluxgate answers itself.
#[derive(Debug, Clone)]
pub struct ProxyError {
    pub code: ErrorCode,
    pub message: String,
    pub retry_after_secs: Option<u64>,
    /// For `request_invalid` on a same-dialect attempt: the upstream's own status and body.
    pub upstream: Option<(u16, Bytes)>,
}

impl ProxyError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ProxyError {
            code,
            message: message.into(),
            retry_after_secs: None,
            upstream: None,
        }
    }
}

/// What the client gets.
pub enum ProxyResponse {
    Complete {
        status: u16,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A committed stream; the receiver yields complete SSE frames.
    Stream {
        headers: HeaderMap,
        body: mpsc::Receiver<Bytes>,
    },
}

/// Shared state of the executor.
pub struct Executor {
    router: RwLock<Arc<Router>>,
    health: Arc<HealthRegistry>,
    secrets: Arc<Secrets>,
    /// Where every attempt, retest and probe is sent.
    upstream: Arc<dyn Upstream>,
    log: Recorder,
    budget: RetryBudget,
    events: EventBus,
    /// Where emulated Responses conversations are kept (`previous_response_id`).
    responses: Option<Arc<dyn Conversations>>,
    /// Latency and rate-limit state learned from traffic (least-latency, quota-aware, local
    /// `rpm`/`tpm`/`rpd`).
    signals: Arc<dyn LoadSignals>,
    /// The local `rpm`/`tpm`/`rpd` windows.
    windows: Arc<dyn RateWindows>,
    /// Spending per scope (budgets), shared with the request log that settles it.
    ledger: Option<Arc<dyn BudgetLedger>>,
    /// Set at the end of a shutdown's drain: streams still running end with an error event.
    cut: tokio::sync::watch::Sender<bool>,
}

/// Builds the outbound HTTP client (see [`client`]).
pub fn http_client(timeouts: &Timeouts) -> HttpClient {
    HttpClient::new(timeouts)
}

/// How a round over the plan's candidates ended.
enum RoundEnd {
    /// Every candidate was tried or passed over.
    Done,
    /// The attempt limit, the deadline or the retry budget ended it early.
    Stopped,
    /// The request is over.
    Exit(Exit),
}

impl Executor {
    pub fn new(
        router: Arc<Router>,
        health: Arc<HealthRegistry>,
        secrets: Arc<Secrets>,
        log: Recorder,
        events: EventBus,
    ) -> Self {
        let upstream = Arc::new(http_client(&router.config().timeouts));
        let ledger = log.ledger().cloned();
        let signals = Arc::new(Signals::default());
        Executor {
            signals: signals.clone(),
            windows: signals,
            ledger,
            router: RwLock::new(router),
            health,
            secrets,
            upstream,
            log,
            budget: RetryBudget::default(),
            events,
            responses: None,
            cut: tokio::sync::watch::channel(false).0,
        }
    }

    /// Sends through `upstream` instead of the HTTP client (the executor's unit tests).
    pub fn with_upstream(mut self, upstream: Arc<dyn Upstream>) -> Self {
        self.upstream = upstream;
        self
    }

    /// Bounds failover with `budget` instead of the default (50% of first attempts, at least
    /// 10 a second).
    pub fn with_retry_budget(mut self, budget: RetryBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Ends every stream still running with a typed `shutting_down` error event in its
    /// client's dialect (never a success terminator). Called when a shutdown's drain time is up.
    pub fn cut_streams(&self) {
        self.cut.send_replace(true);
    }

    /// Keeps emulated Responses conversations in `store`, so `previous_response_id` works on
    /// upstreams without a Responses API.
    pub fn with_response_store(mut self, store: Arc<dyn Conversations>) -> Self {
        self.responses = Some(store);
        self
    }

    pub fn router(&self) -> Arc<Router> {
        self.router.read().clone()
    }

    /// Swaps in a router built from a new config (in-flight requests keep the old one).
    pub fn set_router(&self, router: Arc<Router>) {
        *self.router.write() = router;
    }

    pub fn health(&self) -> &Arc<HealthRegistry> {
        &self.health
    }

    pub fn secrets(&self) -> &Arc<Secrets> {
        &self.secrets
    }

    /// Where attempts, retests and probes are sent.
    pub fn upstream(&self) -> &dyn Upstream {
        self.upstream.as_ref()
    }

    pub fn log(&self) -> &Recorder {
        &self.log
    }

    pub fn signals(&self) -> &dyn LoadSignals {
        self.signals.as_ref()
    }

    pub fn windows(&self) -> &dyn RateWindows {
        self.windows.as_ref()
    }

    pub fn ledger(&self) -> Option<&Arc<dyn BudgetLedger>> {
        self.ledger.as_ref()
    }

    /// Plans a request against the live health, signals and budgets.
    pub fn plan(
        &self,
        router: &Router,
        endpoint: Endpoint,
        model: &str,
        conversation: Option<u64>,
        needs: Option<&Needs>,
        client: Option<&str>,
    ) -> Result<Plan, crate::routing::RouteError> {
        router.plan(
            &Ask {
                endpoint,
                model,
                conversation,
                needs,
                client,
            },
            &Live {
                health: &self.health,
                signals: self.signals.as_ref(),
                windows: self.windows.as_ref(),
                ledger: self.ledger.as_deref(),
            },
            Instant::now(),
        )
    }

    /// Runs one client request to completion (or to a committed stream), and records it.
    pub async fn execute(&self, mut req: ProxyRequest) -> Result<ProxyResponse, ProxyError> {
        let router = self.router();
        let mut state = RequestState::new(&req, router.config().max_wait);
        let exit = self.run(&router, &mut req, &mut state).await;
        state.finish(&self.log, exit)
    }

    /// Plans the request, then goes round its candidates until one serves it or nothing is
    /// left to try (see ARCHITECTURE.md, "Failover rules").
    async fn run(&self, router: &Router, req: &mut ProxyRequest, state: &mut RequestState) -> Exit {
        let config = router.config();
        let (timeouts, max_attempts) = (&config.timeouts, config.max_attempts);
        let deadline = Instant::now() + timeouts.total;
        if req.endpoint == Endpoint::Responses && contains(&req.body, b"previous_response_id") {
            if let Err(e) = self.expand_previous(req) {
                return Exit::Refused(e);
            }
        }
        let counting = req.endpoint == Endpoint::CountTokens;
        let needs = Needs::new(req.endpoint, req.body.clone(), req.tools, req.max_output);
        let plan_now = |req: &ProxyRequest| {
            self.plan(
                router,
                req.endpoint,
                &req.model,
                req.conversation,
                Some(&needs),
                req.client.as_deref(),
            )
        };
        let mut plan = match plan_now(req) {
            Ok(p) => p,
            Err(e) => return Exit::Refused(ProxyError::new(ErrorCode::NoRoute, e.to_string())),
        };
        state.outcome.record.route = Some(plan.route.clone());
        if let Some(e) = plan.refused_before_sending() {
            let err = Self::budget_error(e);
            tracing::warn!(route = %plan.route, detail = %err.message, "budget exceeded; request refused before sending");
            return Exit::Refused(err);
        }
        if counting && plan.candidates.is_empty() {
            // No Anthropic upstream can count for this route: estimate, never burn a completion.
            return local_count(req);
        }
        self.budget.deposit();
        loop {
            state.begin_round();
            let stopped = match self
                .round(router, req, &plan, state, timeouts, deadline, max_attempts)
                .await
            {
                RoundEnd::Exit(exit) => return exit,
                RoundEnd::Stopped => true,
                RoundEnd::Done => false,
            };
            match state.after_round(stopped, counting, plan.degraded, max_attempts) {
                AfterRound::Stop => break,
                AfterRound::Again => {
                    // Every key tried failed transiently (5xx, reset, in-band error) and
                    // attempts are left: go round the keys still usable once more.
                    if Instant::now() + RETRY_PAUSE >= deadline {
                        break;
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                AfterRound::WaitForRecovery => {
                    let Some(wait) =
                        self.recovery_wait(&plan, &state.dead_targets, deadline, state.wait_left)
                    else {
                        break;
                    };
                    tracing::info!(request_id = %req.request_id, route = %plan.route, wait_ms = wait.as_millis() as u64, "every key is cooling; waiting for the first to come back");
                    tokio::time::sleep(wait).await;
                    state.wait_left = state.wait_left.saturating_sub(wait);
                }
            }
            match plan_now(req) {
                Ok(p) => plan = p,
                Err(_) => break,
            }
        }
        if counting {
            return local_count(req);
        }
        if let Some(err) = state.only_refusal() {
            return Exit::Refused(err);
        }
        let err = match (
            state.attempts,
            state.over_budget.as_ref().or(plan.budget_refusal()),
        ) {
            (0, Some(e)) if state.last.is_none() => Self::budget_error(e),
            _ => self.exhausted(
                &plan,
                state.attempts,
                state.last.take(),
                state.secret_error.take(),
            ),
        };
        if err.code == ErrorCode::AllKeysCooling {
            self.publish_route_unavailable(&plan, err.retry_after_secs.unwrap_or(1));
        }
        Exit::Refused(err)
    }

    /// One round over the plan's candidates, in order.
    #[expect(clippy::too_many_arguments)]
    async fn round(
        &self,
        router: &Router,
        req: &ProxyRequest,
        plan: &Plan,
        state: &mut RequestState,
        timeouts: &Timeouts,
        deadline: Instant,
        max_attempts: u32,
    ) -> RoundEnd {
        for cand in &plan.candidates {
            if state.attempts >= max_attempts || Instant::now() >= deadline {
                return RoundEnd::Stopped;
            }
            if !state.may_try(cand)
                || (!plan.degraded && !self.health.usable(&cand.account, Instant::now()))
            {
                continue;
            }
            if state.attempts >= 1 && !self.budget.withdraw() {
                tracing::warn!(request_id = %req.request_id, "global retry budget spent; not failing over");
                return RoundEnd::Stopped;
            }
            let Some(secret) = self.key_secret(router, cand, state) else {
                continue;
            };
            // Budgets and local limits again, now that this candidate is next: requests
            // planned at the same time may have taken the room since.
            let reservation = match self.admit(cand, &plan.route, req.client.as_deref()) {
                Ok(r) => r,
                Err(admit::Refused::Budget(e)) if !plan.budget_fallback => {
                    return RoundEnd::Exit(Exit::Refused(Self::budget_error(&e)));
                }
                Err(admit::Refused::Budget(e)) => {
                    tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, detail = %e, "over budget; skipping the candidate");
                    state.over_budget(e);
                    continue;
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
            };
            // Boxed so the (large) attempt state is not copied through every layer that moves
            // the request future.
            let result =
                Box::pin(self.attempt(req, cand, &secret, ctx, || state.hand_over_reservation()))
                    .await;
            match result {
                Attempt::Done(resp, usage) => {
                    return RoundEnd::Exit(self.succeeded(cand, state, resp, &usage, started));
                }
                Attempt::Failed(f) => self.attempt_failed(req, cand, &secret, state, f, started),
                Attempt::Rejected(mut err, None) => {
                    err.message = secret.redactor().text(&err.message).into_owned();
                    // Fluxgate's own translation refused the request for this candidate (a
                    // forced built-in tool, an OpenAI-only `previous_response_id`, ...); a
                    // candidate of another dialect may still serve it.
                    tracing::info!(request_id = %req.request_id, provider = %cand.provider, detail = %err.message, "this candidate cannot take the request; trying the next");
                    state.refused_by_translation(err);
                }
                Attempt::Rejected(mut err, Some(mut f)) => {
                    err.message = secret.redactor().text(&err.message).into_owned();
                    redact_failure(&mut f, &secret);
                    self.health.report_failure(&cand.account, &f);
                    let more_targets = plan
                        .candidates
                        .iter()
                        .any(|c| c.target_index > cand.target_index);
                    if let Some(err) =
                        state.rejected_by_upstream(err, Some(f), cand.target_index, more_targets)
                    {
                        return RoundEnd::Exit(Exit::Refused(err));
                    }
                }
            }
        }
        RoundEnd::Done
    }

    /// The candidate's secret; `None` (noted on the key's health and the request) when it
    /// cannot be read.
    fn key_secret(
        &self,
        router: &Router,
        cand: &Candidate,
        state: &mut RequestState,
    ) -> Option<SecretValue> {
        let key = router
            .config()
            .provider(&cand.provider)
            .and_then(|p| p.keys.iter().find(|k| k.id == cand.key_id))?;
        match self.secrets.resolve(&cand.account, &key.secret) {
            Ok(s) => {
                self.health.set_secret_error(&cand.account, None);
                Some(s)
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
        let record = &mut state.outcome.record;
        record.ttfb_ms = Some(started.elapsed().as_millis() as u64);
        apply_usage(record, usage, cand);
        if let (Some(i), Some(o)) = (usage.input_tokens, usage.output_tokens) {
            self.windows
                .settle_tokens(&cand.account, cand.est_tokens, i + o, now);
        }
        Exit::Answer(resp)
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

fn local_count(req: &ProxyRequest) -> Exit {
    match conversation::local_count(req) {
        Ok(resp) => Exit::Answer(resp),
        Err(e) => Exit::Refused(e),
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// Blanks the key out of a failure's message (text decoded from the upstream's answer).
pub fn redact_failure(f: &mut Failure, secret: &SecretValue) {
    if let std::borrow::Cow::Owned(m) = secret.redactor().text(&f.message) {
        f.message = m;
    }
}
