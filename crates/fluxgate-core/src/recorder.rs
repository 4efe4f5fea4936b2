//! Where a finished request goes: the [`Recorder`] hands each [`RequestRecord`] to the
//! metrics behind `/metrics`, to the budget ledger that settles its spend, and to the store's
//! writer (and, in team mode, to the fleet's ledger), in that order, with no I/O on the caller's thread. It is the one place records pass,
//! so the three can never disagree about which requests happened.

use std::sync::Arc;

use crate::budgets::BudgetLedger;
use crate::metrics::Metrics;
use crate::record::RequestRecord;
use crate::store::{RecordWriter, Store, StoreError};

/// Somewhere else a copy of every record goes (team mode: the fleet's ledger). `push` runs
/// on the request's thread: it must queue, never wait on I/O.
pub trait RecordSink: Send + Sync {
    fn push(&self, record: RequestRecord);
}

/// Fans finished requests out to metrics, the ledger and the store.
#[derive(Clone)]
pub struct Recorder {
    writer: RecordWriter,
    metrics: Arc<Metrics>,
    ledger: Option<Arc<dyn BudgetLedger>>,
    /// The fleet's ledger on PostgreSQL (team mode), which gets a copy of every record.
    fleet: Option<Arc<dyn RecordSink>>,
}

impl Recorder {
    /// Starts the store's writer thread.
    pub fn start(store: &Store) -> Recorder {
        Recorder {
            writer: RecordWriter::start(store),
            metrics: Arc::default(),
            ledger: None,
            fleet: None,
        }
    }

    /// Also queues every record for the fleet's ledger (team mode).
    pub fn with_fleet(mut self, fleet: Arc<dyn RecordSink>) -> Self {
        self.fleet = Some(fleet);
        self
    }

    /// Settles every record's spend in `ledger` (budgets).
    pub fn with_ledger(mut self, ledger: Arc<dyn BudgetLedger>) -> Self {
        self.ledger = Some(ledger);
        self
    }

    pub fn ledger(&self) -> Option<&Arc<dyn BudgetLedger>> {
        self.ledger.as_ref()
    }

    /// Counts, settles and queues one finished request. When the writer's queue is full the
    /// row is dropped with a warning rather than slowing the request down (it is still
    /// counted and settled).
    pub fn record(&self, r: RequestRecord) {
        self.metrics.observe(&r);
        if let Some(l) = &self.ledger {
            l.settle(&r);
        }
        if let Some(f) = &self.fleet {
            f.push(r.clone());
        }
        self.writer.push(r);
    }

    /// The counters every record feeds (`/metrics`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Writes everything queued so far (see [`RecordWriter::flush`]).
    pub fn flush(&self) {
        self.writer.flush();
    }

    /// Writes everything queued and stops the writer; later records are ignored.
    pub fn close(&self) {
        self.writer.close();
    }

    /// The most recent records, newest first, including those still queued.
    pub fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, StoreError> {
        self.writer.recent(limit)
    }

    /// Keeps a request's bodies (a route with `keep_bodies_hours`); written and scrubbed on the
    /// writer thread.
    pub fn keep_bodies(&self, b: crate::store::BodiesToKeep) {
        self.writer.push_bodies(b);
    }

    /// A request's kept bodies, if its route keeps them and their time is not up.
    pub fn bodies(&self, request_id: &str) -> Result<Option<crate::store::KeptBodies>, StoreError> {
        self.writer.bodies(request_id)
    }

    /// The newest record's cursor (see [`crate::store::RequestQuery`]).
    pub fn head(&self) -> Result<i64, StoreError> {
        self.writer.head()
    }

    /// The records `q` selects, including those still queued (the request inspector).
    pub fn query(&self, q: &crate::store::RequestQuery) -> Result<Vec<RequestRecord>, StoreError> {
        self.writer.query(q)
    }
}
