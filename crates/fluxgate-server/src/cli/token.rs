//! `fluxgate token new|list|revoke`

use super::lang;
use clap::Subcommand;
use fluxgate_core::clock::now_ms;
use fluxgate_core::secrets::Secrets;
use fluxgate_core::store::Store;
use fluxgate_core::t;
use fluxgate_core::team::{FleetLedger, SharedTokens};
use fluxgate_core::tokens::{utc_minute, ClientTokens, TokenLimits};

use super::Common;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a client token; it is printed once and never shown again.
    New {
        name: String,
        /// Refuse the token after this many days.
        #[arg(long, value_name = "DAYS")]
        expires_in_days: Option<u32>,
        /// Only this route (repeat for more); default: every route.
        #[arg(long = "route", value_name = "ROUTE")]
        routes: Vec<String>,
        /// Only keys of this provider (repeat for more); default: every provider.
        #[arg(long = "provider", value_name = "PROVIDER")]
        providers: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// List token names.
    List {
        #[command(flatten)]
        common: Common,
    },
    /// Revoke a token (running servers stop accepting it within 10 s; in team mode with
    /// `[store] postgres`, every replica within a second).
    Revoke {
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

/// The client tokens this command works on: the fleet's when the config names a PostgreSQL
/// (`[store] postgres`), else this machine's.
fn tokens(common: &Common) -> Result<ClientTokens, String> {
    let dir = common.data_dir()?;
    let store = Store::open(&dir).map_err(|e| e.to_string())?;
    let target = common
        .config_path()
        .ok()
        .filter(|p| p.is_file())
        .and_then(|_| common.load_config().ok())
        .and_then(|c| c.shared.postgres);
    let Some(target) = target else {
        return Ok(ClientTokens::in_store(store));
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let ledger = rt
        .block_on(FleetLedger::connect(&target, &Secrets::system()))
        .map_err(|e| e.to_string())?;
    let shared = SharedTokens::open(&ledger, &store).map_err(|e| e.to_string())?;
    Ok(ClientTokens::new(shared))
}

pub fn run(cmd: TokenCommand) -> Result<(), String> {
    match cmd {
        TokenCommand::New {
            name,
            expires_in_days,
            routes,
            providers,
            common,
        } => {
            let limits = if expires_in_days.is_none() && routes.is_empty() && providers.is_empty() {
                TokenLimits::default()
            } else {
                let config = common.load_config()?;
                TokenLimits::asked(&config, now_ms(), expires_in_days, routes, providers)?
            };
            let t = tokens(&common)?
                .create_with(&name, limits)
                .map_err(|e| e.to_string())?;
            eprintln!("{}", t!(lang(), "cli.token.made", name = name));
            println!("{t}");
            Ok(())
        }
        TokenCommand::List { common } => {
            let list = tokens(&common)?.list().map_err(|e| e.to_string())?;
            if list.is_empty() {
                println!("{}", t!(lang(), "cli.token.none"));
            }
            for t in list {
                let mut line = t.name.clone();
                if let Some(at) = t.limits.expires_ms {
                    let state = if now_ms() >= at {
                        t!(lang(), "cli.token.expired")
                    } else {
                        t!(lang(), "cli.token.expires")
                    };
                    line.push_str(&format!("  {state} {}", utc_minute(at)));
                }
                if !t.limits.routes.is_empty() {
                    line.push_str("  ");
                    line.push_str(&t!(
                        lang(),
                        "cli.token.routes",
                        list = t.limits.routes.join(", ")
                    ));
                }
                if !t.limits.providers.is_empty() {
                    line.push_str("  ");
                    line.push_str(&t!(
                        lang(),
                        "cli.token.providers",
                        list = t.limits.providers.join(", ")
                    ));
                }
                println!("{line}");
            }
            Ok(())
        }
        TokenCommand::Revoke { name, common } => {
            tokens(&common)?.revoke(&name).map_err(|e| e.to_string())?;
            println!("{}", t!(lang(), "cli.token.revoked", name = name));
            Ok(())
        }
    }
}
