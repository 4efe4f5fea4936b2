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
//! The work runs on a thread of its own with its own small runtime, so the synchronous trait
//! can be called from anywhere (an async handler, the tray, the CLI) without blocking a
//! runtime that drives requests. When PostgreSQL does not answer, checks use the last mirror
//! (a revocation made elsewhere meanwhile applies when it returns) and creating or revoking
//! fails with an error that says so.
//!
//! When a replica joins, the tokens its own SQLite holds are copied in (a name already taken
//! in the fleet gets `-2`, `-3`, …), so the tools it set up keep working.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use tokio_postgres::Client;

use super::ledger::{in_transaction, FleetLedger, LedgerError};
use crate::store::{StoreError, TokenRow, TokenRows};

/// How often each replica asks whether the table changed.
pub const POLL: Duration = Duration::from_millis(250);
/// How long creating or revoking waits for PostgreSQL.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

enum Op {
    Insert(TokenRow, mpsc::Sender<Result<bool, String>>),
    Revoke(String, mpsc::Sender<Result<bool, String>>),
}

#[derive(Default)]
struct Mirror {
    by_id: HashMap<String, TokenRow>,
    /// Oldest first.
    list: Vec<TokenRow>,
}

/// The fleet's client tokens: a local mirror for checks, PostgreSQL for writes.
pub struct SharedTokens {
    mirror: Arc<RwLock<Mirror>>,
    generation: Arc<AtomicU64>,
    ops: Mutex<mpsc::Sender<Op>>,
    url: Arc<str>,
}

/// The thread's side: its connection and what it knows.
struct Worker {
    ledger: Arc<FleetLedger>,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    version: Option<i64>,
    mirror: Arc<RwLock<Mirror>>,
    generation: Arc<AtomicU64>,
    /// Whether the last attempt failed (so the loss and the return are logged once each).
    down: bool,
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
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        let mirror = Arc::new(RwLock::new(Mirror::default()));
        let generation = Arc::new(AtomicU64::new(0));
        let mut worker = Worker {
            ledger: ledger.clone(),
            rt,
            client: None,
            version: None,
            mirror: mirror.clone(),
            generation: generation.clone(),
            down: false,
        };
        worker.refresh().map_err(unreachable)?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("fluxgate-tokens".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| unreachable(e.to_string()))?;
        let shared = Arc::new(SharedTokens {
            mirror,
            generation,
            ops: Mutex::new(tx),
            url,
        });
        shared.adopt(local).map_err(|e| LedgerError::Query {
            url: shared.url.to_string(),
            reason: e.to_string(),
        })?;
        Ok(shared)
    }

    /// Copies this machine's tokens into the fleet's table (renaming on a taken name).
    fn adopt(&self, local: &dyn TokenRows) -> Result<(), StoreError> {
        for row in local.tokens()? {
            if self.mirror.read().by_id.contains_key(&row.token_id) {
                continue;
            }
            let mut n = 1;
            loop {
                let name = if n == 1 {
                    row.name.clone()
                } else {
                    format!("{}-{n}", row.name)
                };
                let renamed = TokenRow {
                    name: name.clone(),
                    ..row.clone()
                };
                if self.insert_token(&renamed)? {
                    if n > 1 {
                        tracing::info!(local = %row.name, fleet = %name, "a client token of this machine joined the fleet under another name (the first was taken)");
                    }
                    break;
                }
                if self.mirror.read().by_id.contains_key(&row.token_id) {
                    break;
                }
                n += 1;
            }
        }
        Ok(())
    }

    fn call(
        &self,
        op: impl FnOnce(mpsc::Sender<Result<bool, String>>) -> Op,
    ) -> Result<bool, StoreError> {
        let (tx, rx) = mpsc::channel();
        let fail =
            |reason: String| StoreError::Shared(format!("PostgreSQL at {}: {reason}", self.url));
        self.ops
            .lock()
            .send(op(tx))
            .map_err(|_| fail("the token worker stopped".into()))?;
        match rx.recv_timeout(WRITE_TIMEOUT + Duration::from_secs(1)) {
            Ok(r) => r.map_err(fail),
            Err(_) => Err(fail("no answer in time".into())),
        }
    }
}

impl TokenRows for SharedTokens {
    fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError> {
        let row = row.clone();
        self.call(|tx| Op::Insert(row, tx))
    }

    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        Ok(self.mirror.read().list.clone())
    }

    fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError> {
        Ok(self.mirror.read().by_id.get(token_id).cloned())
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_string();
        self.call(|tx| Op::Revoke(name, tx))
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

impl Worker {
    fn run(mut self, ops: mpsc::Receiver<Op>) {
        loop {
            match ops.recv_timeout(POLL) {
                Ok(Op::Insert(row, reply)) => {
                    let r = self.write(|c| Box::pin(insert(c, row)));
                    let _ = reply.send(r);
                }
                Ok(Op::Revoke(name, reply)) => {
                    let r = self.write(|c| Box::pin(revoke(c, name)));
                    let _ = reply.send(r);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.refresh();
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Runs one write, then refreshes the mirror so this replica sees it at once.
    fn write(
        &mut self,
        f: impl for<'c> FnOnce(
            &'c Client,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<bool, tokio_postgres::Error>> + 'c>,
        >,
    ) -> Result<bool, String> {
        let result = match self.connection() {
            Ok(()) => {
                let Some(client) = self.client.as_ref() else {
                    return Err("no connection".into());
                };
                let write = f(client);
                match self
                    .rt
                    .block_on(async { tokio::time::timeout(WRITE_TIMEOUT, write).await })
                {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(self.ledger.scrub(&e)),
                    Err(_) => Err(format!("no answer within {} s", WRITE_TIMEOUT.as_secs())),
                }
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                let _ = self.refresh();
                Ok(v)
            }
            Err(e) => {
                self.lost(&e);
                Err(e)
            }
        }
    }

    fn connection(&mut self) -> Result<(), String> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let ledger = self.ledger.clone();
        let client = self.rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(3), ledger.open())
                .await
                .map_err(|_| "no answer within 3 s".to_string())?
                .map_err(|e| ledger.scrub(&e))
        })?;
        self.client = Some(client);
        Ok(())
    }

    fn lost(&mut self, reason: &str) {
        self.client = None;
        if !self.down {
            self.down = true;
            tracing::warn!(engine = "postgres", error = %reason, "client tokens: PostgreSQL unreachable; checks use the tokens known until now, and creating or revoking fails until it answers");
        }
    }

    /// Reads the table's version and, when it moved, the table.
    fn refresh(&mut self) -> Result<(), String> {
        let result = self.connection().and_then(|()| {
            let Some(client) = self.client.as_ref() else {
                return Err("no connection".to_string());
            };
            let known = self.version;
            self.rt
                .block_on(async {
                    tokio::time::timeout(WRITE_TIMEOUT, read_if_changed(client, known)).await
                })
                .map_err(|_| format!("no answer within {} s", WRITE_TIMEOUT.as_secs()))?
                .map_err(|e| self.ledger.scrub(&e))
        });
        match result {
            Ok(changed) => {
                if self.down {
                    self.down = false;
                    tracing::info!(
                        engine = "postgres",
                        "client tokens: PostgreSQL reachable again"
                    );
                }
                if let Some((version, rows)) = changed {
                    self.apply(version, rows);
                }
                Ok(())
            }
            Err(e) => {
                self.lost(&e);
                Err(e)
            }
        }
    }

    fn apply(&mut self, version: i64, rows: Vec<TokenRow>) {
        let mut m = self.mirror.write();
        let removed = m
            .by_id
            .keys()
            .any(|id| !rows.iter().any(|r| &r.token_id == id));
        m.by_id = rows
            .iter()
            .map(|r| (r.token_id.clone(), r.clone()))
            .collect();
        m.list = rows;
        drop(m);
        self.version = Some(version);
        if removed {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// The table's version, and its rows when the version is not `known`.
async fn read_if_changed(
    c: &Client,
    known: Option<i64>,
) -> Result<Option<(i64, Vec<TokenRow>)>, tokio_postgres::Error> {
    let version: i64 = c
        .query_one(
            "SELECT version FROM fluxgate_tokens_version WHERE id = 1",
            &[],
        )
        .await?
        .get(0);
    if known == Some(version) {
        return Ok(None);
    }
    let rows = c
        .query(
            "SELECT name, token_id, salt, hash, created_ms FROM fluxgate_tokens ORDER BY created_ms, name",
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
        })
        .collect();
    Ok(Some((version, rows)))
}

async fn insert(c: &Client, row: TokenRow) -> Result<bool, tokio_postgres::Error> {
    in_transaction(c, async {
        let n = c
            .execute(
                "INSERT INTO fluxgate_tokens (name, token_id, salt, hash, created_ms) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[&row.name, &row.token_id, &row.salt, &row.hash, &row.created_ms],
            )
            .await?;
        if n == 1 {
            bump(c).await?;
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
            bump(c).await?;
        }
        Ok(n == 1)
    })
    .await
}

async fn bump(c: &Client) -> Result<(), tokio_postgres::Error> {
    c.execute(
        "UPDATE fluxgate_tokens_version SET version = version + 1 WHERE id = 1",
        &[],
    )
    .await
    .map(|_| ())
}
