//! Reading an upstream's own "come back at" hints from response headers.
//!
//! Understood: `Retry-After` (seconds or HTTP-date), `retry-after-ms`, Anthropic's
//! `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset` (RFC 3339) and
//! OpenAI's `x-ratelimit-reset-{requests,tokens}` (durations like `6m0s`, `1.5s`, `20ms`).
//! When several are present the longest wait wins, because an early return would only be
//! rate limited again. Hints are capped at [`MAX_HINT`] so a hostile or broken header cannot
//! park a key for ever.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// The longest wait any single hint may impose.
pub const MAX_HINT: Duration = Duration::from_secs(24 * 3600);

/// The wait the response headers ask for, measured from `now` (wall clock).
pub fn retry_hint(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut best: Option<Duration> = None;
    let mut consider = |d: Option<Duration>| {
        if let Some(d) = d {
            best = Some(best.map_or(d, |b| b.max(d)));
        }
    };
    if let Some(ms) = text("retry-after-ms") {
        consider(
            ms.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| Duration::from_secs_f64(v / 1000.0)),
        );
    }
    if let Some(ra) = text("retry-after") {
        consider(parse_retry_after(ra, now));
    }
    for name in [
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-reset",
        "anthropic-ratelimit-input-tokens-reset",
        "anthropic-ratelimit-output-tokens-reset",
    ] {
        // Anthropic sends reset times for every limit, exhausted or not; only the ones whose
        // remaining count reached zero say when this key may be used again.
        let remaining = name.replace("-reset", "-remaining");
        let exhausted = text(&remaining).map(|r| r == "0").unwrap_or(true);
        if exhausted {
            if let Some(t) = text(name) {
                consider(parse_rfc3339(t).and_then(|at| at.duration_since(now).ok()));
            }
        }
    }
    for (reset, remaining) in [
        (
            "x-ratelimit-reset-requests",
            "x-ratelimit-remaining-requests",
        ),
        ("x-ratelimit-reset-tokens", "x-ratelimit-remaining-tokens"),
    ] {
        let exhausted = text(remaining).map(|r| r == "0").unwrap_or(true);
        if exhausted {
            if let Some(t) = text(reset) {
                consider(parse_go_duration(t));
            }
        }
    }
    best.map(|d| d.min(MAX_HINT))
}

/// `Retry-After`: delta-seconds or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Durations in Go's notation as OpenAI sends them: `1s`, `6m0s`, `1h2m3.5s`, `20ms`.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        total += value * factor;
        rest = &rest[unit_len..];
    }
    total.is_finite().then(|| Duration::from_secs_f64(total))
}

/// RFC 3339 timestamps (`2026-11-22T01:02:03Z`, fractional seconds and offsets allowed).
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b't' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(frac.len());
        let digits = &frac[..n.min(9)];
        if n == 0 {
            return None;
        }
        nanos = format!("{digits:0<9}").parse().ok()?;
        rest = &frac[n..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("header"));
        }
        h
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn retry_after_forms() {
        let now = at(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(at(1_700_000_030)), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(&httpdate::fmt_http_date(at(1_600_000_000)), now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn header_combinations() {
        let now = at(1_700_000_000);
        assert_eq!(
            retry_hint(&headers(&[("retry-after-ms", "250")]), now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_hint(
                &headers(&[("retry-after", "3"), ("retry-after-ms", "9000")]),
                now
            ),
            Some(Duration::from_secs(9))
        );
        assert_eq!(
            retry_hint(
                &headers(&[
                    ("anthropic-ratelimit-requests-reset", "2023-11-14T22:14:00Z"),
                    ("anthropic-ratelimit-requests-remaining", "0")
                ]),
                at(1_699_999_980)
            ),
            Some(Duration::from_secs(60))
        );
        // A reset time for a limit that still has room says nothing about this failure.
        assert_eq!(
            retry_hint(
                &headers(&[
                    ("anthropic-ratelimit-tokens-reset", "2023-11-14T22:14:00Z"),
                    ("anthropic-ratelimit-tokens-remaining", "5000")
                ]),
                at(1_699_999_980)
            ),
            None
        );
        assert_eq!(
            retry_hint(
                &headers(&[
                    ("x-ratelimit-reset-requests", "6m0s"),
                    ("x-ratelimit-remaining-requests", "0")
                ]),
                now
            ),
            Some(Duration::from_secs(360))
        );
        assert_eq!(
            retry_hint(&headers(&[("retry-after", "99999999")]), now),
            Some(MAX_HINT)
        );
        assert_eq!(retry_hint(&HeaderMap::new(), now), None);
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(parse_go_duration(""), None);
        assert_eq!(parse_go_duration("3x"), None);
        assert_eq!(parse_go_duration("s"), None);
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(UNIX_EPOCH));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(at(1_700_000_000))
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T23:13:20+01:00"),
            Some(at(1_700_000_000))
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.5Z"),
            Some(at(1_700_000_000) + Duration::from_millis(500))
        );
        assert_eq!(parse_rfc3339("2023-13-14T22:13:20Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
