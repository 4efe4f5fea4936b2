//! A thread that talks to PostgreSQL for the synchronous state traits (`TokenRows`,
//! `Conversations`): it owns one connection and a small runtime of its own, runs the jobs it
//! is sent one at a time, and runs an idle job between them (a poll). Callers block on a
//! channel for at most the time they name, never on a runtime, so the traits can be used from
//! an async handler, the tray or the CLI alike.

use std::sync::mpsc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio_postgres::Client;

use super::ledger::FleetLedger;

/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The connection side: used only on its thread (or before the thread starts).
pub(super) struct PgWorker {
    ledger: Arc<FleetLedger>,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    /// Whether the last attempt failed (so the loss and the return are logged once each).
    down: bool,
    /// What this worker serves, for its log lines ("client tokens").
    what: &'static str,
}

type Job = Box<dyn FnOnce(&mut PgWorker) + Send>;

/// A running worker thread; dropping it ends the thread after its current job.
pub(super) struct PgThread {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl PgWorker {
    pub(super) fn new(ledger: &Arc<FleetLedger>, what: &'static str) -> Result<PgWorker, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PgWorker {
            ledger: ledger.clone(),
            rt,
            client: None,
            down: false,
            what,
        })
    }

    /// Runs one query (making a connection when there is none), bounded by `timeout`. A
    /// failure drops the connection (the next query makes a new one) and is logged once
    /// until a query succeeds again. Errors are scrubbed of the password.
    pub(super) fn query<T>(
        &mut self,
        timeout: Duration,
        f: impl for<'c> FnOnce(&'c Client) -> BoxFuture<'c, Result<T, tokio_postgres::Error>>,
    ) -> Result<T, String> {
        let result = self.connect().and_then(|()| {
            let Some(client) = self.client.as_ref() else {
                return Err("no connection".to_string());
            };
            let work = f(client);
            match self
                .rt
                .block_on(async { tokio::time::timeout(timeout, work).await })
            {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err(self.ledger.scrub(&e)),
                Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
            }
        });
        match &result {
            Ok(_) if self.down => {
                self.down = false;
                tracing::info!(
                    engine = "postgres",
                    "{}: PostgreSQL reachable again",
                    self.what
                );
            }
            Ok(_) => {}
            Err(reason) => {
                self.client = None;
                if !self.down {
                    self.down = true;
                    tracing::warn!(engine = "postgres", error = %reason, "{}: PostgreSQL unreachable", self.what);
                }
            }
        }
        result
    }

    fn connect(&mut self) -> Result<(), String> {
        if self.client.as_ref().is_some_and(|c| !c.is_closed()) {
            return Ok(());
        }
        self.client = None;
        let ledger = self.ledger.clone();
        let client = self.rt.block_on(async move {
            tokio::time::timeout(CONNECT_TIMEOUT, ledger.open())
                .await
                .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
                .map_err(|e| ledger.scrub(&e))
        })?;
        self.client = Some(client);
        Ok(())
    }

    /// Starts the thread: it runs the jobs it is sent, and `idle` every `every` without one.
    pub(super) fn spawn(
        mut self,
        name: &str,
        every: Duration,
        mut idle: impl FnMut(&mut PgWorker) + Send + 'static,
    ) -> Result<PgThread, String> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                match rx.recv_timeout(every) {
                    Ok(job) => job(&mut self),
                    Err(mpsc::RecvTimeoutError::Timeout) => idle(&mut self),
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(PgThread {
            jobs: Mutex::new(tx),
        })
    }
}

impl PgThread {
    /// Runs `job` on the thread and waits at most `wait` for its answer.
    pub(super) fn call<T: Send + 'static>(
        &self,
        wait: Duration,
        job: impl FnOnce(&mut PgWorker) -> Result<T, String> + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .lock()
            .send(Box::new(move |w: &mut PgWorker| {
                let _ = tx.send(job(w));
            }))
            .map_err(|_| "the PostgreSQL worker stopped".to_string())?;
        rx.recv_timeout(wait)
            .map_err(|_| format!("no answer within {} ms", wait.as_millis()))?
    }
}

/// The version of a mirrored table (`fluxgate_tokens_version`, `fluxgate_sessions_version`:
/// one row, bumped by every write in the write's transaction).
pub(super) async fn read_version(c: &Client, table: &str) -> Result<i64, tokio_postgres::Error> {
    Ok(
        c.query_one(&format!("SELECT version FROM {table} WHERE id = 1"), &[])
            .await?
            .get(0),
    )
}

/// Moves a mirrored table's version (inside the write's transaction).
pub(super) async fn bump_version(c: &Client, table: &str) -> Result<(), tokio_postgres::Error> {
    c.execute(
        &format!("UPDATE {table} SET version = version + 1 WHERE id = 1"),
        &[],
    )
    .await
    .map(|_| ())
}
