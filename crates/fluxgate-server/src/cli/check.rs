//! `fluxgate check` and `fluxgate explain`

use std::sync::Arc;

use clap::Args;
use fluxgate_core::budgets::{BudgetLedger, Ledger};
use fluxgate_core::config::{Config, ConfigSource, StrategyKind};
use fluxgate_core::events::EventBus;
use fluxgate_core::formats::body::read_head;
use fluxgate_core::formats::translate::main_endpoint;
use fluxgate_core::formats::translate::TranslatorRegistry;
use fluxgate_core::formats::Dialect;
use fluxgate_core::health::{HealthBackend, HealthRegistry, NoPersistence, Policy};
use fluxgate_core::routing::{Ask, Live, Needs, Router, Signals};
use fluxgate_core::secrets::SecretRef;
use fluxgate_core::store::Store;

use super::Common;

#[derive(Args)]
pub struct CheckArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(Args)]
pub struct ExplainArgs {
    /// The model name a client would send.
    model: String,
    /// The API the client speaks.
    #[arg(long, default_value = "openai", value_parser = ["openai", "responses", "anthropic", "gemini"])]
    dialect: String,
    /// A request body (JSON file, `-` for stdin): its tools, images, size and output cap are
    /// checked against each candidate's capabilities, context window, cost and budgets.
    #[arg(long, value_name = "FILE")]
    body: Option<std::path::PathBuf>,
    /// The client token's name, for client budgets.
    #[arg(long)]
    client: Option<String>,
    #[command(flatten)]
    common: Common,
}

/// Every proxy a key goes through, and every `[proxies]` table: its address, its user and
/// where its password comes from (never the password).
fn proxy_lines(config: &Config) -> Vec<String> {
    use fluxgate_core::config::proxy::ProxyPassword;
    let mut seen: Vec<std::sync::Arc<fluxgate_core::config::proxy::ProxyEndpoint>> =
        config.proxies.clone();
    for p in &config.providers {
        for k in &p.keys {
            if let Some(e) = k.egress.proxy() {
                if !seen.iter().any(|s| s.label == e.label) {
                    seen.push(e.clone());
                }
            }
        }
    }
    seen.iter()
        .map(|e| {
            let users = config
                .providers
                .iter()
                .flat_map(|p| p.keys.iter().map(move |k| (p, k)))
                .filter(|(_, k)| k.egress.proxy().is_some_and(|x| x.label == e.label))
                .count();
            let auth = match (&e.username, &e.password) {
                (None, _) => String::new(),
                (Some(u), None) => format!(", user {u}"),
                (Some(u), Some(ProxyPassword::Secret(r))) => format!(", user {u}, password {r}"),
                (Some(u), Some(ProxyPassword::Inline(_))) => {
                    format!(", user {u}, password from the environment")
                }
            };
            let ca =
                e.ca.as_ref()
                    .map(|p| format!(", trusting the CA in {}", p.display()))
                    .unwrap_or_default();
            format!(
                "{:<24} {}{auth}{ca}; {users} key(s) go through it",
                e.label,
                e.address()
            )
        })
        .collect()
}

/// "TLS", "TLS, CA /path" or "no TLS".
fn tls_words(tls: bool, ca: Option<&std::path::Path>) -> String {
    match (tls, ca) {
        (false, _) => "no TLS".into(),
        (true, None) => "TLS".into(),
        (true, Some(ca)) => format!("TLS, trusting the CA in {}", ca.display()),
    }
}

/// What is shared with other Fluxgates and where, per kind of state (`[state]`).
pub fn shared_lines(config: &Config) -> Vec<String> {
    let local = "this machine (in-process; SQLite in the data directory)";
    let (health, limits) = match &config.shared.redis {
        Some(r) => {
            let tls = tls_words(r.tls(), r.ca.as_deref());
            let shared = format!("shared in Redis at {} ({tls})", r.url);
            (shared.clone(), shared)
        }
        None => (local.to_string(), local.to_string()),
    };
    let records = match &config.shared.postgres {
        Some(p) => {
            let tls = tls_words(p.tls(), p.ca.as_deref());
            format!(
                "the fleet's, in PostgreSQL at {} ({tls}); a copy in SQLite here",
                p.url
            )
        }
        None => local.to_string(),
    };
    vec![
        format!("{:<40} {health}", "key health, retests"),
        format!("{:<40} {limits}", "key rpm / tpm / rpd windows"),
        format!("{:<40} {records}", "request log, spend, usage"),
        format!("{:<40} {records}", "client tokens, console sign-ins"),
        format!("{:<40} {records}", "emulated Responses conversations"),
        format!(
            "{:<40} {}",
            "budget checks",
            if config.shared.postgres.is_some() {
                "the fleet's spend and requests in flight, in PostgreSQL"
            } else {
                local
            }
        ),
    ]
}

/// The host of an engine's URL (`scheme://[user@]host[:port]/…`).
fn url_host(url: &str) -> &str {
    let authority = url
        .split("://")
        .nth(1)
        .unwrap_or_default()
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    if host.starts_with('[') {
        return &host[..host.find(']').map_or(host.len(), |i| i + 1)];
    }
    host.split(':').next().unwrap_or_default()
}

fn is_loopback_host(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]")
}

fn warnings(config: &Config) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(r) = &config.shared.redis {
        let host = url_host(&r.url);
        if !r.tls() && !is_loopback_host(host) {
            w.push(format!(
                "state.redis: {host} is reached without TLS; use rediss:// for an engine on another machine"
            ));
        }
    }
    if let Some(p) = &config.shared.postgres {
        let host = url_host(&p.url);
        if !p.tls() && !is_loopback_host(host) {
            w.push(format!(
                "store.postgres: {host} may be reached without TLS; add ?sslmode=require for an engine on another machine"
            ));
        }
    }
    for p in &config.providers {
        if p.keys.is_empty() {
            w.push(format!("providers.{}: no keys", p.name));
        }
        for k in &p.keys {
            match &k.secret {
                SecretRef::Env(name)
                    if std::env::var(name)
                        .map(|v| v.trim().is_empty())
                        .unwrap_or(true) =>
                {
                    w.push(format!(
                        "providers.{}.keys `{}`: environment variable {name} is not set",
                        p.name, k.id
                    ));
                }
                SecretRef::File(path) if !path.is_file() => {
                    w.push(format!(
                        "providers.{}.keys `{}`: file {} does not exist",
                        p.name,
                        k.id,
                        path.display()
                    ));
                }
                _ => {}
            }
        }
    }
    // Targets the catalogue knows nothing about: no capability or context checks, and a
    // least-cost route or a USD budget cannot price them.
    let mut unknown: Vec<String> = Vec::new();
    for r in &config.routes {
        for t in &r.targets {
            let name = format!("{}/{}", t.provider, t.model);
            match config.catalogue.lookup(&t.provider, &t.model) {
                None if !unknown.contains(&name) => unknown.push(name),
                Some(i) if i.prices.is_none() && r.strategy == StrategyKind::LeastCost => w.push(
                    format!("routes.\"{}\": {name} has no price, so least-cost tries it last; add `input_price` and `output_price` under [models.\"{}\"]", r.name, t.model),
                ),
                _ => {}
            }
        }
    }
    if !unknown.is_empty() {
        w.push(format!(
            "not in the model catalogue (no capability or context checks, no price for least-cost or USD budgets): {}; describe them under [models.\"ID\"]",
            unknown.join(", ")
        ));
    }
    w
}

pub fn run_check(args: CheckArgs) -> Result<(), String> {
    let config = args.common.load_config()?;
    match &config.source {
        ConfigSource::File(p) => println!("config {}: valid", p.display()),
        ConfigSource::Environment => println!(
            "no config file at {}; using providers detected from environment variables",
            args.common.config_path()?.display()
        ),
    }
    println!("listen {}", config.listen);
    println!("\nproviders:");
    if config.providers.is_empty() {
        println!("  (none)");
    }
    for p in &config.providers {
        let keys: Vec<String> = p
            .keys
            .iter()
            .map(|k| {
                let mut s = format!("{} ({})", k.id, k.secret);
                if k.weight != 1 {
                    s.push_str(&format!(" weight {}", k.weight));
                }
                if !k.enabled {
                    s.push_str(" disabled");
                }
                if let Some(p) = k.egress.proxy() {
                    s.push_str(&format!(" via proxy {}", p.label));
                }
                s
            })
            .collect();
        println!(
            "  {:<14} {:<18} {}{}",
            p.name,
            p.kind.as_str(),
            p.base_url,
            if p.enabled { "" } else { "  [disabled]" }
        );
        println!(
            "  {:<14} keys: {}",
            "",
            if keys.is_empty() {
                "(none)".into()
            } else {
                keys.join(", ")
            }
        );
        if !p.models.is_empty() {
            println!("  {:<14} models: {}", "", p.models.join(", "));
        }
    }
    println!("\nroutes:");
    if config.routes.is_empty() {
        println!("  (none)");
    }
    for r in &config.routes {
        let targets: Vec<String> = r
            .targets
            .iter()
            .map(|t| format!("{}/{}", t.provider, t.model))
            .collect();
        let capability = r
            .capability
            .map(|c| {
                let names: Vec<&str> = c.list().iter().map(|c| c.as_str()).collect();
                format!("[capability {}] ", names.join(" + "))
            })
            .unwrap_or_default();
        println!(
            "  {:<24} {:<16} {capability}{}",
            r.name,
            r.strategy.as_str(),
            targets.join(" -> ")
        );
    }
    if !config.budgets.is_empty() {
        println!("\nbudgets (UTC days and months):");
        for b in &config.budgets {
            let mut limits = Vec::new();
            if let Some(v) = b.daily_usd {
                limits.push(format!("${v} a day"));
            }
            if let Some(v) = b.monthly_usd {
                limits.push(format!("${v} a month"));
            }
            if let Some(v) = b.daily_tokens {
                limits.push(format!("{v} tokens a day"));
            }
            if let Some(v) = b.monthly_tokens {
                limits.push(format!("{v} tokens a month"));
            }
            println!("  {:<24} {}", b.scope.to_string(), limits.join(", "));
        }
    }
    let proxies = proxy_lines(&config);
    if !proxies.is_empty() {
        println!("\noutbound proxies:");
        for line in proxies {
            println!("  {line}");
        }
    }
    println!("\nstate:");
    for line in shared_lines(&config) {
        println!("  {line}");
    }
    println!("\nother model names: `provider/model`; a model listed by exactly one provider; claude-* -> anthropic providers; gpt-*, o1/o3/o4* -> openai providers");
    let w = warnings(&config);
    if !w.is_empty() {
        println!("\nwarnings:");
        for line in w {
            println!("  {line}");
        }
    }
    Ok(())
}

pub fn run_explain(args: ExplainArgs) -> Result<(), String> {
    let config = Arc::new(args.common.load_config()?);
    let endpoint = main_endpoint(Dialect::parse(&args.dialect).unwrap_or(Dialect::OpenaiChat));
    let data_dir = args.common.data_dir()?;
    let store = data_dir
        .exists()
        .then(|| Store::open(&data_dir))
        .and_then(Result::ok);
    let backend: Arc<dyn HealthBackend> = match &store {
        Some(s) => Arc::new(s.clone()),
        None => Arc::new(NoPersistence),
    };
    let ledger = store
        .as_ref()
        .and_then(|s| Ledger::load(s, EventBus::new(), &config.budgets).ok())
        .unwrap_or_else(|| {
            let l = Ledger::new(EventBus::new());
            l.set_budgets(&config.budgets);
            l
        });
    let needs = match &args.body {
        None => None,
        Some(path) => {
            let text = if path.as_os_str() == "-" {
                let mut t = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut t)
                    .map_err(|e| format!("cannot read the body from stdin: {e}"))?;
                t
            } else {
                std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            };
            let head =
                read_head(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(Needs::new(
                endpoint,
                bytes::Bytes::from(text),
                head.tools,
                head.max_output,
            ))
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let health = HealthRegistry::new(Policy::default(), EventBus::new(), backend);
        health.sync(&config);
        let router = Router::new(config.clone(), TranslatorRegistry::builtin());
        let signals = Signals::default();
        let plan = router
            .plan(
                &Ask {
                    endpoint,
                    model: &args.model,
                    conversation: None,
                    needs: needs.as_ref(),
                    client: args.client.as_deref(),
                },
                &Live {
                    health: &health,
                    signals: &signals,
                    windows: &signals,
                    ledger: Some(&ledger),
                },
                tokio::time::Instant::now(),
            )
            .map_err(|e| e.to_string())?;
        println!(
            "`{}` ({} request) -> route `{}` ({:?}), strategy {}",
            args.model,
            args.dialect,
            plan.route,
            plan.resolution,
            plan.strategy.as_str()
        );
        if let Some(n) = &needs {
            let caps: Vec<&str> = n.caps().list().iter().map(|c| c.as_str()).collect();
            println!(
                "  the request needs {}; about {} prompt tokens (estimate)",
                caps.join(", "),
                n.prompt_tokens()
            );
        }
        if plan.candidates.is_empty() {
            match plan.budget_refusal() {
                Some(e) => println!("  refused (budget_exceeded): {e}"),
                None => println!("  no candidate can serve it now"),
            }
        }
        if plan.degraded {
            println!("  degraded: every key is cooling after upstream failures; trying them anyway, the soonest back first");
        }
        if matches!(
            plan.strategy,
            fluxgate_core::config::StrategyKind::LeastLatency
                | fluxgate_core::config::StrategyKind::QuotaAware
        ) {
            println!("  (latency and rate-limit headroom are learned by the running router; `POST /admin/api/explain` shows its live order)");
        }
        let report = plan.report(endpoint, &[]);
        for c in report["candidates"].as_array().into_iter().flatten() {
            let how = if c["translated"].as_bool() == Some(true) {
                format!("translated to {}", c["upstream_endpoint"].as_str().unwrap_or("?"))
            } else {
                "same dialect".to_string()
            };
            let how = match c["proxy"].as_str() {
                Some(p) => format!("{how}, via proxy {p}"),
                None => how,
            };
            println!(
                "  {}. {}/{} with key `{}` ({how}): {}",
                c["position"],
                c["provider"].as_str().unwrap_or(""),
                c["model"].as_str().unwrap_or(""),
                c["key_id"].as_str().unwrap_or(""),
                c["why"].as_str().unwrap_or("")
            );
        }
        for s in &plan.skipped {
            let key = s
                .key_id
                .as_deref()
                .map(|k| format!(" key `{k}`"))
                .unwrap_or_default();
            println!("  skipped {}/{}{key}: {}", s.provider, s.model, s.reason);
        }
        Ok(())
    })
}
