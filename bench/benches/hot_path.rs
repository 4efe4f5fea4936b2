//! Criterion benchmarks of the per-request work: on the same-dialect path (reading the body
//! head, rewriting the model, parsing and inspecting stream events, classifying failures) and
//! on the translated paths (request translation, response translation, streaming translators
//! in events per second).
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fluxgate_core::formats::body::{read_head, rewrite_model};
use fluxgate_core::formats::inspect::inspect;
use fluxgate_core::formats::sse::SseParser;
use fluxgate_core::formats::translate::{ClientHints, Pair, Target, Translator, Vendor};
use fluxgate_core::formats::Dialect;
use fluxgate_core::health::classify_status;
use fluxgate_core::secrets::SecretValue;

fn request_body() -> Vec<u8> {
    let messages: Vec<serde_json::Value> = (0..20).map(|i| serde_json::json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": "x".repeat(400)})).collect();
    serde_json::to_vec(&serde_json::json!({"model": "claude-x", "max_tokens": 1024, "stream": true, "messages": messages, "system": "You are terse."})).unwrap_or_default()
}

fn anthropic_stream(events: usize) -> Vec<u8> {
    let mut s = String::from("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n");
    for i in 0..events {
        s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"word{i} \"}}}}\n\n"));
    }
    s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s.into_bytes()
}

const PLAN_CONFIG: &str = r#"
[providers.oa]
kind = "openai"
keys = [{ id = "o1", secret = "env:X" }, { id = "o2", secret = "env:X" }, { id = "o3", secret = "env:X" }]
models = ["gpt-4o-mini"]
[providers.ant]
kind = "anthropic"
keys = [{ id = "a1", secret = "env:X" }, { id = "a2", secret = "env:X" }]
models = ["claude-haiku-4-5"]
[providers.ds]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "d1", secret = "env:X", rpm = 1000000 }]
models = ["deepseek-chat"]
[routes.plain]
targets = ["oa/gpt-4o-mini", "ant/claude-haiku-4-5", "ds/deepseek-chat"]
[routes.cost]
targets = ["oa/gpt-4o-mini", "ant/claude-haiku-4-5", "ds/deepseek-chat"]
strategy = "least-cost"
[routes.latency]
targets = ["oa/gpt-4o-mini", "ant/claude-haiku-4-5", "ds/deepseek-chat"]
strategy = "least-latency"
[[budgets]]
provider = "ds"
daily_usd = 1000
"#;

/// Planning one request over 3 targets × 6 keys: the old path (priority, no request needs)
/// against the load-aware strategies with needs, local limits and budgets.
fn plan_benches(c: &mut Criterion) {
    use fluxgate_core::budgets::{BudgetLedger, Ledger};
    use fluxgate_core::config::Config;
    use fluxgate_core::events::EventBus;
    use fluxgate_core::formats::translate::TranslatorRegistry;
    use fluxgate_core::formats::Endpoint;
    use fluxgate_core::health::{HealthRegistry, NoPersistence, Policy};
    use fluxgate_core::routing::{Ask, Live, Needs, Router, Signals};
    use std::sync::Arc;
    let Ok(config) = Config::from_toml(PLAN_CONFIG, std::path::Path::new("bench.toml")) else {
        return;
    };
    let config = Arc::new(config);
    let health = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
    health.sync(&config);
    let ledger = Ledger::new(EventBus::new());
    ledger.set_budgets(&config.budgets);
    let router = Router::new(config, TranslatorRegistry::builtin());
    let signals = Signals::default();
    let body = bytes::Bytes::from(request_body());
    let now = tokio::time::Instant::now();
    let mut g = c.benchmark_group("plan");
    g.bench_function("needs_image_scan_8kb", |b| {
        b.iter(|| Needs::new(Endpoint::ChatCompletions, body.clone(), false, Some(1024)).caps())
    });
    g.bench_function("budget_check_one_key", |b| {
        let scopes =
            fluxgate_core::budgets::scopes(Some("ds"), Some("d1"), Some("plain"), Some("bench"));
        let need = fluxgate_core::budgets::Spend {
            usd: 0.01,
            tokens: 100,
        };
        b.iter(|| ledger.check(&scopes, need).is_ok())
    });
    g.bench_function("priority_with_needs_no_budgets", |b| {
        b.iter(|| {
            let needs = Needs::new(Endpoint::ChatCompletions, body.clone(), false, Some(1024));
            router
                .plan(
                    &Ask {
                        endpoint: Endpoint::ChatCompletions,
                        model: "plain",
                        conversation: Some(7),
                        needs: Some(&needs),
                        client: Some("bench"),
                    },
                    &Live {
                        health: &health,
                        signals: &signals,
                        windows: &signals,
                        ledger: None,
                    },
                    now,
                )
                .map(|p| p.candidates.len())
        })
    });
    for (name, route, with_needs) in [
        ("priority_without_needs", "plain", false),
        ("priority_with_needs_and_budgets", "plain", true),
        ("least_cost_with_needs_and_budgets", "cost", true),
        ("least_latency_with_needs_and_budgets", "latency", true),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let needs = with_needs.then(|| {
                    Needs::new(Endpoint::ChatCompletions, body.clone(), false, Some(1024))
                });
                router
                    .plan(
                        &Ask {
                            endpoint: Endpoint::ChatCompletions,
                            model: route,
                            conversation: Some(7),
                            needs: needs.as_ref(),
                            client: Some("bench"),
                        },
                        &Live {
                            health: &health,
                            signals: &signals,
                            windows: &signals,
                            ledger: with_needs.then_some(&ledger),
                        },
                        now,
                    )
                    .map(|p| p.candidates.len())
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    plan_benches(c);
    let body = request_body();
    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("read_head_8kb", |b| b.iter(|| read_head(&body)));
    g.bench_function("rewrite_model_8kb", |b| {
        b.iter(|| rewrite_model(&body, "claude-real"))
    });
    g.finish();

    let stream = anthropic_stream(1000);
    let mut g = c.benchmark_group("stream");
    g.throughput(Throughput::Elements(1002));
    g.bench_function("parse_and_inspect_1000_events", |b| {
        b.iter(|| {
            let mut p = SseParser::new();
            let mut n = 0;
            for chunk in stream.chunks(1500) {
                for ev in p.feed(chunk).unwrap_or_default() {
                    let _ = inspect(Dialect::Anthropic, &ev, true);
                    n += 1;
                }
            }
            n
        })
    });
    // The same with the key's Redactor run over every event as the pump does (issue 14):
    // the cost of never passing an echoed key on.
    let secret = SecretValue::new("sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4");
    let redactor = secret.redactor();
    g.bench_function("parse_inspect_and_redact_1000_events", |b| {
        b.iter(|| {
            let mut p = SseParser::new();
            let mut n = 0;
            for chunk in stream.chunks(1500) {
                for ev in p.feed(chunk).unwrap_or_default() {
                    if redactor.finds(&ev.raw) {
                        n += 1000;
                    }
                    let _ = inspect(Dialect::Anthropic, &ev, true);
                    n += 1;
                }
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("redact");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("finds_in_8kb_body_without_the_key", |b| {
        b.iter(|| redactor.finds(&body))
    });
    g.bench_function("build_a_redactor", |b| {
        b.iter(|| fluxgate_core::secrets::Redactor::new(secret.expose()))
    });
    g.finish();

    let headers = http::HeaderMap::new();
    let err = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    c.bench_function("classify_429", |b| {
        b.iter(|| classify_status(429, &headers, err, SystemTime::now()))
    });
}

fn chat_stream(events: usize) -> Vec<u8> {
    let mut s = String::from("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    for i in 0..events {
        s.push_str(&format!("data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n"));
    }
    s.push_str("data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":1000}}\n\ndata: [DONE]\n\n");
    s.into_bytes()
}

fn translation(c: &mut Criterion) {
    let target = Target {
        model: "upstream-model",
        stream: true,
        vendor: Vendor::OpenAi,
        now: 1,
    };
    let body = request_body();
    let chat_body = {
        let mut v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("system");
            o.remove("max_tokens");
        }
        serde_json::to_vec(&v).unwrap_or_default()
    };
    let a2c = Pair {
        client: Dialect::Anthropic,
        upstream: Dialect::OpenaiChat,
    };
    let c2a = Pair {
        client: Dialect::OpenaiChat,
        upstream: Dialect::Anthropic,
    };
    let a2r = Pair {
        client: Dialect::Anthropic,
        upstream: Dialect::OpenaiResponses,
    };
    let mut g = c.benchmark_group("translate_request");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("anthropic_to_chat_8kb", |b| {
        b.iter(|| a2c.request(&body, &target))
    });
    g.bench_function("chat_to_anthropic_8kb", |b| {
        b.iter(|| c2a.request(&chat_body, &target))
    });
    g.finish();

    let hints = ClientHints::default();
    let chat_resp = br#"{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, this is a short answer of a few words."},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":12}}"#;
    c.bench_function("translate_response_chat_to_anthropic", |b| {
        b.iter(|| a2c.response(chat_resp, &hints))
    });

    let mut g = c.benchmark_group("translate_stream");
    for (name, pair, stream) in [
        ("chat_upstream_to_anthropic_client", &a2c, chat_stream(1000)),
        (
            "anthropic_upstream_to_chat_client",
            &c2a,
            anthropic_stream(1000),
        ),
        (
            "anthropic_upstream_to_responses_client",
            &Pair {
                client: Dialect::OpenaiResponses,
                upstream: Dialect::Anthropic,
            },
            anthropic_stream(1000),
        ),
        ("responses_upstream_to_anthropic_client", &a2r, {
            // Build a Responses stream by translating an Anthropic one once.
            let mut t = Pair {
                client: Dialect::OpenaiResponses,
                upstream: Dialect::Anthropic,
            }
            .stream(&hints);
            let mut p = SseParser::new();
            let mut out = Vec::new();
            for ev in p.feed(&anthropic_stream(1000)).unwrap_or_default() {
                for b in t.event(&ev).unwrap_or_default() {
                    out.extend_from_slice(&b);
                }
            }
            out
        }),
    ] {
        g.throughput(Throughput::Elements(1002));
        g.bench_function(format!("{name}_1000_events"), |b| {
            b.iter(|| {
                let mut t = pair.stream(&hints);
                let mut p = SseParser::new();
                let mut n = 0;
                for chunk in stream.chunks(1500) {
                    for ev in p.feed(chunk).unwrap_or_default() {
                        n += t.event(&ev).map(|v| v.len()).unwrap_or(0);
                    }
                }
                n
            })
        });
    }
    g.finish();
}

criterion_group!(hot, benches, translation);
criterion_main!(hot);
