//! Conversations of emulated Responses API responses, for `previous_response_id` on upstreams
//! that have no Responses API. Each row holds the input items a response saw and the output
//! items it produced, as the client would send them back; rows older than
//! [`RETENTION_MS`] are neither returned nor kept.

use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::{Store, StoreError};

/// How long an emulated response can be continued: 30 days, as OpenAI keeps stored responses.
pub const RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;

/// Where emulated Responses conversations are kept. In-process: [`Store`] (SQLite).
///
/// A shared implementation must make a saved conversation readable on every replica before
/// `save_response` returns (a client sends its next turn the moment it has the id, possibly to
/// another replica); retention is [`RETENTION_MS`]. When it is unreachable, saving logs and
/// loading answers `invalid_request` ("not found") for that turn.
pub trait Conversations: Send + Sync {
    /// Stores the conversation items of response `id` (synchronously: the client may continue
    /// it the moment it has the id).
    fn save_response(&self, id: &str, items: &Value, now_ms: i64) -> Result<(), StoreError>;
    /// The conversation items of response `id`, if it exists and is within retention.
    fn load_response(&self, id: &str, now_ms: i64) -> Result<Option<Value>, StoreError>;
}

impl Conversations for Store {
    fn save_response(&self, id: &str, items: &Value, now_ms: i64) -> Result<(), StoreError> {
        let text = items.to_string();
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO responses (id, created_ms, items) VALUES (?1, ?2, ?3)",
                params![id, now_ms, text],
            )?;
            // Pruning rides on writes; the index keeps it cheap.
            c.execute(
                "DELETE FROM responses WHERE created_ms < ?1",
                params![now_ms - RETENTION_MS],
            )
            .map(|_| ())
        })
    }

    fn load_response(&self, id: &str, now_ms: i64) -> Result<Option<Value>, StoreError> {
        let text: Option<String> = self.with(|c| {
            c.query_row(
                "SELECT items FROM responses WHERE id = ?1 AND created_ms >= ?2",
                params![id, now_ms - RETENTION_MS],
                |r| r.get(0),
            )
            .optional()
        })?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }
}
