//! Builds the console (`ui/`, TypeScript + Vite) and embeds it into the binary, so
//! `fluxgate serve` and the desktop app serve it at `/admin/` with no files beside them.
//!
//! Every way of building the crate (`cargo build`, `cargo install --path`, `scripts/run.sh`,
//! the packages) goes through here, so no binary is ever made without its console: the build
//! runs `npm ci` (when `ui/node_modules` is missing) and `npm run build` into `OUT_DIR`, and
//! fails with a message saying what to install when `npm` is not there.
//! `FLUXGATE_CONSOLE_DIST=DIR` embeds an already built console instead (no Node needed).
#![allow(clippy::expect_used, clippy::print_stderr)] // a build script: cargo shows its output and its panics

use std::path::{Path, PathBuf};
use std::process::Command;

fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            walk(&p, root, out);
        } else if let Ok(rel) = p.strip_prefix(root) {
            let rel = rel.to_string_lossy().replace('\\', "/");
            out.push((rel, p));
        }
    }
}

/// Stops the build with a message (cargo shows it under "error: failed to run custom build
/// command").
fn fail(message: &str) -> ! {
    eprintln!("\nerror: {message}\n");
    std::process::exit(1);
}

fn npm(ui: &Path, args: &[&str]) {
    let status = Command::new("npm")
        .args(args)
        .current_dir(ui)
        // npm's progress and update notices would only fill cargo's build log.
        .env("npm_config_fund", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_update_notifier", "false")
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!(
            "`npm {}` in {} failed ({s}); the console cannot be built. Fix the error above, or \
             set FLUXGATE_CONSOLE_DIST to a console built elsewhere",
            args.join(" "),
            ui.display()
        )),
        Err(e) => fail(&format!(
            "Fluxgate's console (ui/) is built with Node.js and npm, and `npm` could not be run \
             ({e}). Install them (Debian/Ubuntu: `sudo apt install nodejs npm`; any Node >= 18), \
             or set FLUXGATE_CONSOLE_DIST to a console built elsewhere, then build again"
        )),
    }
}

/// Builds `ui/` into `out` and returns `out`.
fn build_console(ui: &Path, out: &Path) -> PathBuf {
    for watched in [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "tsconfig.json",
    ] {
        println!("cargo:rerun-if-changed={}", ui.join(watched).display());
    }
    // The console imports the language catalogues from the core crate.
    println!(
        "cargo:rerun-if-changed={}",
        ui.join("../crates/fluxgate-core/i18n").display()
    );
    if !ui.join("package.json").exists() {
        fail(&format!(
            "the console's sources are not at {}; build from a full checkout, or set \
             FLUXGATE_CONSOLE_DIST to a built console",
            ui.display()
        ));
    }
    if !ui.join("node_modules/vite").exists() {
        npm(ui, &["ci", "--no-audit", "--no-fund", "--loglevel=error"]);
    }
    let out_arg = out.display().to_string();
    npm(
        ui,
        &[
            "run",
            "--silent",
            "build",
            "--",
            "--outDir",
            &out_arg,
            "--emptyOutDir",
            "--logLevel",
            "error",
        ],
    );
    out.to_path_buf()
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-env-changed=FLUXGATE_CONSOLE_DIST");
    let dist = match std::env::var_os("FLUXGATE_CONSOLE_DIST") {
        Some(d) => PathBuf::from(d),
        None => build_console(&manifest.join("../../ui"), &out_dir.join("console")),
    };
    let mut files = Vec::new();
    walk(&dist, &dist, &mut files);
    if !files.iter().any(|(rel, _)| rel == "index.html") {
        fail(&format!(
            "{} holds no built console (no index.html)",
            dist.display()
        ));
    }
    let mut code = String::from("/// The console's files: (path under /admin/, contents).\npub static CONSOLE_FILES: &[(&str, &[u8])] = &[\n");
    for (rel, path) in &files {
        code.push_str(&format!(
            "    ({rel:?}, include_bytes!({:?})),\n",
            path.canonicalize()
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string()
        ));
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("console_files.rs"), code).expect("write the console table");
}
