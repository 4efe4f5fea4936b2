//! The closed vocabularies every part of Fluxgate speaks, and nothing else: how an upstream
//! failure is classed ([`ErrorClass`]), the state a key is in ([`KeyStatus`]), the errors
//! Fluxgate answers itself ([`ErrorCode`]) and which key is meant ([`KeyRef`]). A leaf: it
//! imports nothing from the crate, so health, events, the request record, the store and the
//! formats share it without importing each other.

use serde::{Deserialize, Serialize};

/// What kind of failure, as far as health and failover are concerned.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    AuthFailed,
    QuotaExhausted,
    RateLimited,
    UpstreamUnavailable,
    RequestInvalid,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 5] = [
        ErrorClass::AuthFailed,
        ErrorClass::QuotaExhausted,
        ErrorClass::RateLimited,
        ErrorClass::UpstreamUnavailable,
        ErrorClass::RequestInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::AuthFailed => "auth_failed",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::UpstreamUnavailable => "upstream_unavailable",
            ErrorClass::RequestInvalid => "request_invalid",
        }
    }

    pub fn parse(s: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Whether trying another candidate for the same request may help.
    pub fn fails_over(self) -> bool {
        !matches!(self, ErrorClass::RequestInvalid)
    }
}

/// The visible state of a key.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStatus {
    Healthy,
    Cooling,
    Probing,
    Dead,
    Disabled,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Healthy => "healthy",
            KeyStatus::Cooling => "cooling",
            KeyStatus::Probing => "probing",
            KeyStatus::Dead => "dead",
            KeyStatus::Disabled => "disabled",
        }
    }

    pub const ALL: [KeyStatus; 5] = [
        KeyStatus::Healthy,
        KeyStatus::Cooling,
        KeyStatus::Probing,
        KeyStatus::Dead,
        KeyStatus::Disabled,
    ];

    pub fn parse(s: &str) -> Option<KeyStatus> {
        KeyStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Every error code a client can receive from Fluxgate itself.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Missing or wrong client token.
    Unauthorized,
    /// Host or Origin check failed.
    Forbidden,
    /// No route or provider serves the requested model.
    NoRoute,
    /// The request itself is malformed (not JSON, no model, ...).
    InvalidRequest,
    /// An upstream rejected the request as invalid (its own message is kept).
    RequestInvalid,
    PayloadTooLarge,
    /// The request body did not arrive within `limits.body_timeout`.
    RequestTimeout,
    /// Every candidate key is out of rotation; `Retry-After` says until when.
    AllKeysCooling,
    /// Keys could not be read from the OS keychain (locked or missing).
    KeychainUnavailable,
    /// Every attempt failed with an upstream error.
    UpstreamUnavailable,
    /// Every attempt failed and the last one timed out.
    UpstreamTimeout,
    /// The attempt budget ran out before any candidate succeeded.
    AttemptsExhausted,
    /// A stream broke after it had started; the answer is incomplete.
    StreamInterrupted,
    /// Sending would break a `[[budgets]]` limit; refused before it was sent.
    BudgetExceeded,
    /// The fleet's budgets cannot be checked (team mode: PostgreSQL does not answer, and
    /// `store.budgets_when_unreachable` is `closed`); refused before it was sent.
    BudgetUnavailable,
    /// The router is shutting down.
    ShuttingDown,
    /// The user paused routing (tray or console); nothing is sent upstream until resumed.
    #[serde(rename = "routing_paused")]
    Paused,
    NotFound,
    #[serde(rename = "internal_error")]
    Internal,
    /// The client went away before its answer ended. Never sent (nobody is listening); it is
    /// how such a request is recorded.
    ClientClosed,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 20] = [
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NoRoute,
        ErrorCode::InvalidRequest,
        ErrorCode::RequestInvalid,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::AllKeysCooling,
        ErrorCode::KeychainUnavailable,
        ErrorCode::UpstreamUnavailable,
        ErrorCode::UpstreamTimeout,
        ErrorCode::AttemptsExhausted,
        ErrorCode::StreamInterrupted,
        ErrorCode::BudgetExceeded,
        ErrorCode::BudgetUnavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::Paused,
        ErrorCode::NotFound,
        ErrorCode::Internal,
        ErrorCode::ClientClosed,
    ];

    /// Reads a code back (the request log stores them as words).
    pub fn parse(s: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::RequestInvalid => "request_invalid",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::AllKeysCooling => "all_keys_cooling",
            ErrorCode::KeychainUnavailable => "keychain_unavailable",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::AttemptsExhausted => "attempts_exhausted",
            ErrorCode::StreamInterrupted => "stream_interrupted",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Paused => "routing_paused",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::BudgetUnavailable => "budget_unavailable",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal_error",
            ErrorCode::ClientClosed => "client_closed",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NoRoute | ErrorCode::NotFound => 404,
            ErrorCode::InvalidRequest | ErrorCode::RequestInvalid => 400,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RequestTimeout => 408,
            // Payment Required: SDKs do not retry it (a 429 would be retried for nothing until
            // the period resets).
            ErrorCode::BudgetExceeded => 402,
            ErrorCode::AllKeysCooling
            | ErrorCode::KeychainUnavailable
            | ErrorCode::BudgetUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::Paused => 503,
            ErrorCode::UpstreamUnavailable
            | ErrorCode::AttemptsExhausted
            | ErrorCode::StreamInterrupted => 502,
            ErrorCode::UpstreamTimeout => 504,
            ErrorCode::Internal => 500,
            // nginx's "client closed request".
            ErrorCode::ClientClosed => 499,
        }
    }

    /// The `status` word Gemini uses for the same condition.
    pub fn gemini_status(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "PERMISSION_DENIED",
            ErrorCode::NoRoute | ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::InvalidRequest | ErrorCode::RequestInvalid | ErrorCode::PayloadTooLarge => {
                "INVALID_ARGUMENT"
            }
            ErrorCode::AllKeysCooling
            | ErrorCode::KeychainUnavailable
            | ErrorCode::BudgetUnavailable
            | ErrorCode::ShuttingDown
            | ErrorCode::Paused
            | ErrorCode::UpstreamUnavailable
            | ErrorCode::AttemptsExhausted => "UNAVAILABLE",
            ErrorCode::UpstreamTimeout | ErrorCode::RequestTimeout => "DEADLINE_EXCEEDED",
            ErrorCode::StreamInterrupted => "ABORTED",
            ErrorCode::BudgetExceeded => "RESOURCE_EXHAUSTED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::ClientClosed => "CANCELLED",
        }
    }
}

/// A vendor whose API tells a key's remaining credit (`balance = …` on a provider).
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BalanceSource {
    DeepSeek,
    OpenRouter,
    Moonshot,
}

impl BalanceSource {
    pub const ALL: [BalanceSource; 3] = [
        BalanceSource::DeepSeek,
        BalanceSource::OpenRouter,
        BalanceSource::Moonshot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BalanceSource::DeepSeek => "deepseek",
            BalanceSource::OpenRouter => "openrouter",
            BalanceSource::Moonshot => "moonshot",
        }
    }

    pub fn parse(text: &str) -> Option<BalanceSource> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The vendor an OpenAI-compatible base URL's host belongs to, when it is one of these.
    pub fn for_host(base_url: &str) -> Option<BalanceSource> {
        let host = url::Url::parse(base_url)
            .ok()?
            .host_str()?
            .to_ascii_lowercase();
        let under = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
        if under("deepseek.com") {
            Some(BalanceSource::DeepSeek)
        } else if under("openrouter.ai") {
            Some(BalanceSource::OpenRouter)
        } else if under("moonshot.cn") || under("moonshot.ai") {
            Some(BalanceSource::Moonshot)
        } else {
            None
        }
    }
}

/// One key of one provider: its identity in health, the keychain, budgets and the record.
/// Written `provider/key_id` (provider names cannot hold a `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    pub provider: String,
    pub key_id: String,
}

impl KeyRef {
    pub fn new(provider: impl Into<String>, key_id: impl Into<String>) -> Self {
        KeyRef {
            provider: provider.into(),
            key_id: key_id.into(),
        }
    }

    /// Reads `provider/key_id`; `None` without a `/` or with an empty half.
    pub fn parse(account: &str) -> Option<KeyRef> {
        let (p, k) = account.split_once('/')?;
        (!p.is_empty() && !k.is_empty()).then(|| KeyRef::new(p, k))
    }

    /// `provider/key_id`, as health, the keychain and budgets key it.
    pub fn account(&self) -> String {
        format!("{}/{}", self.provider, self.key_id)
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.key_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_refs_read_back_what_they_write() {
        let k = KeyRef::new("openai", "work/2");
        assert_eq!(k.account(), "openai/work/2");
        assert_eq!(
            KeyRef::parse(&k.account()),
            Some(k),
            "the key id may hold a slash"
        );
        assert_eq!(KeyRef::parse("openai"), None);
        assert_eq!(KeyRef::parse("/k"), None);
        assert_eq!(KeyRef::parse("p/"), None);
    }

    #[test]
    fn every_word_parses_back() {
        for c in ErrorClass::ALL {
            assert_eq!(ErrorClass::parse(c.as_str()), Some(c));
        }
        for s in KeyStatus::ALL {
            assert_eq!(KeyStatus::parse(s.as_str()), Some(s));
        }
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert_eq!(serde_json::json!(c), c.as_str(), "serialised as its word");
        }
        for c in ErrorClass::ALL {
            assert_eq!(serde_json::json!(c), c.as_str());
        }
        for s in KeyStatus::ALL {
            assert_eq!(serde_json::json!(s), s.as_str());
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }
}
