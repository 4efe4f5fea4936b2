//! Team mode end to end on PostgreSQL: real `fluxgate serve` replicas share request records,
//! usage, client tokens, conversations and budgets through a real PostgreSQL (started by the
//! test on a loopback port), and queue records while it is away. The helpers are in
//! `common/fleet.rs`.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::time::Duration;

use common::fleet::*;
use fluxgate_testkit::servers::{PostgresServer, POSTGRES_PASSWORD};
use fluxgate_testkit::FakeUpstream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_the_request_log_on_either_replica_show_the_whole_fleet() {
    let pg = PostgresServer::start();
    let (fake, config, keys) = fleet_setup(&postgres_section(&pg), "").await;
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);
    for _ in 0..3 {
        assert_eq!(chat(&a, false).await.status(), 200);
    }
    for stream in [false, true] {
        assert_eq!(chat(&b, stream).await.status(), 200);
    }
    assert_eq!(fake.count("k1") + fake.count("k2"), 5);
    for r in [&a, &b] {
        // A replica's reads wait for its own queue; the other's records arrive within its
        // writer's interval (100 ms).
        let mut usage = admin_get(r, "/admin/api/usage?hours=1").await;
        for _ in 0..20 {
            if route_requests(&usage) == 5 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            usage = admin_get(r, "/admin/api/usage?hours=1").await;
        }
        assert_eq!(usage["source"], "fleet", "{usage}");
        assert_eq!(route_requests(&usage), 5, "{usage}");
        let log = admin_get(r, "/admin/api/requests?limit=50").await;
        assert_eq!(log["source"], "fleet");
        assert_eq!(log["requests"].as_array().expect("requests").len(), 5);
    }
    // What each replica keeps on its own is its own traffic.
    let m = metrics(&a).await;
    assert!(
        m.contains("fluxgate_shared_state_up{engine=\"postgres\"} 1"),
        "{m}"
    );
    assert!(m.contains("fluxgate_fleet_records_pending 0"), "{m}");
    let conf = admin_get(&a, "/admin/api/config").await;
    assert_eq!(conf["shared"]["postgres"], pg.url().as_str());
    assert_eq!(conf["shared"]["postgres_up"], true);
    // No secret reaches PostgreSQL: the upstream keys, the client tokens and the database
    // password are nowhere in its files (tables and write-ahead log).
    let mut files = Vec::new();
    common::collect(&pg.data_dir(), &mut files);
    assert!(files.len() > 100, "{files:?}");
    let mut secrets: Vec<String> = keys.values().cloned().collect();
    secrets.extend([a.token.clone(), b.token.clone(), a.admin.clone()]);
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else {
            continue;
        };
        for s in &secrets {
            assert!(
                memchr::memmem::find(&bytes, s.as_bytes()).is_none(),
                "{} holds a secret",
                f.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_wait_for_postgres_and_arrive_when_it_returns() {
    let mut pg = PostgresServer::start();
    let (_fake, config, keys) = fleet_setup(&postgres_section(&pg), "").await;
    let a = replica(&config, &keys);
    assert_eq!(chat(&a, false).await.status(), 200);
    assert!(wait_for_metrics(&a, &["fluxgate_fleet_records_pending 0"], 50).await);
    pg.stop();
    // Proxying does not depend on PostgreSQL.
    for i in 0..6 {
        assert_eq!(chat(&a, i % 2 == 0).await.status(), 200);
    }
    assert!(
        wait_for_metrics(&a, &["fluxgate_shared_state_up{engine=\"postgres\"} 0"], 50).await,
        "/metrics does not show that PostgreSQL is gone"
    );
    let m = metrics(&a).await;
    assert!(m.contains("fluxgate_fleet_records_pending 6"), "{m}");
    // The console still has numbers: this replica's own, and it says so.
    let usage = admin_get(&a, "/admin/api/usage?hours=1").await;
    assert_eq!(usage["source"], "local", "{usage}");
    assert_eq!(route_requests(&usage), 7);
    let conf = admin_get(&a, "/admin/api/config").await;
    assert_eq!(conf["shared"]["postgres_up"], false);

    pg.start_again();
    assert!(
        wait_for_metrics(
            &a,
            &[
                "fluxgate_shared_state_up{engine=\"postgres\"} 1",
                "fluxgate_fleet_records_pending 0"
            ],
            100
        )
        .await,
        "the queued records were not written after PostgreSQL returned: {}",
        metrics(&a).await
    );
    let usage = admin_get(&a, "/admin/api/usage?hours=1").await;
    assert_eq!(usage["source"], "fleet", "{usage}");
    assert_eq!(route_requests(&usage), 7, "{usage}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_when_postgres_cannot_be_reached_or_refuses_it() {
    let mut pg = PostgresServer::start();
    let (_fake, config, mut keys) = fleet_setup(&postgres_section(&pg), "").await;
    keys.insert("FLUXGATE_PG_PASSWORD", "not-the-password-7d1f".into());
    let err = serve_fails(&config, &keys);
    assert!(
        err.contains("refused this replica") && err.contains("store.postgres_password"),
        "{err}"
    );
    assert!(!err.contains("not-the-password-7d1f"), "{err}");
    pg.stop();
    keys.insert("FLUXGATE_PG_PASSWORD", POSTGRES_PASSWORD.into());
    let err = serve_fails(&config, &keys);
    assert!(
        err.contains("cannot reach PostgreSQL at")
            && err.contains(&pg.url())
            && err.contains("Start it"),
        "{err}"
    );
}

/// A chat request with `token` as the client's key; the status.
async fn chat_as(r: &Replica, token: &str) -> u16 {
    http()
        .post(format!("{}/v1/chat/completions", r.base))
        .bearer_auth(token)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send")
        .status()
        .as_u16()
}

/// Asserts that a request with `token` on `r` gets `status` within a second.
async fn answers_within_a_second(r: &Replica, token: &str, status: u16, what: &str) {
    let start = std::time::Instant::now();
    while chat_as(r, token).await != status {
        assert!(start.elapsed() < Duration::from_secs(1), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_tokens_are_the_fleets_and_a_revocation_stops_everywhere_within_a_second() {
    let pg = PostgresServer::start();
    let (_fake, config, keys) = fleet_setup(&postgres_section(&pg), "").await;
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);
    // Each replica's own token (made with `fluxgate token new` before it joined) works on
    // the other: both joined the fleet's table ("team" and "team-2").
    // (A learns of B's within its mirror's refresh.)
    assert_eq!(chat_as(&b, &a.token).await, 200);
    answers_within_a_second(&a, &b.token, 200, "A never accepted B's token").await;
    let list = admin_get(&b, "/admin/api/tokens").await;
    let names: Vec<&str> = list["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["team", "team-2"], "{list}");

    // A token made in A's console works on B; revoked on B, A refuses it within a second.
    let made: serde_json::Value = http()
        .post(format!("{}/admin/api/tokens", a.base))
        .bearer_auth(&a.admin)
        .json(&serde_json::json!({"name": "ci"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let ci = made["token"].as_str().expect("token").to_string();
    assert_eq!(chat_as(&a, &ci).await, 200);
    let start = std::time::Instant::now();
    while chat_as(&b, &ci).await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "B never accepted it"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let revoked = http()
        .delete(format!("{}/admin/api/tokens/ci", b.base))
        .bearer_auth(&b.admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoked.status(), 200);
    answers_within_a_second(&a, &ci, 401, "A still accepts a token revoked on B").await;
    assert_eq!(chat_as(&b, &ci).await, 401);
}

/// A Responses API turn on route `m` (served by a Chat Completions upstream, so Fluxgate
/// keeps the conversation); the answer.
async fn responses_turn(r: &Replica, input: &str, previous: Option<&str>) -> reqwest::Response {
    let mut body = serde_json::json!({"model": "m", "input": input});
    if let Some(p) = previous {
        body["previous_response_id"] = p.into();
    }
    http()
        .post(format!("{}/v1/responses", r.base))
        .bearer_auth(&r.token)
        .json(&body)
        .send()
        .await
        .expect("send")
}

/// The user and assistant texts of the last Chat Completions body the fake received.
fn last_chat_texts(fake: &FakeUpstream) -> Vec<String> {
    let sent: serde_json::Value =
        serde_json::from_str(&fake.log().last().expect("sent").body).expect("json");
    sent["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_started_on_one_replica_continues_on_another() {
    let mut pg = PostgresServer::start();
    let (fake, config, keys) = fleet_setup(&postgres_section(&pg), "").await;
    let a = replica(&config, &keys);
    let b = replica(&config, &keys);
    let first: serde_json::Value = responses_turn(&a, "hi", None)
        .await
        .json()
        .await
        .expect("json");
    let id = first["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("resp_fg"), "{first}");
    // The next turn lands on B at once (a client sends it the moment it has the id).
    let second = responses_turn(&b, "again", Some(&id)).await;
    assert_eq!(second.status(), 200);
    let second: serde_json::Value = second.json().await.expect("json");
    let texts = last_chat_texts(&fake);
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!((texts[0].as_str(), texts[2].as_str()), ("hi", "again"));

    // PostgreSQL away: a conversation still continues on the replica that holds it.
    pg.stop();
    let second_id = second["id"].as_str().expect("id").to_string();
    let third: serde_json::Value = responses_turn(&b, "third", Some(&second_id))
        .await
        .json()
        .await
        .expect("json");
    let third_id = third["id"].as_str().expect("id").to_string();
    let fourth = responses_turn(&b, "fourth", Some(&third_id)).await;
    assert_eq!(fourth.status(), 200);
    assert_eq!(last_chat_texts(&fake).len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_is_not_overspent_by_three_replicas_racing_for_its_last_tokens() {
    let pg = PostgresServer::start();
    // Each answer of the fake reports 18 tokens; 180 a day fit ten answers.
    let engines = format!(
        "{}\n[[budgets]]\ndaily_tokens = 180\n",
        postgres_section(&pg)
    );
    let (fake, config, keys) = fleet_setup(&engines, "").await;
    let replicas = std::sync::Arc::new([
        replica(&config, &keys),
        replica(&config, &keys),
        replica(&config, &keys),
    ]);
    let mut clients = Vec::new();
    for i in 0..9 {
        let replicas = replicas.clone();
        clients.push(tokio::spawn(async move {
            let r = &replicas[i % 3];
            let mut statuses = Vec::new();
            for _ in 0..4 {
                let status = http()
                    .post(format!("{}/v1/chat/completions", r.base))
                    .bearer_auth(&r.token)
                    .json(&serde_json::json!({
                        "model": "m",
                        "max_tokens": 8,
                        "messages": [{"role": "user", "content": "hi"}],
                    }))
                    .send()
                    .await
                    .expect("send")
                    .status()
                    .as_u16();
                statuses.push(status);
            }
            statuses
        }));
    }
    let mut statuses = Vec::new();
    for c in clients {
        statuses.extend(c.await.expect("client"));
    }
    let served = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 402).count();
    assert_eq!(served + refused, 36, "{statuses:?}");
    let spent = 18 * (fake.count("k1") + fake.count("k2"));
    assert_eq!(spent, 18 * served);
    // Each replica alone would have let ten through (30 in all); the fleet stops at the
    // limit, overshooting by at most one request.
    assert!(
        spent <= 180 + 18,
        "{served} answers spent {spent} tokens of 180"
    );
    assert!(served >= 8, "only {served} answers for a budget of ten");
    // Every hold was released with its record.
    for r in replicas.iter() {
        assert!(wait_for_metrics(r, &["fluxgate_fleet_records_pending 0"], 50).await);
    }
    // Any replica's budgets view shows the fleet's spend.
    for r in replicas.iter() {
        let budgets = admin_get(r, "/admin/api/budgets").await;
        assert_eq!(budgets["source"], "fleet", "{budgets}");
        assert_eq!(
            budgets["budgets"][0]["daily"]["tokens"].as_u64(),
            Some(spent as u64),
            "{budgets}"
        );
    }
    // ...and so does every replica's `/metrics` (each replica alone spent a third of it).
    let ratio = format!(
        "fluxgate_budget_used_ratio{{scope=\"all\",period=\"daily\",unit=\"tokens\"}} {}\n",
        spent as f64 / 180.0
    );
    for r in replicas.iter() {
        assert!(
            wait_for_metrics(r, &[&ratio], 20).await,
            "{ratio} not in {}",
            metrics(r).await
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_postgres_budgeted_requests_fail_closed_or_open_as_configured() {
    let mut pg = PostgresServer::start();
    let engines = format!(
        "{}\n[[budgets]]\ndaily_tokens = 100000\n",
        postgres_section(&pg)
    );
    let (_fake, closed_config, keys) = fleet_setup(&engines, "").await;
    let open_config = closed_config.replace(
        "postgres_password =",
        "budgets_when_unreachable = \"open\"\npostgres_password =",
    );
    assert_ne!(open_config, closed_config);
    let closed = replica(&closed_config, &keys);
    let opened = replica(&open_config, &keys);
    assert_eq!(chat(&closed, false).await.status(), 200);
    assert_eq!(chat(&opened, false).await.status(), 200);
    pg.stop();
    let refused = chat(&closed, false).await;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["type"], "budget_unavailable", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("budgets_when_unreachable")),
        "{body}"
    );
    assert_eq!(chat(&opened, false).await.status(), 200);
}
