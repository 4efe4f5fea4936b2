//! The failover rules, one test (at least) each, on paused time with a scripted upstream: no
//! socket, no wall clock. Each test names the rule of ARCHITECTURE.md's "Failover rules"
//! table it pins, and fails when that rule is removed. Every test also checks that the request
//! was recorded exactly once and that nothing is left reserved against a budget.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::*;
use crate::health::KeyStatus;
use crate::vocab::ErrorClass;

mod script;

use script::*;

// Rule: a failure before anything reached the client moves on to the next candidate.
#[tokio::test(start_paused = true)]
async fn a_failure_before_commit_fails_over_to_the_next_key() {
    let h = harness(TWO_KEYS);
    h.script.on("a", [status(502)]);
    let resp = h.run(chat(false)).await.expect("served");
    assert_eq!(complete(&resp).0, 200);
    assert_eq!(h.script.calls(), ["a", "b"]);
    let rec = h.record();
    assert_eq!((rec.attempts, rec.key_id.as_deref()), (2, Some("b")));
    assert_eq!((rec.tokens_in, rec.tokens_out), (Some(3), Some(1)));
}

// Rule: a 404 rules out its target (the model is not there) and moves to the next target,
// never to another key of the same target.
#[tokio::test(start_paused = true)]
async fn a_404_moves_to_the_next_target_not_the_next_key() {
    let h = harness(TWO_TARGETS);
    h.script.on("a", [status(404)]);
    h.run(chat(false)).await.expect("served by q");
    assert_eq!(h.script.calls(), ["a", "c"]);
    assert_eq!(h.record().key_id.as_deref(), Some("c"));
}

// Rule: `request_invalid` goes back to the client with the upstream's own status and body;
// no other key is tried.
#[tokio::test(start_paused = true)]
async fn request_invalid_never_fails_over() {
    let h = harness(TWO_KEYS);
    h.script.on(
        "a",
        [Reply::Json(
            400,
            r#"{"error":{"message":"bad tool schema"}}"#,
            vec![],
        )],
    );
    let err = h.run(chat(false)).await.err().expect("refused");
    assert_eq!(err.code, ErrorCode::RequestInvalid);
    let (status, body) = err.upstream.expect("the upstream's own answer");
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("bad tool schema"));
    assert_eq!(h.script.calls(), ["a"]);
    let rec = h.record();
    assert_eq!(rec.status, 400);
    assert_eq!(rec.error_class, Some(ErrorClass::RequestInvalid));
    h.assert_nothing_reserved();
}

// Rule: when every key tried failed transiently and attempts are left, the request goes round
// again (after a short pause).
#[tokio::test(start_paused = true)]
async fn transient_failures_go_round_again() {
    let h = harness(TWO_KEYS);
    h.script.on("a", [status(502)]);
    h.script.on("b", [Reply::Reset]);
    let started = Instant::now();
    h.run(chat(false)).await.expect("served in round two");
    assert_eq!(h.script.calls(), ["a", "b", "a"]);
    assert!(started.elapsed() >= rounds::RETRY_PAUSE);
    assert_eq!(h.record().attempts, 3);
}

// Rule: the attempt limit (`retry.max_attempts`) bounds the rounds.
#[tokio::test(start_paused = true)]
async fn rounds_stop_at_the_attempt_limit() {
    let h = harness(&format!("[retry]\nmax_attempts = 3\n{TWO_KEYS}"));
    h.script.on("a", [status(502), status(502)]);
    h.script.on("b", [status(502), status(502)]);
    let err = h.run(chat(false)).await.err().expect("exhausted");
    assert_eq!(err.code, ErrorCode::UpstreamUnavailable);
    assert_eq!(h.script.calls(), ["a", "b", "a"]);
    assert_eq!(h.record().status, 502);
}

// Rule: a timeout is not retried in another round (a stalled upstream would multiply the
// wait).
#[tokio::test(start_paused = true)]
async fn a_timeout_is_not_retried_in_another_round() {
    let h = harness(&format!("[timeouts]\nfirst_byte = 2\n{TWO_KEYS}"));
    h.script.on("a", [Reply::Hang]);
    h.script.on("b", [status(502)]);
    let err = h.run(chat(false)).await.err().expect("failed");
    assert_eq!(h.script.calls(), ["a", "b"]);
    assert_eq!(err.code, ErrorCode::UpstreamUnavailable);
    assert_eq!(h.record().attempts, 2);
}

// Rule: when no key is usable and the first comes back within `retry.max_wait`, the request
// waits for it instead of failing.
#[tokio::test(start_paused = true)]
async fn waits_for_a_key_that_comes_back_within_max_wait() {
    let h = harness(ONE_KEY);
    h.script
        .on("a", [Reply::Json(429, "{}", vec![("retry-after", "3")])]);
    let started = Instant::now();
    h.run(chat(false)).await.expect("served after the wait");
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert_eq!(h.script.calls(), ["a", "a"]);
    assert_eq!(h.record().attempts, 2);
}

// Rule: when every key is out of rotation (and waiting would take too long), the client gets
// `all_keys_cooling` with `Retry-After` = the earliest return.
#[tokio::test(start_paused = true)]
async fn every_key_out_answers_all_keys_cooling_with_retry_after() {
    let h = harness(ONE_KEY);
    h.script
        .on("a", [Reply::Json(429, "{}", vec![("retry-after", "30")])]);
    let err = h.run(chat(false)).await.err().expect("cooling");
    assert_eq!(err.code, ErrorCode::AllKeysCooling);
    assert_eq!(err.retry_after_secs, Some(30));
    assert_eq!(h.script.calls(), ["a"]);
    assert_eq!(h.status("p/a"), KeyStatus::Cooling);
    let rec = h.record();
    assert_eq!(
        (rec.status, rec.error_code),
        (503, Some(ErrorCode::AllKeysCooling))
    );
}

// Rule: degraded mode. When no key is usable but some cool only for upstream failures, those
// are tried anyway; a key out for a rate limit never is.
#[tokio::test(start_paused = true)]
async fn degraded_mode_tries_keys_cooling_for_upstream_failures() {
    let h = harness(&format!("[retry]\nmax_attempts = 1\n{ONE_KEY}"));
    h.script.on("a", [status(502), status(502), status(502)]);
    for _ in 0..3 {
        h.run(chat(false)).await.err().expect("502");
    }
    assert_eq!(
        h.status("p/a"),
        KeyStatus::Cooling,
        "three 5xx cool the key"
    );
    h.run(chat(false)).await.expect("tried anyway, and served");
    assert_eq!(h.script.calls().len(), 4);

    let h = harness(&format!(
        "[retry]\nmax_attempts = 1\nmax_wait = 0\n{ONE_KEY}"
    ));
    h.script
        .on("a", [Reply::Json(429, "{}", vec![("retry-after", "60")])]);
    h.run(chat(false)).await.err().expect("429");
    let err = h.run(chat(false)).await.err().expect("not tried early");
    assert_eq!(err.code, ErrorCode::AllKeysCooling);
    assert_eq!(
        h.script.calls(),
        ["a"],
        "a rate-limited key is never tried early"
    );
}

// Rule: an auth failure makes the key dead and the request fails over.
#[tokio::test(start_paused = true)]
async fn an_auth_failure_kills_the_key_and_fails_over() {
    let h = harness(TWO_KEYS);
    h.script.on("a", [status(401)]);
    h.run(chat(false)).await.expect("served by b");
    assert_eq!(h.status("p/a"), KeyStatus::Dead);
    h.run(chat(false)).await.expect("served by b again");
    assert_eq!(h.script.calls(), ["a", "b", "b"]);
}

// Rule: a key whose secret cannot be read is skipped; when none can be read the client is told
// `keychain_unavailable`.
#[tokio::test(start_paused = true)]
async fn unreadable_keys_are_skipped_and_named() {
    let h = harness(
        r#"
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "unreadable" }, { id = "b" }]

[routes.r]
targets = ["p/m"]
"#,
    );
    h.run(chat(false)).await.expect("served by b");
    assert_eq!(h.script.calls(), ["b"]);

    let h = harness(
        r#"
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "unreadable" }]

[routes.r]
targets = ["p/m"]
"#,
    );
    let err = h.run(chat(false)).await.err().expect("no key");
    assert_eq!(err.code, ErrorCode::KeychainUnavailable);
    assert!(h.script.calls().is_empty());
}

// Rule (stream commit): a stream that fails before its first content event is an ordinary
// failed attempt; the client sees only the next key's stream.
#[tokio::test(start_paused = true)]
async fn a_stream_failing_before_commit_fails_over_invisibly() {
    let h = harness(TWO_KEYS);
    h.script.on("a", [Reply::Sse(vec![IN_BAND], Then::End)]);
    h.script.on("b", [Reply::Sse(vec![CHUNK, DONE], Then::End)]);
    let resp = h.run(chat(true)).await.expect("stream");
    let text = drain(resp).await;
    assert!(!text.contains("overloaded"), "{text}");
    assert!(text.contains("\"hi\"") && text.ends_with(DONE), "{text}");
    assert_eq!(h.script.calls(), ["a", "b"]);
    h.exec.log().flush();
    let rec = h.record();
    assert_eq!(
        (rec.status, rec.key_id.as_deref(), rec.error_code),
        (200, Some("b"), None)
    );
    h.assert_nothing_reserved();
}

// Rule (stream commit): after the first content event nothing is sent upstream again; a break
// ends the client's stream with an error event and no success terminator.
#[tokio::test(start_paused = true)]
async fn a_stream_breaking_after_commit_ends_with_an_error_event() {
    let h = harness(TWO_KEYS);
    h.script.on("a", [Reply::Sse(vec![CHUNK], Then::Break)]);
    let resp = h.run(chat(true)).await.expect("committed");
    let text = drain(resp).await;
    assert!(text.contains("\"hi\""), "{text}");
    assert!(text.contains("stream_interrupted"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(h.script.calls(), ["a"], "no failover after commit");
    let rec = h.record();
    assert_eq!(rec.error_code, Some(ErrorCode::StreamInterrupted));
    h.assert_nothing_reserved();
}

/// [`TWO_KEYS`] with a budget over the route.
fn budgeted() -> String {
    format!("[[budgets]]\nroute = \"r\"\ndaily_tokens = 1000000\n{TWO_KEYS}")
}

// Rule: a request's budget reservation is released on every exit: an answer, a failure, a
// refusal, a stream that completes, breaks or loses its client.
#[tokio::test(start_paused = true)]
async fn budget_reservations_are_released_on_every_exit() {
    let h = harness(&budgeted());
    h.run(chat(false)).await.expect("answer");
    h.assert_nothing_reserved();

    h.script.on("a", [status(400)]);
    h.run(chat(false)).await.err().expect("request_invalid");
    h.assert_nothing_reserved();

    h.script.on("a", [status(502)]);
    h.script.on("b", [status(502), status(502)]);
    h.script.on("a", [status(502)]);
    h.run(chat(false)).await.err().expect("exhausted");
    h.assert_nothing_reserved();

    for then in [Then::End, Then::Break] {
        h.script.on("a", [Reply::Sse(vec![CHUNK, DONE], then)]);
        let resp = h.run(chat(true)).await.expect("stream");
        drain(resp).await;
        h.assert_nothing_reserved();
    }

    h.script.on("a", [Reply::Sse(vec![CHUNK], Then::End)]);
    let resp = h.run(chat(true)).await.expect("stream");
    let ProxyResponse::Stream { body, .. } = resp else {
        panic!("not a stream");
    };
    drop(body);
    // The pump sees the client gone, records and releases.
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    h.assert_nothing_reserved();
    let closed = h
        .records()
        .into_iter()
        .filter(|r| r.error_code == Some(ErrorCode::ClientClosed))
        .count();
    assert_eq!(closed, 1);
}

// Rule: with `budget_fallback = false` a budget that keeps a candidate out refuses the request
// before anything is sent.
#[tokio::test(start_paused = true)]
async fn a_route_without_budget_fallback_refuses_before_sending() {
    let h = harness(
        r#"
[[budgets]]
provider = "p"
daily_tokens = 1

[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "a" }]

[providers.q]
kind = "openai-compatible"
base_url = "https://q.test/v1"
keys = [{ id = "c" }]

[routes.r]
targets = ["p/m", "q/m"]
budget_fallback = false
"#,
    );
    let err = h.run(chat(false)).await.err().expect("refused");
    assert_eq!(err.code, ErrorCode::BudgetExceeded);
    assert!(h.script.calls().is_empty());
    assert_eq!(h.record().status, 402);
}

// Rule: `budget_fallback = false` also holds at admission: a candidate that was within budget
// when the request was planned but is not when its turn comes (another request took the
// room) refuses the request rather than being passed over.
#[tokio::test(start_paused = true)]
async fn without_budget_fallback_a_budget_spent_since_planning_refuses() {
    let config = |limit: u64| {
        format!(
            r#"
[[budgets]]
provider = "p"
daily_tokens = {limit}

[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{{ id = "a" }}]

[providers.q]
kind = "openai-compatible"
base_url = "https://q.test/v1"
keys = [{{ id = "c" }}]

[routes.r]
targets = ["q/m", "p/m"]
budget_fallback = false

[routes.s]
targets = ["p/m"]
"#
        )
    };
    let probe = harness(&config(1_000_000));
    let router = probe.exec.router();
    let needs = Needs::new(Endpoint::ChatCompletions, chat(false).body, false, None);
    let plan = probe
        .exec
        .plan(
            &router,
            Endpoint::ChatCompletions,
            "r",
            None,
            Some(&needs),
            None,
        )
        .expect("plan");
    let est = plan.candidates[0].est_tokens;
    // Room for one request on `p`, not two.
    let h = Arc::new(harness(&config(est + est / 2)));
    h.script.on(
        "c",
        [Reply::After(Duration::from_secs(1), Box::new(status(502)))],
    );
    h.script.on("a", [Reply::Hang]);
    let first = {
        let h = h.clone();
        tokio::spawn(async move { h.run(chat(false)).await.err().map(|e| e.code) })
    };
    tokio::task::yield_now().await;
    // `s` takes the room on `p` while `r` waits for `q`.
    let second = {
        let h = h.clone();
        tokio::spawn(async move {
            let req = ProxyRequest {
                model: "s".into(),
                ..chat(false)
            };
            h.run(req).await.err().map(|e| e.code)
        })
    };
    assert_eq!(
        first.await.expect("join"),
        Some(ErrorCode::BudgetExceeded),
        "refused, not passed over to an upstream error"
    );
    assert_eq!(h.script.calls(), ["c", "a"]);
    second.abort();
}

// Rule: `count_tokens` on a route no Anthropic upstream serves is estimated locally, never a
// completion.
#[tokio::test(start_paused = true)]
async fn count_tokens_without_an_anthropic_upstream_is_estimated() {
    let h = harness(ONE_KEY);
    let body = Bytes::from_static(
        br#"{"model":"r","messages":[{"role":"user","content":"hello there"}]}"#,
    );
    let req = ProxyRequest {
        endpoint: Endpoint::CountTokens,
        dialect: Dialect::Anthropic,
        body,
        ..chat(false)
    };
    let resp = h.run(req).await.expect("estimate");
    let (status, body) = complete(&resp);
    assert_eq!(status, 200);
    assert!(body.starts_with("{\"input_tokens\":"), "{body}");
    assert!(h.script.calls().is_empty());
    assert_eq!(h.record().status, 200);
}

// Rule: the global retry budget bounds failover load: once it is spent, a failed first
// attempt is not failed over.
#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_failover() {
    let mut h = harness(TWO_KEYS);
    h.exec = h.exec.with_retry_budget(RetryBudget::new(0.0, 0.0, 1.0));
    h.script.on("a", [status(502), status(502)]);
    h.run(chat(false)).await.expect("failed over once");
    let err = h.run(chat(false)).await.err().expect("budget spent");
    assert_eq!(err.code, ErrorCode::UpstreamUnavailable);
    assert_eq!(h.script.calls(), ["a", "b", "a"]);
}
