//! Scripted faults and the response each produces.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream;
use serde::{Deserialize, Serialize};

use crate::{FakeState, Wire};

/// What the fake does with one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// A normal answer.
    Ok,
    /// An HTTP error with headers and body.
    Status {
        status: u16,
        #[serde(default)]
        headers: HashMap<String, String>,
        #[serde(default)]
        body: String,
    },
    /// 200, but the body (or the first stream event) is the vendor's in-band error.
    InBandError,
    /// 200 with an empty body.
    Empty200,
    /// 200 with an HTML page.
    Html200,
    /// A stream that breaks after `events` events (0: right after the headers).
    ResetAfter { events: u32 },
    /// A stream that sends `events` events and then goes silent for `ms`.
    StallAfter { events: u32, ms: u64 },
    /// No response headers for `ms`.
    StallBeforeHeaders { ms: u64 },
    /// A stream that ends cleanly after `events` events but without its terminator.
    TruncateAfter { events: u32 },
    /// A stream that sends `events` events, then the vendor's in-band error event.
    InBandErrorAfter { events: u32 },
    /// A redirect to `location`.
    Redirect { location: String },
    /// 200 whose body (or, for a stream, the event after `events` events) is the vendor's
    /// in-band error saying `message`.
    InBandSaying { events: u32, message: String },
}

impl Fault {
    pub fn name(&self) -> String {
        match self {
            Fault::Ok => "ok".into(),
            Fault::Status { status, .. } => format!("status_{status}"),
            Fault::InBandError => "in_band_error".into(),
            Fault::Empty200 => "empty_200".into(),
            Fault::Html200 => "html_200".into(),
            Fault::ResetAfter { events } => format!("reset_after_{events}"),
            Fault::StallAfter { events, .. } => format!("stall_after_{events}"),
            Fault::StallBeforeHeaders { .. } => "stall_before_headers".into(),
            Fault::TruncateAfter { events } => format!("truncate_after_{events}"),
            Fault::InBandErrorAfter { events } => format!("in_band_error_after_{events}"),
            Fault::Redirect { .. } => "redirect".into(),
            Fault::InBandSaying { events, .. } => format!("in_band_saying_after_{events}"),
        }
    }

    /// A hostile upstream: `{KEY}` in a scripted body, header or message becomes the key the
    /// request carried (so tests can check it never travels further).
    pub(crate) fn echoing(self, key: Option<&str>) -> Fault {
        let Some(key) = key else { return self };
        let fill = |s: String| s.replace("{KEY}", key);
        match self {
            Fault::Status {
                status,
                headers,
                body,
            } => Fault::Status {
                status,
                headers: headers.into_iter().map(|(k, v)| (k, fill(v))).collect(),
                body: fill(body),
            },
            Fault::InBandSaying { events, message } => Fault::InBandSaying {
                events,
                message: fill(message),
            },
            other => other,
        }
    }

    pub fn status(status: u16) -> Fault {
        Fault::Status {
            status,
            headers: HashMap::new(),
            body: String::new(),
        }
    }

    pub fn status_with(status: u16, headers: &[(&str, &str)], body: &str) -> Fault {
        Fault::Status {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: body.to_string(),
        }
    }
}

pub(crate) struct Ctx {
    /// The emulated prompt cache already holds this conversation's prefix for this key.
    pub cached: bool,
    /// Anthropic with `thinking` enabled: the answer opens with a signed thinking block.
    pub thinking: bool,
    pub state: Arc<FakeState>,
    pub id: u64,
    pub test_id: Option<String>,
    pub model: String,
    pub stream: bool,
    pub wire: Wire,
    pub answer: crate::model::Answer,
    /// OpenAI Chat: the request's `stream_options.include_usage` (the real API streams usage
    /// only when asked). True for the other dialects, which always report it.
    pub usage: bool,
}

impl Ctx {
    /// The answer's events as the real API streams them.
    fn stream_events(&self, answer: &crate::model::Answer) -> Vec<String> {
        let events = self.wire.stream_events(answer, &self.model);
        if self.wire == Wire::Chat {
            crate::wire::chat_usage_as_asked(events, self.usage)
        } else {
            events
        }
    }
}

/// Marks the attempt ended when the response body is dropped, and whether it was cut short.
struct EndGuard {
    state: Arc<FakeState>,
    id: u64,
    test_id: Option<String>,
    completed: bool,
    armed: bool,
}

impl EndGuard {
    fn new(ctx: &Ctx) -> Self {
        EndGuard {
            state: ctx.state.clone(),
            id: ctx.id,
            test_id: ctx.test_id.clone(),
            completed: false,
            armed: true,
        }
    }

    /// Ends the attempt as complete.
    fn complete(mut self) {
        self.completed = true;
    }

    /// Hands the attempt on to a later guard: this one records nothing.
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.state
            .end(self.id, self.test_id.as_deref(), !self.completed);
    }
}

fn json_response(status: u16, body: String, headers: &HashMap<String, String>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// How a stream behaves after its first `events` events.
#[derive(Clone, Copy)]
enum Tail {
    Whole,
    Reset,
    Stall(u64),
    Truncate,
}

pub(crate) async fn respond(ctx: Ctx, fault: Fault) -> Response {
    let finish = |ctx: &Ctx| ctx.state.end(ctx.id, ctx.test_id.as_deref(), false);
    let text = ctx.answer.clone();
    match fault {
        // A non-streaming StallAfter has no events to send first: it stalls before the answer.
        Fault::StallBeforeHeaders { ms } | Fault::StallAfter { ms, .. }
            if matches!(fault, Fault::StallBeforeHeaders { .. }) || !ctx.stream =>
        {
            // Dropped (the caller went away) while stalled: the attempt ends as cancelled.
            let guard = EndGuard::new(&ctx);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            guard.disarm();
            Box::pin(respond(ctx, Fault::Ok)).await
        }
        Fault::Status {
            status,
            headers,
            body,
        } => {
            finish(&ctx);
            json_response(status, body, &headers)
        }
        Fault::Redirect { location } => {
            finish(&ctx);
            let mut h = HashMap::new();
            h.insert("location".to_string(), location);
            json_response(307, String::new(), &h)
        }
        Fault::Empty200 => {
            finish(&ctx);
            json_response(200, String::new(), &HashMap::new())
        }
        Fault::Html200 => {
            finish(&ctx);
            let mut r = json_response(
                200,
                "<html><body>Service temporarily unavailable</body></html>".into(),
                &HashMap::new(),
            );
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("text/html"));
            r
        }
        Fault::InBandError | Fault::InBandErrorAfter { .. } if ctx.stream => {
            let events = match fault {
                Fault::InBandErrorAfter { events } => events as usize,
                _ => 0,
            };
            let mut all = ctx.stream_events(&text);
            all.truncate(events);
            all.push(ctx.wire.in_band_frame());
            let n = all.len() as u32;
            stream_response(ctx, all, n, Tail::Whole)
        }
        Fault::InBandError | Fault::InBandErrorAfter { .. } => {
            finish(&ctx);
            json_response(200, ctx.wire.in_band_error().to_string(), &HashMap::new())
        }
        Fault::InBandSaying { events, message } if ctx.stream => {
            let mut all = ctx.stream_events(&text);
            all.truncate(events as usize);
            all.push(ctx.wire.in_band_frame_saying(Some(&message)));
            let n = all.len() as u32;
            stream_response(ctx, all, n, Tail::Whole)
        }
        Fault::InBandSaying { message, .. } => {
            finish(&ctx);
            let body = ctx.wire.in_band_error_saying(Some(&message)).to_string();
            json_response(200, body, &HashMap::new())
        }
        Fault::Ok if ctx.stream => {
            let mut events = ctx.stream_events(&text);
            if ctx.thinking {
                crate::wire::stream_thinking_first(&mut events);
            }
            let n = events.len() as u32;
            stream_response(ctx, events, n, Tail::Whole)
        }
        Fault::Ok => {
            finish(&ctx);
            let mut v = ctx.wire.complete(&text, &ctx.model);
            if ctx.cached {
                ctx.wire.report_cached(&mut v, 8);
            }
            if ctx.thinking {
                if let Some(c) = v.get_mut("content").and_then(|c| c.as_array_mut()) {
                    c.insert(0, crate::wire::thinking_block());
                }
            }
            json_response(200, v.to_string(), &HashMap::new())
        }
        Fault::ResetAfter { events }
        | Fault::StallAfter { events, .. }
        | Fault::TruncateAfter { events }
            if ctx.stream =>
        {
            let tail = match fault {
                Fault::ResetAfter { .. } => Tail::Reset,
                Fault::StallAfter { ms, .. } => Tail::Stall(ms),
                _ => Tail::Truncate,
            };
            let all = ctx.stream_events(&text);
            stream_response(ctx, all, events, tail)
        }
        Fault::ResetAfter { .. } | Fault::TruncateAfter { .. } => {
            // A non-streaming request cut off mid-body.
            stream_response(ctx, vec!["{\"id\":".to_string()], 1, Tail::Reset)
        }
        // Both stall faults are answered by the first arm that matches them.
        Fault::StallAfter { .. } | Fault::StallBeforeHeaders { .. } => {
            finish(&ctx);
            json_response(500, String::new(), &HashMap::new())
        }
    }
}

/// Sends the first `upto` events with the configured pacing, then behaves as `tail` says.
fn stream_response(ctx: Ctx, events: Vec<String>, upto: u32, tail: Tail) -> Response {
    let delay = ctx.state.chunk_delay_ms.load(Ordering::SeqCst);
    let guard = EndGuard::new(&ctx);
    let state = ctx.state.clone();
    let id = ctx.id;
    let upto = (upto as usize).min(events.len());
    let s = stream::unfold(
        (0usize, events, Some(guard)),
        move |(i, events, mut guard)| {
            let state = state.clone();
            async move {
                if i < upto {
                    if delay > 0 && i > 0 {
                        tokio::time::sleep(Duration::from_millis(delay)).await;
                    }
                    state.update(id, |a| a.events_sent += 1);
                    let frame = Bytes::from(events[i].clone());
                    return Some((Ok::<Bytes, std::io::Error>(frame), (i + 1, events, guard)));
                }
                match tail {
                    Tail::Whole | Tail::Truncate => {
                        if let Some(g) = guard.take() {
                            g.complete();
                        }
                        None
                    }
                    Tail::Reset => {
                        if i == upto {
                            // An error item makes hyper abort the connection mid-body.
                            Some((
                                Err(std::io::Error::new(
                                    std::io::ErrorKind::ConnectionReset,
                                    "fake reset",
                                )),
                                (i + 1, events, guard),
                            ))
                        } else {
                            None
                        }
                    }
                    Tail::Stall(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        if let Some(g) = guard.take() {
                            g.complete();
                        }
                        None
                    }
                }
            }
        },
    );
    let mut r = Response::new(Body::from_stream(s));
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}
