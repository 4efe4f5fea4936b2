//! One attempt at one candidate, in three steps: **prepare** (the body in the upstream's
//! dialect, its URL, the key in its headers; no I/O), **send** (through the [`Upstream`](super::Upstream), up
//! to the first-byte deadline) and **interpret** (the status, the body or the stream's first
//! content, classified by `health`). Each step's failure is a value the executor's request
//! state takes in; nothing here decides whether to fail over.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::request::Outcome;
use super::upstream::{BodyStream, Inbound, Outbound};
use super::{headers, stream, Executor, ProxyError, ProxyRequest, ProxyResponse};
use crate::budgets::Reservation;
use crate::config::Timeouts;
use crate::formats::body::{replace_model, rewrite_model};
use crate::formats::chat_usage::ask_for_usage;
use crate::formats::errors::ErrorCode;
use crate::formats::inspect::{check_body, Usage};
use crate::formats::translate::{strip_foreign_artefacts, ClientHints, Codec, Target};
use crate::formats::Endpoint;
use crate::health::{self, transport, ErrorClass, Failure, TimeoutPhase};
use crate::routing::Candidate;
use crate::secrets::SecretValue;
use crate::store::Conversations;

/// The largest non-streaming upstream response accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// How much of an error response is read for classification.
const MAX_ERROR_BYTES: usize = 256 * 1024;

/// What one attempt produced.
pub(super) enum Attempt {
    Done(ProxyResponse, Usage),
    Failed(Failure),
    /// The request itself was rejected: by the upstream (with the classified failure, for
    /// health) or by its own translation (no failure: no key is at fault). Goes to the client.
    Rejected(ProxyError, Option<Failure>),
}

/// What an attempt needs to know about the request around it.
pub(super) struct AttemptContext<'a> {
    pub timeouts: &'a Timeouts,
    pub deadline: Instant,
    /// This attempt's number (1 for the first).
    pub number: u32,
    /// The request's record so far (a committed stream finishes it).
    pub outcome: Outcome,
    /// The proxy the key's requests go through.
    pub via: Option<super::egress::Via>,
}

/// A request ready for one candidate.
pub(super) struct Prepared {
    pub out: Outbound,
    /// What the client asked for that the upstream's answer must be shaped back into.
    pub hints: ClientHints,
    /// For an emulated Responses conversation: the input items to keep with the answer.
    pub keep: Option<(Vec<serde_json::Value>, Arc<dyn Conversations>)>,
}

impl Executor {
    /// One attempt: prepare, send, interpret.
    pub(super) async fn attempt(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        secret: &SecretValue,
        ctx: AttemptContext<'_>,
        reservation: impl FnOnce() -> Option<Reservation>,
    ) -> Attempt {
        let prepared = match self.prepare(req, cand, secret) {
            Ok(p) => p,
            Err(e) => return Attempt::Rejected(e, None),
        };
        let Prepared {
            mut out,
            hints,
            keep,
        } = prepared;
        out.via = ctx.via.clone();
        let inbound = match self.send(out, ctx.timeouts, ctx.deadline).await {
            Ok(r) => r,
            Err(f) => return Attempt::Failed(f),
        };
        self.interpret(req, cand, secret, inbound, hints, keep, ctx, reservation)
            .await
    }

    /// The body, URL and headers for `cand`; an error when the request cannot be carried to
    /// it (a translation refusal or a model name that cannot be put in its URL).
    pub(super) fn prepare(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        secret: &SecretValue,
    ) -> Result<Prepared, ProxyError> {
        let mut keep = None;
        let mut hints = ClientHints::default();
        let body = match &cand.codec {
            Codec::Passthrough => passthrough_body(req, &cand.model).map(|body| {
                // A Chat stream reports usage only when asked; ask, and hide it again.
                let asks = req.stream
                    && req.endpoint == Endpoint::ChatCompletions
                    && cand.upstream.vendor() != crate::formats::translate::Vendor::Mistral;
                match asks.then(|| ask_for_usage(&body)).flatten() {
                    Some(asked) => {
                        hints.hide_usage = true;
                        asked
                    }
                    None => body,
                }
            }),
            Codec::Translated(t) => {
                let target = Target {
                    model: &cand.model,
                    stream: req.stream,
                    vendor: cand.upstream.vendor(),
                    now: (super::request::now_ms() / 1000) as u64,
                };
                t.request(&req.body, &target)
                    .map(|tr| {
                        if !tr.notes.is_empty() {
                            tracing::warn!(request_id = %req.request_id, provider = %cand.provider, from = req.dialect.as_str(), to = cand.upstream_endpoint.dialect().as_str(), notes = %tr.notes.join("; "), "translated with losses");
                        }
                        hints = tr.hints;
                        hints.id_seed.clone_from(&req.request_id);
                        keep = tr.keep_input.zip(self.responses.clone());
                        tr.body
                    })
                    .map_err(|e| e.to_string())
            }
        }
        .map_err(|e| ProxyError::new(ErrorCode::InvalidRequest, e))?;
        let url = cand
            .upstream
            .attempt_url(cand.upstream_endpoint, &cand.model, req.stream)
            .map_err(|e| e.to_string())
            .and_then(|u| match u {
                None => Ok(cand.url.clone()),
                Some(u) => u.parse::<http::Uri>().map_err(|e| e.to_string()),
            })
            .map_err(|e| {
                ProxyError::new(ErrorCode::InvalidRequest, format!("`{}`: {e}", cand.model))
            })?;
        let mut headers = req.headers.clone();
        cand.upstream.authorize(&mut headers, secret);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        Ok(Prepared {
            out: Outbound {
                method: http::Method::POST,
                url,
                headers,
                body,
                via: None,
            },
            hints,
            keep,
        })
    }

    /// Sends, waiting for the response head until the first-byte timeout or the deadline.
    pub(super) async fn send(
        &self,
        out: Outbound,
        timeouts: &Timeouts,
        deadline: Instant,
    ) -> Result<Inbound, Failure> {
        let first_byte = timeouts
            .first_byte
            .min(deadline.saturating_duration_since(Instant::now()));
        match tokio::time::timeout(first_byte, self.upstream.send(out)).await {
            Err(_) => Err(transport::no_response(first_byte)),
            Ok(Err(e)) => Err(transport::transport(&e)),
            Ok(Ok(r)) => Ok(r),
        }
    }

    /// Reads and classifies the answer: an error status, a stream committed at its first
    /// content (see [`stream`]), or a complete body checked and translated back.
    #[expect(clippy::too_many_arguments)]
    pub(super) async fn interpret(
        &self,
        req: &ProxyRequest,
        cand: &Candidate,
        secret: &SecretValue,
        inbound: Inbound,
        hints: ClientHints,
        keep: Option<(Vec<serde_json::Value>, Arc<dyn Conversations>)>,
        ctx: AttemptContext<'_>,
        reservation: impl FnOnce() -> Option<Reservation>,
    ) -> Attempt {
        // Everything the upstream sends back is cleaned of the key before it is read, kept,
        // logged or answered: its headers here, its bodies and stream events as they arrive.
        let redactor = secret.redactor();
        let status = inbound.status;
        let up_headers = headers::redact(&inbound.headers, redactor);
        self.signals
            .observe_headers(&cand.account, &up_headers, Instant::now());
        if status >= 300 {
            let body = read_limited(
                inbound.body,
                MAX_ERROR_BYTES,
                ctx.timeouts.idle,
                ctx.deadline,
            )
            .await
            .map(|b| redactor.owned(b))
            .unwrap_or_default();
            let f = health::classify_status(status, &up_headers, &body, crate::clock::wall());
            if f.class == ErrorClass::RequestInvalid {
                let mut err = ProxyError::new(ErrorCode::RequestInvalid, f.message.clone());
                if matches!(cand.codec, Codec::Passthrough) {
                    err.upstream = Some((status, body));
                }
                return Attempt::Rejected(err, Some(f));
            }
            return Attempt::Failed(f);
        }
        let upstream_dialect = cand.upstream_endpoint.dialect();
        let is_sse = up_headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if req.stream && is_sse {
            let sctx = stream::StreamContext {
                client_dialect: req.dialect,
                upstream_dialect,
                codec: cand.codec.clone(),
                hints,
                keep,
                account: cand.account.clone(),
                provider: cand.provider.clone(),
                key_id: cand.key_id.clone(),
                attempts: ctx.number,
                timeouts: ctx.timeouts.clone(),
                deadline: ctx.deadline,
                health: self.health.clone(),
                log: self.log.clone(),
                outcome: ctx.outcome,
                prices: cand.info.as_ref().and_then(|i| i.prices),
                estimate: (cand.est_tokens, cand.est_cost),
                reservation: None,
                cut: self.cut.subscribe(),
                secret: secret.clone(),
            };
            return stream::commit(inbound.body, up_headers, sctx, reservation).await;
        }
        let body = match read_limited(
            inbound.body,
            MAX_RESPONSE_BYTES,
            ctx.timeouts.idle,
            ctx.deadline,
        )
        .await
        {
            Ok(b) => redactor.owned(b),
            Err(f) => return Attempt::Failed(f),
        };
        let check = match check_body(upstream_dialect, &body) {
            Ok(c) if !transport::is_blank(&body) => c,
            _ => return Attempt::Failed(transport::unusable_body(&body)),
        };
        if let Some(err) = &check.error {
            if let Some(f) = health::classify_in_band(err, &up_headers, crate::clock::wall()) {
                return Attempt::Failed(f);
            }
        }
        let body = match &cand.codec {
            Codec::Passthrough => body,
            Codec::Translated(t) => match t.response(&body, &hints) {
                Ok(b) => {
                    // Translation decodes escapes the raw scan could not see through.
                    let b = redactor.owned(b);
                    if let Some((items, store)) = keep {
                        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&b) {
                            super::conversation::keep_response(store.as_ref(), items, &v);
                        }
                    }
                    b
                }
                Err(e) => return Attempt::Failed(transport::unreadable(e)),
            },
        };
        let usage = check.usage.unwrap_or_default();
        let mut headers = headers::downstream_headers(&up_headers);
        headers::annotate(&mut headers, &cand.provider, &cand.key_id, ctx.number);
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

/// Reads a body up to `limit` bytes with idle and total deadlines.
pub(super) async fn read_limited(
    mut stream: BodyStream,
    limit: usize,
    idle: Duration,
    deadline: Instant,
) -> Result<Bytes, Failure> {
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
                return Err(transport::stalled(phase));
            }
            Ok(None) => return Ok(buf.freeze()),
            Ok(Some(Err(e))) => return Err(transport::body_broken(&e)),
            Ok(Some(Ok(chunk))) => {
                if buf.len() + chunk.len() > limit {
                    return Err(transport::oversize(limit));
                }
                buf.extend_from_slice(&chunk);
            }
        }
    }
}
