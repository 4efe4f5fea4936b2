//! Reads of the fleet's ledger for the admin API: usage, the latest records, spend. A read
//! that fails marks PostgreSQL as away; the caller then answers from the replica's SQLite.

use tokio_postgres::Client;

use super::{FleetLedger, LedgerError, QUERY_TIMEOUT};
use crate::record::RequestRecord;
use crate::store::{usage_entry, Arg, Dialect, RequestQuery, RowValues, USAGE_GROUPS};
use tokio_postgres::types::ToSql;

impl FleetLedger {
    /// Runs a read; a failure marks PostgreSQL as away (the caller answers from SQLite).
    async fn read<T>(
        &self,
        what: &str,
        f: impl AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, LedgerError> {
        let error = |reason: String| LedgerError::Query {
            url: self.url.to_string(),
            reason,
        };
        let client = match self.connection().await {
            Ok(c) => c,
            Err(reason) => {
                self.lost(what, &reason).await;
                return Err(error(reason));
            }
        };
        match tokio::time::timeout(QUERY_TIMEOUT, f(&client)).await {
            Ok(Ok(v)) => {
                self.status.answered();
                Ok(v)
            }
            Ok(Err(e)) => {
                let reason = self.scrub(&e);
                self.lost(what, &reason).await;
                Err(error(reason))
            }
            Err(_) => {
                let reason = format!("no answer within {} s", QUERY_TIMEOUT.as_secs());
                self.lost(what, &reason).await;
                Err(error(reason))
            }
        }
    }

    /// The fleet's usage over the last `hours`, in the shape of
    /// [`crate::store::Store::usage_since`].
    pub async fn usage_since(&self, hours: u32) -> Result<serde_json::Value, LedgerError> {
        let since = crate::clock::now_ms() - i64::from(hours) * 3_600_000;
        self.read("usage", async |c: &Client| {
            let mut out = serde_json::Map::new();
            for (name, cols) in USAGE_GROUPS {
                let sql = format!(
                    "SELECT {cols}, COUNT(*)::bigint, \
                     COUNT(*) FILTER (WHERE status >= 400 OR error_code IS NOT NULL)::bigint, \
                     COALESCE(SUM(tokens_in), 0)::bigint, COALESCE(SUM(tokens_out), 0)::bigint, \
                     COALESCE(SUM(tokens_cached), 0)::bigint, COALESCE(SUM(cost_usd), 0)::float8, MAX(ts_ms) \
                     FROM fluxgate_requests WHERE ts_ms >= $1 GROUP BY {cols} ORDER BY COUNT(*) DESC"
                );
                let n = cols.split(',').count();
                let rows = c.query(&sql, &[&since]).await?;
                let list = rows
                    .iter()
                    .map(|r| {
                        let names = (0..n).map(|i| r.get::<_, Option<String>>(i)).collect();
                        let mut counts = [0i64; 5];
                        for (i, v) in counts.iter_mut().enumerate() {
                            *v = r.get(n + i);
                        }
                        usage_entry(cols, names, counts, r.get(n + 5), r.get(n + 6))
                    })
                    .collect();
                out.insert(name.into(), serde_json::Value::Array(list));
            }
            Ok(serde_json::Value::Object(out))
        })
        .await
    }

    /// The fleet's requests per bucket of `span` (see [`crate::store::Span`]), counted from its
    /// records (PostgreSQL groups them by time through the `ts_ms` index).
    pub async fn series(
        &self,
        span: crate::store::Span,
        f: &crate::store::SeriesFilter,
    ) -> Result<Vec<crate::store::Bucket>, LedgerError> {
        let now = crate::clock::now_ms();
        let (width, _) = span.buckets();
        let start = crate::store::first_bucket(span, now);
        let mut sql = format!(
            "SELECT ts_ms / {width} * {width}, (status >= 400 OR error_code IS NOT NULL), COUNT(*)::bigint, \
             COALESCE(SUM(tokens_in), 0)::bigint, COALESCE(SUM(tokens_out), 0)::bigint, \
             COALESCE(SUM(cost_usd), 0)::float8 FROM fluxgate_requests WHERE ts_ms >= $1"
        );
        let mut texts: Vec<String> = Vec::new();
        for (col, v) in [
            ("route", &f.route),
            ("provider", &f.provider),
            ("key_id", &f.key),
        ] {
            if let Some(v) = v {
                texts.push(v.clone());
                sql += &format!(" AND {col} = ${}", texts.len() + 1);
            }
        }
        sql += " GROUP BY 1, 2";
        self.read("usage series", async move |c: &Client| {
            let mut args: Vec<&(dyn ToSql + Sync)> = vec![&start];
            for t in &texts {
                args.push(t);
            }
            let rows = c.query(&sql, &args).await?;
            Ok(crate::store::series_from_rows(
                span,
                now,
                rows.iter().map(|r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, bool>(1),
                        (r.get(2), r.get(3), r.get(4), r.get(5)),
                    )
                }),
            ))
        })
        .await
    }

    /// The fleet's most recent records, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, LedgerError> {
        self.query(&RequestQuery {
            limit: Some(limit),
            ..RequestQuery::default()
        })
        .await
    }

    /// The newest fleet record's cursor (0 for an empty ledger).
    pub async fn head(&self) -> Result<i64, LedgerError> {
        self.read("requests", async |c: &Client| {
            Ok(
                c.query_one("SELECT COALESCE(MAX(n), 0) FROM fluxgate_requests", &[])
                    .await?
                    .get(0),
            )
        })
        .await
    }

    /// The fleet's records that `q` selects (see [`RequestQuery`]).
    pub async fn query(&self, q: &RequestQuery) -> Result<Vec<RequestRecord>, LedgerError> {
        let (sql, args) = q.sql(Dialect::Postgres, "fluxgate_requests", "n");
        self.read("requests", async move |c: &Client| {
            let args: Vec<Box<dyn ToSql + Sync + Send>> = args
                .into_iter()
                .map(|a| -> Box<dyn ToSql + Sync + Send> {
                    match a {
                        Arg::Text(s) => Box::new(s),
                        Arg::Int(i) => Box::new(i),
                    }
                })
                .collect();
            let refs: Vec<&(dyn ToSql + Sync)> = args
                .iter()
                .map(|a| a.as_ref() as &(dyn ToSql + Sync))
                .collect();
            let rows = c.query(&sql, &refs).await?;
            Ok(rows
                .iter()
                .map(|r| {
                    RowValues {
                        ts_ms: r.get(0),
                        request_id: r.get(1),
                        client: r.get(2),
                        endpoint: r.get(3),
                        model: r.get(4),
                        route: r.get(5),
                        provider: r.get(6),
                        key_id: r.get(7),
                        attempts: i64::from(r.get::<_, i32>(8)),
                        status: i64::from(r.get::<_, i32>(9)),
                        error_class: r.get(10),
                        error_code: r.get(11),
                        latency_ms: r.get(12),
                        ttfb_ms: r.get(13),
                        tokens_in: r.get(14),
                        tokens_out: r.get(15),
                        stream: r.get(16),
                        upstream_model: r.get(17),
                        tokens_cached: r.get(18),
                        cost_usd: r.get(19),
                        attempt_log: r.get(20),
                        est_tokens: r.get(21),
                        est_cost_usd: r.get(22),
                        seq: r.get(23),
                    }
                    .record()
                })
                .collect())
        })
        .await
    }

    /// The fleet's spend in the given periods: (period, scope, spend).
    pub async fn spend_in(
        &self,
        periods: &[String],
    ) -> Result<Vec<(String, String, crate::record::Spend)>, LedgerError> {
        let periods = periods.to_vec();
        self.read("spend", async move |c: &Client| {
            let rows = c
                .query(
                    "SELECT period, scope, usd, tokens FROM fluxgate_spend WHERE period = ANY($1)",
                    &[&periods],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        crate::record::Spend {
                            usd: r.get(2),
                            tokens: r.get::<_, i64>(3).max(0) as u64,
                        },
                    )
                })
                .collect())
        })
        .await
    }
}
