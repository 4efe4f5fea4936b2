//! `fluxgate console` against the real binary (RELIABILITY.md 27-28): the one-time code never
//! appears in a process's arguments (the browser opener gets an owner-only file that forwards
//! to the link), and the CLI authenticates the server before it sends the admin token: a
//! stranger holding the port after a crash learns nothing and no URL of its is opened.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::BareRouter;

/// A PATH directory with an `xdg-open` that records its arguments and the file it was given.
fn fake_opener(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("xdg-open");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$0\" \"$@\" > {0}/argv\ncp \"$1\" {0}/page.html\nstat -c %a \"$1\" > {0}/mode\n",
            dir.display()
        ),
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

fn console(home: &Path, data: &Path, path: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fluxgate"))
        .arg("console")
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .env("HOME", home)
        .env(
            "PATH",
            format!(
                "{}:{}",
                path.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("FLUXGATE_LISTEN")
        .output()
        .expect("run fluxgate console")
}

#[test]
fn the_login_code_never_appears_in_a_process_s_arguments() {
    let dir = common::tempdir();
    let BareRouter { home, data, router } = BareRouter::start(dir.path());
    let bin = fake_opener(dir.path());

    let out = console(&home, &data, &bin, &[]);
    assert!(out.status.success(), "{out:?}");
    let argv = std::fs::read_to_string(dir.path().join("argv")).expect("the opener ran");
    assert!(!argv.contains("code="), "the code reached argv: {argv}");
    let page_path = argv.lines().nth(1).expect("one argument").to_string();
    assert!(
        page_path.starts_with(&data.display().to_string()),
        "the page is in the data directory: {page_path}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mode"))
            .expect("mode")
            .trim(),
        "600"
    );
    let page = std::fs::read_to_string(dir.path().join("page.html")).expect("page");
    let url = page
        .split("url=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the page forwards to the link")
        .to_string();
    assert!(
        url.starts_with(&format!("{}/admin/login?code=", router.base)),
        "{url}"
    );
    let dir_mode = std::fs::metadata(data.join("console-login"))
        .expect("dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    // The link works, once.
    let get = |u: &str| {
        let rest = u.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').expect("path");
        let mut s = std::net::TcpStream::connect(host).expect("connect");
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    };
    assert!(get(&url).starts_with("HTTP/1.1 303"));
    assert!(get(&url).starts_with("HTTP/1.1 401"));
    // `--no-open` prints the link on stdout (not in any argument either).
    let out = console(&home, &data, &bin, &["--no-open"]);
    assert!(out.status.success(), "{out:?}");
    let link = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        link.starts_with(&format!("{}/admin/login?code=", router.base)),
        "{link}"
    );
}

#[test]
fn the_cli_never_gives_the_admin_token_to_a_stranger() {
    let dir = common::tempdir();
    let BareRouter {
        home,
        data,
        mut router,
    } = BareRouter::start(dir.path());
    let admin = router.admin_token();
    let addr = router.base.trim_start_matches("http://").to_string();
    // Fluxgate crashes: its runtime.json stays behind, and another program takes the port.
    router.child.kill().expect("kill");
    router.child.wait().expect("wait");
    assert!(data.join("runtime.json").exists());
    let stranger = std::net::TcpListener::bind(&addr).expect("take the port");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in stranger.incoming() {
            let Ok(mut c) = conn else { break };
            c.set_read_timeout(Some(Duration::from_millis(500))).ok();
            let mut buf = [0u8; 4096];
            while let Ok(n) = c.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock().expect("log").extend_from_slice(&buf[..n]);
                // Answer like a server that would happily take the token and hand out a URL.
                let body = format!(
                    "{{\"proof\":\"{}\",\"url\":\"http://evil.example/phish\"}}",
                    "00".repeat(32)
                );
                let _ = write!(
                    c,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    let bin = fake_opener(dir.path());
    let out = console(&home, &data, &bin, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not prove"), "{err}");
    let seen = String::from_utf8_lossy(&seen.lock().expect("log")).into_owned();
    assert!(
        seen.contains("/admin/api/hello"),
        "the challenge was sent: {seen}"
    );
    assert!(
        !seen.contains(&admin),
        "the admin token reached the stranger"
    );
    assert!(
        !seen.to_ascii_lowercase().contains("authorization"),
        "{seen}"
    );
    assert!(!dir.path().join("argv").exists(), "nothing was opened");
}
