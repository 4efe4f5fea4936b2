//! The fleet ledger's schema: numbered migrations applied at start, in one transaction under
//! an advisory lock, so replicas starting together do not race; a database written by a newer
//! build is refused.

use tokio_postgres::Client;

use super::{in_transaction, FleetLedger, LedgerError};

/// The advisory lock migrations run under (any fixed number: the same on every replica).
const MIGRATION_LOCK: i64 = 0x666c_7578_6761_7465; // "fluxgate"

/// The schema, one statement list per version; applied in order, each exactly once.
const MIGRATIONS: &[&str] = &[
    // 1: request records (never a body, never a secret) and spend per period and scope.
    "CREATE TABLE fluxgate_requests (
        replica text NOT NULL,
        seq bigint NOT NULL,
        ts_ms bigint NOT NULL,
        request_id text NOT NULL,
        client text,
        endpoint text NOT NULL,
        model text,
        route text,
        provider text,
        key_id text,
        attempts integer NOT NULL,
        status integer NOT NULL,
        error_class text,
        error_code text,
        latency_ms bigint NOT NULL,
        ttfb_ms bigint,
        tokens_in bigint,
        tokens_out bigint,
        stream boolean NOT NULL,
        upstream_model text,
        tokens_cached bigint,
        cost_usd double precision,
        PRIMARY KEY (replica, seq)
    );
    CREATE INDEX fluxgate_requests_ts ON fluxgate_requests (ts_ms);
    CREATE TABLE fluxgate_spend (
        period text NOT NULL,
        scope text NOT NULL,
        usd double precision NOT NULL,
        tokens bigint NOT NULL,
        PRIMARY KEY (period, scope)
    );",
    // 2: client tokens (salted hashes, never a token) and a version every write bumps.
    "CREATE TABLE fluxgate_tokens (
        name text PRIMARY KEY,
        token_id text NOT NULL UNIQUE,
        salt bytea NOT NULL,
        hash bytea NOT NULL,
        created_ms bigint NOT NULL
    );
    CREATE TABLE fluxgate_tokens_version (id integer PRIMARY KEY, version bigint NOT NULL);
    INSERT INTO fluxgate_tokens_version (id, version) VALUES (1, 0);",
    // 3: emulated Responses conversations (`previous_response_id`), kept 30 days.
    "CREATE TABLE fluxgate_responses (
        id text PRIMARY KEY,
        created_ms bigint NOT NULL,
        items text NOT NULL
    );
    CREATE INDEX fluxgate_responses_created ON fluxgate_responses (created_ms);",
    // 4: budget holds of requests in flight on any replica (released with their record's
    // spend, or when they expire after a replica died).
    "CREATE TABLE fluxgate_budget_holds (
        hold text NOT NULL,
        period text NOT NULL,
        scope text NOT NULL,
        usd double precision NOT NULL,
        tokens bigint NOT NULL,
        expires_ms bigint NOT NULL
    );
    CREATE INDEX fluxgate_budget_holds_scope ON fluxgate_budget_holds (period, scope);
    CREATE INDEX fluxgate_budget_holds_hold ON fluxgate_budget_holds (hold);",
    // 5: console login codes and sessions (SHA-256 digests only) and their version.
    "CREATE TABLE fluxgate_console_codes (digest bytea PRIMARY KEY, created_ms bigint NOT NULL);
    CREATE TABLE fluxgate_console_sessions (
        id bytea PRIMARY KEY,
        secret bytea NOT NULL,
        started_ms bigint NOT NULL
    );
    CREATE TABLE fluxgate_sessions_version (id integer PRIMARY KEY, version bigint NOT NULL);
    INSERT INTO fluxgate_sessions_version (id, version) VALUES (1, 0);",
    // 6: a client token's expiry and allow-lists (JSON; NULL: none).
    "ALTER TABLE fluxgate_tokens ADD COLUMN limits text;",
    // 7: each request's attempts (JSON) and a fleet-wide cursor for the request inspector
    // (numbered in the order rows are written); the estimate budgets counted for an answer
    // whose upstream reported no usage.
    "ALTER TABLE fluxgate_requests ADD COLUMN attempt_log text;
    ALTER TABLE fluxgate_requests ADD COLUMN est_tokens bigint;
    ALTER TABLE fluxgate_requests ADD COLUMN est_cost_usd double precision;
    ALTER TABLE fluxgate_requests ADD COLUMN n bigserial;
    CREATE INDEX fluxgate_requests_n ON fluxgate_requests (n);",
];

/// The schema version this build writes (its number of migrations).
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

impl FleetLedger {
    /// Applies the versions this database lacks, in one transaction under the advisory lock
    /// (a second replica starting at the same moment waits, then finds nothing to do).
    pub(super) async fn migrate(&self, client: &Client) -> Result<(), LedgerError> {
        let fail = |e: tokio_postgres::Error| LedgerError::Migrate {
            url: self.url.to_string(),
            reason: self.scrub(&e),
        };
        let known = SCHEMA_VERSION;
        let mut too_new = None;
        in_transaction(client, async {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS fluxgate_schema (version bigint NOT NULL)",
                )
                .await?;
            let found: i64 = client
                .query_one("SELECT COALESCE(MAX(version), 0) FROM fluxgate_schema", &[])
                .await?
                .get(0);
            if found > known {
                too_new = Some(found);
                return Ok(());
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
                client.batch_execute(sql).await?;
                client
                    .execute(
                        "INSERT INTO fluxgate_schema (version) VALUES ($1)",
                        &[&(i as i64 + 1)],
                    )
                    .await?;
                tracing::info!(version = i + 1, "applied a PostgreSQL schema version");
            }
            Ok(())
        })
        .await
        .map_err(fail)?;
        match too_new {
            Some(found) => Err(LedgerError::TooNew {
                url: self.url.to_string(),
                found,
                known,
            }),
            None => Ok(()),
        }
    }
}
