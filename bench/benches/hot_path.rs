//! Criterion benchmarks of the per-request work on the same-dialect path: reading the body
//! head, rewriting the model, parsing and inspecting stream events, classifying failures.

use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use fluxgate_core::formats::body::{read_head, rewrite_model};
use fluxgate_core::formats::inspect::inspect;
use fluxgate_core::formats::sse::SseParser;
use fluxgate_core::formats::Dialect;
use fluxgate_core::health::classify_status;

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

fn benches(c: &mut Criterion) {
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
    g.finish();

    let headers = http::HeaderMap::new();
    let err = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    c.bench_function("classify_429", |b| {
        b.iter(|| classify_status(429, &headers, err, SystemTime::now()))
    });
}

criterion_group!(hot, benches);
criterion_main!(hot);
