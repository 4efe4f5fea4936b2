//! Counters and histograms for `/metrics` (Prometheus text format 0.0.4).
//!
//! Every finished request passes through [`crate::recorder::Recorder::record`], which hands its
//! record to [`Metrics::observe`]: one short mutex hold per request, no I/O. Key states are not
//! counted here but read from health when the page is rendered, so they are never stale.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

use crate::health::KeyHealth;
use crate::record::RequestRecord;

/// Histogram bucket upper bounds, in seconds.
const BUCKETS: [f64; 14] = [
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Default, Clone)]
struct Histogram {
    /// Counts per bucket (not cumulative; made cumulative when rendered).
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }
}

/// `(endpoint, route, provider, status, error code)`.
type RequestKey = (String, String, String, u16, &'static str);

#[derive(Default)]
struct Inner {
    requests: BTreeMap<RequestKey, u64>,
    /// Per route: upstream attempts, and attempts beyond the first (failovers).
    attempts: BTreeMap<String, (u64, u64)>,
    /// Per route, provider, key: the error class of the last failed attempt of a request.
    errors: BTreeMap<(String, &'static str), u64>,
    /// Per (route, provider, direction): tokens.
    tokens: BTreeMap<(String, String, &'static str), u64>,
    latency: BTreeMap<String, Histogram>,
    ttfb: BTreeMap<String, Histogram>,
    /// Per (route, provider, key): USD at the catalogue's prices.
    spend: BTreeMap<(String, String, String), f64>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

fn or_none(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

impl Metrics {
    /// Counts one finished request.
    pub fn observe(&self, r: &RequestRecord) {
        let route = or_none(&r.route);
        let provider = or_none(&r.provider);
        let mut m = self.inner.lock();
        *m.requests
            .entry((
                r.endpoint.clone(),
                route.clone(),
                provider.clone(),
                r.status,
                r.error_code.map_or("", |c| c.as_str()),
            ))
            .or_default() += 1;
        let a = m.attempts.entry(route.clone()).or_default();
        a.0 += r.attempts as u64;
        a.1 += r.attempts.saturating_sub(1) as u64;
        if let Some(class) = r.error_class {
            *m.errors.entry((route.clone(), class.as_str())).or_default() += 1;
        }
        if let Some(usd) = r.cost_usd {
            *m.spend
                .entry((route.clone(), provider.clone(), or_none(&r.key_id)))
                .or_default() += usd;
        }
        for (dir, n) in [
            ("input", r.tokens_in),
            ("output", r.tokens_out),
            ("cached", r.tokens_cached),
        ] {
            if let Some(n) = n {
                *m.tokens
                    .entry((route.clone(), provider.clone(), dir))
                    .or_default() += n;
            }
        }
        m.latency
            .entry(route.clone())
            .or_default()
            .observe(r.latency_ms as f64 / 1000.0);
        if let Some(t) = r.ttfb_ms {
            m.ttfb.entry(route).or_default().observe(t as f64 / 1000.0);
        }
    }

    /// The page: request metrics plus the current state of every key.
    pub fn render(&self, keys: &[KeyHealth]) -> String {
        let m = self.inner.lock();
        let mut out = String::with_capacity(4096);
        header(&mut out, "fluxgate_requests_total", "counter", "Requests that reached routing, by endpoint, route, serving provider, status the client saw and Fluxgate error code.");
        for ((endpoint, route, provider, status, code), n) in &m.requests {
            let _ = writeln!(
                out,
                "fluxgate_requests_total{{endpoint=\"{}\",route=\"{}\",provider=\"{}\",status=\"{status}\",error=\"{}\"}} {n}",
                esc(endpoint),
                esc(route),
                esc(provider),
                esc(code)
            );
        }
        header(
            &mut out,
            "fluxgate_upstream_attempts_total",
            "counter",
            "Upstream attempts made for requests of a route.",
        );
        for (route, (attempts, _)) in &m.attempts {
            let _ = writeln!(
                out,
                "fluxgate_upstream_attempts_total{{route=\"{}\"}} {attempts}",
                esc(route)
            );
        }
        header(
            &mut out,
            "fluxgate_failovers_total",
            "counter",
            "Attempts beyond the first (failover to another key, target or round).",
        );
        for (route, (_, failovers)) in &m.attempts {
            let _ = writeln!(
                out,
                "fluxgate_failovers_total{{route=\"{}\"}} {failovers}",
                esc(route)
            );
        }
        header(
            &mut out,
            "fluxgate_upstream_errors_total",
            "counter",
            "Requests whose attempts met an upstream error, by the class of the last one.",
        );
        for ((route, class), n) in &m.errors {
            let _ = writeln!(
                out,
                "fluxgate_upstream_errors_total{{route=\"{}\",class=\"{}\"}} {n}",
                esc(route),
                esc(class)
            );
        }
        header(
            &mut out,
            "fluxgate_tokens_total",
            "counter",
            "Tokens the upstreams reported, by route, provider and direction (`cached`: the part of the input read from the provider's prompt cache).",
        );
        for ((route, provider, dir), n) in &m.tokens {
            let _ = writeln!(
                out,
                "fluxgate_tokens_total{{route=\"{}\",provider=\"{}\",direction=\"{dir}\"}} {n}",
                esc(route),
                esc(provider)
            );
        }
        header(
            &mut out,
            "fluxgate_spend_usd_total",
            "counter",
            "Spend in USD at the model catalogue's prices (reported usage), by route, provider and key.",
        );
        for ((route, provider, key), usd) in &m.spend {
            let _ = writeln!(
                out,
                "fluxgate_spend_usd_total{{route=\"{}\",provider=\"{}\",key=\"{}\"}} {usd}",
                esc(route),
                esc(provider),
                esc(key)
            );
        }
        histogram(
            &mut out,
            "fluxgate_request_duration_seconds",
            "Time from the request to its last byte (streams: to their end).",
            &m.latency,
        );
        histogram(
            &mut out,
            "fluxgate_time_to_first_byte_seconds",
            "Time from the request to the first byte of the serving attempt's answer.",
            &m.ttfb,
        );
        drop(m);
        key_gauge(
            &mut out,
            "fluxgate_key_state",
            "1 for the state each key is in now (healthy, cooling, probing, dead, disabled).",
            keys,
            |k| (format!(",state=\"{}\"", k.status.as_str()), 1),
        );
        key_gauge(
            &mut out,
            "fluxgate_key_recovery_seconds",
            "Seconds until a key out of rotation comes back (0 when in rotation).",
            keys,
            |k| (String::new(), k.retry_in_secs.unwrap_or(0)),
        );
        key_gauge(
            &mut out,
            "fluxgate_key_in_flight",
            "Upstream attempts in flight per key.",
            keys,
            |k| (String::new(), u64::from(k.in_flight)),
        );
        let name = "fluxgate_key_balance";
        header(
            &mut out,
            name,
            "gauge",
            "Credit left per key, where the vendor tells it (in `currency`); `low` is 1 below the provider's low_balance.",
        );
        for k in keys {
            let Some((b, left)) = k.balance.as_ref().and_then(|b| Some((b, b.remaining?))) else {
                continue;
            };
            let _ = writeln!(
                out,
                "{name}{{provider=\"{}\",key=\"{}\",currency=\"{}\",low=\"{}\"}} {left}",
                esc(&k.provider),
                esc(&k.key_id),
                esc(b.currency.as_deref().unwrap_or("")),
                u8::from(b.low)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A gauge with one sample per key: `value` gives extra labels (`,name="v"`) and the value.
fn key_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    keys: &[KeyHealth],
    value: impl Fn(&KeyHealth) -> (String, u64),
) {
    header(out, name, "gauge", help);
    for k in keys {
        let (labels, v) = value(k);
        let _ = writeln!(
            out,
            "{name}{{provider=\"{}\",key=\"{}\"{labels}}} {v}",
            esc(&k.provider),
            esc(&k.key_id)
        );
    }
}

fn histogram(out: &mut String, name: &str, help: &str, by_route: &BTreeMap<String, Histogram>) {
    header(out, name, "histogram", help);
    for (route, h) in by_route {
        let route = esc(route);
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(h.counts) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"{b}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}\n{name}_sum{{route=\"{route}\"}} {}\n{name}_count{{route=\"{route}\"}} {}",
            h.count, h.sum, h.count
        );
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(route: &str, status: u16, attempts: u32, latency_ms: u64) -> RequestRecord {
        RequestRecord {
            ts_ms: 0,
            request_id: "r".into(),
            client: None,
            endpoint: "chat".into(),
            model: Some("m".into()),
            route: Some(route.into()),
            provider: Some("p".into()),
            key_id: Some("k".into()),
            attempts,
            status,
            error_class: (attempts > 1).then_some(crate::vocab::ErrorClass::UpstreamUnavailable),
            error_code: None,
            latency_ms,
            ttfb_ms: Some(latency_ms / 2),
            tokens_in: Some(10),
            tokens_out: Some(5),
            stream: false,
            ..RequestRecord::default()
        }
    }

    #[test]
    fn counts_histograms_and_escaping() {
        let m = Metrics::default();
        m.observe(&record("a\"b", 200, 1, 30));
        m.observe(&record("a\"b", 200, 3, 700));
        let page = m.render(&[]);
        assert!(page.contains("fluxgate_requests_total{endpoint=\"chat\",route=\"a\\\"b\",provider=\"p\",status=\"200\",error=\"\"} 2"), "{page}");
        assert!(page.contains("fluxgate_upstream_attempts_total{route=\"a\\\"b\"} 4"));
        assert!(page.contains("fluxgate_failovers_total{route=\"a\\\"b\"} 2"));
        assert!(page.contains(
            "fluxgate_tokens_total{route=\"a\\\"b\",provider=\"p\",direction=\"input\"} 20"
        ));
        // 30 ms falls in le=0.05, 700 ms in le=1; buckets are cumulative.
        assert!(page
            .contains("fluxgate_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"0.025\"} 0"));
        assert!(page
            .contains("fluxgate_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"0.05\"} 1"));
        assert!(
            page.contains("fluxgate_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"1\"} 2")
        );
        assert!(page
            .contains("fluxgate_request_duration_seconds_bucket{route=\"a\\\"b\",le=\"+Inf\"} 2"));
        assert!(page.contains("fluxgate_request_duration_seconds_sum{route=\"a\\\"b\"} 0.73"));
        // Every sample line belongs to a declared metric.
        let declared: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for line in page.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            assert!(
                declared.iter().any(|d| name == *d
                    || name
                        .strip_prefix(d)
                        .is_some_and(|s| ["_bucket", "_sum", "_count"].contains(&s))),
                "undeclared sample {line}"
            );
        }
    }
}
