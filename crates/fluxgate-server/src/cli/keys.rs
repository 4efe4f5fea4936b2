//! `fluxgate keys set|list|rm|test`

use super::lang;
use fluxgate_core::t;
use std::io::{IsTerminal, Read};
use std::time::Instant;

use clap::Subcommand;
use fluxgate_core::config::{Config, ProviderConfig};
use fluxgate_core::exec::http_client;
use fluxgate_core::exec::probe::probe;
use fluxgate_core::exec::upstream::Outbound;
use fluxgate_core::health::{self, KeyStatus};
use fluxgate_core::providers;
use fluxgate_core::secrets::{
    KeychainStore, SecretError, SecretRef, SecretStore, SecretValue, Secrets,
};
use fluxgate_core::vocab::KeyRef;

use super::Common;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Store a key in the OS keychain. The key is read from stdin (hidden when typed).
    Set {
        /// PROVIDER/KEY_ID, as in the config (`keys = [{ id = "KEY_ID" }]`).
        key: String,
        #[command(flatten)]
        common: Common,
    },
    /// List configured keys, where each secret lives, and whether it can be read.
    List {
        /// Also read each key's remaining credit from its vendor now (DeepSeek, OpenRouter,
        /// Moonshot).
        #[arg(long)]
        balance: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Remove a key from the OS keychain.
    Rm {
        key: String,
        #[command(flatten)]
        common: Common,
    },
    /// Test keys against their upstream with a models list (all keys, or one PROVIDER/KEY_ID).
    Test {
        key: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

fn split(key: &str) -> Result<KeyRef, String> {
    KeyRef::parse(key).ok_or_else(|| format!("`{key}` must be PROVIDER/KEY_ID"))
}

fn keychain() -> Result<KeychainStore, String> {
    KeychainStore::new().map_err(|e| e.to_string())
}

fn read_secret(account: &str) -> Result<SecretValue, String> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("key for {account} (input hidden): "))
            .map_err(|e| e.to_string())?
    } else {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| e.to_string())?;
        s
    };
    let text = text.trim();
    if text.is_empty() {
        return Err("no key given on stdin".into());
    }
    Ok(SecretValue::new(text))
}

pub fn run(cmd: KeysCommand) -> Result<(), String> {
    match cmd {
        KeysCommand::Set { key, common } => {
            let KeyRef {
                provider,
                key_id: id,
            } = split(&key)?;
            let config = common.load_config().ok();
            let secret = read_secret(&key)?;
            keychain()?.set(&key, &secret).map_err(|e| e.to_string())?;
            println!(
                "{}",
                t!(lang(), "cli.keys.stored", key = key, hint = secret.hint())
            );
            let known = config
                .as_ref()
                .and_then(|c| c.provider(&provider))
                .map(|p| {
                    p.keys
                        .iter()
                        .any(|k| k.id == id && k.secret == SecretRef::Keychain)
                });
            if known != Some(true) {
                eprintln!(
                    "{}",
                    t!(
                        lang(),
                        "cli.keys.not_in_config",
                        id = id,
                        provider = provider
                    )
                );
            }
            Ok(())
        }
        KeysCommand::Rm { key, common: _ } => {
            split(&key)?;
            keychain()?.delete(&key).map_err(|e| e.to_string())?;
            println!("{}", t!(lang(), "cli.keys.removed", key = key));
            Ok(())
        }
        KeysCommand::List { balance, common } => list(&common, balance),
        KeysCommand::Test { key, common } => test(&common, key.as_deref()),
    }
}

fn list(common: &Common, balance: bool) -> Result<(), String> {
    let config = common.load_config()?;
    let states = stored_health(common);
    let secrets = Secrets::system();
    let balances = if balance {
        read_balances(&config, &secrets)?
    } else {
        Vec::new()
    };
    if config.providers.iter().all(|p| p.keys.is_empty()) {
        println!("{}", t!(lang(), "cli.keys.none"));
    }
    for p in &config.providers {
        for k in &p.keys {
            let account = p.account(&k.id);
            let found = match secrets.resolve(&account, &k.secret) {
                Ok(v) => t!(lang(), "cli.keys.present", hint = v.hint()),
                Err(SecretError::NotFound(_)) => t!(lang(), "cli.keys.missing"),
                Err(e) => t!(lang(), "cli.keys.unreadable", error = e),
            };
            let state = states
                .iter()
                .find(|(a, _)| *a == account)
                .map(|(_, s)| s.clone())
                .unwrap_or_else(|| "healthy".into());
            let via = k
                .egress
                .proxy()
                .map(|p| t!(lang(), "cli.keys.via_proxy", proxy = p.label))
                .unwrap_or_default();
            let credit = balances
                .iter()
                .find(|(a, _)| *a == account)
                .map(|(_, b)| format!("  {b}"))
                .unwrap_or_default();
            println!(
                "{account:<28} {:<24} {found:<34} {state}{via}{credit}",
                k.secret.to_string()
            );
        }
    }
    Ok(())
}

/// Every key's balance read now, where its provider's balance is read: `balance 110.00 CNY`,
/// `LOW balance 0.42 CNY (below 1.00)` or why it could not be read.
fn read_balances(config: &Config, secrets: &Secrets) -> Result<Vec<(String, String)>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = http_client(&config.timeouts);
    let mut out = Vec::new();
    runtime.block_on(async {
        for p in config.providers.iter().filter(|p| p.balance.is_some()) {
            let threshold = p.balance.and_then(|b| b.threshold);
            for k in &p.keys {
                let text =
                    match fluxgate_core::exec::balance::read_key_balance(&client, secrets, p, k)
                        .await
                    {
                        Ok(r) => {
                            let amount = match (r.remaining, r.usage) {
                                (Some(left), _) => format!("{left:.2} {}", r.currency),
                                (None, Some(used)) => {
                                    format!("no limit, {used:.2} {} used", r.currency)
                                }
                                (None, None) => "unknown".to_string(),
                            };
                            let low = r.available == Some(false)
                                || matches!((r.remaining, threshold), (Some(l), Some(t)) if l < t);
                            match (low, threshold) {
                                (true, Some(t)) => format!("LOW balance {amount} (below {t:.2})"),
                                (true, None) => {
                                    format!("LOW balance {amount} (the account cannot make calls)")
                                }
                                (false, _) => format!("balance {amount}"),
                            }
                        }
                        Err(e) => format!("balance not read: {e}"),
                    };
                out.push((p.account(&k.id), text));
            }
        }
    });
    Ok(out)
}

/// Health as last persisted by a server using this data dir.
fn stored_health(common: &Common) -> Vec<(String, String)> {
    let Ok(dir) = common.data_dir() else {
        return Vec::new();
    };
    if !dir.exists() {
        return Vec::new();
    }
    let Ok(store) = fluxgate_core::store::Store::open(&dir) else {
        return Vec::new();
    };
    <fluxgate_core::store::Store as health::HealthBackend>::load_all(&store)
        .into_iter()
        .map(|s| {
            let mut text = s.status.as_str().to_string();
            if s.status != KeyStatus::Healthy {
                if let Some(r) = s.reason {
                    text.push_str(&format!(" ({})", r.as_str()));
                }
            }
            (s.account, text)
        })
        .collect()
}

/// How one key's cheapest authenticated call went: the status and time, or what failed
/// (never the key; the upstream's answer is cleaned of it).
pub(super) struct KeyProbe {
    pub account: String,
    pub result: Result<(u16, u128), ProbeError>,
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub(super) enum ProbeError {
    #[error("{0}")]
    Secret(SecretError),
    #[error("HTTP {status} {}: {message}", class.as_str())]
    Rejected {
        status: u16,
        class: health::ErrorClass,
        message: String,
    },
    #[error("{0}")]
    Unreachable(String),
}

/// Tries `key` of `p` with a models list (the cheapest authenticated call), 30 s at most.
pub(super) async fn probe_key(
    client: &fluxgate_core::exec::client::HttpClient,
    secrets: &Secrets,
    p: &ProviderConfig,
    key: &fluxgate_core::config::KeyConfig,
) -> KeyProbe {
    let account = p.account(&key.id);
    let secret = match secrets.resolve(&account, &key.secret) {
        Ok(s) => s,
        Err(e) => {
            return KeyProbe {
                account,
                result: Err(ProbeError::Secret(e)),
            }
        }
    };
    let upstream = providers::build(p);
    let mut headers = http::HeaderMap::new();
    upstream.authorize(&mut headers, &secret);
    let started = Instant::now();
    let Ok(uri) = upstream.models_url().parse::<http::Uri>() else {
        return KeyProbe {
            account,
            result: Err(ProbeError::Unreachable(
                "the provider's URL is not valid".into(),
            )),
        };
    };
    let via = match fluxgate_core::exec::egress::via(&key.egress, secrets) {
        Ok(v) => v,
        Err(f) => {
            return KeyProbe {
                account,
                result: Err(ProbeError::Unreachable(f.message)),
            }
        }
    };
    let out = Outbound {
        method: http::Method::GET,
        url: uri,
        headers,
        body: bytes::Bytes::new(),
        via,
    };
    let result = match probe(client, out, &secret, std::time::Duration::from_secs(30)).await {
        Ok(status) => Ok((status, started.elapsed().as_millis())),
        Err(f) => Err(match f.status {
            Some(status) => ProbeError::Rejected {
                status,
                class: f.class,
                message: f.message,
            },
            None => ProbeError::Unreachable(f.message),
        }),
    };
    KeyProbe { account, result }
}

fn test(common: &Common, only: Option<&str>) -> Result<(), String> {
    let config = common.load_config()?;
    let targets: Vec<(&ProviderConfig, &fluxgate_core::config::KeyConfig)> = config
        .providers
        .iter()
        .flat_map(|p| p.keys.iter().map(move |k| (p, k)))
        .filter(|(p, k)| only.is_none_or(|o| o == p.account(&k.id)))
        .collect();
    if targets.is_empty() {
        return Err(match only {
            Some(o) => format!("no configured key {o}"),
            None => "no keys configured".into(),
        });
    }
    let secrets = Secrets::system();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let client = http_client(&config.timeouts);
    let mut failed = 0;
    runtime.block_on(async {
        for (p, k) in &targets {
            let probe = probe_key(&client, &secrets, p, k).await;
            match probe.result {
                Ok((status, ms)) => {
                    println!(
                        "{}",
                        t!(
                            lang(),
                            "cli.keys.test_ok",
                            account = format!("{:<28}", probe.account),
                            status = status,
                            ms = ms
                        )
                    )
                }
                Err(e) => {
                    failed += 1;
                    println!(
                        "{}",
                        t!(
                            lang(),
                            "cli.keys.test_fail",
                            account = format!("{:<28}", probe.account),
                            error = e
                        )
                    );
                }
            }
        }
    });
    if failed > 0 {
        Err(format!("{failed} of {} key(s) failed", targets.len()))
    } else {
        Ok(())
    }
}
