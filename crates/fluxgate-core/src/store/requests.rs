//! The `requests` table: one row per proxied request, written in batches by a background
//! thread ([`RecordWriter`]), with each batch's spend added to the `spend` table in the same
//! transaction. Never a body, never a secret.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::bodies::{BodiesToKeep, KeptBodies};
use super::query::{Arg, Dialect, RequestQuery, RowValues};
use super::{Store, StoreError};
use crate::record::{attempt_log_text, periods, record_scopes, RequestRecord};
use parking_lot::{Condvar, Mutex};
use rusqlite::{params, Connection};

const QUEUE: usize = 16_384;
/// Bodies waiting for the writer (each up to twice a route's `keep_bodies_kb`).
const BODY_QUEUE: usize = 256;
const BATCH: usize = 512;

/// Records waiting for the writer, shared with it.
#[derive(Default)]
struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    /// Held while a batch is between the queue and its commit, so [`RecordWriter::flush`]
    /// returns only when every record queued before it is in SQLite.
    writing: Mutex<()>,
}

#[derive(Default)]
struct Pending {
    records: Vec<RequestRecord>,
    /// Bodies of routes that keep them.
    bodies: Vec<BodiesToKeep>,
    closed: bool,
}

/// One write of the writer thread.
enum Job<'a> {
    Records(&'a [RequestRecord]),
    /// Bodies to keep, and the time before which kept ones are deleted.
    Bodies(&'a [BodiesToKeep], i64),
}

/// How often the writer deletes kept bodies whose time is up, when none arrive.
const PRUNE_EVERY_MS: i64 = 60_000;

fn run_job(c: &Connection, job: Job<'_>) -> rusqlite::Result<()> {
    match job {
        Job::Records(batch) => insert(c, batch),
        Job::Bodies(bodies, now) => super::bodies::write(c, bodies, now),
    }
}

/// A handle for recording requests without waiting on disk.
#[derive(Clone)]
pub struct RecordWriter {
    queue: Arc<Queue>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
    store: Store,
}

fn insert(c: &Connection, batch: &[RequestRecord]) -> rusqlite::Result<()> {
    let tx = c.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO requests (ts_ms, request_id, client, endpoint, model, route, provider, key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, tokens_out, stream, upstream_model, tokens_cached, cost_usd, attempt_log, est_tokens, est_cost_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)",
        )?;
        for r in batch {
            stmt.execute(params![
                r.ts_ms,
                r.request_id,
                r.client,
                r.endpoint,
                r.model,
                r.route,
                r.provider,
                r.key_id,
                r.attempts,
                r.status,
                r.error_class.map(|c| c.as_str()),
                r.error_code.map(|c| c.as_str()),
                r.latency_ms as i64,
                r.ttfb_ms.map(|v| v as i64),
                r.tokens_in.map(|v| v as i64),
                r.tokens_out.map(|v| v as i64),
                r.stream,
                r.upstream_model,
                r.tokens_cached.map(|v| v as i64),
                r.cost_usd,
                attempt_log_text(&r.attempt_log),
                r.est_tokens.map(|v| v as i64),
                r.est_cost_usd,
            ])?;
        }
        let mut hours = tx.prepare_cached(
            "INSERT INTO usage_hours (hour, route, provider, key_id, failed, requests, tokens_in, tokens_out, tokens_cached, cost_usd, last_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (hour, route, provider, key_id, failed) DO UPDATE SET
               requests = requests + excluded.requests, tokens_in = tokens_in + excluded.tokens_in,
               tokens_out = tokens_out + excluded.tokens_out,
               tokens_cached = tokens_cached + excluded.tokens_cached,
               cost_usd = cost_usd + excluded.cost_usd,
               last_ms = MAX(last_ms, excluded.last_ms)",
        )?;
        for ((hour, route, provider, key, failed), [n, i, o, c], usd, last) in hour_sums(batch) {
            hours.execute(params![
                hour, route, provider, key, failed, n, i, o, c, usd, last
            ])?;
        }
        let sums = spend_sums(batch);
        if !sums.is_empty() {
            let mut up = tx.prepare_cached(
                "INSERT INTO spend (period, scope, usd, tokens) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (period, scope) DO UPDATE SET usd = usd + excluded.usd, tokens = tokens + excluded.tokens",
            )?;
            for ((period, scope), (usd, tokens)) in sums {
                up.execute(params![period, scope, usd, tokens])?;
            }
        }
    }
    tx.commit()
}

/// A batch's spend per `(period, scope)`: `(usd, tokens)`, sorted (writers that take row
/// locks in one order cannot deadlock each other). Summed first per day and request identity
/// (records of one client, route and key add up without a string being made), then per
/// period and scope.
pub(crate) fn spend_sums<'a>(
    batch: impl IntoIterator<Item = &'a RequestRecord>,
) -> Vec<((String, String), (f64, i64))> {
    type Identity<'a> = (i64, [Option<&'a str>; 4]);
    let mut groups: std::collections::HashMap<
        Identity<'_>,
        (&RequestRecord, f64, i64),
        foldhash::fast::RandomState,
    > = std::collections::HashMap::default();
    for r in batch {
        let spend = r.spend();
        let (tokens, usd) = (spend.tokens as i64, spend.usd);
        if tokens == 0 && usd == 0.0 {
            continue;
        }
        let id = (
            r.ts_ms.div_euclid(86_400_000),
            [
                r.provider.as_deref(),
                r.key_id.as_deref(),
                r.route.as_deref(),
                r.client.as_deref(),
            ],
        );
        let e = groups.entry(id).or_insert((r, 0.0, 0));
        e.1 += usd;
        e.2 += tokens;
    }
    let mut sums: std::collections::BTreeMap<(String, String), (f64, i64)> =
        std::collections::BTreeMap::new();
    for (r, usd, tokens) in groups.into_values() {
        let scopes = record_scopes(r);
        for period in periods(r.ts_ms) {
            for scope in &scopes {
                let e = sums.entry((period.clone(), scope.clone())).or_default();
                e.0 += usd;
                e.1 += tokens;
            }
        }
    }
    sums.into_iter().collect()
}

/// A group of [`hour_sums`]: hour, route, provider, key id (empty for none) and whether the
/// requests failed.
type HourGroup<'a> = (i64, &'a str, &'a str, &'a str, bool);

/// A batch's rows of `usage_hours`: per group, requests, input, output and cached tokens,
/// cost (reported usage only: what the charts show as tokens and spend) and the latest start.
fn hour_sums(batch: &[RequestRecord]) -> Vec<(HourGroup<'_>, [i64; 4], f64, i64)> {
    let mut groups: Vec<(HourGroup<'_>, [i64; 4], f64, i64)> = Vec::new();
    for r in batch {
        let key = (
            r.ts_ms.div_euclid(3_600_000),
            r.route.as_deref().unwrap_or(""),
            r.provider.as_deref().unwrap_or(""),
            r.key_id.as_deref().unwrap_or(""),
            r.status >= 400 || r.error_code.is_some(),
        );
        let at = match groups.iter().position(|g| g.0 == key) {
            Some(i) => i,
            None => {
                groups.push((key, [0; 4], 0.0, r.ts_ms));
                groups.len() - 1
            }
        };
        let g = &mut groups[at];
        g.1[0] += 1;
        g.1[1] += r.tokens_in.unwrap_or(0) as i64;
        g.1[2] += r.tokens_out.unwrap_or(0) as i64;
        g.1[3] += r.tokens_cached.unwrap_or(0) as i64;
        g.2 += r.cost_usd.unwrap_or(0.0);
        g.3 = g.3.max(r.ts_ms);
    }
    groups
}

/// How long the writer sleeps between commits: one transaction per interval instead of one
/// per request keeps SQLite's per-commit cost off the hot path, and a request never wakes the
/// writer thread (no syscall per request) unless a full batch is waiting.
const INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

fn run_writer(queue: &Queue, write: impl Fn(Job<'_>) -> Result<(), String>) {
    let mut pruned_ms = 0;
    loop {
        {
            let mut p = queue.pending.lock();
            if p.records.is_empty() && !p.closed {
                queue.wake.wait_for(&mut p, INTERVAL);
            }
        }
        let writing = queue.writing.lock();
        let (batch, bodies, closed) = {
            let mut p = queue.pending.lock();
            (
                std::mem::take(&mut p.records),
                std::mem::take(&mut p.bodies),
                p.closed,
            )
        };
        for chunk in batch.chunks(BATCH) {
            if let Err(e) = write(Job::Records(chunk)) {
                tracing::error!(error = %e, lost = chunk.len(), "cannot write request records");
            }
        }
        let now = crate::clock::now_ms();
        if !bodies.is_empty() || now - pruned_ms >= PRUNE_EVERY_MS {
            pruned_ms = now;
            if let Err(e) = write(Job::Bodies(&bodies, now)) {
                tracing::error!(error = %e, lost = bodies.len(), "cannot write kept request bodies");
            }
        }
        drop(writing);
        if closed {
            return;
        }
    }
}

impl RecordWriter {
    /// Starts the writer thread.
    pub fn start(store: &Store) -> RecordWriter {
        let queue = Arc::new(Queue::default());
        let writer_queue = queue.clone();
        let writer_store = store.clone();
        let own_conn = store.writer_connection().ok();
        let thread = std::thread::Builder::new()
            .name("fluxgate-records".into())
            .spawn(move || match own_conn {
                Some(conn) => run_writer(&writer_queue, |job| {
                    run_job(&conn, job).map_err(|e| e.to_string())
                }),
                None => run_writer(&writer_queue, |job| {
                    writer_store
                        .with(|c| run_job(c, job))
                        .map_err(|e| e.to_string())
                }),
            })
            .ok();
        RecordWriter {
            queue,
            thread: Arc::new(Mutex::new(thread)),
            store: store.clone(),
        }
    }

    /// Queues a record. When the queue is full the record is dropped with a warning rather
    /// than slowing the request down.
    pub fn push(&self, r: RequestRecord) {
        let mut p = self.queue.pending.lock();
        if p.closed {
            return;
        }
        if p.records.len() >= QUEUE {
            drop(p);
            tracing::warn!("request log queue full; a record was dropped");
            return;
        }
        p.records.push(r);
        if p.records.len() == BATCH {
            self.queue.wake.notify_one();
        }
    }

    /// Queues a request's bodies (a route that keeps them); dropped with a warning when the
    /// queue is full.
    pub fn push_bodies(&self, b: BodiesToKeep) {
        let mut p = self.queue.pending.lock();
        if p.closed {
            return;
        }
        if p.bodies.len() >= BODY_QUEUE {
            drop(p);
            tracing::warn!("kept-bodies queue full; a request's bodies were not kept");
            return;
        }
        p.bodies.push(b);
    }

    /// Writes everything queued so far, on the caller's thread; returns once the batch the
    /// writer thread may be committing is in too.
    pub fn flush(&self) {
        let _writing = self.queue.writing.lock();
        let (batch, bodies) = {
            let mut p = self.queue.pending.lock();
            (
                std::mem::take(&mut p.records),
                std::mem::take(&mut p.bodies),
            )
        };
        for chunk in batch.chunks(BATCH) {
            if let Err(e) = self.store.with(|c| insert(c, chunk)) {
                tracing::error!(error = %e, lost = chunk.len(), "cannot write request records");
            }
        }
        if !bodies.is_empty() {
            let now = crate::clock::now_ms();
            if let Err(e) = self.store.with(|c| super::bodies::write(c, &bodies, now)) {
                tracing::error!(error = %e, lost = bodies.len(), "cannot write kept request bodies");
            }
        }
    }

    /// The kept bodies of `request_id` (a route that keeps them), unless their time is up.
    pub fn bodies(&self, request_id: &str) -> Result<Option<KeptBodies>, StoreError> {
        self.flush();
        let now = crate::clock::now_ms();
        self.store.with(|c| super::bodies::read(c, request_id, now))
    }

    /// Writes everything queued and stops the writer; later records are ignored.
    pub fn close(&self) {
        self.queue.pending.lock().closed = true;
        self.queue.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }

    /// The most recent records, newest first, including those still queued for the writer: a
    /// request answered before the read is in it.
    pub fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
        self.query(&RequestQuery {
            limit: Some(limit),
            ..RequestQuery::default()
        })
    }

    /// The newest row's cursor (0 for an empty log), after writing what is queued.
    pub fn head(&self) -> Result<i64, StoreError> {
        self.flush();
        self.store.with(|c| {
            c.query_row("SELECT COALESCE(MAX(id), 0) FROM requests", [], |r| {
                r.get(0)
            })
        })
    }

    /// The records `q` selects, including those still queued for the writer.
    pub fn query(&self, q: &RequestQuery) -> Result<Vec<RequestRecord>, StoreError> {
        self.flush();
        let (sql, args) = q.sql(Dialect::Sqlite, "requests", "id");
        let args: Vec<rusqlite::types::Value> = args
            .into_iter()
            .map(|a| match a {
                Arg::Text(s) => rusqlite::types::Value::Text(s),
                Arg::Int(i) => rusqlite::types::Value::Integer(i),
            })
            .collect();
        self.store.with(|c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| {
                Ok(RowValues {
                    ts_ms: r.get(0)?,
                    request_id: r.get(1)?,
                    client: r.get(2)?,
                    endpoint: r.get(3)?,
                    model: r.get(4)?,
                    route: r.get(5)?,
                    provider: r.get(6)?,
                    key_id: r.get(7)?,
                    attempts: r.get(8)?,
                    status: r.get(9)?,
                    error_class: r.get(10)?,
                    error_code: r.get(11)?,
                    latency_ms: r.get(12)?,
                    ttfb_ms: r.get(13)?,
                    tokens_in: r.get(14)?,
                    tokens_out: r.get(15)?,
                    stream: r.get(16)?,
                    upstream_model: r.get(17)?,
                    tokens_cached: r.get(18)?,
                    cost_usd: r.get(19)?,
                    attempt_log: r.get(20)?,
                    est_tokens: r.get(21)?,
                    est_cost_usd: r.get(22)?,
                    seq: r.get(23)?,
                }
                .record())
            })?;
            rows.collect()
        })
    }
}
