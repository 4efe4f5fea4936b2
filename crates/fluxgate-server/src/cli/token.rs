//! `fluxgate token new|list|revoke`

use clap::Subcommand;
use fluxgate_core::secrets::Secrets;
use fluxgate_core::store::Store;
use fluxgate_core::team::{FleetLedger, SharedTokens};
use fluxgate_core::tokens::ClientTokens;

use super::Common;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Make a client token; it is printed once and never shown again.
    New {
        name: String,
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
        TokenCommand::New { name, common } => {
            let t = tokens(&common)?.create(&name).map_err(|e| e.to_string())?;
            eprintln!("client token `{name}` (shown only now; store it in your tool's settings):");
            println!("{t}");
            Ok(())
        }
        TokenCommand::List { common } => {
            let list = tokens(&common)?.list().map_err(|e| e.to_string())?;
            if list.is_empty() {
                println!("no client tokens; make one with `fluxgate token new NAME`");
            }
            for t in list {
                println!("{}", t.name);
            }
            Ok(())
        }
        TokenCommand::Revoke { name, common } => {
            tokens(&common)?.revoke(&name).map_err(|e| e.to_string())?;
            println!("revoked `{name}`");
            Ok(())
        }
    }
}
