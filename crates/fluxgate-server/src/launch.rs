//! Starting Fluxgate from options: the headless `fluxgate serve` and the desktop app both
//! come through here, so they read the same config, data directory and keychain the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use fluxgate_core::config::{Config, ConfigError};
use fluxgate_core::gateway::Gateway;
use fluxgate_core::secrets::{KeychainStore, Secrets};
use fluxgate_core::tokens::AdminToken;

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

pub fn describe_config_error(e: &ConfigError) -> String {
    format!("invalid config: {e}")
}

impl Options {
    pub fn config_path(&self) -> Result<PathBuf, String> {
        self.config
            .clone()
            .or_else(fluxgate_core::paths::default_config_file)
            .ok_or_else(|| "cannot find a config directory; pass --config FILE".to_string())
    }

    pub fn data_dir(&self) -> Result<PathBuf, String> {
        self.data_dir
            .clone()
            .or_else(fluxgate_core::paths::default_data_dir)
            .ok_or_else(|| "cannot find a data directory; pass --data-dir DIR".to_string())
    }

    /// The config file when it exists (an explicit `--config` must exist), else the
    /// environment-detected config; `listen` applied and checked.
    pub fn load_config(&self) -> Result<Config, String> {
        let path = self.config_path()?;
        if self.config.is_some() && !path.exists() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        let mut config = Config::load_or_detect(&path).map_err(|e| describe_config_error(&e))?;
        if let Some(l) = self.listen {
            if !l.ip().is_loopback() && !config.allow_lan {
                return Err(format!("{l} is not a loopback address; set `allow_lan = true` in the config to expose Fluxgate to the network"));
            }
            config.listen = l;
        }
        Ok(config)
    }

    /// Opens the store, binds the port and starts serving (on the current tokio runtime).
    pub async fn start(&self) -> Result<Started, String> {
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
        let gateway = Arc::new(
            Gateway::open(config, &data_dir, Secrets::system()).map_err(|e| e.to_string())?,
        );
        let admin = AdminToken::load_or_create(&data_dir).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
            format!("cannot listen on {listen}: {e} (is another Fluxgate running? pass --listen 127.0.0.1:PORT)")
        })?;
        let handle = serve_with(gateway.clone(), listener, admin, Some(config_file.clone()))
            .map_err(|e| e.to_string())?;
        Ok(Started {
            handle,
            gateway,
            config_file,
            data_dir,
        })
    }
}
