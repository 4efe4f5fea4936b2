//! `[state]` and `[store]`: the shared engines of team mode. URLs never hold credentials
//! (a password is a secret reference, never quoted back in an error), and a private CA
//! only goes with an encrypted connection.

use super::validate::{parse_secret_ref, valid_name};
use super::ConfigError;

/// `[state]`: a Redis URL without credentials in it, and its password as a secret reference.
pub(super) fn redis_target(
    raw: super::raw::RawState,
) -> Result<Option<super::RedisTarget>, ConfigError> {
    let Some(url) = raw.redis else {
        let set = [
            ("state.redis_password", raw.redis_password.is_some()),
            ("state.redis_username", raw.redis_username.is_some()),
            ("state.redis_ca", raw.redis_ca.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
            return Err(ConfigError::invalid(
                *field,
                "is set but `state.redis` is not; add `redis = \"redis://host:6379\"`",
            ));
        }
        return Ok(None);
    };
    let example = "for example \"redis://127.0.0.1:6379/0\" (or \"rediss://…\" for TLS)";
    let rest = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
        .ok_or_else(|| {
            ConfigError::invalid("state.redis", format!("must be a redis:// URL, {example}"))
        })?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('@') {
        return Err(ConfigError::invalid(
            "state.redis",
            "must not hold credentials: write the user as `redis_username = \"NAME\"` and the \
             password as `redis_password = \"env:VARIABLE\"` (or `\"file:/path\"`, `\"keychain\"`)",
        ));
    }
    let host_ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    let db_ok = path.is_empty() || path.parse::<u16>().is_ok();
    if !host_ok || !db_ok || url.contains('?') {
        return Err(ConfigError::invalid(
            "state.redis",
            format!("`{url}` is not a Redis URL of host, port and database number, {example}"),
        ));
    }
    let password = password_ref("state.redis_password", raw.redis_password.as_deref())?;
    if let Some(u) = &raw.redis_username {
        if !valid_name(u) {
            return Err(ConfigError::invalid(
                "state.redis_username",
                "use letters, digits, `-`, `_` and `.` only",
            ));
        }
    }
    let ca = ca_path(
        "state.redis_ca",
        raw.redis_ca,
        url.starts_with("rediss://"),
        "write the URL as `rediss://…`",
    )?;
    Ok(Some(super::RedisTarget {
        url,
        username: raw.redis_username,
        password,
        ca,
    }))
}

/// An engine's password: a secret reference, never the password itself.
fn password_ref(field: &str, text: Option<&str>) -> Result<Option<super::SecretRef>, ConfigError> {
    let Some(text) = text else { return Ok(None) };
    parse_secret_ref(text).map(Some).ok_or_else(|| {
        ConfigError::invalid(
            field,
            "must be a reference, not the password itself: `\"env:VARIABLE\"`, \
             `\"file:/path\"` or `\"keychain\"`",
        )
    })
}

/// `[store]`: a PostgreSQL URL with a user but no password, and only `sslmode` as an option.
pub(super) fn postgres_target(
    raw: super::raw::RawStore,
) -> Result<Option<super::PostgresTarget>, ConfigError> {
    let Some(url) = raw.postgres else {
        let set = [
            ("store.postgres_password", raw.postgres_password.is_some()),
            (
                "store.budgets_when_unreachable",
                raw.budgets_when_unreachable.is_some(),
            ),
            ("store.postgres_ca", raw.postgres_ca.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
            return Err(ConfigError::invalid(
                *field,
                "is set but `store.postgres` is not; add \
                 `postgres = \"postgres://fluxgate@host:5432/fluxgate\"`",
            ));
        }
        return Ok(None);
    };
    let example = "for example \"postgres://fluxgate@db.internal:5432/fluxgate?sslmode=require\"";
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| {
            ConfigError::invalid(
                "store.postgres",
                format!("must be a postgres:// URL, {example}"),
            )
        })?;
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
    let (user, host) = authority.rsplit_once('@').unwrap_or(("", authority));
    if user.contains(':') {
        return Err(ConfigError::invalid(
            "store.postgres",
            "must not hold a password: write it as `postgres_password = \"env:VARIABLE\"` \
             (or `\"file:/path\"`, `\"keychain\"`)",
        ));
    }
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c));
    let name_ok = |s: &str| {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let query_ok = query.is_empty()
        || matches!(
            query,
            "sslmode=disable" | "sslmode=prefer" | "sslmode=require"
        );
    if !host_ok || user.is_empty() || !name_ok(user) || database.is_empty() || !name_ok(database) {
        return Err(ConfigError::invalid(
            "store.postgres",
            format!("`{url}` must name a user, a host and a database, {example}"),
        ));
    }
    if !query_ok {
        return Err(ConfigError::invalid(
            "store.postgres",
            "takes one option, `sslmode=disable`, `sslmode=prefer` or `sslmode=require`",
        ));
    }
    let password = password_ref("store.postgres_password", raw.postgres_password.as_deref())?;
    let budgets_fail_open = match raw.budgets_when_unreachable.as_deref() {
        None | Some("closed") => false,
        Some("open") => true,
        Some(_) => return Err(ConfigError::invalid(
            "store.budgets_when_unreachable",
            "must be \"closed\" (refuse budgeted requests while PostgreSQL is away) or \"open\"",
        )),
    };
    let ca = ca_path(
        "store.postgres_ca",
        raw.postgres_ca,
        query != "sslmode=disable",
        "write `?sslmode=require` instead of `sslmode=disable`",
    )?;
    Ok(Some(super::PostgresTarget {
        url,
        password,
        budgets_fail_open,
        ca,
    }))
}

/// A private CA file (an engine's or a proxy's): an absolute path, and only for an encrypted
/// connection.
pub(super) fn ca_path(
    field: &str,
    path: Option<String>,
    tls: bool,
    how: &str,
) -> Result<Option<std::path::PathBuf>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    if !tls {
        return Err(ConfigError::invalid(
            field,
            format!("is set but the connection is not encrypted: {how}"),
        ));
    }
    let path = std::path::PathBuf::from(path);
    if !path.is_absolute() {
        return Err(ConfigError::invalid(
            field,
            "must be an absolute path to a PEM file of CA certificates",
        ));
    }
    Ok(Some(path))
}
