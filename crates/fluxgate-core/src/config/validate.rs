//! Raw config -> validated [`Config`]. Every check names the key path it concerns.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::raw::{RawBudget, RawConfig, RawKey, RawModel, RawProvider, RawRoute, RawTimeouts};
use super::{
    Budget, BudgetScope, Config, ConfigError, ConfigSource, KeepBodies, KeyConfig, KeyLimits,
    ProviderConfig, ProviderKind, RouteConfig, StrategyKind, Target, Timeouts, DEFAULT_LISTEN,
};
use crate::catalogue::{Capability, Caps, Catalogue, ModelOverride};
use crate::secrets::SecretRef;

/// Turns serde's message into one that says what to do, keeping the key path.
pub(super) fn explain_serde_error(key: &str, message: &str) -> ConfigError {
    let key = if key.is_empty() || key == "." {
        "config".to_string()
    } else {
        key.to_string()
    };
    if message.starts_with("unknown field") {
        let field = message.split('`').nth(1).unwrap_or("");
        if matches!(field, "api_key" | "key" | "apikey" | "token") {
            return ConfigError::invalid(
                key,
                format!(
                    "unknown field `{field}`: keys are listed under `keys = [{{ id = \"...\" }}]` \
                     and their values live in the OS keychain (`fluxgate keys set PROVIDER/ID`), \
                     or are referenced as `secret = \"env:NAME\"` / `\"file:PATH\"`"
                ),
            );
        }
    }
    ConfigError::invalid(key, without_values(message))
}

/// serde's message without the value it quotes: `invalid type: string "…", expected …`
/// becomes `invalid type: a string, expected …` (the value may be a key pasted in the wrong
/// place; the key path says where it is).
fn without_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(i) = rest.find("string \"") {
        out.push_str(&rest[..i]);
        out.push_str("a string");
        let after = &rest[i + "string \"".len()..];
        // The value ends at the last quote before the next `, expected` (a value may hold
        // quotes of its own), else at the next quote.
        let end = after
            .find("\", expected")
            .or_else(|| after.find('"'))
            .unwrap_or(after.len());
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

pub(super) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().any(|c| c != '.')
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn validate(raw: RawConfig, source: ConfigSource) -> Result<Config, ConfigError> {
    let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        ConfigError::invalid(
            "listen",
            format!("`{listen_text}` is not an address like 127.0.0.1:8414"),
        )
    })?;
    if !listen.ip().is_loopback() && !raw.allow_lan {
        return Err(ConfigError::invalid(
            "listen",
            format!(
                "`{listen}` is not a loopback address; Fluxgate binds 127.0.0.1 by default. \
                 Set `allow_lan = true` to expose it to the network (client tokens stay required)"
            ),
        ));
    }

    let timeouts = timeouts(&raw.timeouts)?;
    let max_body_mb = raw.limits.max_body_mb.unwrap_or(32);
    if max_body_mb == 0 || max_body_mb > 1024 {
        return Err(ConfigError::invalid(
            "limits.max_body_mb",
            "must be between 1 and 1024",
        ));
    }
    let max_attempts = raw.retry.max_attempts.unwrap_or(4);
    if !(1..=16).contains(&max_attempts) {
        return Err(ConfigError::invalid(
            "retry.max_attempts",
            "must be between 1 and 16",
        ));
    }

    let header_timeout = seconds(
        "limits.header_timeout",
        raw.limits.header_timeout,
        super::DEFAULT_HEADER_TIMEOUT,
    )?;
    let body_timeout = seconds(
        "limits.body_timeout",
        raw.limits.body_timeout,
        super::DEFAULT_BODY_TIMEOUT,
    )?;
    let max_wait = match raw.retry.max_wait {
        Some(0.0) => Duration::ZERO,
        other => seconds("retry.max_wait", other, super::DEFAULT_MAX_WAIT)?,
    };

    let proxies = super::proxy::named_proxies(raw.proxies)?;
    let default_proxy = match raw.proxy.as_deref() {
        None => super::proxy::ProxySetting::Direct,
        Some(text) => super::proxy::setting("proxy", text, &proxies)?,
    };
    let env = |name: &str| std::env::var(name).ok();
    let net = Net {
        proxies: &proxies,
        default: &default_proxy,
        env: &env,
    };
    let mut providers = Vec::new();
    let mut seen = HashSet::new();
    for (name, p) in raw.providers.0 {
        let key = format!("providers.{name}");
        if !valid_name(&name) || crate::secrets::looks_like_secret(&name) {
            return Err(ConfigError::invalid(
                key,
                "provider names are short labels of letters, digits, `-`, `_` and `.` \
                 (this one looks like an API key: store keys with `fluxgate keys set`)",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err(ConfigError::invalid(key, "defined twice"));
        }
        providers.push(provider(&name, p, &net)?);
    }

    let mut overrides = std::collections::HashMap::new();
    for (name, m) in raw.models.0 {
        overrides.insert(name.clone(), model_override(&name, m)?);
    }
    let catalogue = Catalogue::new(overrides);

    let mut routes = Vec::new();
    for (name, r) in raw.routes.0 {
        routes.push(route(&name, r, &providers, &catalogue)?);
    }

    let mut budgets = Vec::new();
    for (i, b) in raw.budgets.into_iter().enumerate() {
        budgets.push(budget(i, b, &providers, &routes)?);
    }

    let mut webhooks = Vec::new();
    for (i, w) in raw.webhooks.into_iter().enumerate() {
        webhooks.push(webhook(i, w)?);
    }

    let shared = super::SharedEngines {
        redis: super::engines::redis_target(raw.state)?,
        postgres: super::engines::postgres_target(raw.store)?,
    };

    Ok(Config {
        listen,
        allow_lan: raw.allow_lan,
        timeouts,
        max_body_bytes: (max_body_mb as usize) * 1024 * 1024,
        header_timeout,
        body_timeout,
        max_attempts,
        max_wait,
        providers,
        routes,
        webhooks,
        catalogue,
        budgets,
        shared,
        proxies,
        source,
    })
}

/// What a provider's and its keys' `proxy` settings are resolved against.
struct Net<'a> {
    proxies: &'a [std::sync::Arc<super::proxy::ProxyEndpoint>],
    default: &'a super::proxy::ProxySetting,
    env: &'a dyn Fn(&str) -> Option<String>,
}

fn webhook(i: usize, w: super::raw::RawWebhook) -> Result<super::Webhook, ConfigError> {
    let key = format!("webhooks[{i}]");
    let url: http::Uri = w
        .url
        .parse()
        .ok()
        .filter(|u: &http::Uri| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
        })
        .ok_or_else(|| {
            ConfigError::invalid(
                format!("{key}.url"),
                "must be an http:// or https:// URL, for example \"https://hooks.example.com/fluxgate\"",
            )
        })?;
    let events = w.events.unwrap_or_default();
    for e in &events {
        if !super::WEBHOOK_EVENTS.contains(&e.as_str()) {
            return Err(ConfigError::invalid(
                format!("{key}.events"),
                format!(
                    "unknown event `{e}`; use any of {}",
                    super::WEBHOOK_EVENTS.join(", ")
                ),
            ));
        }
    }
    Ok(super::Webhook { url, events })
}

pub(super) fn seconds(
    key: &str,
    value: Option<f64>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(Duration::from_secs_f64(v)),
        Some(_) => Err(ConfigError::invalid(
            key,
            "must be a number of seconds between 0 and 86400",
        )),
    }
}

fn timeouts(raw: &RawTimeouts) -> Result<Timeouts, ConfigError> {
    let d = Timeouts::default();
    Ok(Timeouts {
        connect: seconds("timeouts.connect", raw.connect, d.connect)?,
        first_byte: seconds("timeouts.first_byte", raw.first_byte, d.first_byte)?,
        idle: seconds("timeouts.idle", raw.idle, d.idle)?,
        total: seconds("timeouts.total", raw.total, d.total)?,
    })
}

fn kind(key: &str, text: &str) -> Result<ProviderKind, ConfigError> {
    ProviderKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| {
            let all: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
            ConfigError::invalid(
                format!("{key}.kind"),
                format!("unknown kind `{text}`; use one of {}", all.join(", ")),
            )
        })
}

fn provider(name: &str, p: RawProvider, net: &Net<'_>) -> Result<ProviderConfig, ConfigError> {
    let key = format!("providers.{name}");
    let kind = kind(&key, &p.kind)?;
    let base_url = match (p.base_url.clone(), kind.default_base_url()) {
        (Some(u), _) => u,
        (None, Some(d)) => d.to_string(),
        (None, None) => {
            return Err(ConfigError::invalid(
                format!("{key}.base_url"),
                format!(
                    "required for kind `{}` (for example \"https://api.deepseek.com/v1\")",
                    kind.as_str()
                ),
            ))
        }
    };
    let url = url::Url::parse(&base_url).map_err(|e| {
        ConfigError::invalid(
            format!("{key}.base_url"),
            format!("`{base_url}` is not a URL: {e}"),
        )
    })?;
    let host = url.host_str().unwrap_or("");
    let literal = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok();
    if host.is_empty() || literal.is_some_and(crate::net::forbidden_ip) {
        return Err(ConfigError::invalid(
            format!("{key}.base_url"),
            "the host must be a name or a routable address: link-local (cloud metadata), \
             unspecified and multicast addresses are refused",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" => {
            if !crate::net::is_loopback_host(host) && !p.insecure_http {
                return Err(ConfigError::invalid(
                    format!("{key}.base_url"),
                    "plain http to a non-loopback host would send API keys unencrypted; use https, \
                     or set `insecure_http = true` on this provider if you accept that",
                ));
            }
        }
        other => {
            return Err(ConfigError::invalid(
                format!("{key}.base_url"),
                format!("scheme `{other}` is not supported; use https"),
            ))
        }
    }
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ConfigError::invalid(
            format!("{key}.base_url"),
            "must not contain credentials, a query string or a fragment; keys belong under `keys`",
        ));
    }
    let base_url = base_url.trim_end_matches('/').to_string();
    let balance = super::balance::settings(&key, kind, &base_url, &p)?;
    let provider_proxy = match p.proxy.as_deref() {
        None => net.default.clone(),
        Some(text) => super::proxy::setting(&format!("{key}.proxy"), text, net.proxies)?,
    };
    let mut keys = Vec::new();
    let mut ids = HashSet::new();
    for (i, k) in p.keys.into_iter().enumerate() {
        let kkey = format!("{key}.keys[{i}]");
        let setting = match k.proxy.as_deref() {
            None => provider_proxy.clone(),
            Some(text) => super::proxy::setting(&format!("{kkey}.proxy"), text, net.proxies)?,
        };
        let mut kc = key_config(name, &kkey, k)?;
        kc.egress = super::proxy::egress(&setting, &url, net.env)?;
        if !ids.insert(kc.id.clone()) {
            return Err(ConfigError::invalid(
                format!("{kkey}.id"),
                format!("key id `{}` is used twice", kc.id),
            ));
        }
        keys.push(kc);
    }
    Ok(ProviderConfig {
        name: name.to_string(),
        kind,
        base_url,
        keys,
        models: p.models,
        enabled: p.enabled.unwrap_or(true),
        api_version: p.api_version,
        balance,
    })
}

/// Parses a secret reference; anything that is not a reference is taken for a pasted key.
pub fn parse_secret_ref(text: &str) -> Option<SecretRef> {
    if let Some(name) = text.strip_prefix("env:") {
        let ok = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        return ok.then(|| SecretRef::Env(name.to_string()));
    }
    if let Some(path) = text.strip_prefix("file:") {
        return (!path.is_empty()).then(|| SecretRef::File(PathBuf::from(path)));
    }
    (text == "keychain").then_some(SecretRef::Keychain)
}

fn key_config(provider: &str, key: &str, k: RawKey) -> Result<KeyConfig, ConfigError> {
    if !valid_name(&k.id) {
        return Err(ConfigError::invalid(
            format!("{key}.id"),
            "key ids use letters, digits, `-`, `_` and `.` only",
        ));
    }
    if crate::secrets::looks_like_secret(&k.id) {
        return Err(ConfigError::invalid(
            format!("{key}.id"),
            "this looks like an API key, but an id is only a label (it is shown in the console \
             and logs): use a short name such as `work`, and store the key with \
             `fluxgate keys set PROVIDER/ID`",
        ));
    }
    let secret = match k.secret.as_deref() {
        None => SecretRef::Keychain,
        Some(text) => parse_secret_ref(text).ok_or_else(|| {
            ConfigError::invalid(
                format!("{key}.secret"),
                format!(
                    "this looks like a literal API key, and keys are never kept in the config \
                     file. Store it in the OS keychain with `fluxgate keys set {provider}/{}` and \
                     remove `secret`, or write `secret = \"env:VARIABLE\"` or `\"file:/path\"`",
                    k.id
                ),
            )
        })?,
    };
    let weight = k.weight.unwrap_or(1);
    if weight == 0 || weight > 1000 {
        return Err(ConfigError::invalid(
            format!("{key}.weight"),
            "must be between 1 and 1000",
        ));
    }
    for (field, v) in [
        ("rpm", k.rpm.map(u64::from)),
        ("tpm", k.tpm),
        ("rpd", k.rpd.map(u64::from)),
    ] {
        if v == Some(0) {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
    }
    Ok(KeyConfig {
        id: k.id,
        secret,
        weight,
        enabled: k.enabled.unwrap_or(true),
        limits: KeyLimits {
            rpm: k.rpm,
            tpm: k.tpm,
            rpd: k.rpd,
        },
        egress: super::proxy::Egress::Direct,
    })
}

fn strategy(key: &str, text: Option<&str>) -> Result<StrategyKind, ConfigError> {
    let text = text.unwrap_or("priority");
    StrategyKind::ALL
        .into_iter()
        .find(|k| k.as_str() == text)
        .ok_or_else(|| {
            let all: Vec<&str> = StrategyKind::ALL.iter().map(|k| k.as_str()).collect();
            ConfigError::invalid(
                format!("{key}.strategy"),
                format!("unknown strategy `{text}`; use one of {}", all.join(", ")),
            )
        })
}

fn capabilities(key: &str, list: &[String]) -> Result<Caps, ConfigError> {
    let mut caps = Caps::NONE;
    for c in list {
        let cap = Capability::parse(c).ok_or_else(|| {
            let all: Vec<&str> = Capability::ALL.iter().map(|c| c.as_str()).collect();
            ConfigError::invalid(
                key,
                format!("unknown capability `{c}`; use any of {}", all.join(", ")),
            )
        })?;
        caps = caps.with(cap);
    }
    Ok(caps)
}

fn model_override(name: &str, m: RawModel) -> Result<ModelOverride, ConfigError> {
    let key = format!("models.\"{name}\"");
    if name.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "needs a model id or `provider/model`",
        ));
    }
    for (field, v) in [
        ("input_price", m.input_price),
        ("output_price", m.output_price),
        ("cached_input_price", m.cached_input_price),
    ] {
        if let Some(v) = v {
            if !v.is_finite() || !(0.0..=10_000.0).contains(&v) {
                return Err(ConfigError::invalid(
                    format!("{key}.{field}"),
                    "must be a price in USD per million tokens, between 0 and 10000",
                ));
            }
        }
    }
    if m.context_window == Some(0) {
        return Err(ConfigError::invalid(
            format!("{key}.context_window"),
            "must be at least 1 token",
        ));
    }
    let capabilities = match &m.capabilities {
        Some(list) => Some(capabilities(&format!("{key}.capabilities"), list)?),
        None => None,
    };
    Ok(ModelOverride {
        capabilities,
        context_window: m.context_window,
        max_output: m.max_output,
        input_price: m.input_price,
        output_price: m.output_price,
        cached_input_price: m.cached_input_price,
    })
}

fn budget(
    i: usize,
    b: RawBudget,
    providers: &[ProviderConfig],
    routes: &[RouteConfig],
) -> Result<Budget, ConfigError> {
    let key = format!("budgets[{i}]");
    let named = [
        b.key.is_some(),
        b.provider.is_some(),
        b.route.is_some(),
        b.client.is_some(),
    ];
    if named.iter().filter(|n| **n).count() > 1 {
        return Err(ConfigError::invalid(
            key,
            "name at most one of `key`, `provider`, `route`, `client` (none: all traffic); \
             write one `[[budgets]]` per scope",
        ));
    }
    let scope = if let Some(k) = b.key {
        let found = k.split_once('/').is_some_and(|(p, id)| {
            providers
                .iter()
                .any(|pc| pc.name == p && pc.keys.iter().any(|kc| kc.id == id))
        });
        if !found {
            return Err(ConfigError::invalid(
                format!("{key}.key"),
                format!("no key `{k}`; write `provider/key_id` of a configured key"),
            ));
        }
        BudgetScope::Key(k)
    } else if let Some(p) = b.provider {
        if !providers.iter().any(|pc| pc.name == p) {
            return Err(ConfigError::invalid(
                format!("{key}.provider"),
                format!("no provider named `{p}`"),
            ));
        }
        BudgetScope::Provider(p)
    } else if let Some(r) = b.route {
        if !routes.iter().any(|rc| rc.name == r) {
            return Err(ConfigError::invalid(
                format!("{key}.route"),
                format!("no route named `{r}`"),
            ));
        }
        BudgetScope::Route(r)
    } else if let Some(c) = b.client {
        BudgetScope::Client(c)
    } else {
        BudgetScope::All
    };
    for (field, v) in [("daily_usd", b.daily_usd), ("monthly_usd", b.monthly_usd)] {
        if let Some(v) = v {
            if !v.is_finite() || v <= 0.0 {
                return Err(ConfigError::invalid(
                    format!("{key}.{field}"),
                    "must be an amount in USD above 0",
                ));
            }
        }
    }
    for (field, v) in [
        ("daily_tokens", b.daily_tokens),
        ("monthly_tokens", b.monthly_tokens),
    ] {
        if v == Some(0) {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                "must be at least 1",
            ));
        }
    }
    if b.daily_usd.is_none()
        && b.monthly_usd.is_none()
        && b.daily_tokens.is_none()
        && b.monthly_tokens.is_none()
    {
        return Err(ConfigError::invalid(
            key,
            "sets no limit; add `daily_usd`, `monthly_usd`, `daily_tokens` or `monthly_tokens`",
        ));
    }
    Ok(Budget {
        scope,
        daily_usd: b.daily_usd,
        monthly_usd: b.monthly_usd,
        daily_tokens: b.daily_tokens,
        monthly_tokens: b.monthly_tokens,
    })
}

fn route(
    name: &str,
    r: RawRoute,
    providers: &[ProviderConfig],
    catalogue: &Catalogue,
) -> Result<RouteConfig, ConfigError> {
    let key = format!("routes.\"{name}\"");
    if name.is_empty() {
        return Err(ConfigError::invalid(
            key,
            "a route needs a name (the model name clients send)",
        ));
    }
    if name[..name.len() - 1].contains('*') {
        return Err(ConfigError::invalid(
            key,
            "`*` may only end a route name (`claude-*` matches every model starting `claude-`)",
        ));
    }
    let strategy = strategy(&key, r.strategy.as_deref())?;
    if let Some(list) = &r.capability {
        if !r.targets.is_empty() {
            return Err(ConfigError::invalid(
                key,
                "has both `targets` and `capability`; a capability route finds its targets itself",
            ));
        }
        let needed = capabilities(&format!("{key}.capability"), list)?;
        if needed == Caps::NONE {
            return Err(ConfigError::invalid(
                format!("{key}.capability"),
                "lists no capability",
            ));
        }
        let targets: Vec<Target> = providers
            .iter()
            .flat_map(|p| p.models.iter().map(move |m| (p, m)))
            .filter(|(p, m)| {
                catalogue
                    .lookup(&p.name, m)
                    .is_some_and(|i| i.capabilities.covers(needed))
            })
            .map(|(p, m)| Target {
                provider: p.name.clone(),
                model: m.clone(),
            })
            .collect();
        if targets.is_empty() {
            return Err(ConfigError::invalid(
                format!("{key}.capability"),
                format!(
                    "no configured model has {}; list models under `providers.NAME.models` \
                     (their capabilities come from the catalogue, or from `[models.\"ID\"]`)",
                    list.join(" + ")
                ),
            ));
        }
        return Ok(RouteConfig {
            name: name.to_string(),
            targets,
            strategy,
            capability: Some(needed),
            budget_fallback: r.budget_fallback.unwrap_or(true),
            keep_bodies: keep_bodies(&key, &r)?,
        });
    }
    if r.targets.is_empty() {
        return Err(ConfigError::invalid(
            format!("{key}.targets"),
            "needs at least one `provider/model` target (or `capability = [...]`)",
        ));
    }
    let mut targets = Vec::new();
    for (i, t) in r.targets.iter().enumerate() {
        let tkey = format!("{key}.targets[{i}]");
        let Some((provider, model)) = t.split_once('/') else {
            return Err(ConfigError::invalid(
                tkey,
                format!("`{t}` must be `provider/model`"),
            ));
        };
        if model.is_empty() {
            return Err(ConfigError::invalid(tkey, format!("`{t}` names no model")));
        }
        if !providers.iter().any(|p| p.name == provider) {
            let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
            return Err(ConfigError::invalid(
                tkey,
                format!(
                    "no provider named `{provider}` (defined: {})",
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        targets.push(Target {
            provider: provider.to_string(),
            model: model.to_string(),
        });
    }
    Ok(RouteConfig {
        name: name.to_string(),
        targets,
        strategy,
        capability: None,
        budget_fallback: r.budget_fallback.unwrap_or(true),
        keep_bodies: keep_bodies(&key, &r)?,
    })
}

/// A route's `keep_bodies_hours` and `keep_bodies_kb`.
fn keep_bodies(key: &str, r: &RawRoute) -> Result<Option<KeepBodies>, ConfigError> {
    let Some(hours) = r.keep_bodies_hours else {
        if r.keep_bodies_kb.is_some() {
            return Err(ConfigError::invalid(
                format!("{key}.keep_bodies_kb"),
                "is set but `keep_bodies_hours` is not; bodies are kept only for a time you \
                 choose (say `keep_bodies_hours = 24`)",
            ));
        }
        return Ok(None);
    };
    if !(hours >= 1.0 && hours <= f64::from(KeepBodies::MAX_HOURS) && hours.fract() == 0.0) {
        return Err(ConfigError::invalid(
            format!("{key}.keep_bodies_hours"),
            format!(
                "must be a whole number of hours from 1 to {} (a week)",
                KeepBodies::MAX_HOURS
            ),
        ));
    }
    let kb = r.keep_bodies_kb.unwrap_or(KeepBodies::DEFAULT_KB);
    if kb == 0 || kb > KeepBodies::MAX_KB {
        return Err(ConfigError::invalid(
            format!("{key}.keep_bodies_kb"),
            format!(
                "must be from 1 to {} (KiB of each body)",
                KeepBodies::MAX_KB
            ),
        ));
    }
    Ok(Some(KeepBodies {
        hours: hours as u32,
        max_bytes: kb as usize * 1024,
    }))
}
