//! Pointing a tool at Fluxgate by writing the tool's own config files.
//!
//! For each tool, [`plan`] reads its files and works out what they become (the base URL and
//! a client token, in the tool's own format, every other byte kept); [`apply`] writes them
//! (owner-only, atomically) after keeping the originals once in a backup; [`undo`] puts the
//! originals back byte for byte, or removes files the setup created. Nothing here makes tokens
//! or talks to the router: the caller passes the token in and says whether it still works.
//!
//! | tool | files | what is set |
//! |---|---|---|
//! | Claude Code | `~/.claude/settings.json` | `env.ANTHROPIC_BASE_URL`, `env.ANTHROPIC_AUTH_TOKEN` (an `env.ANTHROPIC_API_KEY` is removed: it would win) |
//! | Codex CLI | `$CODEX_HOME/config.toml` (`~/.codex`) | `model_provider = "fluxgate"`, `[model_providers.fluxgate]` with `wire_api = "responses"` and the token as `experimental_bearer_token` |
//! | Gemini CLI | `~/.gemini/.env`, `~/.gemini/settings.json` | `GOOGLE_GEMINI_BASE_URL`, `GEMINI_API_KEY`; `security.auth.selectedType = "gemini-api-key"` |
//! | opencode | `$XDG_CONFIG_HOME/opencode/opencode.json` | `provider.fluxgate` (`@ai-sdk/openai-compatible`, `options.baseURL`, `options.apiKey`, the routes as models) |

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::jsonc;
use super::ClientKind;
use crate::secrets::SecretStore;

/// Why a setup could not be planned, written or undone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetupError {
    #[error("{path} is not valid {format} ({detail}); fix or move it, then run the setup again. Nothing was changed")]
    Malformed {
        path: String,
        format: &'static str,
        detail: String,
    },
    #[error("cannot {what} {path}: {reason}")]
    Io {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0} has no file setup; its setup is text to copy")]
    NotWritable(&'static str),
    #[error("there is nothing to undo for {0}: `fluxgate setup {1}` has not changed its files (or was undone already)")]
    NothingToUndo(&'static str, &'static str),
    #[error("cannot make a client token: {0}")]
    Token(String),
    #[error("{path} holds what looks like an API key; Fluxgate keeps the original of such a file only in the OS keychain, which is not available here ({reason}). Nothing was changed")]
    NoSafeBackup { path: String, reason: String },
}

/// What [`set_up`] did (or, for a dry run, would do).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    /// The diff of the files, the token shown by its last four characters.
    pub diff: String,
    /// The name of the client token made for the tool; `None` when the files already held a
    /// working one (or for a dry run, which makes none).
    pub new_token: Option<String>,
    /// The files written (none for a dry run or when nothing changed).
    pub written: Vec<PathBuf>,
}

/// Points `kind` at Fluxgate at `base`: reuses the token its files hold when it still works
/// for this Fluxgate, else makes one named after the tool; shows the change as a diff; writes
/// it unless `dry_run`. The use case behind `fluxgate setup`, the console and the tray.
#[expect(clippy::too_many_arguments)]
pub fn set_up(
    kind: ClientKind,
    homes: &Homes,
    data_dir: &Path,
    tokens: &crate::tokens::ClientTokens,
    keychain: Result<&dyn SecretStore, String>,
    base: &str,
    models: &[String],
    dry_run: bool,
) -> Result<Outcome, SetupError> {
    let base = base.trim_end_matches('/');
    let now = current(kind, homes)?;
    let reusable = now
        .token
        .filter(|t| now.base_url.as_deref() == Some(base) && tokens.verify(t).is_some());
    let (token, new_token) = match reusable {
        Some(t) => (t, None),
        None if dry_run => (
            format!("fgk_a_new_token_for_{}", kind.id()).replace('-', "_"),
            None,
        ),
        None => {
            let (name, t) = tokens
                .create_numbered(kind.id())
                .map_err(|e| SetupError::Token(e.to_string()))?;
            (t, Some(name))
        }
    };
    let plan = plan(kind, homes, base, &token, models)?;
    let diff = plan.diff(&token);
    let written = if dry_run {
        Vec::new()
    } else {
        apply(&plan, data_dir, keychain)?
    };
    Ok(Outcome {
        plan,
        diff,
        new_token,
        written,
    })
}

/// Undoes `kind`'s setup ([`undo`]) and revokes the client token its files held, if it was
/// one of this Fluxgate's. Returns the files restored or removed.
pub fn revert(
    kind: ClientKind,
    homes: &Homes,
    data_dir: &Path,
    tokens: &crate::tokens::ClientTokens,
    keychain: Result<&dyn SecretStore, String>,
) -> Result<Vec<PathBuf>, SetupError> {
    let held = current(kind, homes).ok().and_then(|c| c.token);
    let done = undo(kind, data_dir, keychain)?;
    if let Some(name) = held.as_deref().and_then(|t| tokens.verify(t)) {
        if let Err(e) = tokens.revoke(&name) {
            tracing::warn!(token = %name, error = %e, "cannot revoke the token the setup made");
        }
    }
    Ok(done)
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> SetupError + 'p {
    move |e| SetupError::Io {
        what,
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// Where a tool's files are, from the user's environment.
#[derive(Debug, Clone)]
pub struct Homes {
    pub home: PathBuf,
    /// `CODEX_HOME`, else `~/.codex`.
    pub codex: PathBuf,
    /// `XDG_CONFIG_HOME`, else `~/.config`.
    pub config: PathBuf,
}

impl Homes {
    /// From `HOME`, `CODEX_HOME` and `XDG_CONFIG_HOME`.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Option<Homes> {
        let home = PathBuf::from(get("HOME").filter(|h| !h.is_empty())?);
        let codex = get("CODEX_HOME")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".codex"));
        let config = get("XDG_CONFIG_HOME")
            .filter(|c| !c.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".config"));
        Some(Homes {
            home,
            codex,
            config,
        })
    }
}

/// The files a tool's setup touches.
pub fn files(kind: ClientKind, homes: &Homes) -> Result<Vec<PathBuf>, SetupError> {
    Ok(match kind {
        ClientKind::ClaudeCode => vec![homes.home.join(".claude/settings.json")],
        ClientKind::Codex => vec![homes.codex.join("config.toml")],
        ClientKind::GeminiCli => vec![
            homes.home.join(".gemini/.env"),
            homes.home.join(".gemini/settings.json"),
        ],
        ClientKind::Opencode => vec![homes.config.join("opencode/opencode.json")],
        ClientKind::OpenaiSdk | ClientKind::AnthropicSdk => {
            return Err(SetupError::NotWritable(kind.title()))
        }
    })
}

/// One file, before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileChange {
    pub path: PathBuf,
    /// `None`: the file does not exist yet.
    pub before: Option<String>,
    pub after: String,
}

impl FileChange {
    pub fn changes(&self) -> bool {
        self.before.as_deref() != Some(self.after.as_str())
    }
}

/// What a tool's setup would write.
#[derive(Debug, Clone)]
pub struct Plan {
    pub kind: ClientKind,
    pub files: Vec<FileChange>,
}

impl Plan {
    /// Whether applying it would change any file.
    pub fn changes(&self) -> bool {
        self.files.iter().any(FileChange::changes)
    }

    /// A unified diff of every changed file, with `token` shown as its last four characters
    /// and anything else that looks like a key (the user's own, being replaced) blanked.
    pub fn diff(&self, token: &str) -> String {
        let mask = |s: &str| {
            let s = if token.len() > 8 {
                s.replace(token, &format!("fgk_…{}", &token[token.len() - 4..]))
            } else {
                s.to_string()
            };
            crate::secrets::blank_secret_words(&s)
        };
        let mut out = String::new();
        for f in self.files.iter().filter(|f| f.changes()) {
            let before = f.before.as_deref().map(mask);
            out.push_str(&super::diff::unified(
                &f.path.display().to_string(),
                before.as_deref(),
                &mask(&f.after),
            ));
        }
        out
    }
}

/// What a tool's files say now: the base URL and token they point at, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Current {
    pub base_url: Option<String>,
    pub token: Option<String>,
}

fn read(path: &Path) -> Result<Option<String>, SetupError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", path)(e)),
    }
}

fn malformed(path: &Path, format: &'static str, detail: impl ToString) -> SetupError {
    SetupError::Malformed {
        path: path.display().to_string(),
        format,
        detail: detail.to_string(),
    }
}

fn json_doc(path: &Path, text: Option<&str>) -> Result<jsonc::Doc, SetupError> {
    jsonc::Doc::parse(text.unwrap_or("")).map_err(|e| malformed(path, "JSON", e))
}

fn toml_doc(path: &Path, text: Option<&str>) -> Result<toml_edit::DocumentMut, SetupError> {
    text.unwrap_or("")
        .parse::<toml_edit::DocumentMut>()
        .map_err(|e| {
            let at = e
                .span()
                .map(|s| {
                    let before = &text.unwrap_or("")[..s.start];
                    format!(
                        "line {}, column {}: ",
                        before.matches('\n').count() + 1,
                        before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1
                    )
                })
                .unwrap_or_default();
            malformed(path, "TOML", format!("{at}{}", e.message().trim()))
        })
}

/// `KEY=value` lines of a dotenv file: (key, value) per line that sets one.
pub(super) fn dotenv_get(text: &str, key: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l);
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })
}

/// `text` with `key` set to `value`: the last line that sets it is replaced in place, else a
/// line is added at the end. Comments and other lines stay.
fn dotenv_set(text: &str, key: &str, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let sets = |l: &str| {
        let l = l.trim_start();
        let l = l.strip_prefix("export ").unwrap_or(l);
        l.split_once('=').is_some_and(|(k, _)| k.trim() == key)
    };
    let line = format!("{key}={value}");
    match lines.iter().rposition(|l| sets(l)) {
        Some(i) => lines[i] = line,
        None => lines.push(line),
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// Reads what `kind`'s files point at now.
pub fn current(kind: ClientKind, homes: &Homes) -> Result<Current, SetupError> {
    let paths = files(kind, homes)?;
    let s = |v: Option<serde_json::Value>| v.and_then(|v| v.as_str().map(str::to_string));
    Ok(match kind {
        ClientKind::ClaudeCode => {
            let text = read(&paths[0])?;
            let d = json_doc(&paths[0], text.as_deref())?;
            Current {
                base_url: s(d.get(&["env", "ANTHROPIC_BASE_URL"])),
                token: s(d.get(&["env", "ANTHROPIC_AUTH_TOKEN"])),
            }
        }
        ClientKind::Codex => {
            let text = read(&paths[0])?;
            let d = toml_doc(&paths[0], text.as_deref())?;
            let p = d.get("model_providers").and_then(|m| m.get("fluxgate"));
            let field = |k: &str| {
                p.and_then(|p| p.get(k))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            };
            Current {
                base_url: field("base_url").map(|b| b.trim_end_matches("/v1").to_string()),
                token: field("experimental_bearer_token"),
            }
        }
        ClientKind::GeminiCli => {
            let env = read(&paths[0])?.unwrap_or_default();
            Current {
                base_url: dotenv_get(&env, "GOOGLE_GEMINI_BASE_URL"),
                token: dotenv_get(&env, "GEMINI_API_KEY"),
            }
        }
        ClientKind::Opencode => {
            let text = read(&paths[0])?;
            let d = json_doc(&paths[0], text.as_deref())?;
            Current {
                base_url: s(d.get(&["provider", "fluxgate", "options", "baseURL"]))
                    .map(|b| b.trim_end_matches("/v1").to_string()),
                token: s(d.get(&["provider", "fluxgate", "options", "apiKey"])),
            }
        }
        ClientKind::OpenaiSdk | ClientKind::AnthropicSdk => Current::default(),
    })
}

/// Reads the JSON(C) file at `path` (absent: an empty object), applies `f` (told whether the
/// file is new) and returns the change.
fn edit_json(
    path: &Path,
    f: impl FnOnce(&mut jsonc::Doc, bool) -> Result<(), jsonc::JsoncError>,
) -> Result<FileChange, SetupError> {
    let before = read(path)?;
    let mut d = json_doc(path, before.as_deref())?;
    f(&mut d, before.is_none()).map_err(|e| malformed(path, "JSON", e))?;
    Ok(FileChange {
        path: path.to_path_buf(),
        before,
        after: d.text().to_string(),
    })
}

/// What `kind`'s files become to use Fluxgate at `base` (`http://127.0.0.1:8414`) with
/// `token`; `models` are the route names offered to tools that list models (opencode).
pub fn plan(
    kind: ClientKind,
    homes: &Homes,
    base: &str,
    token: &str,
    models: &[String],
) -> Result<Plan, SetupError> {
    let base = base.trim_end_matches('/');
    let paths = files(kind, homes)?;
    let mut out = Vec::new();
    match kind {
        ClientKind::ClaudeCode => out.push(edit_json(&paths[0], |d, _| {
            d.set(&["env", "ANTHROPIC_BASE_URL"], &base.into())?;
            d.set(&["env", "ANTHROPIC_AUTH_TOKEN"], &token.into())?;
            d.remove(&["env", "ANTHROPIC_API_KEY"])?;
            Ok(())
        })?),
        ClientKind::Codex => {
            let before = read(&paths[0])?;
            let mut d = toml_doc(&paths[0], before.as_deref())?;
            d["model_provider"] = toml_edit::value("fluxgate");
            if !d.contains_key("model_providers") {
                let mut t = toml_edit::Table::new();
                t.set_implicit(true);
                d["model_providers"] = toml_edit::Item::Table(t);
            }
            let providers = d["model_providers"].as_table_like_mut().ok_or_else(|| {
                malformed(
                    &paths[0],
                    "Codex config",
                    "`model_providers` is not a table",
                )
            })?;
            if providers.get("fluxgate").is_none() {
                providers.insert("fluxgate", toml_edit::Item::Table(toml_edit::Table::new()));
            }
            let p = providers
                .get_mut("fluxgate")
                .and_then(|p| p.as_table_like_mut())
                .ok_or_else(|| {
                    malformed(
                        &paths[0],
                        "Codex config",
                        "`model_providers.fluxgate` is not a table",
                    )
                })?;
            p.insert("name", toml_edit::value("Fluxgate"));
            p.insert("base_url", toml_edit::value(format!("{base}/v1")));
            p.insert("wire_api", toml_edit::value("responses"));
            p.insert("experimental_bearer_token", toml_edit::value(token));
            out.push(FileChange {
                path: paths[0].clone(),
                before,
                after: d.to_string(),
            });
        }
        ClientKind::GeminiCli => {
            let env_before = read(&paths[0])?;
            let env = dotenv_set(
                env_before.as_deref().unwrap_or(""),
                "GOOGLE_GEMINI_BASE_URL",
                base,
            );
            let env = dotenv_set(&env, "GEMINI_API_KEY", token);
            out.push(FileChange {
                path: paths[0].clone(),
                before: env_before,
                after: env,
            });
            out.push(edit_json(&paths[1], |d, _| {
                d.set(
                    &["security", "auth", "selectedType"],
                    &"gemini-api-key".into(),
                )
            })?);
        }
        ClientKind::Opencode => {
            let listed: serde_json::Map<String, serde_json::Value> = models
                .iter()
                .map(|m| (m.clone(), serde_json::json!({ "name": m })))
                .collect();
            out.push(edit_json(&paths[0], |d, new| {
                if new {
                    d.set(&["$schema"], &"https://opencode.ai/config.json".into())?;
                }
                d.set(
                    &["provider", "fluxgate", "npm"],
                    &"@ai-sdk/openai-compatible".into(),
                )?;
                d.set(&["provider", "fluxgate", "name"], &"Fluxgate".into())?;
                d.set(
                    &["provider", "fluxgate", "options"],
                    &serde_json::json!({ "baseURL": format!("{base}/v1"), "apiKey": token }),
                )?;
                d.set(
                    &["provider", "fluxgate", "models"],
                    &serde_json::Value::Object(listed),
                )
            })?);
        }
        ClientKind::OpenaiSdk | ClientKind::AnthropicSdk => {
            return Err(SetupError::NotWritable(kind.title()))
        }
    }
    Ok(Plan { kind, files: out })
}

/// The backup of a tool's originals, `DATA_DIR/setup/<tool>/`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    files: Vec<Kept>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    path: PathBuf,
    /// Where the original is: a file in the backup directory, or (`in_keychain`) a keychain
    /// account; `None`: there was no file.
    backup: Option<String>,
    /// The original held something key-shaped, so it was kept in the keychain, not on disk.
    #[serde(default)]
    in_keychain: bool,
    /// The original's permission bits.
    mode: Option<u32>,
}

fn backup_dir(data_dir: &Path, kind: ClientKind) -> PathBuf {
    data_dir.join("setup").join(kind.id())
}

fn private_dir(dir: &Path) -> Result<(), SetupError> {
    std::fs::create_dir_all(dir).map_err(io("create", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("protect", dir))?;
    }
    Ok(())
}

fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Writes `plan`'s files (owner-only: they hold a token), keeping the originals first: in
/// `DATA_DIR/setup/<tool>/`, or, for an original that holds something key-shaped (a user's own
/// API key in their tool's settings), in `keychain` — Fluxgate never writes a key to a file.
/// Only the first setup's originals are kept, so `undo` always returns to the files as they
/// were before Fluxgate touched them. Returns the files written.
pub fn apply(
    plan: &Plan,
    data_dir: &Path,
    keychain: Result<&dyn SecretStore, String>,
) -> Result<Vec<PathBuf>, SetupError> {
    let dir = backup_dir(data_dir, plan.kind);
    let manifest_path = dir.join("manifest.json");
    if !manifest_path.exists() {
        // Refuse before anything is kept when a key-shaped original has nowhere safe to go.
        if let (Some(f), Err(reason)) = (
            plan.files.iter().find(|f| holds_key(f.before.as_deref())),
            &keychain,
        ) {
            return Err(SetupError::NoSafeBackup {
                path: f.path.display().to_string(),
                reason: reason.clone(),
            });
        }
        private_dir(&dir)?;
        let mut kept = Vec::new();
        for (i, f) in plan.files.iter().enumerate() {
            let (backup, in_keychain) = match (&f.before, &keychain) {
                (Some(text), Ok(store)) if holds_key(Some(text)) => {
                    let account = format!("setup-backup/{}/{i}", plan.kind.id());
                    store
                        .set(&account, &crate::secrets::SecretValue::new(text.clone()))
                        .map_err(|e| SetupError::NoSafeBackup {
                            path: f.path.display().to_string(),
                            reason: e.to_string(),
                        })?;
                    (Some(account), true)
                }
                (Some(text), _) => {
                    let name = format!("{i}.orig");
                    let p = dir.join(&name);
                    let _ = std::fs::remove_file(&p);
                    crate::files::create_private(&p, text.as_bytes()).map_err(io("back up", &p))?;
                    (Some(name), false)
                }
                (None, _) => (None, false),
            };
            kept.push(Kept {
                path: f.path.clone(),
                backup,
                in_keychain,
                mode: mode_of(&f.path),
            });
        }
        let text =
            serde_json::to_vec_pretty(&Manifest { files: kept }).map_err(|e| SetupError::Io {
                what: "record",
                path: manifest_path.display().to_string(),
                reason: e.to_string(),
            })?;
        crate::files::replace_atomically(&manifest_path, &text)
            .map_err(io("record", &manifest_path))?;
    }
    let mut written = Vec::new();
    for f in plan.files.iter().filter(|f| f.changes()) {
        if let Some(parent) = f.path.parent() {
            std::fs::create_dir_all(parent).map_err(io("create", parent))?;
        }
        crate::files::replace_atomically(&f.path, f.after.as_bytes())
            .map_err(io("write", &f.path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&f.path, std::fs::Permissions::from_mode(0o600))
                .map_err(io("protect", &f.path))?;
        }
        written.push(f.path.clone());
    }
    Ok(written)
}

/// Whether a file's text holds something that looks like a key.
fn holds_key(text: Option<&str>) -> bool {
    text.is_some_and(|t| crate::secrets::blank_secret_words(t) != t)
}

/// Whether `fluxgate setup` has changed `kind`'s files (a backup is kept).
pub fn has_backup(kind: ClientKind, data_dir: &Path) -> bool {
    backup_dir(data_dir, kind).join("manifest.json").exists()
}

/// Puts back `kind`'s original files byte for byte (with their modes), removes the files the
/// setup created, and drops the backup. Returns the files restored or removed.
pub fn undo(
    kind: ClientKind,
    data_dir: &Path,
    keychain: Result<&dyn SecretStore, String>,
) -> Result<Vec<PathBuf>, SetupError> {
    let dir = backup_dir(data_dir, kind);
    let manifest_path = dir.join("manifest.json");
    let text = match std::fs::read(&manifest_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SetupError::NothingToUndo(kind.title(), kind.id()))
        }
        Err(e) => return Err(io("read", &manifest_path)(e)),
    };
    let manifest: Manifest = serde_json::from_slice(&text).map_err(|e| SetupError::Io {
        what: "read",
        path: manifest_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut done = Vec::new();
    for k in &manifest.files {
        match &k.backup {
            Some(name) => {
                let original = if k.in_keychain {
                    let store = keychain
                        .as_ref()
                        .map_err(|reason| SetupError::NoSafeBackup {
                            path: k.path.display().to_string(),
                            reason: reason.clone(),
                        })?;
                    let v = store.get(name).map_err(|e| SetupError::Io {
                        what: "read the backup of",
                        path: k.path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                    v.expose().as_bytes().to_vec()
                } else {
                    let p = dir.join(name);
                    std::fs::read(&p).map_err(io("read", &p))?
                };
                crate::files::replace_atomically(&k.path, &original)
                    .map_err(io("restore", &k.path))?;
                #[cfg(unix)]
                if let Some(mode) = k.mode {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&k.path, std::fs::Permissions::from_mode(mode))
                        .map_err(io("restore", &k.path))?;
                }
            }
            None => match std::fs::remove_file(&k.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &k.path)(e)),
            },
        }
        done.push(k.path.clone());
    }
    if let Ok(store) = &keychain {
        for k in manifest.files.iter().filter(|k| k.in_keychain) {
            if let Some(account) = &k.backup {
                let _ = store.delete(account);
            }
        }
    }
    std::fs::remove_dir_all(&dir).map_err(io("remove", &dir))?;
    Ok(done)
}

#[cfg(test)]
mod tests;
