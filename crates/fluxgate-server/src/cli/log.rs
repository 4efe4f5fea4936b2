//! `fluxgate log`: the request inspector on the command line. Prints the latest requests
//! (oldest of them first), each with its route, the key that served it, status, time, tokens
//! and cost, and under a request that failed or failed over, one line per attempt with the
//! upstream's (scrubbed) error. `--follow` keeps printing requests as they finish; `--json`
//! prints the export format instead (one record per line).
//!
//! It asks the running Fluxgate ([`super::remote::Remote`]; in team mode that is the fleet's
//! log). When none runs, the last requests are read from the data directory's database.

use super::lang;
use fluxgate_core::t;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use super::remote::Remote;
use super::Common;

#[derive(Args)]
pub struct LogArgs {
    #[command(flatten)]
    common: Common,
    /// Keep printing requests as they finish (Ctrl-C stops).
    #[arg(long, short)]
    follow: bool,
    /// Only requests that failed (an error status, or a stream that ended with an error).
    #[arg(long)]
    failed: bool,
    /// Only requests that failed over (more than one attempt).
    #[arg(long)]
    retried: bool,
    /// Only requests of this route.
    #[arg(long)]
    route: Option<String>,
    /// Only requests served (last tried) by this provider.
    #[arg(long)]
    provider: Option<String>,
    /// Only requests served (last tried) by this key id.
    #[arg(long)]
    key: Option<String>,
    /// Only requests of this client token.
    #[arg(long)]
    client: Option<String>,
    /// How many of the latest requests to print first (0: none, with --follow only new ones).
    #[arg(long, short = 'n', default_value_t = 20)]
    limit: usize,
    /// One JSON object per request and line (what the console's export writes).
    #[arg(long)]
    json: bool,
    /// The running Fluxgate's address [default: the one in DATA_DIR/runtime.json]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
}

/// How often `--follow` asks for new requests.
const POLL: Duration = Duration::from_millis(700);

impl LogArgs {
    /// The filters as a query string, with `extra` (cursor and limit) appended.
    fn query(&self, extra: &[(&str, String)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if self.failed {
            pairs.push(("failed", "true".into()));
        }
        if self.retried {
            pairs.push(("retried", "true".into()));
        }
        for (name, v) in [
            ("route", &self.route),
            ("provider", &self.provider),
            ("key", &self.key),
            ("client", &self.client),
        ] {
            if let Some(v) = v {
                pairs.push((name, v.clone()));
            }
        }
        pairs.extend(extra.iter().cloned());
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }

    fn local_query(&self) -> fluxgate_core::store::RequestQuery {
        fluxgate_core::store::RequestQuery {
            failed: self.failed,
            retried: self.retried,
            route: self.route.clone(),
            provider: self.provider.clone(),
            key: self.key.clone(),
            client: self.client.clone(),
            limit: Some(self.limit),
            ..Default::default()
        }
    }
}

pub fn run(a: LogArgs) -> Result<(), String> {
    let dir = a.common.data_dir()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut remote = match Remote::connect(&dir, a.listen).await {
            Ok(r) => r,
            Err(e) if !a.follow && dir.join(fluxgate_core::store::DB_FILE).exists() => {
                eprintln!("{}", t!(lang(), "cli.log.fallback", error = e));
                return print_local(&a, &dir);
            }
            Err(e) => return Err(e),
        };
        let first = fetch(
            &mut remote,
            &a.query(&[("limit", a.limit.max(1).to_string())]),
        )
        .await?;
        // `-n 0`: only what finishes from now on.
        let rows = if a.limit == 0 {
            Vec::new()
        } else {
            rows_of(&first)
        };
        // Oldest first, as a log reads.
        for r in rows.iter().rev() {
            print_row(r, a.json);
        }
        if !a.follow {
            if rows.is_empty() && !a.json {
                eprintln!("{}", t!(lang(), "cli.log.no_match"));
            }
            return Ok(());
        }
        let mut source = first["source"].as_str().unwrap_or("local").to_string();
        let mut cursor = first["head"].as_i64().unwrap_or(0);
        loop {
            tokio::time::sleep(POLL).await;
            let page = fetch(
                &mut remote,
                &a.query(&[
                    ("after", cursor.to_string()),
                    ("limit", fluxgate_core::store::MAX_ROWS.to_string()),
                ]),
            )
            .await?;
            let now_source = page["source"].as_str().unwrap_or("local");
            if now_source != source {
                // Another numbering (PostgreSQL stopped or started answering): go on from
                // its newest row.
                eprintln!("{}", t!(lang(), "cli.log.now_reading", source = now_source));
                source = now_source.to_string();
                cursor = page["head"].as_i64().unwrap_or(0);
                continue;
            }
            let rows = rows_of(&page);
            for r in &rows {
                print_row(r, a.json);
            }
            cursor = match rows.last().and_then(|r| r["seq"].as_i64()) {
                Some(last) if rows.len() >= fluxgate_core::store::MAX_ROWS => last,
                // Everything up to head was read; nothing after it matched.
                _ => page["head"].as_i64().unwrap_or(cursor).max(cursor),
            };
        }
    })
}

async fn fetch(remote: &mut Remote, query: &str) -> Result<Value, String> {
    let (status, body) = remote.get(&format!("/admin/api/requests?{query}")).await?;
    if status != 200 {
        return Err(body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("Fluxgate answered {status}"), str::to_string));
    }
    Ok(body)
}

fn rows_of(v: &Value) -> Vec<Value> {
    v["requests"].as_array().cloned().unwrap_or_default()
}

/// Reads the data directory's database (no server running).
fn print_local(a: &LogArgs, dir: &std::path::Path) -> Result<(), String> {
    let store = fluxgate_core::store::Store::open(dir).map_err(|e| e.to_string())?;
    let log = fluxgate_core::recorder::Recorder::start(&store);
    let rows = log.query(&a.local_query()).map_err(|e| e.to_string());
    log.close();
    let rows = rows?;
    for r in rows.iter().rev() {
        print_row(&serde_json::to_value(r).unwrap_or_default(), a.json);
    }
    if rows.is_empty() && !a.json {
        eprintln!("{}", t!(lang(), "cli.log.no_match"));
    }
    Ok(())
}

fn print_row(r: &Value, json: bool) {
    if json {
        println!("{r}");
    } else {
        print!("{}", render(r));
    }
}

/// `HH:MM:SS` (UTC) of a Unix time in milliseconds.
fn clock(ts_ms: i64) -> String {
    let s = ts_ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn millis(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// One request as text: a summary line, and one line per attempt when it failed or failed
/// over.
pub fn render(r: &Value) -> String {
    let s = |k: &str| r[k].as_str().unwrap_or("");
    let status = r["status"].as_u64().unwrap_or(0);
    let code = r["error_code"].as_str();
    let failed = status >= 400 || code.is_some();
    let mut line = format!(
        "{} {} {:>3}{} {}",
        clock(r["ts_ms"].as_i64().unwrap_or(0)),
        if failed { "✗" } else { "✓" },
        status,
        code.map(|c| format!(" {c}")).unwrap_or_default(),
        if s("model").is_empty() {
            "?"
        } else {
            s("model")
        },
    );
    match r["route"].as_str() {
        Some(route) if route != s("model") => line += &format!(" [route {route}]"),
        Some(_) => {}
        None => line += " (no route matched)",
    }
    if let (Some(p), Some(k)) = (r["provider"].as_str(), r["key_id"].as_str()) {
        line += &format!(" → {p}/{k}");
    }
    line += &format!("  {}", millis(r["latency_ms"].as_u64().unwrap_or(0)));
    let tok = |k: &str| r[k].as_u64().map_or("–".to_string(), |v| v.to_string());
    line += &format!("  {}+{} tok", tok("tokens_in"), tok("tokens_out"));
    if let Some(c) = r["tokens_cached"].as_u64().filter(|c| *c > 0) {
        line += &format!(" ({c} cached)");
    }
    if let Some(cost) = r["cost_usd"].as_f64() {
        line += &format!("  ${cost:.4}");
    }
    if let Some(c) = r["client"].as_str() {
        line += &format!("  client {c}");
    }
    line += &format!("  {}\n", s("request_id"));
    let attempts = r["attempt_log"]
        .as_array()
        .map_or(&[][..], |a| a.as_slice());
    if failed || attempts.len() > 1 {
        for a in attempts {
            line += &render_attempt(a);
        }
    }
    line
}

fn render_attempt(a: &Value) -> String {
    let s = |k: &str| a[k].as_str().unwrap_or("");
    let mut l = format!(
        "           {} {}/{} ({})",
        match s("outcome") {
            "served" => "served",
            "failed" => "failed",
            "rejected" => "refused the request",
            "not_translatable" => "not translatable",
            "proxy_failed" => "proxy failed",
            "broke" => "broke mid-stream",
            _ => "…",
        },
        s("provider"),
        s("key_id"),
        s("model"),
    );
    if let Some(p) = a["proxy"].as_str() {
        l += &format!(" via {p}");
    }
    if let Some(st) = a["status"].as_u64() {
        l += &format!(" {st}");
    }
    if let Some(c) = a["error_class"].as_str() {
        l += &format!(" {c}");
    }
    l += &format!(" after {}", millis(a["ms"].as_u64().unwrap_or(0)));
    if let Some(e) = a["error"].as_str() {
        l += &format!(": {e}");
    }
    l.push('\n');
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_failover_prints_each_attempt_and_a_plain_answer_one_line() {
        let r = json!({
            "ts_ms": 3_723_000, "request_id": "req-1", "model": "fast", "route": "fast",
            "provider": "anthropic", "key_id": "main", "status": 200, "latency_ms": 1234,
            "tokens_in": 11, "tokens_out": 7, "tokens_cached": 0, "cost_usd": 0.00012,
            "attempt_log": [
                {"provider": "openai", "key_id": "k1", "model": "gpt-4o", "at_ms": 0, "ms": 120,
                 "outcome": "failed", "status": 429, "error_class": "rate_limited",
                 "error": "Rate limit reached"},
                {"provider": "anthropic", "key_id": "main", "model": "claude", "at_ms": 121,
                 "ms": 900, "outcome": "served", "status": 200}
            ]
        });
        assert_eq!(
            render(&r),
            "01:02:03 ✓ 200 fast → anthropic/main  1.2 s  11+7 tok  $0.0001  req-1\n\
             \x20          failed openai/k1 (gpt-4o) 429 rate_limited after 120 ms: Rate limit reached\n\
             \x20          served anthropic/main (claude) 200 after 900 ms\n"
        );
        let plain = json!({"ts_ms": 0, "request_id": "r", "model": "gpt-x", "status": 502,
            "error_code": "all_keys_unavailable", "latency_ms": 3, "attempt_log": []});
        assert_eq!(
            render(&plain),
            "00:00:00 ✗ 502 all_keys_unavailable gpt-x (no route matched)  3 ms  –+– tok  r\n"
        );
    }
}
