//! No binary without its console: the build script (`build.rs`) builds `ui/` with npm and
//! embeds it, and stops the build with a message saying what to install when npm is missing,
//! rather than producing a router whose `/admin/` is empty. These run the compiled build
//! script directly, as cargo does, with a chosen `PATH` and `OUT_DIR`.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use std::path::PathBuf;
use std::process::Command;

/// The most recently built `build-script-build` of this crate.
fn build_script() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let profile = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/PROFILE");
    std::fs::read_dir(profile.join("build"))
        .expect("target/PROFILE/build")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("fluxgate-server-")
        })
        .map(|e| e.path().join("build-script-build"))
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("the build script was compiled")
}

fn run(env: &[(&str, &str)]) -> (bool, String, PathBuf, tempfile::TempDir) {
    let out = common::tempdir();
    let mut cmd = Command::new(build_script());
    cmd.env("CARGO_MANIFEST_DIR", env!("CARGO_MANIFEST_DIR"))
        .env("OUT_DIR", out.path())
        .env_remove("FLUXGATE_CONSOLE_DIST");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run the build script");
    let text =
        String::from_utf8_lossy(&o.stderr).into_owned() + &String::from_utf8_lossy(&o.stdout);
    (
        o.status.success(),
        text,
        out.path().join("console_files.rs"),
        out,
    )
}

#[test]
fn without_npm_the_build_stops_and_says_what_to_install() {
    let (ok, text, table, _out) = run(&[("PATH", "/nonexistent")]);
    assert!(!ok, "{text}");
    assert!(text.contains("Node.js and npm"), "{text}");
    assert!(text.contains("apt install nodejs npm"), "{text}");
    assert!(text.contains("FLUXGATE_CONSOLE_DIST"), "{text}");
    assert!(!table.exists(), "no console table, so no binary");
}

#[test]
fn a_prebuilt_console_is_embedded_and_an_empty_one_refused() {
    let dist = common::tempdir();
    let empty = dist.path().to_str().expect("utf8").to_string();
    let (ok, text, _, _out) = run(&[("FLUXGATE_CONSOLE_DIST", &empty), ("PATH", "/nonexistent")]);
    assert!(!ok && text.contains("no index.html"), "{text}");

    std::fs::create_dir_all(dist.path().join("assets")).expect("assets");
    std::fs::write(dist.path().join("index.html"), "<!doctype html>").expect("index");
    std::fs::write(dist.path().join("assets/app-1.js"), "1").expect("asset");
    let (ok, text, table, _out) =
        run(&[("FLUXGATE_CONSOLE_DIST", &empty), ("PATH", "/nonexistent")]);
    assert!(ok, "{text}");
    let code = std::fs::read_to_string(table).expect("table");
    assert!(
        code.contains("\"index.html\"") && code.contains("\"assets/app-1.js\""),
        "{code}"
    );
}
