//! The console's reads of a large request log: a SQLite store holding one million request
//! records over 30 days (about 23 a minute, 5% failed, three routes, six keys), and the
//! time-bucketed series each chart asks for (1 h in minutes, 24 h in hours, 7 d in 6-hour
//! buckets, 30 d in days), the usage table, and the request inspector's reads.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use fluxgate_core::record::RequestRecord;
use fluxgate_core::recorder::Recorder;
use fluxgate_core::store::{RequestQuery, SeriesFilter, Span, Store};

const RECORDS: i64 = 1_000_000;
const DAYS: i64 = 30;
/// How late a record may be written: the default total timeout (15 min) and a minute.
const LAG: i64 = 16 * 60_000;

fn record(i: i64, now: i64) -> RequestRecord {
    let span = DAYS * 86_400_000;
    let failed = i % 20 == 0;
    RequestRecord {
        ts_ms: now - span + i * span / RECORDS,
        request_id: format!("fg-bench-{i}"),
        client: Some(["claude-code", "codex", "ci"][(i % 3) as usize].into()),
        endpoint: "chat_completions".into(),
        model: Some("coding".into()),
        route: Some(["coding", "fast", "vision"][(i % 3) as usize].into()),
        provider: Some(["oa", "ant"][(i % 2) as usize].into()),
        key_id: Some(format!("k{}", i % 6)),
        attempts: if failed { 2 } else { 1 },
        status: if failed { 502 } else { 200 },
        latency_ms: 800,
        ttfb_ms: Some(300),
        tokens_in: Some(1200),
        tokens_out: Some(300),
        stream: true,
        upstream_model: Some("gpt-4o".into()),
        cost_usd: Some(0.006),
        ..RequestRecord::default()
    }
}

fn store_bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("store");
    let log = Recorder::start(&store);
    let now = fluxgate_core::clock::now_ms();
    let started = Instant::now();
    for i in 0..RECORDS {
        log.record(record(i, now));
        if i % 50_000 == 0 {
            log.flush();
        }
    }
    log.flush();
    let size = std::fs::metadata(dir.path().join("fluxgate.db"))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "wrote {RECORDS} records in {:.1} s; database {} MB",
        started.elapsed().as_secs_f64(),
        size / 1_000_000
    );
    let mut g = c.benchmark_group("store_1m");
    g.sample_size(20).measurement_time(Duration::from_secs(4));
    let all = SeriesFilter::default();
    for (name, span) in [
        ("series_1h_minutes", Span::Hour),
        ("series_24h_hours", Span::Day),
        ("series_7d_6h", Span::Week),
        ("series_30d_days", Span::Month),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| store.series(span, &all, LAG).expect("series"))
        });
    }
    let one_key = SeriesFilter {
        provider: Some("oa".into()),
        key: Some("k2".into()),
        ..SeriesFilter::default()
    };
    g.bench_function("series_30d_one_key", |b| {
        b.iter(|| store.series(Span::Month, &one_key, LAG).expect("series"))
    });
    g.bench_function("usage_table_24h", |b| {
        b.iter(|| store.usage_since(24, LAG).expect("usage"))
    });
    let newest = RequestQuery::default();
    g.bench_function("inspector_newest_100", |b| {
        b.iter(|| log.query(&newest).expect("rows"))
    });
    let failed_route = RequestQuery {
        failed: true,
        route: Some("fast".into()),
        ..RequestQuery::default()
    };
    g.bench_function("inspector_failed_on_a_route", |b| {
        b.iter(|| log.query(&failed_route).expect("rows"))
    });
    let follow = RequestQuery {
        after: Some(RECORDS - 50),
        limit: Some(1000),
        ..RequestQuery::default()
    };
    g.bench_function("inspector_follow_after_cursor", |b| {
        b.iter(|| log.query(&follow).expect("rows"))
    });
    g.finish();
    log.close();
}

criterion_group!(store, store_bench);
criterion_main!(store);
