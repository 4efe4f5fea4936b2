//! Reading the request log back: the request inspector's filters (the console, `fluxgate log`
//! and the export) as one value, [`RequestQuery`], and the SQL it becomes, the same for SQLite
//! (`?N` placeholders) and PostgreSQL (`$N`).
//!
//! Rows are found by their cursor (`seq`: SQLite's rowid, the fleet ledger's `n`), which grows
//! in the order records are written. `after` follows the log (rows written since, oldest
//! first); otherwise the newest come first and `before` pages back.

use serde::Deserialize;

use crate::record::{attempt_log_from, RequestRecord};
use crate::vocab::{ErrorClass, ErrorCode};

/// The most rows one read returns.
pub const MAX_ROWS: usize = 1000;

/// What to read from the request log.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestQuery {
    /// Only requests that failed: an error status, or a stream that ended with an error.
    #[serde(default, deserialize_with = "flag")]
    pub failed: bool,
    /// Only requests that needed more than one attempt (failovers).
    #[serde(default, deserialize_with = "flag")]
    pub retried: bool,
    pub route: Option<String>,
    pub provider: Option<String>,
    /// A key id (with `provider`, or any provider's key of that id).
    pub key: Option<String>,
    /// A client token's name.
    pub client: Option<String>,
    /// The model the client asked for.
    pub model: Option<String>,
    pub request_id: Option<String>,
    /// Rows written after this cursor, oldest first (following the log).
    pub after: Option<i64>,
    /// Rows written before this cursor, newest first (the next page back).
    pub before: Option<i64>,
    /// Requests that started at or after this Unix time in milliseconds.
    pub since_ms: Option<i64>,
    /// Requests that started before this Unix time in milliseconds.
    pub until_ms: Option<i64>,
    /// At most this many rows (default 100, at most [`MAX_ROWS`]).
    pub limit: Option<usize>,
}

/// `true`, `1`, `yes` or an empty value (`?failed`) for a yes.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s = String::deserialize(d)?;
    match s.as_str() {
        "" | "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        other => Err(serde::de::Error::custom(format!(
            "expected true or false, not {other:?}"
        ))),
    }
}

/// One value bound to a placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

/// The columns a read returns, in [`RequestQuery::sql`]'s order (the cursor comes last).
pub(crate) const COLUMNS: &str = "ts_ms, request_id, client, endpoint, model, route, provider, \
     key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, \
     tokens_out, stream, upstream_model, tokens_cached, cost_usd, attempt_log, est_tokens, \
     est_cost_usd";

/// Which database the SQL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl RequestQuery {
    /// The number of rows to return.
    pub fn rows(&self) -> usize {
        self.limit.unwrap_or(100).clamp(1, MAX_ROWS)
    }

    /// Whether the rows come oldest first (following with `after`).
    pub fn ascending(&self) -> bool {
        self.after.is_some()
    }

    /// `SELECT … FROM table WHERE … ORDER BY … LIMIT …` and the values of its placeholders.
    pub(crate) fn sql(&self, db: Dialect, table: &str, cursor: &str) -> (String, Vec<Arg>) {
        let mut args = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        let mut bind = |conds: &mut Vec<String>, col: &str, op: &str, a: Arg| {
            args.push(a);
            let n = args.len();
            conds.push(match db {
                Dialect::Sqlite => format!("{col} {op} ?{n}"),
                Dialect::Postgres => format!("{col} {op} ${n}"),
            });
        };
        let text = |v: &Option<String>| v.as_ref().map(|s| Arg::Text(s.clone()));
        for (col, v) in [
            ("route", &self.route),
            ("provider", &self.provider),
            ("key_id", &self.key),
            ("client", &self.client),
            ("model", &self.model),
            ("request_id", &self.request_id),
        ] {
            if let Some(a) = text(v) {
                bind(&mut conds, col, "=", a);
            }
        }
        if let Some(a) = self.after {
            bind(&mut conds, cursor, ">", Arg::Int(a));
        }
        if let Some(b) = self.before {
            bind(&mut conds, cursor, "<", Arg::Int(b));
        }
        if let Some(t) = self.since_ms {
            bind(&mut conds, "ts_ms", ">=", Arg::Int(t));
        }
        if let Some(t) = self.until_ms {
            bind(&mut conds, "ts_ms", "<", Arg::Int(t));
        }
        if self.failed {
            conds.push("(status >= 400 OR error_code IS NOT NULL)".into());
        }
        if self.retried {
            conds.push("attempts > 1".into());
        }
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        let order = if self.ascending() { "ASC" } else { "DESC" };
        (
            format!(
                "SELECT {COLUMNS}, {cursor} FROM {table}{filter} ORDER BY {cursor} {order} LIMIT {}",
                self.rows()
            ),
            args,
        )
    }
}

/// A row's values as [`COLUMNS`] lists them, read by whichever driver.
pub(crate) struct RowValues {
    pub ts_ms: i64,
    pub request_id: String,
    pub client: Option<String>,
    pub endpoint: String,
    pub model: Option<String>,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub key_id: Option<String>,
    pub attempts: i64,
    pub status: i64,
    pub error_class: Option<String>,
    pub error_code: Option<String>,
    pub latency_ms: i64,
    pub ttfb_ms: Option<i64>,
    pub tokens_in: Option<i64>,
    pub tokens_out: Option<i64>,
    pub stream: bool,
    pub upstream_model: Option<String>,
    pub tokens_cached: Option<i64>,
    pub cost_usd: Option<f64>,
    pub attempt_log: Option<String>,
    pub est_tokens: Option<i64>,
    pub est_cost_usd: Option<f64>,
    pub seq: i64,
}

impl RowValues {
    /// The record (negative counts, which no build writes, read as 0).
    pub fn record(self) -> RequestRecord {
        let n = |v: i64| v.max(0) as u64;
        RequestRecord {
            ts_ms: self.ts_ms,
            request_id: self.request_id,
            client: self.client,
            endpoint: self.endpoint,
            model: self.model,
            route: self.route,
            provider: self.provider,
            key_id: self.key_id,
            attempts: self.attempts.clamp(0, i64::from(u32::MAX)) as u32,
            status: self.status.clamp(0, i64::from(u16::MAX)) as u16,
            error_class: self.error_class.as_deref().and_then(ErrorClass::parse),
            error_code: self.error_code.as_deref().and_then(ErrorCode::parse),
            latency_ms: n(self.latency_ms),
            ttfb_ms: self.ttfb_ms.map(n),
            tokens_in: self.tokens_in.map(n),
            tokens_out: self.tokens_out.map(n),
            stream: self.stream,
            upstream_model: self.upstream_model,
            tokens_cached: self.tokens_cached.map(n),
            cost_usd: self.cost_usd,
            attempt_log: attempt_log_from(self.attempt_log.as_deref()),
            est_tokens: self.est_tokens.map(n),
            est_cost_usd: self.est_cost_usd,
            seq: Some(self.seq),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<RequestQuery, String> {
        serde_urlencoded::from_str(q).map_err(|e| e.to_string())
    }

    #[test]
    fn query_strings_become_filters_and_bad_ones_say_what_is_wrong() {
        assert_eq!(parse("until_ms=5").unwrap().until_ms, Some(5));
        let q = parse("failed=true&route=fast&key=k1&limit=5000").unwrap();
        assert!(q.failed && !q.retried);
        assert_eq!(q.route.as_deref(), Some("fast"));
        assert_eq!(q.rows(), MAX_ROWS, "capped");
        assert!(parse("failed=1&retried").unwrap().retried);
        assert!(!parse("failed=no").unwrap().failed);
        let e = parse("failed=maybe").unwrap_err();
        assert!(e.contains("maybe"), "{e}");
        let e = parse("colour=red").unwrap_err();
        assert!(e.contains("colour"), "{e}");
        assert_eq!(parse("").unwrap().rows(), 100);
    }

    #[test]
    fn filters_bind_every_value_and_never_splice_one() {
        let q = RequestQuery {
            failed: true,
            retried: true,
            route: Some("r'; DROP TABLE requests; --".into()),
            provider: Some("p".into()),
            after: Some(7),
            since_ms: Some(1000),
            limit: Some(10),
            ..RequestQuery::default()
        };
        let (sql, args) = q.sql(Dialect::Sqlite, "requests", "id");
        assert_eq!(
            sql,
            format!(
                "SELECT {COLUMNS}, id FROM requests WHERE route = ?1 AND provider = ?2 AND id > ?3 \
                 AND ts_ms >= ?4 AND (status >= 400 OR error_code IS NOT NULL) AND attempts > 1 \
                 ORDER BY id ASC LIMIT 10"
            )
        );
        assert_eq!(args[0], Arg::Text("r'; DROP TABLE requests; --".into()));
        assert_eq!(args[2], Arg::Int(7));
        let (sql, args) = RequestQuery {
            before: Some(9),
            ..RequestQuery::default()
        }
        .sql(Dialect::Postgres, "fluxgate_requests", "n");
        assert!(
            sql.ends_with("WHERE n < $1 ORDER BY n DESC LIMIT 100"),
            "{sql}"
        );
        assert_eq!(args, vec![Arg::Int(9)]);
    }
}
