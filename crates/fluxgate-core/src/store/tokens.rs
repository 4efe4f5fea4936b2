//! The `client_tokens` table: salted hashes of client tokens, never the tokens.

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// What a client token may do: until when, and which routes and providers (the team's
/// "virtual keys"). The default is a token for everything, forever.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenLimits {
    /// Unix milliseconds after which the token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    /// The routes it may use (by name, as matched); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<String>,
    /// The providers it may be served by; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Set only for limits that could not be read back: the token may do nothing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub nothing: bool,
}

impl TokenLimits {
    /// Whether the token may do everything, forever.
    pub fn is_open(&self) -> bool {
        *self == TokenLimits::default()
    }

    /// Limits that allow nothing (stored limits that cannot be read).
    pub fn nothing() -> Self {
        TokenLimits {
            nothing: true,
            ..TokenLimits::default()
        }
    }

    pub fn expired(&self, now_ms: i64) -> bool {
        self.expires_ms.is_some_and(|t| now_ms >= t)
    }

    pub fn permits_route(&self, route: &str) -> bool {
        !self.nothing && (self.routes.is_empty() || self.routes.iter().any(|r| r == route))
    }

    pub fn permits_provider(&self, provider: &str) -> bool {
        !self.nothing && (self.providers.is_empty() || self.providers.iter().any(|p| p == provider))
    }
}

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub name: String,
    pub token_id: String,
    pub salt: Vec<u8>,
    pub hash: Vec<u8>,
    pub created_ms: i64,
    /// Expiry and allow-lists (none: a token for everything, forever).
    pub limits: TokenLimits,
}

/// `limits` as stored: JSON, or NULL for none.
pub(crate) fn limits_text(l: &TokenLimits) -> Option<String> {
    (!l.is_open()).then(|| serde_json::to_string(l).unwrap_or_default())
}

/// `limits` read back; unreadable text is treated as a token for nothing (fails closed).
pub(crate) fn limits_from(text: Option<String>) -> TokenLimits {
    match text {
        None => TokenLimits::default(),
        Some(t) => serde_json::from_str(&t).unwrap_or_else(|_| TokenLimits::nothing()),
    }
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

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        name: r.get(0)?,
        token_id: r.get(1)?,
        salt: r.get(2)?,
        hash: r.get(3)?,
        created_ms: r.get(4)?,
        limits: limits_from(r.get(5)?),
    })
}

impl TokenRows for Store {
    fn insert_token(&self, row: &TokenRow) -> Result<bool, StoreError> {
        self.with(|c| {
            let n = c.execute(
                "INSERT OR IGNORE INTO client_tokens (name, token_id, salt, hash, created_ms, limits) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![row.name, row.token_id, row.salt, row.hash, row.created_ms, limits_text(&row.limits)],
            )?;
            Ok(n == 1)
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare("SELECT name, token_id, salt, hash, created_ms, limits FROM client_tokens ORDER BY created_ms, name")?;
            let rows = stmt.query_map([], row)?;
            rows.collect()
        })
    }

    fn token_by_id(&self, token_id: &str) -> Result<Option<TokenRow>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT name, token_id, salt, hash, created_ms, limits FROM client_tokens WHERE token_id = ?1", params![token_id], row)
            .optional()
        })
    }

    fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute("DELETE FROM client_tokens WHERE name = ?1", params![name])? == 1)
        })
    }
}
