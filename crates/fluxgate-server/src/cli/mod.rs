//! Command-line parsing and dispatch. Each subcommand lives in its own module; all of them
//! print messages a person can act on and exit non-zero on failure.

mod check;
mod console;
mod doctor;
mod init;
mod keys;
mod log;
mod remote;
mod serve;
mod setup;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use fluxgate_core::config::Config;

/// Fluxgate: one local address for every AI tool, many keys per provider, failover that works.
#[derive(Parser)]
#[command(name = "fluxgate", version, long_about = None)]
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
    /// As launch options (with no listen override).
    pub fn options(&self) -> fluxgate_server::launch::Options {
        fluxgate_server::launch::Options {
            config: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen: None,
        }
    }

    pub fn config_path(&self) -> Result<PathBuf, String> {
        Ok(self.options().config_path()?)
    }

    pub fn data_dir(&self) -> Result<PathBuf, String> {
        Ok(self.options().data_dir()?)
    }

    /// The config file when it exists (an explicit `--config` must exist), else the
    /// environment-detected config.
    pub fn load_config(&self) -> Result<Config, String> {
        Ok(self.options().load_config()?)
    }
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
    /// The request log: each request's route, attempts, status, tokens and cost; --follow
    /// prints requests as they finish, --failed and --route filter, --json for export.
    Log(log::LogArgs),
    /// Manage client tokens (what tools use as their API key for Fluxgate).
    #[command(subcommand)]
    Token(token::TokenCommand),
    /// Open the console of the running Fluxgate in a browser (a one-time login link).
    Console(console::ConsoleArgs),
    /// Point a tool (claude-code, codex, gemini-cli, opencode) at Fluxgate by writing its own
    /// config files; --dry-run shows the diff, --undo restores the originals.
    Setup(setup::SetupArgs),
    /// Check the whole chain (config, keychain, keys, the running server, set-up tools, tray and
    /// notifications) and say what to fix; --json for scripts. Exits 1 when something is broken.
    Doctor(doctor::DoctorArgs),
    /// The first run: find the keys already on this machine, store the ones you pick in the
    /// OS keychain, write the config, and offer to set up the tools found.
    Init(init::InitArgs),
}

/// The language the CLI's messages use: `FLUXGATE_LANG`, else the OS locale (`LC_ALL`,
/// `LC_MESSAGES`, `LANG`). Script-facing output (`--json`, tokens, URLs) is never translated.
pub(crate) fn lang() -> fluxgate_core::i18n::Lang {
    fluxgate_core::i18n::Lang::current()
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(a) => serve::run(a),
        Command::Check(a) => check::run_check(a),
        Command::Explain(a) => check::run_explain(a),
        Command::Keys(c) => keys::run(c),
        Command::Log(a) => log::run(a),
        Command::Token(c) => token::run(c),
        Command::Console(a) => console::run(a),
        Command::Setup(a) => setup::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Init(a) => init::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("{}", fluxgate_core::t!(lang(), "cli.error", msg = msg));
            ExitCode::from(1)
        }
    }
}
