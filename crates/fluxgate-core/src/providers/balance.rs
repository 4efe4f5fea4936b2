//! Where a key's remaining credit can be read, and how each vendor's answer is read. Pure: the
//! URL from the provider's base URL, the reading from the body. The shapes are the vendors'
//! documented ones:
//!
//! | vendor | request | answer |
//! |---|---|---|
//! | DeepSeek | `GET /user/balance` | `{is_available, balance_infos: [{currency, total_balance, granted_balance, topped_up_balance}]}` (amounts are strings) |
//! | OpenRouter | `GET /api/v1/key` | `{data: {label, limit, usage, limit_remaining, is_free_tier, ...}}` (USD; `limit` null: no limit) |
//! | Moonshot | `GET /v1/users/me/balance` | `{code, data: {available_balance, voucher_balance, cash_balance}, status}` (CNY on .cn, USD on .ai) |

pub use crate::health::BalanceReading as Reading;
pub use crate::vocab::BalanceSource;

/// Where each vendor's balance is, and how its answer reads.
pub trait BalanceApi {
    fn url(self, base_url: &str) -> String;
    fn read(self, body: &[u8], base_url: &str) -> Result<Reading, String>;
}

impl BalanceApi for BalanceSource {
    /// The balance URL for a provider whose base URL is `base_url` (without a trailing
    /// slash): DeepSeek's is at the host's root, the others under their API's version path.
    fn url(self, base_url: &str) -> String {
        let base = base_url.trim_end_matches('/');
        match self {
            BalanceSource::DeepSeek => {
                let root = base.strip_suffix("/v1").unwrap_or(base);
                format!("{root}/user/balance")
            }
            BalanceSource::OpenRouter => format!("{base}/key"),
            BalanceSource::Moonshot => format!("{base}/users/me/balance"),
        }
    }

    /// Reads an answer. `base_url` tells Moonshot's currency.
    fn read(self, body: &[u8], base_url: &str) -> Result<Reading, String> {
        let v: serde_json::Value = serde_json::from_slice(body)
            .map_err(|_| format!("the {} balance answer is not JSON", self.as_str()))?;
        let shape = || {
            format!(
                "the {} balance answer does not have the documented shape",
                self.as_str()
            )
        };
        let number = |v: &serde_json::Value| -> Option<f64> {
            match v {
                serde_json::Value::Number(n) => n.as_f64(),
                serde_json::Value::String(s) => s.trim().parse().ok(),
                _ => None,
            }
            .filter(|f: &f64| f.is_finite())
        };
        match self {
            BalanceSource::DeepSeek => {
                let infos = v["balance_infos"].as_array().ok_or_else(shape)?;
                // Several currencies are possible; the first is the account's own.
                let first = infos.first().ok_or_else(shape)?;
                Ok(Reading {
                    remaining: Some(number(&first["total_balance"]).ok_or_else(shape)?),
                    currency: first["currency"].as_str().unwrap_or("CNY").to_string(),
                    limit: None,
                    usage: None,
                    available: v["is_available"].as_bool(),
                })
            }
            BalanceSource::OpenRouter => {
                let d = v.get("data").ok_or_else(shape)?;
                let usage = number(&d["usage"]);
                let limit = number(&d["limit"]);
                let remaining = number(&d["limit_remaining"])
                    .or_else(|| limit.zip(usage).map(|(l, u)| (l - u).max(0.0)));
                if usage.is_none() && remaining.is_none() {
                    return Err(shape());
                }
                Ok(Reading {
                    remaining,
                    currency: "USD".into(),
                    limit,
                    usage,
                    available: None,
                })
            }
            BalanceSource::Moonshot => {
                if v["status"].as_bool() == Some(false) {
                    return Err("Moonshot refused the balance request".into());
                }
                let d = v.get("data").ok_or_else(shape)?;
                Ok(Reading {
                    remaining: Some(number(&d["available_balance"]).ok_or_else(shape)?),
                    currency: moonshot_currency(base_url).into(),
                    limit: None,
                    usage: None,
                    available: None,
                })
            }
        }
    }
}

/// The currency Moonshot reports in, by its host (`.cn` bills in CNY).
fn moonshot_currency(base_url: &str) -> &'static str {
    if base_url.contains("moonshot.ai") {
        "USD"
    } else {
        "CNY"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_found_by_host_and_their_urls_built() {
        use BalanceSource::*;
        for (base, source, url) in [
            (
                "https://api.deepseek.com/v1",
                Some(DeepSeek),
                "https://api.deepseek.com/user/balance",
            ),
            (
                "https://api.deepseek.com",
                Some(DeepSeek),
                "https://api.deepseek.com/user/balance",
            ),
            (
                "https://openrouter.ai/api/v1",
                Some(OpenRouter),
                "https://openrouter.ai/api/v1/key",
            ),
            (
                "https://api.moonshot.cn/v1",
                Some(Moonshot),
                "https://api.moonshot.cn/v1/users/me/balance",
            ),
            (
                "https://api.moonshot.ai/v1",
                Some(Moonshot),
                "https://api.moonshot.ai/v1/users/me/balance",
            ),
        ] {
            assert_eq!(BalanceSource::for_host(base), source, "{base}");
            assert_eq!(source.map(|s| s.url(base)).as_deref(), Some(url));
        }
        for base in [
            "https://api.groq.com/openai/v1",
            "https://deepseek.com.evil.example/v1",
            "http://localhost:11434/v1",
        ] {
            assert_eq!(BalanceSource::for_host(base), None, "{base}");
        }
        assert_eq!(BalanceSource::parse("moonshot"), Some(Moonshot));
        assert_eq!(BalanceSource::parse("kimi"), None);
        for s in BalanceSource::ALL {
            assert_eq!(BalanceSource::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn each_vendors_documented_answer_is_read() {
        let deepseek = br#"{"is_available":true,"balance_infos":[{"currency":"CNY","total_balance":"110.00","granted_balance":"10.00","topped_up_balance":"100.00"}]}"#;
        let r = BalanceSource::DeepSeek
            .read(deepseek, "https://api.deepseek.com")
            .expect("deepseek");
        assert_eq!(
            (r.remaining, r.currency.as_str(), r.available),
            (Some(110.0), "CNY", Some(true))
        );
        let openrouter = br#"{"data":{"label":"sk-or-v1-au7...890","limit":20,"usage":12.5,"limit_remaining":7.5,"is_free_tier":false,"rate_limit":{"requests":40,"interval":"10s"}}}"#;
        let r = BalanceSource::OpenRouter
            .read(openrouter, "https://openrouter.ai/api/v1")
            .expect("openrouter");
        assert_eq!(
            (r.remaining, r.limit, r.usage, r.currency.as_str()),
            (Some(7.5), Some(20.0), Some(12.5), "USD")
        );
        let unlimited = br#"{"data":{"label":"x","limit":null,"usage":3.25,"limit_remaining":null,"is_free_tier":false}}"#;
        let r = BalanceSource::OpenRouter
            .read(unlimited, "https://openrouter.ai/api/v1")
            .expect("unlimited");
        assert_eq!((r.remaining, r.usage), (None, Some(3.25)));
        let moonshot = br#"{"code":0,"data":{"available_balance":49.58894,"voucher_balance":46.58893,"cash_balance":3.00001},"scode":"0x0","status":true}"#;
        let r = BalanceSource::Moonshot
            .read(moonshot, "https://api.moonshot.cn/v1")
            .expect("moonshot");
        assert_eq!((r.remaining, r.currency.as_str()), (Some(49.58894), "CNY"));
        let r = BalanceSource::Moonshot
            .read(moonshot, "https://api.moonshot.ai/v1")
            .expect("moonshot.ai");
        assert_eq!(r.currency, "USD");
    }

    #[test]
    fn other_answers_are_errors_that_say_so() {
        for (source, body, says) in [
            (BalanceSource::DeepSeek, &b"<html>"[..], "not JSON"),
            (
                BalanceSource::DeepSeek,
                br#"{"balance_infos":[]}"#,
                "documented shape",
            ),
            (
                BalanceSource::DeepSeek,
                br#"{"balance_infos":[{"total_balance":"abc"}]}"#,
                "documented shape",
            ),
            (
                BalanceSource::OpenRouter,
                br#"{"data":{}}"#,
                "documented shape",
            ),
            (BalanceSource::Moonshot, br#"{"status":false}"#, "refused"),
            (
                BalanceSource::Moonshot,
                br#"{"data":{}}"#,
                "documented shape",
            ),
        ] {
            let e = source.read(body, "https://x").expect_err(says);
            assert!(e.contains(says), "{e}");
        }
    }
}
