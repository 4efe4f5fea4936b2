//! Platform directories for the config file and the data directory.
//!
//! The command line may override both; nothing else in the crate guesses paths.

use std::path::PathBuf;

/// The default config file: `$XDG_CONFIG_HOME/fluxgate/config.toml` on Linux.
pub fn default_config_file() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "fluxgate", "fluxgate")
        .map(|d| d.config_dir().join("config.toml"))
}

/// The default data directory: `$XDG_DATA_HOME/fluxgate` on Linux.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "fluxgate", "fluxgate")
        .map(|d| d.data_dir().to_path_buf())
}
