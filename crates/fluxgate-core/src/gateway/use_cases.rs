//! What a user can do to a running Fluxgate, whoever asks: the admin API (and so the
//! console), the tray menu and the CLI call these, and none re-implements them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::Gateway;
use crate::config::edit::{ConfigDoc, EditError};
use crate::exec::HttpRetester;
use crate::health::{ErrorClass, Retester};
use crate::vocab::KeyRef;

/// Why a config edit was not made (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum EditConfigError {
    /// Started without a config file it may edit (detected from the environment).
    #[error("this Fluxgate was started without a config file it may edit")]
    ReadOnly,
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The edit's worker thread failed.
    #[error("the edit did not finish: {0}")]
    Interrupted(String),
}

/// No key of that name is configured.
#[derive(Debug, thiserror::Error)]
#[error("no key {0}")]
pub struct NoSuchKey(pub KeyRef);

/// How a key's test went.
#[derive(Debug, Clone, serde::Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct KeyTest {
    pub key: String,
    pub ok: bool,
    #[cfg_attr(test, ts(type = "number"))]
    pub ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub class: Option<ErrorClass>,
    /// On a failure: the upstream's status, `null` when it gave none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub status: Option<Option<u16>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(test, ts(optional))]
    pub message: Option<String>,
}

impl Gateway {
    /// Makes config edits write to `path` (once; later calls are ignored).
    pub fn set_config_file(&self, path: PathBuf) {
        let _ = self.config_file.set(path);
    }

    /// The file config edits are written to, when there is one.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.get().map(PathBuf::as_path)
    }

    /// Opens the config file, applies `f`, validates the result as a whole config, writes it
    /// atomically and applies it now. Edits are serialised; the file work runs off the async
    /// runtime.
    pub async fn edit_config<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut ConfigDoc) -> Result<T, EditError> + Send + 'static,
    ) -> Result<T, EditConfigError> {
        let path = self
            .config_file()
            .ok_or(EditConfigError::ReadOnly)?
            .to_path_buf();
        let _one_at_a_time = self.edit_lock.lock().await;
        let running = self.config();
        let (out, config) =
            tokio::task::spawn_blocking(move || ConfigDoc::edit_file(&path, Some(&running), f))
                .await
                .map_err(|e| EditConfigError::Interrupted(e.to_string()))??;
        self.apply(config);
        Ok(out)
    }

    /// [`Gateway::edit_config`] from a thread that is not on the async runtime (the tray).
    pub fn edit_config_blocking<T>(
        &self,
        f: impl FnOnce(&mut ConfigDoc) -> Result<T, EditError>,
    ) -> Result<T, EditConfigError> {
        let path = self.config_file().ok_or(EditConfigError::ReadOnly)?;
        let _one_at_a_time = self.edit_lock.blocking_lock();
        let (out, config) = ConfigDoc::edit_file(path, Some(&self.config()), f)?;
        self.apply(config);
        Ok(out)
    }

    /// Switches a key on or off in the config.
    pub async fn set_key_enabled(
        self: &Arc<Self>,
        key: &KeyRef,
        on: bool,
    ) -> Result<(), EditConfigError> {
        let k = key.clone();
        self.edit_config(move |doc| doc.set_key_enabled(&k.provider, &k.key_id, on))
            .await
    }

    /// Switches a provider on or off in the config (from a thread off the runtime).
    pub fn set_provider_enabled_blocking(
        &self,
        provider: &str,
        on: bool,
    ) -> Result<(), EditConfigError> {
        self.edit_config_blocking(|doc| doc.set_provider_enabled(provider, on))
    }

    /// Puts a key back in rotation now (its secret is read again on next use).
    pub fn revive_key(&self, key: &KeyRef) -> Result<(), NoSuchKey> {
        let account = key.account();
        if self.health.state(&account).is_none() {
            return Err(NoSuchKey(key.clone()));
        }
        self.executor.secrets().invalidate(&account);
        self.health.revive(&account);
        Ok(())
    }

    /// Runs the key's retest now (its secret read again) and records the outcome in its
    /// health, as a scheduled retest would.
    pub async fn test_key(self: &Arc<Self>, key: &KeyRef) -> Result<KeyTest, NoSuchKey> {
        let account = key.account();
        if self.health.state(&account).is_none() {
            return Err(NoSuchKey(key.clone()));
        }
        self.executor.secrets().invalidate(&account);
        let retester = HttpRetester::new(Arc::downgrade(&self.executor));
        let started = crate::clock::Instant::now();
        let result = retester.retest(account.clone(), None).await;
        let ms = started.elapsed().as_millis() as u64;
        Ok(match result {
            Ok(()) => {
                self.health.report_success(&account);
                KeyTest {
                    key: account,
                    ok: true,
                    ms,
                    class: None,
                    status: None,
                    message: None,
                }
            }
            Err(f) => {
                self.health.report_failure(&account, &f);
                KeyTest {
                    key: account,
                    ok: false,
                    ms,
                    class: Some(f.class),
                    status: Some(f.status),
                    message: Some(f.message),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::secrets::{MemoryStore, Secrets};

    const CONFIG: &str = r#"# my keys
[providers.p]
kind = "openai-compatible"
base_url = "https://p.test/v1"
keys = [{ id = "a" }]
"#;

    fn gateway(dir: &Path) -> Arc<Gateway> {
        let file = dir.join("config.toml");
        std::fs::write(&file, CONFIG).expect("write");
        let config = Config::load(&file).expect("config");
        let secrets = Secrets::with_store(Arc::new(MemoryStore::default()));
        Arc::new(Gateway::open(config, dir, secrets).expect("gateway"))
    }

    #[tokio::test]
    async fn edits_need_a_config_file_and_keep_its_comments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gateway(dir.path());
        let key = KeyRef::new("p", "a");
        assert!(matches!(
            g.set_key_enabled(&key, false).await,
            Err(EditConfigError::ReadOnly)
        ));
        g.set_config_file(dir.path().join("config.toml"));
        g.set_key_enabled(&key, false).await.expect("edit");
        let text = std::fs::read_to_string(dir.path().join("config.toml")).expect("read");
        assert!(text.starts_with("# my keys"), "{text}");
        assert!(!g.config().providers[0].keys[0].enabled, "applied now");
        let unknown = KeyRef::new("p", "zz");
        assert!(matches!(
            g.set_key_enabled(&unknown, false).await,
            Err(EditConfigError::Edit(_))
        ));
        let same = std::fs::read_to_string(dir.path().join("config.toml")).expect("read");
        assert_eq!(same, text, "a refused edit writes nothing");
        let off = g.clone();
        tokio::task::spawn_blocking(move || off.set_provider_enabled_blocking("p", false))
            .await
            .expect("join")
            .expect("provider edit off the runtime");
        assert!(!g.config().providers[0].enabled);
        g.close();
    }

    #[tokio::test]
    async fn keys_that_do_not_exist_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = gateway(dir.path());
        let missing = KeyRef::new("p", "zz");
        assert_eq!(
            g.revive_key(&missing).map_err(|e| e.to_string()),
            Err("no key p/zz".to_string())
        );
        assert!(g.test_key(&missing).await.is_err());
        g.revive_key(&KeyRef::new("p", "a")).expect("known key");
        g.close();
    }
}
