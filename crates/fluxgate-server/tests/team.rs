//! Team mode end to end on Redis: real `fluxgate serve` replicas share key health and limits
//! through a real `redis-server` (started by the test on a loopback port), survive it going
//! away, and one replica killed mid-stream leaves the others alone. PostgreSQL's half is in
//! `team_ledger.rs`; the helpers are in `common/fleet.rs`.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::fleet::*;
use fluxgate_testkit::servers::RedisServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rate_limited_behind_one_replica_is_avoided_by_the_other() {
    let redis = RedisServer::start();
    let (fake, config, keys) = fleet_setup(&redis_section(&redis), "").await;
    fake.always(
        "k1",
        rate_limited(r#"{"error":{"message":"Rate limit reached","type":"rate_limit_error"}}"#),
    );
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);

    // Replica A meets the 429 (and fails over to k2 within the request).
    for _ in 0..2 {
        assert_eq!(chat(&a, false).await.status(), 200);
    }
    let hit = fake.count("k1");
    assert_eq!(hit, 1, "A sent to k1 again inside its Retry-After");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Replica B has never sent anything, yet it never sends to k1 either.
    for _ in 0..10 {
        assert_eq!(chat(&b, false).await.status(), 200);
    }
    assert_eq!(
        fake.count("k1"),
        hit,
        "B sent to a key the fleet knows is cooling"
    );
    assert_eq!(fake.count("k2"), 12);
    // B shows why, like A.
    let keys_view: serde_json::Value = http()
        .get(format!("{}/admin/api/keys", b.base))
        .bearer_auth(&b.admin)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    let text = keys_view.to_string();
    assert!(text.contains("rate_limited"), "{text}");
    assert!(metrics(&b)
        .await
        .contains("fluxgate_shared_state_up{engine=\"redis\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_limit_admits_exactly_its_rpm_across_replicas() {
    let redis = RedisServer::start();
    let (fake, config, keys) = fleet_setup(&redis_section(&redis), ", rpm = 3").await;
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);
    // Two keys of 3 a minute: six requests fit, whichever replica takes them.
    let mut ok = 0;
    for i in 0..10 {
        let r = if i % 2 == 0 { &a } else { &b };
        if chat(r, false).await.status() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 6);
    assert_eq!(fake.count("k1") + fake.count("k2"), 6);
    assert_eq!(fake.count("k1"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_when_redis_cannot_be_reached() {
    let mut redis = RedisServer::start();
    let (_fake, config, keys) = fleet_setup(&redis_section(&redis), "").await;
    redis.stop();
    let err = serve_fails(&config, &keys);
    assert!(
        err.contains("cannot reach Redis at")
            && err.contains(&redis.url())
            && err.contains("Start it"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_keep_serving_without_redis_and_rejoin_when_it_returns() {
    let mut redis = RedisServer::start();
    // A limit that never bites: every request takes its room through Redis, so its death is
    // felt on the request path itself.
    let (fake, config, keys) = fleet_setup(&redis_section(&redis), ", rpm = 100000").await;
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);
    assert_eq!(chat(&a, false).await.status(), 200);

    // A load run on both replicas (8 clients, streaming and not); Redis dies in the middle.
    let replicas = std::sync::Arc::new([a, b]);
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut clients = Vec::new();
    for i in 0..8 {
        let replicas = replicas.clone();
        let done = done.clone();
        clients.push(tokio::spawn(async move {
            let r = &replicas[i % 2];
            let mut statuses = Vec::new();
            for _ in 0..40 {
                statuses.push(chat(r, i % 4 == 0).await.status().as_u16());
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            statuses
        }));
    }
    while done.load(std::sync::atomic::Ordering::SeqCst) < 80 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    redis.stop();
    let at_kill = done.load(std::sync::atomic::Ordering::SeqCst);
    let mut served = 0;
    for c in clients {
        for status in c.await.expect("client") {
            assert_eq!(status, 200, "a request failed because Redis went away");
            served += 1;
        }
    }
    assert_eq!(served, 320);
    assert!(
        at_kill < 280,
        "the load was over before Redis died ({at_kill} of 320)"
    );
    let Ok([a, b]) = std::sync::Arc::try_unwrap(replicas) else {
        panic!("the clients still hold the replicas");
    };
    assert!(
        wait_for_metrics(&b, &["fluxgate_shared_state_up{engine=\"redis\"} 0"], 50).await,
        "/metrics does not show that Redis is gone"
    );

    // While Redis is away a key goes out on A; when Redis is back, B learns it.
    fake.always("k1", rate_limited(""));
    for _ in 0..2 {
        assert_eq!(chat(&a, false).await.status(), 200);
    }
    redis.start_again();
    let up = ["fluxgate_shared_state_up{engine=\"redis\"} 1"];
    assert!(
        wait_for_metrics(&b, &up, 80).await && wait_for_metrics(&a, &up, 80).await,
        "the replicas do not re-join Redis"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = fake.count("k1");
    for _ in 0..6 {
        assert_eq!(chat(&b, false).await.status(), 200);
    }
    assert_eq!(
        fake.count("k1"),
        before,
        "B did not learn A's cooldown after Redis returned"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_stream_leaves_the_others_unaffected() {
    let redis = RedisServer::start();
    let (fake, config, keys) = fleet_setup(&redis_section(&redis), "").await;
    fake.set_chunk_delay(Duration::from_millis(100));
    let mut a = replica(&config, &keys);
    let b = replica(&config, &keys);
    let streaming = tokio::spawn({
        let base = a.base.clone();
        let token = a.token.clone();
        async move {
            let r = http()
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(token)
                .json(&serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await;
            match r {
                Ok(r) => r.text().await.is_ok(),
                Err(_) => false,
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(250)).await;
    a.child.kill().expect("kill -9");
    let _ = a.child.wait();
    assert!(
        !streaming.await.expect("task"),
        "the killed replica's stream completed"
    );
    fake.set_chunk_delay(Duration::ZERO);
    for _ in 0..10 {
        let r = chat(&b, true).await;
        assert_eq!(r.status(), 200);
        let body = r.text().await.expect("body");
        assert!(body.contains("[DONE]"), "{body}");
    }
    // Nothing the killed replica left in Redis holds B's keys out.
    let health: serde_json::Value = http()
        .get(format!("{}/admin/api/keys", b.base))
        .bearer_auth(&b.admin)
        .send()
        .await
        .expect("keys")
        .json()
        .await
        .expect("json");
    assert!(!health.to_string().contains("cooling"), "{health}");
}
