//! SQLite storage: embedded numbered migrations, key health, the request log, client tokens
//! and the conversations of emulated Responses API responses. One query file per table.
//!
//! The database lives in the data directory with WAL journaling. Request records are written
//! by a background thread in batches so the proxy path never waits on disk; health and token
//! changes are written synchronously (they are rare, and acknowledged writes must survive a
//! crash). No secret value is ever stored. Request bodies are not stored, with two exceptions:
//! one the client asks for (a Responses API request with `store`, the default, served by a
//! non-Responses upstream keeps its conversation items so that `previous_response_id` works,
//! for 30 days), and one the user asks for (a route with `keep_bodies_hours` keeps its
//! requests' bodies, cut and scrubbed, for the inspector: `bodies.rs`).

mod bodies;
mod health;
mod history;
mod migrate;
mod query;
mod requests;
mod responses;
mod series;
mod tokens;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::Connection;

pub use bodies::{scrub_body, BodiesToKeep, KeptBodies};
pub use history::{segments, KeyChange, KeyStrip, Segment};
pub(crate) use query::{Arg, Dialect, RowValues};
pub use query::{RequestQuery, MAX_ROWS};
pub(crate) use requests::spend_sums;
pub use requests::RecordWriter;
pub use responses::Conversations;
pub use responses::RETENTION_MS as RESPONSE_RETENTION_MS;
pub(crate) use series::from_rows as series_from_rows;
pub use series::{first_bucket, Bucket, SeriesFilter, Span};
pub(crate) use tokens::{limits_from, limits_text};
pub use tokens::{TokenLimits, TokenRow, TokenRows};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    /// The fleet's shared store (team mode) did not take or give the data.
    #[error("shared store: {0}")]
    Shared(String),
    #[error(
        "the database was written by a newer Fluxgate (schema {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
}

/// The SQLite database of one data directory.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

pub const DB_FILE: &str = "fluxgate.db";

impl Store {
    /// Opens (creating and migrating) `DATA_DIR/fluxgate.db`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        let path = data_dir.join(DB_FILE);
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        std::fs::create_dir_all(data_dir).map_err(|e| open_err(e.to_string()))?;
        restrict_dir(data_dir);
        let conn = Self::connect(&path).map_err(|e| open_err(e.to_string()))?;
        let mut conn = conn;
        migrate::run(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path,
        })
    }

    /// An in-memory database (tests).
    pub fn memory() -> Result<Store, StoreError> {
        let mut conn = Connection::open_in_memory()?;
        migrate::run(&mut conn)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
            path: PathBuf::from(":memory:"),
        })
    }

    fn connect(path: &Path) -> rusqlite::Result<Connection> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A second connection for a background writer (the same file; WAL lets both work).
    pub(crate) fn writer_connection(&self) -> rusqlite::Result<Connection> {
        if self.path == Path::new(":memory:") {
            // In-memory databases are per connection; share the one we have instead.
            return Err(rusqlite::Error::InvalidPath(self.path.clone()));
        }
        Self::connect(&self.path)
    }

    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.conn.lock();
        Ok(f(&conn)?)
    }

    /// The `spend` rows of the given periods: (period, scope, spend).
    pub fn spend_in(
        &self,
        periods: &[&str],
    ) -> Result<Vec<(String, String, crate::record::Spend)>, StoreError> {
        self.with(|c| {
            let mut stmt =
                c.prepare("SELECT period, scope, usd, tokens FROM spend WHERE period = ?1")?;
            let mut out = Vec::new();
            for p in periods {
                let rows = stmt.query_map(rusqlite::params![p], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        crate::record::Spend {
                            usd: r.get(2)?,
                            tokens: r.get::<_, i64>(3)?.max(0) as u64,
                        },
                    ))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })
    }

    /// Requests, errors, tokens, cache reads and spend over the last `hours`, grouped by
    /// route, by provider and by key. `cache_hit_rate` is cached input over all input tokens
    /// of the requests that reported usage. Whole hours are read from `usage_hours`; only the
    /// part of the first hour inside the window is read from the requests themselves (found
    /// by rowid, looking back `lag_ms`, the longest a request can take, for rows written late).
    pub fn usage_since(&self, hours: u32, lag_ms: i64) -> Result<serde_json::Value, StoreError> {
        let since = crate::clock::now_ms() - i64::from(hours) * 3_600_000;
        // The first whole hour inside the window.
        let first_hour = since.div_euclid(3_600_000) + i64::from(since.rem_euclid(3_600_000) != 0);
        let raw_until = first_hour * 3_600_000;
        self.with(|c| {
            let first = first_row_since(c, since - lag_ms)?;
            let mut out = serde_json::Map::new();
            for (name, cols) in USAGE_GROUPS {
                let n = cols.split(',').count();
                let mut groups: Vec<UsageGroup> = Vec::new();
                let mut add =
                    |names: Vec<Option<String>>, counts: [i64; 5], cost: f64, last: Option<i64>| {
                        match groups.iter_mut().find(|g| g.0 == names) {
                            Some(g) => {
                                for (a, b) in g.1.iter_mut().zip(counts) {
                                    *a += b;
                                }
                                g.2 += cost;
                                g.3 = g.3.max(last);
                            }
                            None => groups.push((names, counts, cost, last)),
                        }
                    };
                let read = |r: &rusqlite::Row<'_>, empty_is_none: bool| -> rusqlite::Result<_> {
                    let names = (0..n)
                        .map(|i| {
                            r.get::<_, Option<String>>(i)
                                .map(|v| v.filter(|s| !(empty_is_none && s.is_empty())))
                        })
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let mut counts = [0i64; 5];
                    for (i, c) in counts.iter_mut().enumerate() {
                        *c = r.get(n + i)?;
                    }
                    Ok((
                        names,
                        counts,
                        r.get::<_, f64>(n + 5)?,
                        r.get::<_, Option<i64>>(n + 6)?,
                    ))
                };
                let raw = format!(
                    "SELECT {cols}, COUNT(*), SUM(status >= 400 OR error_code IS NOT NULL), \
                     COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), \
                     COALESCE(SUM(tokens_cached), 0), COALESCE(SUM(cost_usd), 0.0), MAX(ts_ms) \
                     FROM requests WHERE id >= ?2 AND ts_ms >= ?1 AND ts_ms < ?3 GROUP BY {cols}"
                );
                let mut stmt = c.prepare_cached(&raw)?;
                for row in stmt.query_map(rusqlite::params![since, first, raw_until], |r| {
                    read(r, false)
                })? {
                    let (names, counts, cost, last) = row?;
                    add(names, counts, cost, last);
                }
                let hourly = format!(
                    "SELECT {cols}, SUM(requests), SUM(requests * failed), SUM(tokens_in), \
                     SUM(tokens_out), SUM(tokens_cached), SUM(cost_usd), MAX(last_ms) \
                     FROM usage_hours WHERE hour >= ?1 GROUP BY {cols}"
                );
                let mut stmt = c.prepare_cached(&hourly)?;
                for row in stmt.query_map(rusqlite::params![first_hour], |r| read(r, true))? {
                    let (names, counts, cost, last) = row?;
                    add(names, counts, cost, last);
                }
                groups.sort_by(|a, b| b.1[0].cmp(&a.1[0]));
                let list = groups
                    .into_iter()
                    .map(|(names, counts, cost, last)| usage_entry(cols, names, counts, cost, last))
                    .collect();
                out.insert(name.into(), serde_json::Value::Array(list));
            }
            Ok(serde_json::Value::Object(out))
        })
    }

    /// Requests that succeeded and failed, tokens and spend per bucket of `span`, ending now
    /// (see [`series`]).
    pub fn series(
        &self,
        span: Span,
        filter: &SeriesFilter,
        lag_ms: i64,
    ) -> Result<Vec<Bucket>, StoreError> {
        let now = crate::clock::now_ms();
        self.with(|c| series::read(c, span, filter, now, lag_ms))
    }

    /// Records a key's change of state (the dashboard's health strip).
    pub fn record_key_change(&self, change: &KeyChange) -> Result<(), StoreError> {
        self.with(|c| history::write(c, change))
    }

    /// Each key's stretches out of rotation since `since_ms`.
    pub fn key_history(&self, since_ms: i64) -> Result<Vec<KeyStrip>, StoreError> {
        let now = crate::clock::now_ms();
        let changes = self.with(|c| history::read(c, since_ms))?;
        Ok(history::segments(&changes, since_ms, now))
    }

    /// `PRAGMA integrity_check` == "ok".
    pub fn integrity_ok(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .map(|s| s == "ok")
        })
    }
}

/// One group of a usage answer while it is summed: its column values, its counts (see
/// [`usage_entry`]), spend, and when its last request started.
type UsageGroup = (Vec<Option<String>>, [i64; 5], f64, Option<i64>);

/// The groups of a usage answer and the columns each groups by.
pub(crate) const USAGE_GROUPS: [(&str, &str); 3] = [
    ("by_route", "route"),
    ("by_provider", "provider"),
    ("by_key", "provider, key_id"),
];

/// One row of a usage answer: the group's column values, then requests, errors, input,
/// output and cached tokens, spend, and when its last request started (`last_ms`).
/// `cache_hit_rate` is cached over all input tokens of the requests that reported usage.
pub(crate) fn usage_entry(
    cols: &str,
    names: Vec<Option<String>>,
    [requests, errors, input, output, cached]: [i64; 5],
    cost: f64,
    last_ms: Option<i64>,
) -> serde_json::Value {
    let mut o = serde_json::Map::new();
    for (col, v) in cols.split(',').map(str::trim).zip(names) {
        o.insert(col.into(), v.into());
    }
    o.insert("requests".into(), requests.into());
    o.insert("errors".into(), errors.into());
    o.insert("tokens_in".into(), input.into());
    o.insert("tokens_out".into(), output.into());
    o.insert("tokens_cached".into(), cached.into());
    o.insert("cost_usd".into(), cost.into());
    o.insert("last_ms".into(), last_ms.into());
    let rate = (input > 0).then(|| cached as f64 / input as f64);
    o.insert("cache_hit_rate".into(), rate.into());
    serde_json::Value::Object(o)
}

/// The first rowid of `requests` whose `ts_ms` is at least `ts`, by binary search on the
/// rowid (records are written in about the order they start; `requests` has no index on
/// `ts_ms`, which would slow every insert). Rows are appended, so a bounded look back from
/// this id finds every row since `ts` without scanning the whole table.
pub(crate) fn first_row_since(c: &rusqlite::Connection, ts: i64) -> rusqlite::Result<i64> {
    // Two subqueries: SQLite answers a lone MIN or MAX of the rowid from the b-tree's ends,
    // but `MIN(id), MAX(id)` in one select scans the whole table.
    let bounds: (Option<i64>, Option<i64>) = c.query_row(
        "SELECT (SELECT MIN(id) FROM requests), (SELECT MAX(id) FROM requests)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let (Some(mut lo), Some(mut hi)) = bounds else {
        return Ok(0);
    };
    let mut stmt =
        c.prepare_cached("SELECT ts_ms FROM requests WHERE id >= ?1 ORDER BY id LIMIT 1")?;
    // The first id in [lo, hi + 1) whose row is at or after `ts` (ids may have gaps).
    hi += 1;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: Option<i64> = stmt
            .query_row(rusqlite::params![mid], |r| r.get(0))
            .map(Some)
            .or_else(|e| match e {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                e => Err(e),
            })?;
        match at {
            Some(t) if t < ts => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// Makes the data directory private to its owner (it holds the admin token).
fn restrict_dir(dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests;
