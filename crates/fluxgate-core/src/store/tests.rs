use super::*;
use crate::health::{ErrorClass, HealthBackend, KeyStatus, PersistedState};
use crate::record::RequestRecord;
use crate::recorder::Recorder;

#[test]
fn migrations_are_idempotent_and_refuse_newer_schemas() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    assert!(s.integrity_ok().expect("check"));
    drop(s);
    let s = Store::open(dir.path()).expect("reopen");
    s.with(|c| c.pragma_update(None, "user_version", 99))
        .expect("bump");
    drop(s);
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::TooNew { found: 99, .. })
    ));
}

#[test]
fn a_migration_that_fails_half_way_leaves_the_schema_as_it_was() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.db");
    let mut conn = rusqlite::Connection::open(&path).expect("open");
    let good = "CREATE TABLE a (x INTEGER);";
    // The second statement fails after the first has run inside the same migration.
    let bad = "CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); CREATE TABLE a (y TEXT);";
    migrate::run_list(&mut conn, &[good]).expect("first");
    assert!(migrate::run_list(&mut conn, &[good, bad]).is_err());
    drop(conn);
    let conn = rusqlite::Connection::open(&path).expect("reopen");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 1);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert_eq!(tables, ["a"], "a table of the failed migration survived");
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows, 0, "a row of the failed migration survived");
}

#[test]
fn health_round_trips() {
    let s = Store::memory().expect("store");
    let st = PersistedState {
        account: "p/k".into(),
        status: KeyStatus::Cooling,
        reason: Some(ErrorClass::RateLimited),
        last_status: Some(429),
        last_message: Some("slow down".into()),
        until_ms: Some(123),
        consecutive_failures: 0,
        ladder: Some(ErrorClass::RateLimited),
        step: 2,
    };
    s.save(st.clone());
    s.save(PersistedState {
        step: 3,
        ..st.clone()
    });
    assert_eq!(s.load_all(), vec![PersistedState { step: 3, ..st }]);
}

#[test]
fn request_log_batches_and_flushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    let log = Recorder::start(&s);
    for i in 0..1000 {
        log.record(RequestRecord {
            request_id: format!("r{i}"),
            endpoint: "messages".into(),
            status: 200,
            attempts: 1,
            ..Default::default()
        });
    }
    log.close();
    log.record(RequestRecord {
        request_id: "after-close".into(),
        ..Default::default()
    });
    log.flush();
    let recent = log.recent(5).expect("recent");
    assert_eq!(recent.len(), 5);
    assert_eq!(recent[0].request_id, "r999");
    let n: i64 = s
        .with(|c| c.query_row("SELECT COUNT(*) FROM requests", [], |r| r.get(0)))
        .expect("count");
    assert_eq!(n, 1000);
}

#[test]
fn tokens_table() {
    let s = Store::memory().expect("store");
    let row = TokenRow {
        name: "laptop".into(),
        token_id: "abc".into(),
        salt: vec![1],
        hash: vec![2],
        created_ms: 1,
        limits: Default::default(),
    };
    assert!(s.insert_token(&row).expect("insert"));
    assert!(!s.insert_token(&row).expect("dup"));
    assert_eq!(
        s.token_by_id("abc").expect("get").map(|r| r.name),
        Some("laptop".into())
    );
    assert!(s.revoke_token("laptop").expect("revoke"));
    assert!(!s.revoke_token("laptop").expect("revoke again"));
    assert!(s.tokens().expect("list").is_empty());
}

#[test]
fn usage_counts_only_the_window_and_finds_its_start_without_a_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = Store::open(dir.path()).expect("open");
    let log = Recorder::start(&s);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let rec = |ts_ms: i64, route: &str, cached: u64| RequestRecord {
        ts_ms,
        route: Some(route.into()),
        provider: Some("p".into()),
        key_id: Some("k".into()),
        endpoint: "chat".into(),
        status: 200,
        attempts: 1,
        tokens_in: Some(10),
        tokens_out: Some(2),
        tokens_cached: Some(cached),
        cost_usd: Some(0.5),
        ..Default::default()
    };
    // 3,000 old rows (ten days ago), then 5 in the last hour, one of them written late with
    // a start time just inside the window (a long stream), then one from two hours ago.
    for i in 0..3_000 {
        log.record(rec(now - 10 * 86_400_000 + i, "old", 0));
    }
    for i in 0..4 {
        log.record(rec(now - 60_000 + i, "new", 5));
    }
    log.record(rec(now - 2 * 3_600_000, "older", 0));
    log.record(rec(now - 3_000_000, "new", 5));
    log.flush();
    let first = s
        .with(|c| super::first_row_since(c, now - 3_600_000))
        .expect("search");
    assert_eq!(first, 3_001, "the first row of the last hour");
    let u = s.usage_since(1, 86_400_000).expect("usage");
    let routes = u["by_route"].as_array().expect("routes");
    assert_eq!(routes.len(), 1, "{u}");
    assert_eq!(routes[0]["route"], "new");
    assert_eq!(routes[0]["requests"], 5);
    assert_eq!(routes[0]["tokens_cached"], 25);
    assert_eq!(routes[0]["cache_hit_rate"], 0.5);
    assert_eq!(routes[0]["cost_usd"], 2.5);
    assert_eq!(
        s.usage_since(3, 86_400_000).expect("usage")["by_route"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn kept_bodies_are_scrubbed_on_write_and_gone_when_their_time_is_up() {
    let s = Store::memory().expect("store");
    let log = Recorder::start(&s);
    let now = crate::clock::now_ms();
    let body = |id: &str, expires_ms: i64| crate::store::BodiesToKeep {
        request_id: id.into(),
        ts_ms: now,
        expires_ms,
        request: bytes::Bytes::from_static(b"{\"content\":\"use sk-abc123def456ghi789 please\"}"),
        request_bytes: 5000,
        response: b"{\"ok\":true}".to_vec(),
        response_bytes: 11,
    };
    log.keep_bodies(body("live", now + 60_000));
    log.keep_bodies(body("expired", now - 1));
    let kept = log.bodies("live").expect("read").expect("kept");
    assert_eq!(kept.request, "{\"content\":\"use *** please\"}");
    assert!(kept.request_cut && !kept.response_cut);
    assert_eq!(kept.response, "{\"ok\":true}");
    assert_eq!(log.bodies("expired").expect("read"), None);
    let rows: i64 = s
        .with(|c| c.query_row("SELECT COUNT(*) FROM request_bodies", [], |r| r.get(0)))
        .expect("count");
    assert_eq!(rows, 1, "the expired one is deleted, not only hidden");
    log.close();
}
