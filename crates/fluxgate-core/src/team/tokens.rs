//! Client tokens of the whole fleet, in PostgreSQL (`[store] postgres`): the team's "virtual
//! keys". Like SQLite, the table holds each token's salted hash and name, never a token.
//!
//! Checking a token never waits on the network: each replica keeps a mirror of the table,
//! refreshed when the table's version (bumped by every write, in the same transaction)
//! changes; the version is read every [`POLL`]. A revocation on one replica is therefore seen
//! by every other within about [`POLL`] plus a query, and it also bumps
//! [`TokenRows::generation`], which ends [`crate::tokens::ClientTokens`]'s cached checks at
//! once. Creating and revoking go to PostgreSQL and return when committed (the name is unique
//! there, so two replicas cannot make one name twice).
//!
//! The work runs on a thread of its own (`pg_thread.rs`), so the synchronous trait can be
//! called from anywhere (an async handler, the tray, the CLI). When PostgreSQL does not answer, checks use the last mirror
//! (a revocation made elsewhere meanwhile applies when it returns) and creating or revoking
//! fails with an error that says so.
//!
//! When a replica joins, the tokens its own SQLite holds are copied in (a name already taken
//! in the fleet gets `-2`, `-3`, …), so the tools it set up keep working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use parking_lot::{Mutex, RwLock};
use tokio_postgres::Client;

use super::ledger::{in_transaction, FleetLedger, LedgerError};
use super::pg_thread::{bump_version, read_version, PgThread, PgWorker};
use crate::store::{limits_from, limits_text, StoreError, TokenRow, TokenRows};

/// The tokens table's version row.
const VERSION_TABLE: &str = "fluxgate_tokens_version";

/// How often each replica asks whether the table changed.
pub const POLL: Duration = Duration::from_millis(250);
/// How long creating or revoking waits for PostgreSQL.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Mirror {
    by_id: HashMap<String, TokenRow>,
    /// Oldest first.
    list: Vec<TokenRow>,
    /// The table's version the mirror was read at.
    version: Option<i64>,
}

/// What the worker thread and the checks share.
#[derive(Default)]
struct Known {
    mirror: RwLock<Mirror>,
    generation: AtomicU64,
}

/// The fleet's client tokens: a local mirror for checks, PostgreSQL for writes.
pub struct SharedTokens {
    known: Arc<Known>,
    thread: PgThread,
    url: Arc<str>,
    /// One write at a time from this replica (the thread runs one anyway).
    writing: Mutex<()>,
}

impl SharedTokens {
    /// Starts the worker thread, reads the fleet's tokens and copies `local`'s in.
    pub fn open(
        ledger: &Arc<FleetLedger>,
        local: &dyn TokenRows,
    ) -> Result<Arc<SharedTokens>, LedgerError> {
        let url: Arc<str> = ledger.url().into();
        let unreachable = |reason: String| LedgerError::Unreachable {
            url: url.to_string(),
            reason,
        };
        let known = Arc::new(Known::default());
        let mut worker = PgWorker::new(ledger, "client tokens").map_err(unreachable)?;
        refresh(&mut worker, &known).map_err(unreachable)?;
        let polled = known.clone();
        let thread = worker
            .spawn("fluxgate-tokens", POLL, move |w| {
                let _ = refresh(w, &polled);
            })
            .map_err(unreachable)?;
        let shared = Arc::new(SharedTokens {
            known,
            thread,
            url,
            writing: Mutex::new(()),
        });
        shared.adopt(local).map_err(|e| LedgerError::Query {
            url: shared.url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(shared)
    }

    /// Copies this machine's tokens into the fleet's table (renaming on a taken name).
    fn adopt(&self, local: &dyn TokenRows) -> Result<(), StoreError> {
        let known = |id: &str| self.known.mirror.read().by_id.contains_key(id);
        for row in local.tokens()? {
            let mut n = 1;
            while !known(&row.token_id) {
                if n > 100 {
                    return Err(StoreError::Shared(format!(
                        "cannot add this machine's client token `{}` to the fleet's",
                        row.name
                    )));
                }
                let name = if n == 1 {
                    row.name.clone()
                } else {
                    format!("{}-{n}", row.name)
                };
                let renamed = TokenRow {
                    name: name.clone(),
                    ..row.clone()
                };
                if self.insert_token(&renamed)? && n > 1 {
                    tracing::info!(local = %row.name, fleet = %name, "a client token of this machine joined the fleet under another name (the first was taken)");
                }
                n += 1;
            }
        }
        Ok(())
    }

    /// Runs a write, then reads the table back so this replica sees it at once.
    fn write(
        &self,
        f: impl for<'c> FnOnce(
                &'c Client,
            ) -> futures_util::future::BoxFuture<
                'c,
                Result<bool, tokio_postgres::Error>,
            > + Send
            + 'static,
    ) -> Result<bool, StoreError> {
        let _one = self.writing.lock();
        let known = self.known.clone();
        self.thread
            .call(WRITE_TIMEOUT + Duration::from_secs(1), move |w| {
                let done = w.query(WRITE_TIMEOUT, f)?;
                let _ = refresh(w, &known);
                Ok(done)
            })
            .map_err(|reason| StoreError::Shared(format!("PostgreSQL at {}: {reason}", self.url)))
    }
}

impl TokenRows for SharedTokens {
    fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.write(move |c| insert(c, row).boxed())
    }

    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        Ok(self.known.mirror.read().list.clone())
    }

    fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(self.known.mirror.read().by_id.get(token_id).cloned())
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.write(move |c| revoke(c, name).boxed())
    }

    fn generation(&self) -> u64 {
        self.known.generation.load(Ordering::Acquire)
    }
}

/// Reads the table's version and, when it moved, the table; a token gone from it moves the
/// generation (cached checks end).
fn refresh(w: &mut PgWorker, known: &Known) -> Result<(), String> {
    let version = known.mirror.read().version;
    let Some((version, rows)) =
        w.query(WRITE_TIMEOUT, move |c| read_if_changed(c, version).boxed())?
    else {
        return Ok(());
    };
    let mut m = known.mirror.write();
    let removed = m
        .by_id
        .keys()
        .any(|id| !rows.iter().any(|r| &r.token_id == id));
    m.by_id = rows
        .iter()
        .map(|r| (r.token_id.clone(), r.clone()))
        .collect();
    m.list = rows;
    m.version = Some(version);
    drop(m);
    if removed {
        known.generation.fetch_add(1, Ordering::AcqRel);
    }
    Ok(())
}

/// The table's version, and its rows when the version is not `known`.
async fn read_if_changed(
    c: &Client,
    known: Option<i64>,
) -> Result<Option<(i64, Vec<TokenRow>)>, tokio_postgres::Error> {
    let version = read_version(c, VERSION_TABLE).await?;
    if known == Some(version) {
        return Ok(None);
    }
    let rows = c
        .query(
            "SELECT name, token_id, salt, hash, created_ms, limits FROM fluxgate_tokens ORDER BY created_ms, name",
            &[],
        )
        .await?
        .iter()
        .map(|r| TokenRow {
            name: r.get(0),
            token_id: r.get(1),
            salt: r.get(2),
            hash: r.get(3),
            created_ms: r.get(4),
            limits: limits_from(r.get(5)),
        })
        .collect();
    Ok(Some((version, rows)))
}

async fn insert(c: &Client, row: TokenRow) -> Result<bool, tokio_postgres::Error> {
    in_transaction(c, async {
        let n = c
            .execute(
                "INSERT INTO fluxgate_tokens (name, token_id, salt, hash, created_ms, limits) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[&row.name, &row.token_id, &row.salt, &row.hash, &row.created_ms, &limits_text(&row.limits)],
            )
            .await?;
        if n == 1 {
            bump_version(c, VERSION_TABLE).await?;
        }
        Ok(n == 1)
    })
    .await
}

async fn revoke(c: &Client, name: String) -> Result<bool, tokio_postgres::Error> {
    in_transaction(c, async {
        let n = c
            .execute("DELETE FROM fluxgate_tokens WHERE name = $1", &[&name])
            .await?;
        if n == 1 {
            bump_version(c, VERSION_TABLE).await?;
        }
        Ok(n == 1)
    })
    .await
}
