//! A plan: the ordered candidates for one request, why every other (target, key) was
//! skipped, and the report both `explain`s print.

use serde::Serialize;

use super::Candidate;
use crate::budgets::Exceeded;
use crate::catalogue::Capability;
use crate::config::StrategyKind;
use crate::formats::Endpoint;
use crate::health::{ErrorClass, KeyStatus, ProxyHealth};

/// Why a (target, key) pair is not in the plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum SkipReason {
    ProviderDisabled,
    KeyDisabled,
    /// The provider has no keys configured.
    NoKeys,
    /// Out of rotation; back (or retested) in `back_in_secs`.
    Unavailable {
        status: KeyStatus,
        reason: Option<ErrorClass>,
        back_in_secs: u64,
    },
    /// The provider kind serves no endpoint that this request could use.
    NoEndpoint {
        kind: String,
        endpoint: Endpoint,
    },
    /// No translator between the client's endpoint and the upstream's.
    NoTranslator {
        from: Endpoint,
        to: Endpoint,
    },
    /// The model lacks a capability the request needs (tools, images, ...).
    MissingCapability {
        missing: Vec<Capability>,
    },
    /// The prompt (estimated) is longer than the model's context window.
    ContextTooSmall {
        estimated_tokens: u64,
        context_window: u64,
    },
    /// Sending would break a budget.
    OverBudget(Exceeded),
    /// The key's credit is below its provider's `low_balance` and the provider takes such
    /// keys out of rotation (tried anyway when nothing else is left).
    LowBalance {
        remaining: Option<f64>,
        currency: Option<String>,
        threshold: Option<f64>,
    },
    /// The key is at a local `rpm` / `tpm` / `rpd` limit until `back_in_secs`.
    LocalLimit {
        limit: &'static str,
        value: u64,
        back_in_secs: u64,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::ProviderDisabled => f.write_str("provider disabled"),
            SkipReason::KeyDisabled => f.write_str("key disabled"),
            SkipReason::NoKeys => f.write_str("provider has no keys"),
            SkipReason::Unavailable {
                status,
                reason,
                back_in_secs,
            } => write!(
                f,
                "{}{} (back in {back_in_secs} s)",
                status.as_str(),
                reason
                    .map(|r| format!(": {}", r.as_str()))
                    .unwrap_or_default()
            ),
            SkipReason::NoEndpoint { kind, endpoint } => {
                write!(f, "a `{kind}` upstream cannot serve {}", endpoint.as_str())
            }
            SkipReason::NoTranslator { from, to } => write!(
                f,
                "no translator from {} to {} (yet)",
                from.as_str(),
                to.as_str()
            ),
            SkipReason::MissingCapability { missing } => {
                let names: Vec<&str> = missing.iter().map(|c| c.as_str()).collect();
                write!(f, "the model lacks {} (the request needs it)", names.join(", "))
            }
            SkipReason::ContextTooSmall {
                estimated_tokens,
                context_window,
            } => write!(
                f,
                "the prompt (about {estimated_tokens} tokens) is longer than the model's {context_window}-token context window"
            ),
            SkipReason::OverBudget(e) => write!(f, "over budget: {e}"),
            SkipReason::LowBalance {
                remaining,
                currency,
                threshold,
            } => {
                let cur = currency.as_deref().unwrap_or("");
                match (remaining, threshold) {
                    (Some(r), Some(t)) => {
                        write!(f, "low on credit: {r:.2} {cur} left, below {t:.2}")
                    }
                    _ => f.write_str("low on credit: the vendor says the account cannot make calls"),
                }
            }
            SkipReason::LocalLimit {
                limit,
                value,
                back_in_secs,
            } => write!(
                f,
                "at its `{limit} = {value}` limit (room again in {back_in_secs} s)"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub provider: String,
    pub key_id: Option<String>,
    pub model: String,
    pub reason: SkipReason,
}

/// How a model name was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Route,
    ProviderModel,
    ListedModel,
    ModelFamily,
}

/// The ordered candidates for one request.
#[derive(Debug, Clone)]
pub struct Plan {
    pub route: String,
    pub resolution: Resolution,
    pub strategy: StrategyKind,
    pub candidates: Vec<Candidate>,
    pub skipped: Vec<Skipped>,
    /// Degraded mode: no key was usable, so the candidates are keys cooling after upstream
    /// failures (5xx, timeouts, resets) or out for a low balance, tried anyway, the soonest
    /// back first. Keys out for a rate limit, quota or auth are never among them.
    pub degraded: bool,
    /// The route's `budget_fallback`: when false, a candidate over budget refuses the request
    /// instead of falling back to the next (true for a request that matched no route).
    pub budget_fallback: bool,
}

impl Plan {
    /// The plan as `explain` shows it: every candidate in order with what the strategy saw
    /// and the proxy it goes through (with what that proxy last did wrong, from `proxies`),
    /// every skipped (target, key) with its reason.
    pub fn report(&self, endpoint: Endpoint, proxies: &[ProxyHealth]) -> serde_json::Value {
        let candidates: Vec<serde_json::Value> = self
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let proxy = c.proxy.as_ref().map(|p| p.label.as_str());
                let proxy_error = proxy.and_then(|label| {
                    proxies
                        .iter()
                        .find(|p| p.proxy == label)
                        .and_then(|p| p.error.as_deref())
                });
                serde_json::json!({
                    "position": i + 1,
                    "provider": c.provider,
                    "key_id": c.key_id,
                    "model": c.model,
                    "upstream_endpoint": c.upstream_endpoint,
                    "translated": c.upstream_endpoint != endpoint,
                    "estimated_cost_usd": c.est_cost,
                    "estimated_tokens": c.est_tokens,
                    "context_window": c.info.as_ref().map(|i| i.context_window),
                    "capabilities": c.info.as_ref().map(|i| i.capabilities),
                    "proxy": proxy,
                    "proxy_error": proxy_error,
                    "why": c.note.clone().unwrap_or_else(|| match self.strategy {
                        StrategyKind::Priority => format!("target {} of the route, key {} of its pool", c.target_index + 1, c.key_index + 1),
                        other => format!("{} order", other.as_str()),
                    }),
                })
            })
            .collect();
        let skipped: Vec<serde_json::Value> = self
            .skipped
            .iter()
            .map(|s| {
                serde_json::json!({
                    "provider": s.provider,
                    "key_id": s.key_id,
                    "model": s.model,
                    "reason": s.reason,
                    "why": s.reason.to_string(),
                })
            })
            .collect();
        serde_json::json!({
            "route": self.route,
            "resolution": self.resolution,
            "strategy": self.strategy,
            "degraded": self.degraded,
            "candidates": candidates,
            "skipped": skipped,
        })
    }

    /// The earliest time any skipped-for-health key comes back, for `Retry-After`.
    pub fn earliest_back_in(&self) -> Option<u64> {
        self.skipped
            .iter()
            .filter_map(|s| match s.reason {
                SkipReason::Unavailable { back_in_secs, .. }
                | SkipReason::LocalLimit { back_in_secs, .. } => Some(back_in_secs),
                _ => None,
            })
            .min()
    }

    /// Whether every skip was for health or a local rate limit (so waiting would help).
    pub fn only_health_skips(&self) -> bool {
        !self.skipped.is_empty()
            && self.skipped.iter().all(|s| {
                matches!(
                    s.reason,
                    SkipReason::Unavailable { .. } | SkipReason::LocalLimit { .. }
                )
            })
    }

    /// The first budget that kept any candidate out.
    pub fn over_budget(&self) -> Option<&Exceeded> {
        self.skipped.iter().find_map(|s| match &s.reason {
            SkipReason::OverBudget(e) => Some(e),
            _ => None,
        })
    }

    /// The budget that refuses the request before anything is sent: any budget that kept a
    /// candidate out when the route has no `budget_fallback`, else budgets when they kept
    /// every candidate out and nothing else did.
    pub fn refused_before_sending(&self) -> Option<&Exceeded> {
        if !self.budget_fallback {
            self.over_budget()
        } else if self.candidates.is_empty() {
            self.budget_refusal()
        } else {
            None
        }
    }

    /// The first budget that kept a candidate out, when budgets are all that stand in the
    /// way (no key is cooling or rate limited: waiting would not help).
    pub fn budget_refusal(&self) -> Option<&Exceeded> {
        if self.skipped.iter().any(|s| {
            matches!(
                s.reason,
                SkipReason::Unavailable { .. } | SkipReason::LocalLimit { .. }
            )
        }) {
            return None;
        }
        self.over_budget()
    }
}
