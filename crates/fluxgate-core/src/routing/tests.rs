use std::path::Path;

use super::*;
use crate::events::EventBus;
use crate::health::{Failure, FailureKind, NoPersistence, Policy};

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
        .plan(Endpoint::ChatCompletions, "chain", &h, Instant::now())
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
                &r.plan(Endpoint::Messages, "rr", &h, Instant::now())
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
        .plan(Endpoint::Messages, "rr", &h, Instant::now())
        .expect("plan");
    let last = p.candidates.last().expect("candidates");
    assert_eq!(last.account, "oa/o1");
    assert_eq!(last.upstream_endpoint, Endpoint::ChatCompletions);
    assert!(matches!(last.codec, Codec::Translated(_)));
    // Without translators it would be skipped, with the reason.
    let bare = Router::new(r.config().clone(), TranslatorRegistry::default());
    let p = bare
        .plan(Endpoint::Messages, "rr", &h, Instant::now())
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
            .plan(Endpoint::Messages, "w", &h, Instant::now())
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
        .plan(Endpoint::Messages, "lif", &h, Instant::now())
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
        .plan(Endpoint::Messages, "mixed", &h, Instant::now())
        .expect("plan");
    assert_eq!(order(&p), ["ant/a2", "ant/a3", "oa/o1", "gem/g1"]);
    assert_eq!(p.earliest_back_in(), Some(30));
    // Gemini serves no embeddings endpoint at all.
    let p = r
        .plan(Endpoint::Embeddings, "mixed", &h, Instant::now())
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
