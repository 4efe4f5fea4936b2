//! Measures a streaming endpoint: time to the first content chunk and the largest gap between
//! chunks, over N sequential requests. Prints one JSON line.
//! Usage: `streamprobe URL TOKEN N [MODEL]`
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program: printing is its interface

use std::time::Instant;

use futures_util::StreamExt;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: streamprobe URL TOKEN N"))?;
    let token = args.next().unwrap_or_default();
    let n: usize = args.next().and_then(|v| v.parse().ok()).unwrap_or(50);
    let model = args.next().unwrap_or_else(|| "bench".to_string());
    let client = reqwest::Client::builder().no_proxy().build()?;
    let body = serde_json::json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    let mut ttft = Vec::new();
    let mut gaps = Vec::new();
    for _ in 0..n {
        let started = Instant::now();
        let resp = client
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let mut stream = resp.bytes_stream();
        let mut last: Option<Instant> = None;
        let mut max_gap = 0f64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            let now = Instant::now();
            let text = String::from_utf8_lossy(&chunk);
            if last.is_none() {
                if text.contains("\"content\":\"ok") || text.contains("\"content\":\"ok ") {
                    ttft.push(now.duration_since(started).as_secs_f64() * 1000.0);
                    last = Some(now);
                }
                continue;
            }
            if let Some(l) = last {
                max_gap = max_gap.max(now.duration_since(l).as_secs_f64() * 1000.0);
            }
            last = Some(now);
        }
        gaps.push(max_gap);
    }
    ttft.sort_by(f64::total_cmp);
    gaps.sort_by(f64::total_cmp);
    let p = |v: &Vec<f64>, q: f64| {
        v.get(((v.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{}",
        serde_json::json!({"n": n, "ttft_p50_ms": p(&ttft, 0.5), "ttft_p99_ms": p(&ttft, 0.99), "max_gap_p50_ms": p(&gaps, 0.5), "max_gap_max_ms": gaps.last().copied().unwrap_or(f64::NAN)})
    );
    Ok(())
}
