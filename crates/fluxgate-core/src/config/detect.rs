//! Providers detected from the usual environment variables, for when there is no config file.
//!
//! `OPENAI_API_KEY`, `OPENAI_API_KEY_2`, ... become keys `env`, `env-2`, ... of one pool.

use super::{
    Config, ConfigSource, KeyConfig, ProviderConfig, ProviderKind, Timeouts, DEFAULT_LISTEN,
};
use crate::secrets::SecretRef;

/// (provider name, kind, base URL, variable, known models)
const KNOWN: &[(&str, ProviderKind, &str, &str, &[&str])] = &[
    (
        "openai",
        ProviderKind::Openai,
        "https://api.openai.com/v1",
        "OPENAI_API_KEY",
        &[],
    ),
    (
        "anthropic",
        ProviderKind::Anthropic,
        "https://api.anthropic.com",
        "ANTHROPIC_API_KEY",
        &[],
    ),
    (
        "gemini",
        ProviderKind::Gemini,
        "https://generativelanguage.googleapis.com",
        "GEMINI_API_KEY",
        &[],
    ),
    (
        "deepseek",
        ProviderKind::OpenaiCompatible,
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        &["deepseek-chat", "deepseek-reasoner"],
    ),
    (
        "openrouter",
        ProviderKind::OpenaiCompatible,
        "https://openrouter.ai/api/v1",
        "OPENROUTER_API_KEY",
        &[],
    ),
    (
        "groq",
        ProviderKind::OpenaiCompatible,
        "https://api.groq.com/openai/v1",
        "GROQ_API_KEY",
        &[],
    ),
    (
        "mistral",
        ProviderKind::OpenaiCompatible,
        "https://api.mistral.ai/v1",
        "MISTRAL_API_KEY",
        &[],
    ),
    (
        "xai",
        ProviderKind::OpenaiCompatible,
        "https://api.x.ai/v1",
        "XAI_API_KEY",
        &[],
    ),
];

/// A provider Fluxgate knows by its usual environment variable.
#[derive(Debug, Clone, Copy)]
pub struct KnownProvider {
    pub name: &'static str,
    pub kind: ProviderKind,
    pub base_url: &'static str,
    pub variable: &'static str,
    pub models: &'static [&'static str],
}

/// Every provider detected from the environment, in order.
pub fn known_providers() -> impl Iterator<Item = KnownProvider> {
    KNOWN
        .iter()
        .map(|(name, kind, base_url, variable, models)| KnownProvider {
            name,
            kind: *kind,
            base_url,
            variable,
            models,
        })
}

/// Builds a config from environment variables read through `lookup`.
pub fn from_environment(lookup: impl Fn(&str) -> Option<String>) -> Config {
    let present = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    let mut providers = Vec::new();
    for (name, kind, base_url, var, models) in KNOWN {
        let mut keys = Vec::new();
        if present(var) {
            keys.push(KeyConfig {
                id: "env".into(),
                secret: SecretRef::Env(var.to_string()),
                weight: 1,
                enabled: true,
                limits: Default::default(),
                egress: Default::default(),
            });
        }
        for n in 2..=9 {
            let numbered = format!("{var}_{n}");
            if present(&numbered) {
                keys.push(KeyConfig {
                    id: format!("env-{n}"),
                    secret: SecretRef::Env(numbered),
                    weight: 1,
                    enabled: true,
                    limits: Default::default(),
                    egress: Default::default(),
                });
            }
        }
        if !keys.is_empty() {
            providers.push(ProviderConfig {
                name: name.to_string(),
                kind: *kind,
                base_url: base_url.to_string(),
                keys,
                models: models.iter().map(|m| m.to_string()).collect(),
                enabled: true,
                api_version: None,
                balance: (*kind == ProviderKind::OpenaiCompatible)
                    .then(|| crate::vocab::BalanceSource::for_host(base_url))
                    .flatten()
                    .map(|source| super::BalanceConfig {
                        source,
                        threshold: None,
                        rotate_out: false,
                        interval: std::time::Duration::from_secs(600),
                    }),
            });
        }
    }
    Config {
        listen: DEFAULT_LISTEN
            .parse()
            .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8414))),
        allow_lan: false,
        timeouts: Timeouts::default(),
        max_body_bytes: 32 * 1024 * 1024,
        header_timeout: super::DEFAULT_HEADER_TIMEOUT,
        body_timeout: super::DEFAULT_BODY_TIMEOUT,
        max_attempts: 4,
        max_wait: super::DEFAULT_MAX_WAIT,
        providers,
        routes: Vec::new(),
        webhooks: Vec::new(),
        catalogue: Default::default(),
        budgets: Vec::new(),
        shared: Default::default(),
        proxies: Vec::new(),
        source: ConfigSource::Environment,
    }
}
