//! Configuration: the TOML file, or providers detected from the environment.
//!
//! Loading happens in two stages: [`raw`] structs that mirror the file with
//! `deny_unknown_fields`, then [`validate`] into a [`Config`] whose every field has been checked.
//! Every error names the key path it concerns (`providers.openai.keys[0].secret`). The config
//! never holds a secret value, only a [`SecretRef`] saying where to find it.

mod balance;
mod detect;
pub mod edit;
mod engines;
pub mod proxy;
pub mod raw;
mod validate;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::catalogue::{Caps, Catalogue};
use crate::secrets::SecretRef;

pub use detect::{from_environment, known_providers, KnownProvider};

/// What kind of API an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    Openai,
    Anthropic,
    Gemini,
    OpenaiCompatible,
    AzureOpenai,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 5] = [
        ProviderKind::Openai,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::OpenaiCompatible,
        ProviderKind::AzureOpenai,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::OpenaiCompatible => "openai-compatible",
            ProviderKind::AzureOpenai => "azure-openai",
        }
    }

    /// The vendor's own base URL, following its SDK's convention.
    pub fn default_base_url(self) -> Option<&'static str> {
        match self {
            ProviderKind::Openai => Some("https://api.openai.com/v1"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com"),
            ProviderKind::OpenaiCompatible | ProviderKind::AzureOpenai => None,
        }
    }
}

/// How a route orders its candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    Priority,
    RoundRobin,
    Weighted,
    LeastInFlight,
    LeastLatency,
    LeastCost,
    QuotaAware,
}

impl StrategyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Priority => "priority",
            StrategyKind::RoundRobin => "round-robin",
            StrategyKind::Weighted => "weighted",
            StrategyKind::LeastInFlight => "least-in-flight",
            StrategyKind::LeastLatency => "least-latency",
            StrategyKind::LeastCost => "least-cost",
            StrategyKind::QuotaAware => "quota-aware",
        }
    }

    pub const ALL: [StrategyKind; 7] = [
        StrategyKind::Priority,
        StrategyKind::RoundRobin,
        StrategyKind::Weighted,
        StrategyKind::LeastInFlight,
        StrategyKind::LeastLatency,
        StrategyKind::LeastCost,
        StrategyKind::QuotaAware,
    ];

    /// Whether the strategy weighs targets against each other (instead of keeping the route's
    /// targets as a fallback chain).
    pub fn spans_targets(self) -> bool {
        matches!(
            self,
            StrategyKind::LeastLatency | StrategyKind::LeastCost | StrategyKind::QuotaAware
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Timeouts {
    pub connect: Duration,
    pub first_byte: Duration,
    pub idle: Duration,
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(900),
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub id: String,
    pub secret: SecretRef,
    pub weight: u32,
    pub enabled: bool,
    /// Limits Fluxgate enforces itself before sending (the key's plan with its vendor).
    pub limits: KeyLimits,
    /// How its requests leave this machine (its own `proxy`, else its provider's, else the
    /// file's).
    pub egress: proxy::Egress,
}

/// Per-key request and token limits (`rpm`, `tpm`, `rpd` in the config).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KeyLimits {
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub rpd: Option<u32>,
}

impl KeyLimits {
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some() || self.rpd.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderKind,
    /// Without a trailing slash.
    pub base_url: String,
    pub keys: Vec<KeyConfig>,
    pub models: Vec<String>,
    pub enabled: bool,
    /// Azure OpenAI `api-version` (a default is used when unset).
    pub api_version: Option<String>,
    /// Where its keys' remaining credit is read (`None`: it is not).
    pub balance: Option<BalanceConfig>,
}

/// A provider's balance checks: `balance`, `low_balance`, `low_balance_action` and
/// `balance_interval` in the file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BalanceConfig {
    pub source: crate::vocab::BalanceSource,
    /// Below this (in the vendor's currency) a key is low: a notification once, and with
    /// `rotate_out` the key leaves rotation until it is topped up.
    pub threshold: Option<f64>,
    pub rotate_out: bool,
    /// How often each key's balance is read on schedule.
    pub interval: Duration,
}

impl ProviderConfig {
    /// One of this provider's keys.
    pub fn key_ref(&self, key_id: &str) -> crate::vocab::KeyRef {
        crate::vocab::KeyRef::new(&self.name, key_id)
    }

    /// The account (`provider/key_id`) of one of this provider's keys in health, the keychain
    /// and budgets.
    pub fn account(&self, key_id: &str) -> String {
        self.key_ref(key_id).account()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub provider: String,
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    pub name: String,
    /// For a capability route, every configured model that has the capabilities, in the
    /// order the providers and their `models` are written.
    pub targets: Vec<Target>,
    pub strategy: StrategyKind,
    /// `Some` for a capability route (`capability = [...]` instead of `targets`).
    pub capability: Option<Caps>,
    /// A target over budget is passed over for the next (true, the default), or the request
    /// is refused with `budget_exceeded` (false: the route never trades down for a budget).
    pub budget_fallback: bool,
    /// Whether (and how long, how much) the request inspector keeps this route's bodies.
    pub keep_bodies: Option<KeepBodies>,
}

/// A route's opt-in to keeping request and response bodies (scrubbed) for the inspector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeepBodies {
    /// How long a request's bodies are kept.
    pub hours: u32,
    /// At most this many bytes of each body.
    pub max_bytes: usize,
}

impl KeepBodies {
    /// The longest a route may keep bodies (a week).
    pub const MAX_HOURS: u32 = 168;
    /// The most of one body a route may keep (1 MiB).
    pub const MAX_KB: u32 = 1024;
    pub const DEFAULT_KB: u32 = 64;
}

/// What a budget applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum BudgetScope {
    /// Every request.
    All,
    /// One key, as `provider/key_id`.
    Key(String),
    Provider(String),
    Route(String),
    /// A client token, by name.
    Client(String),
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BudgetScope::All => f.write_str("all traffic"),
            BudgetScope::Key(k) => write!(f, "key {k}"),
            BudgetScope::Provider(p) => write!(f, "provider {p}"),
            BudgetScope::Route(r) => write!(f, "route {r}"),
            BudgetScope::Client(c) => write!(f, "client {c}"),
        }
    }
}

/// Spending limits for one scope; periods are UTC calendar days and months.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Budget {
    pub scope: BudgetScope,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
}

/// Where the config came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Environment,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub allow_lan: bool,
    pub timeouts: Timeouts,
    pub max_body_bytes: usize,
    /// A connection must send its request headers within this time, else it is closed.
    pub header_timeout: Duration,
    /// A request's whole body must arrive within this time after its headers, else the
    /// request is answered `408 request_timeout` (a body trickled a byte at a time would
    /// otherwise hold a connection and a buffer forever).
    pub body_timeout: Duration,
    pub max_attempts: u32,
    /// When every key of a route is cooling and the first comes back within this time, a
    /// request waits for it (before its first byte, so the client sees only latency) instead
    /// of failing with `all_keys_cooling`. Zero turns waiting off.
    pub max_wait: Duration,
    pub providers: Vec<ProviderConfig>,
    pub routes: Vec<RouteConfig>,
    /// Where health events are POSTed (see [`crate::webhooks`]).
    pub webhooks: Vec<Webhook>,
    /// The built-in model table with the config's `[models]` overrides.
    pub catalogue: Catalogue,
    pub budgets: Vec<Budget>,
    /// Engines shared with other Fluxgates (`[state]`); none by default.
    pub shared: SharedEngines,
    /// The `[proxies]` defined, in written order.
    pub proxies: Vec<std::sync::Arc<proxy::ProxyEndpoint>>,
    pub source: ConfigSource,
}

/// The engines a fleet of Fluxgates shares (`[state]`). Empty: everything stays in this
/// process, as on a single workstation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedEngines {
    pub redis: Option<RedisTarget>,
    pub postgres: Option<PostgresTarget>,
}

/// A PostgreSQL database for the fleet's request records, spend and usage (`[store]`). The
/// URL never holds a password (that is a secret reference, resolved by each replica).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    /// `postgres://user@host:port/database[?sslmode=disable|prefer|require]`, as written.
    pub url: String,
    pub password: Option<SecretRef>,
    /// While PostgreSQL does not answer, budgeted requests go ahead on each replica's own
    /// spend (`budgets_when_unreachable = "open"`) instead of being refused (the default).
    pub budgets_fail_open: bool,
    /// `postgres_ca`: the CA certificates (PEM) trusted for the server's certificate instead
    /// of the public roots.
    pub ca: Option<PathBuf>,
}

impl PostgresTarget {
    /// The keychain account a `postgres_password = "keychain"` is stored under.
    pub const KEYCHAIN_ACCOUNT: &'static str = "store/postgres";

    /// Whether the connection must be encrypted (`sslmode=require`).
    pub fn tls(&self) -> bool {
        self.url.contains("sslmode=require")
    }
}

/// A Redis server for shared health and limits. The URL never holds a password: that is a
/// secret reference, resolved by each replica from its own environment, file or keychain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `redis://host:port/db` or `rediss://host:port/db`, as written.
    pub url: String,
    pub username: Option<String>,
    pub password: Option<SecretRef>,
    /// `redis_ca`: the CA certificates (PEM) trusted for the server's certificate instead of
    /// the public roots.
    pub ca: Option<PathBuf>,
}

impl RedisTarget {
    /// The keychain account a `redis_password = "keychain"` is stored under.
    pub const KEYCHAIN_ACCOUNT: &'static str = "state/redis";

    /// Whether the connection is encrypted (`rediss://`).
    pub fn tls(&self) -> bool {
        self.url.starts_with("rediss://")
    }
}

/// A webhook: health (and, later, budget) events are POSTed to `url` as JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub url: http::Uri,
    /// Event types to send; empty: all.
    pub events: Vec<String>,
}

/// The event types a webhook may subscribe to.
pub const WEBHOOK_EVENTS: &[&str] = &[
    "key_state_changed",
    "route_unavailable",
    "config_reloaded",
    "config_invalid",
    "budget_threshold",
    "routing_paused",
];

/// The default for [`Config::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The default for [`Config::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// The default for [`Config::max_wait`].
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8414";

/// A config error, naming the key path it concerns when there is one.
///
/// Messages quote the file's structure (key paths, field names, line and column), never its
/// values: a key pasted into the wrong place must not travel on to the log, the event stream,
/// webhooks and notifications. Values serde or TOML would quote are left out, and any word
/// that looks like a key is blanked ([`crate::secrets::blank_secret_words`]).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: TOML syntax error: {message}")]
    Syntax { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: crate::secrets::blank_secret_words(&key.into()),
            message: crate::secrets::blank_secret_words(&message.into()),
        }
    }

    /// A TOML syntax error at its line and column, with the parser's description but not the
    /// source line it would quote.
    fn syntax(origin: &Path, text: &str, e: &toml::de::Error) -> Self {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!(" at line {line}, column {column}")
        });
        ConfigError::Syntax {
            path: origin.display().to_string(),
            message: format!(
                "{}{}",
                crate::secrets::blank_secret_words(e.message().trim()),
                at.unwrap_or_default()
            ),
        }
    }
}

impl Config {
    /// Parses and validates config text. `origin` only labels errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        let value: toml::Value =
            toml::from_str(text).map_err(|e| ConfigError::syntax(origin, text, &e))?;
        let raw: raw::RawConfig = serde_path_to_error::deserialize(value).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner().to_string();
            validate::explain_serde_error(&key, &inner)
        })?;
        validate::validate(raw, ConfigSource::File(origin.to_path_buf()))
    }

    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_toml(&text, path)
    }

    /// Reads `path` when it exists; otherwise detects providers from the environment.
    pub fn load_or_detect(path: &Path) -> Result<Config, ConfigError> {
        if path.exists() {
            Self::load(path)
        } else {
            Ok(from_environment(|name| std::env::var(name).ok()))
        }
    }

    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }

    pub fn route(&self, name: &str) -> Option<&RouteConfig> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// The pattern route (a name ending in `*`, matched as a prefix) for a model name: the
    /// longest matching prefix wins, so `claude-haiku-*` beats `claude-*` beats `*`.
    pub fn route_pattern(&self, model: &str) -> Option<&RouteConfig> {
        self.routes
            .iter()
            .filter_map(|r| Some((r, r.name.strip_suffix('*')?)))
            .filter(|(_, prefix)| model.starts_with(prefix))
            .max_by_key(|(_, prefix)| prefix.len())
            .map(|(r, _)| r)
    }

    /// The routes a tool can name as a model (pattern routes such as `claude-*` are not names).
    pub fn route_names(&self) -> Vec<String> {
        self.routes
            .iter()
            .filter(|r| !r.name.ends_with('*'))
            .map(|r| r.name.clone())
            .collect()
    }

    /// Whether any key reads its secret from the keychain.
    pub fn uses_keychain(&self) -> bool {
        self.providers
            .iter()
            .flat_map(|p| &p.keys)
            .any(|k| k.secret == SecretRef::Keychain)
    }
}

#[cfg(test)]
mod tests;
