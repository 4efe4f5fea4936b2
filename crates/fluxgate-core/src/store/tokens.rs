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

impl Store {
    /// Adds a token; `false` when the name is taken.
    pub fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO client_tokens (name, token_id, salt, hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![row.name, row.token_id, row.salt, row.hash, row.created_ms],
            )?;
            Ok(n == 1)
        })
    }

    pub fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, token_id, salt, hash, created_ms FROM client_tokens ORDER BY created_ms, name")?;
            let rows = stmt.query_map([], |r| {
                Ok(TokenRow { name: r.get(0)?, token_id: r.get(1)?, salt: r.get(2)?, hash: r.get(3)?, created_ms: r.get(4)? })
            })?;
            rows.collect()
        })
    }

    pub fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT name, token_id, salt, hash, created_ms FROM client_tokens WHERE token_id = ?1", params![token_id], |r| {
                Ok(TokenRow { name: r.get(0)?, token_id: r.get(1)?, salt: r.get(2)?, hash: r.get(3)?, created_ms: r.get(4)? })
            })
            .optional()
        })
    }

    /// Removes a token; `false` when there was none of that name.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute("DELETE FROM client_tokens WHERE name = ?1", params![name])? == 1)
        })
    }
}
