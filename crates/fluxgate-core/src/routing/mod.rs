//! Routes, targets and plans: which (target, key) candidates may serve a request, in what
//! order, and why the others were skipped.
//!
//! A model name resolves, in this order, to: a configured route; `provider/model`; a pattern
//! route (`claude-*`, longest prefix first); a model listed by exactly one provider; or, for the well-known model families (`claude-*`, `gpt-*`,
//! `o1`/`o3`/`o4*`, `gemini-*`), every provider of the matching kind as a fallback chain.
//! Planning reads key health but never changes it.

mod needs;
mod signals;
mod strategy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::time::Instant;

pub use needs::{Needs, DEFAULT_OUTPUT_TOKENS};
pub use signals::{LimitHit, Signals, TAU};
pub use strategy::{for_kind, Strategy, StrategyContext};

use crate::budgets::{Exceeded, Ledger, Spend};
use crate::catalogue::{Capability, ModelInfo};
use crate::config::{Config, KeyLimits, ProviderKind, StrategyKind, Target};
use crate::formats::translate::{Codec, TranslatorRegistry};
use crate::formats::Endpoint;
use crate::health::{ErrorClass, HealthRegistry, KeyStatus};
use crate::providers::{self, Provider};

/// One way to serve a request: a target's model on one key.
#[derive(Clone)]
pub struct Candidate {
    pub provider: String,
    pub key_id: String,
    /// `provider/key_id`, the key's identity in health and the keychain.
    pub account: String,
    pub model: String,
    pub target_index: usize,
    pub key_index: usize,
    pub weight: u32,
    pub upstream_endpoint: Endpoint,
    /// The upstream URL, parsed once per config.
    pub url: http::Uri,
    pub codec: Codec,
    pub upstream: Arc<dyn Provider>,
    /// What the catalogue knows about the model (`None`: unknown model).
    pub info: Option<Arc<ModelInfo>>,
    /// This request's estimated cost on this model, when its prices are known.
    pub est_cost: Option<f64>,
    /// This request's estimated tokens (prompt and expected output).
    pub est_tokens: u64,
    pub limits: KeyLimits,
    /// Why the strategy put it where it is (for `explain`).
    pub note: Option<String>,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({})", self.provider, self.model, self.key_id)
    }
}

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
    /// failures (5xx, timeouts, resets), tried anyway, the soonest back first. Keys out for a
    /// rate limit, quota or auth are never among them.
    pub degraded: bool,
}

impl Plan {
    /// The plan as `explain` shows it: every candidate in order with what the strategy saw,
    /// every skipped (target, key) with its reason.
    pub fn report(&self, endpoint: Endpoint) -> serde_json::Value {
        let candidates: Vec<serde_json::Value> = self
            .candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
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
        self.skipped.iter().find_map(|s| match &s.reason {
            SkipReason::OverBudget(e) => Some(e),
            _ => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error(
        "no route, provider or model matches `{0}`; add a route for it, or send `provider/model`"
    )]
    NoRoute(String),
    #[error(
        "`{model}` is listed by several providers ({providers}); add a route to say which to use"
    )]
    Ambiguous { model: String, providers: String },
}

/// Resolves model names and plans candidates against the current config and health.
pub struct Router {
    config: Arc<Config>,
    providers: HashMap<String, Arc<dyn Provider>>,
    translators: TranslatorRegistry,
    counters: Mutex<HashMap<String, Arc<strategy::Counter>>>,
    /// Every provider's endpoint URLs, parsed once (URL parsing showed on the hot path).
    urls: HashMap<String, Vec<(Endpoint, http::Uri)>, foldhash::fast::RandomState>,
    /// Catalogue lookups by provider, then model, made once per config (a hit allocates
    /// nothing).
    models: Mutex<ModelCache>,
}

type ModelCache = HashMap<
    String,
    HashMap<String, Option<Arc<ModelInfo>>, foldhash::fast::RandomState>,
    foldhash::fast::RandomState,
>;

/// One request, as planning sees it.
pub struct Ask<'a> {
    pub endpoint: Endpoint,
    pub model: &'a str,
    /// Session affinity (see [`Router::plan_for`]).
    pub conversation: Option<u64>,
    /// What the request needs; `None` plans without capability, context or cost checks.
    pub needs: Option<&'a Needs>,
    /// The client token's name (for client budgets).
    pub client: Option<&'a str>,
}

/// The live state planning reads.
pub struct Live<'a> {
    pub health: &'a HealthRegistry,
    pub signals: &'a Signals,
    pub ledger: Option<&'a Ledger>,
}

impl Router {
    pub fn new(config: Arc<Config>, translators: TranslatorRegistry) -> Self {
        let providers: HashMap<String, Arc<dyn Provider>> = config
            .providers
            .iter()
            .map(|p| (p.name.clone(), providers::build(p)))
            .collect();
        let mut urls: HashMap<String, Vec<(Endpoint, http::Uri)>, foldhash::fast::RandomState> =
            HashMap::default();
        for (name, p) in &providers {
            let parsed = p
                .endpoints()
                .iter()
                .filter_map(|ep| p.url(*ep).parse().ok().map(|u| (*ep, u)));
            urls.insert(name.clone(), parsed.collect());
        }
        Router {
            config,
            providers,
            translators,
            counters: Mutex::new(HashMap::new()),
            urls,
            models: Mutex::new(HashMap::default()),
        }
    }

    /// What the catalogue knows about `model` on `provider` (cached per config).
    pub fn model_info(&self, provider: &str, model: &str) -> Option<Arc<ModelInfo>> {
        if let Some(hit) = self.models.lock().get(provider).and_then(|m| m.get(model)) {
            return hit.clone();
        }
        let info = self.config.catalogue.lookup(provider, model).map(Arc::new);
        self.models
            .lock()
            .entry(provider.to_string())
            .or_default()
            .insert(model.to_string(), info.clone());
        info
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    pub fn provider(&self, name: &str) -> Option<&Arc<dyn Provider>> {
        self.providers.get(name)
    }

    /// The targets and strategy a model name resolves to.
    pub fn resolve(
        &self,
        model: &str,
    ) -> Result<(String, Resolution, Vec<Target>, StrategyKind), RouteError> {
        let c = &self.config;
        if let Some(r) = c.route(model) {
            return Ok((
                r.name.clone(),
                Resolution::Route,
                r.targets.clone(),
                r.strategy,
            ));
        }
        if let Some((p, m)) = model.split_once('/') {
            if c.provider(p).is_some() && !m.is_empty() {
                return Ok((
                    model.to_string(),
                    Resolution::ProviderModel,
                    vec![Target {
                        provider: p.into(),
                        model: m.into(),
                    }],
                    StrategyKind::Priority,
                ));
            }
        }
        if let Some(r) = c.route_pattern(model) {
            return Ok((
                r.name.clone(),
                Resolution::Route,
                r.targets.clone(),
                r.strategy,
            ));
        }
        let listing: Vec<&str> = c
            .providers
            .iter()
            .filter(|p| p.models.iter().any(|m| m == model))
            .map(|p| p.name.as_str())
            .collect();
        match listing.len() {
            1 => {
                return Ok((
                    model.to_string(),
                    Resolution::ListedModel,
                    vec![Target {
                        provider: listing[0].into(),
                        model: model.into(),
                    }],
                    StrategyKind::Priority,
                ))
            }
            n if n > 1 => {
                return Err(RouteError::Ambiguous {
                    model: model.into(),
                    providers: listing.join(", "),
                })
            }
            _ => {}
        }
        let family = if model.starts_with("claude-") {
            Some(ProviderKind::Anthropic)
        } else if model.starts_with("gpt-")
            || model.starts_with("chatgpt-")
            || model.starts_with("text-embedding-")
            || ["o1", "o3", "o4"]
                .iter()
                .any(|p| model == *p || model.starts_with(&format!("{p}-")))
        {
            Some(ProviderKind::Openai)
        } else if model.starts_with("gemini-") {
            Some(ProviderKind::Gemini)
        } else {
            None
        };
        if let Some(kind) = family {
            let targets: Vec<Target> = c
                .providers
                .iter()
                .filter(|p| p.kind == kind)
                .map(|p| Target {
                    provider: p.name.clone(),
                    model: model.into(),
                })
                .collect();
            if !targets.is_empty() {
                return Ok((
                    model.to_string(),
                    Resolution::ModelFamily,
                    targets,
                    StrategyKind::Priority,
                ));
            }
        }
        Err(RouteError::NoRoute(model.to_string()))
    }

    /// Orders every candidate that may serve `model` on `endpoint` at `now`.
    pub fn plan(
        &self,
        endpoint: Endpoint,
        model: &str,
        health: &HealthRegistry,
        now: Instant,
    ) -> Result<Plan, RouteError> {
        self.plan_for(endpoint, model, health, now, None)
    }

    /// [`Router::plan`] for one conversation: with a conversation key and a spreading strategy
    /// (all but `priority`), each target's keys are ordered by rendezvous hashing on it (after
    /// the strategy), so every turn of a conversation goes to the same key while it is usable,
    /// keeping the provider's prompt cache warm; when that key is out, the turn goes to the
    /// next key in the same stable order. Strategies that weigh targets against each other
    /// choose the target; the conversation is pinned to a key within it.
    pub fn plan_for(
        &self,
        endpoint: Endpoint,
        model: &str,
        health: &HealthRegistry,
        now: Instant,
        conversation: Option<u64>,
    ) -> Result<Plan, RouteError> {
        let signals = Signals::default();
        self.plan_request(
            &Ask {
                endpoint,
                model,
                conversation,
                needs: None,
                client: None,
            },
            &Live {
                health,
                signals: &signals,
                ledger: None,
            },
            now,
        )
    }

    /// Orders every candidate that may serve a request at `now`, and says why the others
    /// cannot: health, capability, context window, local rate limits and budgets.
    pub fn plan_request(
        &self,
        ask: &Ask<'_>,
        live: &Live<'_>,
        now: Instant,
    ) -> Result<Plan, RouteError> {
        let (endpoint, model, health, conversation) =
            (ask.endpoint, ask.model, live.health, ask.conversation);
        let (route, resolution, targets, strategy) = self.resolve(model)?;
        let mut candidates = Vec::new();
        let mut skipped = Vec::new();
        // Keys cooling only because their upstream failed: (time to recovery, index in
        // `skipped`, candidate).
        let mut held: Vec<(Duration, usize, Candidate)> = Vec::new();
        for (ti, t) in targets.iter().enumerate() {
            let Some(pc) = self.config.provider(&t.provider) else {
                continue;
            };
            let Some(upstream) = self.providers.get(&t.provider).cloned() else {
                continue;
            };
            let skip_all = |reason: SkipReason, skipped: &mut Vec<Skipped>| {
                skipped.push(Skipped {
                    provider: t.provider.clone(),
                    key_id: None,
                    model: t.model.clone(),
                    reason,
                });
            };
            if !pc.enabled {
                skip_all(SkipReason::ProviderDisabled, &mut skipped);
                continue;
            }
            if pc.keys.is_empty() {
                skip_all(SkipReason::NoKeys, &mut skipped);
                continue;
            }
            // The endpoint this upstream would serve, and its URL (parsed once per config).
            let served = upstream.upstream_endpoint(endpoint).and_then(|ep| {
                self.urls
                    .get(t.provider.as_str())?
                    .iter()
                    .find(|(e, _)| *e == ep)
                    .map(|(_, u)| (ep, u.clone()))
            });
            let Some((up_ep, url)) = served else {
                skip_all(
                    SkipReason::NoEndpoint {
                        kind: pc.kind.as_str().into(),
                        endpoint,
                    },
                    &mut skipped,
                );
                continue;
            };
            let Some(codec) = self.translators.codec(endpoint, up_ep) else {
                skip_all(
                    SkipReason::NoTranslator {
                        from: endpoint,
                        to: up_ep,
                    },
                    &mut skipped,
                );
                continue;
            };
            let info = self.model_info(&t.provider, &t.model);
            if let (Some(needs), Some(i)) = (ask.needs, info.as_deref()) {
                let missing = needs.missing(i.capabilities);
                if !missing.is_empty() {
                    skip_all(SkipReason::MissingCapability { missing }, &mut skipped);
                    continue;
                }
                if let Some(estimated_tokens) = needs.exceeds(i.context_window) {
                    skip_all(
                        SkipReason::ContextTooSmall {
                            estimated_tokens,
                            context_window: i.context_window,
                        },
                        &mut skipped,
                    );
                    continue;
                }
            }
            let est_cost = ask.needs.and_then(|n| n.cost(info.as_deref()));
            let est_tokens = ask.needs.map_or(0, |n| n.tokens(info.as_deref()));
            let budget_scopes = live.ledger.filter(|l| l.has_budgets()).map(|_| {
                (
                    crate::budgets::scopes(Some(&t.provider), None, Some(&route), ask.client),
                    Spend {
                        usd: est_cost.unwrap_or(0.0),
                        tokens: est_tokens,
                    },
                )
            });
            for (ki, k) in pc.keys.iter().enumerate() {
                let account = pc.account(&k.id);
                let candidate = |account: String| Candidate {
                    provider: t.provider.clone(),
                    key_id: k.id.clone(),
                    account,
                    model: t.model.clone(),
                    target_index: ti,
                    key_index: ki,
                    weight: k.weight,
                    upstream_endpoint: up_ep,
                    url: url.clone(),
                    codec: codec.clone(),
                    upstream: upstream.clone(),
                    info: info.clone(),
                    est_cost,
                    est_tokens,
                    limits: k.limits,
                    note: None,
                };
                let skip = |reason| Skipped {
                    provider: t.provider.clone(),
                    key_id: Some(k.id.clone()),
                    model: t.model.clone(),
                    reason,
                };
                if !k.enabled {
                    skipped.push(skip(SkipReason::KeyDisabled));
                    continue;
                }
                if !health.usable(&account, now) {
                    let st = health.state(&account).unwrap_or_default();
                    if st.status == KeyStatus::Disabled {
                        skipped.push(skip(SkipReason::KeyDisabled));
                        continue;
                    }
                    let back = st
                        .back_at()
                        .map_or(Duration::ZERO, |b| b.saturating_duration_since(now));
                    if st.status == KeyStatus::Cooling
                        && st.reason == Some(ErrorClass::UpstreamUnavailable)
                    {
                        // Held back for degraded mode (see `Plan::degraded`).
                        held.push((back, skipped.len(), candidate(account)));
                    }
                    skipped.push(skip(SkipReason::Unavailable {
                        status: st.status,
                        reason: st.reason,
                        back_in_secs: back.as_secs_f64().ceil() as u64,
                    }));
                    continue;
                }
                if let Err(hit) = live.signals.check(&account, &k.limits, est_tokens, now) {
                    skipped.push(skip(SkipReason::LocalLimit {
                        limit: hit.limit,
                        value: hit.value,
                        back_in_secs: hit
                            .fits_at
                            .saturating_duration_since(now)
                            .as_secs_f64()
                            .ceil() as u64,
                    }));
                    continue;
                }
                if let (Some(ledger), Some((scopes, need))) = (live.ledger, &budget_scopes) {
                    let mut scopes = scopes.clone();
                    scopes.push(format!("key:{account}"));
                    if let Err(e) = ledger.check(&scopes, *need) {
                        skipped.push(skip(SkipReason::OverBudget(e)));
                        continue;
                    }
                }
                candidates.push(candidate(account));
            }
        }
        let counter = self
            .counters
            .lock()
            .entry(route.clone())
            .or_default()
            .clone();
        let in_flight = |a: &str| health.in_flight(a);
        let ctx = StrategyContext {
            counter: counter.next(),
            in_flight: &in_flight,
            signals: live.signals,
            now,
        };
        for_kind(strategy).order(&mut candidates, &ctx);
        // `priority` already sends every turn to the same first usable key; the spreading
        // strategies would rotate a conversation across keys, so it is pinned instead.
        if let Some(c) = conversation.filter(|_| strategy != StrategyKind::Priority) {
            if strategy.spans_targets() {
                if let Some(first) = candidates.first().map(|c| c.target_index) {
                    // The strategy chose the target; the conversation chooses the key in it.
                    candidates.sort_by_key(|c| c.target_index != first);
                }
            }
            strategy::pin_conversation(&mut candidates, c);
        }
        let degraded = candidates.is_empty() && !held.is_empty();
        if degraded {
            // Every usable key is gone and some are out only for upstream failures: try those
            // anyway, the soonest back first, rather than refuse every request while a flaky
            // upstream may well answer (a rate limit or a dead key is never overridden).
            held.sort_by_key(|(back, _, _)| *back);
            let mut promoted: Vec<usize> = held.iter().map(|(_, i, _)| *i).collect();
            promoted.sort_unstable();
            for i in promoted.into_iter().rev() {
                skipped.remove(i);
            }
            candidates = held.into_iter().map(|(_, _, c)| c).collect();
        }
        Ok(Plan {
            route,
            resolution,
            strategy,
            candidates,
            skipped,
            degraded,
        })
    }
}

#[cfg(test)]
mod tests;
