//! One client request as a value: what it has tried, what failed last, which targets are
//! ruled out, what it has reserved, and its record. Every change goes through a named
//! transition below, and the record is written in one place ([`Outcome::finish`]): by
//! [`RequestState::finish`] for every exit that is not a committed stream, by the stream's
//! pump when a committed stream ends.

use std::collections::HashSet;
use std::time::Duration;

pub(super) use crate::clock::now_ms;
use crate::clock::Instant;

use super::{ProxyError, ProxyRequest, ProxyResponse};
use crate::budgets::{Exceeded, Reservation};
use crate::config::KeepBodies;
use crate::formats::errors::ErrorCode;
use crate::health::{ErrorClass, Failure, FailureKind};
use crate::record::{short_error, AttemptOutcome, AttemptRecord, RequestRecord};
use crate::recorder::Recorder;
use crate::routing::Candidate;
use crate::secrets::SecretError;
use crate::store::BodiesToKeep;

/// A request's record while it runs, and when it started.
#[derive(Clone)]
pub(super) struct Outcome {
    pub started: Instant,
    pub record: RequestRecord,
    /// Its bodies, when its route keeps them (`keep_bodies_hours`).
    bodies: Option<Box<BodyCapture>>,
}

/// The bodies of a request whose route keeps them, cut to the route's limit as they pass.
#[derive(Clone)]
struct BodyCapture {
    keep: KeepBodies,
    request: bytes::Bytes,
    request_bytes: u64,
    response: Vec<u8>,
    response_bytes: u64,
}

impl Outcome {
    pub fn new(req: &ProxyRequest) -> Self {
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
            bodies: None,
        }
    }

    /// The route keeps bodies: the client's request body (cut to the limit) is kept, and
    /// what it is sent back from now on.
    pub fn keep_bodies(&mut self, keep: KeepBodies, request: &bytes::Bytes) {
        self.bodies = Some(Box::new(BodyCapture {
            keep,
            request: request.slice(..request.len().min(keep.max_bytes)),
            request_bytes: request.len() as u64,
            response: Vec::new(),
            response_bytes: 0,
        }));
    }

    /// Bytes the client was sent (kept up to the route's limit, when it keeps bodies).
    pub fn sent(&mut self, bytes: &[u8]) {
        if let Some(c) = &mut self.bodies {
            c.response_bytes += bytes.len() as u64;
            let room = c.keep.max_bytes.saturating_sub(c.response.len());
            c.response
                .extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
    }

    /// Milliseconds since the request arrived.
    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// An attempt at `cand` starts now (its entry in the attempt log).
    pub fn open_attempt(&mut self, cand: &Candidate) {
        let at_ms = self.now_ms();
        self.record.attempt_log.push(AttemptRecord {
            provider: cand.provider.clone(),
            key_id: cand.key_id.clone(),
            model: cand.model.clone(),
            proxy: cand.proxy.as_ref().map(|p| p.label.clone()),
            at_ms,
            ms: 0,
            first_byte_ms: None,
            outcome: AttemptOutcome::Pending,
            status: None,
            error_class: None,
            error: None,
        });
    }

    /// The attempt in flight has its first byte for the client (a complete answer, or a
    /// stream's commit).
    pub fn attempt_first_byte(&mut self) {
        let now = self.now_ms();
        if let Some(a) = self.pending_attempt() {
            a.first_byte_ms = Some(now.saturating_sub(a.at_ms));
        }
    }

    /// The attempt in flight ended as `outcome`; a failure's status, class and scrubbed text
    /// go with it.
    pub fn close_attempt(
        &mut self,
        outcome: AttemptOutcome,
        status: Option<u16>,
        failure: Option<(Option<ErrorClass>, &str)>,
    ) {
        let now = self.now_ms();
        if let Some(a) = self.pending_attempt() {
            a.ms = now.saturating_sub(a.at_ms);
            a.outcome = outcome;
            a.status = status;
            if let Some((class, text)) = failure {
                a.error_class = class;
                a.error = Some(short_error(text));
            }
        }
    }

    /// The attempt in flight ended with `f`.
    pub fn close_failed(&mut self, outcome: AttemptOutcome, f: &Failure) {
        self.close_attempt(outcome, f.status, Some((Some(f.class), &f.message)));
    }

    fn pending_attempt(&mut self) -> Option<&mut AttemptRecord> {
        self.record
            .attempt_log
            .last_mut()
            .filter(|a| a.outcome == AttemptOutcome::Pending)
    }

    /// Writes the record: the status the client saw, the error it was told, the time taken.
    /// The only place a request is recorded.
    pub fn finish(mut self, log: &Recorder, status: u16, code: Option<ErrorCode>) {
        self.record.status = status;
        if let Some(c) = code {
            self.record.error_code = Some(c);
        }
        self.record.latency_ms = self.started.elapsed().as_millis() as u64;
        if let Some(c) = self.bodies.take() {
            let ts_ms = self.record.ts_ms;
            log.keep_bodies(BodiesToKeep {
                request_id: self.record.request_id.clone(),
                ts_ms,
                expires_ms: ts_ms + i64::from(c.keep.hours) * 3_600_000,
                request: c.request,
                request_bytes: c.request_bytes,
                response: c.response,
                response_bytes: c.response_bytes,
            });
        }
        log.record(self.record);
    }
}

/// How a request's run ended.
pub(super) enum Exit {
    /// A complete answer (recorded by [`RequestState::finish`]).
    Answer(ProxyResponse),
    /// A committed stream: its pump records it when it ends.
    Streaming(ProxyResponse),
    /// Fluxgate's own error, or the upstream's refusal of the request itself.
    Refused(ProxyError),
}

/// What to do when a round over the plan's candidates is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterRound {
    /// Stop: answer with what the request has.
    Stop,
    /// Every key tried failed transiently: go round again after a short pause.
    Again,
    /// Nothing was usable: wait for the first key back, if that is soon enough.
    WaitForRecovery,
}

/// The state of one client request.
pub(super) struct RequestState {
    pub outcome: Outcome,
    /// Attempts sent upstream so far.
    pub attempts: u32,
    /// `attempts` when the current round began.
    round_start: u32,
    /// The last failure an upstream gave.
    pub last: Option<Failure>,
    /// A key that could not be read, when nothing else went wrong.
    pub secret_error: Option<SecretError>,
    /// Targets that answered 404 (the model is not there): no other key of theirs is tried.
    pub dead_targets: HashSet<usize>,
    /// Fluxgate's own translation refused the request for some candidate.
    pub rejection: Option<ProxyError>,
    /// A budget that kept a candidate out at admission.
    pub over_budget: Option<Exceeded>,
    /// An attempt timed out (timeouts are not retried in another round).
    timed_out: bool,
    /// How much of `retry.max_wait` is left for waiting on a cooling key.
    pub wait_left: Duration,
    /// The budget reservation of the attempt in flight (or of the answer being recorded).
    reserved: Option<Reservation>,
    /// Outbound proxies that failed this request: keys behind them are not tried again.
    failed_proxies: Vec<String>,
}

impl RequestState {
    pub fn new(req: &ProxyRequest, max_wait: Duration) -> Self {
        RequestState {
            outcome: Outcome::new(req),
            attempts: 0,
            round_start: 0,
            last: None,
            secret_error: None,
            dead_targets: HashSet::new(),
            rejection: None,
            over_budget: None,
            timed_out: false,
            wait_left: max_wait,
            reserved: None,
            failed_proxies: Vec::new(),
        }
    }

    pub fn begin_round(&mut self) {
        self.round_start = self.attempts;
    }

    /// Whether `cand` is still worth trying this round.
    pub fn may_try(&self, cand: &Candidate) -> bool {
        !self.dead_targets.contains(&cand.target_index)
    }

    /// A proxy failed this request.
    pub fn proxy_down(&mut self, label: &str) {
        if !self.failed_proxies.iter().any(|p| p == label) {
            self.failed_proxies.push(label.to_string());
        }
    }

    /// Whether the proxy `egress` goes through already failed this request.
    pub fn proxy_failed(&self, egress: &crate::config::proxy::Egress) -> bool {
        egress
            .proxy()
            .is_some_and(|p| self.failed_proxies.iter().any(|f| *f == p.label))
    }

    /// The candidate's proxy cannot be used (its password cannot be read): it is logged as
    /// an attempt that never went out (not counted in `attempts`).
    pub fn proxy_unusable(&mut self, cand: &Candidate) {
        self.outcome.open_attempt(cand);
    }

    /// The candidate's key could not be read.
    pub fn key_unreadable(&mut self, e: SecretError) {
        self.secret_error = Some(e);
    }

    /// A budget kept the candidate out at admission (the first one is reported).
    pub fn over_budget(&mut self, e: Exceeded) {
        self.over_budget.get_or_insert(e);
    }

    /// An attempt goes out to `cand`, holding `reservation` until it is settled or abandoned.
    pub fn begin_attempt(&mut self, cand: &Candidate, reservation: Option<Reservation>) -> u32 {
        self.attempts += 1;
        self.reserved = reservation;
        self.outcome.open_attempt(cand);
        let r = &mut self.outcome.record;
        r.attempts = self.attempts;
        r.provider = Some(cand.provider.clone());
        r.key_id = Some(cand.key_id.clone());
        r.upstream_model = Some(cand.model.clone());
        self.attempts
    }

    /// The reservation, for a stream that holds it until it is recorded.
    pub fn hand_over_reservation(&mut self) -> Option<Reservation> {
        self.reserved.take()
    }

    /// The attempt failed before anything reached the client: fail over.
    pub fn failed(&mut self, f: Failure) {
        self.reserved = None;
        let outcome = if f.kind == FailureKind::Proxy {
            AttemptOutcome::ProxyFailed
        } else {
            AttemptOutcome::Failed
        };
        self.outcome.close_failed(outcome, &f);
        self.outcome.record.error_class = Some(f.class);
        self.timed_out |= matches!(f.kind, FailureKind::Timeout(_));
        self.last = Some(f);
    }

    /// Fluxgate's translation cannot carry the request to this candidate; another dialect may.
    pub fn refused_by_translation(&mut self, err: ProxyError) {
        self.reserved = None;
        self.outcome.close_attempt(
            AttemptOutcome::NotTranslatable,
            None,
            Some((None, &err.message)),
        );
        self.rejection.get_or_insert(err);
    }

    /// The upstream refused the request itself (`request_invalid`). A 404 with later targets
    /// left rules this target out and fails over (the model may exist on the next one);
    /// anything else goes back to the client: `Some(err)`.
    pub fn rejected_by_upstream(
        &mut self,
        err: ProxyError,
        failure: Failure,
        target: usize,
        more_targets: bool,
    ) -> Option<ProxyError> {
        self.reserved = None;
        self.outcome.record.error_class = Some(ErrorClass::RequestInvalid);
        self.outcome
            .close_failed(AttemptOutcome::Rejected, &failure);
        if failure.status == Some(404) && more_targets {
            self.dead_targets.insert(target);
            self.last = Some(failure);
            return None;
        }
        Some(err)
    }

    /// What follows a round: `stopped` when the attempt limit, the deadline or the retry
    /// budget ended it early.
    pub fn after_round(
        &self,
        stopped: bool,
        count_tokens: bool,
        degraded: bool,
        max_attempts: u32,
    ) -> AfterRound {
        if stopped || self.rejection.is_some() || count_tokens {
            return AfterRound::Stop;
        }
        // Timeouts are not retried in another round: a stalled upstream would multiply the
        // wait.
        let transient = self.attempts > self.round_start
            && !self.timed_out
            && self
                .last
                .as_ref()
                .is_some_and(|f| f.class == ErrorClass::UpstreamUnavailable);
        if transient && self.attempts < max_attempts && !degraded {
            AfterRound::Again
        } else if degraded {
            AfterRound::Stop
        } else {
            AfterRound::WaitForRecovery
        }
    }

    /// The translation refusal to answer with, when no upstream failed.
    pub fn only_refusal(&mut self) -> Option<ProxyError> {
        if self.last.is_some() {
            return None;
        }
        let err = self.rejection.take()?;
        self.outcome.record.error_class = Some(ErrorClass::RequestInvalid);
        Some(err)
    }

    /// Records the request (unless a committed stream records itself), then releases what it
    /// reserved: the spend is settled by the record first, so the budget never shows neither.
    pub fn finish(mut self, log: &Recorder, exit: Exit) -> Result<ProxyResponse, ProxyError> {
        let reserved = self.reserved.take();
        let result = match exit {
            Exit::Streaming(resp) => return Ok(resp),
            Exit::Answer(resp) => {
                let status = match &resp {
                    ProxyResponse::Complete { status, body, .. } => {
                        self.outcome.sent(body);
                        *status
                    }
                    ProxyResponse::Stream { .. } => 200,
                };
                self.outcome.finish(log, status, None);
                Ok(resp)
            }
            Exit::Refused(err) => {
                let status = err.upstream.as_ref().map_or(err.code.status(), |(s, _)| *s);
                match &err.upstream {
                    Some((_, body)) => self.outcome.sent(body),
                    None => self.outcome.sent(
                        serde_json::json!({"error": {"type": err.code.as_str(), "message": err.message}})
                            .to_string()
                            .as_bytes(),
                    ),
                }
                self.outcome.finish(log, status, Some(err.code));
                Err(err)
            }
        };
        drop(reserved);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{Dialect, Endpoint};

    fn req() -> ProxyRequest {
        ProxyRequest {
            endpoint: Endpoint::ChatCompletions,
            dialect: Dialect::OpenaiChat,
            model: "m".into(),
            model_span: None,
            stream: false,
            body: bytes::Bytes::new(),
            headers: http::HeaderMap::new(),
            client: None,
            limits: None,
            request_id: "r".into(),
            conversation: None,
            tools: false,
            max_output: None,
        }
    }

    fn failure(class: ErrorClass, kind: FailureKind, status: Option<u16>) -> Failure {
        Failure {
            class,
            kind,
            status,
            message: "x".into(),
            retry_hint: None,
        }
    }

    #[test]
    fn rounds_repeat_only_after_transient_failures_with_attempts_left() {
        let unavailable = || {
            failure(
                ErrorClass::UpstreamUnavailable,
                FailureKind::Status(502),
                Some(502),
            )
        };
        let mut s = RequestState::new(&req(), Duration::ZERO);
        s.begin_round();
        assert_eq!(
            s.after_round(false, false, false, 4),
            AfterRound::WaitForRecovery,
            "nothing tried: wait for a key"
        );
        s.attempts = 1;
        s.failed(unavailable());
        assert_eq!(s.after_round(false, false, false, 4), AfterRound::Again);
        assert_eq!(s.after_round(true, false, false, 4), AfterRound::Stop);
        assert_eq!(s.after_round(false, true, false, 4), AfterRound::Stop);
        assert_eq!(s.after_round(false, false, true, 4), AfterRound::Stop);
        assert_eq!(
            s.after_round(false, false, false, 1),
            AfterRound::WaitForRecovery,
            "no attempts left"
        );
        s.failed(failure(
            ErrorClass::UpstreamUnavailable,
            FailureKind::Timeout(crate::health::TimeoutPhase::FirstByte),
            None,
        ));
        s.failed(unavailable());
        assert_eq!(
            s.after_round(false, false, false, 4),
            AfterRound::WaitForRecovery,
            "a timeout earlier in the request rules out another round"
        );
        let mut s = RequestState::new(&req(), Duration::ZERO);
        s.attempts = 1;
        s.failed(failure(
            ErrorClass::RateLimited,
            FailureKind::Status(429),
            Some(429),
        ));
        assert_eq!(
            s.after_round(false, false, false, 4),
            AfterRound::WaitForRecovery
        );
    }

    #[test]
    fn a_404_rules_out_its_target_only_while_others_remain() {
        let mut s = RequestState::new(&req(), Duration::ZERO);
        let err = || ProxyError::new(ErrorCode::RequestInvalid, "no such model");
        let f404 = || {
            failure(
                ErrorClass::RequestInvalid,
                FailureKind::Status(404),
                Some(404),
            )
        };
        assert!(s.rejected_by_upstream(err(), f404(), 0, true).is_none());
        assert!(s.dead_targets.contains(&0));
        assert!(s.rejected_by_upstream(err(), f404(), 1, false).is_some());
        let f400 = failure(
            ErrorClass::RequestInvalid,
            FailureKind::Status(400),
            Some(400),
        );
        assert!(s.rejected_by_upstream(err(), f400, 2, true).is_some());
    }

    #[test]
    fn a_translation_refusal_answers_only_when_no_upstream_failed() {
        let mut s = RequestState::new(&req(), Duration::ZERO);
        s.refused_by_translation(ProxyError::new(ErrorCode::InvalidRequest, "first"));
        s.refused_by_translation(ProxyError::new(ErrorCode::InvalidRequest, "second"));
        assert_eq!(s.after_round(false, false, false, 4), AfterRound::Stop);
        assert_eq!(s.only_refusal().map(|e| e.message), Some("first".into()));
        let mut s = RequestState::new(&req(), Duration::ZERO);
        s.refused_by_translation(ProxyError::new(ErrorCode::InvalidRequest, "first"));
        s.failed(failure(
            ErrorClass::UpstreamUnavailable,
            FailureKind::Reset,
            None,
        ));
        assert!(s.only_refusal().is_none());
    }
}
