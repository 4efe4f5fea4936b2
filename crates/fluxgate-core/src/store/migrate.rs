//! Numbered migrations embedded in the binary. Each runs in one transaction together with the
//! `user_version` bump, so a crash leaves the schema either before or after it, never between.

use rusqlite::Connection;

use super::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: key health, request log, client tokens. `requests` has no index besides its rowid,
    // which grows with time: an index cost a fifth of each insert on the proxy path.
    r#"
    CREATE TABLE key_health (
        account TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        reason TEXT,
        last_status INTEGER,
        last_message TEXT,
        until_ms INTEGER,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        ladder TEXT,
        step INTEGER NOT NULL DEFAULT 0,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        client TEXT,
        endpoint TEXT NOT NULL,
        model TEXT,
        route TEXT,
        provider TEXT,
        key_id TEXT,
        attempts INTEGER NOT NULL,
        status INTEGER NOT NULL,
        error_class TEXT,
        error_code TEXT,
        latency_ms INTEGER NOT NULL,
        ttfb_ms INTEGER,
        tokens_in INTEGER,
        tokens_out INTEGER,
        stream INTEGER NOT NULL
    );
    CREATE TABLE client_tokens (
        name TEXT PRIMARY KEY,
        token_id TEXT NOT NULL UNIQUE,
        salt BLOB NOT NULL,
        hash BLOB NOT NULL,
        created_ms INTEGER NOT NULL
    );
    "#,
    // 2: conversations of emulated Responses API responses (`previous_response_id`).
    r#"
    CREATE TABLE responses (
        id TEXT PRIMARY KEY,
        created_ms INTEGER NOT NULL,
        items TEXT NOT NULL
    );
    CREATE INDEX responses_created ON responses (created_ms);
    "#,
    // 3: cost, cached tokens and the upstream model per request; spend per scope and period
    // (budgets), written in the same transaction as the records it sums.
    r#"
    ALTER TABLE requests ADD COLUMN upstream_model TEXT;
    ALTER TABLE requests ADD COLUMN tokens_cached INTEGER;
    ALTER TABLE requests ADD COLUMN cost_usd REAL;
    CREATE TABLE spend (
        period TEXT NOT NULL,
        scope TEXT NOT NULL,
        usd REAL NOT NULL DEFAULT 0,
        tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (period, scope)
    ) WITHOUT ROWID;
    "#,
    // 4: a client token's expiry and allow-lists (JSON; NULL: none).
    r#"
    ALTER TABLE client_tokens ADD COLUMN limits TEXT;
    "#,
    // 5: each request's attempts (the request inspector; JSON, NULL when none was made), and
    // for an answer whose upstream reported no usage, the estimate budgets counted instead.
    r#"
    ALTER TABLE requests ADD COLUMN attempt_log TEXT;
    ALTER TABLE requests ADD COLUMN est_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN est_cost_usd REAL;
    "#,
    // 6: the bodies of routes that keep them (scrubbed, cut, deleted when their time is up).
    r#"
    CREATE TABLE request_bodies (
        request_id TEXT PRIMARY KEY,
        ts_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        request TEXT NOT NULL,
        request_bytes INTEGER NOT NULL,
        request_cut INTEGER NOT NULL,
        response TEXT NOT NULL,
        response_bytes INTEGER NOT NULL,
        response_cut INTEGER NOT NULL
    );
    CREATE INDEX request_bodies_expires ON request_bodies (expires_ms);
    "#,
    // 7: requests per hour, route, provider, key and outcome (the console's charts read days
    // of these instead of every request), written with each batch of records; filled from
    // the requests already recorded.
    r#"
    CREATE TABLE usage_hours (
        hour INTEGER NOT NULL,
        route TEXT NOT NULL,
        provider TEXT NOT NULL,
        key_id TEXT NOT NULL,
        failed INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        tokens_in INTEGER NOT NULL,
        tokens_out INTEGER NOT NULL,
        tokens_cached INTEGER NOT NULL,
        cost_usd REAL NOT NULL,
        last_ms INTEGER NOT NULL,
        PRIMARY KEY (hour, route, provider, key_id, failed)
    ) WITHOUT ROWID;
    INSERT INTO usage_hours
        SELECT ts_ms / 3600000, COALESCE(route, ''), COALESCE(provider, ''), COALESCE(key_id, ''),
               (status >= 400 OR error_code IS NOT NULL), COUNT(*), COALESCE(SUM(tokens_in), 0),
               COALESCE(SUM(tokens_out), 0), COALESCE(SUM(tokens_cached), 0),
               COALESCE(SUM(cost_usd), 0.0), MAX(ts_ms)
        FROM requests GROUP BY 1, 2, 3, 4, 5;
    "#,
    // 8: each key's state changes (the dashboard's health strip), kept 31 days.
    r#"
    CREATE TABLE key_history (
        ts_ms INTEGER NOT NULL,
        provider TEXT NOT NULL,
        key_id TEXT NOT NULL,
        status TEXT NOT NULL,
        reason TEXT
    );
    CREATE INDEX key_history_ts ON key_history (ts_ms);
    "#,
];

pub fn run(conn: &mut Connection) -> Result<(), StoreError> {
    run_list(conn, MIGRATIONS)
}

/// Brings the schema up to `migrations.len()`, one transaction per migration.
pub(crate) fn run_list(conn: &mut Connection, migrations: &[&str]) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let known = migrations.len() as i64;
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
