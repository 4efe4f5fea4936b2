//! Emulated Responses conversations of the whole fleet, in PostgreSQL (`[store] postgres`), so
//! a Codex conversation continues when its next turn lands on another replica.
//!
//! A save returns once PostgreSQL has committed it (the client may send the next turn to any
//! replica the moment it has the response's id), and each save is also kept in the replica's
//! own SQLite. When PostgreSQL does not answer, a save goes to SQLite only (this replica can
//! still continue the conversation), and a load that PostgreSQL cannot answer is looked up
//! there; after a failure PostgreSQL is not asked again for [`BREAKER`], so a request waits
//! for it at most once per outage ([`WAIT`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use parking_lot::Mutex;
use serde_json::Value;

use super::ledger::{FleetLedger, LedgerError};
use super::pg_thread::{PgThread, PgWorker};
use crate::store::{Conversations, StoreError, RESPONSE_RETENTION_MS};

/// How long a request waits for PostgreSQL to save or load a conversation.
pub const WAIT: Duration = Duration::from_millis(750);
/// How long PostgreSQL is left alone after it failed to answer.
pub const BREAKER: Duration = Duration::from_secs(2);

/// The fleet's conversations, with this machine's SQLite as the fallback.
pub struct SharedConversations {
    thread: PgThread,
    local: Arc<dyn Conversations>,
    /// Until when PostgreSQL is not asked (after a failure).
    open_until: Mutex<Option<Instant>>,
    url: Arc<str>,
}

impl SharedConversations {
    pub fn open(
        ledger: &Arc<FleetLedger>,
        local: Arc<dyn Conversations>,
    ) -> Result<Arc<SharedConversations>, LedgerError> {
        let unreachable = |reason: String| LedgerError::Unreachable {
            url: ledger.url().to_string(),
            reason,
        };
        let thread = PgWorker::new(ledger, "conversations")
            .map_err(unreachable)?
            .spawn("fluxgate-conversations", Duration::from_secs(3600), |_| {})
            .map_err(unreachable)?;
        Ok(Arc::new(SharedConversations {
            thread,
            local,
            open_until: Mutex::new(None),
            url: ledger.url().into(),
        }))
    }

    /// Runs a query unless the breaker is open; a failure opens it.
    fn ask<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut PgWorker) -> Result<T, String> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.open_until.lock().is_some_and(|t| Instant::now() < t) {
            return Err(StoreError::Shared(format!(
                "PostgreSQL at {} did not answer a moment ago",
                self.url
            )));
        }
        match self.thread.call(WAIT + Duration::from_millis(50), job) {
            Ok(v) => Ok(v),
            Err(reason) => {
                *self.open_until.lock() = Some(Instant::now() + BREAKER);
                Err(StoreError::Shared(format!(
                    "PostgreSQL at {}: {reason}",
                    self.url
                )))
            }
        }
    }
}

impl Conversations for SharedConversations {
    fn save_response(&self, id: &str, items: &Value, now_ms: i64) -> Result<(), StoreError> {
        let local = self.local.save_response(id, items, now_ms);
        let (id, text) = (id.to_string(), items.to_string());
        let shared = self.ask(move |w| {
            w.query(WAIT, move |c| {
                async move {
                    c.execute(
                        "INSERT INTO fluxgate_responses (id, created_ms, items) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET created_ms = excluded.created_ms, items = excluded.items",
                        &[&id, &now_ms, &text],
                    )
                    .await?;
                    c.execute(
                        "DELETE FROM fluxgate_responses WHERE created_ms < $1",
                        &[&(now_ms - RESPONSE_RETENTION_MS)],
                    )
                    .await
                    .map(|_| ())
                }
                .boxed()
            })
        });
        match (shared, local) {
            (Ok(()), _) => Ok(()),
            (Err(e), Ok(())) => {
                tracing::warn!(error = %e, "an emulated response was kept on this machine only; another replica cannot continue it");
                Ok(())
            }
            (Err(e), Err(_)) => Err(e),
        }
    }

    fn load_response(&self, id: &str, now_ms: i64) -> Result<Option<Value>, StoreError> {
        let key = id.to_string();
        let shared = self.ask(move |w| {
            w.query(WAIT, move |c| {
                async move {
                    c.query_opt(
                        "SELECT items FROM fluxgate_responses WHERE id = $1 AND created_ms >= $2",
                        &[&key, &(now_ms - RESPONSE_RETENTION_MS)],
                    )
                    .await
                    .map(|row| row.map(|r| r.get::<_, String>(0)))
                }
                .boxed()
            })
        });
        match shared {
            Ok(Some(text)) => Ok(serde_json::from_str(&text).ok()),
            // Saved here while PostgreSQL was away, or PostgreSQL is away now.
            Ok(None) | Err(_) => self.local.load_response(id, now_ms),
        }
    }
}
