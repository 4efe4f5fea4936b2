//! The first run: finding the keys already on this machine and keeping the chosen ones.
//!
//! [`discover`] looks where keys usually are — the usual environment variables
//! (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`, …, and their `_2`…`_9` variants), Codex's
//! `auth.json`, Claude Code's settings `env`, Gemini CLI's `.env` — and reports each as a
//! provider, the key's last four characters and where it was found. Nothing is moved until the
//! user picks: [`adopt`] stores the picked keys in the OS keychain and adds them to the config
//! (the providers too, when missing). `fluxgate init` and the console's welcome page both use
//! it. Fluxgate's own client tokens (`fgk_…`) found in a tool's files are not keys and are
//! skipped.

use std::path::Path;

use crate::config::edit::{ConfigDoc, EditError};
use crate::config::{known_providers, ProviderKind};
use crate::secrets::{SecretError, SecretStore, SecretValue};

use super::tools::Homes;

/// A key found on this machine.
#[derive(Debug, Clone)]
pub struct Found {
    /// Stable while the key stays where it is: `env:OPENAI_API_KEY`, `codex:auth.json`, …
    pub id: String,
    /// The provider it belongs to (`openai`, `anthropic`, …).
    pub provider: &'static str,
    pub kind: ProviderKind,
    pub base_url: &'static str,
    pub models: &'static [&'static str],
    /// The key id it gets in the config (`env`, `env-2`, `codex`, `claude-code`, …).
    pub key_id: String,
    /// Where it was found, for people.
    pub source: String,
    pub secret: SecretValue,
}

impl Found {
    /// What may be shown of the key: `…` and its last four characters.
    pub fn hint(&self) -> String {
        self.secret.hint()
    }
}

fn provider(name: &str) -> Option<crate::config::KnownProvider> {
    known_providers().find(|p| p.name == name)
}

/// Keys in the environment (through `env`) and in the tools' files under `homes`.
pub fn discover(env: impl Fn(&str) -> Option<String>, homes: &Homes) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::new();
    let mut push =
        |provider_name: &str, key_id: String, id: String, source: String, value: &str| {
            let value = value.trim();
            if value.len() < 8 || value.starts_with(crate::tokens::CLIENT_PREFIX) {
                return;
            }
            let Some(p) = provider(provider_name) else {
                return;
            };
            if out.iter().any(|f| f.secret.expose() == value) {
                return;
            }
            out.push(Found {
                id,
                provider: p.name,
                kind: p.kind,
                base_url: p.base_url,
                models: p.models,
                key_id,
                source,
                secret: SecretValue::new(value),
            });
        };
    for p in known_providers() {
        for n in 1..=9 {
            let var = if n == 1 {
                p.variable.to_string()
            } else {
                format!("{}_{n}", p.variable)
            };
            if let Some(v) = env(&var) {
                let key_id = if n == 1 {
                    "env".to_string()
                } else {
                    format!("env-{n}")
                };
                push(
                    p.name,
                    key_id,
                    format!("env:{var}"),
                    format!("the environment variable {var}"),
                    &v,
                );
            }
        }
    }
    if let Some(v) = env("GOOGLE_API_KEY") {
        push(
            "gemini",
            "google".into(),
            "env:GOOGLE_API_KEY".into(),
            "the environment variable GOOGLE_API_KEY".into(),
            &v,
        );
    }
    let read_json = |path: &Path| -> Option<serde_json::Value> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    let codex = homes.codex.join("auth.json");
    if let Some(v) =
        read_json(&codex).and_then(|j| j["OPENAI_API_KEY"].as_str().map(str::to_string))
    {
        push(
            "openai",
            "codex".into(),
            "codex:auth.json".into(),
            format!("{} (Codex CLI)", codex.display()),
            &v,
        );
    }
    let claude = homes.home.join(".claude/settings.json");
    if let Some(v) =
        read_json(&claude).and_then(|j| j["env"]["ANTHROPIC_API_KEY"].as_str().map(str::to_string))
    {
        push(
            "anthropic",
            "claude-code".into(),
            "claude-code:settings.json".into(),
            format!("{} (Claude Code)", claude.display()),
            &v,
        );
    }
    let gemini = homes.home.join(".gemini/.env");
    if let Ok(text) = std::fs::read_to_string(&gemini) {
        for (var, name) in [
            ("GEMINI_API_KEY", "gemini-cli"),
            ("GOOGLE_API_KEY", "gemini-cli-google"),
        ] {
            if let Some(v) = super::tools::dotenv_get(&text, var) {
                push(
                    "gemini",
                    name.into(),
                    format!("gemini-cli:{var}"),
                    format!("{} (Gemini CLI)", gemini.display()),
                    &v,
                );
            }
        }
    }
    out
}

/// Why keys could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum AdoptError {
    #[error("cannot store {account} in the OS keychain: {source}")]
    Keychain {
        account: String,
        source: SecretError,
    },
    #[error(transparent)]
    Config(#[from] EditError),
}

/// Stores each of `chosen` in `store` and adds it (and its provider, when missing) to `doc`;
/// the caller saves `doc`. A key id taken by another key gets a number (`codex-2`). Returns the
/// accounts (`provider/key`) kept.
pub fn adopt(
    chosen: &[Found],
    store: &dyn SecretStore,
    doc: &mut ConfigDoc,
) -> Result<Vec<String>, AdoptError> {
    let mut kept = Vec::new();
    for f in chosen {
        let config = doc.validate().ok();
        let existing = config
            .as_ref()
            .and_then(|c| c.provider(f.provider).cloned());
        if existing.is_none() {
            let models: Vec<String> = f.models.iter().map(|m| m.to_string()).collect();
            let base = (f.kind == ProviderKind::OpenaiCompatible).then_some(f.base_url);
            doc.add_provider(f.provider, f.kind, base, &models)?;
        }
        // A key detected from the same variable (the config seeded from the environment) moves
        // into the keychain under its id, rather than standing beside it.
        let same_source: Option<String> = existing.as_ref().and_then(|p| {
            p.keys
                .iter()
                .find(|k| {
                    matches!(&k.secret, crate::secrets::SecretRef::Env(v) if f.id == format!("env:{v}"))
                })
                .map(|k| k.id.clone())
        });
        if let Some(id) = &same_source {
            doc.remove_key(f.provider, id)?;
        }
        let taken: Vec<String> = existing
            .map(|p| {
                p.keys
                    .iter()
                    .filter(|k| Some(&k.id) != same_source.as_ref())
                    .map(|k| k.id.clone())
                    .collect()
            })
            .unwrap_or_default();
        let mut id = f.key_id.clone();
        let mut n = 2;
        while taken.contains(&id) {
            id = format!("{}-{n}", f.key_id);
            n += 1;
        }
        let account = format!("{}/{id}", f.provider);
        store
            .set(&account, &f.secret)
            .map_err(|source| AdoptError::Keychain {
                account: account.clone(),
                source,
            })?;
        doc.add_key(f.provider, &id, None)?;
        kept.push(account);
    }
    Ok(kept)
}

/// The tools found on this machine that `fluxgate setup` can point at Fluxgate: their config
/// directory exists, or their command is on `PATH`.
pub fn installed_tools(homes: &Homes, path: Option<&str>) -> Vec<super::ClientKind> {
    use super::ClientKind;
    let on_path = |cmd: &str| {
        path.unwrap_or("")
            .split(':')
            .filter(|d| !d.is_empty())
            .any(|d| Path::new(d).join(cmd).is_file())
    };
    ClientKind::WRITABLE
        .into_iter()
        .filter(|k| {
            let (dir, cmd) = match k {
                ClientKind::ClaudeCode => (homes.home.join(".claude"), "claude"),
                ClientKind::Codex => (homes.codex.clone(), "codex"),
                ClientKind::GeminiCli => (homes.home.join(".gemini"), "gemini"),
                ClientKind::Opencode => (homes.config.join("opencode"), "opencode"),
                _ => return false,
            };
            dir.is_dir() || on_path(cmd)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::MemoryStore;

    const A: &str = "sk-canary-aaaaaaaaaaaaaaaaaaaaaaaa1111";
    const B: &str = "sk-ant-canary-bbbbbbbbbbbbbbbbbbbb2222";
    const C: &str = "AIza-canary-cccccccccccccccccccc3333";

    fn homes(dir: &Path) -> Homes {
        Homes {
            home: dir.join("home"),
            codex: dir.join("home/.codex"),
            config: dir.join("home/.config"),
        }
    }

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().expect("parent")).expect("dir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn keys_are_found_in_the_environment_and_the_tools_files() {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        write(
            &h.codex.join("auth.json"),
            &format!("{{\"OPENAI_API_KEY\": \"{A}\"}}"),
        );
        write(
            &h.home.join(".claude/settings.json"),
            &format!("{{\"env\": {{\"ANTHROPIC_API_KEY\": \"{B}\"}}}}"),
        );
        write(
            &h.home.join(".gemini/.env"),
            &format!("# mine\nGEMINI_API_KEY=\"{C}\"\n"),
        );
        let env = |k: &str| match k {
            "OPENAI_API_KEY" => Some(A.to_string()),
            "DEEPSEEK_API_KEY_2" => Some("sk-canary-dddddddddddddddddd4444".to_string()),
            "ANTHROPIC_API_KEY" => Some("fgk_0123456789ab_notakeyjustatoken".to_string()),
            _ => None,
        };
        let found = discover(env, &h);
        let rows: Vec<(&str, &str, String, &str)> = found
            .iter()
            .map(|f| (f.provider, f.key_id.as_str(), f.hint(), f.id.as_str()))
            .collect();
        assert_eq!(
            rows,
            [
                ("openai", "env", "…1111".to_string(), "env:OPENAI_API_KEY"),
                (
                    "deepseek",
                    "env-2",
                    "…4444".to_string(),
                    "env:DEEPSEEK_API_KEY_2"
                ),
                (
                    "anthropic",
                    "claude-code",
                    "…2222".to_string(),
                    "claude-code:settings.json"
                ),
                (
                    "gemini",
                    "gemini-cli",
                    "…3333".to_string(),
                    "gemini-cli:GEMINI_API_KEY"
                ),
            ],
            "the same key twice is listed once; a Fluxgate token is not a key"
        );
        assert!(
            found[2].source.contains(".claude/settings.json")
                && found[2].source.contains("Claude Code")
        );
        assert!(
            !format!("{found:?}").contains(A),
            "Found never prints a key"
        );
    }

    #[test]
    fn adopting_stores_the_keys_and_writes_providers_and_ids() {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        write(
            &h.codex.join("auth.json"),
            &format!("{{\"OPENAI_API_KEY\": \"{A}\"}}"),
        );
        let env = |k: &str| (k == "DEEPSEEK_API_KEY").then(|| B.to_string());
        let found = discover(env, &h);
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "# mine\n[providers.openai]\nkind = \"openai\"\nkeys = [{ id = \"codex\", secret = \"env:X\" }]\n").expect("config");
        let store = MemoryStore::default();
        let mut doc = ConfigDoc::open(&path, None).expect("open");
        let kept = adopt(&found, &store, &mut doc).expect("adopt");
        assert_eq!(kept, ["deepseek/env", "openai/codex-2"]);
        let config = doc.save().expect("valid");
        assert_eq!(store.get("openai/codex-2").expect("stored").expose(), A);
        assert_eq!(store.get("deepseek/env").expect("stored").expose(), B);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(
            text.starts_with("# mine\n") && !text.contains(A) && !text.contains(B),
            "{text}"
        );
        assert_eq!(
            config.provider("deepseek").expect("added").base_url,
            "https://api.deepseek.com/v1"
        );
        assert_eq!(config.provider("openai").expect("kept").keys.len(), 2);
    }

    #[test]
    fn installed_tools_are_found_by_their_directory_or_command() {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        std::fs::create_dir_all(h.home.join(".claude")).expect("dir");
        let bin = dir.path().join("bin");
        write(&bin.join("opencode"), "#!/bin/sh\n");
        let path = format!("/nonexistent:{}", bin.display());
        assert_eq!(
            installed_tools(&h, Some(&path)),
            [
                super::super::ClientKind::ClaudeCode,
                super::super::ClientKind::Opencode
            ]
        );
    }
}
