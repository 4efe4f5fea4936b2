//! The `requests` table: one row per proxied request, written in batches by a background
//! thread ([`RecordWriter`]), with each batch's spend added to the `spend` table in the same
//! transaction. Never a body, never a secret.

use std::sync::Arc;
use std::thread::JoinHandle;

use super::{Store, StoreError};
use crate::record::{periods, record_scopes, RequestRecord};
use crate::vocab::{ErrorClass, ErrorCode};
use parking_lot::{Condvar, Mutex};
use rusqlite::{params, Connection};

const QUEUE: usize = 16_384;
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
    closed: bool,
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
            "INSERT INTO requests (ts_ms, request_id, client, endpoint, model, route, provider, key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, tokens_out, stream, upstream_model, tokens_cached, cost_usd)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
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
        let tokens = (r.tokens_in.unwrap_or(0) + r.tokens_out.unwrap_or(0)) as i64;
        let usd = r.cost_usd.unwrap_or(0.0);
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

/// How long the writer sleeps between commits: one transaction per interval instead of one
/// per request keeps SQLite's per-commit cost off the hot path, and a request never wakes the
/// writer thread (no syscall per request) unless a full batch is waiting.
const INTERVAL: std::time::Duration = std::time::Duration::from_millis(25);

fn run_writer(queue: &Queue, write: impl Fn(&[RequestRecord]) -> Result<(), String>) {
    loop {
        {
            let mut p = queue.pending.lock();
            if p.records.is_empty() && !p.closed {
                queue.wake.wait_for(&mut p, INTERVAL);
            }
        }
        let writing = queue.writing.lock();
        let (batch, closed) = {
            let mut p = queue.pending.lock();
            (std::mem::take(&mut p.records), p.closed)
        };
        for chunk in batch.chunks(BATCH) {
            if let Err(e) = write(chunk) {
                tracing::error!(error = %e, lost = chunk.len(), "cannot write request records");
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
                Some(conn) => run_writer(&writer_queue, |b| {
                    insert(&conn, b).map_err(|e| e.to_string())
                }),
                None => run_writer(&writer_queue, |b| {
                    writer_store
                        .with(|c| insert(c, b))
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

    /// Writes everything queued so far, on the caller's thread; returns once the batch the
    /// writer thread may be committing is in too.
    pub fn flush(&self) {
        let _writing = self.queue.writing.lock();
        let batch = std::mem::take(&mut self.queue.pending.lock().records);
        for chunk in batch.chunks(BATCH) {
            if let Err(e) = self.store.with(|c| insert(c, chunk)) {
                tracing::error!(error = %e, lost = chunk.len(), "cannot write request records");
            }
        }
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
        self.flush();
        self.store.with(|c| {
            let mut stmt = c.prepare(
                "SELECT ts_ms, request_id, client, endpoint, model, route, provider, key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, tokens_out, stream, upstream_model, tokens_cached, cost_usd
                 FROM requests ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt.query_map(params![limit as i64], |r| {
                Ok(RequestRecord {
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
                    error_class: r
                        .get::<_, Option<String>>(10)?
                        .and_then(|c| ErrorClass::parse(&c)),
                    error_code: r
                        .get::<_, Option<String>>(11)?
                        .and_then(|c| ErrorCode::parse(&c)),
                    latency_ms: r.get::<_, i64>(12)? as u64,
                    ttfb_ms: r.get::<_, Option<i64>>(13)?.map(|v| v as u64),
                    tokens_in: r.get::<_, Option<i64>>(14)?.map(|v| v as u64),
                    tokens_out: r.get::<_, Option<i64>>(15)?.map(|v| v as u64),
                    stream: r.get(16)?,
                    upstream_model: r.get(17)?,
                    tokens_cached: r.get::<_, Option<i64>>(18)?.map(|v| v as u64),
                    cost_usd: r.get(19)?,
                })
            })?;
            rows.collect()
        })
    }
}
