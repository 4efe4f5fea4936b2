//! One authenticated call with a key outside any client request: a retest of a key out of
//! rotation ([`super::HttpRetester`]) and `fluxgate keys test`. Both send through an
//! [`Upstream`], read at most [`MAX_PROBE_BYTES`] of the answer cleaned of the key, and
//! classify it in `health`, so a key fails a probe for the same reasons it fails a request.

use std::time::Duration;

use tokio::time::Instant;

use super::attempt::read_limited;
use super::headers;
use super::upstream::{Outbound, Upstream};
use crate::health::{self, transport, Failure};
use crate::secrets::SecretValue;

/// How much of a probe's answer is read.
pub const MAX_PROBE_BYTES: usize = 256 * 1024;

/// Sends `out` (the key already in its headers) and waits at most `timeout` in all; the
/// status of a 2xx answer, or the classified failure (its message cleaned of the key).
pub async fn probe(
    upstream: &dyn Upstream,
    out: Outbound,
    secret: &SecretValue,
    timeout: Duration,
) -> Result<u16, Failure> {
    probe_with(upstream, out, secret, timeout, false)
        .await
        .map(|(status, _)| status)
}

/// As [`probe`], and a 2xx answer's body (at most [`MAX_PROBE_BYTES`], cleaned of the key).
pub async fn probe_body(
    upstream: &dyn Upstream,
    out: Outbound,
    secret: &SecretValue,
    timeout: Duration,
) -> Result<bytes::Bytes, Failure> {
    probe_with(upstream, out, secret, timeout, true)
        .await
        .map(|(_, body)| body)
}

async fn probe_with(
    upstream: &dyn Upstream,
    out: Outbound,
    secret: &SecretValue,
    timeout: Duration,
    want_body: bool,
) -> Result<(u16, bytes::Bytes), Failure> {
    let deadline = Instant::now() + timeout;
    let inbound = match tokio::time::timeout(timeout, upstream.send(out)).await {
        Err(_) => return Err(transport::no_response(timeout)),
        Ok(Err(e)) => return Err(transport::transport(&e)),
        Ok(Ok(r)) => r,
    };
    let redactor = secret.redactor();
    if (200..300).contains(&inbound.status) {
        if !want_body {
            return Ok((inbound.status, bytes::Bytes::new()));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let body = read_limited(inbound.body, MAX_PROBE_BYTES, remaining, deadline).await?;
        return Ok((inbound.status, redactor.owned(body)));
    }
    let up_headers = headers::redact(&inbound.headers, redactor);
    let remaining = deadline.saturating_duration_since(Instant::now());
    let body = read_limited(inbound.body, MAX_PROBE_BYTES, remaining, deadline)
        .await
        .map(|b| redactor.owned(b))
        .unwrap_or_default();
    let mut f = health::classify_status(inbound.status, &up_headers, &body, crate::clock::wall());
    super::redact_failure(&mut f, secret);
    Err(f)
}
