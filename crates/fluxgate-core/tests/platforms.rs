//! The platform matrix, checked from the build graph (README "Platforms"): for each desktop
//! target, cargo resolves `keyring` with that platform's native store and `notify-rust` with
//! its native notification backend, never the in-memory mock keyring. Read with `cargo
//! metadata --filter-platform` (offline: the crates of every platform are in Cargo.lock and
//! fetched by `scripts/deps.sh test`).
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::collections::BTreeMap;
use std::process::Command;

/// package name -> (features, dependency package names), as resolved for `target`.
fn resolve(target: &str) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml");
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--locked",
            "--offline",
            "--manifest-path",
            root,
            "--filter-platform",
            target,
        ])
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: BTreeMap<String, String> = v["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap_or("").to_string(),
                p["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v["resolve"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| {
            let name = names
                .get(n["id"].as_str().unwrap_or(""))
                .cloned()
                .unwrap_or_default();
            let features = n["features"]
                .as_array()
                .map(|f| {
                    f.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let deps = n["deps"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|x| names.get(x["pkg"].as_str().unwrap_or("")).cloned())
                        .collect()
                })
                .unwrap_or_default();
            (name, (features, deps))
        })
        .collect()
}

#[test]
fn every_desktop_target_gets_its_native_keychain_and_notifications() {
    for (target, keychain_feature, keychain_dep, notify_dep) in [
        (
            "x86_64-unknown-linux-gnu",
            "sync-secret-service",
            "dbus-secret-service",
            "zbus",
        ),
        (
            "aarch64-apple-darwin",
            "apple-native",
            "security-framework",
            "mac-notification-sys",
        ),
        (
            "x86_64-pc-windows-msvc",
            "windows-native",
            "windows-sys",
            "tauri-winrt-notification",
        ),
    ] {
        let graph = resolve(target);
        let (features, deps) = graph
            .get("keyring")
            .unwrap_or_else(|| panic!("{target}: no keyring"));
        assert!(
            features.iter().any(|f| f == keychain_feature),
            "{target}: keyring features {features:?}"
        );
        assert!(
            deps.iter().any(|d| d == keychain_dep),
            "{target}: keyring deps {deps:?}"
        );
        let (_, deps) = graph
            .get("notify-rust")
            .unwrap_or_else(|| panic!("{target}: no notify-rust"));
        assert!(
            deps.iter().any(|d| d == notify_dep),
            "{target}: notify-rust deps {deps:?}"
        );
        for plugin in ["tauri-plugin-single-instance", "tauri-plugin-autostart"] {
            assert!(graph.contains_key(plugin), "{target}: {plugin}");
        }
    }
}
