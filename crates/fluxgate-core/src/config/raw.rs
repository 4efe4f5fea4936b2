//! The config file exactly as written: serde structs with `deny_unknown_fields`.
//!
//! Nothing here is validated beyond its TOML type; [`super::validate`] turns these into a
//! [`super::Config`]. Tables keep the order they were written in, because the order of
//! providers and keys is meaningful (fallback and priority).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

/// A TOML table whose entries keep their written order.
#[derive(Debug, Clone)]
pub struct Ordered<V>(pub Vec<(String, V)>);

impl<V> Default for Ordered<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OrderedVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for OrderedVisitor<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a table")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, V>()? {
                    entries.push((k, v));
                }
                Ok(Ordered(entries))
            }
        }
        deserializer.deserialize_map(OrderedVisitor(PhantomData))
    }
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub listen: Option<String>,
    /// Allows a non-loopback `listen` address (client tokens stay required).
    #[serde(default)]
    pub allow_lan: bool,
    /// How requests leave this machine by default: `"direct"`, `"env"`, a proxy URL or a
    /// `[proxies]` name (providers and keys may say otherwise).
    pub proxy: Option<String>,
    /// `[proxies.NAME]`: proxies with credentials, named so settings can refer to them.
    #[serde(default)]
    pub proxies: Ordered<super::proxy::RawProxy>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub retry: RawRetry,
    #[serde(default)]
    pub providers: Ordered<RawProvider>,
    #[serde(default)]
    pub routes: Ordered<RawRoute>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
    /// Catalogue overrides and additions, keyed by model id or `provider/model`.
    #[serde(default)]
    pub models: Ordered<RawModel>,
    #[serde(default)]
    pub budgets: Vec<RawBudget>,
    /// `[state]`: where a fleet of Fluxgates shares health and limits (team mode).
    #[serde(default)]
    pub state: RawState,
    /// `[store]`: where a fleet keeps its durable ledger (team mode).
    #[serde(default)]
    pub store: RawStore,
}

/// `[store]`: the durable ledger. Absent: SQLite in the data directory (the default).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `postgres://user@host:port/database?sslmode=require`, without a password.
    pub postgres: Option<String>,
    /// A secret reference (`env:NAME`, `file:PATH`, `keychain`) for PostgreSQL's password.
    pub postgres_password: Option<String>,
    /// `"closed"` (the default: refuse budgeted requests) or `"open"` (let each replica's own
    /// spend decide) while PostgreSQL does not answer.
    pub budgets_when_unreachable: Option<String>,
    /// A PEM file of the CA certificates that sign PostgreSQL's certificate (a private CA),
    /// trusted instead of the public roots.
    pub postgres_ca: Option<String>,
}

/// `[state]`: shared engines. Absent: everything stays in this process (the default).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `redis://host:port/db` or `rediss://…` (TLS), without a password.
    pub redis: Option<String>,
    /// A secret reference (`env:NAME`, `file:PATH`, `keychain`) for Redis's password.
    pub redis_password: Option<String>,
    /// A Redis ACL user name (the password above is then that user's).
    pub redis_username: Option<String>,
    /// A PEM file of the CA certificates that sign Redis's certificate (a private CA),
    /// trusted instead of the public roots.
    pub redis_ca: Option<String>,
}

/// `[models."id"]`: prices in USD per million tokens.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawModel {
    pub capabilities: Option<Vec<String>>,
    pub context_window: Option<u64>,
    pub max_output: Option<u64>,
    pub input_price: Option<f64>,
    pub output_price: Option<f64>,
    pub cached_input_price: Option<f64>,
}

/// `[[budgets]]`: limits for one scope (at most one of `key`, `provider`, `route`, `client`;
/// none: all traffic).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawBudget {
    pub key: Option<String>,
    pub provider: Option<String>,
    pub route: Option<String>,
    pub client: Option<String>,
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: String,
    /// Event types to send (`key_state_changed`, `route_unavailable`, ...); all when absent.
    pub events: Option<Vec<String>>,
}

/// Timeouts in seconds (fractions allowed).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    pub connect: Option<f64>,
    pub first_byte: Option<f64>,
    pub idle: Option<f64>,
    pub total: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_body_mb: Option<u64>,
    /// Seconds a client has to send its request headers (slowloris).
    pub header_timeout: Option<f64>,
    /// Seconds a client has to send its whole request body (a trickled body is cut off).
    pub body_timeout: Option<f64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    pub max_attempts: Option<u32>,
    /// Seconds a request may wait for a cooling key to come back before `all_keys_cooling`.
    pub max_wait: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    pub kind: String,
    pub base_url: Option<String>,
    #[serde(default)]
    pub keys: Vec<RawKey>,
    #[serde(default)]
    pub models: Vec<String>,
    pub enabled: Option<bool>,
    /// Permits plain `http://` to a non-loopback host (keys would travel unencrypted).
    #[serde(default)]
    pub insecure_http: bool,
    /// Azure OpenAI: the `api-version` query parameter.
    pub api_version: Option<String>,
    /// This provider's outbound proxy (see the top-level `proxy`).
    pub proxy: Option<String>,
    /// Where its keys' remaining credit is read: `"auto"` (by host: DeepSeek, OpenRouter,
    /// Moonshot), `"off"`, or a vendor's name.
    pub balance: Option<String>,
    /// Below this credit (the vendor's currency) a key is low.
    pub low_balance: Option<f64>,
    /// `"notify"` (the default) or `"rotate-out"` (also leave rotation while low).
    pub low_balance_action: Option<String>,
    /// Seconds between scheduled balance checks (at least 60; default 600).
    pub balance_interval: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub id: String,
    pub secret: Option<String>,
    pub weight: Option<u32>,
    pub enabled: Option<bool>,
    /// Local limits, enforced before sending: requests per minute, tokens per minute,
    /// requests per day.
    pub rpm: Option<u32>,
    pub tpm: Option<u64>,
    pub rpd: Option<u32>,
    /// This key's outbound proxy (see the top-level `proxy`).
    pub proxy: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(default)]
    pub targets: Vec<String>,
    /// A capability route: every configured model with all of these.
    pub capability: Option<Vec<String>>,
    pub strategy: Option<String>,
    /// Whether a target over budget may be passed over for the next one (default true);
    /// false refuses the request with `budget_exceeded` instead.
    pub budget_fallback: Option<bool>,
    /// Keep this route's request and response bodies (scrubbed) for the request inspector,
    /// for this many hours (off by default).
    pub keep_bodies_hours: Option<f64>,
    /// At most this many KiB of each body kept (default 64).
    pub keep_bodies_kb: Option<u32>,
}
