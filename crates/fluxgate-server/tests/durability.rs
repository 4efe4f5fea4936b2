//! Durability (RELIABILITY.md 22): the real binary is killed with SIGKILL 50 times at random
//! moments while it takes admin writes (client tokens created and revoked, keys revived) and
//! proxy traffic. Every write it acknowledged with 2xx must be there after the restart, and
//! SQLite's `PRAGMA integrity_check` must say `ok` every time.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::RouterProcess;
use fluxgate_testkit::FakeUpstream;
use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const KILLS: usize = 50;

/// What the writer knows: tokens whose creation or revocation was acknowledged, and the one
/// operation in flight when the process died (its outcome may go either way).
#[derive(Default)]
struct Ledger {
    created: BTreeSet<String>,
    revoked: BTreeSet<String>,
    in_flight: Option<String>,
    acknowledged: u64,
}

impl Ledger {
    fn snapshot(&self) -> Ledger {
        Ledger {
            created: self.created.clone(),
            revoked: self.revoked.clone(),
            in_flight: self.in_flight.clone(),
            acknowledged: self.acknowledged,
        }
    }
}

async fn writer(base: String, admin: String, round: usize, ledger: Arc<Mutex<Ledger>>) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut rng = StdRng::seed_from_u64(round as u64);
    for i in 0.. {
        let revoke = {
            let l = ledger.lock();
            let live: Vec<&String> = l.created.difference(&l.revoked).collect();
            (i % 3 == 2 && !live.is_empty()).then(|| live[rng.random_range(0..live.len())].clone())
        };
        let (name, req) = match revoke {
            Some(name) => (
                name.clone(),
                http.delete(format!("{base}/admin/api/tokens/{name}")),
            ),
            None => {
                let name = format!("t{round}-{i}");
                let req = http
                    .post(format!("{base}/admin/api/tokens"))
                    .json(&serde_json::json!({ "name": name }));
                (name, req)
            }
        };
        let is_revoke = req
            .try_clone()
            .and_then(|r| r.build().ok())
            .is_some_and(|r| r.method() == reqwest::Method::DELETE);
        ledger.lock().in_flight = Some(name.clone());
        let Ok(resp) = req.bearer_auth(&admin).send().await else {
            return;
        };
        let status = resp.status().as_u16();
        // The answer must have arrived whole to count as acknowledged.
        if resp.bytes().await.is_err() {
            return;
        }
        let mut l = ledger.lock();
        match (is_revoke, status) {
            (false, 201) => {
                l.created.insert(name);
            }
            (true, 200) => {
                l.revoked.insert(name);
            }
            (_, s) => panic!("admin write answered {s}"),
        }
        l.acknowledged += 1;
        l.in_flight = None;
    }
}

async fn traffic(base: String, token: String) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    loop {
        let r = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await;
        match r {
            Ok(r) => {
                let _ = r.bytes().await;
            }
            Err(_) => return,
        }
    }
}

fn integrity(data: &std::path::Path) -> String {
    let conn = rusqlite::Connection::open(data.join("fluxgate.db")).expect("open the database");
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

/// Checks every acknowledged write against what the restarted router reports; returns the
/// number lost and the tokens present.
async fn verify(base: &str, admin: &str, ledger: &Ledger) -> (usize, BTreeSet<String>) {
    let v: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/admin/api/tokens"))
        .bearer_auth(admin)
        .send()
        .await
        .expect("list tokens")
        .json()
        .await
        .expect("json");
    let present: BTreeSet<String> = v["tokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect();
    let mut lost = 0;
    for name in ledger.created.difference(&ledger.revoked) {
        if Some(name) != ledger.in_flight.as_ref() && !present.contains(name) {
            eprintln!("LOST: token {name} was acknowledged as created");
            lost += 1;
        }
    }
    for name in &ledger.revoked {
        if Some(name) != ledger.in_flight.as_ref() && present.contains(name) {
            eprintln!("LOST: token {name} was acknowledged as revoked");
            lost += 1;
        }
    }
    (lost, present)
}

impl Ledger {
    /// The write in flight at the kill went one way or the other: take what the restarted
    /// router shows as its outcome, so later rounds check against it.
    fn settle(&mut self, present: &BTreeSet<String>) {
        if let Some(name) = self.in_flight.take() {
            if present.contains(&name) {
                self.created.insert(name.clone());
                self.revoked.remove(&name);
            } else if self.created.contains(&name) {
                self.revoked.insert(name);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_fifty_kill_9s() {
    let fake = FakeUpstream::start().await;
    let key = common::canary();
    fake.add_key("o1", &key);
    let dir = common::tempdir();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.oa]\nkind = \"openai\"\nbase_url = \"{}/v1\"\nkeys = [{{ id = \"o1\", secret = \"env:FG_DURABLE_KEY\" }}]\n\n[routes.m]\ntargets = [\"oa/m\"]\n",
            fake.url()
        ),
    )
    .expect("config");
    let data = dir.path().join("data");
    let token = RouterProcess::cli(dir.path(), &data, &["token", "new", "traffic"]);
    let log = dir.path().join("serve.log");
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = StdRng::seed_from_u64(22);
    let mut lost = 0;
    let start = || {
        RouterProcess::start(
            dir.path(),
            &config,
            &data,
            &[("FG_DURABLE_KEY", &key)],
            Some(&log),
        )
    };
    for round in 0..KILLS {
        let mut router = start();
        let admin = router.admin_token();
        let snapshot = ledger.lock().snapshot();
        let (n, present) = verify(&router.base, &admin, &snapshot).await;
        lost += n;
        ledger.lock().settle(&present);
        let mut tasks = vec![tokio::spawn(writer(
            router.base.clone(),
            admin.clone(),
            round,
            ledger.clone(),
        ))];
        for _ in 0..3 {
            tasks.push(tokio::spawn(traffic(router.base.clone(), token.clone())));
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..300))).await;
        // SIGKILL: no shutdown code runs.
        router.child.kill().expect("kill -9");
        router.child.wait().expect("wait");
        for t in tasks {
            let _ = t.await;
        }
        assert_eq!(integrity(&data), "ok", "after kill {}", round + 1);
    }
    let router = start();
    let admin = router.admin_token();
    let ledger = ledger.lock().snapshot();
    lost += verify(&router.base, &admin, &ledger).await.0;
    println!(
        "{KILLS} kills; {} acknowledged admin writes ({} tokens created, {} revoked); {lost} lost; {} upstream requests served meanwhile",
        ledger.acknowledged,
        ledger.created.len(),
        ledger.revoked.len(),
        fake.log().len()
    );
    assert_eq!(lost, 0);
    assert!(
        ledger.acknowledged >= KILLS as u64 * 3,
        "too few writes to prove anything"
    );
    // The traffic token still works after all that.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", router.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains(&key) && !text.contains(&key[..12]),
        "the log holds the key"
    );
}
