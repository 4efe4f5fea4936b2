//! Reads of the fleet's ledger for the admin API: usage, the latest records, spend. A read
//! that fails marks PostgreSQL as away; the caller then answers from the replica's SQLite.

use tokio_postgres::Client;

use super::{FleetLedger, LedgerError, QUERY_TIMEOUT};
use crate::record::RequestRecord;
use crate::store::{usage_entry, USAGE_GROUPS};
use crate::vocab::{ErrorClass, ErrorCode};

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
                     COALESCE(SUM(tokens_cached), 0)::bigint, COALESCE(SUM(cost_usd), 0)::float8 \
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
                        usage_entry(cols, names, counts, r.get(n + 5))
                    })
                    .collect();
                out.insert(name.into(), serde_json::Value::Array(list));
            }
            Ok(serde_json::Value::Object(out))
        })
        .await
    }

    /// The fleet's most recent records, newest first.
    pub async fn recent(&self, limit: usize) -> Result<Vec<RequestRecord>, LedgerError> {
        let limit = limit as i64;
        self.read("recent requests", async |c: &Client| {
            let rows = c
                .query(
                    "SELECT ts_ms, request_id, client, endpoint, model, route, provider, key_id, attempts, status, error_class, error_code, latency_ms, ttfb_ms, tokens_in, tokens_out, stream, upstream_model, tokens_cached, cost_usd
                     FROM fluxgate_requests ORDER BY ts_ms DESC, seq DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| RequestRecord {
                    ts_ms: r.get(0),
                    request_id: r.get(1),
                    client: r.get(2),
                    endpoint: r.get(3),
                    model: r.get(4),
                    route: r.get(5),
                    provider: r.get(6),
                    key_id: r.get(7),
                    attempts: r.get::<_, i32>(8).max(0) as u32,
                    status: r.get::<_, i32>(9).clamp(0, i32::from(u16::MAX)) as u16,
                    error_class: r
                        .get::<_, Option<String>>(10)
                        .and_then(|c| ErrorClass::parse(&c)),
                    error_code: r
                        .get::<_, Option<String>>(11)
                        .and_then(|c| ErrorCode::parse(&c)),
                    latency_ms: r.get::<_, i64>(12).max(0) as u64,
                    ttfb_ms: r.get::<_, Option<i64>>(13).map(|v| v.max(0) as u64),
                    tokens_in: r.get::<_, Option<i64>>(14).map(|v| v.max(0) as u64),
                    tokens_out: r.get::<_, Option<i64>>(15).map(|v| v.max(0) as u64),
                    stream: r.get(16),
                    upstream_model: r.get(17),
                    tokens_cached: r.get::<_, Option<i64>>(18).map(|v| v.max(0) as u64),
                    cost_usd: r.get(19),
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
