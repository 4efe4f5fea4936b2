//! `fluxgate setup TOOL [--dry-run | --undo]`: writes a tool's own config so it uses
//! Fluxgate (see `fluxgate_core::setup::tools`), showing the change as a diff first. The
//! console's Client setup page and the tray menu do the same through the admin API.

use super::lang;
use clap::Args;
use fluxgate_core::setup::tools::{self, Homes};
use fluxgate_core::setup::ClientKind;
use fluxgate_core::store::Store;
use fluxgate_core::t;
use fluxgate_core::tokens::ClientTokens;

use super::Common;

#[derive(Args)]
pub struct SetupArgs {
    /// The tool: claude-code, codex, gemini-cli or opencode.
    tool: String,
    /// Show what would change; write nothing and make no token.
    #[arg(long, conflicts_with = "undo")]
    dry_run: bool,
    /// Put the tool's files back as they were before the first setup (byte for byte; files the
    /// setup created are removed) and revoke the token it was given.
    #[arg(long)]
    undo: bool,
    #[command(flatten)]
    common: Common,
}

fn tool(id: &str) -> Result<ClientKind, String> {
    ClientKind::parse(id)
        .filter(|k| ClientKind::WRITABLE.contains(k))
        .ok_or_else(|| {
            let ids: Vec<&str> = ClientKind::WRITABLE.iter().map(|k| k.id()).collect();
            format!(
                "unknown tool `{id}`; `fluxgate setup` writes the config of: {}",
                ids.join(", ")
            )
        })
}

/// The address tools should use: the running server's, else the config's `listen`.
pub fn base_url(common: &Common) -> Result<String, String> {
    let dir = common.data_dir()?;
    if let Ok(f) = fluxgate_core::runtime::RuntimeFile::read(&dir) {
        return Ok(format!("http://{}", f.addr));
    }
    Ok(format!("http://{}", common.load_config()?.listen))
}

pub fn run(args: SetupArgs) -> Result<(), String> {
    let kind = tool(&args.tool)?;
    let homes = Homes::from_env(|k| std::env::var(k).ok())
        .ok_or("HOME is not set; cannot find the tool's config files")?;
    let dir = args.common.data_dir()?;
    let tokens = ClientTokens::in_store(Store::open(&dir).map_err(|e| e.to_string())?);
    // Where the original of a file holding a key is kept (never on disk).
    let keychain = fluxgate_core::secrets::Secrets::system().keychain();
    let keychain = || keychain.as_deref().map_err(|e| e.to_string());
    if args.undo {
        let done =
            tools::revert(kind, &homes, &dir, &tokens, keychain()).map_err(|e| e.to_string())?;
        for p in &done {
            println!("{}", t!(lang(), "cli.setup.restored", path = p.display()));
        }
        println!(
            "{}",
            t!(
                lang(),
                "cli.setup.as_before",
                tool = kind.title(),
                id = kind.id()
            )
        );
        return Ok(());
    }
    let base = base_url(&args.common)?;
    let models: Vec<String> = args
        .common
        .load_config()
        .map(|c| c.route_names())
        .unwrap_or_default();
    let out = tools::set_up(
        kind,
        &homes,
        &dir,
        &tokens,
        keychain(),
        &base,
        &models,
        args.dry_run,
    )
    .map_err(|e| e.to_string())?;
    if !out.plan.changes() {
        println!(
            "{}",
            t!(
                lang(),
                "cli.setup.already",
                tool = kind.title(),
                base = base
            )
        );
        return Ok(());
    }
    print!("{}", out.diff);
    if args.dry_run {
        println!("{}", t!(lang(), "cli.setup.dry_run", id = kind.id()));
        return Ok(());
    }
    if let Some(name) = &out.new_token {
        println!(
            "{}",
            t!(
                lang(),
                "cli.setup.made_token",
                name = name,
                tool = kind.title()
            )
        );
    }
    for p in &out.written {
        println!("{}", t!(lang(), "cli.wrote", path = p.display()));
    }
    println!(
        "{}",
        t!(
            lang(),
            "cli.setup.done",
            tool = kind.title(),
            base = base,
            id = kind.id()
        )
    );
    if let Some(note) = kind.note() {
        println!("{}", t!(lang(), "cli.note", note = note));
    }
    Ok(())
}
