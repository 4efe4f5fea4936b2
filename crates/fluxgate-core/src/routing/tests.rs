use crate::budgets::{BudgetLedger, Ledger};
use std::path::Path;

use std::collections::HashMap;

use super::*;
use crate::catalogue::Capability;
use crate::events::EventBus;
use crate::health::{ErrorClass, Failure, FailureKind, NoPersistence, Policy};

const CONFIG: &str = r#"
[providers.ant]
kind = "anthropic"
keys = [{ id = "a1", secret = "env:X" }, { id = "a2", secret = "env:X" }, { id = "a3", secret = "env:X", weight = 50 }]

[providers.oa]
kind = "openai"
keys = [{ id = "o1", secret = "env:X" }, { id = "o2", secret = "env:X", enabled = false }]
models = ["gpt-special"]

[providers.ds]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "d1", secret = "env:X" }]
models = ["deepseek-chat", "gpt-special"]

[providers.gem]
kind = "gemini"
keys = [{ id = "g1", secret = "env:X" }]

[routes.chain]
targets = ["oa/gpt-4o", "ds/deepseek-chat"]

[routes.rr]
targets = ["ant/claude-x", "oa/gpt-4o"]
strategy = "round-robin"

[routes.w]
targets = ["ant/claude-x"]
strategy = "weighted"

[routes.lif]
targets = ["ant/claude-x"]
strategy = "least-in-flight"

[routes.mixed]
targets = ["ant/claude-x", "oa/gpt-4o", "gem/gemini-2.0-flash"]
"#;

/// Plans without needs, signals or budgets (what most tests here look at).
impl Router {
    fn plan_simple(
        &self,
        endpoint: Endpoint,
        model: &str,
        health: &HealthRegistry,
        now: Instant,
    ) -> Result<Plan, RouteError> {
        self.plan_conv(endpoint, model, health, now, None)
    }

    fn plan_conv(
        &self,
        endpoint: Endpoint,
        model: &str,
        health: &HealthRegistry,
        now: Instant,
        conversation: Option<u64>,
    ) -> Result<Plan, RouteError> {
        self.plan(
            &Ask {
                endpoint,
                model,
                conversation,
                needs: None,
                client: None,
            },
            &Live {
                health,
                signals: &Signals::default(),
                windows: &Signals::default(),
                ledger: None,
            },
            now,
        )
    }
}

fn setup() -> (Router, HealthRegistry) {
    let config = Arc::new(Config::from_toml(CONFIG, Path::new("t.toml")).expect("config"));
    let health = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
    health.sync(&config);
    (Router::new(config, TranslatorRegistry::builtin()), health)
}

fn order(plan: &Plan) -> Vec<String> {
    plan.candidates
        .iter()
        .map(|c| format!("{}/{}", c.provider, c.key_id))
        .collect()
}

#[test]
fn resolution_order() {
    let (r, _) = setup();
    assert_eq!(r.resolve("chain").expect("route").1, Resolution::Route);
    let (_, how, t, _) = r.resolve("ds/deepseek-reasoner").expect("provider/model");
    assert_eq!(how, Resolution::ProviderModel);
    assert_eq!(t[0].model, "deepseek-reasoner");
    assert_eq!(
        r.resolve("deepseek-chat").expect("listed").1,
        Resolution::ListedModel
    );
    assert!(matches!(
        r.resolve("gpt-special"),
        Err(RouteError::Ambiguous { .. })
    ));
    let (_, how, t, _) = r.resolve("claude-opus-4").expect("family");
    assert_eq!(how, Resolution::ModelFamily);
    assert_eq!(
        t,
        vec![Target {
            provider: "ant".into(),
            model: "claude-opus-4".into()
        }]
    );
    assert_eq!(r.resolve("gpt-4.1").expect("family").2[0].provider, "oa");
    assert!(matches!(r.resolve("llama-3"), Err(RouteError::NoRoute(_))));
}

#[test]
fn targets_form_a_fallback_chain() {
    let (r, h) = setup();
    let p = r
        .plan_simple(Endpoint::ChatCompletions, "chain", &h, Instant::now())
        .expect("plan");
    assert_eq!(order(&p), ["oa/o1", "ds/d1"]);
    assert_eq!(p.skipped.len(), 1);
    assert_eq!(p.skipped[0].reason, SkipReason::KeyDisabled);
}

#[test]
fn round_robin_rotates_keys_within_a_target() {
    let (r, h) = setup();
    let firsts: Vec<String> = (0..6)
        .map(|_| {
            order(
                &r.plan_simple(Endpoint::Messages, "rr", &h, Instant::now())
                    .expect("plan"),
            )[0]
            .clone()
        })
        .collect();
    assert_eq!(
        firsts,
        ["ant/a1", "ant/a2", "ant/a3", "ant/a1", "ant/a2", "ant/a3"]
    );
    // The openai target serves /v1/messages through the Messages -> Chat translator, after
    // the anthropic keys.
    let p = r
        .plan_simple(Endpoint::Messages, "rr", &h, Instant::now())
        .expect("plan");
    let last = p.candidates.last().expect("candidates");
    assert_eq!(last.account, "oa/o1");
    assert_eq!(last.upstream_endpoint, Endpoint::ChatCompletions);
    assert!(matches!(last.codec, Codec::Translated(_)));
    // Without translators it would be skipped, with the reason.
    let bare = Router::new(r.config().clone(), TranslatorRegistry::default());
    let p = bare
        .plan_simple(Endpoint::Messages, "rr", &h, Instant::now())
        .expect("plan");
    assert!(p
        .skipped
        .iter()
        .any(|s| matches!(s.reason, SkipReason::NoTranslator { .. })));
}

#[test]
fn weighted_prefers_heavy_keys() {
    let (r, h) = setup();
    let mut heavy_first = 0;
    for _ in 0..400 {
        let p = r
            .plan_simple(Endpoint::Messages, "w", &h, Instant::now())
            .expect("plan");
        assert_eq!(p.candidates.len(), 3, "every key stays as a fallback");
        if p.candidates[0].key_id == "a3" {
            heavy_first += 1;
        }
    }
    // a3 has weight 50 against 1 and 1: it should lead ~96% of the time.
    assert!(heavy_first > 340, "{heavy_first}");
}

#[test]
fn least_in_flight_prefers_idle_keys() {
    let (r, h) = setup();
    let _g1 = h.begin("ant/a1");
    let _g2 = h.begin("ant/a1");
    let _g3 = h.begin("ant/a2");
    let p = r
        .plan_simple(Endpoint::Messages, "lif", &h, Instant::now())
        .expect("plan");
    assert_eq!(order(&p), ["ant/a3", "ant/a2", "ant/a1"]);
}

#[test]
fn cooling_keys_are_skipped_with_their_return_time() {
    let (r, h) = setup();
    let f = Failure {
        class: ErrorClass::RateLimited,
        kind: FailureKind::Status(429),
        status: Some(429),
        message: "x".into(),
        retry_hint: Some(Duration::from_secs(30)),
    };
    h.report_failure("ant/a1", &f);
    let p = r
        .plan_simple(Endpoint::Messages, "mixed", &h, Instant::now())
        .expect("plan");
    assert_eq!(order(&p), ["ant/a2", "ant/a3", "oa/o1", "gem/g1"]);
    assert_eq!(p.earliest_back_in(), Some(30));
    // Gemini serves no embeddings endpoint at all.
    let p = r
        .plan_simple(Endpoint::Embeddings, "mixed", &h, Instant::now())
        .expect("plan");
    let gem = p
        .skipped
        .iter()
        .find(|s| s.provider == "gem")
        .expect("gemini skipped");
    assert!(
        matches!(gem.reason, SkipReason::NoEndpoint { .. }),
        "{:?}",
        gem.reason
    );
}

#[test]
fn pattern_routes_match_by_longest_prefix() {
    let text = format!(
        "{CONFIG}\n[routes.\"claude-*\"]\ntargets = [\"ds/deepseek-chat\"]\n\n[routes.\"claude-haiku-*\"]\ntargets = [\"oa/gpt-4o-mini\"]\n"
    );
    let config = Arc::new(Config::from_toml(&text, Path::new("t.toml")).expect("config"));
    let r = Router::new(config, TranslatorRegistry::builtin());
    let (name, _, targets, _) = r.resolve("claude-sonnet-4-5").expect("resolves");
    assert_eq!(name, "claude-*");
    assert_eq!(targets[0].model, "deepseek-chat");
    let (name, _, targets, _) = r.resolve("claude-haiku-4-5").expect("resolves");
    assert_eq!(name, "claude-haiku-*");
    assert_eq!(targets[0].model, "gpt-4o-mini");
    // An exact route still wins, and other models are untouched.
    assert_eq!(r.resolve("rr").expect("resolves").0, "rr");
    assert_eq!(r.resolve("gemini-x").expect("resolves").0, "gemini-x");
    let bad = format!("{CONFIG}\n[routes.\"a*b\"]\ntargets = [\"ds/x\"]\n");
    let err = Config::from_toml(&bad, Path::new("t.toml")).expect_err("refused");
    assert!(err.to_string().contains("routes.\"a*b\""), "{err}");
}

const SMART: &str = r#"
[providers.fast]
kind = "openai"
keys = [{ id = "k1", secret = "env:X" }, { id = "k2", secret = "env:X" }, { id = "k3", secret = "env:X" }]
models = ["gpt-4o", "gpt-4o-mini"]

[providers.ds]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "d1", secret = "env:X", rpm = 2 }]
models = ["deepseek-chat"]

[providers.ant]
kind = "anthropic"
keys = [{ id = "a1", secret = "env:X" }]
models = ["claude-sonnet-4-5", "claude-haiku-4-5"]

[providers.local]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
keys = [{ id = "l1", secret = "env:X" }]
models = ["tiny"]

[models."tiny"]
context_window = 4096
capabilities = ["chat"]
input_price = 0
output_price = 0

[routes.lat]
targets = ["fast/gpt-4o"]
strategy = "least-latency"

[routes.coding]
targets = ["ant/claude-sonnet-4-5", "fast/gpt-4o", "ds/deepseek-chat", "ant/claude-haiku-4-5"]
strategy = "least-cost"

[routes.vision]
capability = ["vision"]
strategy = "least-cost"

[routes.quota]
targets = ["fast/gpt-4o"]
strategy = "quota-aware"

[routes.small-first]
targets = ["local/tiny", "ds/deepseek-chat"]
"#;

fn smart() -> (Router, HealthRegistry, Signals) {
    let config = Arc::new(Config::from_toml(SMART, Path::new("t.toml")).expect("config"));
    let health = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
    health.sync(&config);
    (
        Router::new(config, TranslatorRegistry::builtin()),
        health,
        Signals::default(),
    )
}

fn needs(endpoint: Endpoint, body: &str) -> Needs {
    let head = crate::formats::body::read_head(body.as_bytes()).expect("head");
    Needs::new(
        endpoint,
        bytes::Bytes::from(body.to_string()),
        head.tools,
        head.max_output,
    )
}

fn plan_with(
    router: &Router,
    health: &HealthRegistry,
    signals: &Signals,
    ledger: Option<&dyn BudgetLedger>,
    model: &str,
    n: Option<&Needs>,
    now: Instant,
) -> Plan {
    router
        .plan(
            &Ask {
                endpoint: Endpoint::ChatCompletions,
                model,
                conversation: None,
                needs: n,
                client: None,
            },
            &Live {
                health,
                signals,
                windows: signals,
                ledger,
            },
            now,
        )
        .expect("plan")
}

/// A deterministic simulation on a virtual clock: three keys with time to first token of 50,
/// 200 and 1,000 ms, one request every 100 ms, each sent to the plan's first candidate.
#[test]
fn least_latency_prefers_the_fastest_key_and_rebalances_after_a_swap() {
    let (router, health, signals) = smart();
    let t0 = Instant::now();
    let mut latency: HashMap<&str, u64> = [("k1", 50), ("k2", 200), ("k3", 1_000)].into();
    let mut sent: Vec<(u64, String)> = Vec::new();
    let run =
        |sent: &mut Vec<(u64, String)>, from_ms: u64, to_ms: u64, latency: &HashMap<&str, u64>| {
            let mut t = from_ms;
            while t < to_ms {
                let now = t0 + Duration::from_millis(t);
                let plan = plan_with(&router, &health, &signals, None, "lat", None, now);
                let first = &plan.candidates[0];
                let ms = latency[first.key_id.as_str()];
                signals.observe_latency(
                    &first.account,
                    &first.model,
                    Duration::from_millis(ms),
                    now + Duration::from_millis(ms),
                );
                sent.push((t, first.key_id.clone()));
                t += 100;
            }
        };
    run(&mut sent, 0, 60_000, &latency);
    let share = |sent: &[(u64, String)], from: u64, to: u64, key: &str| {
        let window: Vec<_> = sent.iter().filter(|(t, _)| *t >= from && *t < to).collect();
        window.iter().filter(|(_, k)| k == key).count() as f64 / window.len() as f64
    };
    let (fast, slow) = (share(&sent, 0, 60_000, "k1"), share(&sent, 0, 60_000, "k3"));
    println!(
        "first 60 s: fastest {fast:.3}, middle {:.3}, slowest {slow:.3}",
        share(&sent, 0, 60_000, "k2")
    );
    assert!(fast >= 0.60, "fastest key got {fast:.2}");
    assert!(slow < 0.10, "slowest key got {slow:.2}");
    // The latencies swap: k3 is now the fastest, k1 the slowest.
    latency.insert("k1", 1_000);
    latency.insert("k3", 50);
    run(&mut sent, 60_000, 120_000, &latency);
    // Within 30 s the traffic has moved: judged over the 10 s ending 30 s after the swap.
    let (fast, slow) = (
        share(&sent, 80_000, 90_000, "k3"),
        share(&sent, 80_000, 90_000, "k1"),
    );
    println!("20-30 s after the swap: new fastest {fast:.3}, new slowest {slow:.3}");
    assert!(
        fast >= 0.60,
        "new fastest key got {fast:.2} 20-30 s after the swap"
    );
    assert!(
        slow < 0.10,
        "new slowest key got {slow:.2} 20-30 s after the swap"
    );
    let (fast, slow) = (
        share(&sent, 90_000, 120_000, "k3"),
        share(&sent, 90_000, 120_000, "k1"),
    );
    assert!(
        fast >= 0.60 && slow < 0.10,
        "steady after the swap: {fast:.2} / {slow:.2}"
    );
    // Each candidate says what the strategy saw.
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "lat",
        None,
        t0 + Duration::from_secs(120),
    );
    assert!(plan.candidates.iter().all(|c| c
        .note
        .as_deref()
        .is_some_and(|n| n.contains("time to first token"))));
}

#[test]
fn least_cost_orders_targets_by_this_requests_estimated_cost() {
    let (router, health, signals) = smart();
    let body = r#"{"model":"coding","max_tokens":2000,"messages":[{"role":"user","content":"write a parser"}]}"#;
    let n = needs(Endpoint::ChatCompletions, body);
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "coding",
        Some(&n),
        Instant::now(),
    );
    let models: Vec<&str> = plan.candidates.iter().map(|c| c.model.as_str()).collect();
    // deepseek $0.42/M out < haiku $5 < gpt-4o $10 (three keys) < sonnet $15.
    assert_eq!(
        models,
        [
            "deepseek-chat",
            "claude-haiku-4-5",
            "gpt-4o",
            "gpt-4o",
            "gpt-4o",
            "claude-sonnet-4-5"
        ]
    );
    let costs: Vec<f64> = plan
        .candidates
        .iter()
        .map(|c| c.est_cost.expect("a value"))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] <= w[1]), "{costs:?}");
    // The three gpt-4o keys take turns at their place.
    let next = plan_with(
        &router,
        &health,
        &signals,
        None,
        "coding",
        Some(&n),
        Instant::now(),
    );
    assert_ne!(plan.candidates[2].key_id, next.candidates[2].key_id);
}

#[test]
fn a_capability_route_serves_only_models_that_can() {
    let (router, health, signals) = smart();
    let (_, _, targets, _) = router.resolve("vision").expect("a value");
    let names: Vec<String> = targets
        .iter()
        .map(|t| format!("{}/{}", t.provider, t.model))
        .collect();
    assert_eq!(
        names,
        [
            "fast/gpt-4o",
            "fast/gpt-4o-mini",
            "ant/claude-sonnet-4-5",
            "ant/claude-haiku-4-5"
        ]
    );
    let img = r#"{"model":"vision","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}]}"#;
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "vision",
        Some(&needs(Endpoint::ChatCompletions, img)),
        Instant::now(),
    );
    assert_eq!(
        plan.candidates[0].model, "gpt-4o-mini",
        "cheapest vision model first"
    );
    // On a route mixing models, an image request skips the models without vision.
    let img_coding = img.replace("\"vision\"", "\"coding\"");
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "coding",
        Some(&needs(Endpoint::ChatCompletions, &img_coding)),
        Instant::now(),
    );
    assert!(plan.candidates.iter().all(|c| c.model != "deepseek-chat"));
    let skip = plan
        .skipped
        .iter()
        .find(|s| s.model == "deepseek-chat")
        .expect("skipped");
    assert_eq!(
        skip.reason,
        SkipReason::MissingCapability {
            missing: vec![Capability::Vision]
        }
    );
    assert!(skip.reason.to_string().contains("lacks vision"));
}

#[test]
fn a_prompt_longer_than_a_context_window_skips_that_target_before_sending() {
    let (router, health, signals) = smart();
    let long = "lorem ipsum dolor sit amet ".repeat(1_500); // ~40 KB, ~10K tokens
    let body =
        format!(r#"{{"model":"small-first","messages":[{{"role":"user","content":"{long}"}}]}}"#);
    let n = needs(Endpoint::ChatCompletions, &body);
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "small-first",
        Some(&n),
        Instant::now(),
    );
    assert_eq!(plan.candidates.len(), 1);
    assert_eq!(plan.candidates[0].model, "deepseek-chat");
    match &plan.skipped[0].reason {
        SkipReason::ContextTooSmall {
            estimated_tokens,
            context_window,
        } => {
            assert_eq!(*context_window, 4096);
            assert!(
                (9_000..12_000).contains(estimated_tokens),
                "{estimated_tokens}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A short prompt goes to the small model first.
    let short = needs(
        Endpoint::ChatCompletions,
        r#"{"model":"small-first","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let plan = plan_with(
        &router,
        &health,
        &signals,
        None,
        "small-first",
        Some(&short),
        Instant::now(),
    );
    assert_eq!(plan.candidates[0].model, "tiny");
}

#[test]
fn quota_aware_prefers_the_key_with_the_most_headroom() {
    let (router, health, signals) = smart();
    let now = Instant::now();
    let headers = |remaining: &str| {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-ratelimit-limit-requests",
            "100".parse().expect("a value"),
        );
        h.insert(
            "x-ratelimit-remaining-requests",
            remaining.parse().expect("a value"),
        );
        h.insert("x-ratelimit-reset-requests", "1m".parse().expect("a value"));
        h
    };
    signals.observe_headers("fast/k1", &headers("5"), now);
    signals.observe_headers("fast/k2", &headers("90"), now);
    signals.observe_headers("fast/k3", &headers("40"), now);
    for _ in 0..3 {
        let plan = plan_with(&router, &health, &signals, None, "quota", None, now);
        assert_eq!(order(&plan), ["fast/k2", "fast/k3", "fast/k1"]);
    }
    let plan = plan_with(&router, &health, &signals, None, "quota", None, now);
    assert_eq!(
        plan.candidates[0].note.as_deref(),
        Some("90% of its tightest rate limit left")
    );
}

#[test]
fn local_limits_and_budgets_keep_a_key_out_with_the_reason() {
    let (router, health, signals) = smart();
    let now = Instant::now();
    let limits = router.config().provider("ds").expect("a value").keys[0].limits;
    signals.take("ds/d1", &limits, 10, now).expect("a value");
    signals.take("ds/d1", &limits, 10, now).expect("a value");
    let n = needs(
        Endpoint::ChatCompletions,
        r#"{"model":"coding","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let plan = plan_with(&router, &health, &signals, None, "coding", Some(&n), now);
    let skip = plan
        .skipped
        .iter()
        .find(|s| s.provider == "ds")
        .expect("ds skipped");
    assert!(
        matches!(
            skip.reason,
            SkipReason::LocalLimit {
                limit: "rpm",
                value: 2,
                back_in_secs: 60
            }
        ),
        "{:?}",
        skip.reason
    );

    let ledger = Ledger::new(EventBus::new());
    ledger.set_budgets(&[crate::config::Budget {
        scope: crate::config::BudgetScope::Provider("ant".into()),
        daily_usd: Some(0.000_001),
        monthly_usd: None,
        daily_tokens: None,
        monthly_tokens: None,
    }]);
    let plan = plan_with(
        &router,
        &health,
        &signals,
        Some(&ledger),
        "coding",
        Some(&n),
        now,
    );
    assert!(plan.candidates.iter().all(|c| c.provider != "ant"));
    let over: Vec<_> = plan
        .skipped
        .iter()
        .filter(|s| matches!(s.reason, SkipReason::OverBudget(_)))
        .collect();
    assert_eq!(over.len(), 2, "both anthropic targets: {:?}", plan.skipped);
    assert!(over[0]
        .reason
        .to_string()
        .contains("daily budget of provider ant"));
}

#[test]
fn a_cooling_key_over_budget_counts_as_over_budget_not_as_worth_waiting_for() {
    let (router, health, signals) = smart();
    let f = Failure {
        class: ErrorClass::RateLimited,
        kind: FailureKind::Status(429),
        status: Some(429),
        message: "x".into(),
        retry_hint: Some(Duration::from_secs(30)),
    };
    health.report_failure("fast/k1", &f);
    let ledger = Ledger::new(EventBus::new());
    ledger.set_budgets(&[crate::config::Budget {
        scope: crate::config::BudgetScope::Client("ci".into()),
        daily_usd: None,
        monthly_usd: None,
        daily_tokens: Some(1),
        monthly_tokens: None,
    }]);
    let n = needs(
        Endpoint::ChatCompletions,
        r#"{"model":"lat","messages":[{"role":"user","content":"hi"}]}"#,
    );
    let plan = router
        .plan(
            &Ask {
                endpoint: Endpoint::ChatCompletions,
                model: "lat",
                conversation: None,
                needs: Some(&n),
                client: Some("ci"),
            },
            &Live {
                health: &health,
                signals: &signals,
                windows: &signals,
                ledger: Some(&ledger),
            },
            Instant::now(),
        )
        .expect("plan");
    assert!(plan.candidates.is_empty());
    assert!(plan
        .skipped
        .iter()
        .all(|s| matches!(s.reason, SkipReason::OverBudget(_))));
    assert!(plan.budget_refusal().is_some(), "{:?}", plan.skipped);
}
