//! The `client_tokens` table: salted hashes of client tokens, never the tokens.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub name: String,
    pub token_id: String,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub created_ms: i64,
}

/// Where client tokens (their salted hashes) are kept. In-process: [`Store`] (SQLite).
///
/// A shared implementation must make `insert_token` atomic on the name (two replicas cannot
/// create the same name) and make a revocation visible to `token_by_id` on every replica
/// within a second ([`crate::tokens::ClientTokens`] caches a positive check for at most 10 s,
/// and drops it at once when [`TokenRows::generation`] moves). When it is unreachable, checks
/// may answer from what it knew last.
pub trait TokenRows: Send + Sync {
    /// Adds a token; `false` when the name is taken.
    fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError>;
    /// Every token, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError>;
    fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError>;
    /// Removes a token; `false` when there was none of that name.
    fn revoke_token(&self, name: &str) -> Result<bool, StoreError>;
    /// A number that changes whenever a token may have gone (revoked anywhere): cached checks
    /// made under another generation are not trusted. In-process: always 0 (a revocation here
    /// clears the cache itself).
    fn generation(&self) -> u64 {
        0
    }
}

impl TokenRows for Store {
    fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO client_tokens (name, token_id, salt, hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.name, row.token_id, row.salt, row.hash, row.created_ms],
            )?;
            Ok(n == 1)
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, token_id, salt, hash, created_ms FROM client_tokens ORDER BY created_ms, name")?;
            let rows = stmt.query_map([], |r| {
                Ok(TokenRow { name: r.get(0)?, token_id: r.get(1)?, salt: r.get(2)?, hash: r.get(3)?, created_ms: r.get(4)? })
            })?;
            rows.collect()
        })
    }

    fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT name, token_id, salt, hash, created_ms FROM client_tokens WHERE token_id = ?1", params![token_id], |r| {
                Ok(TokenRow { name: r.get(0)?, token_id: r.get(1)?, salt: r.get(2)?, hash: r.get(3)?, created_ms: r.get(4)? })
            })
            .optional()
        })
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute("DELETE FROM client_tokens WHERE name = ?1", params![name])? == 1)
        })
    }
}
