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
//! exist (`routing` does).

mod admit;
mod budget;
pub mod client;
pub mod headers;
mod refusal;
mod retest;
mod rounds;
mod stream;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use http::HeaderMap;
use parking_lot::RwLock;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use budget::RetryBudget;
pub use retest::HttpRetester;

use crate::budgets::{Ledger, Reservation};
use crate::config::Timeouts;
use crate::events::EventBus;
use crate::formats::body::{read_head, replace_model, rewrite_model};
use crate::formats::errors::ErrorCode;
use crate::formats::inspect::{check_body, Usage};
use crate::formats::translate::{estimate, responses, strip_foreign_artefacts, Codec, Target};
use crate::formats::{Dialect, Endpoint};
use crate::health::{self, ErrorClass, Failure, FailureKind, HealthRegistry, TimeoutPhase};
use crate::routing::{Ask, Candidate, Live, Needs, Plan, Router, Signals};
use crate::secrets::{SecretError, Secrets};
use crate::store::{RequestLog, RequestRecord, Store};
use admit::apply_usage;
use client::{body_stream, BodyStream, HttpClient, TransportError};
pub use rounds::conversation_key;
use rounds::RETRY_PAUSE;

/// The largest non-streaming upstream response accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How much of an error response is read for classification.
const MAX_ERROR_BYTES: usize = 256 * 1024;

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
    client: HttpClient,
    log: RequestLog,
    budget: RetryBudget,
    events: EventBus,
    /// Where emulated Responses conversations are kept (`previous_response_id`).
    responses: Option<Store>,
    /// Latency and rate-limit state learned from traffic (least-latency, quota-aware, local
    /// `rpm`/`tpm`/`rpd`).
    signals: Arc<Signals>,
    /// Spending per scope (budgets), shared with the request log that settles it.
    ledger: Option<Arc<Ledger>>,
    /// Set at the end of a shutdown's drain: streams still running end with an error event.
    cut: tokio::sync::watch::Sender<bool>,
}

/// Builds the outbound HTTP client (see [`client`]).
pub fn http_client(timeouts: &Timeouts) -> HttpClient {
    HttpClient::new(timeouts)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Where a request's outcome is collected for its record.
struct Outcome {
    started: Instant,
    record: RequestRecord,
}

impl Outcome {
    fn new(req: &ProxyRequest) -> Self {
        Outcome {
            started: Instant::now(),
            record: RequestRecord {
                ts_ms: now_ms(),
                request_id: req.request_id.clone(),
                client: req.client.clone(),
                endpoint: req.endpoint.as_str().to_string(),
                model: Some(req.model.clone()),
                stream: req.stream,
                ..RequestRecord::default()
            },
        }
    }

    fn finish(mut self, log: &RequestLog, status: u16, code: Option<ErrorCode>) {
        self.record.status = status;
        if let Some(c) = code {
            self.record.error_code = Some(c.as_str().to_string());
        }
        self.record.latency_ms = self.started.elapsed().as_millis() as u64;
        log.record(self.record);
    }
}

/// What one attempt produced.
enum Attempt {
    Done(ProxyResponse, Usage),
    Failed(Failure),
    /// The request itself was rejected: by the upstream (with the classified failure, for
    /// health) or by its own translation (no failure: no key is at fault). Goes to the client.
    Rejected(ProxyError, Option<Failure>),
}

impl Executor {
    pub fn new(
        router: Arc<Router>,
        health: Arc<HealthRegistry>,
        secrets: Arc<Secrets>,
        log: RequestLog,
        events: EventBus,
    ) -> Self {
        let client = http_client(&router.config().timeouts);
        let ledger = log.ledger().cloned();
        Executor {
            signals: Arc::default(),
            ledger,
            router: RwLock::new(router),
            health,
            secrets,
            client,
            log,
            budget: RetryBudget::default(),
            events,
            responses: None,
            cut: tokio::sync::watch::channel(false).0,
        }
    }

    /// Ends every stream still running with a typed `shutting_down` error event in its
    /// client's dialect (never a success terminator). Called when a shutdown's drain time is up.
    pub fn cut_streams(&self) {
        self.cut.send_replace(true);
    }

    /// Keeps emulated Responses conversations in `store`, so `previous_response_id` works on
    /// upstreams without a Responses API.
    pub fn with_response_store(mut self, store: Store) -> Self {
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

    pub fn client(&self) -> &HttpClient {
        &self.client
    }

    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    pub fn signals(&self) -> &Arc<Signals> {
        &self.signals
    }

    pub fn ledger(&self) -> Option<&Arc<Ledger>> {
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
        router.plan_request(
            &Ask {
                endpoint,
                model,
                conversation,
                needs,
                client,
            },
            &Live {
                health: &self.health,
                signals: &self.signals,
                ledger: self.ledger.as_deref(),
            },
            Instant::now(),
        )
    }

    /// Runs one client request to completion (or to a committed stream).
    pub async fn execute(&self, mut req: ProxyRequest) -> Result<ProxyResponse, ProxyError> {
        let router = self.router();
        let timeouts = router.config().timeouts.clone();
        let max_attempts = router.config().max_attempts;
        let deadline = Instant::now() + timeouts.total;
        let mut outcome = Outcome::new(&req);
        if req.endpoint == Endpoint::Responses && contains(&req.body, b"previous_response_id") {
            if let Err(e) = self.expand_previous(&mut req) {
                outcome.finish(&self.log, e.code.status(), Some(e.code));
                return Err(e);
            }
        }

        let needs = Needs::new(req.endpoint, req.body.clone(), req.tools, req.max_output);
        let mut plan = match self.plan(
            &router,
            req.endpoint,
            &req.model,
            req.conversation,
            Some(&needs),
            req.client.as_deref(),
        ) {
            Ok(p) => p,
            Err(e) => {
                let err = ProxyError::new(ErrorCode::NoRoute, e.to_string());
                outcome.finish(&self.log, err.code.status(), Some(err.code));
                return Err(err);
            }
        };
        outcome.record.route = Some(plan.route.clone());
        let no_fallback = router
            .config()
            .routes
            .iter()
            .any(|r| r.name == plan.route && !r.budget_fallback);
        if plan.candidates.is_empty() || no_fallback {
            let over = if no_fallback {
                plan.over_budget()
            } else {
                plan.budget_refusal()
            };
            if let Some(e) = over {
                let err = Self::budget_error(e);
                tracing::warn!(route = %plan.route, detail = %err.message, "budget exceeded; request refused before sending");
                outcome.finish(&self.log, err.code.status(), Some(err.code));
                return Err(err);
            }
        }
        if req.endpoint == Endpoint::CountTokens && plan.candidates.is_empty() {
            // No Anthropic upstream can count for this route: estimate, never burn a completion.
            return self.local_count(&req, outcome);
        }
        self.budget.deposit();

        let mut attempts = 0u32;
        let mut last: Option<Failure> = None;
        let mut secret_error: Option<SecretError> = None;
        let mut dead_targets: HashSet<usize> = HashSet::new();
        let mut rejection: Option<ProxyError> = None;
        let mut wait_left = router.config().max_wait;
        let mut timed_out = false;
        let mut over_budget: Option<crate::budgets::Exceeded> = None;
        // Rounds: the plan's candidates in order; when all are out of rotation and the first
        // comes back within `retry.max_wait`, wait for it and go round again.
        loop {
            let mut stopped = false;
            let round_start = attempts;
            for cand in &plan.candidates {
                if attempts >= max_attempts || Instant::now() >= deadline {
                    stopped = true;
                    break;
                }
                if dead_targets.contains(&cand.target_index)
                    || (!plan.degraded && !self.health.usable(&cand.account, Instant::now()))
                {
                    continue;
                }
                if attempts >= 1 && !self.budget.withdraw() {
                    tracing::warn!(request_id = %req.request_id, "global retry budget spent; not failing over");
                    stopped = true;
                    break;
                }
                let Some(key) = router
                    .config()
                    .provider(&cand.provider)
                    .and_then(|p| p.keys.iter().find(|k| k.id == cand.key_id))
                    .cloned()
                else {
                    continue;
                };
                let secret = match self.secrets.resolve(&cand.account, &key.secret) {
                    Ok(s) => {
                        self.health.set_secret_error(&cand.account, None);
                        s
                    }
                    Err(e) => {
                        tracing::warn!(provider = %cand.provider, key = %cand.key_id, error = %e, "cannot read the key's secret; skipping it");
                        self.health
                            .set_secret_error(&cand.account, Some(e.to_string()));
                        secret_error = Some(e);
                        continue;
                    }
                };
                // Budgets and local limits again, now that this candidate is next: requests
                // planned at the same time may have taken the room since.
                let mut reservation = match self.admit(cand, &plan.route, req.client.as_deref()) {
                    Ok(r) => r,
                    Err(admit::Refused::Budget(e)) if no_fallback => {
                        let err = Self::budget_error(&e);
                        outcome.finish(&self.log, err.code.status(), Some(err.code));
                        return Err(err);
                    }
                    Err(admit::Refused::Budget(e)) => {
                        tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, detail = %e, "over budget; skipping the candidate");
                        over_budget.get_or_insert(e);
                        continue;
                    }
                    Err(admit::Refused::Limit(hit)) => {
                        tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, limit = hit.limit, "key at its local limit; skipping it");
                        continue;
                    }
                };
                attempts += 1;
                outcome.record.attempts = attempts;
                outcome.record.provider = Some(cand.provider.clone());
                outcome.record.key_id = Some(cand.key_id.clone());
                outcome.record.upstream_model = Some(cand.model.clone());
                let _in_flight = self.health.begin(&cand.account);
                let attempt_start = Instant::now();
                // Boxed so the (large) attempt state is not copied through every layer that moves
                // the request future.
                let result = Box::pin(self.attempt(
                    &req,
                    cand,
                    &secret,
                    &timeouts,
                    deadline,
                    attempts,
                    outcome.record.clone(),
                    outcome.started,
                    &mut reservation,
                ))
                .await;
                match result {
                    Attempt::Done(resp, usage) => {
                        self.health.report_success(&cand.account);
                        let now = Instant::now();
                        // Time to first token: the whole answer, or a stream's commit.
                        self.signals.observe_latency(
                            &cand.account,
                            &cand.model,
                            attempt_start.elapsed(),
                            now,
                        );
                        if let ProxyResponse::Complete { status, .. } = &resp {
                            outcome.record.ttfb_ms =
                                Some(attempt_start.elapsed().as_millis() as u64);
                            apply_usage(&mut outcome.record, &usage, cand);
                            if let (Some(i), Some(o)) = (usage.input_tokens, usage.output_tokens) {
                                self.signals.settle_tokens(
                                    &cand.account,
                                    cand.est_tokens,
                                    i + o,
                                    now,
                                );
                            }
                            let status = *status;
                            outcome.finish(&self.log, status, None);
                        }
                        // Streams record themselves when they end (and hold the reservation
                        // until then).
                        return Ok(resp);
                    }
                    Attempt::Failed(mut f) => {
                        redact_failure(&mut f, &secret);
                        tracing::info!(request_id = %req.request_id, provider = %cand.provider, key = %cand.key_id, class = f.class.as_str(), status = f.status, detail = %f.message, "attempt failed; failing over");
                        if f.class == ErrorClass::AuthFailed {
                            // The key may have been replaced in the keychain since it was cached.
                            self.secrets.invalidate(&cand.account);
                        }
                        self.health.report_failure(&cand.account, &f);
                        outcome.record.error_class = Some(f.class.as_str().to_string());
                        if matches!(f.kind, FailureKind::Timeout(_)) {
                            // A key that times out is slow, whatever its past samples say.
                            self.signals.observe_latency(
                                &cand.account,
                                &cand.model,
                                attempt_start.elapsed(),
                                Instant::now(),
                            );
                        }
                        timed_out |= matches!(f.kind, FailureKind::Timeout(_));
                        last = Some(f);
                    }
                    Attempt::Rejected(mut err, None) => {
                        err.message = secret.redactor().text(&err.message).into_owned();
                        // Fluxgate's own translation refused the request for this candidate (a
                        // forced built-in tool, an OpenAI-only `previous_response_id`, ...);
                        // a candidate of another dialect may still serve it.
                        tracing::info!(request_id = %req.request_id, provider = %cand.provider, detail = %err.message, "this candidate cannot take the request; trying the next");
                        rejection.get_or_insert(err);
                    }
                    Attempt::Rejected(mut err, failure) => {
                        err.message = secret.redactor().text(&err.message).into_owned();
                        outcome.record.error_class =
                            Some(ErrorClass::RequestInvalid.as_str().to_string());
                        if let Some(mut f) = failure {
                            redact_failure(&mut f, &secret);
                            self.health.report_failure(&cand.account, &f);
                            let more_targets = plan
                                .candidates
                                .iter()
                                .any(|c| c.target_index > cand.target_index);
                            if f.status == Some(404) && more_targets {
                                // The model may exist on the next target even if not on this one.
                                dead_targets.insert(cand.target_index);
                                last = Some(f);
                                continue;
                            }
                        }
                        let status = err.upstream.as_ref().map_or(err.code.status(), |(s, _)| *s);
                        outcome.finish(&self.log, status, Some(err.code));
                        return Err(err);
                    }
                }
            }
            if stopped || rejection.is_some() || req.endpoint == Endpoint::CountTokens {
                break;
            }
            // Timeouts are not retried in another round: a stalled upstream would multiply
            // the wait.
            let transient = attempts > round_start
                && !timed_out
                && last
                    .as_ref()
                    .is_some_and(|f| f.class == ErrorClass::UpstreamUnavailable);
            if transient && attempts < max_attempts && !plan.degraded {
                // Every key tried failed transiently (5xx, reset, in-band error) and attempts are
                // left: go round the keys still usable once more after a short pause.
                if Instant::now() + RETRY_PAUSE >= deadline {
                    break;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            } else if plan.degraded {
                break;
            } else {
                let Some(wait) = self.recovery_wait(&plan, &dead_targets, deadline, wait_left)
                else {
                    break;
                };
                tracing::info!(request_id = %req.request_id, route = %plan.route, wait_ms = wait.as_millis() as u64, "every key is cooling; waiting for the first to come back");
                tokio::time::sleep(wait).await;
                wait_left = wait_left.saturating_sub(wait);
            }
            match self.plan(
                &router,
                req.endpoint,
                &req.model,
                req.conversation,
                Some(&needs),
                req.client.as_deref(),
            ) {
                Ok(p) => plan = p,
                Err(_) => break,
            }
        }
        if req.endpoint == Endpoint::CountTokens {
            return self.local_count(&req, outcome);
        }
        if let (Some(err), None) = (rejection, &last) {
            outcome.record.error_class = Some(ErrorClass::RequestInvalid.as_str().to_string());
            outcome.finish(&self.log, err.code.status(), Some(err.code));
            return Err(err);
        }
        let err = match (attempts, over_budget.as_ref().or(plan.budget_refusal())) {
            (0, Some(e)) if last.is_none() => Self::budget_error(e),
            _ => self.exhausted(&plan, attempts, last, secret_error),
        };
        outcome.finish(&self.log, err.code.status(), Some(err.code));
        if err.code == ErrorCode::AllKeysCooling {
            self.publish_route_unavailable(&plan, err.retry_after_secs.unwrap_or(1));
        }
        Err(err)
    }

    /// Replaces an emulated `previous_response_id` with the stored conversation (for every
    /// candidate: no upstream knows Fluxgate's ids). Foreign ids are left for OpenAI.
    fn expand_previous(&self, req: &mut ProxyRequest) -> Result<(), ProxyError> {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
            return Ok(());
        };
        let Some(id) =
            responses::previous_response_id(&v).filter(|id| responses::is_emulated_id(id))
        else {
            return Ok(());
        };
        let prior = self
            .responses
            .as_ref()
            .and_then(|s| s.load_response(id, now_ms()).ok().flatten());
        let Some(serde_json::Value::Array(prior)) = prior else {
            return Err(ProxyError::new(
                ErrorCode::InvalidRequest,
                format!("Previous response with id '{id}' not found. Fluxgate keeps emulated responses for 30 days, and only those created with `store` on."),
            ));
        };
        let expanded = responses::expand(&v, &prior);
        let body = serde_json::to_vec(&expanded)
            .map_err(|e| ProxyError::new(ErrorCode::Internal, e.to_string()))?;
        req.body = Bytes::from(body);
        req.model_span = read_head(&req.body).ok().and_then(|h| h.model_span);
        Ok(())
    }

    /// Answers `count_tokens` with a local estimate (marked `x-fluxgate-estimate: local`).
    fn local_count(
        &self,
        req: &ProxyRequest,
        outcome: Outcome,
    ) -> Result<ProxyResponse, ProxyError> {
        match estimate::count(req.dialect, &req.body) {
            Ok(n) => {
                outcome.finish(&self.log, 200, None);
                let mut headers = HeaderMap::new();
                headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                headers.insert(
                    "x-fluxgate-estimate",
                    http::HeaderValue::from_static("local"),
                );
                Ok(ProxyResponse::Complete {
                    status: 200,
                    headers,
                    body: Bytes::from(format!("{{\"input_tokens\":{n}}}")),
                })
            }
            Err(e) => {
                let err = ProxyError::new(ErrorCode::InvalidRequest, e.to_string());
                outcome.finish(&self.log, err.code.status(), Some(err.code));
                Err(err)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        secret: &crate::secrets::SecretValue,
        timeouts: &Timeouts,
        deadline: Instant,
        attempts: u32,
        record: RequestRecord,
        request_started: Instant,
        reservation: &mut Option<Reservation>,
    ) -> Attempt {
        let mut keep = None;
        let mut hints = None;
        let body = match &cand.codec {
            Codec::Passthrough => passthrough_body(req, &cand.model),
            Codec::Translated(t) => {
                let target = Target {
                    model: &cand.model,
                    stream: req.stream,
                    vendor: cand.upstream.vendor(),
                    now: (now_ms() / 1000) as u64,
                };
                t.request(&req.body, &target)
                    .map(|tr| {
                        if !tr.notes.is_empty() {
                            tracing::warn!(request_id = %req.request_id, provider = %cand.provider, from = req.dialect.as_str(), to = cand.upstream_endpoint.dialect().as_str(), notes = %tr.notes.join("; "), "translated with losses");
                        }
                        let mut h = tr.hints;
                        h.id_seed.clone_from(&req.request_id);
                        hints = Some(h);
                        keep = tr.keep_input.zip(self.responses.clone());
                        tr.body
                    })
                    .map_err(|e| e.to_string())
            }
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                return Attempt::Rejected(ProxyError::new(ErrorCode::InvalidRequest, e), None)
            }
        };
        let url = match cand
            .upstream
            .attempt_url(cand.upstream_endpoint, &cand.model, req.stream)
            .map_err(|e| e.to_string())
            .and_then(|u| match u {
                None => Ok(cand.url.clone()),
                Some(u) => u.parse::<http::Uri>().map_err(|e| e.to_string()),
            }) {
            Ok(u) => u,
            Err(e) => {
                return Attempt::Rejected(
                    ProxyError::new(ErrorCode::InvalidRequest, format!("`{}`: {e}", cand.model)),
                    None,
                )
            }
        };
        let mut headers = req.headers.clone();
        cand.upstream.authorize(&mut headers, secret);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        let send = self.client.send(http::Method::POST, url, headers, body);
        let first_byte = timeouts
            .first_byte
            .min(deadline.saturating_duration_since(Instant::now()));
        let resp = match tokio::time::timeout(first_byte, send).await {
            Err(_) => {
                return Attempt::Failed(Failure::transport(
                    FailureKind::Timeout(TimeoutPhase::FirstByte),
                    format!("no response within {:.1} s", first_byte.as_secs_f64()),
                ))
            }
            Ok(Err(e)) => return Attempt::Failed(transport_failure(&e)),
            Ok(Ok(r)) => r,
        };
        // Everything the upstream sends back is cleaned of the key before it is read, kept,
        // logged or answered: its headers here, its bodies and stream events as they arrive.
        let redactor = secret.redactor();
        let status = resp.status().as_u16();
        let up_headers = headers::redact(resp.headers(), redactor);
        self.signals
            .observe_headers(&cand.account, &up_headers, Instant::now());
        if status >= 300 {
            let body = read_limited(resp, MAX_ERROR_BYTES, timeouts.idle, deadline)
                .await
                .map(|b| redactor.owned(b))
                .unwrap_or_default();
            let f = health::classify_status(status, &up_headers, &body, SystemTime::now());
            if f.class == ErrorClass::RequestInvalid {
                let mut err = ProxyError::new(ErrorCode::RequestInvalid, f.message.clone());
                if matches!(cand.codec, Codec::Passthrough) {
                    err.upstream = Some((status, body));
                }
                return Attempt::Rejected(err, Some(f));
            }
            return Attempt::Failed(f);
        }
        let client_dialect = req.dialect;
        let upstream_dialect = cand.upstream_endpoint.dialect();
        let is_sse = up_headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if req.stream && is_sse {
            let ctx = stream::StreamContext {
                client_dialect,
                upstream_dialect,
                codec: cand.codec.clone(),
                hints: hints.unwrap_or_default(),
                keep,
                account: cand.account.clone(),
                provider: cand.provider.clone(),
                key_id: cand.key_id.clone(),
                attempts,
                timeouts: timeouts.clone(),
                deadline,
                health: self.health.clone(),
                log: self.log.clone(),
                record,
                request_started,
                prices: cand.info.as_ref().and_then(|i| i.prices),
                reservation: reservation.take(),
                cut: self.cut.subscribe(),
                secret: secret.clone(),
            };
            return stream::commit(resp, up_headers, ctx).await;
        }
        let body = match read_limited(resp, MAX_RESPONSE_BYTES, timeouts.idle, deadline).await {
            Ok(b) => redactor.owned(b),
            Err(f) => return Attempt::Failed(f),
        };
        if body.iter().all(|b| b.is_ascii_whitespace()) {
            return Attempt::Failed(health::empty_response("an empty body"));
        }
        let check = match check_body(upstream_dialect, &body) {
            Ok(c) => c,
            Err(_) => {
                let what = if body.trim_ascii_start().starts_with(b"<") {
                    "an HTML page"
                } else {
                    "a body that is not a JSON object"
                };
                return Attempt::Failed(health::empty_response(what));
            }
        };
        if let Some(err) = &check.error {
            if let Some(f) = health::classify_in_band(err, &up_headers, SystemTime::now()) {
                return Attempt::Failed(f);
            }
        }
        let body = match &cand.codec {
            Codec::Passthrough => body,
            Codec::Translated(t) => match t.response(&body, &hints.unwrap_or_default()) {
                Ok(b) => {
                    // Translation decodes escapes the raw scan could not see through.
                    let b = redactor.owned(b);
                    if let Some((items, store)) = keep {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                            keep_response(&store, items, &v);
                        }
                    }
                    b
                }
                Err(e) => {
                    return Attempt::Failed(Failure::transport(FailureKind::Empty, e.to_string()))
                }
            },
        };
        let usage = check.usage.unwrap_or_default();
        let mut headers = headers::downstream_headers(&up_headers);
        headers::annotate(&mut headers, &cand.provider, &cand.key_id, attempts);
        if matches!(cand.codec, Codec::Translated(_)) {
            headers::annotate_translation(&mut headers, req.dialect, upstream_dialect);
        }
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Attempt::Done(
            ProxyResponse::Complete {
                status,
                headers,
                body,
            },
            usage,
        )
    }
}

/// Stores an emulated response's conversation (its input items, then its output).
pub(crate) fn keep_response(
    store: &Store,
    mut items: Vec<serde_json::Value>,
    response: &serde_json::Value,
) {
    let Some(id) = response.get("id").and_then(|i| i.as_str()) else {
        return;
    };
    items.extend(responses::output_items(response));
    if let Err(e) = store.save_response(id, &serde_json::Value::Array(items), now_ms()) {
        tracing::warn!(error = %e, "cannot store the response for previous_response_id");
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

/// The body of a same-dialect attempt: the client's bytes with the model rewritten (Gemini
/// names the model in the URL, not the body) and foreign reasoning artefacts removed.
fn passthrough_body(req: &ProxyRequest, model: &str) -> Result<Bytes, String> {
    let stripped = strip_foreign_artefacts(req.dialect, &req.body);
    if req.endpoint == Endpoint::GenerateContent {
        return Ok(stripped.unwrap_or_else(|| req.body.clone()));
    }
    match stripped {
        Some(b) => rewrite_model(&b, model).map_err(|e| e.to_string()),
        None if req.model == model => Ok(req.body.clone()),
        None => replace_model(&req.body, req.model_span, model).map_err(|e| e.to_string()),
    }
}

/// Blanks the key out of a failure's message (text decoded from the upstream's answer).
pub fn redact_failure(f: &mut Failure, secret: &crate::secrets::SecretValue) {
    if let std::borrow::Cow::Owned(m) = secret.redactor().text(&f.message) {
        f.message = m;
    }
}

/// Classifies a transport error without its URL.
pub fn transport_failure(e: &TransportError) -> Failure {
    let detail = health::scrub(&e.detail);
    if e.connect && e.timed_out {
        Failure::transport(
            FailureKind::Timeout(TimeoutPhase::Connect),
            format!("cannot connect to the upstream: {detail}"),
        )
    } else if e.connect {
        Failure::transport(
            FailureKind::Connect,
            format!("cannot connect to the upstream: {detail}"),
        )
    } else {
        Failure::transport(
            FailureKind::Reset,
            format!("the connection to the upstream failed: {detail}"),
        )
    }
}

/// Classifies an error while reading a response body.
pub fn body_failure(e: &hyper::Error) -> Failure {
    let mut detail = e.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        detail = s.to_string();
        src = s.source();
    }
    Failure::transport(
        FailureKind::Reset,
        format!(
            "the connection to the upstream failed: {}",
            health::scrub(&detail)
        ),
    )
}

/// Reads a body up to `limit` bytes with idle and total deadlines.
async fn read_limited(
    resp: http::Response<hyper::body::Incoming>,
    limit: usize,
    idle: Duration,
    deadline: Instant,
) -> Result<Bytes, Failure> {
    let mut stream: BodyStream = body_stream(resp);
    let mut buf = bytes::BytesMut::new();
    loop {
        let wait = idle.min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(wait, stream.next()).await {
            Err(_) => {
                let phase = if Instant::now() >= deadline {
                    TimeoutPhase::Total
                } else {
                    TimeoutPhase::Idle
                };
                return Err(Failure::transport(
                    FailureKind::Timeout(phase),
                    format!("the upstream stopped sending ({} timeout)", phase.as_str()),
                ));
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(body_failure(&e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(Failure::transport(
                        FailureKind::Empty,
                        format!("the upstream response exceeded {limit} bytes"),
                    ));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}
