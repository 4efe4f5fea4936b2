//! The `request_bodies` table: the request and response bodies of routes that opt in
//! (`keep_bodies_hours`), for the request inspector. Each body is cut to the route's
//! `keep_bodies_kb`, scrubbed of anything key-shaped on the writer thread (never on the
//! request's), and deleted when its time is up. Bodies stay in this replica's SQLite, also in
//! team mode.

use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::secrets::blank_secret_words;

/// A request's bodies as captured, waiting for the writer.
#[derive(Debug, Clone)]
pub struct BodiesToKeep {
    pub request_id: String,
    pub ts_ms: i64,
    pub expires_ms: i64,
    /// The client's request body, at most the route's limit.
    pub request: Bytes,
    /// The whole request body's size.
    pub request_bytes: u64,
    /// What the client was sent (a stream's events as sent), at most the route's limit.
    pub response: Vec<u8>,
    /// The whole response's size.
    pub response_bytes: u64,
}

/// A request's kept bodies, scrubbed.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptBodies {
    pub request: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub request_bytes: u64,
    /// Whether `request` is only the start of it.
    pub request_cut: bool,
    pub response: String,
    #[cfg_attr(test, ts(type = "number"))]
    pub response_bytes: u64,
    pub response_cut: bool,
    /// When they are deleted (Unix milliseconds).
    #[cfg_attr(test, ts(type = "number"))]
    pub expires_ms: i64,
}

/// `bytes` as text with every key-shaped word blanked (`***`).
pub fn scrub_body(bytes: &[u8]) -> String {
    blank_secret_words(&String::from_utf8_lossy(bytes))
}

/// Writes `bodies` (scrubbed) and deletes those whose time is up, in one transaction.
pub(super) fn write(c: &Connection, bodies: &[BodiesToKeep], now_ms: i64) -> rusqlite::Result<()> {
    let tx = c.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR REPLACE INTO request_bodies (request_id, ts_ms, expires_ms, request, request_bytes, request_cut, response, response_bytes, response_cut)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        for b in bodies {
            stmt.execute(params![
                b.request_id,
                b.ts_ms,
                b.expires_ms,
                scrub_body(&b.request),
                b.request_bytes as i64,
                (b.request.len() as u64) < b.request_bytes,
                scrub_body(&b.response),
                b.response_bytes as i64,
                (b.response.len() as u64) < b.response_bytes,
            ])?;
        }
    }
    tx.execute(
        "DELETE FROM request_bodies WHERE expires_ms <= ?1",
        params![now_ms],
    )?;
    tx.commit()
}

/// The kept bodies of `request_id`, unless their time is up.
pub(super) fn read(
    c: &Connection,
    request_id: &str,
    now_ms: i64,
) -> rusqlite::Result<Option<KeptBodies>> {
    c.query_row(
        "SELECT request, request_bytes, request_cut, response, response_bytes, response_cut, expires_ms FROM request_bodies
         WHERE request_id = ?1 AND expires_ms > ?2",
        params![request_id, now_ms],
        |r| {
            Ok(KeptBodies {
                request: r.get(0)?,
                request_bytes: r.get::<_, i64>(1)?.max(0) as u64,
                request_cut: r.get(2)?,
                response: r.get(3)?,
                response_bytes: r.get::<_, i64>(4)?.max(0) as u64,
                response_cut: r.get(5)?,
                expires_ms: r.get(6)?,
            })
        },
    )
    .optional()
}
