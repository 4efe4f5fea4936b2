//! Where API keys live, and the only place their values are read.
//!
//! A key's value exists in exactly two places at run time: the [`SecretValue`] handed out here
//! and the outbound request header. `SecretValue` prints `***` in `Debug` and `Display` and
//! has no `Serialize`, so it cannot reach a log line, SQLite or an API response by accident.
//! Backends: the OS keychain (`keyring` with the Secret Service on Linux), `env:NAME`,
//! `file:PATH`, and an in-memory store for tests. There is no plaintext fallback: when the
//! keychain is locked or missing, resolution fails with a typed error.

mod keychain;
mod memory;
mod redact;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;

pub use keychain::KeychainStore;
pub use memory::MemoryStore;
pub use redact::{blank_secret_words, looks_like_secret, Redactor};

/// The keychain service name under which every Fluxgate key is stored.
pub const KEYCHAIN_SERVICE: &str = "fluxgate";

/// A secret string. It never prints its value.
#[derive(Clone)]
pub struct SecretValue(Arc<SecretInner>);

struct SecretInner {
    value: String,
    /// Built on first use and kept with the cached value: what blanks this secret out of text
    /// an upstream sends back.
    redactor: std::sync::OnceLock<Redactor>,
}

impl PartialEq for SecretValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.value == other.0.value
    }
}

impl Eq for SecretValue {}

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(SecretInner {
            value: value.into(),
            redactor: std::sync::OnceLock::new(),
        }))
    }

    /// The raw value, for building the outbound auth header and nothing else.
    pub fn expose(&self) -> &str {
        &self.0.value
    }

    /// What blanks this secret out of text (see [`Redactor`]).
    pub fn redactor(&self) -> &Redactor {
        self.0.redactor.get_or_init(|| Redactor::new(&self.0.value))
    }

    /// A label safe to show: the last four characters at most.
    pub fn hint(&self) -> String {
        let chars: Vec<char> = self.0.value.chars().collect();
        if chars.len() < 12 {
            return "…".to_string();
        }
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("…{tail}")
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where the config says a key's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// The OS keychain, service [`KEYCHAIN_SERVICE`], account `provider/key_id`.
    Keychain,
    /// An environment variable.
    Env(String),
    /// A file whose whole content (trimmed) is the key.
    File(PathBuf),
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Keychain => f.write_str("keychain"),
            SecretRef::Env(name) => write!(f, "env:{name}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// Why a secret could not be read or written. Messages never contain secret values.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("no secret stored for {0}; store one with `fluxgate keys set {0}`")]
    NotFound(String),
    #[error("environment variable {0} is not set or is empty")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("the OS keychain is locked; unlock it (log in to the desktop session) and try again")]
    KeychainLocked,
    #[error("the OS keychain is unavailable: {0}")]
    KeychainUnavailable(String),
    #[error("the OS keychain did not answer within {0} s")]
    KeychainTimeout(u64),
    #[error("this secret is read-only here: {0}")]
    ReadOnly(String),
}

impl SecretError {
    /// Whether the failure is the keychain's rather than the key's.
    pub fn is_keychain(&self) -> bool {
        matches!(
            self,
            SecretError::KeychainLocked
                | SecretError::KeychainUnavailable(_)
                | SecretError::KeychainTimeout(_)
        )
    }
}

/// A store of secrets addressed by account name (`provider/key_id`).
pub trait SecretStore: Send + Sync {
    fn get(&self, account: &str) -> Result<SecretValue, SecretError>;
    fn set(&self, account: &str, value: &SecretValue) -> Result<(), SecretError>;
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// A short name for messages (`keychain`, `memory`).
    fn name(&self) -> &'static str;
}

/// Resolves [`SecretRef`]s to values, caching them in memory.
///
/// The keychain backend is built lazily: a config that names no keychain secret never touches
/// the keychain, so headless servers without one work.
pub struct Secrets {
    keychain: Mutex<Option<Arc<dyn SecretStore>>>,
    make_keychain: Box<dyn Fn() -> Result<Arc<dyn SecretStore>, SecretError> + Send + Sync>,
    cache: Mutex<HashMap<String, SecretValue>>,
}

impl Secrets {
    /// Secrets backed by the real OS keychain.
    pub fn system() -> Self {
        Self {
            keychain: Mutex::new(None),
            make_keychain: Box::new(|| {
                KeychainStore::new().map(|k| Arc::new(k) as Arc<dyn SecretStore>)
            }),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Secrets backed by the given store in place of the keychain (tests, embedders).
    pub fn with_store(store: Arc<dyn SecretStore>) -> Self {
        Self {
            keychain: Mutex::new(Some(store)),
            make_keychain: Box::new(|| {
                Err(SecretError::KeychainUnavailable(
                    "no keychain configured".into(),
                ))
            }),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The keychain backend, creating it on first use.
    pub fn keychain(&self) -> Result<Arc<dyn SecretStore>, SecretError> {
        let mut slot = self.keychain.lock();
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store = (self.make_keychain)()?;
        *slot = Some(store.clone());
        Ok(store)
    }

    /// The value for `account` (`provider/key_id`) according to `reference`.
    pub fn resolve(
        &self,
        account: &str,
        reference: &SecretRef,
    ) -> Result<SecretValue, SecretError> {
        if let Some(v) = self.cache.lock().get(account) {
            return Ok(v.clone());
        }
        let value = match reference {
            SecretRef::Keychain => self.keychain()?.get(account)?,
            SecretRef::Env(name) => match std::env::var(name) {
                Ok(v) if !v.trim().is_empty() => SecretValue::new(v.trim()),
                _ => return Err(SecretError::EnvMissing(name.clone())),
            },
            SecretRef::File(path) => match std::fs::read_to_string(path) {
                Ok(v) if !v.trim().is_empty() => SecretValue::new(v.trim()),
                Ok(_) => {
                    return Err(SecretError::File {
                        path: path.display().to_string(),
                        reason: "the file is empty".into(),
                    })
                }
                Err(e) => {
                    return Err(SecretError::File {
                        path: path.display().to_string(),
                        reason: e.kind().to_string(),
                    })
                }
            },
        };
        self.cache.lock().insert(account.to_string(), value.clone());
        Ok(value)
    }

    /// Forgets a cached value so the next use reads the backend again (after `keys set`, or
    /// when the upstream rejected the key).
    pub fn invalidate(&self, account: &str) {
        self.cache.lock().remove(account);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_never_prints() {
        let v = SecretValue::new("sk-canary-0123456789abcdef");
        assert_eq!(format!("{v:?}"), "***");
        assert_eq!(format!("{v}"), "***");
        assert_eq!(v.hint(), "…cdef");
        assert_eq!(SecretValue::new("short").hint(), "…");
    }

    #[test]
    fn env_and_file_references_resolve() {
        let secrets = Secrets::with_store(Arc::new(MemoryStore::default()));
        std::env::set_var("FLUXGATE_TEST_SECRET_ENV", " sk-env-value ");
        let v = secrets
            .resolve("p/a", &SecretRef::Env("FLUXGATE_TEST_SECRET_ENV".into()))
            .expect("env");
        assert_eq!(v.expose(), "sk-env-value");
        let err = secrets
            .resolve("p/b", &SecretRef::Env("FLUXGATE_TEST_SECRET_UNSET".into()))
            .expect_err("unset");
        assert_eq!(
            err,
            SecretError::EnvMissing("FLUXGATE_TEST_SECRET_UNSET".into())
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        std::fs::write(&path, "sk-file-value\n").expect("write");
        let v = secrets
            .resolve("p/c", &SecretRef::File(path.clone()))
            .expect("file");
        assert_eq!(v.expose(), "sk-file-value");
        std::fs::write(&path, "").expect("write");
        secrets.invalidate("p/c");
        assert!(matches!(
            secrets.resolve("p/c", &SecretRef::File(path)),
            Err(SecretError::File { .. })
        ));
    }

    #[test]
    fn keychain_reference_uses_the_store_and_caches() {
        let store = Arc::new(MemoryStore::default());
        let secrets = Secrets::with_store(store.clone());
        assert!(matches!(
            secrets.resolve("p/a", &SecretRef::Keychain),
            Err(SecretError::NotFound(_))
        ));
        store.set("p/a", &SecretValue::new("sk-1")).expect("set");
        assert_eq!(
            secrets
                .resolve("p/a", &SecretRef::Keychain)
                .expect("get")
                .expose(),
            "sk-1"
        );
        store.set("p/a", &SecretValue::new("sk-2")).expect("set");
        assert_eq!(
            secrets
                .resolve("p/a", &SecretRef::Keychain)
                .expect("cached")
                .expose(),
            "sk-1"
        );
        secrets.invalidate("p/a");
        assert_eq!(
            secrets
                .resolve("p/a", &SecretRef::Keychain)
                .expect("fresh")
                .expose(),
            "sk-2"
        );
    }
}
