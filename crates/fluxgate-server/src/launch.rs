//! Starting Fluxgate from options: the headless `fluxgate serve` and the desktop app both
//! come through here, so they read the same config, data directory and keychain the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fluxgate_core::config::{Config, ConfigError};
use fluxgate_core::gateway::{Gateway, OpenError};
use fluxgate_core::secrets::{KeychainStore, Secrets};
use fluxgate_core::store::StoreError;
use fluxgate_core::team::{LedgerError, TeamError};
use fluxgate_core::tokens::{AdminToken, TokenError};

use crate::serve::{serve_with, ServeHandle};

/// Where to read and write, and where to listen; `None` = the platform default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
}

/// A running router.
pub struct Started {
    pub handle: ServeHandle,
    pub gateway: Arc<Gateway>,
    /// The file the console and the tray edit (it may not exist yet).
    pub config_file: PathBuf,
    pub data_dir: PathBuf,
}

/// Why Fluxgate could not start; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot find a config directory; pass --config FILE")]
    NoConfigDir,
    #[error("cannot find a data directory; pass --data-dir DIR")]
    NoDataDir,
    #[error("config file {} does not exist", .0.display())]
    ConfigMissing(PathBuf),
    #[error("invalid config: {0}")]
    Config(#[from] ConfigError),
    #[error("{0} is not a loopback address; set `allow_lan = true` in the config to expose Fluxgate to the network")]
    NotLoopback(SocketAddr),
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Shared(#[from] TeamError),
    #[error("{0}")]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    AdminToken(#[from] TokenError),
    #[error("cannot listen on {addr}: {source} (is another Fluxgate running? pass --listen 127.0.0.1:PORT)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot serve: {0}")]
    Serve(std::io::Error),
}

impl From<OpenError> for LaunchError {
    fn from(e: OpenError) -> LaunchError {
        match e {
            OpenError::Store(e) => LaunchError::Store(e),
            OpenError::Team(e) => LaunchError::Shared(e),
            OpenError::Ledger(e) => LaunchError::Ledger(e),
        }
    }
}

impl From<LaunchError> for String {
    fn from(e: LaunchError) -> String {
        e.to_string()
    }
}

impl Options {
    pub fn config_path(&self) -> Result<PathBuf, LaunchError> {
        self.config
            .clone()
            .or_else(fluxgate_core::paths::default_config_file)
            .ok_or(LaunchError::NoConfigDir)
    }

    pub fn data_dir(&self) -> Result<PathBuf, LaunchError> {
        self.data_dir
            .clone()
            .or_else(fluxgate_core::paths::default_data_dir)
            .ok_or(LaunchError::NoDataDir)
    }

    /// The config file when it exists (an explicit `--config` must exist), else the
    /// environment-detected config; `listen` applied and checked.
    pub fn load_config(&self) -> Result<Config, LaunchError> {
        let path = self.config_path()?;
        if self.config.is_some() && !path.exists() {
            return Err(LaunchError::ConfigMissing(path));
        }
        let mut config = Config::load_or_detect(&path)?;
        if let Some(l) = self.listen {
            if !l.ip().is_loopback() && !config.allow_lan {
                return Err(LaunchError::NotLoopback(l));
            }
            config.listen = l;
        }
        Ok(config)
    }

    /// Opens the store, binds the port and starts serving (on the current tokio runtime).
    pub async fn start(&self) -> Result<Started, LaunchError> {
        let config = self.load_config()?;
        let data_dir = self.data_dir()?;
        let config_file = self.config_path()?;
        if config.uses_keychain() {
            // Fail early and clearly when keys are meant to come from a keychain this build or
            // this session cannot reach; requests would otherwise fail one by one.
            if let Err(e) = KeychainStore::new() {
                tracing::error!(error = %e, "the OS keychain is unavailable; keys stored there cannot be used");
            }
        }
        let listen = config.listen;
        let gateway = Arc::new(Gateway::connect(config, &data_dir, Secrets::system()).await?);
        let admin = AdminToken::load_or_create(&data_dir)?;
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| LaunchError::Bind {
                addr: listen,
                source,
            })?;
        let handle = serve_with(gateway.clone(), listener, admin, Some(config_file.clone()))
            .map_err(LaunchError::Serve)?;
        Ok(Started {
            handle,
            gateway,
            config_file,
            data_dir,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_up_errors_are_typed_and_say_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = Options {
            config: Some(dir.path().join("nope.toml")),
            ..Options::default()
        };
        let e = missing.load_config().expect_err("missing");
        assert!(matches!(e, LaunchError::ConfigMissing(_)));
        assert!(e.to_string().contains("does not exist"));

        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9\"\n").expect("write");
        let lan = Options {
            config: Some(file.clone()),
            listen: Some("192.0.2.1:8414".parse().expect("addr")),
            ..Options::default()
        };
        let e = lan.load_config().expect_err("not loopback");
        assert!(matches!(e, LaunchError::NotLoopback(_)));
        assert!(e.to_string().contains("allow_lan = true"));

        std::fs::write(&file, "listen = [").expect("write");
        let bad = Options {
            config: Some(file),
            ..Options::default()
        };
        let e = bad.load_config().expect_err("invalid");
        assert!(matches!(e, LaunchError::Config(_)));
        assert!(e.to_string().starts_with("invalid config: "));
    }
}
