//! A provider's balance checks (`balance`, `low_balance`, `low_balance_action`,
//! `balance_interval`): where its keys' credit is read, and what counts as low.

use std::time::Duration;

use super::raw::RawProvider;
use super::validate::seconds;
use super::{ConfigError, ProviderKind};

/// A provider's balance checks: its source (by host, named, or off) and what is low.
pub(super) fn settings(
    key: &str,
    kind: ProviderKind,
    base_url: &str,
    p: &RawProvider,
) -> Result<Option<super::BalanceConfig>, ConfigError> {
    use crate::vocab::BalanceSource;
    let source = match p.balance.as_deref() {
        None | Some("auto") if kind == ProviderKind::OpenaiCompatible => {
            BalanceSource::for_host(base_url)
        }
        None | Some("auto") => None,
        Some("off") => None,
        Some(name) => {
            let Some(source) = BalanceSource::parse(name) else {
                let all: Vec<&str> = BalanceSource::ALL.iter().map(|s| s.as_str()).collect();
                return Err(ConfigError::invalid(
                    format!("{key}.balance"),
                    format!("must be \"auto\", \"off\" or one of {}", all.join(", ")),
                ));
            };
            if kind != ProviderKind::OpenaiCompatible {
                return Err(ConfigError::invalid(
                    format!("{key}.balance"),
                    format!(
                        "`{name}` balances are read from an `openai-compatible` provider; this \
                         one is `{}`",
                        kind.as_str()
                    ),
                ));
            }
            Some(source)
        }
    };
    let threshold = match p.low_balance {
        Some(t) if !t.is_finite() || t < 0.0 => {
            return Err(ConfigError::invalid(
                format!("{key}.low_balance"),
                "must be a credit of 0 or more, in the vendor's currency",
            ))
        }
        other => other,
    };
    let rotate_out = match p.low_balance_action.as_deref() {
        None | Some("notify") => false,
        Some("rotate-out") => true,
        Some(_) => {
            return Err(ConfigError::invalid(
                format!("{key}.low_balance_action"),
                "must be \"notify\" or \"rotate-out\"",
            ))
        }
    };
    let interval = seconds(
        &format!("{key}.balance_interval"),
        p.balance_interval,
        Duration::from_secs(600),
    )?;
    if interval < Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            format!("{key}.balance_interval"),
            "must be at least 60 seconds (vendors rate-limit their balance endpoints)",
        ));
    }
    let Some(source) = source else {
        let set = [
            ("low_balance", p.low_balance.is_some()),
            ("low_balance_action", p.low_balance_action.is_some()),
            ("balance_interval", p.balance_interval.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(_, s)| *s) {
            return Err(ConfigError::invalid(
                format!("{key}.{field}"),
                "is set but this provider's balance is not read; Fluxgate reads DeepSeek, \
                 OpenRouter and Moonshot balances (set `balance = \"deepseek\"`, say, for a \
                 base URL it does not recognise)",
            ));
        }
        return Ok(None);
    };
    Ok(Some(super::BalanceConfig {
        source,
        threshold,
        rotate_out,
        interval,
    }))
}
