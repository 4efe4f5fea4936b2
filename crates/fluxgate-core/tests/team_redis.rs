//! Team mode on a real Redis (`redis-server` started by the test on a loopback port): replicas
//! share key health within a second, run each retest once, admit exactly a key's limit
//! together, fall back to their own state when Redis goes away and re-join when it is back.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed assumption fails the test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fluxgate_core::config::{Config, KeyLimits, RedisTarget};
use fluxgate_core::events::EventBus;
use fluxgate_core::health::{
    ErrorClass, Failure, FailureKind, HealthBackend, HealthRegistry, KeyStatus, NoPersistence,
    Policy,
};
use fluxgate_core::routing::RateWindows;
use fluxgate_core::secrets::{SecretRef, Secrets};
use fluxgate_core::team::{Engine, SharedHealth, SharedWindows, Team, TeamError};
use fluxgate_testkit::servers::RedisServer;
use fluxgate_testkit::tls::TestCa;
use tokio::time::Instant;

const CONFIG: &str = r#"
[providers.p]
kind = "openai-compatible"
base_url = "http://127.0.0.1:9/v1"
keys = [{ id = "a", secret = "env:TEAM_TEST_KEY" }, { id = "b", secret = "env:TEAM_TEST_KEY" }]
"#;

fn config() -> Config {
    Config::from_toml(CONFIG, Path::new("team.toml")).expect("config")
}

fn target(url: &str) -> RedisTarget {
    RedisTarget {
        url: url.to_string(),
        username: None,
        password: None,
        ca: None,
    }
}

fn secrets() -> Secrets {
    Secrets::with_store(Arc::new(fluxgate_core::secrets::MemoryStore::default()))
}

/// One replica's health: its registry on the shared backend, with the sync task running.
struct Replica {
    health: Arc<HealthRegistry>,
    backend: Arc<SharedHealth>,
    engine: Engine,
}

async fn replica(url: &str) -> Replica {
    let engine = Engine::connect(&target(url), &secrets())
        .await
        .expect("connect");
    let backend = SharedHealth::open(&engine, Arc::new(NoPersistence))
        .await
        .expect("open");
    let health = Arc::new(HealthRegistry::new(
        Policy::default(),
        EventBus::new(),
        backend.clone(),
    ));
    health.sync(&config());
    backend.spawn(Arc::downgrade(&health), std::future::pending());
    Replica {
        health,
        backend,
        engine,
    }
}

fn rate_limited(secs: u64) -> Failure {
    Failure {
        class: ErrorClass::RateLimited,
        kind: FailureKind::Status(429),
        status: Some(429),
        message: "slow down".into(),
        retry_hint: Some(Duration::from_secs(secs)),
    }
}

/// Polls `f` every 10 ms until it holds; how long it took, or `None` after `limit`.
async fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_cooled_on_one_replica_is_out_on_every_replica_within_a_second() {
    let redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    let b = replica(&redis.url()).await;
    let c = replica(&redis.url()).await;
    // Let the sync tasks subscribe.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(b.health.usable("p/a", Instant::now()));

    a.health.report_failure("p/a", &rate_limited(30));
    for other in [&b, &c] {
        let took = within(Duration::from_secs(1), || {
            !other.health.usable("p/a", Instant::now())
        })
        .await;
        assert!(
            took.is_some(),
            "another replica still sends to the cooled key"
        );
        let st = other.health.state("p/a").expect("state");
        assert_eq!(st.status, KeyStatus::Cooling);
        assert_eq!(st.reason, Some(ErrorClass::RateLimited));
        // The other replica keeps to the upstream's Retry-After, not a default of its own.
        let back = other.health.back_at("p/a").expect("back");
        let left = back.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(28) && left <= Duration::from_secs(30),
            "{left:?}"
        );
    }
    // The other key is untouched.
    assert!(b.health.usable("p/b", Instant::now()));

    // Revived on the third replica: back everywhere.
    c.health.revive("p/a");
    for other in [&a, &b] {
        let took = within(Duration::from_secs(1), || {
            other.health.usable("p/a", Instant::now())
        })
        .await;
        assert!(took.is_some(), "a revived key stays out on another replica");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_starts_later_reads_the_fleets_health() {
    let redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.health.report_failure("p/b", &rate_limited(60));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let late = replica(&redis.url()).await;
    assert!(!late.health.usable("p/b", Instant::now()));
    assert_eq!(
        late.health.state("p/b").expect("state").reason,
        Some(ErrorClass::RateLimited)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_retest_runs_on_one_replica_of_the_fleet() {
    let redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    let b = replica(&redis.url()).await;
    assert!(a.backend.claim_retest("p/a").await);
    assert!(
        !b.backend.claim_retest("p/a").await,
        "two replicas retest one key"
    );
    // The holder keeps its key; another key is free.
    assert!(a.backend.claim_retest("p/a").await);
    assert!(b.backend.claim_retest("p/b").await);
    assert!(!a.backend.claim_retest("p/b").await);
    assert_ne!(a.engine.replica(), b.engine.replica());
}

async fn windows(url: &str) -> Arc<SharedWindows> {
    let engine = Engine::connect(&target(url), &secrets())
        .await
        .expect("connect");
    Arc::new(SharedWindows::new(engine))
}

/// Three replicas take room for `per` requests each, all at once; how many were admitted.
async fn admitted(
    replicas: &[Arc<SharedWindows>],
    limits: KeyLimits,
    per: usize,
    tokens: u64,
) -> usize {
    let mut tasks = Vec::new();
    for w in replicas {
        for _ in 0..per {
            let w = w.clone();
            tasks.push(tokio::spawn(async move {
                w.acquire("p/a", &limits, tokens, Instant::now())
                    .await
                    .is_ok()
            }));
        }
    }
    let mut n = 0;
    for t in tasks {
        n += usize::from(t.await.expect("task"));
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_under_concurrent_load_admit_exactly_the_rpm_limit() {
    let redis = RedisServer::start();
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(windows(&redis.url()).await);
    }
    let limits = KeyLimits {
        rpm: Some(50),
        tpm: None,
        rpd: None,
    };
    // 120 requests against a limit of 50: per-replica windows would admit 120.
    assert_eq!(admitted(&fleet, limits, 40, 10).await, 50);
    // A refused key says when it fits again (within the minute), and planning on any replica
    // that saw the refusal skips it.
    let hit = fleet[0]
        .acquire("p/a", &limits, 10, Instant::now())
        .await
        .expect_err("over the limit");
    assert_eq!(hit.limit, "rpm");
    assert_eq!(hit.value, 50);
    let wait = hit.fits_at.saturating_duration_since(Instant::now());
    assert!(
        wait > Duration::from_secs(55) && wait <= Duration::from_secs(62),
        "{wait:?}"
    );
    assert!(fleet[0].check("p/a", &limits, 10, Instant::now()).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_the_token_and_daily_windows() {
    let redis = RedisServer::start();
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(windows(&redis.url()).await);
    }
    let tpm = KeyLimits {
        rpm: None,
        tpm: Some(1_000),
        rpd: None,
    };
    // 100 tokens each: ten fit in a minute, whichever replica asks.
    assert_eq!(admitted(&fleet, tpm, 8, 100).await, 10);
    let rpd = KeyLimits {
        rpm: None,
        tpm: None,
        rpd: Some(7),
    };
    let mut n = 0;
    for i in 0..12 {
        n += usize::from(
            fleet[i % 3]
                .acquire("p/b", &rpd, 1, Instant::now())
                .await
                .is_ok(),
        );
    }
    assert_eq!(n, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_a_replica_runs_alone_and_rejoins_when_it_is_back() {
    let mut redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    let b = replica(&redis.url()).await;
    let wa = windows(&redis.url()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    redis.stop();

    // Requests keep being admitted, on this replica's own windows.
    let limits = KeyLimits {
        rpm: Some(3),
        tpm: None,
        rpd: None,
    };
    let mut ok = 0;
    for _ in 0..5 {
        ok += usize::from(wa.acquire("p/a", &limits, 1, Instant::now()).await.is_ok());
    }
    assert_eq!(
        ok, 3,
        "the fallback still keeps the key's limit on this replica"
    );

    // Health keeps working locally while Redis is away, and the loss is visible.
    a.health.report_failure("p/a", &rate_limited(120));
    assert!(!a.health.usable("p/a", Instant::now()));
    let down = within(Duration::from_secs(3), || !a.engine.status().is_up()).await;
    assert!(down.is_some(), "the replica does not notice Redis is gone");

    // Redis comes back (empty): the replica writes what changed meanwhile, and the fleet
    // converges within seconds.
    redis.start_again();
    let took = within(Duration::from_secs(5), || {
        !b.health.usable("p/a", Instant::now())
    })
    .await;
    assert!(
        took.is_some(),
        "the fleet does not converge after Redis returns"
    );
    let up = within(Duration::from_secs(5), || a.engine.status().is_up()).await;
    assert!(up.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_a_clear_start_up_error() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    redis.stop();
    let Err(e) = Engine::connect(&target(&url), &secrets()).await else {
        panic!("connected to a stopped Redis");
    };
    assert!(matches!(e, TeamError::Unreachable { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(&url) && text.contains("Start it"), "{text}");

    // Through the gateway's own entry: no engine configured, no connection attempted.
    let none = Team::connect(&config().shared, &secrets(), Arc::new(NoPersistence))
        .await
        .expect("nothing to connect");
    assert!(none.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_password_comes_from_a_secret_reference_and_a_wrong_one_is_refused() {
    let password = "team-test-pass-8f3a";
    let redis = RedisServer::start_with(Some(password));
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("redis-password");
    std::fs::write(&file, format!("{password}\n")).expect("write");
    let good = RedisTarget {
        url: redis.url(),
        username: None,
        password: Some(SecretRef::File(file)),
        ca: None,
    };
    Engine::connect(&good, &secrets()).await.expect("connects");

    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").expect("write");
    let bad = RedisTarget {
        password: Some(SecretRef::File(wrong)),
        ..good.clone()
    };
    let Err(e) = Engine::connect(&bad, &secrets()).await else {
        panic!("a wrong password was accepted");
    };
    assert!(matches!(e, TeamError::Refused { .. }), "{e:?}");
    assert!(!e.to_string().contains("not-the-password"));

    let none = RedisTarget {
        password: None,
        ..good
    };
    let Err(e) = Engine::connect(&none, &secrets()).await else {
        panic!("no password was accepted");
    };
    assert!(matches!(e, TeamError::Refused { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_is_written_to_redis() {
    let redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    a.health.report_failure("p/a", &rate_limited(30));
    let w = windows(&redis.url()).await;
    let limits = KeyLimits {
        rpm: Some(5),
        tpm: None,
        rpd: None,
    };
    w.acquire("p/a", &limits, 1, Instant::now())
        .await
        .expect("room");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Everything Redis holds, read back through a plain client.
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("con");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .expect("keys");
    assert!(keys.iter().any(|k| k == "fluxgate:health"), "{keys:?}");
    let health: std::collections::HashMap<String, String> = redis::cmd("HGETALL")
        .arg("fluxgate:health")
        .query_async(&mut con)
        .await
        .expect("hgetall");
    let text = format!("{keys:?}{health:?}");
    assert!(text.contains("rate_limited"), "{text}");
    assert!(!text.contains("sk-"), "{text}");
    // The state is what a replica needs and nothing more: the account, never a secret source.
    assert!(!text.contains("TEAM_TEST_KEY"), "{text}");
}

/// A published change as another replica would send it (the wire format of `SharedHealth`).
fn message(status: &str, at_ms: i64) -> String {
    serde_json::json!({
        "origin": "another-replica",
        "state": {
            "account": "p/a", "status": status, "reason": null, "last_status": null,
            "last_message": null, "until_ms": null, "consecutive_failures": 0,
            "ladder": null, "step": 0, "at_ms": at_ms,
        }
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_changes_to_one_key_the_later_wins_everywhere() {
    let redis = RedisServer::start();
    let a = replica(&redis.url()).await;
    let b = replica(&redis.url()).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    a.health.report_failure("p/a", &rate_limited(60));
    // B revives it afterwards: both end healthy.
    within(Duration::from_secs(1), || {
        !b.health.usable("p/a", Instant::now())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    b.health.revive("p/a");
    let took = within(Duration::from_secs(1), || {
        a.health.usable("p/a", Instant::now())
    })
    .await;
    assert!(took.is_some(), "the later change did not win on A");

    // A change older than the one a replica holds is ignored when it arrives late.
    a.health.report_failure("p/a", &rate_limited(60));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("con");
    let stale = fluxgate_core::clock::now_ms() - 60_000;
    let _: i64 = redis::cmd("PUBLISH")
        .arg("fluxgate:health:changed")
        .arg(message("healthy", stale))
        .query_async(&mut con)
        .await
        .expect("publish");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !a.health.usable("p/a", Instant::now()),
        "an older change overwrote a newer one"
    );
    assert!(!b.health.usable("p/a", Instant::now()));

    // And the hash keeps the later state when an older write comes in after it.
    let future = fluxgate_core::clock::now_ms() + 3_600_000;
    let later = serde_json::from_str::<serde_json::Value>(&message("dead", future)).expect("json")
        ["state"]
        .to_string();
    let _: i64 = redis::cmd("HSET")
        .arg("fluxgate:health")
        .arg("p/a")
        .arg(&later)
        .query_async(&mut con)
        .await
        .expect("hset");
    a.health.revive("p/a");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stored: String = redis::cmd("HGET")
        .arg("fluxgate:health")
        .arg("p/a")
        .query_async(&mut con)
        .await
        .expect("hget");
    assert!(
        stored.contains("\"dead\""),
        "an older write replaced a later state: {stored}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hash_is_read_again_even_when_no_message_arrives() {
    let redis = RedisServer::start();
    let engine = Engine::connect(&target(&redis.url()), &secrets())
        .await
        .expect("connect");
    let backend = SharedHealth::open(&engine, Arc::new(NoPersistence))
        .await
        .expect("open");
    backend.resync_every(Duration::from_millis(200));
    let health = Arc::new(HealthRegistry::new(
        Policy::default(),
        EventBus::new(),
        backend.clone(),
    ));
    health.sync(&config());
    backend.spawn(Arc::downgrade(&health), std::future::pending());
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A state written to the truth without its announcement (a lost message).
    let until = fluxgate_core::clock::now_ms() + 60_000;
    let mut state: serde_json::Value =
        serde_json::from_str(&message("cooling", fluxgate_core::clock::now_ms())).expect("json");
    state["state"]["until_ms"] = until.into();
    state["state"]["reason"] = "rate_limited".into();
    let client = redis::Client::open(redis.url()).expect("client");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("con");
    let _: i64 = redis::cmd("HSET")
        .arg("fluxgate:health")
        .arg("p/a")
        .arg(state["state"].to_string())
        .query_async(&mut con)
        .await
        .expect("hset");
    let took = within(Duration::from_secs(2), || {
        !health.usable("p/a", Instant::now())
    })
    .await;
    assert!(
        took.is_some(),
        "a state only in the hash never reached the replica"
    );
}

/// Redis on another machine, over TLS with a certificate a private CA signed (the server
/// takes TLS only): `redis_ca` makes the replica trust that CA; without it the certificate is
/// refused, saying why; a CA file that holds no certificate is an error naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_is_trusted_through_a_private_ca() {
    let ca = TestCa::new();
    let redis = RedisServer::start_tls(&ca);
    assert!(redis.url().starts_with("rediss://"));
    let with_ca = RedisTarget {
        ca: Some(ca.ca_path()),
        ..target(&redis.url())
    };
    let engine = Engine::connect(&with_ca, &secrets())
        .await
        .expect("connects over TLS");
    // Shared state is read over it.
    SharedHealth::open(&engine, Arc::new(NoPersistence))
        .await
        .expect("the fleet's health, read over TLS");

    let Err(e) = Engine::connect(&target(&redis.url()), &secrets()).await else {
        panic!("a certificate of an unknown CA was accepted");
    };
    assert!(matches!(e, TeamError::Untrusted { .. }), "{e:?}");
    assert!(e.to_string().contains("state.redis_ca"), "{e}");

    let dir = tempfile::tempdir().expect("dir");
    let junk = dir.path().join("not-a-ca.pem");
    std::fs::write(&junk, "hello").expect("write");
    let Err(e) = Engine::connect(
        &RedisTarget {
            ca: Some(junk),
            ..with_ca
        },
        &secrets(),
    )
    .await
    else {
        panic!("a CA file without a certificate was accepted");
    };
    assert!(matches!(e, TeamError::Ca { .. }), "{e:?}");
    assert!(e.to_string().contains("not-a-ca.pem"), "{e}");
}
