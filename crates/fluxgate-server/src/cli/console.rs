//! `fluxgate console`: asks the running Fluxgate for a one-time login link and opens it in
//! the browser (the link works once, within two minutes).
//!
//! The server is authenticated first ([`super::remote::Remote`]); the link it returns is used
//! only if it is a login link of that very server. The code never appears in a process's
//! arguments, where another local user could read it from `/proc` and sign in first: the
//! browser is handed a file (owner-only, in the data directory) that forwards to the link.
//! `--no-open` prints the link on standard output instead.

use super::lang;
use fluxgate_core::t;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::remote::Remote;
use super::Common;

#[derive(Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    common: Common,
    /// The running Fluxgate's address [default: the one in DATA_DIR/runtime.json]
    #[arg(long, env = "FLUXGATE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Print the link instead of opening a browser.
    #[arg(long)]
    no_open: bool,
}

/// Where the forwarding pages go: a directory in the (owner-only) data directory.
const OPEN_DIR: &str = "console-login";
/// How long a forwarding page is kept (its code is dead after two minutes anyway).
const KEEP: Duration = Duration::from_secs(120);

/// Accepts `url` only as `http://ADDR/admin/login?code=HEX` for the server at `addr`.
pub fn check_login_url(url: &str, addr: SocketAddr) -> Result<(), String> {
    let code = url
        .strip_prefix(&format!("http://{addr}/admin/login?code="))
        .ok_or_else(|| format!("the server at {addr} answered a link that is not its own login link; not opening it"))?;
    if code.is_empty() || code.len() > 128 || !code.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "the server at {addr} answered a malformed login link; not opening it"
        ));
    }
    Ok(())
}

/// Writes the page that forwards a browser to `url`: a new owner-only file in
/// `DATA_DIR/console-login/`, after removing pages older than two minutes.
fn forwarding_page(data_dir: &Path, url: &str) -> Result<PathBuf, String> {
    let dir = data_dir.join(OPEN_DIR);
    let err = |e: std::io::Error| format!("cannot write the login page in {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > KEEP);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let name = format!(
        "login-{}.html",
        fluxgate_core::runtime::RuntimeFile::challenge()
    );
    let path = dir.join(name);
    // `url` passed check_login_url: only URL-safe characters, nothing to escape in HTML.
    let page = format!(
        "<!doctype html>\n<meta charset=\"utf-8\">\n<meta name=\"referrer\" content=\"no-referrer\">\n\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\">\n<title>Opening the Fluxgate console</title>\n\
         <p>Opening the Fluxgate console… <a href=\"{url}\">continue</a></p>\n"
    );
    fluxgate_core::files::create_private(&path, page.as_bytes()).map_err(err)?;
    Ok(path)
}

pub fn run(args: ConsoleArgs) -> Result<(), String> {
    let dir = args.common.data_dir()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (url, addr) = runtime.block_on(async {
        let mut remote = Remote::connect(&dir, args.listen).await?;
        let (status, body) = remote
            .post("/admin/api/console/login", serde_json::json!({}))
            .await?;
        if status == 401 {
            return Err(format!("the Fluxgate at {} did not accept the admin token in {}; is it using another --data-dir?", remote.addr, dir.display()));
        }
        if status != 201 {
            return Err(format!("the Fluxgate at {} answered {status}: {body}", remote.addr));
        }
        let url = body["url"]
            .as_str()
            .ok_or_else(|| format!("unexpected answer from {}: {body}", remote.addr))?
            .to_string();
        Ok::<_, String>((url, remote.addr))
    })?;
    check_login_url(&url, addr)?;
    if args.no_open {
        println!("{url}");
        return Ok(());
    }
    let page = forwarding_page(&dir, &url)?;
    for opener in ["xdg-open", "open"] {
        if std::process::Command::new(opener)
            .arg(&page)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            eprintln!("{}", t!(lang(), "cli.console.opened"));
            return Ok(());
        }
    }
    eprintln!(
        "{}\n{}",
        t!(lang(), "cli.console.no_browser"),
        page.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_servers_login_links_are_opened() {
        let addr: SocketAddr = "127.0.0.1:8414".parse().expect("addr");
        assert!(check_login_url("http://127.0.0.1:8414/admin/login?code=00ff", addr).is_ok());
        for bad in [
            "http://127.0.0.1:8415/admin/login?code=00ff",
            "https://127.0.0.1:8414/admin/login?code=00ff",
            "http://evil.example/admin/login?code=00ff",
            "http://127.0.0.1:8414@evil.example/admin/login?code=00ff",
            "http://127.0.0.1:8414/admin/login?code=00ff&next=http://evil",
            "http://127.0.0.1:8414/admin/login?code=",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "http://127.0.0.1:8414/admin/login?code=00ff\"><script>",
        ] {
            assert!(check_login_url(bad, addr).is_err(), "{bad}");
        }
    }
}
