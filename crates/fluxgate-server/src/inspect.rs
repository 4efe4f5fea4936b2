//! The request inspector's API (admin token or console session): the request log filtered,
//! one request whole, and an export as JSON lines. In team mode with `[store] postgres` the
//! rows are the whole fleet's (`"source": "fleet"`); when PostgreSQL does not answer, this
//! replica's own (`"source": "local"`; its cursors are another numbering, so a follower that
//! sees the source change starts again from `head`).
//!
//! `GET /admin/api/requests?failed&route=R&provider=P&key=K&client=C&model=M&since_ms=T&limit=N`
//! lists the newest first (`before=SEQ` pages back); `after=SEQ` follows (oldest first). Every
//! answer carries `head`, the newest row's cursor whatever the filter, so a follower whose
//! filter matched nothing moves on without scanning the same rows again.

use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::record::RequestRecord;
use fluxgate_core::store::RequestQuery;
use serde_json::json;

use crate::admin_error::{error, AdminError};
use crate::state::AppState;

/// The most rows one export writes.
pub const EXPORT_MAX: usize = 100_000;

/// Where rows were read from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Fleet,
    Local,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Fleet => "fleet",
            Source::Local => "local",
        }
    }
}

/// The query string as a [`RequestQuery`], or a 400 that names what is wrong.
#[expect(clippy::result_large_err)] // a ready answer, built once on a bad request
fn parse(raw: Option<&str>) -> Result<RequestQuery, Response> {
    serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|e| {
        error(
            AdminError::InvalidRequest,
            format!(
                "{e}; filters are failed, retried, route, provider, key, client, model, \
                 request_id, since_ms, until_ms, after, before and limit"
            ),
        )
    })
}

/// The rows `q` selects and the newest cursor: the fleet's when it answers, else this
/// replica's.
async fn read(
    s: &AppState,
    q: &RequestQuery,
) -> Result<(Vec<RequestRecord>, i64, Source), Response> {
    if let Some(l) = &s.gateway.ledger {
        l.flush().await;
        if let (Ok(rows), Ok(head)) = (l.query(q).await, l.head().await) {
            return Ok((rows, head, Source::Fleet));
        }
    }
    let log = &s.gateway.log;
    match (log.query(q), log.head()) {
        (Ok(rows), Ok(head)) => Ok((rows, head, Source::Local)),
        (Err(e), _) | (_, Err(e)) => Err(error(AdminError::Internal, e)),
    }
}

/// `GET /admin/api/requests`: see the module's documentation.
pub async fn requests(State(s): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let q = match parse(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    match read(&s, &q).await {
        Ok((rows, head, source)) => Json(json!({
            "requests": rows,
            "head": head,
            "source": source.as_str(),
            "keeping_bodies": keeping_bodies(&s),
        }))
        .into_response(),
        Err(r) => r,
    }
}

/// The routes that keep bodies, and for how long and how much.
fn keeping_bodies(s: &AppState) -> Vec<serde_json::Value> {
    s.gateway
        .config()
        .routes
        .iter()
        .filter_map(|r| {
            let k = r.keep_bodies?;
            Some(json!({"route": r.name, "hours": k.hours, "max_bytes": k.max_bytes}))
        })
        .collect()
}

/// `GET /admin/api/requests/{request_id}`: one request with its attempts, and its bodies
/// where its route keeps them (`bodies`: null otherwise; they stay on the replica that
/// served the request).
pub async fn request(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let q = RequestQuery {
        request_id: Some(id.clone()),
        limit: Some(1),
        ..RequestQuery::default()
    };
    match read(&s, &q).await {
        Ok((rows, _, source)) => match rows.into_iter().next() {
            Some(r) => {
                let bodies = match s.gateway.log.bodies(&r.request_id) {
                    Ok(b) => b,
                    Err(e) => return error(AdminError::Internal, e),
                };
                Json(json!({"request": r, "bodies": bodies, "source": source.as_str()}))
                    .into_response()
            }
            None => error(
                AdminError::NotFound,
                format!("no request {id:?} in the log (it may be older than the log keeps)"),
            ),
        },
        Err(r) => r,
    }
}

/// `GET /admin/api/requests/export`: the rows the filters select (newest first, `limit`
/// rows, default 10 000, at most [`EXPORT_MAX`]) as JSON lines, one record per line.
pub async fn export(State(s): State<Arc<AppState>>, RawQuery(raw): RawQuery) -> Response {
    let mut q = match parse(raw.as_deref()) {
        Ok(q) => q,
        Err(r) => return r,
    };
    if q.after.is_some() {
        return error(
            AdminError::InvalidRequest,
            "an export reads back from the newest row: give `before`, not `after`",
        );
    }
    let want = q.limit.unwrap_or(10_000).clamp(1, EXPORT_MAX);
    let mut out = Vec::new();
    let mut written = 0;
    let mut source = None;
    while written < want {
        q.limit = Some((want - written).min(fluxgate_core::store::MAX_ROWS));
        let (rows, _, from) = match read(&s, &q).await {
            Ok(r) => r,
            Err(r) => return r,
        };
        if *source.get_or_insert(from) != from {
            return error(
                AdminError::SharedStoreUnavailable,
                "PostgreSQL stopped answering during the export; try again",
            );
        }
        let Some(last) = rows.last().and_then(|r| r.seq) else {
            break;
        };
        for r in &rows {
            if serde_json::to_writer(&mut out, r).is_ok() {
                out.push(b'\n');
            }
        }
        written += rows.len();
        q.before = Some(last);
    }
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"fluxgate-requests.jsonl\"",
            ),
        ],
        out,
    )
        .into_response()
}
