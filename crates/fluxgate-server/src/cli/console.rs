//! `fluxgate console`: asks the running Fluxgate for a one-time login link and opens it in
//! the browser (the link works once, within two minutes; the session cookie it sets is
//! `HttpOnly` and `SameSite=Strict`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use clap::Args;
use fluxgate_core::tokens::AdminToken;

use super::Common;

#[derive(Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    common: Common,
    /// The running Fluxgate's address [default: `listen` from the config]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Print the link instead of opening a browser.
    #[arg(long)]
    no_open: bool,
}

/// POSTs to the admin API over plain loopback HTTP/1.1 and returns (status, body).
fn admin_post(addr: SocketAddr, path: &str, token: &str) -> Result<(u16, String), String> {
    let unreachable = |e: std::io::Error| {
        format!("cannot reach Fluxgate at {addr} ({e}); start it (the desktop app or `fluxgate serve`) or pass --listen")
    };
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3)).map_err(unreachable)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(unreachable)?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).map_err(unreachable)?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(unreachable)?;
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr} did not answer like Fluxgate"))?;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn run(args: ConsoleArgs) -> Result<(), String> {
    let addr = match args.listen {
        Some(a) => a,
        None => args.common.load_config()?.listen,
    };
    let dir = args.common.data_dir()?;
    let admin = AdminToken::load_or_create(&dir).map_err(|e| e.to_string())?;
    let token = admin
        .value()
        .ok_or_else(|| format!("cannot read the admin token in {}", dir.display()))?;
    let (status, body) = admin_post(addr, "/admin/api/console/login", token)?;
    if status == 401 {
        return Err(format!("the Fluxgate at {addr} did not accept the admin token in {}; is it using another --data-dir?", dir.display()));
    }
    if status != 201 {
        return Err(format!("the Fluxgate at {addr} answered {status}: {body}"));
    }
    let url = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["url"].as_str().map(str::to_string))
        .ok_or_else(|| format!("unexpected answer from {addr}: {body}"))?;
    if !args.no_open {
        for opener in ["xdg-open", "open"] {
            if std::process::Command::new(opener)
                .arg(&url)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                eprintln!(
                    "Opened the console in your browser (the link works once, within two minutes)."
                );
                return Ok(());
            }
        }
        eprintln!("Could not open a browser; open this link (it works once, within two minutes):");
    }
    println!("{url}");
    Ok(())
}
