//! Classification of everything that is not an HTTP status: a connection that could not be
//! made or broke, a response that never came or stalled, a body too large to read, a 200 that
//! is empty, an HTML page or not JSON, a stream that cannot be parsed, a key that cannot be
//! read from its store. The executor, the retester and the CLI's key probe all come here, so a
//! failure means the same thing (and costs the key the same) wherever it was seen.

use super::{ErrorClass, Failure, FailureKind, TimeoutPhase};

/// Why a request got no response head.
#[derive(Debug, Clone)]
pub struct TransportError {
    /// The connection could not be made (refused, DNS, TLS, connect timeout).
    pub connect: bool,
    /// The cause was a timeout (the connect timeout, for a connection error).
    pub timed_out: bool,
    /// The innermost cause, without any URL.
    pub detail: String,
}

/// Why a response body stopped before its end (the innermost cause, without any URL).
#[derive(Debug, Clone)]
pub struct BodyError {
    pub detail: String,
}

/// A connection that could not be made, or broke before the response head.
pub fn transport(e: &TransportError) -> Failure {
    let detail = super::scrub(&e.detail);
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

/// A body that broke while it was being read.
pub fn body_broken(e: &BodyError) -> Failure {
    Failure::transport(
        FailureKind::Reset,
        format!(
            "the connection to the upstream failed: {}",
            super::scrub(&e.detail)
        ),
    )
}

/// No response head within `waited`.
pub fn no_response(waited: std::time::Duration) -> Failure {
    Failure::transport(
        FailureKind::Timeout(TimeoutPhase::FirstByte),
        format!("no response within {:.1} s", waited.as_secs_f64()),
    )
}

/// A body that stopped arriving: `Total` when the request's deadline passed, else `Idle`.
pub fn stalled(phase: TimeoutPhase) -> Failure {
    Failure::transport(
        FailureKind::Timeout(phase),
        format!("the upstream stopped sending ({} timeout)", phase.as_str()),
    )
}

/// A stream that sent nothing worth committing to before its first-byte deadline.
pub fn no_content(phase: TimeoutPhase) -> Failure {
    Failure::transport(
        FailureKind::Timeout(phase),
        "the stream produced no content in time",
    )
}

/// A response larger than Fluxgate reads.
pub fn oversize(limit: usize) -> Failure {
    Failure::transport(
        FailureKind::Empty,
        format!("the upstream response exceeded {limit} bytes"),
    )
}

/// A body that could not be parsed or translated (a broken stream, invalid JSON inside an
/// event, a shape the translator refuses).
pub fn unreadable(detail: impl std::fmt::Display) -> Failure {
    Failure::transport(FailureKind::Empty, detail.to_string())
}

/// A 200 that carries no answer: `what` says what it carried.
pub fn empty_response(what: &str) -> Failure {
    Failure {
        class: ErrorClass::UpstreamUnavailable,
        kind: FailureKind::Empty,
        status: Some(200),
        message: format!("the upstream answered 200 with {what}"),
        retry_hint: None,
    }
}

/// A successful non-streaming body that is no answer (blank, an HTML page, not a JSON
/// object), or `None` when it looks like one. `is_json_object` is the dialect's own check.
pub fn unusable_body(body: &[u8], is_json_object: bool) -> Option<Failure> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Some(empty_response("an empty body"));
    }
    if is_json_object {
        return None;
    }
    let what = if body.trim_ascii_start().starts_with(b"<") {
        "an HTML page"
    } else {
        "a body that is not a JSON object"
    };
    Some(empty_response(what))
}

/// A key whose secret cannot be read for its retest: counted against the key's existing
/// reason (it is not the upstream's fault), or as unavailable.
pub fn unreadable_key(reason: Option<ErrorClass>, detail: impl std::fmt::Display) -> Failure {
    Failure {
        class: reason.unwrap_or(ErrorClass::UpstreamUnavailable),
        kind: FailureKind::Connect,
        status: None,
        message: format!("the key could not be read for its retest: {detail}"),
        retry_hint: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transport_failure_has_its_class_and_kind() {
        let e = |connect, timed_out| TransportError {
            connect,
            timed_out,
            detail: "refused".into(),
        };
        let table: [(Failure, FailureKind); 9] = [
            (
                transport(&e(true, true)),
                FailureKind::Timeout(TimeoutPhase::Connect),
            ),
            (transport(&e(true, false)), FailureKind::Connect),
            (transport(&e(false, false)), FailureKind::Reset),
            (
                body_broken(&BodyError {
                    detail: "reset".into(),
                }),
                FailureKind::Reset,
            ),
            (
                no_response(std::time::Duration::from_secs(1)),
                FailureKind::Timeout(TimeoutPhase::FirstByte),
            ),
            (
                stalled(TimeoutPhase::Idle),
                FailureKind::Timeout(TimeoutPhase::Idle),
            ),
            (
                no_content(TimeoutPhase::Total),
                FailureKind::Timeout(TimeoutPhase::Total),
            ),
            (oversize(10), FailureKind::Empty),
            (unreadable("bad event"), FailureKind::Empty),
        ];
        for (f, kind) in table {
            assert_eq!(f.kind, kind, "{}", f.message);
            assert_eq!(f.class, ErrorClass::UpstreamUnavailable, "{}", f.message);
            assert_eq!(f.status, None);
        }
    }

    #[test]
    fn unusable_bodies_are_named_and_answers_are_not() {
        let said = |b: &[u8], json| unusable_body(b, json).map(|f| f.message);
        assert_eq!(
            said(b"  \n", false).as_deref(),
            Some("the upstream answered 200 with an empty body")
        );
        assert_eq!(
            said(b" <html>", false).as_deref(),
            Some("the upstream answered 200 with an HTML page")
        );
        assert_eq!(
            said(b"[1]", false).as_deref(),
            Some("the upstream answered 200 with a body that is not a JSON object")
        );
        assert_eq!(said(b"{}", true), None);
        assert_eq!(
            unusable_body(b"", true).map(|f| f.status),
            Some(Some(200)),
            "a blank body is empty whatever the parser said"
        );
    }

    #[test]
    fn a_transport_detail_loses_anything_key_shaped() {
        let f = transport(&TransportError {
            connect: false,
            timed_out: false,
            detail: "broken by sk-abcdefghijklmnopqrstuvwxyz123456".into(),
        });
        assert!(!f.message.contains("abcdefghijklmnop"), "{}", f.message);
    }

    #[test]
    fn an_unreadable_key_keeps_its_reason() {
        assert_eq!(
            unreadable_key(Some(ErrorClass::AuthFailed), "locked").class,
            ErrorClass::AuthFailed
        );
        assert_eq!(
            unreadable_key(None, "locked").class,
            ErrorClass::UpstreamUnavailable
        );
    }
}
