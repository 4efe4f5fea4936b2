//! Routes, targets and plans: which (target, key) candidates may serve a request, in what
//! order, and why the others were skipped.
//!
//! A model name resolves, in this order, to: a configured route; `provider/model`; a pattern
//! route (`claude-*`, longest prefix first); a model listed by exactly one provider; or, for the well-known model families (`claude-*`, `gpt-*`,
//! `o1`/`o3`/`o4*`, `gemini-*`), every provider of the matching kind as a fallback chain.
//! Planning reads key health but never changes it.

pub mod filters;
mod needs;
mod plan;
mod signals;
mod strategy;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

pub use needs::{Needs, DEFAULT_OUTPUT_TOKENS};
pub use plan::{Plan, Resolution, SkipReason, Skipped};
pub use signals::{BoxFuture, LimitHit, LoadSignals, RateWindows, Signals, TAU};
pub use strategy::{for_kind, Strategy, StrategyContext};

use crate::budgets::{BudgetLedger, Spend};
use crate::catalogue::ModelInfo;
use crate::config::{Config, KeyLimits, ProviderKind, StrategyKind, Target};
use crate::formats::translate::{Codec, TranslatorRegistry};
use crate::formats::Endpoint;
use crate::health::HealthRegistry;
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
    /// The outbound proxy the key's requests go through (`None`: direct).
    pub proxy: Option<Arc<crate::config::proxy::ProxyEndpoint>>,
}

impl std::fmt::Debug for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} ({})", self.provider, self.model, self.key_id)
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
    /// Session affinity (see [`Router::plan`]).
    pub conversation: Option<u64>,
    /// What the request needs; `None` plans without capability, context or cost checks.
    pub needs: Option<&'a Needs>,
    /// The client token's name (for client budgets).
    pub client: Option<&'a str>,
}

/// The live state planning reads.
pub struct Live<'a> {
    pub health: &'a HealthRegistry,
    pub signals: &'a dyn LoadSignals,
    pub windows: &'a dyn RateWindows,
    pub ledger: Option<&'a dyn BudgetLedger>,
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

    /// The one planning entry point: orders every candidate that may serve a request at
    /// `now`, and says why the others cannot (the filters of [`filters`], in order: provider
    /// and key switches, endpoint, translator, capability, context window, budgets, health,
    /// local rate limits). With a conversation key and a spreading strategy (all but
    /// `priority`), each target's keys are ordered by rendezvous hashing on it (after the
    /// strategy), so every turn of a conversation goes to the same key while it is usable,
    /// keeping the provider's prompt cache warm; strategies that weigh targets against each
    /// other choose the target and the conversation is pinned to a key within it.
    pub fn plan(&self, ask: &Ask<'_>, live: &Live<'_>, now: Instant) -> Result<Plan, RouteError> {
        let (endpoint, model, health, conversation) =
            (ask.endpoint, ask.model, live.health, ask.conversation);
        let (route, resolution, targets, strategy) = self.resolve(model)?;
        let mut candidates = Vec::new();
        let mut skipped = Vec::new();
        // Keys cooling only because their upstream failed: (time to recovery, index in
        // `skipped`, candidate), for degraded mode.
        let mut held: Vec<(Duration, usize, Candidate)> = Vec::new();
        for (ti, t) in targets.iter().enumerate() {
            let (Some(pc), Some(upstream)) = (
                self.config.provider(&t.provider),
                self.providers.get(&t.provider),
            ) else {
                continue;
            };
            let skip = |key_id: Option<&str>, reason| Skipped {
                provider: t.provider.clone(),
                key_id: key_id.map(str::to_string),
                model: t.model.clone(),
                reason,
            };
            let info = self.model_info(&t.provider, &t.model);
            let passed = filters::provider_enabled(pc)
                .and_then(|()| filters::has_keys(pc))
                .and_then(|()| {
                    filters::served_endpoint(
                        pc,
                        upstream.as_ref(),
                        self.urls.get(t.provider.as_str()),
                        endpoint,
                    )
                })
                .and_then(|(up_ep, url)| {
                    let codec = filters::translator(&self.translators, endpoint, up_ep)?;
                    filters::capabilities(ask.needs, info.as_deref())?;
                    filters::context_window(ask.needs, info.as_deref())?;
                    Ok((up_ep, url, codec))
                });
            let (up_ep, url, codec) = match passed {
                Ok(v) => v,
                Err(reason) => {
                    skipped.push(skip(None, reason));
                    continue;
                }
            };
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
                let candidate = || Candidate {
                    provider: t.provider.clone(),
                    key_id: k.id.clone(),
                    account: account.clone(),
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
                    proxy: k.egress.proxy().cloned(),
                };
                let passed = filters::key_enabled(k)
                    .and_then(|()| {
                        filters::within_budget(live.ledger, budget_scopes.as_ref(), &account)
                    })
                    .map_err(|reason| filters::Unusable {
                        reason,
                        degraded_candidate: None,
                    })
                    .and_then(|()| filters::usable(health, &account, now))
                    .and_then(|()| {
                        filters::within_local_limits(
                            live.windows,
                            &account,
                            &k.limits,
                            est_tokens,
                            now,
                        )
                        .map_err(|reason| filters::Unusable {
                            reason,
                            degraded_candidate: None,
                        })
                    });
                match passed {
                    Ok(()) => candidates.push(candidate()),
                    Err(out) => {
                        if let Some(back) = out.degraded_candidate {
                            held.push((back, skipped.len(), candidate()));
                        }
                        skipped.push(skip(Some(&k.id), out.reason));
                    }
                }
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
        let degraded = filters::degrade(&mut candidates, &mut skipped, held);
        let budget_fallback = self.config.route(&route).is_none_or(|r| r.budget_fallback);
        Ok(Plan {
            route,
            resolution,
            strategy,
            candidates,
            skipped,
            degraded,
            budget_fallback,
        })
    }
}

#[cfg(test)]
mod tests;
