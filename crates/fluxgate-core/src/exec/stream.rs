//! The stream commit rule.
//!
//! Before commit, upstream events are held (bounded by the first-byte timeout and
//! [`COMMIT_MAX_BYTES`]) until the first real content event; any failure in that window,
//! including a 200 whose first event is an in-band error, is an ordinary failed attempt and
//! the executor fails over. At commit the held events go to the client and a pump task takes
//! over: it forwards complete events as they arrive, and after the first byte it never asks
//! the executor for another attempt. If the upstream breaks, stalls or ends without its
//! terminator, the client's stream ends with an error event in the client's dialect and no
//! success terminator. If the client goes away, the upstream request is dropped at once.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::attempt::Attempt;
use super::request::Outcome;
use super::upstream::BodyStream;
use super::{headers, ProxyResponse};
use crate::config::Timeouts;
use crate::formats::chat_usage;
use crate::formats::errors::{stream_error_event, ErrorCode};
use crate::formats::inspect::{inspect, EventKind, Usage};
use crate::formats::sse::{SseEvent, SseParser};
use crate::formats::translate::{ClientHints, Codec, StreamTranslator};
use crate::formats::Dialect;
use crate::health::{self, transport, Failure, FailureKind, HealthRegistry, TimeoutPhase};
use crate::record::AttemptOutcome;
use crate::recorder::Recorder;
use crate::secrets::{Redactor, SecretValue};
use crate::store::Conversations;

/// Held bytes past which a stream commits even without a content event.
pub const COMMIT_MAX_BYTES: usize = 256 * 1024;

pub(super) struct StreamContext {
    pub client_dialect: Dialect,
    pub upstream_dialect: Dialect,
    pub codec: Codec,
    pub hints: ClientHints,
    /// For an emulated Responses stream: the input items to store with the final response.
    pub keep: Option<(Vec<serde_json::Value>, Arc<dyn Conversations>)>,
    pub account: String,
    pub provider: String,
    pub key_id: String,
    pub attempts: u32,
    pub timeouts: Timeouts,
    pub deadline: Instant,
    pub health: Arc<HealthRegistry>,
    pub log: Recorder,
    /// The request's record so far; finished when the stream ends.
    pub outcome: Outcome,
    /// The model's prices, to cost the stream's usage.
    pub prices: Option<crate::catalogue::Prices>,
    /// The tokens and cost estimated before sending (counted when the stream reports none).
    pub estimate: (u64, Option<f64>),
    /// The request's budget reservation, released when the stream has been recorded.
    pub reservation: Option<crate::budgets::Reservation>,
    /// Becomes true when the server's drain time is up.
    pub cut: tokio::sync::watch::Receiver<bool>,
    /// The key this attempt sent: every event is cleaned of it before it is read.
    pub secret: SecretValue,
}

/// The upstream's events with the key blanked out of them (see [`Redactor`]); an event that
/// held it is parsed again from its cleaned bytes.
fn redact_events(events: Vec<SseEvent>, redactor: &Redactor) -> Vec<SseEvent> {
    if !events.iter().any(|e| redactor.finds(&e.raw)) {
        return events;
    }
    events
        .into_iter()
        .filter_map(|e| match redactor.bytes(&e.raw) {
            std::borrow::Cow::Borrowed(_) => Some(e),
            std::borrow::Cow::Owned(clean) => SseEvent::parse(Bytes::from(clean)),
        })
        .collect()
}

/// Turns upstream events into client bytes: unchanged (but for the usage Fluxgate asked for
/// and the client did not), or through a translator.
enum Output {
    Passthrough { hide_usage: bool },
    Translated(Box<dyn StreamTranslator>),
}

impl Output {
    /// The `sequence_number` for an error event after `seen`'s last one.
    fn next_sequence(&self, seen: &Seen) -> Option<u64> {
        match self {
            Output::Passthrough { .. } => seen.sequence_number.map(|s| s + 1),
            Output::Translated(t) => t.sequence_number(),
        }
    }

    /// Appends what the client gets for `ev` (already cleaned of the key) to `out`. A
    /// translator decodes JSON, so its output is cleaned once more.
    fn push(
        &mut self,
        ev: &SseEvent,
        out: &mut BytesMut,
        redactor: &Redactor,
    ) -> Result<(), String> {
        match self {
            Output::Passthrough { hide_usage: false } => {
                out.extend_from_slice(&ev.raw);
                Ok(())
            }
            Output::Passthrough { hide_usage: true } => {
                if !chat_usage::is_usage_chunk(&ev.data) {
                    chat_usage::push_without_null_usage(&ev.raw, out);
                }
                Ok(())
            }
            Output::Translated(t) => {
                for b in t.event(ev).map_err(|e| e.to_string())? {
                    out.extend_from_slice(&redactor.bytes(&b));
                }
                Ok(())
            }
        }
    }
}

/// What the stream has seen so far.
struct Seen {
    usage: Usage,
    sequence_number: Option<u64>,
    terminated: bool,
}

impl Seen {
    fn note(&mut self, usage: Option<Usage>, seq: Option<u64>) {
        if let Some(u) = usage {
            self.usage.merge(u);
        }
        if seq.is_some() {
            self.sequence_number = seq;
        }
    }
}

fn in_band_failure(v: &serde_json::Value, redactor: &Redactor) -> Failure {
    let mut f = health::classify_in_band(v, &HeaderMap::new(), crate::clock::wall())
        .unwrap_or_else(|| Failure::transport(FailureKind::InBand, "an in-band error event"));
    // The message was decoded from JSON: escapes the byte scan could not see through are gone.
    if let std::borrow::Cow::Owned(m) = redactor.text(&f.message) {
        f.message = m;
    }
    f
}

/// Waits for the first content event; returns the committed stream or a failure.
pub(super) async fn commit(
    mut body: BodyStream,
    up_headers: HeaderMap,
    mut ctx: StreamContext,
    reservation: impl FnOnce() -> Option<crate::budgets::Reservation>,
) -> Attempt {
    let mut parser = SseParser::new();
    let mut output = match &ctx.codec {
        Codec::Passthrough => Output::Passthrough {
            hide_usage: ctx.hints.hide_usage,
        },
        Codec::Translated(t) => Output::Translated(t.stream(&ctx.hints)),
    };
    let mut held = BytesMut::new();
    let mut seen = Seen {
        usage: Usage::default(),
        sequence_number: None,
        terminated: false,
    };
    let redactor = ctx.secret.redactor();
    let commit_by = (Instant::now() + ctx.timeouts.first_byte).min(ctx.deadline);
    let mut committed = false;
    let mut ended = false;
    while !committed {
        let now = Instant::now();
        let wait = ctx
            .timeouts
            .idle
            .min(commit_by.saturating_duration_since(now));
        let next = tokio::time::timeout(wait, body.next()).await;
        let events = match next {
            Err(_) => {
                let phase = if Instant::now() >= ctx.deadline {
                    TimeoutPhase::Total
                } else {
                    TimeoutPhase::FirstByte
                };
                return Attempt::Failed(transport::no_content(phase));
            }
            Ok(Some(Err(e))) => return Attempt::Failed(transport::body_broken(&e)),
            Ok(None) => {
                ended = true;
                parser.finish().into_iter().collect()
            }
            Ok(Some(Ok(chunk))) => match parser.feed(&chunk) {
                Ok(evs) => evs,
                Err(e) => return Attempt::Failed(transport::unreadable(e)),
            },
        };
        let events = redact_events(events, redactor);
        for ev in &events {
            let ins = inspect(ctx.upstream_dialect, ev, false);
            seen.note(ins.usage, ins.sequence_number);
            match ins.kind {
                EventKind::Error(v) => return Attempt::Failed(in_band_failure(&v, redactor)),
                EventKind::Preamble => {}
                EventKind::Content => committed = true,
                EventKind::Terminator => {
                    committed = true;
                    seen.terminated = true;
                }
            }
            if let Err(e) = output.push(ev, &mut held, redactor) {
                return Attempt::Failed(transport::unreadable(e));
            }
        }
        if held.len() + parser.pending() > COMMIT_MAX_BYTES {
            committed = true;
        }
        if ended && !committed {
            return Attempt::Failed(transport::empty_response(
                "a stream that ended before any content",
            ));
        }
    }

    // Committed: the stream holds the request's reservation until it is recorded.
    ctx.reservation = reservation();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    ctx.outcome.sent(&held);
    // The channel is empty, so the first send cannot fail for lack of room.
    let _ = tx.try_send(held.freeze());
    let committed_at = Instant::now();
    let mut headers = headers::downstream_headers(&up_headers);
    headers::annotate(&mut headers, &ctx.provider, &ctx.key_id, ctx.attempts);
    if matches!(ctx.codec, Codec::Translated(_)) {
        headers::annotate_translation(&mut headers, ctx.client_dialect, ctx.upstream_dialect);
    }
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache"),
    );
    let usage = seen.usage;
    // The pump outlives the handler; it keeps the request's span (and so its request id).
    tokio::spawn(tracing::Instrument::in_current_span(pump(
        body,
        parser,
        output,
        seen,
        tx,
        ctx,
        committed_at,
        ended,
    )));
    Attempt::Done(ProxyResponse::Stream { headers, body: rx }, usage)
}

/// How a committed stream ended.
enum End {
    Complete,
    ClientClosed,
    Broken(ErrorCode, Failure),
    /// Fluxgate is shutting down and the drain time is up.
    Cut,
}

#[expect(clippy::too_many_arguments)]
async fn pump(
    mut body: BodyStream,
    mut parser: SseParser,
    mut output: Output,
    mut seen: Seen,
    tx: mpsc::Sender<Bytes>,
    mut ctx: StreamContext,
    committed_at: Instant,
    mut upstream_ended: bool,
) {
    let mut cut = ctx.cut.clone();
    let redactor = ctx.secret.redactor();
    let end = loop {
        if upstream_ended {
            break if seen.terminated {
                End::Complete
            } else {
                End::Broken(
                    ErrorCode::StreamInterrupted,
                    Failure::transport(
                        FailureKind::Reset,
                        "the upstream ended the stream without finishing it",
                    ),
                )
            };
        }
        let wait = ctx
            .timeouts
            .idle
            .min(ctx.deadline.saturating_duration_since(Instant::now()));
        let next = tokio::select! {
            biased;
            _ = tx.closed() => break End::ClientClosed,
            _ = cut.wait_for(|c| *c) => break End::Cut,
            next = tokio::time::timeout(wait, body.next()) => next,
        };
        let events: Vec<SseEvent> = match next {
            Err(_) if seen.terminated => break End::Complete,
            Err(_) => {
                let phase = if Instant::now() >= ctx.deadline {
                    TimeoutPhase::Total
                } else {
                    TimeoutPhase::Idle
                };
                break End::Broken(
                    ErrorCode::UpstreamTimeout,
                    Failure::transport(
                        FailureKind::Timeout(phase),
                        format!("the upstream stream stalled ({} timeout)", phase.as_str()),
                    ),
                );
            }
            Ok(Some(Err(e))) if seen.terminated => {
                let _ = e;
                break End::Complete;
            }
            Ok(Some(Err(e))) => {
                break End::Broken(ErrorCode::StreamInterrupted, transport::body_broken(&e))
            }
            Ok(None) => {
                upstream_ended = true;
                parser.finish().into_iter().collect()
            }
            Ok(Some(Ok(chunk))) => match parser.feed(&chunk) {
                Ok(evs) => evs,
                Err(e) => {
                    break End::Broken(ErrorCode::StreamInterrupted, transport::unreadable(e))
                }
            },
        };
        let events = redact_events(events, redactor);
        let mut out = BytesMut::new();
        let mut broken = None;
        for ev in &events {
            let ins = inspect(ctx.upstream_dialect, ev, true);
            seen.note(ins.usage, ins.sequence_number);
            match ins.kind {
                EventKind::Error(v) => {
                    broken = Some(End::Broken(
                        ErrorCode::StreamInterrupted,
                        in_band_failure(&v, redactor),
                    ));
                    break;
                }
                EventKind::Terminator => seen.terminated = true,
                EventKind::Preamble | EventKind::Content => {}
            }
            if let Err(e) = output.push(ev, &mut out, redactor) {
                broken = Some(End::Broken(
                    ErrorCode::StreamInterrupted,
                    transport::unreadable(e),
                ));
                break;
            }
        }
        ctx.outcome.sent(&out);
        if !out.is_empty() && tx.send(out.freeze()).await.is_err() {
            break End::ClientClosed;
        }
        if let Some(b) = broken {
            break b;
        }
    };
    // Dropping the upstream body closes the upstream connection (cancelling it if unfinished).
    drop(body);
    let mut outcome = ctx.outcome;
    let first_byte = committed_at
        .saturating_duration_since(outcome.started)
        .as_millis() as u64;
    if let Some(a) = outcome.record.attempt_log.last_mut() {
        a.first_byte_ms = Some(first_byte.saturating_sub(a.at_ms));
    }
    match &end {
        End::Broken(_, failure) => outcome.close_failed(AttemptOutcome::Broke, failure),
        _ => outcome.close_attempt(AttemptOutcome::Served, Some(200), None),
    }
    let record = &mut outcome.record;
    record.error_class = None;
    record.ttfb_ms = Some(first_byte);
    record.tokens_in = seen.usage.input_tokens;
    record.tokens_out = seen.usage.output_tokens;
    record.tokens_cached = seen.usage.cached_tokens;
    record.cost_usd = super::admit::cost_of(&seen.usage, ctx.prices);
    super::admit::apply_estimate(record, &seen.usage, ctx.estimate);
    let code = match end {
        End::Complete => {
            if let (Some((items, store)), Output::Translated(t)) = (ctx.keep, &output) {
                if let Some(resp) = t.final_response() {
                    super::conversation::keep_response(store.as_ref(), items, resp);
                }
            }
            None
        }
        End::ClientClosed => {
            tracing::info!(request_id = %record.request_id, "client closed the stream; upstream request cancelled");
            Some(ErrorCode::ClientClosed)
        }
        End::Cut => {
            tracing::warn!(request_id = %record.request_id, "shutting down: ending a stream that outlasted the drain with an error event");
            let ev = stream_error_event(
                ctx.client_dialect,
                ErrorCode::ShuttingDown,
                "Fluxgate is shutting down and this answer did not finish in time; it is incomplete",
                output.next_sequence(&seen),
            );
            let _ = tx.send(ev).await;
            Some(ErrorCode::ShuttingDown)
        }
        End::Broken(code, failure) => {
            tracing::warn!(request_id = %record.request_id, provider = %ctx.provider, key = %ctx.key_id, detail = %failure.message, "stream broke after commit; ending it with an error event");
            ctx.health.report_failure(&ctx.account, &failure);
            let ev = stream_error_event(
                ctx.client_dialect,
                code,
                &format!(
                    "the upstream stream broke after it had started: {}",
                    failure.message
                ),
                output.next_sequence(&seen),
            );
            let _ = tx.send(ev).await;
            record.error_class = Some(failure.class);
            Some(code)
        }
    };
    outcome.finish(&ctx.log, 200, code);
    // The spend is settled now; the estimate no longer needs holding.
    drop(ctx.reservation);
}
