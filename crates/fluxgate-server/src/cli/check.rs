//! `fluxgate check` and `fluxgate explain`

use std::sync::Arc;

use clap::Args;
use fluxgate_core::config::{Config, ConfigSource};
use fluxgate_core::events::EventBus;
use fluxgate_core::formats::translate::main_endpoint;
use fluxgate_core::formats::translate::TranslatorRegistry;
use fluxgate_core::formats::Dialect;
use fluxgate_core::health::{HealthBackend, HealthRegistry, NoPersistence, Policy};
use fluxgate_core::routing::Router;
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
    #[command(flatten)]
    common: Common,
}

fn warnings(config: &Config) -> Vec<String> {
    let mut w = Vec::new();
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
        println!(
            "  {:<24} {:<16} {}",
            r.name,
            r.strategy.as_str(),
            targets.join(" -> ")
        );
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
    let backend: Arc<dyn HealthBackend> = match data_dir.exists().then(|| Store::open(&data_dir)) {
        Some(Ok(store)) => Arc::new(store),
        _ => Arc::new(NoPersistence),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let health = HealthRegistry::new(Policy::default(), EventBus::new(), backend);
        health.sync(&config);
        let router = Router::new(config.clone(), TranslatorRegistry::builtin());
        let plan = router
            .plan(endpoint, &args.model, &health, tokio::time::Instant::now())
            .map_err(|e| e.to_string())?;
        println!(
            "`{}` ({} request) -> route `{}` ({:?}), strategy {}",
            args.model,
            args.dialect,
            plan.route,
            plan.resolution,
            plan.strategy.as_str()
        );
        if plan.candidates.is_empty() {
            println!("  no candidate can serve it now");
        }
        if plan.degraded {
            println!("  degraded: every key is cooling after upstream failures; trying them anyway, the soonest back first");
        }
        for (i, c) in plan.candidates.iter().enumerate() {
            let how = if c.upstream_endpoint == endpoint {
                "same dialect".to_string()
            } else {
                format!("translated to {}", c.upstream_endpoint.as_str())
            };
            println!(
                "  {}. {}/{} with key `{}` ({how})",
                i + 1,
                c.provider,
                c.model,
                c.key_id
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
