//! A zero-logic TCP relay: the floor any proxy pays on this machine.
//! Usage: relay LISTEN_ADDR UPSTREAM_ADDR
#![allow(clippy::print_stdout, clippy::print_stderr)] // a command-line program: printing is its interface

use std::io::Write;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: relay LISTEN UPSTREAM"))?;
    let upstream = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: relay LISTEN UPSTREAM"))?;
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    std::io::stdout().flush()?;
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let _ = inbound.set_nodelay(true);
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&upstream).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}
