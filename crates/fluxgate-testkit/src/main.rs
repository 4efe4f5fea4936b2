//! `fluxgate-fake`: the testkit's fake upstream as a process, for tests written in other
//! languages. Prints `listening on http://ADDR` once ready; script it via `/_fake/...`.
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program: printing is its interface

use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut keys: Vec<(String, String)> = Vec::new();
    let mut quiet = false;
    let mut delay_ms = 0u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => {
                listen = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--listen needs an address"))?
            }
            // LABEL=KEY, repeatable.
            "--key" => {
                let v = args
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--key needs LABEL=KEY"))?;
                let (l, k) = v
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--key needs LABEL=KEY"))?;
                keys.push((l.to_string(), k.to_string()));
            }
            // Keep no attempt log (for benchmarks).
            "--quiet" => quiet = true,
            "--chunk-delay-ms" => {
                delay_ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| anyhow::anyhow!("--chunk-delay-ms needs a number"))?
            }
            "--help" | "-h" => {
                println!("usage: fluxgate-fake [--listen ADDR] [--key LABEL=KEY]... [--quiet] [--chunk-delay-ms MS]");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let fake = fluxgate_testkit::FakeUpstream::start_on(&listen).await;
    fake.state
        .quiet
        .store(quiet, std::sync::atomic::Ordering::SeqCst);
    fake.set_chunk_delay(std::time::Duration::from_millis(delay_ms));
    for (l, k) in &keys {
        fake.add_key(l, k);
    }
    println!("listening on {}", fake.url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
