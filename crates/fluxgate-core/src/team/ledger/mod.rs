//! The fleet's durable ledger on PostgreSQL (`[store] postgres`): every replica's request
//! records and the spend they add up to, so usage on any replica shows the whole fleet.
//!
//! Records reach PostgreSQL the way they reach SQLite: never on the request's path. Each
//! replica queues its finished requests in memory (at most [`QUEUE_BOUND`]) and one task
//! writes them in batches, each batch and its spend in one transaction. A record carries
//! `(replica, seq)` as its key, so a batch written again after a lost acknowledgement is not
//! counted twice. While PostgreSQL is away the queue holds what comes in (the first record
//! that does not fit is logged, every one is counted in `/metrics`), the replica keeps serving
//! and keeps its own SQLite log, and the queue drains when PostgreSQL answers again.
//!
//! The schema is applied at start inside a transaction holding an advisory lock, so replicas
//! starting together do not race; a database written by a newer Fluxgate is refused.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio_postgres::types::ToSql;
use tokio_postgres::Client;

use super::engine::EngineStatus;
use crate::config::PostgresTarget;
use crate::record::RequestRecord;
use crate::secrets::{SecretError, Secrets};
use crate::store::spend_sums;

mod reads;
mod schema;

pub use schema::SCHEMA_VERSION;

/// How many records wait for PostgreSQL at most (about 30 MB); later ones are counted and
/// dropped from the fleet's log (this replica's SQLite log still has them).
pub const QUEUE_BOUND: usize = 100_000;
/// Records per transaction.
const BATCH: usize = 1_000;
/// How long start-up waits for PostgreSQL.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one write or read may take before the connection is treated as lost.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the writer looks at the queue.
const INTERVAL: Duration = Duration::from_millis(100);
/// Idle connections kept for budget reservations (a new one costs an authentication).
const POOL: usize = 16;

/// Why a replica cannot use the fleet's ledger; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot read the PostgreSQL password (`store.postgres_password = \"{reference}\"`): {source}")]
    Password {
        reference: String,
        source: SecretError,
    },
    #[error("cannot reach PostgreSQL at {url}: {reason}. Start it, correct `[store] postgres`, or remove `[store]` to keep records in this machine's SQLite alone")]
    Unreachable { url: String, reason: String },
    #[error("PostgreSQL at {url} refused this replica: {reason}. Check the user in `store.postgres` and `store.postgres_password`")]
    Refused { url: String, reason: String },
    #[error("`store.postgres = \"{url}\"` is not a URL PostgreSQL accepts: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot prepare the tables in PostgreSQL at {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error("the PostgreSQL database at {url} was written by a newer Fluxgate (schema {found}, this build knows {known}); upgrade this replica")]
    TooNew { url: String, found: i64, known: i64 },
    #[error("PostgreSQL at {url} did not answer: {reason}")]
    Query { url: String, reason: String },
    #[error("`store.postgres_ca`: {reason}")]
    Ca { reason: String },
    #[error("the certificate of PostgreSQL at {url} is not trusted: {reason}. Set `store.postgres_ca` to the PEM file of the CA that signed it, or give the server a certificate for this host name")]
    Untrusted { url: String, reason: String },
}

/// A record waiting for PostgreSQL, with its key.
struct Queued {
    seq: u64,
    record: RequestRecord,
}

/// The fleet's ledger: a connection that is re-made when lost, and this replica's queue.
pub struct FleetLedger {
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    url: Arc<str>,
    replica: Arc<str>,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
    status: EngineStatus,
    queue: Mutex<VecDeque<Queued>>,
    /// Records taken from the queue and not yet committed.
    writing: AtomicUsize,
    next_seq: AtomicU64,
    dropped: AtomicU64,
    wake: tokio::sync::Notify,
    /// Budget holds to release with the next batch (their requests have ended).
    releases: Mutex<Vec<String>>,
    /// Idle connections for budget reservations (each runs its own transaction).
    pool: Mutex<Vec<super::budgets::Conn>>,
    next_hold: AtomicU64,
    /// This replica's budget leases (`leases.rs`), and the lock that makes it take one at a
    /// time.
    pub(super) leases: super::leases::Leases,
    pub(super) granting: tokio::sync::Mutex<()>,
    /// Budgeted reservations served from a lease, and those that took a new one.
    from_lease: AtomicU64,
    granted: AtomicU64,
    /// Budgeted requests go ahead on local spend while PostgreSQL is away.
    budgets_fail_open: bool,
    /// Scrubs the password from error texts.
    redactor: Option<crate::secrets::SecretValue>,
}

impl FleetLedger {
    /// Connects, checks the credentials and applies the schema (under the advisory lock).
    pub async fn connect(
        target: &PostgresTarget,
        secrets: &Secrets,
    ) -> Result<Arc<FleetLedger>, LedgerError> {
        let url = target.url.clone();
        let mut config: tokio_postgres::Config =
            url.parse()
                .map_err(|e: tokio_postgres::Error| LedgerError::BadUrl {
                    url: url.clone(),
                    reason: e.to_string(),
                })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("fluxgate")
            .keepalives(true);
        let mut redactor = None;
        if let Some(reference) = &target.password {
            let password = secrets
                .resolve(PostgresTarget::KEYCHAIN_ACCOUNT, reference)
                .map_err(|source| LedgerError::Password {
                    reference: reference.to_string(),
                    source,
                })?;
            config.password(password.expose());
            redactor = Some(password);
        }
        let ledger = FleetLedger {
            config,
            tls: super::tls::postgres_connector(target.ca.as_deref())
                .map_err(|reason| LedgerError::Ca { reason })?,
            url: url.clone().into(),
            replica: super::random_replica_id().into(),
            client: tokio::sync::Mutex::new(None),
            status: EngineStatus::new(
                "postgres",
                "request records wait in memory until PostgreSQL answers again",
                "writing the records that waited",
            ),
            queue: Mutex::new(VecDeque::new()),
            writing: AtomicUsize::new(0),
            next_seq: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            wake: tokio::sync::Notify::new(),
            releases: Mutex::new(Vec::new()),
            pool: Mutex::new(Vec::new()),
            next_hold: AtomicU64::new(0),
            leases: Default::default(),
            granting: tokio::sync::Mutex::new(()),
            from_lease: AtomicU64::new(0),
            granted: AtomicU64::new(0),
            budgets_fail_open: target.budgets_fail_open,
            redactor,
        };
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, ledger.open()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if is_auth(&e) => {
                return Err(LedgerError::Refused {
                    url,
                    reason: ledger.scrub(&e),
                })
            }
            Ok(Err(e)) => {
                let reason = ledger.scrub(&super::tls::with_causes(&e));
                return Err(if super::tls::is_certificate_error(&reason) {
                    LedgerError::Untrusted { url, reason }
                } else {
                    LedgerError::Unreachable { url, reason }
                });
            }
            Err(_) => {
                return Err(LedgerError::Unreachable {
                    url,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        };
        ledger.migrate(&client).await?;
        *ledger.client.lock().await = Some(Arc::new(client));
        // One connection ready for the first budgeted request.
        if let Ok(c) = ledger.checkout().await {
            ledger.checkin(c);
        }
        tracing::info!(postgres = %url, replica = %ledger.replica, tls = target.tls(), "writing request records to the fleet's ledger");
        Ok(Arc::new(ledger))
    }

    /// A new connection, its driver running on the runtime until the client is dropped.
    pub(super) async fn open(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "a PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// An error's text with the password scrubbed out.
    pub(super) fn scrub(&self, e: &dyn std::fmt::Display) -> String {
        let text = e.to_string();
        match &self.redactor {
            Some(p) => p.redactor().text(&text).into_owned(),
            None => text,
        }
    }

    /// The URL as configured (it never holds a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn status(&self) -> &EngineStatus {
        &self.status
    }

    /// Records waiting for PostgreSQL (queued or being written).
    pub fn pending(&self) -> usize {
        self.queue.lock().len() + self.writing.load(Ordering::Relaxed) + self.releases.lock().len()
    }

    /// Records that did not fit in the queue while PostgreSQL was away.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Queues a finished request for the fleet's log (no I/O on the caller's thread).
    fn queue_record(&self, record: RequestRecord) {
        let seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let mut q = self.queue.lock();
        if q.len() >= QUEUE_BOUND {
            drop(q);
            if self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    bound = QUEUE_BOUND,
                    "the queue of records waiting for PostgreSQL is full; further records are kept only in this replica's SQLite log"
                );
            }
            return;
        }
        q.push_back(Queued { seq, record });
        let full = q.len() >= BATCH;
        drop(q);
        if full {
            self.wake.notify_one();
        }
    }

    /// The live connection, making a new one when the last was lost.
    async fn connection(&self) -> Result<Arc<Client>, String> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        *slot = None;
        let client = tokio::time::timeout(CONNECT_TIMEOUT, self.open())
            .await
            .map_err(|_| format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()))?
            .map_err(|e| self.scrub(&e))?;
        let client = Arc::new(client);
        *slot = Some(client.clone());
        Ok(client)
    }

    /// Forgets the connection after a failure (the next use makes a new one).
    async fn lost(&self, what: &str, reason: &str) {
        *self.client.lock().await = None;
        self.status.failed(what, &reason);
    }

    /// Writes queued records until `shutdown` resolves, then once more (bounded by
    /// [`QUERY_TIMEOUT`]) so a clean stop loses nothing PostgreSQL can take.
    pub async fn run(
        self: Arc<Self>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        tokio::pin!(shutdown);
        let mut backoff = Duration::ZERO;
        loop {
            let wait = INTERVAL.max(backoff);
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
            self.retire_leases(false);
            backoff = match self.write_pending().await {
                Ok(()) => Duration::ZERO,
                Err(()) => (backoff * 2).clamp(Duration::from_millis(250), Duration::from_secs(2)),
            };
        }
        self.retire_leases(true);
        let _ = tokio::time::timeout(QUERY_TIMEOUT, self.write_pending()).await;
    }

    /// Writes everything queued, batch by batch; on a failure the batch goes back to the
    /// front of the queue and the error is returned (the caller waits before trying again).
    async fn write_pending(&self) -> Result<(), ()> {
        loop {
            // Releases first: a request's record is queued before its reservation ends, so
            // every hold taken here has its record in the queue drained below (unless more
            // than a batch waits), and the hold goes in the transaction that adds its spend.
            let releases = std::mem::take(&mut *self.releases.lock());
            let batch: Vec<Queued> = {
                let mut q = self.queue.lock();
                let n = q.len().min(BATCH);
                self.writing.fetch_add(n, Ordering::Relaxed);
                q.drain(..n).collect()
            };
            if batch.is_empty() && releases.is_empty() {
                return Ok(());
            }
            let result = match self.connection().await {
                Ok(client) => {
                    let write = self.insert(&client, &batch, &releases);
                    match tokio::time::timeout(QUERY_TIMEOUT, write).await {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(self.scrub(&e)),
                        Err(_) => Err(format!("no answer within {} s", QUERY_TIMEOUT.as_secs())),
                    }
                }
                Err(reason) => Err(reason),
            };
            let n = batch.len();
            match result {
                Ok(()) => {
                    self.writing.fetch_sub(n, Ordering::Relaxed);
                    self.status.answered();
                }
                Err(reason) => {
                    {
                        let mut q = self.queue.lock();
                        for r in batch.into_iter().rev() {
                            q.push_front(r);
                        }
                    }
                    self.releases.lock().extend(releases);
                    self.writing.fetch_sub(n, Ordering::Relaxed);
                    self.lost("request records", &reason).await;
                    return Err(());
                }
            }
        }
    }

    /// One batch, its spend and the release of ended requests' budget holds in one
    /// transaction. Records already written (a retry after a lost acknowledgement) are
    /// skipped, and so is their spend.
    async fn insert(
        &self,
        client: &Client,
        batch: &[Queued],
        releases: &[String],
    ) -> Result<(), tokio_postgres::Error> {
        let col = |f: &dyn Fn(&RequestRecord) -> Option<String>| -> Vec<Option<String>> {
            batch.iter().map(|q| f(&q.record)).collect()
        };
        let int = |f: &dyn Fn(&RequestRecord) -> Option<i64>| -> Vec<Option<i64>> {
            batch.iter().map(|q| f(&q.record)).collect()
        };
        let seq: Vec<i64> = batch.iter().map(|q| q.seq as i64).collect();
        let ts = int(&|r| Some(r.ts_ms));
        let request_id = col(&|r| Some(r.request_id.clone()));
        let client_name = col(&|r| r.client.clone());
        let endpoint = col(&|r| Some(r.endpoint.clone()));
        let model = col(&|r| r.model.clone());
        let route = col(&|r| r.route.clone());
        let provider = col(&|r| r.provider.clone());
        let key_id = col(&|r| r.key_id.clone());
        let attempts = int(&|r| Some(i64::from(r.attempts)));
        let status = int(&|r| Some(i64::from(r.status)));
        let error_class = col(&|r| r.error_class.map(|c| c.as_str().to_string()));
        let error_code = col(&|r| r.error_code.map(|c| c.as_str().to_string()));
        let latency = int(&|r| Some(r.latency_ms as i64));
        let ttfb = int(&|r| r.ttfb_ms.map(|v| v as i64));
        let tokens_in = int(&|r| r.tokens_in.map(|v| v as i64));
        let tokens_out = int(&|r| r.tokens_out.map(|v| v as i64));
        let stream: Vec<bool> = batch.iter().map(|q| q.record.stream).collect();
        let upstream_model = col(&|r| r.upstream_model.clone());
        let tokens_cached = int(&|r| r.tokens_cached.map(|v| v as i64));
        let cost: Vec<Option<f64>> = batch.iter().map(|q| q.record.cost_usd).collect();
        let attempt_log = col(&|r| crate::record::attempt_log_text(&r.attempt_log));
        let est_tokens = int(&|r| r.est_tokens.map(|v| v as i64));
        let est_cost: Vec<Option<f64>> = batch.iter().map(|q| q.record.est_cost_usd).collect();
        let replica: &str = &self.replica;
        let params: [&(dyn ToSql + Sync); 25] = [
            &replica,
            &seq,
            &ts,
            &request_id,
            &client_name,
            &endpoint,
            &model,
            &route,
            &provider,
            &key_id,
            &attempts,
            &status,
            &error_class,
            &error_code,
            &latency,
            &ttfb,
            &tokens_in,
            &tokens_out,
            &stream,
            &upstream_model,
            &tokens_cached,
            &cost,
            &attempt_log,
            &est_tokens,
            &est_cost,
        ];
        in_transaction(client, async {
            let rows = client
                .query(
                    "INSERT INTO fluxgate_requests (replica, seq, ts_ms, request_id, client, endpoint, model, route, provider, key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, tokens_out, stream, upstream_model, tokens_cached, cost_usd, attempt_log, est_tokens, est_cost_usd)
                     SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::boolean[], $20::text[], $21::bigint[], $22::float8[], $23::text[], $24::bigint[], $25::float8[])
                     ON CONFLICT (replica, seq) DO NOTHING RETURNING seq",
                    &params,
                )
                .await?;
            let written: std::collections::HashSet<i64> = rows.iter().map(|r| r.get(0)).collect();
            let sums = spend_sums(
                batch
                    .iter()
                    .filter(|q| written.contains(&(q.seq as i64)))
                    .map(|q| &q.record),
            );
            if !sums.is_empty() {
                let (mut periods, mut scopes, mut usd, mut tokens) =
                    (Vec::new(), Vec::new(), Vec::new(), Vec::new());
                for ((p, s), (u, t)) in sums {
                    periods.push(p);
                    scopes.push(s);
                    usd.push(u);
                    tokens.push(t);
                }
                client
                    .execute(
                        "INSERT INTO fluxgate_spend (period, scope, usd, tokens)
                         SELECT * FROM UNNEST($1::text[], $2::text[], $3::float8[], $4::bigint[])
                         ON CONFLICT (period, scope) DO UPDATE
                         SET usd = fluxgate_spend.usd + excluded.usd, tokens = fluxgate_spend.tokens + excluded.tokens",
                        &[&periods, &scopes, &usd, &tokens],
                    )
                    .await?;
            }
            if !releases.is_empty() {
                client
                    .execute(
                        "DELETE FROM fluxgate_budget_holds WHERE hold = ANY($1) OR expires_ms < $2",
                        &[&releases, &crate::clock::now_ms()],
                    )
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// Waits (at most [`QUERY_TIMEOUT`]) until this replica's queued records are written, so
    /// a read after a request answered here includes it.
    pub async fn flush(&self) {
        let deadline = tokio::time::Instant::now() + QUERY_TIMEOUT;
        while self.pending() > 0 && tokio::time::Instant::now() < deadline {
            if !self.status.is_up() {
                return;
            }
            self.wake.notify_one();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A connection of its own for a budget transaction, its statements prepared (an idle
    /// one, or a new one).
    pub(super) async fn checkout(&self) -> Result<super::budgets::Conn, String> {
        loop {
            let Some(c) = self.pool.lock().pop() else {
                break;
            };
            if !c.client.is_closed() {
                return Ok(c);
            }
        }
        let client = match tokio::time::timeout(CONNECT_TIMEOUT, self.open()).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(self.scrub(&e)),
            Err(_) => return Err(format!("no answer within {} s", CONNECT_TIMEOUT.as_secs())),
        };
        super::budgets::Conn::prepare(client)
            .await
            .map_err(|e| self.scrub(&e))
    }

    /// Returns a connection after a transaction that ended cleanly.
    pub(super) fn checkin(&self, c: super::budgets::Conn) {
        let mut pool = self.pool.lock();
        if pool.len() < POOL && !c.client.is_closed() {
            pool.push(c);
        }
    }

    /// A new id for a budget hold (unique across the fleet).
    pub(super) fn new_hold_id(&self) -> String {
        format!(
            "{}-{}",
            self.replica,
            self.next_hold.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Releases a hold with the next batch of records (the request's own record, queued
    /// before its reservation ends, adds its spend in the same transaction or an earlier one).
    pub(super) fn release_hold(&self, hold: String) {
        self.releases.lock().push(hold);
        // Now rather than with the next batch: until it goes, the request's spend counts
        // twice (settled and held).
        self.wake.notify_one();
    }

    /// Counts a budgeted reservation: served from a lease, or by a new one (a round trip).
    pub(super) fn count_reservation(&self, round_trip: bool) {
        let c = if round_trip {
            &self.granted
        } else {
            &self.from_lease
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Budgeted reservations so far: `(served from a lease, that took a new lease)`.
    pub fn reservations(&self) -> (u64, u64) {
        (
            self.from_lease.load(Ordering::Relaxed),
            self.granted.load(Ordering::Relaxed),
        )
    }

    /// Retires leases idle for [`super::leases::LEASE_IDLE`] (or of a past day), and with a
    /// clean stop every lease, so their holds are released with the next batch.
    fn retire_leases(&self, all: bool) {
        if all {
            self.leases.retire_all();
        } else {
            let [day, _] = crate::record::periods(crate::clock::now_ms());
            self.leases.retire_idle(&day, std::time::Instant::now());
        }
    }

    pub(super) fn budgets_fail_open(&self) -> bool {
        self.budgets_fail_open
    }

    /// The queue's gauges for `/metrics`.
    pub fn render_metrics(&self) -> String {
        format!(
            "# HELP fluxgate_fleet_records_pending Request records waiting to be written to PostgreSQL.\n\
             # TYPE fluxgate_fleet_records_pending gauge\n\
             fluxgate_fleet_records_pending {}\n\
             # HELP fluxgate_fleet_records_dropped_total Request records that did not fit in the queue while PostgreSQL was away.\n\
             # TYPE fluxgate_fleet_records_dropped_total counter\n\
             fluxgate_fleet_records_dropped_total {}\n\
             # HELP fluxgate_fleet_budget_reservations_total Budgeted requests checked fleet-wide: served from this replica's lease, or with a transaction in PostgreSQL (which took a new lease or refused).\n\
             # TYPE fluxgate_fleet_budget_reservations_total counter\n\
             fluxgate_fleet_budget_reservations_total{{path=\"lease\"}} {}\n\
             fluxgate_fleet_budget_reservations_total{{path=\"postgres\"}} {}\n\
             # HELP fluxgate_fleet_budget_leases Budgeted scopes this replica holds a lease of.\n\
             # TYPE fluxgate_fleet_budget_leases gauge\n\
             fluxgate_fleet_budget_leases {}\n",
            self.pending(),
            self.dropped(),
            self.from_lease.load(Ordering::Relaxed),
            self.granted.load(Ordering::Relaxed),
            self.leases.len(),
        )
    }
}

/// Runs `f` inside `BEGIN` … `COMMIT` on `c`, rolling back when it fails.
pub(super) async fn in_transaction<T>(
    c: &Client,
    f: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    c.batch_execute("BEGIN").await?;
    match f.await {
        Ok(v) => c.batch_execute("COMMIT").await.map(|()| v),
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

impl crate::recorder::RecordSink for FleetLedger {
    fn push(&self, record: RequestRecord) {
        self.queue_record(record);
    }
}

/// Whether PostgreSQL refused the credentials (SQLSTATE 28000 / 28P01) rather than failing to
/// answer.
fn is_auth(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code().starts_with("28"))
}
