//! Console sessions of the whole fleet, in PostgreSQL (`[store] postgres`): a console opened on
//! one replica stays signed in when a load balancer sends it to another, and signing out ends
//! the session on every replica within a second.
//!
//! Only SHA-256 digests of codes, session ids and secrets are stored. Redeeming a code deletes
//! it in the transaction that creates the session, so a code works once across the fleet.
//! Checking a session (every console request) reads a mirror of the sessions table, refreshed
//! when its version moves (read every [`POLL`]); a replica's own sign-in and sign-out are
//! mirrored at once. When PostgreSQL does not answer, sign-in fails and checks use the last
//! mirror.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::RwLock;
use tokio_postgres::Client;

use super::ledger::{in_transaction, FleetLedger, LedgerError};
use super::pg_thread::{bump_version, read_version, PgThread, PgWorker};
use crate::sessions::{digest32, NewSession, SessionStore, LOGIN_CODE_TTL, SESSION_TTL};
use crate::tokens::{constant_time_eq, random_hex};

/// How often each replica asks whether the sessions changed.
pub const POLL: Duration = Duration::from_millis(250);
const WAIT: Duration = Duration::from_secs(3);
const VERSION_TABLE: &str = "fluxgate_sessions_version";

/// A session as mirrored: digests of its id and secret, and when it started.
#[derive(Clone)]
struct Row {
    id: Vec<u8>,
    secret: Vec<u8>,
    started_ms: i64,
}

#[derive(Default)]
struct Mirror {
    version: Option<i64>,
    rows: Vec<Row>,
}

/// The fleet's console sessions.
pub struct SharedSessions {
    mirror: Arc<RwLock<Mirror>>,
    thread: PgThread,
}

impl SharedSessions {
    pub fn open(ledger: &Arc<FleetLedger>) -> Result<Arc<SharedSessions>, LedgerError> {
        let unreachable = |reason: String| LedgerError::Unreachable {
            url: ledger.url().to_string(),
            reason,
        };
        let mirror = Arc::new(RwLock::new(Mirror::default()));
        let mut worker = PgWorker::new(ledger, "console sessions").map_err(unreachable)?;
        refresh(&mut worker, &mirror).map_err(unreachable)?;
        let polled = mirror.clone();
        let thread = worker
            .spawn("fluxgate-sessions", POLL, move |w| {
                let _ = refresh(w, &polled);
            })
            .map_err(unreachable)?;
        Ok(Arc::new(SharedSessions { mirror, thread }))
    }

    /// Runs a write on the worker, then refreshes the mirror.
    fn write<T: Send + 'static>(
        &self,
        what: &str,
        f: impl for<'c> FnOnce(
                &'c Client,
            )
                -> futures_util::future::BoxFuture<'c, Result<T, tokio_postgres::Error>>
            + Send
            + 'static,
    ) -> Option<T> {
        let mirror = self.mirror.clone();
        let result = self.thread.call(WAIT + Duration::from_secs(1), move |w| {
            let v = w.query(WAIT, f)?;
            let _ = refresh(w, &mirror);
            Ok(v)
        });
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "console sessions: cannot {what}");
                None
            }
        }
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

impl SessionStore for SharedSessions {
    fn new_code(&self) -> String {
        let code = random_hex(24);
        let digest = digest32(&code).to_vec();
        let now = now_ms();
        let oldest = now - LOGIN_CODE_TTL.as_millis() as i64;
        self.write("keep a login code", move |c| {
            async move {
                c.execute(
                    "DELETE FROM fluxgate_console_codes WHERE created_ms < $1",
                    &[&oldest],
                )
                .await?;
                c.execute(
                    "INSERT INTO fluxgate_console_codes (digest, created_ms) VALUES ($1, $2)",
                    &[&digest, &now],
                )
                .await
                .map(|_| ())
            }
            .boxed()
        });
        code
    }

    fn redeem(&self, code: &str) -> Option<NewSession> {
        let digest = digest32(code).to_vec();
        let new = NewSession {
            id: random_hex(32),
            secret: random_hex(32),
        };
        let (id, secret) = (digest32(&new.id).to_vec(), digest32(&new.secret).to_vec());
        let now = now_ms();
        let oldest_code = now - LOGIN_CODE_TTL.as_millis() as i64;
        let oldest_session = now - SESSION_TTL.as_millis() as i64;
        let redeemed = self.write("open a session", move |c| {
            in_transaction(c, async move {
                let used = c
                    .execute(
                        "DELETE FROM fluxgate_console_codes WHERE digest = $1 AND created_ms >= $2",
                        &[&digest, &oldest_code],
                    )
                    .await?;
                if used != 1 {
                    return Ok(false);
                }
                c.execute(
                    "DELETE FROM fluxgate_console_sessions WHERE started_ms < $1",
                    &[&oldest_session],
                )
                .await?;
                c.execute(
                    "INSERT INTO fluxgate_console_sessions (id, secret, started_ms) VALUES ($1, $2, $3)",
                    &[&id, &secret, &now],
                )
                .await?;
                bump_version(c, VERSION_TABLE).await?;
                Ok(true)
            })
            .boxed()
        });
        redeemed.unwrap_or(false).then_some(new)
    }

    fn valid(&self, id: &str, secret: &str) -> bool {
        let (id, secret) = (digest32(id), digest32(secret));
        let oldest = now_ms() - SESSION_TTL.as_millis() as i64;
        self.mirror.read().rows.iter().any(|r| {
            constant_time_eq(&r.id, &id)
                & constant_time_eq(&r.secret, &secret)
                & (r.started_ms >= oldest)
        })
    }

    fn end(&self, id: &str) {
        let id = digest32(id).to_vec();
        self.write("end a session", move |c| {
            in_transaction(c, async move {
                let n = c
                    .execute(
                        "DELETE FROM fluxgate_console_sessions WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                if n > 0 {
                    bump_version(c, VERSION_TABLE).await?;
                }
                Ok(())
            })
            .boxed()
        });
    }
}

/// Reads the sessions when their version moved.
fn refresh(w: &mut PgWorker, mirror: &RwLock<Mirror>) -> Result<(), String> {
    let known = mirror.read().version;
    let changed = w.query(WAIT, move |c| {
        async move {
            let version = read_version(c, VERSION_TABLE).await?;
            if known == Some(version) {
                return Ok(None);
            }
            let rows = c
                .query(
                    "SELECT id, secret, started_ms FROM fluxgate_console_sessions",
                    &[],
                )
                .await?
                .iter()
                .map(|r| Row {
                    id: r.get(0),
                    secret: r.get(1),
                    started_ms: r.get(2),
                })
                .collect();
            Ok(Some((version, rows)))
        }
        .boxed()
    })?;
    if let Some((version, rows)) = changed {
        *mirror.write() = Mirror {
            version: Some(version),
            rows,
        };
    }
    Ok(())
}
