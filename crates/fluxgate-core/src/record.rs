//! A finished request as every part that learns of it sees it: the [`RequestRecord`], the
//! [`Spend`] it settles and the periods and scopes that spend counts towards. A leaf over
//! [`crate::vocab`]: the store writes records, metrics count them and budgets settle them
//! without importing each other (the [`crate::recorder`] hands each record to all three).

use serde::{Deserialize, Serialize};

use crate::vocab::{ErrorClass, ErrorCode};

/// What is recorded about one request.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RequestRecord {
    #[cfg_attr(test, ts(type = "number"))]
    pub ts_ms: i64,
    pub request_id: String,
    /// The client token's name.
    pub client: Option<String>,
    pub endpoint: String,
    pub model: Option<String>,
    pub route: Option<String>,
    pub provider: Option<String>,
    pub key_id: Option<String>,
    pub attempts: u32,
    /// The status the client saw (200 for a stream that later broke; see `error_code`).
    pub status: u16,
    /// The class of the last upstream failure, when one failed.
    pub error_class: Option<ErrorClass>,
    /// The error the client was told (or how its stream ended), when not a plain answer.
    pub error_code: Option<ErrorCode>,
    #[cfg_attr(test, ts(type = "number"))]
    pub latency_ms: u64,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub ttfb_ms: Option<u64>,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub tokens_in: Option<u64>,
    #[cfg_attr(test, ts(type = "number | null"))]
    pub tokens_out: Option<u64>,
    pub stream: bool,
    /// The model the upstream was asked for (the client's `model` may be a route name).
    pub upstream_model: Option<String>,
    /// Input tokens read from the provider's prompt cache (part of `tokens_in`).
    #[cfg_attr(test, ts(type = "number | null"))]
    pub tokens_cached: Option<u64>,
    /// The cost at the catalogue's prices, when the model's prices are known.
    pub cost_usd: Option<f64>,
    /// For an answer whose upstream reported no usage: the tokens estimated before sending,
    /// which budgets count instead of nothing (`tokens_in`/`tokens_out` stay unknown).
    #[cfg_attr(test, ts(type = "number | null"))]
    pub est_tokens: Option<u64>,
    /// The estimate's cost, when the model's prices are known.
    pub est_cost_usd: Option<f64>,
    /// Each attempt, in order (the last one is the record's `provider`/`key_id`).
    pub attempt_log: Vec<AttemptRecord>,
    /// The store's row number, on a record read back: the cursor of `after` (newer rows have
    /// larger numbers).
    #[cfg_attr(test, ts(type = "number | null"))]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
}

impl RequestRecord {
    /// What the request counts against budgets and spend: its reported tokens and cost, or,
    /// when the upstream reported no usage, the estimate made before sending.
    pub fn spend(&self) -> Spend {
        if self.tokens_in.is_none() && self.tokens_out.is_none() {
            return Spend {
                usd: self.est_cost_usd.unwrap_or(0.0),
                tokens: self.est_tokens.unwrap_or(0),
            };
        }
        Spend {
            usd: self.cost_usd.unwrap_or(0.0),
            tokens: self.tokens_in.unwrap_or(0) + self.tokens_out.unwrap_or(0),
        }
    }
}

/// How one attempt ended.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// Still running (a stream between its commit and its end), or never told.
    Pending,
    /// It answered the client.
    Served,
    /// It failed before anything reached the client; the request failed over.
    Failed,
    /// The upstream refused the request itself (a 400, or a 404 for the model).
    Rejected,
    /// Fluxgate could not translate the request for this candidate; nothing was sent.
    NotTranslatable,
    /// The key's outbound proxy failed; the key was not blamed.
    ProxyFailed,
    /// A committed stream broke after it had started.
    Broke,
}

/// One attempt of a request at one key.
#[cfg_attr(test, derive(ts_rs::TS))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub provider: String,
    pub key_id: String,
    /// The model the upstream was asked for.
    pub model: String,
    /// The outbound proxy it went through, when not direct.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// When it went out, in milliseconds after the request arrived.
    #[cfg_attr(test, ts(type = "number"))]
    pub at_ms: u64,
    /// How long it took: until it failed, answered, or (a stream) ended.
    #[cfg_attr(test, ts(type = "number"))]
    pub ms: u64,
    /// Until the answer, or a stream's first content; none when it failed first.
    #[cfg_attr(test, ts(type = "number | null"))]
    #[serde(default)]
    pub first_byte_ms: Option<u64>,
    pub outcome: AttemptOutcome,
    /// The upstream's status, when it answered.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub error_class: Option<ErrorClass>,
    /// What went wrong, scrubbed of the key and shortened ([`ERROR_TEXT_MAX`] bytes).
    #[serde(default)]
    pub error: Option<String>,
}

/// The longest error text an attempt keeps.
pub const ERROR_TEXT_MAX: usize = 400;

/// `text` cut to at most [`ERROR_TEXT_MAX`] bytes on a character boundary, with "…" when cut.
pub fn short_error(text: &str) -> String {
    if text.len() <= ERROR_TEXT_MAX {
        return text.to_string();
    }
    let mut end = ERROR_TEXT_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The attempt log as stored (a JSON array; none for a request that made no attempt).
pub fn attempt_log_text(log: &[AttemptRecord]) -> Option<String> {
    (!log.is_empty()).then(|| serde_json::to_string(log).unwrap_or_else(|_| "[]".into()))
}

/// The attempt log from its stored text (an empty log for none or for text this build cannot
/// read).
pub fn attempt_log_from(text: Option<&str>) -> Vec<AttemptRecord> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// An amount of spending.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Spend {
    pub usd: f64,
    pub tokens: u64,
}

/// The scope keys a request belongs to.
pub fn scope_keys(
    provider: Option<&str>,
    key_id: Option<&str>,
    route: Option<&str>,
    client: Option<&str>,
) -> Vec<String> {
    let mut out = vec!["all".to_string()];
    if let Some(p) = provider {
        out.push(format!("provider:{p}"));
        if let Some(k) = key_id {
            out.push(format!("key:{p}/{k}"));
        }
    }
    if let Some(r) = route {
        out.push(format!("route:{r}"));
    }
    if let Some(c) = client {
        out.push(format!("client:{c}"));
    }
    out
}

/// The scope keys of a finished request.
pub fn record_scopes(r: &RequestRecord) -> Vec<String> {
    scope_keys(
        r.provider.as_deref(),
        r.key_id.as_deref(),
        r.route.as_deref(),
        r.client.as_deref(),
    )
}

/// Days since 1970-01-01 to a (year, month, day) date in the proleptic Gregorian calendar.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The day and month period keys (`d2026-11-22`, `m2026-11`) of a Unix time in milliseconds.
/// Every finished request asks (twice: the ledger and the store), so the keys of the last day
/// asked are kept per thread.
pub fn periods(ts_ms: i64) -> [String; 2] {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(i64, [String; 2])>> =
            const { std::cell::RefCell::new(None) };
    }
    let day = ts_ms.div_euclid(86_400_000);
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match last.as_ref() {
            Some((d, keys)) if *d == day => keys.clone(),
            _ => {
                let (y, m, d) = civil_from_days(day);
                let keys = [format!("d{y:04}-{m:02}-{d:02}"), format!("m{y:04}-{m:02}")];
                *last = Some((day, keys.clone()));
                keys
            }
        }
    })
}
