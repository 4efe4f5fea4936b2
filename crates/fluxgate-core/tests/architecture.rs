//! Statements in ARCHITECTURE.md and README.md that a program can check, checked: the layers of
//! `fluxgate-core` (no module imports one of its own layer or above, every module has a layer)
//! and every repository file the two documents name exists.
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every file under `dir`, relative to it, without build output, dependencies or VCS data.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "target" | "node_modules" | ".git" | "dist") {
                    walk(root, &p, out);
                }
            } else if let Ok(rel) = p.strip_prefix(root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

/// The layers as ARCHITECTURE.md lists them: `- layer N: `a`, `b``.
fn documented_layers(doc: &str) -> BTreeMap<String, u32> {
    let mut layers = BTreeMap::new();
    for line in doc.lines() {
        let Some(rest) = line.trim().strip_prefix("- layer ") else {
            continue;
        };
        let Some((n, modules)) = rest.split_once(':') else {
            continue;
        };
        let n: u32 = n.trim().parse().expect("a layer number");
        for m in modules.split(',') {
            let m = m.trim().trim_matches('`');
            assert!(
                layers.insert(m.to_string(), n).is_none(),
                "`{m}` is in two layers"
            );
        }
    }
    layers
}

/// The crate modules each top-level module names in `crate::` paths outside its tests.
fn imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files(src) {
        if !file.ends_with(".rs") || file == "lib.rs" {
            continue;
        }
        let module = file
            .split('/')
            .next()
            .unwrap_or_default()
            .trim_end_matches(".rs")
            .to_string();
        let deps = out.entry(module.clone()).or_default();
        if file.ends_with("tests.rs") || file.contains("/tests/") {
            continue;
        }
        for line in read(&src.join(&file)).lines() {
            let line = line.trim();
            if line.starts_with("#[cfg(test)]") {
                break;
            }
            if line.starts_with("//") {
                continue;
            }
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
    }
    out
}

#[test]
fn core_modules_import_only_lower_layers() {
    let doc = read(&repo().join("ARCHITECTURE.md"));
    let layers = documented_layers(&doc);
    assert!(!layers.is_empty(), "ARCHITECTURE.md lists no layers");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut wrong = Vec::new();
    for (module, deps) in imports(&src) {
        let Some(&own) = layers.get(&module) else {
            wrong.push(format!("`{module}` has no layer in ARCHITECTURE.md"));
            continue;
        };
        for d in deps {
            match layers.get(&d) {
                Some(&l) if l < own => {}
                Some(&l) => wrong.push(format!(
                    "`{module}` (layer {own}) imports `{d}` (layer {l})"
                )),
                None => wrong.push(format!("`{module}` imports `{d}`, which has no layer")),
            }
        }
    }
    for m in layers.keys() {
        let exists = src.join(format!("{m}.rs")).exists() || src.join(m).is_dir();
        if !exists {
            wrong.push(format!(
                "ARCHITECTURE.md layers name `{m}`, which does not exist"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn documents_name_only_files_that_exist() {
    let root = repo();
    let all = files(&root);
    let dirs: BTreeSet<String> = all
        .iter()
        .flat_map(|f| {
            let parts: Vec<&str> = f.split('/').collect();
            (1..parts.len())
                .map(|i| format!("{}/", parts[..i].join("/")))
                .collect::<Vec<_>>()
        })
        .collect();
    let found = |t: &str| {
        let suffix = format!("/{t}");
        if t.ends_with('/') {
            dirs.iter().any(|d| d == t || d.ends_with(&suffix))
        } else {
            all.iter().any(|f| f == t || f.ends_with(&suffix))
        }
    };
    let mut missing = Vec::new();
    for doc in ["ARCHITECTURE.md", "README.md"] {
        let text = read(&root.join(doc));
        for (i, tok) in text.split('`').enumerate() {
            if i % 2 == 0 || tok.contains(char::is_whitespace) {
                continue;
            }
            let looks_like_file = [
                ".rs", ".md", ".toml", ".sh", ".py", ".ts", ".mjs", ".desktop", ".xml",
            ]
            .iter()
            .any(|e| tok.ends_with(e))
                || (tok.ends_with('/') && tok.len() > 1);
            // Files outside the repository (the user's, the data directory's, build output)
            // are not checked; a bare name is checked only when it is a source file.
            let elsewhere = tok.starts_with(['~', '$', '/', '.'])
                || tok.contains("://")
                || tok.starts_with("target/")
                || tok.contains("DATA_DIR")
                || tok.contains(['*', '<', '{'])
                || (!tok.contains('/') && !tok.ends_with(".rs"));
            if !looks_like_file || elsewhere {
                continue;
            }
            let candidates = [
                tok.to_string(),
                tok.replacen("core/", "crates/fluxgate-core/", 1),
                tok.replacen("server/", "crates/fluxgate-server/", 1),
            ];
            if !candidates.iter().any(|c| found(c)) {
                missing.push(format!("{doc}: `{tok}`"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "named but not in the repository:\n{}",
        missing.join("\n")
    );
}
