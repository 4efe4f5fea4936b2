//! One key's health as a pure state machine: no clock of its own, no I/O, no locks.
//!
//! | from | input | to |
//! |---|---|---|
//! | any but disabled | success | healthy (failure count 0, ladder step decays by one) |
//! | any but disabled | `auth_failed` | dead until the next retest (5 min, ×3 per step, cap 6 h) |
//! | any but disabled | `quota_exhausted` | cooling until the hint, else 1 h; then probing |
//! | any but disabled | `rate_limited` | cooling for the hint, else 5 s ×2 per step (cap 5 min); then healthy |
//! | healthy | `upstream_unavailable` below the threshold | healthy, failure counted |
//! | any but disabled | `upstream_unavailable` at the threshold | cooling 10 s ×2 per step (cap 5 min); then healthy |
//! | any | `request_invalid` | unchanged (last status noted) |
//! | any | the key's proxy failed | unchanged; a due retest of a dead or probing key waits 30 s |
//! | cooling | time passes `until` | healthy, or probing (quota) |
//! | probing, dead | retest passes / fails | healthy / as the failure says |
//! | any | disable / enable | disabled / healthy |
//!
//! A key is usable only when healthy (or cooling past its `until` but not yet ticked).

use std::time::Duration;

use tokio::time::Instant;

use super::classify::{Failure, FailureKind};
use crate::vocab::ErrorClass;
pub use crate::vocab::KeyStatus;

/// The numbers that shape cooldowns. Defaults follow DESIGN.md §3.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub unavailable_threshold: u32,
    pub unavailable_base: Duration,
    pub unavailable_cap: Duration,
    pub rate_limit_base: Duration,
    pub rate_limit_cap: Duration,
    pub quota_default: Duration,
    pub auth_first_retest: Duration,
    pub auth_cap: Duration,
    /// How soon a probing key's retest runs.
    pub probe_delay: Duration,
    /// How long a dead or probing key's retest waits when its proxy failed it.
    pub proxy_retest: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            unavailable_threshold: 3,
            unavailable_base: Duration::from_secs(10),
            unavailable_cap: Duration::from_secs(300),
            rate_limit_base: Duration::from_secs(5),
            rate_limit_cap: Duration::from_secs(300),
            quota_default: Duration::from_secs(3600),
            auth_first_retest: Duration::from_secs(300),
            auth_cap: Duration::from_secs(6 * 3600),
            probe_delay: Duration::from_secs(1),
            proxy_retest: Duration::from_secs(30),
        }
    }
}

fn ladder(base: Duration, factor: u32, step: u32, cap: Duration) -> Duration {
    let mut d = base;
    for _ in 0..step {
        d = d.saturating_mul(factor);
        if d >= cap {
            return cap;
        }
    }
    d.min(cap)
}

/// One key's health.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyState {
    pub status: KeyStatus,
    pub reason: Option<ErrorClass>,
    pub last_status: Option<u16>,
    pub last_message: Option<String>,
    /// When a cooling key comes back, or when a dead/probing key is retested next.
    pub until: Option<Instant>,
    pub consecutive_failures: u32,
    /// The class whose cooldown ladder `step` counts; kept across recoveries so a key that
    /// keeps failing the same way stays out longer each time.
    pub ladder: Option<ErrorClass>,
    /// How many times this key was taken out for `ladder`; each success takes one off.
    pub step: u32,
}

impl Default for KeyState {
    fn default() -> Self {
        KeyState {
            status: KeyStatus::Healthy,
            reason: None,
            last_status: None,
            last_message: None,
            until: None,
            consecutive_failures: 0,
            ladder: None,
            step: 0,
        }
    }
}

impl KeyState {
    /// Whether a request may use this key at `now`.
    pub fn usable(&self, now: Instant) -> bool {
        match self.status {
            KeyStatus::Healthy => true,
            // A cooldown past its end is over even before the scheduler ticks it.
            KeyStatus::Cooling => {
                self.until.is_some_and(|u| u <= now)
                    && self.reason != Some(ErrorClass::QuotaExhausted)
            }
            KeyStatus::Probing | KeyStatus::Dead | KeyStatus::Disabled => false,
        }
    }

    /// When this key is expected back, for `Retry-After`; `None` when healthy or disabled.
    pub fn back_at(&self) -> Option<Instant> {
        match self.status {
            KeyStatus::Cooling | KeyStatus::Dead | KeyStatus::Probing => self.until,
            KeyStatus::Healthy | KeyStatus::Disabled => None,
        }
    }

    /// Applies a successful use or retest.
    pub fn on_success(&mut self) {
        if self.status == KeyStatus::Disabled {
            return;
        }
        self.status = KeyStatus::Healthy;
        self.reason = None;
        self.until = None;
        self.consecutive_failures = 0;
        self.step = self.step.saturating_sub(1);
    }

    /// Applies a classified failure at `now`.
    pub fn on_failure(&mut self, f: &Failure, now: Instant, policy: &Policy) {
        if f.kind == FailureKind::Proxy {
            // Not the key's failure: nothing about it changes, but a retest the proxy kept
            // from running is tried again later rather than at once.
            if matches!(self.status, KeyStatus::Dead | KeyStatus::Probing) {
                self.until = Some(now + policy.proxy_retest);
            }
            return;
        }
        self.last_status = f.status;
        self.last_message = Some(f.message.clone());
        if self.status == KeyStatus::Disabled || f.class == ErrorClass::RequestInvalid {
            return;
        }
        // A new reason starts its own ladder.
        let step = if self.ladder == Some(f.class) {
            self.step
        } else {
            0
        };
        match f.class {
            ErrorClass::AuthFailed => {
                self.status = KeyStatus::Dead;
                self.until = Some(now + ladder(policy.auth_first_retest, 3, step, policy.auth_cap));
                self.step = step + 1;
            }
            ErrorClass::QuotaExhausted => {
                self.status = KeyStatus::Cooling;
                self.until = Some(now + f.retry_hint.unwrap_or(policy.quota_default));
                self.step = step + 1;
            }
            ErrorClass::RateLimited => {
                self.status = KeyStatus::Cooling;
                let wait = f.retry_hint.unwrap_or_else(|| {
                    ladder(policy.rate_limit_base, 2, step, policy.rate_limit_cap)
                });
                self.until = Some(now + wait);
                self.step = step + 1;
            }
            ErrorClass::UpstreamUnavailable => {
                self.consecutive_failures += 1;
                if self.consecutive_failures >= policy.unavailable_threshold
                    || self.status != KeyStatus::Healthy
                {
                    self.status = KeyStatus::Cooling;
                    let wait = ladder(policy.unavailable_base, 2, step, policy.unavailable_cap);
                    let wait = f
                        .retry_hint
                        .map_or(wait, |h| h.max(wait).min(policy.unavailable_cap));
                    self.until = Some(now + wait);
                    self.step = step + 1;
                    self.consecutive_failures = 0;
                } else {
                    self.reason = Some(f.class);
                    return;
                }
            }
            ErrorClass::RequestInvalid => return,
        }
        self.reason = Some(f.class);
        self.ladder = Some(f.class);
    }

    /// Moves a cooldown that has ended to its next state. Returns whether anything changed.
    pub fn tick(&mut self, now: Instant, policy: &Policy) -> bool {
        if self.status != KeyStatus::Cooling || self.until.is_none_or(|u| u > now) {
            return false;
        }
        if self.reason == Some(ErrorClass::QuotaExhausted) {
            self.status = KeyStatus::Probing;
            self.until = Some(now + policy.probe_delay);
        } else {
            self.status = KeyStatus::Healthy;
            self.until = None;
        }
        true
    }

    /// Whether the retest scheduler should test this key now.
    pub fn retest_due(&self, now: Instant) -> bool {
        matches!(self.status, KeyStatus::Dead | KeyStatus::Probing)
            && self.until.is_some_and(|u| u <= now)
    }

    pub fn disable(&mut self) {
        self.status = KeyStatus::Disabled;
        self.until = None;
    }

    pub fn enable(&mut self) {
        if self.status == KeyStatus::Disabled {
            *self = KeyState {
                last_status: self.last_status,
                last_message: self.last_message.clone(),
                ..KeyState::default()
            };
        }
    }

    /// Puts a dead or cooling key back to healthy at the user's request (the next failure still
    /// counts from the ladder step it had).
    pub fn revive(&mut self) {
        if self.status != KeyStatus::Disabled {
            self.status = KeyStatus::Healthy;
            self.until = None;
            self.consecutive_failures = 0;
        }
    }
}

#[cfg(test)]
mod tests;
