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
//! - this file: the request's loop over rounds ([`Executor::execute`]); `round.rs`: one round
//!   over the candidates and what each attempt's outcome does;
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
pub mod balance;
mod budget;
pub mod client;
mod conversation;
pub mod egress;
pub mod headers;
pub mod probe;
mod refusal;
mod request;
mod retest;
mod round;
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
use crate::health::{Failure, HealthRegistry};
use crate::recorder::Recorder;
use crate::routing::{Ask, Live, LoadSignals, Needs, Plan, RateWindows, Router, Signals};
use crate::secrets::{SecretValue, Secrets};
use crate::store::Conversations;
use client::HttpClient;
use request::{AfterRound, Exit, RequestState};
use round::RoundEnd;
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
    /// What the client's token may use (`None`: everything).
    pub limits: Option<Arc<crate::tokens::TokenLimits>>,
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
    /// The fleet's check of budgets (team mode), after the local one.
    fleet_budgets: Option<Arc<dyn crate::budgets::FleetBudgets>>,
    /// Set at the end of a shutdown's drain: streams still running end with an error event.
    cut: tokio::sync::watch::Sender<bool>,
}

/// Applies the client token's allow-lists to a plan: a route it may not use is refused
/// (`forbidden`), and candidates of providers it may not use are dropped (refused when none is
/// left).
fn restrict(plan: &mut Plan, req: &ProxyRequest) -> Result<(), ProxyError> {
    let Some(limits) = req.limits.as_deref() else {
        return Ok(());
    };
    let name = req.client.as_deref().unwrap_or_default();
    if !limits.permits_route(&plan.route) {
        return Err(ProxyError::new(
            ErrorCode::Forbidden,
            format!(
                "client token `{name}` may not use route `{}` (it may use: {})",
                plan.route,
                if limits.routes.is_empty() {
                    "none".to_string()
                } else {
                    limits.routes.join(", ")
                }
            ),
        ));
    }
    let before = plan.candidates.len();
    plan.candidates
        .retain(|c| limits.permits_provider(&c.provider));
    if before > 0 && plan.candidates.is_empty() {
        return Err(ProxyError::new(
            ErrorCode::Forbidden,
            format!(
                "client token `{name}` may only be served by {}; route `{}` has no key of those available",
                limits.providers.join(", "),
                plan.route
            ),
        ));
    }
    Ok(())
}

/// Builds the outbound HTTP client (see [`client`]).
pub fn http_client(timeouts: &Timeouts) -> HttpClient {
    HttpClient::new(timeouts)
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
            fleet_budgets: None,
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

    /// Takes room under keys' local limits in `windows` (a fleet's shared windows) instead of
    /// this process's own.
    pub fn with_windows(mut self, windows: Arc<dyn RateWindows>) -> Self {
        self.windows = windows;
        self
    }

    /// Checks budgets against the fleet's spend too (team mode).
    pub fn with_fleet_budgets(mut self, fleet: Arc<dyn crate::budgets::FleetBudgets>) -> Self {
        self.fleet_budgets = Some(fleet);
        self
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
        if let Err(e) = restrict(&mut plan, req) {
            return Exit::Refused(e);
        }
        state.outcome.record.route = Some(plan.route.clone());
        if let Some(keep) = config.route(&plan.route).and_then(|r| r.keep_bodies) {
            state.outcome.keep_bodies(keep, &req.body);
        }
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
                Ok(mut p) => {
                    if restrict(&mut p, req).is_err() {
                        break;
                    }
                    plan = p;
                }
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
