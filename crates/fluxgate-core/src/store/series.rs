//! Time series of the request log for the console's charts: requests that succeeded and
//! failed, tokens and spend per time bucket, over the last hour (minutes, read from the
//! requests themselves), day (hours), week (6-hour buckets) or month (UTC days), read from
//! `usage_hours` (one row per hour, route, provider, key and outcome, written with each batch
//! of records), so a month is a few thousand rows however many requests it held.

use rusqlite::{params_from_iter, types::Value, Connection};
use serde::{Deserialize, Serialize};

/// How far back a series goes, and so how wide its buckets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum Span {
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
    #[serde(rename = "30d")]
    Month,
}

impl Span {
    /// `(bucket width in ms, number of buckets)`.
    pub fn buckets(self) -> (i64, usize) {
        match self {
            Span::Hour => (60_000, 60),
            Span::Day => (3_600_000, 24),
            Span::Week => (6 * 3_600_000, 28),
            Span::Month => (86_400_000, 30),
        }
    }

    pub fn parse(s: &str) -> Option<Span> {
        match s {
            "1h" => Some(Span::Hour),
            "24h" => Some(Span::Day),
            "7d" => Some(Span::Week),
            "30d" => Some(Span::Month),
            _ => None,
        }
    }
}

/// One bucket of a series.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Bucket {
    /// Where the bucket starts (Unix milliseconds).
    #[cfg_attr(test, ts(type = "number"))]
    pub t_ms: i64,
    #[cfg_attr(test, ts(type = "number"))]
    pub ok: i64,
    #[cfg_attr(test, ts(type = "number"))]
    pub failed: i64,
    #[cfg_attr(test, ts(type = "number"))]
    pub tokens_in: i64,
    #[cfg_attr(test, ts(type = "number"))]
    pub tokens_out: i64,
    pub cost_usd: f64,
}

/// What a series covers: a span and, optionally, one route, provider or key.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesFilter {
    pub route: Option<String>,
    pub provider: Option<String>,
    pub key: Option<String>,
}

/// The first bucket's start: buckets end at the bucket that holds `now_ms`.
pub fn first_bucket(span: Span, now_ms: i64) -> i64 {
    let (width, n) = span.buckets();
    (now_ms.div_euclid(width) - n as i64 + 1) * width
}

/// Empty buckets for `span` ending now, to be filled by [`fill`].
fn empty(span: Span, now_ms: i64) -> Vec<Bucket> {
    let (width, n) = span.buckets();
    let start = first_bucket(span, now_ms);
    (0..n)
        .map(|i| Bucket {
            t_ms: start + i as i64 * width,
            ..Bucket::default()
        })
        .collect()
}

/// The buckets of `span` ending at `now_ms` holding `rows`: (start of a row's time, failed or
/// not, (requests, input tokens, output tokens, cost)).
pub(crate) fn from_rows(
    span: Span,
    now_ms: i64,
    rows: impl IntoIterator<Item = (i64, bool, (i64, i64, i64, f64))>,
) -> Vec<Bucket> {
    let (width, _) = span.buckets();
    let mut out = empty(span, now_ms);
    for (at, failed, counts) in rows {
        fill(&mut out, width, at, failed, counts);
    }
    out
}

/// Adds one row (`at_ms`, failed or not, counts) to the bucket that holds it.
fn fill(out: &mut [Bucket], width: i64, at_ms: i64, failed: bool, row: (i64, i64, i64, f64)) {
    let Some(first) = out.first().map(|b| b.t_ms) else {
        return;
    };
    let i = (at_ms - first).div_euclid(width);
    let Some(b) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) else {
        return;
    };
    if failed {
        b.failed += row.0;
    } else {
        b.ok += row.0;
    }
    b.tokens_in += row.1;
    b.tokens_out += row.2;
    b.cost_usd += row.3;
}

/// ` AND col = ?N` for each filter set, and their values.
fn filters(f: &SeriesFilter, mut n: usize, null_as_empty: bool) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut args = Vec::new();
    for (col, v) in [
        ("route", &f.route),
        ("provider", &f.provider),
        ("key_id", &f.key),
    ] {
        if let Some(v) = v {
            n += 1;
            if null_as_empty {
                sql += &format!(" AND {col} = ?{n}");
            } else {
                sql += &format!(" AND COALESCE({col}, '') = ?{n}");
            }
            args.push(Value::Text(v.clone()));
        }
    }
    (sql, args)
}

/// The series of `span` ending at `now_ms`, from SQLite.
pub(super) fn read(
    c: &Connection,
    span: Span,
    f: &SeriesFilter,
    now_ms: i64,
    lag_ms: i64,
) -> rusqlite::Result<Vec<Bucket>> {
    let (width, _) = span.buckets();
    let start = first_bucket(span, now_ms);
    let rows_of = |sql: &str, args: Vec<Value>, hours: bool| {
        let mut stmt = c.prepare(sql)?;
        let rows = stmt.query_map(params_from_iter(args), |r| {
            let at: i64 = r.get(0)?;
            Ok((
                if hours { at * 3_600_000 } else { at },
                r.get::<_, bool>(1)?,
                (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
            ))
        })?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
    };
    if span == Span::Hour {
        // Minutes: the last hour's requests themselves (found by rowid, see `first_row_since`).
        let first = super::first_row_since(c, start - lag_ms)?;
        let (more, mut args) = filters(f, 2, false);
        args.insert(0, Value::Integer(first));
        args.insert(0, Value::Integer(start));
        let sql = format!(
            "SELECT ts_ms / {width} * {width}, (status >= 400 OR error_code IS NOT NULL), COUNT(*), \
             COALESCE(SUM(tokens_in), 0), COALESCE(SUM(tokens_out), 0), COALESCE(SUM(cost_usd), 0.0) \
             FROM requests WHERE ts_ms >= ?1 AND id >= ?2{more} GROUP BY 1, 2"
        );
        return Ok(from_rows(span, now_ms, rows_of(&sql, args, false)?));
    }
    let (more, mut args) = filters(f, 1, true);
    args.insert(0, Value::Integer(start.div_euclid(3_600_000)));
    let sql = format!(
        "SELECT hour, failed, SUM(requests), SUM(tokens_in), SUM(tokens_out), SUM(cost_usd) \
         FROM usage_hours WHERE hour >= ?1{more} GROUP BY hour, failed"
    );
    Ok(from_rows(span, now_ms, rows_of(&sql, args, true)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_end_with_the_one_that_holds_now_and_rows_land_in_theirs() {
        let now = 10 * 86_400_000 + 5 * 3_600_000 + 17 * 60_000 + 5_000;
        let day = empty(Span::Day, now);
        assert_eq!(day.len(), 24);
        assert_eq!(day[23].t_ms, 10 * 86_400_000 + 5 * 3_600_000);
        let month = empty(Span::Month, now);
        assert_eq!(month[29].t_ms, 10 * 86_400_000, "UTC days");
        let mut hour = empty(Span::Hour, now);
        fill(&mut hour, 60_000, now - 1_000, false, (2, 10, 5, 0.5));
        fill(&mut hour, 60_000, now - 60 * 60_000, true, (9, 0, 0, 0.0));
        assert_eq!(
            (hour[59].ok, hour[59].tokens_in, hour[59].cost_usd),
            (2, 10, 0.5)
        );
        assert!(
            hour.iter().all(|b| b.failed == 0),
            "a row before the first bucket is left out"
        );
        assert_eq!(Span::parse("7d"), Some(Span::Week));
        assert_eq!(Span::parse("2w"), None);
    }
}
