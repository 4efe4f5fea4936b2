use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::health::classify::FailureKind;

fn failure(class: ErrorClass, hint: Option<Duration>) -> Failure {
    Failure {
        class,
        kind: FailureKind::Status(599),
        status: Some(599),
        message: "m".into(),
        retry_hint: hint,
    }
}

fn state(status: KeyStatus, now: Instant) -> KeyState {
    let until = match status {
        KeyStatus::Cooling | KeyStatus::Dead | KeyStatus::Probing => {
            Some(now + Duration::from_secs(30))
        }
        _ => None,
    };
    KeyState {
        status,
        until,
        reason: None,
        ..KeyState::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Input {
    Success,
    Fail(ErrorClass),
    /// The key's proxy failed.
    Proxy,
}

/// Every (status, input) pair and the status it must lead to, with the first-failure policy.
#[test]
fn exhaustive_transition_table() {
    use ErrorClass::*;
    use KeyStatus::*;
    let statuses = [Healthy, Cooling, Probing, Dead, Disabled];
    let inputs = [
        Input::Success,
        Input::Fail(AuthFailed),
        Input::Fail(QuotaExhausted),
        Input::Fail(RateLimited),
        Input::Fail(UpstreamUnavailable),
        Input::Fail(RequestInvalid),
        Input::Proxy,
    ];
    let expect = |from: KeyStatus, input: Input| -> KeyStatus {
        match (from, input) {
            (Disabled, _) => Disabled,
            (_, Input::Success) => Healthy,
            (_, Input::Fail(AuthFailed)) => Dead,
            (_, Input::Fail(QuotaExhausted)) | (_, Input::Fail(RateLimited)) => Cooling,
            // One 5xx does not take a healthy key out; it does end a probe or extend a cooldown.
            (Healthy, Input::Fail(UpstreamUnavailable)) => Healthy,
            (_, Input::Fail(UpstreamUnavailable)) => Cooling,
            (s, Input::Fail(RequestInvalid)) | (s, Input::Proxy) => s,
        }
    };
    let policy = Policy::default();
    let now = Instant::now();
    let mut checked = 0;
    for from in statuses {
        for input in inputs {
            let mut s = state(from, now);
            match input {
                Input::Success => s.on_success(),
                Input::Fail(c) => s.on_failure(&failure(c, None), now, &policy),
                Input::Proxy => {
                    let before = s.clone();
                    s.on_failure(
                        &Failure {
                            kind: FailureKind::Proxy,
                            status: None,
                            ..failure(UpstreamUnavailable, None)
                        },
                        now,
                        &policy,
                    );
                    let retest = now + policy.proxy_retest;
                    let until = if matches!(from, Dead | Probing) {
                        Some(retest)
                    } else {
                        before.until
                    };
                    assert_eq!(
                        s,
                        KeyState { until, ..before },
                        "a proxy failure from {from:?}"
                    );
                }
            }
            assert_eq!(s.status, expect(from, input), "from {from:?} on {input:?}");
            // Whatever is out of rotation has a time it comes back or is retested.
            if matches!(s.status, Cooling | Dead | Probing) {
                assert!(
                    s.until.is_some_and(|u| u > now),
                    "from {from:?} on {input:?}: no end"
                );
            }
            assert_eq!(
                s.usable(now),
                s.status == Healthy,
                "from {from:?} on {input:?}"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 35);
}

#[test]
fn ladders_grow_cap_and_decay() {
    let policy = Policy::default();
    let mut s = KeyState::default();
    let mut now = Instant::now();
    let mut waits = Vec::new();
    for _ in 0..10 {
        s.on_failure(&failure(ErrorClass::RateLimited, None), now, &policy);
        let until = s.until.expect("until");
        waits.push((until - now).as_secs());
        now = until;
        assert!(s.tick(now, &policy));
        assert_eq!(s.status, KeyStatus::Healthy);
    }
    assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300, 300]);
    // Successes walk the ladder back down one step each.
    s.on_success();
    s.on_success();
    s.on_failure(&failure(ErrorClass::RateLimited, None), now, &policy);
    assert_eq!((s.until.expect("until") - now).as_secs(), 300);
    for _ in 0..10 {
        s.on_success();
    }
    s.on_failure(&failure(ErrorClass::RateLimited, None), now, &policy);
    assert_eq!((s.until.expect("until") - now).as_secs(), 5);
}

#[test]
fn hints_beat_ladders() {
    let policy = Policy::default();
    let now = Instant::now();
    let mut s = KeyState::default();
    s.on_failure(
        &failure(ErrorClass::RateLimited, Some(Duration::from_secs(42))),
        now,
        &policy,
    );
    assert_eq!(s.until, Some(now + Duration::from_secs(42)));
    let mut q = KeyState::default();
    q.on_failure(&failure(ErrorClass::QuotaExhausted, None), now, &policy);
    assert_eq!(q.until, Some(now + Duration::from_secs(3600)));
    // A quota cooldown ends in a probe, not straight back into rotation.
    assert!(!q.usable(now + Duration::from_secs(4000)));
    assert!(q.tick(now + Duration::from_secs(3600), &policy));
    assert_eq!(q.status, KeyStatus::Probing);
    assert!(q.retest_due(now + Duration::from_secs(3602)));
}

#[test]
fn unavailable_needs_consecutive_failures() {
    let policy = Policy::default();
    let now = Instant::now();
    let mut s = KeyState::default();
    let f = failure(ErrorClass::UpstreamUnavailable, None);
    s.on_failure(&f, now, &policy);
    s.on_failure(&f, now, &policy);
    s.on_success();
    s.on_failure(&f, now, &policy);
    s.on_failure(&f, now, &policy);
    assert_eq!(
        s.status,
        KeyStatus::Healthy,
        "a success in between resets the count"
    );
    s.on_failure(&f, now, &policy);
    assert_eq!(s.status, KeyStatus::Cooling);
    assert_eq!(s.until, Some(now + Duration::from_secs(10)));
}

#[test]
fn auth_retests_back_off() {
    let policy = Policy::default();
    let mut now = Instant::now();
    let mut s = KeyState::default();
    let mut waits = Vec::new();
    for _ in 0..6 {
        s.on_failure(&failure(ErrorClass::AuthFailed, None), now, &policy);
        assert!(
            !s.usable(now + Duration::from_secs(100_000)),
            "dead keys wait for a retest"
        );
        let u = s.until.expect("until");
        waits.push((u - now).as_secs());
        now = u;
        assert!(s.retest_due(now));
    }
    assert_eq!(waits, [300, 900, 2700, 8100, 21600, 21600]);
}

#[test]
fn disable_enable_and_revive() {
    let policy = Policy::default();
    let now = Instant::now();
    let mut s = KeyState::default();
    s.disable();
    s.on_failure(&failure(ErrorClass::AuthFailed, None), now, &policy);
    s.on_success();
    assert_eq!(s.status, KeyStatus::Disabled);
    s.enable();
    assert_eq!(s.status, KeyStatus::Healthy);
    s.on_failure(&failure(ErrorClass::AuthFailed, None), now, &policy);
    s.revive();
    assert!(s.usable(now));
}

#[test]
fn status_names_round_trip() {
    for s in [
        KeyStatus::Healthy,
        KeyStatus::Cooling,
        KeyStatus::Probing,
        KeyStatus::Dead,
        KeyStatus::Disabled,
    ] {
        assert_eq!(KeyStatus::parse(s.as_str()), Some(s));
    }
}
