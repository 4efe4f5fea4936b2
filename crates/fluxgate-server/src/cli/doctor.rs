//! `fluxgate doctor [--json] [--offline]`: checks the whole chain a tool's request travels and
//! says what to do about each problem: the config, the keychain, every key (its secret, and a
//! models list against its upstream unless `--offline`), the running server (authenticated,
//! as the CLI always does), each tool set up by `fluxgate setup`, and the desktop's tray host
//! and notification daemon. Exits 1 when something is broken (warnings do not count).

use std::net::SocketAddr;

use clap::Args;
use fluxgate_core::config::Config;
use fluxgate_core::secrets::{KeychainStore, SecretError, SecretStore, Secrets};
use fluxgate_core::setup::tools::{self, Homes};
use fluxgate_core::setup::ClientKind;
use fluxgate_core::store::Store;
use fluxgate_core::tokens::ClientTokens;
use serde::Serialize;

use super::Common;

#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    common: Common,
    /// The running Fluxgate's address [default: the one in DATA_DIR/runtime.json]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// One JSON object on standard output instead of text.
    #[arg(long)]
    json: bool,
    /// Do not contact upstreams (the keys' secrets are still read).
    #[arg(long)]
    offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Ok,
    /// Not needed here, or not set up (not a problem).
    Skipped,
    /// Works, with something the user should know.
    Warn,
    /// Broken: a request through Fluxgate will fail here.
    Fail,
}

#[derive(Debug, Serialize)]
struct Check {
    check: String,
    status: Status,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

fn check(
    name: impl Into<String>,
    status: Status,
    detail: impl Into<String>,
    fix: Option<String>,
) -> Check {
    Check {
        check: name.into(),
        status,
        detail: detail.into(),
        fix,
    }
}

fn config_check(common: &Common, out: &mut Vec<Check>) -> Option<Config> {
    let path = common.config_path().unwrap_or_default();
    match common.load_config() {
        Ok(c) => {
            let keys: usize = c.providers.iter().map(|p| p.keys.len()).sum();
            let from = if path.exists() {
                format!("{}", path.display())
            } else {
                "no config file; providers detected from the environment".into()
            };
            let status = if keys == 0 { Status::Warn } else { Status::Ok };
            let fix = (keys == 0).then(|| {
                "add a key: `fluxgate init` finds the ones on this machine, or `fluxgate keys set PROVIDER/ID`".to_string()
            });
            out.push(check(
                "config",
                status,
                format!(
                    "{from}: valid ({} providers, {keys} keys, {} routes)",
                    c.providers.len(),
                    c.routes.len()
                ),
                fix,
            ));
            Some(c)
        }
        Err(e) => {
            out.push(check(
                "config",
                Status::Fail,
                e,
                Some(format!(
                    "fix {} (`fluxgate check` explains every problem)",
                    path.display()
                )),
            ));
            None
        }
    }
}

fn keychain_check(config: &Config, out: &mut Vec<Check>) {
    if !config.uses_keychain() {
        out.push(check(
            "keychain",
            Status::Skipped,
            "no key is kept in the OS keychain",
            None,
        ));
        return;
    }
    let store = match KeychainStore::new() {
        Ok(s) => s,
        Err(e) => {
            out.push(check(
                "keychain",
                Status::Fail,
                e.to_string(),
                Some(
                    "start a Secret Service (GNOME Keyring, KeePassXC or KWallet) in this session"
                        .into(),
                ),
            ));
            return;
        }
    };
    // A configured key's entry: a locked collection still answers a search for nothing, but not
    // a read of something it holds.
    let probe = config
        .providers
        .iter()
        .flat_map(|p| p.keys.iter().map(move |k| (p, k)))
        .find(|(_, k)| k.secret == fluxgate_core::secrets::SecretRef::Keychain)
        .map(|(p, k)| p.account(&k.id))
        .unwrap_or_else(|| "fluxgate-doctor/probe".into());
    match store.get(&probe) {
        Ok(_) | Err(SecretError::NotFound(_)) => out.push(check(
            "keychain",
            Status::Ok,
            "reachable and unlocked",
            None,
        )),
        Err(SecretError::KeychainLocked) => out.push(check(
            "keychain",
            Status::Fail,
            "the keychain is locked",
            Some(
                "unlock it (log in to the desktop session, or `gnome-keyring-daemon --unlock`)"
                    .into(),
            ),
        )),
        Err(e) => out.push(check(
            "keychain",
            Status::Fail,
            e.to_string(),
            Some("make sure a Secret Service runs in this session".into()),
        )),
    }
}

/// Team mode: whether the shared engine answers from here (with this machine's credentials).
async fn shared_check(config: &Config, out: &mut Vec<Check>) {
    let Some(target) = &config.shared.redis else {
        out.push(check(
            "shared state",
            Status::Skipped,
            "none configured: health and limits are this machine's own",
            None,
        ));
        return;
    };
    match fluxgate_core::team::Engine::connect(target, &Secrets::system()).await {
        Ok(_) => out.push(check(
            "shared state",
            Status::Ok,
            format!(
                "Redis at {} answers; key health and limits are shared with the fleet",
                target.url
            ),
            None,
        )),
        Err(e) => out.push(check(
            "shared state",
            Status::Fail,
            e.to_string(),
            Some("`fluxgate serve` refuses to start until Redis answers; start it, or remove `[state]` from the config".into()),
        )),
    }
}

/// Team mode: whether the fleet's ledger answers from here and its schema is this build's.
async fn ledger_check(config: &Config, out: &mut Vec<Check>) {
    let Some(target) = &config.shared.postgres else {
        out.push(check(
            "fleet ledger",
            Status::Skipped,
            "none configured: request records and usage are this machine's own",
            None,
        ));
        return;
    };
    match fluxgate_core::team::FleetLedger::connect(target, &Secrets::system()).await {
        Ok(_) => out.push(check(
            "fleet ledger",
            Status::Ok,
            format!(
                "PostgreSQL at {} answers; request records, spend and usage are the fleet's",
                target.url
            ),
            None,
        )),
        Err(e) => out.push(check(
            "fleet ledger",
            Status::Fail,
            e.to_string(),
            Some("`fluxgate serve` refuses to start until PostgreSQL answers; start it, or remove `[store]` from the config".into()),
        )),
    }
}

async fn key_checks(config: &Config, offline: bool, out: &mut Vec<Check>) {
    let secrets = Secrets::system();
    let client = fluxgate_core::exec::http_client(&config.timeouts);
    for p in &config.providers {
        for k in &p.keys {
            let account = p.account(&k.id);
            let name = format!("key {account}");
            if !k.enabled || !p.enabled {
                out.push(check(name, Status::Skipped, "disabled in the config", None));
                continue;
            }
            if offline {
                match secrets.resolve(&account, &k.secret) {
                    Ok(_) => out.push(check(
                        name,
                        Status::Ok,
                        format!("secret found ({})", k.secret),
                        None,
                    )),
                    Err(e) => out.push(check(
                        name,
                        Status::Fail,
                        e.to_string(),
                        Some(secret_fix(&account, &e)),
                    )),
                }
                continue;
            }
            let probe = super::keys::probe_key(&client, &secrets, p, k).await;
            match probe.result {
                Ok((status, ms)) => out.push(check(
                    name,
                    Status::Ok,
                    format!("the upstream answered HTTP {status} in {ms} ms"),
                    None,
                )),
                Err(e) => {
                    use super::keys::ProbeError;
                    use fluxgate_core::health::ErrorClass;
                    let fix = match &e {
                        ProbeError::Secret(s) => secret_fix(&account, s),
                        ProbeError::Rejected { class: ErrorClass::AuthFailed, .. } => format!(
                            "the provider rejected this key: replace it (`fluxgate keys set {account}`) or remove it"
                        ),
                        ProbeError::Rejected { class: ErrorClass::QuotaExhausted, .. } => {
                            "the key's quota or credit is spent: top it up with the provider".into()
                        }
                        ProbeError::Rejected { class: ErrorClass::RateLimited, .. } => {
                            "the key is rate-limited right now; it is retried automatically".into()
                        }
                        ProbeError::Rejected { .. } => "see the provider's answer".into(),
                        ProbeError::Unreachable(_) => {
                            format!("check the network to {} (a proxy or a firewall?)", p.base_url)
                        }
                    };
                    out.push(check(name, Status::Fail, e.to_string(), Some(fix)));
                }
            }
        }
    }
}

fn secret_fix(account: &str, e: &SecretError) -> String {
    match e {
        SecretError::EnvMissing(v) => format!("set {v} in the environment Fluxgate runs in"),
        SecretError::File { path, .. } => format!("put the key in {path}"),
        _ if e.is_keychain() => "unlock or start the OS keychain".into(),
        _ => format!("store it: `fluxgate keys set {account}`"),
    }
}

/// The running server, authenticated; returns its base URL when it answered.
async fn server_check(
    common: &Common,
    listen: Option<SocketAddr>,
    config: Option<&Config>,
    out: &mut Vec<Check>,
) -> Option<String> {
    let dir = match common.data_dir() {
        Ok(d) => d,
        Err(e) => {
            out.push(check("server", Status::Fail, e, None));
            return None;
        }
    };
    match super::remote::Remote::connect(&dir, listen).await {
        Ok(r) => {
            out.push(check(
                "server",
                Status::Ok,
                format!(
                    "Fluxgate answers at http://{} (proved it uses {})",
                    r.addr,
                    dir.display()
                ),
                None,
            ));
            Some(format!("http://{}", r.addr))
        }
        Err(e) => {
            let not_running = matches!(
                fluxgate_core::runtime::RuntimeFile::read(&dir),
                Err(fluxgate_core::runtime::RuntimeError::NotRunning(_))
            );
            if not_running {
                let addr = listen.or(config.map(|c| c.listen));
                let taken = addr.is_some_and(|a| {
                    std::net::TcpStream::connect_timeout(&a, std::time::Duration::from_millis(500))
                        .is_ok()
                });
                if taken {
                    out.push(check(
                        "server",
                        Status::Fail,
                        format!("Fluxgate is not running, but something else listens on {}", addr.map(|a| a.to_string()).unwrap_or_default()),
                        Some("stop that program, or give Fluxgate another `listen` address in the config".into()),
                    ));
                } else {
                    out.push(check(
                        "server",
                        Status::Warn,
                        "Fluxgate is not running, so tools cannot reach it now",
                        Some("start the desktop app, or `fluxgate serve`".into()),
                    ));
                }
            } else {
                out.push(check(
                    "server",
                    Status::Fail,
                    e,
                    Some("restart Fluxgate".into()),
                ));
            }
            None
        }
    }
}

fn tool_checks(common: &Common, base: &str, out: &mut Vec<Check>) {
    let Some(homes) = Homes::from_env(|k| std::env::var(k).ok()) else {
        return;
    };
    let tokens = common
        .data_dir()
        .ok()
        .and_then(|d| Store::open(&d).ok())
        .map(ClientTokens::in_store);
    for kind in ClientKind::WRITABLE {
        let name = format!("tool {}", kind.id());
        match tools::current(kind, &homes) {
            Err(e) => out.push(check(
                name,
                Status::Fail,
                e.to_string(),
                Some(format!("fix the file, then `fluxgate setup {}`", kind.id())),
            )),
            Ok(c) => match (c.base_url, c.token) {
                (None, _) => out.push(check(
                    name,
                    Status::Skipped,
                    format!("{} is not set up to use Fluxgate", kind.title()),
                    Some(format!("`fluxgate setup {}`", kind.id())),
                )),
                (Some(b), token) if b == base => {
                    let works = token
                        .as_deref()
                        .zip(tokens.as_ref())
                        .and_then(|(t, ts)| ts.verify(t));
                    match works {
                        Some(token_name) => out.push(check(name, Status::Ok, format!("{} uses this Fluxgate with the token `{token_name}`", kind.title()), None)),
                        None => out.push(check(name, Status::Fail, format!("{} points at this Fluxgate with a token it does not accept (revoked?)", kind.title()), Some(format!("`fluxgate setup {}` makes a new one", kind.id())))),
                    }
                }
                (Some(b), _) => out.push(check(
                    name,
                    Status::Fail,
                    format!(
                        "{} points at {b}, not at this Fluxgate ({base})",
                        kind.title()
                    ),
                    Some(format!("`fluxgate setup {}`", kind.id())),
                )),
            },
        }
    }
}

async fn desktop_checks(out: &mut Vec<Check>) {
    let hosts = fluxgate_desktop::hosts::probe().await;
    if let Err(e) = hosts.session_bus {
        out.push(check("desktop", Status::Warn, e, Some("the desktop app's tray and notifications need a desktop session; `fluxgate serve` runs without one".into())));
        return;
    }
    out.push(if hosts.tray_host {
        check("tray", Status::Ok, "a tray host is registered", None)
    } else {
        check(
            "tray",
            Status::Warn,
            "no tray host: the app's icon will not show",
            Some(
                "on GNOME, enable the AppIndicator extension (gnome-shell-extension-appindicator)"
                    .into(),
            ),
        )
    });
    out.push(if hosts.notifications {
        check(
            "notifications",
            Status::Ok,
            "a notification daemon is running",
            None,
        )
    } else {
        check(
            "notifications",
            Status::Warn,
            "no notification daemon: key cooldowns show only in the tray and the console",
            Some(
                "run your desktop's notification service (e.g. dunst, mako, or the desktop's own)"
                    .into(),
            ),
        )
    });
}

pub fn run(args: DoctorArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let checks = runtime.block_on(async {
        let mut out = Vec::new();
        let config = config_check(&args.common, &mut out);
        if let Some(c) = &config {
            keychain_check(c, &mut out);
            shared_check(c, &mut out).await;
            ledger_check(c, &mut out).await;
            key_checks(c, args.offline, &mut out).await;
        }
        let base = server_check(&args.common, args.listen, config.as_ref(), &mut out).await;
        let base = base.or_else(|| config.as_ref().map(|c| format!("http://{}", c.listen)));
        if let Some(b) = base {
            tool_checks(&args.common, &b, &mut out);
        }
        desktop_checks(&mut out).await;
        out
    });
    let broken = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    if args.json {
        let v = serde_json::json!({"ok": broken == 0, "broken": broken, "warnings": warned, "checks": checks});
        println!("{v}");
    } else {
        let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(8);
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Skipped => "--  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
            };
            println!("{mark}  {:<width$}  {}", c.check, c.detail);
            if let Some(fix) = &c.fix {
                if c.status != Status::Ok {
                    println!("      {:<width$}  → {fix}", "");
                }
            }
        }
        println!();
        match (broken, warned) {
            (0, 0) => println!("Everything checks out."),
            (0, w) => println!("Nothing is broken; {w} warning(s)."),
            (b, _) => println!("{b} problem(s) will break requests; fix them as shown above."),
        }
    }
    if broken > 0 {
        Err(format!("{broken} check(s) failed"))
    } else {
        Ok(())
    }
}
