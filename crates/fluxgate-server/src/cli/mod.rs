//! Command-line parsing and dispatch. Each subcommand lives in its own module; all of them
//! print messages a person can act on and exit non-zero on failure.

mod check;
mod keys;
mod serve;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fluxgate_core::config::{Config, ConfigError};

/// Fluxgate: one local address for every AI tool, many keys per provider, failover that works.
#[derive(Parser)]
#[command(name = "fluxgate", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Args, Clone)]
pub struct Common {
    /// The config file [default: the platform config dir, e.g. ~/.config/fluxgate/config.toml]
    #[arg(long, global = true, env = "FLUXGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory (database, admin token) [default: the platform data dir, e.g. ~/.local/share/fluxgate]
    #[arg(long, global = true, env = "FLUXGATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

impl Common {
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
    /// environment-detected config.
    pub fn load_config(&self) -> Result<Config, String> {
        let path = self.config_path()?;
        if self.config.is_some() && !path.exists() {
            return Err(format!("config file {} does not exist", path.display()));
        }
        Config::load_or_detect(&path).map_err(|e| describe_config_error(&e))
    }
}

pub fn describe_config_error(e: &ConfigError) -> String {
    format!("invalid config: {e}")
}

#[derive(Subcommand)]
enum Command {
    /// Run the router headless.
    Serve(serve::ServeArgs),
    /// Validate the config and print the resolved routing table.
    Check(check::CheckArgs),
    /// Show which candidates would serve MODEL, in what order, and why others are skipped.
    Explain(check::ExplainArgs),
    /// Manage API keys in the OS keychain.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage client tokens (what tools use as their API key for Fluxgate).
    #[command(subcommand)]
    Token(token::TokenCommand),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Check(a) => check::run_check(a),
        Command::Explain(a) => check::run_explain(a),
        Command::Keys(c) => keys::run(c),
        Command::Token(c) => token::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("error: {msg}");
            ExitCode::from(1)
        }
    }
}
