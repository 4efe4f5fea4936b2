//! A deadline for the request body.
//!
//! hyper limits how long a client may take over its headers (`limits.header_timeout`), not its
//! body, so a client could trickle a body a byte at a time and hold a connection and a buffer
//! for as long as it likes. Every request body is wrapped so that reading it fails with
//! [`BodyTimedOut`] once `limits.body_timeout` has passed since the headers arrived; the
//! handlers answer that as `408 request_timeout` in the client's dialect.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

/// The error a body read ends with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0} s (`limits.body_timeout`)")]
pub struct BodyTimedOut(pub u64);

/// `Incoming` with a deadline.
pub struct TimedBody {
    inner: Incoming,
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl TimedBody {
    pub fn wrap(inner: Incoming, limit: Duration) -> Body {
        Body::new(TimedBody {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            limit,
        })
    }
}

impl HttpBody for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(r) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(r.map(|f| f.map_err(Into::into)));
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            let secs = self.limit.as_secs();
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(secs)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error (a body rejection, say) was caused by [`BodyTimedOut`].
pub fn timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    caused_by::<BodyTimedOut>(e)
}

/// Whether `T` is anywhere in `e`'s chain of sources.
fn caused_by<T: std::error::Error + 'static>(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<T>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The most an admin API request body may hold (JSON edits and drafts).
pub const MAX_ADMIN_BODY: usize = 2 * 1024 * 1024;

/// Admin API layer (after the token check): reads the body within its deadline and size limit
/// before the handler's extractor does, so a trickled or oversized body gets a typed 408 or
/// 413 like the proxy's, not an extractor's plain-text 400.
pub async fn admin_body(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, MAX_ADMIN_BODY).await {
        Ok(bytes) => {
            next.run(axum::extract::Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => {
            use crate::admin_error::{error, AdminError};
            if timed_out(&e) {
                error(AdminError::RequestTimeout, e)
            } else if caused_by::<http_body_util::LengthLimitError>(&e) {
                error(
                    AdminError::PayloadTooLarge,
                    format!(
                        "admin API bodies are limited to {} MiB",
                        MAX_ADMIN_BODY >> 20
                    ),
                )
            } else {
                error(
                    AdminError::InvalidRequest,
                    format!("cannot read the request body: {e}"),
                )
            }
        }
    }
}
