//! The fleet's ledger on a real PostgreSQL (started by the test on a loopback port): the
//! schema is applied once however many replicas start together, a newer schema is refused,
//! every replica's records and spend add up in one place, client tokens are the fleet's (a
//! revocation is seen everywhere within a second), and the password is a secret reference
//! that never shows in an error.
#![allow(clippy::expect_used, clippy::unwrap_used)] // test code: a failed assumption fails the test

use std::sync::Arc;
use std::time::{Duration, Instant};

use fluxgate_core::budgets::{FleetBudgets, FleetRefusal, Spend};
use fluxgate_core::config::{Budget, BudgetScope, PostgresTarget};
use fluxgate_core::record::RequestRecord;
use fluxgate_core::recorder::RecordSink;
use fluxgate_core::secrets::{MemoryStore, SecretRef, SecretStore, SecretValue, Secrets};
use fluxgate_core::sessions::SessionStore;
use fluxgate_core::store::Store;
use fluxgate_core::team::{
    FleetLedger, LedgerError, SharedSessions, SharedTokens, LEASE_IDLE, SCHEMA_VERSION,
};
use fluxgate_core::tokens::TokenError;
use fluxgate_testkit::servers::{PostgresServer, POSTGRES_PASSWORD};
use fluxgate_testkit::tls::TestCa;

/// Secrets whose keychain holds `password` for the ledger's account.
fn secrets(password: &str) -> Secrets {
    let store = Arc::new(MemoryStore::default());
    store
        .set(
            PostgresTarget::KEYCHAIN_ACCOUNT,
            &SecretValue::new(password),
        )
        .expect("set");
    Secrets::with_store(store)
}

fn target(pg: &PostgresServer) -> PostgresTarget {
    PostgresTarget {
        url: pg.url(),
        password: Some(SecretRef::Keychain),
        budgets_fail_open: false,
        ca: None,
    }
}

async fn ledger(pg: &PostgresServer) -> Arc<FleetLedger> {
    FleetLedger::connect(&target(pg), &secrets(POSTGRES_PASSWORD))
        .await
        .expect("connect")
}

/// A direct connection for looking at what the ledger wrote.
async fn psql(pg: &PostgresServer) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(
        &format!(
            "host=127.0.0.1 port={} user=fluxgate password={POSTGRES_PASSWORD} dbname=postgres",
            pg.port()
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("psql");
    tokio::spawn(conn);
    client
}

/// The ledgers' record writers, running until `stop` (which waits for their last batch).
struct Writers {
    stop: tokio::sync::oneshot::Sender<()>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(ledgers: &[&Arc<FleetLedger>]) -> Writers {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let stopped = futures_util::FutureExt::shared(async move {
            let _ = stopped.await;
        });
        let tasks = ledgers
            .iter()
            .map(|l| tokio::spawn((*l).clone().run(stopped.clone())))
            .collect();
        Writers { stop, tasks }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        for t in self.tasks {
            t.await.expect("writer");
        }
    }
}

fn record(i: usize, cost: f64) -> RequestRecord {
    RequestRecord {
        ts_ms: fluxgate_core::clock::now_ms(),
        request_id: format!("req-{i}"),
        client: Some("team".into()),
        endpoint: "chat_completions".into(),
        model: Some("m".into()),
        route: Some("m".into()),
        provider: Some("p".into()),
        key_id: Some(if i.is_multiple_of(2) { "a" } else { "b" }.into()),
        attempts: 1,
        status: 200,
        error_class: None,
        error_code: None,
        latency_ms: 12,
        ttfb_ms: Some(5),
        tokens_in: Some(10),
        tokens_out: Some(5),
        stream: false,
        upstream_model: Some("m".into()),
        tokens_cached: None,
        cost_usd: Some(cost),
        est_tokens: None,
        est_cost_usd: None,
        attempt_log: vec![fluxgate_core::record::AttemptRecord {
            provider: "p".into(),
            key_id: "a".into(),
            model: "m".into(),
            proxy: None,
            at_ms: 0,
            ms: 12,
            first_byte_ms: Some(5),
            outcome: fluxgate_core::record::AttemptOutcome::Served,
            status: Some(200),
            error_class: None,
            error: None,
        }],
        seq: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_apply_the_schema_once() {
    let pg = PostgresServer::start();
    let starts = (0..4).map(|_| ledger(&pg));
    let ledgers = futures_util::future::join_all(starts).await;
    assert_eq!(ledgers.len(), 4);
    let c = psql(&pg).await;
    let versions: Vec<i64> = c
        .query("SELECT version FROM fluxgate_schema ORDER BY version", &[])
        .await
        .expect("schema")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let expected: Vec<i64> = (1..=SCHEMA_VERSION).collect();
    assert_eq!(versions, expected, "every version applied exactly once");
    // A later start finds nothing to do.
    ledger(&pg).await;
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM fluxgate_schema", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, SCHEMA_VERSION);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_written_by_a_newer_fluxgate_is_refused() {
    let pg = PostgresServer::start();
    ledger(&pg).await;
    psql(&pg)
        .await
        .execute("INSERT INTO fluxgate_schema (version) VALUES (99)", &[])
        .await
        .expect("insert");
    let e = FleetLedger::connect(&target(&pg), &secrets(POSTGRES_PASSWORD))
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, LedgerError::TooNew { found: 99, .. }), "{e:?}");
    assert!(e.to_string().contains("upgrade this replica"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_and_spend_of_every_replica_add_up_in_one_place() {
    let pg = PostgresServer::start();
    let (a, b) = (ledger(&pg).await, ledger(&pg).await);
    let writers = Writers::start(&[&a, &b]);
    // 1 200 records each (more than one batch), pushed from several threads at once.
    let mut pushers = Vec::new();
    for (l, offset) in [(a.clone(), 0), (b.clone(), 1_200)] {
        for t in 0..3 {
            let l = l.clone();
            pushers.push(std::thread::spawn(move || {
                for i in 0..400 {
                    l.push(record(offset + t * 400 + i, 0.001));
                }
            }));
        }
    }
    for p in pushers {
        p.join().expect("pusher");
    }
    a.flush().await;
    b.flush().await;
    assert_eq!((a.pending(), b.pending()), (0, 0));

    let usage = a.usage_since(1).await.expect("usage");
    let by_route = &usage["by_route"][0];
    assert_eq!(by_route["route"], "m");
    assert_eq!(by_route["requests"], 2_400);
    assert_eq!(by_route["tokens_in"], 24_000);
    let by_key = usage["by_key"].as_array().expect("by_key");
    assert_eq!(by_key.len(), 2);
    let recent = b.recent(5).await.expect("recent");
    assert_eq!(recent.len(), 5);
    // The request inspector's reads: attempts come back, filters and cursors work fleet-wide.
    assert_eq!(recent[0].attempt_log.len(), 1);
    assert_eq!(recent[0].attempt_log[0].first_byte_ms, Some(5));
    let key_b = fluxgate_core::store::RequestQuery {
        key: Some("b".into()),
        limit: Some(1000),
        ..Default::default()
    };
    let rows = a.query(&key_b).await.expect("query");
    assert_eq!(rows.len(), 1000);
    assert!(rows.iter().all(|r| r.key_id.as_deref() == Some("b")));
    let head = a.head().await.expect("head");
    assert!(rows[0].seq.is_some_and(|s| s <= head));
    let newer = fluxgate_core::store::RequestQuery {
        after: Some(head - 3),
        ..Default::default()
    };
    let tail = b.query(&newer).await.expect("follow");
    assert_eq!(tail.len(), 3, "the three newest, from either replica");
    assert!(tail.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    assert_eq!(tail[2].seq, Some(head));

    let today = fluxgate_core::record::periods(fluxgate_core::clock::now_ms());
    let spend = b.spend_in(&today).await.expect("spend");
    let all: Vec<_> = spend.iter().filter(|(_, s, _)| s == "all").collect();
    assert_eq!(all.len(), 2, "{spend:?}");
    for (_, _, s) in all {
        assert!((s.usd - 2.4).abs() < 1e-6, "{s:?}");
        assert_eq!(s.tokens, 36_000);
    }
    writers.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_refused_without_being_quoted_and_a_stopped_server_is_unreachable() {
    let mut pg = PostgresServer::start();
    let e = FleetLedger::connect(&target(&pg), &secrets("wrong-password-91c2"))
        .await
        .err()
        .expect("refused");
    assert!(matches!(e, LedgerError::Refused { .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong-password-91c2"), "{e}");

    let e = FleetLedger::connect(
        &target(&pg),
        &Secrets::with_store(Arc::new(MemoryStore::default())),
    )
    .await
    .err()
    .expect("no password");
    assert!(matches!(e, LedgerError::Password { .. }), "{e:?}");

    pg.stop();
    let e = FleetLedger::connect(&target(&pg), &secrets(POSTGRES_PASSWORD))
        .await
        .err()
        .expect("unreachable");
    assert!(matches!(e, LedgerError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&pg.url()), "{e}");
}

/// A replica's client tokens on the fleet's table, with `local` as its own SQLite store.
fn replica_tokens(
    pg: &PostgresServer,
    local: &fluxgate_core::store::Store,
) -> (fluxgate_core::tokens::ClientTokens, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ledger = rt.block_on(ledger(pg));
    let shared = SharedTokens::open(&ledger, local).expect("tokens");
    (fluxgate_core::tokens::ClientTokens::new(shared), rt)
}

/// Waits (up to 3 s) until `f` holds; returns how long it took.
fn within(f: impl Fn() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if f() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

#[test]
fn a_token_made_on_one_replica_works_on_another_and_its_revocation_is_seen_within_a_second() {
    let pg = PostgresServer::start();
    let (a, _ra) = replica_tokens(&pg, &Store::memory().expect("store"));
    let (b, _rb) = replica_tokens(&pg, &Store::memory().expect("store"));
    let token = a.create("ci").expect("create");
    assert_eq!(
        a.verify(&token).as_deref(),
        Some("ci"),
        "at once where it was made"
    );
    let seen = within(|| b.verify(&token).is_some()).expect("B never accepted A's token");
    assert!(seen < Duration::from_secs(1), "{seen:?}");
    // B has it cached now; a revocation on A must end that too.
    assert_eq!(b.verify(&token).as_deref(), Some("ci"));
    a.revoke("ci").expect("revoke");
    assert_eq!(a.verify(&token), None);
    let gone = within(|| b.verify(&token).is_none()).expect("B still accepts a revoked token");
    assert!(gone < Duration::from_secs(1), "{gone:?}");
    assert!(b.list().expect("list").is_empty());
    // Revoking what is gone says so.
    assert!(matches!(b.revoke("ci"), Err(TokenError::NotFound(_))));
    // A token's limits travel with it.
    let limits = fluxgate_core::tokens::TokenLimits {
        expires_ms: Some(fluxgate_core::clock::now_ms() + 86_400_000),
        routes: vec!["coding".into()],
        providers: vec!["anthropic".into()],
        nothing: false,
    };
    let limited = a.create_with("intern", limits.clone()).expect("create");
    within(|| b.check(&limited).is_ok()).expect("B never accepted it");
    let client = b.check(&limited).expect("valid");
    assert_eq!(client.limits.as_deref(), Some(&limits));
}

#[test]
fn two_replicas_cannot_make_one_name() {
    let pg = PostgresServer::start();
    let (a, _ra) = replica_tokens(&pg, &Store::memory().expect("store"));
    let (b, _rb) = replica_tokens(&pg, &Store::memory().expect("store"));
    let (ta, tb) = std::thread::scope(|s| {
        let ta = s.spawn(|| a.create("shared-name"));
        let tb = s.spawn(|| b.create("shared-name"));
        (ta.join().expect("a"), tb.join().expect("b"))
    });
    let ok = [&ta, &tb].iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{ta:?} {tb:?}");
    assert!([ta, tb]
        .into_iter()
        .any(|r| matches!(r, Err(TokenError::NameTaken(_)))));
}

#[test]
fn tokens_a_machine_had_before_joining_keep_working_renamed_when_the_name_is_taken() {
    let pg = PostgresServer::start();
    let (laptop, desktop) = (
        Store::memory().expect("store"),
        Store::memory().expect("store"),
    );
    let from_laptop = fluxgate_core::tokens::ClientTokens::in_store(laptop.clone())
        .create("claude-code")
        .expect("create");
    let from_desktop = fluxgate_core::tokens::ClientTokens::in_store(desktop.clone())
        .create("claude-code")
        .expect("create");
    let (a, _ra) = replica_tokens(&pg, &laptop);
    let (b, _rb) = replica_tokens(&pg, &desktop);
    assert_eq!(b.verify(&from_desktop).as_deref(), Some("claude-code-2"));
    let seen = within(|| a.verify(&from_desktop).is_some() && b.verify(&from_laptop).is_some());
    assert!(seen.is_some(), "each machine's token works on the other");
    let names: Vec<String> = a
        .list()
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    // Joining again adds nothing.
    let (c, _rc) = replica_tokens(&pg, &laptop);
    assert_eq!(c.list().expect("list").len(), 2);
}

#[test]
fn without_postgres_known_tokens_still_work_and_changes_are_refused_with_a_reason() {
    let mut pg = PostgresServer::start();
    let (a, _ra) = replica_tokens(&pg, &Store::memory().expect("store"));
    let token = a.create("laptop").expect("create");
    pg.stop();
    assert_eq!(a.verify(&token).as_deref(), Some("laptop"));
    let err = a.create("new-one").expect_err("refused");
    assert!(
        matches!(
            err,
            TokenError::Store(fluxgate_core::store::StoreError::Shared(_))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&pg.url()), "{err}");
    pg.start_again();
    let made = within(|| a.create("new-one").is_ok());
    assert!(
        made.is_some(),
        "creating works again once PostgreSQL is back"
    );
}

fn replica_sessions(pg: &PostgresServer) -> (Arc<SharedSessions>, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ledger = rt.block_on(ledger(pg));
    (SharedSessions::open(&ledger).expect("sessions"), rt)
}

#[test]
fn a_console_session_is_the_fleets_and_signing_out_ends_it_everywhere_within_a_second() {
    let pg = PostgresServer::start();
    let (a, _ra) = replica_sessions(&pg);
    let (b, _rb) = replica_sessions(&pg);
    // A login link made on A opens the console on B, once.
    let code = a.new_code();
    let session = b.redeem(&code).expect("redeemed on another replica");
    assert!(
        a.redeem(&code).is_none(),
        "a code works once across the fleet"
    );
    assert!(
        b.valid(&session.id, &session.secret),
        "at once where it opened"
    );
    let seen = within(|| a.valid(&session.id, &session.secret)).expect("A never saw it");
    assert!(seen < Duration::from_secs(1), "{seen:?}");
    assert!(!a.valid(&session.id, "not-the-secret"));
    b.end(&session.id);
    assert!(!b.valid(&session.id, &session.secret));
    let gone = within(|| !a.valid(&session.id, &session.secret)).expect("A keeps it");
    assert!(gone < Duration::from_secs(1), "{gone:?}");
    assert!(b.redeem("0000").is_none());
    // Only digests are stored.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stored: Vec<Vec<u8>> = rt.block_on(async {
        psql(&pg)
            .await
            .query("SELECT digest FROM fluxgate_console_codes UNION ALL SELECT id FROM fluxgate_console_sessions", &[])
            .await
            .expect("rows")
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert!(stored.iter().all(|d| d.len() == 32 && d != code.as_bytes()));
}

/// Two replicas, four tasks each, take 100-token requests from a fleet budget of 100 000
/// tokens, holding every reservation: together they admit exactly the limit, and most
/// reservations come from a replica's lease, not from a transaction each. Once the requests
/// have ended and the leases have been idle, every hold is gone from PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_admit_exactly_a_fleet_budget_mostly_from_leases() {
    let pg = PostgresServer::start();
    let (a, b) = (ledger(&pg).await, ledger(&pg).await);
    let writers = Writers::start(&[&a, &b]);
    let budgets = Arc::new(vec![(
        "all".to_string(),
        Budget {
            scope: BudgetScope::All,
            daily_usd: None,
            monthly_usd: None,
            daily_tokens: Some(100_000),
            monthly_tokens: None,
        },
    )]);
    let need = Spend {
        usd: 0.0,
        tokens: 100,
    };
    let mut tasks = Vec::new();
    for l in [a.clone(), b.clone()] {
        for _ in 0..4 {
            let (l, budgets) = (l.clone(), budgets.clone());
            tasks.push(tokio::spawn(async move {
                let scopes = vec!["all".to_string()];
                let mut held = Vec::new();
                loop {
                    match l.reserve(&budgets, &scopes, need).await {
                        Ok(r) => held.push(r),
                        Err(FleetRefusal::Exceeded(e)) => {
                            assert_eq!(e.limit, 100_000.0);
                            return held;
                        }
                        Err(FleetRefusal::Unreachable(e)) => panic!("{e}"),
                    }
                }
            }));
        }
    }
    let mut held = Vec::new();
    for t in tasks {
        held.extend(t.await.expect("task"));
    }
    assert_eq!(held.len(), 1_000, "exactly the limit, fleet-wide");
    let ((la, ga), (lb, gb)) = (a.reservations(), b.reservations());
    eprintln!("transactions: {} of {}", ga + gb, la + ga + lb + gb);
    // Each task's last, refused, attempt ran a transaction too.
    assert_eq!(la + ga + lb + gb, 1_008);
    assert!(la > 0 && lb > 0, "both replicas served requests");
    assert!(
        ga + gb <= 150,
        "{} of 1 000 reservations took a transaction",
        ga + gb
    );
    assert!(a.render_metrics().contains(&format!(
        "fluxgate_fleet_budget_reservations_total{{path=\"postgres\"}} {ga}"
    )));

    // The requests end; the leases go idle; their holds are released.
    drop(held);
    let db = psql(&pg).await;
    let holds = || async {
        db.query_one("SELECT count(*) FROM fluxgate_budget_holds", &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    let deadline = Instant::now() + LEASE_IDLE + Duration::from_secs(5);
    while holds().await > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(holds().await, 0, "holds left after the leases went idle");
    // So the whole budget is the fleet's again (nothing was spent).
    let scopes = vec!["all".to_string()];
    let big = Spend {
        usd: 0.0,
        tokens: 100_000,
    };
    assert!(b.reserve(&budgets, &scopes, big).await.is_ok());
    writers.stop().await;
}

/// PostgreSQL on another machine, over TLS with a certificate a private CA signed (the
/// server takes TLS connections only): with `sslmode=require` and `postgres_ca` the replica
/// connects and works; without the CA the certificate is refused, saying why; without TLS
/// the server refuses; a CA file that holds no certificate is an error naming the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls_is_trusted_through_a_private_ca() {
    let ca = TestCa::new();
    let pg = PostgresServer::start_tls(&ca);
    let tls = PostgresTarget {
        url: format!("{}?sslmode=require", pg.url()),
        ca: Some(ca.ca_path()),
        ..target(&pg)
    };
    let l = FleetLedger::connect(&tls, &secrets(POSTGRES_PASSWORD))
        .await
        .expect("connects over TLS");
    assert!(l.recent(5).await.expect("reads over TLS").is_empty());

    let Err(e) = FleetLedger::connect(
        &PostgresTarget {
            ca: None,
            ..tls.clone()
        },
        &secrets(POSTGRES_PASSWORD),
    )
    .await
    else {
        panic!("a certificate of an unknown CA was accepted");
    };
    assert!(matches!(e, LedgerError::Untrusted { .. }), "{e}");
    assert!(e.to_string().contains("UnknownIssuer"), "{e}");

    let plain = PostgresTarget {
        url: format!("{}?sslmode=disable", pg.url()),
        ..target(&pg)
    };
    assert!(
        FleetLedger::connect(&plain, &secrets(POSTGRES_PASSWORD))
            .await
            .is_err(),
        "the server takes TLS connections only"
    );

    let dir = tempfile::tempdir().expect("dir");
    let junk = dir.path().join("not-a-ca.pem");
    std::fs::write(&junk, "hello").expect("write");
    let Err(e) = FleetLedger::connect(
        &PostgresTarget {
            ca: Some(junk),
            ..tls
        },
        &secrets(POSTGRES_PASSWORD),
    )
    .await
    else {
        panic!("a CA file without a certificate was accepted");
    };
    assert!(matches!(e, LedgerError::Ca { .. }), "{e}");
    assert!(e.to_string().contains("not-a-ca.pem"), "{e}");
}
