//! Outbound proxies: `proxy = …` at the top of the file, on a provider and on a key (the most
//! specific wins), and named proxies with credentials under `[proxies.NAME]`.
//!
//! A setting is `"direct"` (the default), `"env"` (follow `HTTPS_PROXY`/`HTTP_PROXY`,
//! `ALL_PROXY` and `NO_PROXY`, read when the config is loaded), a proxy URL without
//! credentials (`http://`, `https://`, `socks5://`, `socks5h://`, with a port), or the name of
//! a `[proxies.NAME]` table. A password is only ever a secret reference; a URL with one in it
//! is refused with the way to write it instead, and is never quoted back.

use std::sync::Arc;

use super::validate::{parse_secret_ref, valid_name};
use super::{ConfigError, SecretRef};
use crate::secrets::SecretValue;

/// How a proxy is spoken to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyScheme {
    /// An HTTP proxy: a `CONNECT` tunnel over plain TCP.
    Http,
    /// An HTTP proxy reached over TLS, then a `CONNECT` tunnel.
    Https,
    /// SOCKS5, with the upstream's name resolved here (and checked like a direct connection).
    Socks5,
    /// SOCKS5, with the upstream's name resolved by the proxy.
    Socks5h,
}

impl ProxyScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        }
    }
}

/// A proxy's password: a reference from the config, or the value an environment variable's
/// URL carried.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxyPassword {
    Secret(SecretRef),
    Inline(SecretValue),
}

/// One proxy to connect through.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyEndpoint {
    /// How people see it: the `[proxies]` name, the URL as written, or `env (URL)`. Never a
    /// credential.
    pub label: String,
    pub scheme: ProxyScheme,
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<ProxyPassword>,
    /// For an `https://` proxy signed by a private CA: a PEM file of the CA certificates,
    /// trusted instead of the public roots.
    pub ca: Option<std::path::PathBuf>,
}

impl ProxyEndpoint {
    /// The account its password is kept under in the keychain (`proxy:NAME`).
    pub fn account(&self) -> String {
        format!("proxy:{}", self.label)
    }

    /// `scheme://host:port`, without credentials.
    pub fn address(&self) -> String {
        format!("{}://{}:{}", self.scheme.as_str(), self.host, self.port)
    }
}

/// How a key's requests leave this machine.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Egress {
    #[default]
    Direct,
    Via(Arc<ProxyEndpoint>),
}

impl Egress {
    pub fn proxy(&self) -> Option<&Arc<ProxyEndpoint>> {
        match self {
            Egress::Direct => None,
            Egress::Via(p) => Some(p),
        }
    }
}

/// A `proxy = …` setting as written, validated but not yet applied to an upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum ProxySetting {
    Direct,
    Env,
    Via(Arc<ProxyEndpoint>),
}

/// `[proxies.NAME]` as written.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub url: String,
    pub username: Option<String>,
    /// A secret reference (`env:NAME`, `file:PATH`, `keychain`), never the password.
    pub password: Option<String>,
    /// A PEM file of the CA that signs an `https://` proxy's certificate.
    pub ca: Option<String>,
}

const URL_EXAMPLE: &str =
    "for example \"http://proxy.internal:3128\" or \"socks5h://127.0.0.1:1080\"";

/// A proxy URL's parts.
struct ParsedUrl {
    scheme: ProxyScheme,
    host: String,
    port: u16,
    /// A user name and maybe a password (only from an environment variable).
    auth: Option<(String, Option<String>)>,
}

/// Parses `scheme://host:port[/]`. `credentials` says what to do with `user:pass@`: refuse
/// (config) or take them (an environment variable's URL). Errors never quote the text, which
/// may hold a password.
fn parse_url(field: &str, text: &str, credentials: bool) -> Result<ParsedUrl, ConfigError> {
    let (scheme, rest) = match text.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        // `HTTPS_PROXY=host:port` is common; it means an HTTP proxy.
        None if credentials => ("http".to_string(), text),
        None => {
            return Err(ConfigError::invalid(
                field,
                format!(
                    "is not a proxy URL, \"direct\", \"env\" or a `[proxies]` name, {URL_EXAMPLE}"
                ),
            ))
        }
    };
    let scheme = match scheme.as_str() {
        "http" => ProxyScheme::Http,
        "https" => ProxyScheme::Https,
        "socks5" => ProxyScheme::Socks5,
        "socks5h" => ProxyScheme::Socks5h,
        other => {
            return Err(ConfigError::invalid(
                field,
                format!("scheme `{other}` is not a proxy Fluxgate speaks; use http, https, socks5 or socks5h"),
            ))
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let auth = match userinfo {
        None => None,
        Some(_) if !credentials => {
            return Err(ConfigError::invalid(
                field,
                "must not hold credentials: define the proxy under `[proxies.NAME]` with \
                 `url`, `username` and `password = \"env:VARIABLE\"` (or `\"file:/path\"`, \
                 `\"keychain\"`), then write `proxy = \"NAME\"`",
            ))
        }
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u, None),
            };
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| {
                        ConfigError::invalid(field, "holds credentials that are not UTF-8")
                    })
            };
            Some((decode(user)?, pass.map(decode).transpose()?))
        }
    };
    let bad = || {
        ConfigError::invalid(
            field,
            format!("must be scheme://host:port with nothing after the port, {URL_EXAMPLE}"),
        )
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, p) = v6.split_once("]:").ok_or_else(bad)?;
        (format!("[{h}]"), p)
    } else {
        let (h, p) = hostport.rsplit_once(':').ok_or_else(|| {
            ConfigError::invalid(field, format!("must name the proxy's port, {URL_EXAMPLE}"))
        })?;
        (h.to_string(), p)
    };
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    if !host_ok || port == 0 {
        return Err(bad());
    }
    let literal = host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok();
    if literal.is_some_and(crate::net::forbidden_ip) {
        return Err(ConfigError::invalid(
            field,
            "the proxy's host must be a name or a routable address: link-local, unspecified \
             and multicast addresses are refused",
        ));
    }
    Ok(ParsedUrl {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        auth,
    })
}

/// `[proxies.NAME]` tables.
pub(super) fn named_proxies(
    raw: super::raw::Ordered<RawProxy>,
) -> Result<Vec<Arc<ProxyEndpoint>>, ConfigError> {
    let mut out: Vec<Arc<ProxyEndpoint>> = Vec::new();
    for (name, p) in raw.0 {
        let key = format!("proxies.{name}");
        if !valid_name(&name) || matches!(name.as_str(), "direct" | "env") {
            return Err(ConfigError::invalid(
                key,
                "proxy names are short labels of letters, digits, `-`, `_` and `.` (not \
                 \"direct\" or \"env\")",
            ));
        }
        if out.iter().any(|e| e.label == name) {
            return Err(ConfigError::invalid(key, "defined twice"));
        }
        let ParsedUrl {
            scheme, host, port, ..
        } = parse_url(&format!("{key}.url"), &p.url, false)?;
        if let Some(u) = &p.username {
            if u.is_empty() || u.len() > 255 || u.chars().any(|c| c.is_control()) {
                return Err(ConfigError::invalid(
                    format!("{key}.username"),
                    "must be 1 to 255 characters without control characters",
                ));
            }
        }
        let password = match p.password.as_deref() {
            None => None,
            Some(text) => Some(ProxyPassword::Secret(parse_secret_ref(text).ok_or_else(
                || {
                    ConfigError::invalid(
                        format!("{key}.password"),
                        "must be a reference, not the password itself: `\"env:VARIABLE\"`, \
                         `\"file:/path\"` or `\"keychain\"` (then `fluxgate keys set proxy:NAME`)",
                    )
                },
            )?)),
        };
        if password.is_some() && p.username.is_none() {
            return Err(ConfigError::invalid(
                format!("{key}.password"),
                "is set without `username`; a proxy's password goes with a user name",
            ));
        }
        let ca = super::engines::ca_path(
            &format!("{key}.ca"),
            p.ca,
            scheme == ProxyScheme::Https,
            "the proxy's URL must be https:// for a CA to apply",
        )?;
        out.push(Arc::new(ProxyEndpoint {
            label: name,
            scheme,
            host,
            port,
            username: p.username,
            password,
            ca,
        }));
    }
    Ok(out)
}

/// A `proxy = …` value.
pub(super) fn setting(
    field: &str,
    text: &str,
    named: &[Arc<ProxyEndpoint>],
) -> Result<ProxySetting, ConfigError> {
    match text {
        "direct" => return Ok(ProxySetting::Direct),
        "env" => return Ok(ProxySetting::Env),
        _ => {}
    }
    if let Some(p) = named.iter().find(|p| p.label == text) {
        return Ok(ProxySetting::Via(p.clone()));
    }
    if !text.contains("://") {
        let names: Vec<&str> = named.iter().map(|p| p.label.as_str()).collect();
        return Err(ConfigError::invalid(
            field,
            if names.is_empty() {
                format!(
                    "is not \"direct\", \"env\", a proxy URL or the name of a `[proxies]` table \
                     (none is defined), {URL_EXAMPLE}"
                )
            } else {
                format!(
                    "is not \"direct\", \"env\", a proxy URL or one of the `[proxies]` defined: {}",
                    names.join(", ")
                )
            },
        ));
    }
    let ParsedUrl {
        scheme, host, port, ..
    } = parse_url(field, text, false)?;
    let address = format!("{}://{host}:{port}", scheme.as_str());
    Ok(ProxySetting::Via(Arc::new(ProxyEndpoint {
        label: address,
        scheme,
        host,
        port,
        username: None,
        password: None,
        ca: None,
    })))
}

/// Where a setting sends requests to `upstream` (a base URL), with `env` looking up
/// environment variables.
pub(super) fn egress(
    setting: &ProxySetting,
    upstream: &url::Url,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Egress, ConfigError> {
    match setting {
        ProxySetting::Direct => Ok(Egress::Direct),
        ProxySetting::Via(p) => Ok(Egress::Via(p.clone())),
        ProxySetting::Env => from_env(upstream, env),
    }
}

/// The proxy the environment names for `upstream`, as curl reads it: `HTTPS_PROXY` (or
/// `HTTP_PROXY` for a plain-http upstream), else `ALL_PROXY`, lower-case names too, unless
/// `NO_PROXY` covers the host. A loopback upstream (a local model server) is always direct.
pub(super) fn from_env(
    upstream: &url::Url,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Egress, ConfigError> {
    let host = upstream.host_str().unwrap_or("").to_ascii_lowercase();
    if crate::net::is_loopback_host(&host) {
        return Ok(Egress::Direct);
    }
    let var = |name: &'static str| {
        env(name)
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    if let Some((_, no)) = var("NO_PROXY") {
        if no_proxy_covers(&no, &host) {
            return Ok(Egress::Direct);
        }
    }
    let first = if upstream.scheme() == "http" {
        "HTTP_PROXY"
    } else {
        "HTTPS_PROXY"
    };
    let Some((name, value)) = var(first).or_else(|| var("ALL_PROXY")) else {
        return Ok(Egress::Direct);
    };
    let field = format!("proxy = \"env\": {name}");
    let ParsedUrl {
        scheme,
        host: phost,
        port,
        auth,
    } = parse_url(&field, value.trim(), true)?;
    let (username, password) = match auth {
        None => (None, None),
        Some((u, p)) => (
            Some(u),
            p.map(|p| ProxyPassword::Inline(SecretValue::new(p))),
        ),
    };
    Ok(Egress::Via(Arc::new(ProxyEndpoint {
        label: format!("{name} ({}://{phost}:{port})", scheme.as_str()),
        scheme,
        host: phost,
        port,
        username,
        password,
        ca: None,
    })))
}

/// Whether a `NO_PROXY` list covers `host`: `*`, the host itself, or a domain it is under
/// (`example.com` and `.example.com` both cover `api.example.com`). Ports are ignored.
fn no_proxy_covers(list: &str, host: &str) -> bool {
    let host = host.trim_matches(['[', ']']);
    list.split(',').map(str::trim).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = entry.trim_start_matches('.');
        let entry = match entry.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
            _ => entry,
        };
        let entry = entry.trim_matches(['[', ']']).to_ascii_lowercase();
        !entry.is_empty()
            && (host == entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.')))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("url")
    }

    #[test]
    fn settings_parse_urls_names_and_keywords() {
        let named = named_proxies(super::super::raw::Ordered(vec![(
            "corp".into(),
            RawProxy {
                url: "http://proxy.corp:3128".into(),
                username: Some("alice".into()),
                password: Some("env:CORP_PROXY_PASSWORD".into()),
                ca: None,
            },
        )]))
        .expect("named");
        assert_eq!(setting("proxy", "direct", &named), Ok(ProxySetting::Direct));
        assert_eq!(setting("proxy", "env", &named), Ok(ProxySetting::Env));
        let ProxySetting::Via(corp) = setting("proxy", "corp", &named).expect("corp") else {
            panic!("corp is a proxy")
        };
        assert_eq!(corp.address(), "http://proxy.corp:3128");
        assert_eq!(corp.account(), "proxy:corp");
        assert_eq!(
            corp.password,
            Some(ProxyPassword::Secret(SecretRef::Env(
                "CORP_PROXY_PASSWORD".into()
            )))
        );
        for (text, scheme, host, port) in [
            (
                "socks5h://127.0.0.1:1080",
                ProxyScheme::Socks5h,
                "127.0.0.1",
                1080,
            ),
            (
                "SOCKS5://Proxy.Example:9050/",
                ProxyScheme::Socks5,
                "proxy.example",
                9050,
            ),
            ("https://[::1]:8443", ProxyScheme::Https, "[::1]", 8443),
        ] {
            let ProxySetting::Via(p) = setting("proxy", text, &named).expect(text) else {
                panic!("{text}")
            };
            assert_eq!((p.scheme, p.host.as_str(), p.port), (scheme, host, port));
            assert_eq!(p.label, p.address());
        }
    }

    #[test]
    fn bad_settings_say_what_to_write_and_never_quote_a_password() {
        let cases = [
            ("http://bob:hunter2-secret@proxy:3128", "[proxies.NAME]"),
            ("ftp://proxy:21", "http, https, socks5 or socks5h"),
            ("http://proxy", "port"),
            ("http://proxy:3128/path", "nothing after the port"),
            ("http://169.254.169.254:80", "link-local"),
            ("corp", "none is defined"),
        ];
        for (text, says) in cases {
            let e = setting("providers.a.proxy", text, &[]).expect_err(text);
            let msg = e.to_string();
            assert!(msg.contains(says), "{text}: {msg}");
            assert!(msg.contains("providers.a.proxy"), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
        let named = |url: &str, user: Option<&str>, pass: Option<&str>| {
            named_proxies(super::super::raw::Ordered(vec![(
                "p".into(),
                RawProxy {
                    url: url.into(),
                    username: user.map(Into::into),
                    password: pass.map(Into::into),
                    ca: None,
                },
            )]))
        };
        let e = named("http://p:1", Some("u"), Some("hunter2")).expect_err("literal");
        assert!(e.to_string().contains("not the password itself"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = named("http://p:1", None, Some("env:P")).expect_err("no user");
        assert!(e.to_string().contains("without `username`"), "{e}");
        let with_ca = |url: &str, ca: &str| {
            named_proxies(super::super::raw::Ordered(vec![(
                "p".into(),
                RawProxy {
                    url: url.into(),
                    username: None,
                    password: None,
                    ca: Some(ca.into()),
                },
            )]))
        };
        let e = with_ca("http://p:1", "/etc/ca.pem").expect_err("plain http");
        assert!(e.to_string().contains("must be https://"), "{e}");
        let e = with_ca("https://p:1", "ca.pem").expect_err("relative");
        assert!(e.to_string().contains("absolute path"), "{e}");
        let ok = with_ca("https://p:1", "/etc/ca.pem").expect("https with a CA");
        assert_eq!(
            ok[0].ca.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let e = named_proxies(super::super::raw::Ordered(vec![(
            "env".into(),
            RawProxy {
                url: "http://p:1".into(),
                username: None,
                password: None,
                ca: None,
            },
        )]))
        .expect_err("reserved");
        assert!(e.to_string().contains("not \"direct\" or \"env\""), "{e}");
    }

    #[test]
    fn env_follows_https_all_and_no_proxy_like_curl() {
        let api = url("https://api.openai.com/v1");
        let plain = url("http://models.lan:8080/v1");
        let env = env_of(&[
            ("HTTPS_PROXY", "http://alice:s%40cret@proxy.corp:3128"),
            ("all_proxy", "socks5h://127.0.0.1:1080"),
            ("NO_PROXY", "internal.example, .corp.example,10.0.0.7:443"),
        ]);
        let Egress::Via(p) = from_env(&api, &env).expect("https") else {
            panic!("HTTPS_PROXY applies")
        };
        assert_eq!(p.address(), "http://proxy.corp:3128");
        assert_eq!(p.label, "HTTPS_PROXY (http://proxy.corp:3128)");
        assert_eq!(p.username.as_deref(), Some("alice"));
        let Some(ProxyPassword::Inline(pw)) = &p.password else {
            panic!("inline password")
        };
        assert_eq!(pw.expose(), "s@cret");
        assert!(!format!("{p:?}").contains("cret"), "Debug hides it");
        let Egress::Via(p) = from_env(&plain, &env).expect("http") else {
            panic!("ALL_PROXY applies to plain http")
        };
        assert_eq!(p.address(), "socks5h://127.0.0.1:1080");
        for direct in [
            "https://internal.example/v1",
            "https://api.corp.example/v1",
            "https://10.0.0.7/v1",
            "http://localhost:11434/v1",
            "http://127.0.0.1:1234/v1",
        ] {
            assert_eq!(from_env(&url(direct), &env), Ok(Egress::Direct), "{direct}");
        }
        assert_eq!(
            from_env(&url("https://notinternal.example/v1"), &env).map(|e| e.proxy().is_some()),
            Ok(true),
            "a suffix match needs a dot"
        );
        assert_eq!(
            from_env(&api, &env_of(&[("NO_PROXY", "*"), ("HTTPS_PROXY", "p:1")])),
            Ok(Egress::Direct)
        );
        assert_eq!(from_env(&api, &env_of(&[])), Ok(Egress::Direct));
        let Egress::Via(p) =
            from_env(&api, &env_of(&[("https_proxy", "proxy:8080")])).expect("scheme-less")
        else {
            panic!("a bare host:port is an HTTP proxy")
        };
        assert_eq!(p.address(), "http://proxy:8080");
        let e = from_env(
            &api,
            &env_of(&[("HTTPS_PROXY", "http://u:topsecret@proxy")]),
        )
        .expect_err("no port");
        assert!(e.to_string().contains("HTTPS_PROXY") && !e.to_string().contains("topsecret"));
    }
}
