//! `fluxgate-fake`: the testkit's fake upstream as a process, for tests written in other
//! languages. Prints `listening on http://ADDR` once ready; script it via `/_fake/...`.

use std::io::Write;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut listen = "127.0.0.1:0".to_string();
    let mut keys: Vec<(String, String)> = Vec::new();
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
            "--help" | "-h" => {
                println!("usage: fluxgate-fake [--listen ADDR] [--key LABEL=KEY]...");
                return Ok(());
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let fake = fluxgate_testkit::FakeUpstream::start_on(&listen).await;
    for (l, k) in &keys {
        fake.add_key(l, k);
    }
    println!("listening on {}", fake.url());
    std::io::stdout().flush()?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}
