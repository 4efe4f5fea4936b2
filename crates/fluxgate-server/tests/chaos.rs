//! The chaos soak (RELIABILITY.md 11–12): the real `fluxgate` binary in front of the fake
//! upstream, 3 keys on 2 providers, a seeded 30% of attempts answered with a fault of every
//! kind in `fluxgate_testkit::chaos::KINDS` and a share of new connections reset by a TCP
//! front, mixed streaming and non-streaming requests in three dialects at concurrency 32.
//!
//! Every request must end in a correct success or a typed error from a closed set, within the
//! deadline; nothing may be sent upstream after a client got its first byte; at most one
//! attempt per request is in flight; the router's memory must stay flat.
//!
//! `chaos_soak` (in the default test run) sends 1,500 requests; `chaos_soak_full` (ignored;
//! `cargo test --release -p fluxgate-server --test chaos -- --ignored --nocapture`) sends
//! 10,000 and prints the report that BENCHMARKS.md quotes. `CHAOS_SEED` picks the seed.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxgate_testkit::chaos::{Chaos, RefusingFront};
use fluxgate_testkit::FakeUpstream;
use futures_util::StreamExt;
use parking_lot::Mutex;

const CONCURRENCY: usize = 32;
/// `timeouts.total` in the router's config.
const DEADLINE: Duration = Duration::from_secs(6);
/// What a request may take past the deadline before it counts as a hang.
const GRACE: Duration = Duration::from_secs(1);
/// How long a dropped upstream connection may take to reach the fake as a close.
const CLOSE_PROPAGATION_MS: u64 = 50;

/// Error codes a client may see under upstream faults: Fluxgate's own transient errors.
const CLOSED_SET: &[&str] = &[
    "all_keys_cooling",
    "upstream_unavailable",
    "upstream_timeout",
    "attempts_exhausted",
    "stream_interrupted",
];

struct Router {
    process: common::RouterProcess,
    token: String,
    _dir: tempfile::TempDir,
}

fn start_router(oa: &str, ant: &str, keys: &HashMap<&str, String>) -> Router {
    let dir = common::tempdir();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[timeouts]
connect = 1
first_byte = 1
idle = 1
total = {total}

[providers.oa]
kind = "openai"
base_url = "{oa}/v1"
keys = [{{ id = "o1", secret = "env:FG_CHAOS_O1" }}, {{ id = "o2", secret = "env:FG_CHAOS_O2" }}]

[providers.ant]
kind = "anthropic"
base_url = "{ant}"
keys = [{{ id = "a1", secret = "env:FG_CHAOS_A1" }}]

[routes.mix]
targets = ["oa/m", "ant/m"]

[routes.mixb]
targets = ["ant/m", "oa/m"]
"#,
            total = DEADLINE.as_secs()
        ),
    )
    .expect("write config");
    let data = dir.path().join("data");
    let token = common::RouterProcess::cli(dir.path(), &data, &["token", "new", "chaos"]);
    // CHAOS_LOG=FILE keeps the router's log for a look at what happened.
    let log = std::env::var_os("CHAOS_LOG").map(std::path::PathBuf::from);
    let process = common::RouterProcess::start(
        dir.path(),
        &config,
        &data,
        &[
            ("FG_CHAOS_O1", &keys["o1"]),
            ("FG_CHAOS_O2", &keys["o2"]),
            ("FG_CHAOS_A1", &keys["a1"]),
        ],
        log.as_deref(),
    );
    Router {
        process,
        token,
        _dir: dir,
    }
}

#[derive(Clone, Copy, Debug)]
enum Dialect {
    Chat,
    Messages,
    Responses,
}

impl Dialect {
    fn path(self) -> &'static str {
        match self {
            Dialect::Chat => "/v1/chat/completions",
            Dialect::Messages => "/v1/messages",
            Dialect::Responses => "/v1/responses",
        }
    }

    fn body(self, model: &str, stream: bool) -> serde_json::Value {
        match self {
            Dialect::Chat => {
                serde_json::json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "hi"}]})
            }
            Dialect::Messages => {
                serde_json::json!({"model": model, "stream": stream, "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]})
            }
            Dialect::Responses => {
                serde_json::json!({"model": model, "stream": stream, "input": "hi"})
            }
        }
    }

    /// The text of a complete (non-streaming) answer.
    fn text(self, v: &serde_json::Value) -> Option<String> {
        let t = match self {
            Dialect::Chat => v["choices"][0]["message"]["content"].as_str()?.to_string(),
            Dialect::Messages => v["content"][0]["text"].as_str()?.to_string(),
            Dialect::Responses => v["output"]
                .as_array()?
                .iter()
                .filter(|i| i["type"] == "message")
                .flat_map(|i| i["content"].as_array().cloned().unwrap_or_default())
                .filter_map(|c| c["text"].as_str().map(str::to_string))
                .collect(),
        };
        Some(t)
    }

    /// (text deltas, saw the success terminator, the error code of an error event).
    fn stream(self, body: &str) -> (String, bool, Option<String>) {
        let mut text = String::new();
        let mut done = false;
        let mut error = None;
        for frame in body.split("\n\n") {
            let Some(data) = frame
                .lines()
                .find_map(|l| l.strip_prefix("data:").map(str::trim))
            else {
                continue;
            };
            if data == "[DONE]" {
                done = true;
                continue;
            }
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
                continue;
            };
            if let Some(code) = v["error"]["type"].as_str() {
                error = Some(code.to_string());
                continue;
            }
            // Responses error events carry the code on the event itself.
            if v["type"] == "error" {
                error = Some(v["code"].as_str().unwrap_or("untyped").to_string());
                continue;
            }
            match self {
                Dialect::Chat => {
                    if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                        text.push_str(t);
                    }
                }
                Dialect::Messages => {
                    if v["type"] == "content_block_delta" {
                        text.push_str(v["delta"]["text"].as_str().unwrap_or(""));
                    }
                    if v["type"] == "message_stop" {
                        done = true;
                    }
                }
                Dialect::Responses => {
                    if v["type"] == "response.output_text.delta" {
                        text.push_str(v["delta"].as_str().unwrap_or(""));
                    }
                    if v["type"] == "response.completed" {
                        done = true;
                    }
                }
            }
        }
        (text, done, error)
    }
}

/// The upstream attempt id at the start of a chaos answer (`a<id> ok from LABEL`).
fn attempt_of(text: &str) -> Option<u64> {
    text.strip_prefix('a')?.split(' ').next()?.parse().ok()
}

#[derive(Debug)]
struct Outcome {
    test_id: String,
    class: String,
    /// The attempt whose bytes reached the client.
    attempt: Option<u64>,
    took: Duration,
    problem: Option<String>,
}

async fn one(http: &reqwest::Client, base: &str, token: &str, i: usize, rng_pick: u64) -> Outcome {
    let dialect = [Dialect::Chat, Dialect::Messages, Dialect::Responses][(rng_pick % 3) as usize];
    let stream = (rng_pick / 3).is_multiple_of(2);
    let model = if (rng_pick / 6).is_multiple_of(2) {
        "mix"
    } else {
        "mixb"
    };
    let test_id = format!("r{i}");
    let started = Instant::now();
    let mut out = Outcome {
        test_id: test_id.clone(),
        class: String::new(),
        attempt: None,
        took: Duration::ZERO,
        problem: None,
    };
    let send = http
        .post(format!("{base}{}", dialect.path()))
        .bearer_auth(token)
        .header("x-test-id", &test_id)
        .json(&dialect.body(model, stream))
        .send();
    let result = tokio::time::timeout(DEADLINE + GRACE * 3, async {
        let resp = send.await.map_err(|e| format!("send: {e}"))?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if status == 503 && !retry_after.is_some_and(|s| (1..=300).contains(&s)) {
            return Err(format!("503 without a usable Retry-After: {retry_after:?}"));
        }
        let mut body = Vec::new();
        let mut s = resp.bytes_stream();
        while let Some(chunk) = s.next().await {
            match chunk {
                Ok(c) => body.extend_from_slice(&c),
                Err(e) => return Err(format!("body cut without an error event: {e}")),
            }
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    })
    .await;
    out.took = started.elapsed();
    let (status, body) = match result {
        Err(_) => {
            out.class = "hang".into();
            out.problem = Some("no answer within the deadline".into());
            return out;
        }
        Ok(Err(e)) => {
            out.class = "untyped".into();
            out.problem = Some(e);
            return out;
        }
        Ok(Ok(x)) => x,
    };
    if status != 200 {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let code = v["error"]["type"].as_str().unwrap_or("").to_string();
        if CLOSED_SET.contains(&code.as_str()) {
            out.class = format!("{status} {code}");
        } else {
            out.class = "untyped".into();
            out.problem = Some(format!("{status} {body}"));
        }
        return out;
    }
    let (text, complete, error) = if stream {
        dialect.stream(&body)
    } else {
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        (dialect.text(&v).unwrap_or_default(), true, None)
    };
    out.attempt = attempt_of(&text);
    match (complete, error) {
        (true, None) if out.attempt.is_some() && text.contains(" ok from ") => {
            out.class = if stream {
                "200 stream complete".into()
            } else {
                "200 complete".into()
            };
        }
        (false, Some(code)) if CLOSED_SET.contains(&code.as_str()) => {
            out.class = format!("200 stream ended by error event {code}");
        }
        (complete, error) => {
            out.class = "untyped".into();
            out.problem = Some(format!(
                "stream={stream} complete={complete} error={error:?} text={text:?} body={body}"
            ));
        }
    }
    out
}

struct Report {
    outcomes: BTreeMap<String, u64>,
    problems: Vec<String>,
    replays: u64,
    wrong_attempt: u64,
    /// Longest time an abandoned attempt looked open to the fake after the next one started.
    max_overlap_ms: u64,
    attempts: usize,
    faults: BTreeMap<String, u64>,
    refused: u64,
    pss_after_first_kib: u64,
    pss_end_kib: u64,
    /// Anonymous (private) memory: what the memory check uses.
    anon_after_first_kib: u64,
    anon_end_kib: u64,
    slowest: Duration,
    took: Duration,
}

async fn soak(requests: usize, seed: u64) -> Report {
    let fake = FakeUpstream::start().await;
    fake.set_chaos(Chaos::new(seed, 0.30, 2500));
    let front_oa = RefusingFront::start(fake.addr, seed ^ 1, 0.05).await;
    let front_ant = RefusingFront::start(fake.addr, seed ^ 2, 0.05).await;
    let mut keys = HashMap::new();
    for label in ["o1", "o2", "a1"] {
        let key = common::canary();
        fake.add_key(label, &key);
        keys.insert(label, key);
    }
    let router = start_router(&front_oa.url(), &front_ant.url(), &keys);
    let pid = router.process.child.id();
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(requests)));
    let pss_first = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let anon_first = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..CONCURRENCY {
        let (http, base, token) = (
            http.clone(),
            router.process.base.clone(),
            router.token.clone(),
        );
        let (next, outcomes, pss_first) = (next.clone(), outcomes.clone(), pss_first.clone());
        let anon_first = anon_first.clone();
        tasks.push(tokio::spawn(async move {
            let mut pick = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(worker as u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= requests {
                    break;
                }
                pick = pick
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let o = one(&http, &base, &token, i, pick >> 33).await;
                // A client's think time, 0-127 ms, so the run spans many cooldowns.
                tokio::time::sleep(Duration::from_millis((pick >> 20) & 127)).await;
                let mut all = outcomes.lock();
                all.push(o);
                if all.len() == 1000.min(requests) {
                    pss_first.store(
                        common::RouterProcess::smaps_kib(pid, "Pss"),
                        std::sync::atomic::Ordering::SeqCst,
                    );
                    anon_first.store(
                        common::RouterProcess::smaps_kib(pid, "Anonymous"),
                        std::sync::atomic::Ordering::SeqCst,
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let took = started.elapsed();
    // Let cancelled attempts settle before reading the fake's log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pss_end = router.process.pss_kib();
    let anon_end = common::RouterProcess::smaps_kib(pid, "Anonymous");
    let outcomes = std::mem::take(&mut *outcomes.lock());
    let log = fake.log();
    let mut last_attempt: HashMap<String, u64> = HashMap::new();
    let mut attempts_of: HashMap<String, Vec<u64>> = HashMap::new();
    for a in &log {
        if let Some(t) = &a.test_id {
            let e = last_attempt.entry(t.clone()).or_insert(a.id);
            *e = (*e).max(a.id);
            attempts_of.entry(t.clone()).or_default().push(a.id);
        }
    }
    let mut report = Report {
        outcomes: BTreeMap::new(),
        problems: Vec::new(),
        replays: 0,
        wrong_attempt: 0,
        max_overlap_ms: 0,
        attempts: log.len(),
        faults: fake
            .chaos_drawn()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        refused: front_oa.refused.load(std::sync::atomic::Ordering::Relaxed)
            + front_ant.refused.load(std::sync::atomic::Ordering::Relaxed),
        pss_after_first_kib: pss_first.load(std::sync::atomic::Ordering::SeqCst),
        pss_end_kib: pss_end,
        anon_after_first_kib: anon_first.load(std::sync::atomic::Ordering::SeqCst),
        anon_end_kib: anon_end,
        slowest: outcomes.iter().map(|o| o.took).max().unwrap_or_default(),
        took,
    };
    let mut by_test: HashMap<&str, Vec<&fluxgate_testkit::AttemptLog>> = HashMap::new();
    for a in &log {
        if let Some(t) = &a.test_id {
            by_test.entry(t.as_str()).or_default().push(a);
        }
    }
    for (t, attempts) in &by_test {
        for w in attempts.windows(2) {
            // An abandoned attempt ends when the fake sees its connection close, which
            // travels through the front after the router dropped it; allow for that.
            let end = w[0].ended_ms.unwrap_or(u64::MAX);
            report.max_overlap_ms = report
                .max_overlap_ms
                .max(end.saturating_sub(w[1].started_ms));
            if w[1].started_ms + CLOSE_PROPAGATION_MS < end {
                report.problems.push(format!(
                    "{t}: attempt {} ({}) started at {} ms before attempt {} ({}) ended at {end} ms",
                    w[1].id, w[1].fault, w[1].started_ms, w[0].id, w[0].fault
                ));
            }
        }
    }
    for o in &outcomes {
        *report.outcomes.entry(o.class.clone()).or_default() += 1;
        if let Some(p) = &o.problem {
            report.problems.push(format!("{}: {p}", o.test_id));
        }
        if o.took > DEADLINE + GRACE {
            report
                .problems
                .push(format!("{}: took {:?}", o.test_id, o.took));
        }
        if let Some(a) = o.attempt {
            // The answer came from an attempt made for this very request ...
            if !attempts_of.get(&o.test_id).is_some_and(|v| v.contains(&a)) {
                report.wrong_attempt += 1;
                report.problems.push(format!(
                    "{}: answer from attempt {a}, not one of its own",
                    o.test_id
                ));
            }
            // ... and nothing went upstream for it after that.
            if last_attempt.get(&o.test_id).is_some_and(|&last| last > a) {
                report.replays += 1;
                report.problems.push(format!(
                    "{}: attempts after the one whose bytes the client got",
                    o.test_id
                ));
            }
        }
    }
    report
}

fn print(report: &Report, requests: usize, seed: u64) {
    println!(
        "chaos soak: {requests} requests, seed {seed}, concurrency {CONCURRENCY}, {:.1} s",
        report.took.as_secs_f64()
    );
    println!("outcomes:");
    for (k, v) in &report.outcomes {
        println!("  {v:>6}  {k}");
    }
    println!("faults drawn per upstream attempt:");
    for (k, v) in &report.faults {
        println!("  {v:>6}  {k}");
    }
    println!("  {:>6}  connections reset by the front", report.refused);
    println!(
        "upstream attempts {}; replays after the first byte {}; answers from a foreign attempt {}; longest overlap of a dropped attempt with the next {} ms",
        report.attempts, report.replays, report.wrong_attempt, report.max_overlap_ms
    );
    println!(
        "slowest request {:.2} s (deadline {} s); router PSS after the first 1000 {} KiB, at the end {} KiB ({:+} KiB); anonymous memory {} KiB -> {} KiB ({:+} KiB)",
        report.slowest.as_secs_f64(),
        DEADLINE.as_secs(),
        report.pss_after_first_kib,
        report.pss_end_kib,
        report.pss_end_kib as i64 - report.pss_after_first_kib as i64,
        report.anon_after_first_kib,
        report.anon_end_kib,
        report.anon_end_kib as i64 - report.anon_after_first_kib as i64
    );
    for p in report.problems.iter().take(20) {
        println!("PROBLEM {p}");
    }
}

fn check(report: &Report, requests: usize) {
    assert!(
        report.problems.is_empty(),
        "{} problems",
        report.problems.len()
    );
    assert_eq!(report.outcomes.values().sum::<u64>(), requests as u64);
    assert_eq!(report.replays, 0);
    // Faults of every kind were injected, and most requests still succeeded.
    assert_eq!(
        report.faults.len(),
        fluxgate_testkit::chaos::KINDS.len() + 1,
        "{:?}",
        report.faults
    );
    let ok: u64 = report
        .outcomes
        .iter()
        .filter(|(k, _)| k.ends_with("complete"))
        .map(|(_, v)| v)
        .sum();
    assert!(
        ok * 10 >= requests as u64 * 8,
        "only {ok} of {requests} succeeded"
    );
    // Memory flat: less than 8 MiB more private memory after the run than after its first
    // thousand requests. (PSS is reported but not checked: it moves when other processes, the
    // durability test's routers say, start or stop sharing the binary's pages.)
    assert!(report.anon_after_first_kib > 0);
    assert!(
        report.anon_end_kib < report.anon_after_first_kib + 8 * 1024,
        "router anonymous memory grew from {} to {} KiB",
        report.anon_after_first_kib,
        report.anon_end_kib
    );
}

fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261122)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_soak() {
    let requests = 1500;
    let report = soak(requests, seed()).await;
    print(&report, requests, seed());
    check(&report, requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the full 10,000-request soak; run with --ignored (see the module docs)"]
async fn chaos_soak_full() {
    let requests = 10_000;
    let report = soak(requests, seed()).await;
    print(&report, requests, seed());
    check(&report, requests);
}
