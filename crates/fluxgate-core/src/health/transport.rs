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
    /// The proxy's label, when the proxy is what failed (it was down, refused, or could not
    /// reach the upstream): the key is not to blame.
    pub proxy: Option<String>,
}

/// Why a response body stopped before its end (the innermost cause, without any URL).
#[derive(Debug, Clone)]
pub struct BodyError {
    pub detail: String,
}

/// A connection that could not be made, or broke before the response head.
pub fn transport(e: &TransportError) -> Failure {
    let detail = super::scrub(&e.detail);
    if e.proxy.is_some() {
        Failure::transport(FailureKind::Proxy, detail)
    } else if e.connect && e.timed_out {
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

/// Whether a body holds nothing but whitespace.
pub fn is_blank(body: &[u8]) -> bool {
    body.iter().all(|b| b.is_ascii_whitespace())
}

/// A successful non-streaming body that is no answer (the dialect's parser refused it, or it
/// is blank): says whether it was empty, an HTML page or something else.
pub fn unusable_body(body: &[u8]) -> Failure {
    if is_blank(body) {
        empty_response("an empty body")
    } else if body.trim_ascii_start().starts_with(b"<") {
        empty_response("an HTML page")
    } else {
        empty_response("a body that is not a JSON object")
    }
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
            proxy: None,
        };
        let proxied = |timed_out| TransportError {
            proxy: Some("corp".into()),
            ..e(true, timed_out)
        };
        let table: [(Failure, FailureKind); 11] = [
            (transport(&proxied(false)), FailureKind::Proxy),
            (transport(&proxied(true)), FailureKind::Proxy),
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
    fn unusable_bodies_are_named() {
        let said = |b: &[u8]| unusable_body(b).message;
        assert_eq!(
            said(b"  \n"),
            "the upstream answered 200 with an empty body"
        );
        assert_eq!(
            said(b" <html>"),
            "the upstream answered 200 with an HTML page"
        );
        assert_eq!(
            said(b"[1]"),
            "the upstream answered 200 with a body that is not a JSON object"
        );
        assert_eq!(unusable_body(b"").status, Some(200));
        assert!(is_blank(b" \r\n") && !is_blank(b"{}"));
    }

    #[test]
    fn a_transport_detail_loses_anything_key_shaped() {
        // Built at run time: a key-shaped word, not a key, and nothing a scanner should flag.
        let word = format!("sk-{}", "q7".repeat(16));
        let f = transport(&TransportError {
            connect: false,
            timed_out: false,
            detail: format!("broken by {word}"),
            proxy: None,
        });
        assert!(!f.message.contains(&word[3..]), "{}", f.message);
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
