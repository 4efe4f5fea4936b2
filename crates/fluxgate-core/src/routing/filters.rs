//! The planning pipeline's filters. [`super::Router::plan`] runs them in this order; each is a
//! small function that either passes or says, with its own [`SkipReason`], why a target (all
//! its keys) or one key cannot serve the request now.
//!
//! Per target: [`provider_enabled`] → [`has_keys`] → [`served_endpoint`] → [`translator`] →
//! [`capabilities`] → [`context_window`]. Per key: [`key_enabled`] → [`within_budget`] →
//! [`usable`] → [`within_local_limits`]. Budgets come before health: a spent budget lasts
//! until its period ends, so a cooling key over budget is reported (and refused) as over
//! budget, not as worth waiting for. After the filters: the strategy orders the candidates,
//! the conversation pins its key, and [`degrade`] promotes keys cooling only for upstream
//! failures when nothing else is left.

use std::time::Duration;

use tokio::time::Instant;

use super::{Candidate, Needs, SkipReason, Skipped};
use crate::budgets::{BudgetLedger, Spend};
use crate::catalogue::ModelInfo;
use crate::config::{KeyConfig, KeyLimits, ProviderConfig};
use crate::formats::translate::{Codec, TranslatorRegistry};
use crate::formats::Endpoint;
use crate::health::{ErrorClass, HealthRegistry, KeyStatus};
use crate::providers::Provider;

/// The provider is switched off in the config.
pub fn provider_enabled(pc: &ProviderConfig) -> Result<(), SkipReason> {
    if pc.enabled {
        Ok(())
    } else {
        Err(SkipReason::ProviderDisabled)
    }
}

/// The provider has at least one key.
pub fn has_keys(pc: &ProviderConfig) -> Result<(), SkipReason> {
    if pc.keys.is_empty() {
        Err(SkipReason::NoKeys)
    } else {
        Ok(())
    }
}

/// The endpoint this upstream serves for the client's, and its URL (from `urls`, parsed once
/// per config).
pub fn served_endpoint(
    pc: &ProviderConfig,
    upstream: &dyn Provider,
    urls: Option<&Vec<(Endpoint, http::Uri)>>,
    endpoint: Endpoint,
) -> Result<(Endpoint, http::Uri), SkipReason> {
    upstream
        .upstream_endpoint(endpoint)
        .and_then(|ep| {
            urls?
                .iter()
                .find(|(e, _)| *e == ep)
                .map(|(_, u)| (ep, u.clone()))
        })
        .ok_or_else(|| SkipReason::NoEndpoint {
            kind: pc.kind.as_str().into(),
            endpoint,
        })
}

/// A codec from the client's endpoint to the upstream's (passthrough when they match).
pub fn translator(
    translators: &TranslatorRegistry,
    from: Endpoint,
    to: Endpoint,
) -> Result<Codec, SkipReason> {
    translators
        .codec(from, to)
        .ok_or(SkipReason::NoTranslator { from, to })
}

/// The model has every capability the request uses (an unknown model is given the benefit of
/// the doubt).
pub fn capabilities(needs: Option<&Needs>, info: Option<&ModelInfo>) -> Result<(), SkipReason> {
    let (Some(needs), Some(info)) = (needs, info) else {
        return Ok(());
    };
    let missing = needs.missing(info.capabilities);
    if missing.is_empty() {
        Ok(())
    } else {
        Err(SkipReason::MissingCapability { missing })
    }
}

/// The prompt (estimated) fits the model's context window.
pub fn context_window(needs: Option<&Needs>, info: Option<&ModelInfo>) -> Result<(), SkipReason> {
    let (Some(needs), Some(info)) = (needs, info) else {
        return Ok(());
    };
    match needs.exceeds(info.context_window) {
        None => Ok(()),
        Some(estimated_tokens) => Err(SkipReason::ContextTooSmall {
            estimated_tokens,
            context_window: info.context_window,
        }),
    }
}

/// The key is switched on in the config.
pub fn key_enabled(k: &KeyConfig) -> Result<(), SkipReason> {
    if k.enabled {
        Ok(())
    } else {
        Err(SkipReason::KeyDisabled)
    }
}

/// Sending `need` on this key would break no budget over `scopes` and the key's own.
pub fn within_budget(
    ledger: Option<&dyn BudgetLedger>,
    scopes: Option<&(Vec<String>, Spend)>,
    account: &str,
) -> Result<(), SkipReason> {
    let (Some(ledger), Some((scopes, need))) = (ledger, scopes) else {
        return Ok(());
    };
    let mut scopes = scopes.clone();
    scopes.push(format!("key:{account}"));
    ledger.check(&scopes, *need).map_err(SkipReason::OverBudget)
}

/// Why a key is out of rotation, and whether degraded mode may try it anyway.
#[derive(Debug, PartialEq)]
pub struct Unusable {
    pub reason: SkipReason,
    /// For a key cooling only because its upstream failed: how soon it is back (degraded mode
    /// tries these, the soonest first).
    pub degraded_candidate: Option<Duration>,
}

/// The key is in rotation now.
pub fn usable(health: &HealthRegistry, account: &str, now: Instant) -> Result<(), Unusable> {
    if health.usable(account, now) {
        return match health.balance_out_of_rotation(account) {
            None => Ok(()),
            // Low on credit: out of rotation, but still better than nothing (degraded mode).
            Some(b) => Err(Unusable {
                reason: SkipReason::LowBalance {
                    remaining: b.remaining,
                    currency: b.currency,
                    threshold: b.threshold,
                },
                degraded_candidate: Some(Duration::ZERO),
            }),
        };
    }
    let st = health.state(account).unwrap_or_default();
    if st.status == KeyStatus::Disabled {
        return Err(Unusable {
            reason: SkipReason::KeyDisabled,
            degraded_candidate: None,
        });
    }
    let back = st
        .back_at()
        .map_or(Duration::ZERO, |b| b.saturating_duration_since(now));
    let flaky =
        st.status == KeyStatus::Cooling && st.reason == Some(ErrorClass::UpstreamUnavailable);
    Err(Unusable {
        reason: SkipReason::Unavailable {
            status: st.status,
            reason: st.reason,
            back_in_secs: back.as_secs_f64().ceil() as u64,
        },
        degraded_candidate: flaky.then_some(back),
    })
}

/// The key has room under its local `rpm` / `tpm` / `rpd` for `tokens` more.
pub fn within_local_limits(
    windows: &dyn super::RateWindows,
    account: &str,
    limits: &KeyLimits,
    tokens: u64,
    now: Instant,
) -> Result<(), SkipReason> {
    windows
        .check(account, limits, tokens, now)
        .map_err(|hit| SkipReason::LocalLimit {
            limit: hit.limit,
            value: hit.value,
            back_in_secs: hit
                .fits_at
                .saturating_duration_since(now)
                .as_secs_f64()
                .ceil() as u64,
        })
}

/// Degraded mode: when no candidate is left and some keys are out only for upstream failures,
/// those become the candidates, the soonest back first, and leave the skipped list (a rate
/// limit or a dead key is never overridden). Returns whether it happened.
pub fn degrade(
    candidates: &mut Vec<Candidate>,
    skipped: &mut Vec<Skipped>,
    mut held: Vec<(Duration, usize, Candidate)>,
) -> bool {
    if !candidates.is_empty() || held.is_empty() {
        return false;
    }
    held.sort_by_key(|(back, _, _)| *back);
    let mut promoted: Vec<usize> = held.iter().map(|(_, i, _)| *i).collect();
    promoted.sort_unstable();
    for i in promoted.into_iter().rev() {
        skipped.remove(i);
    }
    *candidates = held.into_iter().map(|(_, _, c)| c).collect();
    true
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::events::EventBus;
    use crate::health::{Failure, FailureKind, NoPersistence, Policy};
    use crate::routing::{Router, Signals};

    const CONFIG: &str = r#"
[providers.on]
kind = "openai"
keys = [{ id = "k" }, { id = "off", enabled = false, rpm = 1 }]

[providers.off]
kind = "anthropic"
enabled = false

[providers.gem]
kind = "gemini"
keys = [{ id = "g", rpm = 1 }]
"#;

    fn config() -> Config {
        Config::from_toml(CONFIG, Path::new("t.toml")).expect("config")
    }

    fn health(config: &Config) -> HealthRegistry {
        let h = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
        h.sync(config);
        h
    }

    #[test]
    fn switched_off_providers_and_keys_and_empty_pools_are_skipped() {
        let c = config();
        assert_eq!(provider_enabled(&c.providers[0]), Ok(()));
        assert_eq!(
            provider_enabled(&c.providers[1]),
            Err(SkipReason::ProviderDisabled)
        );
        assert_eq!(has_keys(&c.providers[0]), Ok(()));
        assert_eq!(has_keys(&c.providers[1]), Err(SkipReason::NoKeys));
        assert_eq!(key_enabled(&c.providers[0].keys[0]), Ok(()));
        assert_eq!(
            key_enabled(&c.providers[0].keys[1]),
            Err(SkipReason::KeyDisabled)
        );
    }

    #[test]
    fn an_upstream_without_the_endpoint_is_skipped() {
        let c = Arc::new(config());
        let router = Router::new(c.clone(), TranslatorRegistry::builtin());
        let gem = &c.providers[2];
        let upstream = router.provider("gem").expect("provider");
        let urls = router.urls.get("gem");
        assert!(served_endpoint(gem, upstream.as_ref(), urls, Endpoint::ChatCompletions).is_ok());
        assert_eq!(
            served_endpoint(gem, upstream.as_ref(), urls, Endpoint::CountTokens),
            Err(SkipReason::NoEndpoint {
                kind: "gemini".into(),
                endpoint: Endpoint::CountTokens
            })
        );
        assert_eq!(
            served_endpoint(gem, upstream.as_ref(), None, Endpoint::GenerateContent),
            Err(SkipReason::NoEndpoint {
                kind: "gemini".into(),
                endpoint: Endpoint::GenerateContent
            }),
            "no parsed URL, no endpoint"
        );
    }

    #[test]
    fn a_pair_without_a_translator_is_skipped() {
        let t = TranslatorRegistry::builtin();
        assert!(matches!(
            translator(&t, Endpoint::Messages, Endpoint::Messages),
            Ok(Codec::Passthrough)
        ));
        assert!(matches!(
            translator(&t, Endpoint::Messages, Endpoint::ChatCompletions),
            Ok(Codec::Translated(_))
        ));
        assert!(matches!(
            translator(&t, Endpoint::CountTokens, Endpoint::ChatCompletions),
            Err(SkipReason::NoTranslator { .. })
        ));
    }

    #[test]
    fn capabilities_and_context_are_checked_only_for_known_models() {
        let c = config();
        let info = c.catalogue.lookup("on", "gpt-4o").expect("catalogued");
        let tools = Needs::new(
            Endpoint::ChatCompletions,
            bytes::Bytes::from_static(br#"{"messages":[]}"#),
            true,
            None,
        );
        assert_eq!(capabilities(Some(&tools), Some(&info)), Ok(()));
        assert_eq!(capabilities(Some(&tools), None), Ok(()));
        let mut no_tools = info.clone();
        no_tools.capabilities = Default::default();
        assert!(matches!(
            capabilities(Some(&tools), Some(&no_tools)),
            Err(SkipReason::MissingCapability { .. })
        ));
        let long = Needs::new(
            Endpoint::ChatCompletions,
            bytes::Bytes::from(format!(
                r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
                "word ".repeat(2_000)
            )),
            false,
            None,
        );
        assert_eq!(context_window(Some(&long), Some(&info)), Ok(()));
        let mut small = info.clone();
        small.context_window = 100;
        assert!(matches!(
            context_window(Some(&long), Some(&small)),
            Err(SkipReason::ContextTooSmall {
                context_window: 100,
                ..
            })
        ));
        assert_eq!(context_window(None, Some(&small)), Ok(()));
    }

    #[test]
    fn a_key_over_its_own_budget_is_skipped() {
        let c = Config::from_toml(
            r#"
[[budgets]]
key = "on/k"
daily_tokens = 10

[providers.on]
kind = "openai"
keys = [{ id = "k" }, { id = "j" }]
"#,
            Path::new("t.toml"),
        )
        .expect("config");
        let ledger = crate::budgets::Ledger::new(EventBus::new());
        ledger.set_budgets(&c.budgets);
        let scopes = (
            crate::budgets::scopes(Some("on"), None, None, None),
            Spend {
                usd: 0.0,
                tokens: 11,
            },
        );
        assert!(matches!(
            within_budget(Some(&ledger), Some(&scopes), "on/k"),
            Err(SkipReason::OverBudget(_))
        ));
        assert_eq!(within_budget(Some(&ledger), Some(&scopes), "on/j"), Ok(()));
        assert_eq!(within_budget(None, Some(&scopes), "on/k"), Ok(()));
    }

    #[test]
    fn only_keys_cooling_for_upstream_failures_are_kept_for_degraded_mode() {
        let c = config();
        let h = health(&c);
        let now = Instant::now();
        assert_eq!(usable(&h, "on/k", now), Ok(()));
        let fail = |class, status| Failure {
            class,
            kind: FailureKind::Status(status),
            status: Some(status),
            message: "x".into(),
            retry_hint: None,
        };
        for _ in 0..3 {
            h.report_failure("on/k", &fail(ErrorClass::UpstreamUnavailable, 502));
        }
        let out = usable(&h, "on/k", Instant::now()).expect_err("cooling");
        assert!(matches!(out.reason, SkipReason::Unavailable { .. }));
        assert!(out.degraded_candidate.is_some());
        h.report_failure("gem/g", &fail(ErrorClass::RateLimited, 429));
        let out = usable(&h, "gem/g", Instant::now()).expect_err("cooling");
        assert!(matches!(out.reason, SkipReason::Unavailable { .. }));
        assert_eq!(
            out.degraded_candidate, None,
            "a rate limit is never overridden"
        );
    }

    #[test]
    fn a_key_at_its_local_limit_is_skipped_until_it_fits() {
        let c = config();
        let signals = Signals::default();
        let limits = c.providers[2].keys[0].limits;
        let now = Instant::now();
        assert_eq!(
            within_local_limits(&signals, "gem/g", &limits, 10, now),
            Ok(())
        );
        signals.take("gem/g", &limits, 10, now).expect("room");
        assert!(matches!(
            within_local_limits(&signals, "gem/g", &limits, 10, now),
            Err(SkipReason::LocalLimit {
                limit: "rpm",
                value: 1,
                back_in_secs: 60
            })
        ));
    }

    #[test]
    fn degraded_mode_promotes_the_soonest_back_first_only_when_nothing_else_is_left() {
        let c = Arc::new(config());
        let router = Router::new(c, TranslatorRegistry::builtin());
        let h = health(router.config());
        let plan = router
            .plan(
                &super::super::Ask {
                    endpoint: Endpoint::ChatCompletions,
                    model: "on/gpt-4o",
                    conversation: None,
                    needs: None,
                    client: None,
                },
                &super::super::Live {
                    health: &h,
                    signals: &Signals::default(),
                    windows: &Signals::default(),
                    ledger: None,
                },
                Instant::now(),
            )
            .expect("plan");
        let cand = plan.candidates[0].clone();
        let skip = |key: &str| Skipped {
            provider: "on".into(),
            key_id: Some(key.into()),
            model: "gpt-4o".into(),
            reason: SkipReason::KeyDisabled,
        };
        let mut late = cand.clone();
        late.key_id = "late".into();
        let held = vec![
            (Duration::from_secs(9), 0, late),
            (Duration::from_secs(1), 2, cand.clone()),
        ];
        let mut candidates = Vec::new();
        let mut skipped = vec![skip("late"), skip("other"), skip("k")];
        assert!(degrade(&mut candidates, &mut skipped, held.clone()));
        let keys: Vec<&str> = candidates.iter().map(|c| c.key_id.as_str()).collect();
        assert_eq!(keys, ["k", "late"]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].key_id.as_deref(), Some("other"));

        let mut candidates = vec![cand];
        let mut skipped = vec![skip("late"), skip("other"), skip("k")];
        assert!(!degrade(&mut candidates, &mut skipped, held));
        assert_eq!(skipped.len(), 3);
    }
}
