//! Client and admin tokens.
//!
//! A client token is `fgk_<id>_<secret>` with a 256-bit secret; SQLite keeps only the id, a
//! random salt and SHA-256(salt ‖ secret), so the token is shown once, when it is made. The
//! admin token is a separate 256-bit value in `DATA_DIR/admin-token`, readable by the owner
//! only. Comparisons are constant-time. Every check fails closed: an unreadable token file or
//! a store error refuses the request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::store::{StoreError, TokenRow, TokenRows};

pub const CLIENT_PREFIX: &str = "fgk_";
const ADMIN_PREFIX: &str = "fga_";
pub const ADMIN_TOKEN_FILE: &str = "admin-token";
/// How long a verified token is trusted before the database is asked again (revocations made
/// by another process take effect within this time).
const CACHE_TTL: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token names use letters, digits, `-`, `_` and `.` (1 to 64 characters)")]
    InvalidName,
    #[error("a token named `{0}` exists already; revoke it first or pick another name")]
    NameTaken(String),
    #[error("no token named `{0}`")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot use the admin token file {path}: {reason}")]
    AdminFile { path: String, reason: String },
}

pub use crate::store::TokenLimits;

impl TokenLimits {
    /// Limits from what a user asked for: an expiry `days` from `now_ms`, and allow-lists
    /// that must name routes and providers of `config` (a typo would otherwise lock the
    /// token out silently).
    pub fn asked(
        config: &crate::config::Config,
        now_ms: i64,
        days: Option<u32>,
        routes: Vec<String>,
        providers: Vec<String>,
    ) -> Result<TokenLimits, String> {
        let route_names: Vec<&str> = config.routes.iter().map(|x| x.name.as_str()).collect();
        let provider_names: Vec<&str> = config.providers.iter().map(|x| x.name.as_str()).collect();
        named_in("route", &routes, &route_names)?;
        named_in("provider", &providers, &provider_names)?;
        let expires_ms = match days {
            Some(0) => return Err("an expiry must be at least one day".into()),
            Some(d) => Some(now_ms + i64::from(d) * 86_400_000),
            None => None,
        };
        Ok(TokenLimits {
            expires_ms,
            routes,
            providers,
            nothing: false,
        })
    }
}

/// Every one of `asked` is among `known` (or an error naming the first that is not).
fn named_in(what: &str, asked: &[String], known: &[&str]) -> Result<(), String> {
    match asked.iter().find(|a| !known.contains(&a.as_str())) {
        None => Ok(()),
        Some(a) => Err(format!(
            "no {what} named `{a}` ({what}s: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        )),
    }
}

/// A Unix time in milliseconds as `YYYY-MM-DD HH:MM UTC` (for messages).
pub fn utc_minute(ms: i64) -> String {
    let (y, m, d) = crate::record::civil_from_days(ms.div_euclid(86_400_000));
    let minute = ms.rem_euclid(86_400_000) / 60_000;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        minute / 60,
        minute % 60
    )
}

/// A verified client: its token's name and what it may do (`None`: everything).
#[derive(Debug, Clone)]
pub struct Client {
    pub name: String,
    pub limits: Option<std::sync::Arc<TokenLimits>>,
}

/// Why a presented client token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// Not a token Fluxgate made, or one revoked.
    Unknown,
    /// A real token past its expiry.
    Expired { name: String, expires_ms: i64 },
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

fn digest(salt: &[u8], secret: &str) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(secret.as_bytes());
    h.finalize().to_vec()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Metadata about a client token (never the token).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    pub name: String,
    pub created_ms: i64,
    /// When this Fluxgate last let a request in with it (none since it started).
    pub last_used_ms: Option<i64>,
    /// Expiry and allow-lists (fields absent: none).
    #[serde(flatten)]
    pub limits: TokenLimits,
}

/// Issues and verifies client tokens.
pub struct ClientTokens {
    store: std::sync::Arc<dyn TokenRows>,
    /// Checked tokens: the client, when, and the store's generation then.
    cache: RwLock<HashMap<String, (Client, Instant, u64)>>,
    /// When each token (by name) last let a request in, since start.
    last_used: RwLock<HashMap<String, std::sync::Arc<std::sync::atomic::AtomicI64>>>,
}

impl ClientTokens {
    /// Client tokens kept in the local SQLite store.
    pub fn in_store(store: crate::store::Store) -> Self {
        Self::new(std::sync::Arc::new(store))
    }

    pub fn new(store: std::sync::Arc<dyn TokenRows>) -> Self {
        ClientTokens {
            store,
            cache: RwLock::new(HashMap::new()),
            last_used: RwLock::new(HashMap::new()),
        }
    }

    /// Makes a token for everything and returns it; this is the only time it can be seen.
    pub fn create(&self, name: &str) -> Result<String, TokenError> {
        self.create_with(name, TokenLimits::default())
    }

    /// Makes a token with `limits` and returns it; this is the only time it can be seen.
    pub fn create_with(&self, name: &str, limits: TokenLimits) -> Result<String, TokenError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(TokenError::InvalidName);
        }
        let id = random_hex(6);
        let secret = random_hex(32);
        let salt: [u8; 16] = rand::rng().random();
        let created_ms = crate::clock::now_ms();
        let row = TokenRow {
            name: name.to_string(),
            token_id: id.clone(),
            salt: salt.to_vec(),
            hash: digest(&salt, &secret),
            created_ms,
            limits,
        };
        if !self.store.insert_token(&row)? {
            return Err(TokenError::NameTaken(name.to_string()));
        }
        Ok(format!("{CLIENT_PREFIX}{id}_{secret}"))
    }

    /// Makes a token named `base`, or `base-2`, `base-3`, ... when taken (client setup makes
    /// one per tool). Returns (name, token).
    pub fn create_numbered(&self, base: &str) -> Result<(String, String), TokenError> {
        let taken: Vec<String> = self.list()?.into_iter().map(|t| t.name).collect();
        let mut name = base.to_string();
        let mut n = 2;
        while taken.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.create(&name).map(|t| (name, t))
    }

    pub fn list(&self) -> Result<Vec<TokenInfo>, TokenError> {
        Ok(self
            .store
            .tokens()?
            .into_iter()
            .map(|r| TokenInfo {
                last_used_ms: self
                    .last_used
                    .read()
                    .get(&r.name)
                    .map(|t| t.load(std::sync::atomic::Ordering::Relaxed)),
                name: r.name,
                created_ms: r.created_ms,
                limits: r.limits,
            })
            .collect())
    }

    /// Notes that `name` let a request in now (one atomic store once the name is known).
    fn used(&self, name: &str) {
        let now = crate::clock::now_ms();
        if let Some(t) = self.last_used.read().get(name) {
            t.store(now, std::sync::atomic::Ordering::Relaxed);
            return;
        }
        self.last_used.write().insert(
            name.to_string(),
            std::sync::Arc::new(std::sync::atomic::AtomicI64::new(now)),
        );
    }

    pub fn revoke(&self, name: &str) -> Result<(), TokenError> {
        if !self.store.revoke_token(name)? {
            return Err(TokenError::NotFound(name.to_string()));
        }
        self.cache.write().clear();
        Ok(())
    }

    /// Whether any client token exists.
    pub fn any(&self) -> Result<bool, TokenError> {
        Ok(!self.store.tokens()?.is_empty())
    }

    /// The token's name when `presented` is a valid client token (and not expired).
    pub fn verify(&self, presented: &str) -> Option<String> {
        self.check(presented).ok().map(|c| c.name)
    }

    /// The client behind `presented`, or why it is refused.
    pub fn check(&self, presented: &str) -> Result<Client, TokenRefusal> {
        let client = self.lookup(presented).ok_or(TokenRefusal::Unknown)?;
        match client.limits.as_deref().and_then(|l| l.expires_ms) {
            Some(at) if crate::clock::now_ms() >= at => Err(TokenRefusal::Expired {
                name: client.name,
                expires_ms: at,
            }),
            _ => {
                self.used(&client.name);
                Ok(client)
            }
        }
    }

    fn lookup(&self, presented: &str) -> Option<Client> {
        let rest = presented.strip_prefix(CLIENT_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        if id.len() != 12 || secret.len() != 64 {
            return None;
        }
        // Keyed by the token itself: it is in memory for this request anyway, and hashing it
        // with SHA-256 on every request cost more than the rest of the auth check.
        let generation = self.store.generation();
        if let Some((client, at, g)) = self.cache.read().get(presented) {
            if at.elapsed() < CACHE_TTL && *g == generation {
                return Some(client.clone());
            }
        }
        let row = match self.store.token_by_id(id) {
            Ok(Some(row)) => row,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(error = %e, "cannot check a client token; refusing the request");
                return None;
            }
        };
        if !constant_time_eq(&digest(&row.salt, secret), &row.hash) {
            return None;
        }
        let client = Client {
            name: row.name,
            limits: (!row.limits.is_open()).then(|| std::sync::Arc::new(row.limits)),
        };
        self.cache.write().insert(
            presented.to_string(),
            (client.clone(), Instant::now(), generation),
        );
        Some(client)
    }
}

/// The admin token of a data directory.
pub struct AdminToken {
    value: Option<String>,
    path: PathBuf,
}

impl AdminToken {
    /// Reads the admin token, creating it (owner-only) on first run.
    pub fn load_or_create(data_dir: &Path) -> Result<AdminToken, TokenError> {
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        let err = |reason: String| TokenError::AdminFile {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            std::fs::create_dir_all(data_dir).map_err(|e| err(e.to_string()))?;
            let token = format!("{ADMIN_PREFIX}{}", random_hex(32));
            match crate::files::create_private(&path, token.as_bytes()) {
                Ok(()) => {}
                // Another process made it first: read theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(err(e.to_string())),
            }
        }
        let text = std::fs::read_to_string(&path).map_err(|e| err(e.to_string()))?;
        let value = text.trim().to_string();
        if !value.starts_with(ADMIN_PREFIX) || value.len() != ADMIN_PREFIX.len() + 64 {
            return Err(err(
                "the file does not hold a Fluxgate admin token; delete it to make a new one".into(),
            ));
        }
        Ok(AdminToken {
            value: Some(value),
            path,
        })
    }

    /// An admin token that accepts nothing (the file could not be read): fail closed.
    pub fn refuse_all(path: PathBuf) -> AdminToken {
        AdminToken { value: None, path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    pub fn verify(&self, presented: &str) -> bool {
        self.value
            .as_deref()
            .is_some_and(|v| constant_time_eq(v.as_bytes(), presented.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_verify_and_revoke() {
        let t = ClientTokens::new(std::sync::Arc::new(
            crate::store::Store::memory().expect("store"),
        ));
        let tok = t.create("laptop").expect("create");
        assert!(tok.starts_with("fgk_") && tok.len() == 4 + 12 + 1 + 64);
        assert_eq!(t.verify(&tok), Some("laptop".into()));
        assert_eq!(t.verify(&tok), Some("laptop".into()), "cached path");
        let mut wrong = tok.clone();
        wrong.pop();
        wrong.push(if tok.ends_with('0') { '1' } else { '0' });
        assert_eq!(t.verify(&wrong), None);
        assert_eq!(t.verify("sk-anything"), None);
        assert!(matches!(t.create("laptop"), Err(TokenError::NameTaken(_))));
        assert!(matches!(t.create("bad name"), Err(TokenError::InvalidName)));
        t.revoke("laptop").expect("revoke");
        assert_eq!(t.verify(&tok), None);
        assert!(matches!(t.revoke("laptop"), Err(TokenError::NotFound(_))));
    }

    #[test]
    fn admin_token_is_private_and_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = AdminToken::load_or_create(dir.path()).expect("create");
        let b = AdminToken::load_or_create(dir.path()).expect("load");
        assert_eq!(a.value(), b.value());
        let v = a.value().expect("value").to_string();
        assert!(a.verify(&v));
        assert!(!a.verify("fga_wrong"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path())
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(a.path(), "garbage").expect("write");
        assert!(AdminToken::load_or_create(dir.path()).is_err());
        assert!(!AdminToken::refuse_all(a.path().to_path_buf()).verify(&v));
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
