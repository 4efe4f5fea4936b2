//! Edits of the config file from the console and the tray, with `toml_edit`: comments, order
//! and formatting of everything not edited are kept. Every edit is validated as a whole
//! config before it is written; an edit that would make the file invalid is refused and the
//! file is left as it was. Writes are atomic (a temporary file in the same directory, then a
//! rename), so the file watcher and a crash never see half a file.

use std::path::{Path, PathBuf};

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, InlineTable, Item, Table, Value};

use super::{Config, ConfigError, ConfigSource, ProviderKind};
use crate::secrets::SecretRef;

/// Why an edit was refused. Messages say what to do.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("the edit would make the config invalid: {0}")]
    Rejected(ConfigError),
    #[error("cannot write {path}: {reason}")]
    Write { path: String, reason: String },
    #[error("the config file {path} is not valid TOML ({reason}); fix it by hand first")]
    Unreadable { path: String, reason: String },
}

/// A budget's limits as the console edits them (none: no budget).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetLimits {
    pub daily_usd: Option<f64>,
    pub monthly_usd: Option<f64>,
    pub daily_tokens: Option<u64>,
    pub monthly_tokens: Option<u64>,
}

impl BudgetLimits {
    pub fn is_empty(&self) -> bool {
        *self == BudgetLimits::default()
    }
}

/// A config file opened for editing.
pub struct ConfigDoc {
    path: PathBuf,
    doc: DocumentMut,
}

fn valid_name(kind: &str, s: &str) -> Result<(), EditError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(EditError::Invalid(format!(
            "{kind} `{s}` is not a valid name: use 1-64 letters, digits, `-`, `_` or `.`"
        )))
    }
}

impl ConfigDoc {
    /// Opens `path` for editing. A missing file starts empty; when the running config came
    /// from environment variables, its providers are written into the new file as `env:`
    /// references, so creating the file keeps every detected key.
    pub fn open(path: &Path, running: Option<&Config>) -> Result<ConfigDoc, EditError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(EditError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })
            }
        };
        let doc: DocumentMut =
            text.parse()
                .map_err(|e: toml_edit::TomlError| EditError::Unreadable {
                    path: path.display().to_string(),
                    reason: e.message().to_string(),
                })?;
        let mut me = ConfigDoc {
            path: path.to_path_buf(),
            doc,
        };
        if text.trim().is_empty() {
            if let Some(c) = running.filter(|c| c.source == ConfigSource::Environment) {
                me.seed_from(c)?;
            }
        }
        Ok(me)
    }

    fn seed_from(&mut self, c: &Config) -> Result<(), EditError> {
        for p in &c.providers {
            let mut t = Table::new();
            t["kind"] = value(p.kind.as_str());
            t["base_url"] = value(&p.base_url);
            let mut keys = Array::new();
            for k in &p.keys {
                let mut it = InlineTable::new();
                it.insert("id", k.id.as_str().into());
                if k.secret != SecretRef::Keychain {
                    it.insert("secret", k.secret.to_string().into());
                }
                keys.push(it);
            }
            t["keys"] = value(keys);
            if !p.models.is_empty() {
                t["models"] = value(p.models.iter().map(String::as_str).collect::<Array>());
            }
            self.providers_mut()?.insert(&p.name, Item::Table(t));
        }
        Ok(())
    }

    fn providers_mut(&mut self) -> Result<&mut Table, EditError> {
        if !self.doc.contains_key("providers") {
            let mut t = Table::new();
            t.set_implicit(true);
            self.doc.insert("providers", Item::Table(t));
        }
        self.doc["providers"].as_table_mut().ok_or_else(|| {
            EditError::Invalid("`providers` in the config file is not a table".into())
        })
    }

    fn provider_mut(&mut self, name: &str) -> Result<&mut dyn toml_edit::TableLike, EditError> {
        self.doc
            .get_mut("providers")
            .and_then(|p| p.get_mut(name))
            .and_then(|p| p.as_table_like_mut())
            .ok_or_else(|| EditError::NotFound(format!("no provider `{name}` in the config")))
    }

    /// Adds a provider (no keys yet).
    pub fn add_provider(
        &mut self,
        name: &str,
        kind: ProviderKind,
        base_url: Option<&str>,
        models: &[String],
    ) -> Result<(), EditError> {
        valid_name("provider", name)?;
        if self
            .doc
            .get("providers")
            .and_then(|p| p.get(name))
            .is_some()
        {
            return Err(EditError::Conflict(format!(
                "a provider named `{name}` exists already"
            )));
        }
        let mut t = Table::new();
        t["kind"] = value(kind.as_str());
        if let Some(b) = base_url.filter(|b| !b.is_empty()) {
            t["base_url"] = value(b);
        }
        t["keys"] = value(Array::new());
        if !models.is_empty() {
            t["models"] = value(models.iter().map(String::as_str).collect::<Array>());
        }
        self.providers_mut()?.insert(name, Item::Table(t));
        Ok(())
    }

    /// Deletes a provider. Routes that still name it make the edit invalid (validation says
    /// which).
    pub fn remove_provider(&mut self, name: &str) -> Result<(), EditError> {
        self.provider_mut(name)?;
        if let Some(p) = self
            .doc
            .get_mut("providers")
            .and_then(|p| p.as_table_like_mut())
        {
            p.remove(name);
        }
        Ok(())
    }

    pub fn set_provider_enabled(&mut self, name: &str, enabled: bool) -> Result<(), EditError> {
        let p = self.provider_mut(name)?;
        if enabled {
            p.remove("enabled");
        } else {
            p.insert("enabled", value(false));
        }
        Ok(())
    }

    /// Sets a provider's base URL (`Some("")`: the vendor's own, the setting removed) and its
    /// `models` list (empty: removed); `None` leaves either as it is. Everything else in the
    /// provider's table, comments included, is kept.
    pub fn set_provider_settings(
        &mut self,
        name: &str,
        base_url: Option<&str>,
        models: Option<&[String]>,
    ) -> Result<(), EditError> {
        let p = self.provider_mut(name)?;
        match base_url {
            Some("") => {
                p.remove("base_url");
            }
            Some(b) => {
                p.insert("base_url", value(b));
            }
            None => {}
        }
        match models {
            Some([]) => {
                p.remove("models");
            }
            Some(m) => {
                p.insert(
                    "models",
                    value(m.iter().map(String::as_str).collect::<Array>()),
                );
            }
            None => {}
        }
        Ok(())
    }

    /// Sets the budget of one scope (`kind`: `all`, `key`, `provider`, `route` or `client`,
    /// with its `name` unless `all`): replaces the `[[budgets]]` entry of that scope, or adds
    /// one. `limits` are `daily_usd`, `monthly_usd`, `daily_tokens`, `monthly_tokens`; none
    /// given removes the budget. Validation (on save) checks the names and amounts.
    pub fn set_budget(
        &mut self,
        kind: &str,
        name: Option<&str>,
        limits: &BudgetLimits,
    ) -> Result<(), EditError> {
        let scope_key = match kind {
            "all" => None,
            "key" | "provider" | "route" | "client" => Some(kind),
            other => {
                return Err(EditError::Invalid(format!(
                    "a budget's scope is all, key, provider, route or client, not `{other}`"
                )))
            }
        };
        let name = match (scope_key, name.map(str::trim).filter(|n| !n.is_empty())) {
            (Some(k), None) => {
                return Err(EditError::Invalid(format!("a {k} budget names its {k}")))
            }
            (None, _) => None,
            (Some(_), Some(n)) => Some(n),
        };
        if !self.doc.contains_key("budgets") {
            self.doc
                .insert("budgets", Item::ArrayOfTables(ArrayOfTables::new()));
        }
        let budgets = self.doc["budgets"]
            .as_array_of_tables_mut()
            .ok_or_else(|| {
                EditError::Invalid(
                "`budgets` in the config file is not written as [[budgets]] tables; edit it by hand"
                    .into(),
            )
            })?;
        // The entry of the same scope: the scope's field names it, and no other scope field.
        let same = |t: &Table| {
            ["key", "provider", "route", "client"].iter().all(|f| {
                let v = t.get(f).and_then(|v| v.as_str());
                match scope_key {
                    Some(k) if *f == k => v == name,
                    _ => v.is_none(),
                }
            })
        };
        let at = budgets.iter().position(same);
        if limits.is_empty() {
            if let Some(i) = at {
                budgets.remove(i);
            }
            return Ok(());
        }
        let mut t = Table::new();
        if let (Some(k), Some(n)) = (scope_key, name) {
            t[k] = value(n);
        }
        if let Some(v) = limits.daily_usd {
            t["daily_usd"] = value(v);
        }
        if let Some(v) = limits.monthly_usd {
            t["monthly_usd"] = value(v);
        }
        if let Some(v) = limits.daily_tokens {
            t["daily_tokens"] = value(v as i64);
        }
        if let Some(v) = limits.monthly_tokens {
            t["monthly_tokens"] = value(v as i64);
        }
        match at.and_then(|i| budgets.get_mut(i)) {
            Some(existing) => {
                // Keep the entry's comments (its decor), replace its values.
                let decor = existing.decor().clone();
                *existing = t;
                *existing.decor_mut() = decor;
            }
            None => budgets.push(t),
        }
        Ok(())
    }

    /// The index of key `id` in the provider's `keys` (an array of inline tables or an array
    /// of tables), if it is there.
    fn key_index(&mut self, provider: &str, id: &str) -> Result<Option<usize>, EditError> {
        let p = self.provider_mut(provider)?;
        let Some(keys) = p.get("keys") else {
            return Ok(None);
        };
        let idx = if let Some(a) = keys.as_array() {
            a.iter().position(|k| {
                k.as_inline_table()
                    .and_then(|t| t.get("id"))
                    .and_then(|v| v.as_str())
                    == Some(id)
            })
        } else if let Some(a) = keys.as_array_of_tables() {
            a.iter()
                .position(|t| t.get("id").and_then(|v| v.as_str()) == Some(id))
        } else {
            None
        };
        Ok(idx)
    }

    /// Adds a key whose secret lives in the keychain (or at `secret`, an `env:`/`file:`
    /// reference). A key that exists already is left alone and `false` is returned.
    pub fn add_key(
        &mut self,
        provider: &str,
        id: &str,
        secret: Option<&str>,
    ) -> Result<bool, EditError> {
        valid_name("key id", id)?;
        if self.key_index(provider, id)?.is_some() {
            return Ok(false);
        }
        let p = self.provider_mut(provider)?;
        if p.get("keys").is_none() {
            p.insert("keys", value(Array::new()));
        }
        let Some(keys) = p.get_mut("keys") else {
            return Err(EditError::Invalid(format!(
                "providers.{provider}.keys is missing"
            )));
        };
        if let Some(a) = keys.as_array_mut() {
            let mut it = InlineTable::new();
            it.insert("id", id.into());
            if let Some(s) = secret {
                it.insert("secret", s.into());
            }
            a.push(it);
        } else if let Some(a) = keys.as_array_of_tables_mut() {
            let mut t = Table::new();
            t["id"] = value(id);
            if let Some(s) = secret {
                t["secret"] = value(s);
            }
            a.push(t);
        } else {
            return Err(EditError::Invalid(format!(
                "providers.{provider}.keys is neither an array nor an array of tables"
            )));
        }
        Ok(true)
    }

    /// The provider's `keys` list and the index of key `id` in it (NotFound when absent).
    fn key_slot(&mut self, provider: &str, id: &str) -> Result<(&mut Item, usize), EditError> {
        let Some(i) = self.key_index(provider, id)? else {
            return Err(EditError::NotFound(format!("no key {provider}/{id}")));
        };
        let keys = self
            .provider_mut(provider)?
            .get_mut("keys")
            .ok_or_else(|| EditError::NotFound(format!("no key {provider}/{id}")))?;
        Ok((keys, i))
    }

    pub fn remove_key(&mut self, provider: &str, id: &str) -> Result<(), EditError> {
        let (keys, i) = self.key_slot(provider, id)?;
        if let Some(a) = keys.as_array_mut() {
            a.remove(i);
        } else if let Some(a) = keys.as_array_of_tables_mut() {
            a.remove(i);
        }
        Ok(())
    }

    pub fn set_key_enabled(
        &mut self,
        provider: &str,
        id: &str,
        enabled: bool,
    ) -> Result<(), EditError> {
        let (keys, i) = self.key_slot(provider, id)?;
        // An inline `{ id = ... }` in an array, or a `[[providers.x.keys]]` table.
        let key: Option<&mut dyn toml_edit::TableLike> = match keys.as_array_mut() {
            Some(a) => a
                .get_mut(i)
                .and_then(Value::as_inline_table_mut)
                .map(|t| t as &mut dyn toml_edit::TableLike),
            None => keys
                .as_array_of_tables_mut()
                .and_then(|a| a.get_mut(i))
                .map(|t| t as &mut dyn toml_edit::TableLike),
        };
        if let Some(t) = key {
            if enabled {
                t.remove("enabled");
            } else {
                t.insert("enabled", value(false));
            }
            t.fmt();
        }
        Ok(())
    }

    /// Creates or replaces a route's targets and strategy (other settings of the route kept).
    pub fn set_route(
        &mut self,
        name: &str,
        targets: &[String],
        strategy: Option<&str>,
    ) -> Result<(), EditError> {
        if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
            return Err(EditError::Invalid(
                "a route name is 1-128 printable characters".into(),
            ));
        }
        if targets.is_empty() {
            return Err(EditError::Invalid(format!(
                "route `{name}` needs at least one target (`provider/model`)"
            )));
        }
        if !self.doc.contains_key("routes") {
            let mut t = Table::new();
            t.set_implicit(true);
            self.doc.insert("routes", Item::Table(t));
        }
        let routes = self.doc["routes"]
            .as_table_like_mut()
            .ok_or_else(|| EditError::Invalid("`routes` in the config is not a table".into()))?;
        if routes.get(name).is_none() {
            routes.insert(name, Item::Table(Table::new()));
        }
        let r = routes
            .get_mut(name)
            .and_then(|r| r.as_table_like_mut())
            .ok_or_else(|| EditError::Invalid(format!("routes.{name} is not a table")))?;
        r.remove("capability");
        r.insert(
            "targets",
            value(targets.iter().map(String::as_str).collect::<Array>()),
        );
        match strategy {
            Some(s) => {
                r.insert("strategy", value(s));
            }
            None => {
                r.remove("strategy");
            }
        }
        Ok(())
    }

    pub fn remove_route(&mut self, name: &str) -> Result<(), EditError> {
        let removed = self
            .doc
            .get_mut("routes")
            .and_then(|r| r.as_table_like_mut())
            .and_then(|r| r.remove(name));
        match removed {
            Some(_) => Ok(()),
            None => Err(EditError::NotFound(format!("no route `{name}`"))),
        }
    }

    /// Opens `path`, applies `f`, validates and writes the result; returns `f`'s value and
    /// the new config to apply. The one way the console and the tray change the file.
    pub fn edit_file<T>(
        path: &Path,
        running: Option<&Config>,
        f: impl FnOnce(&mut ConfigDoc) -> Result<T, EditError>,
    ) -> Result<(T, Config), EditError> {
        let mut doc = ConfigDoc::open(path, running)?;
        let out = f(&mut doc)?;
        Ok((out, doc.save()?))
    }

    /// A draft with no file behind it: the running config's providers (when it came from the
    /// environment) and nothing else. For previews when there is no config file.
    pub fn detached(running: &Config) -> ConfigDoc {
        let mut me = ConfigDoc {
            path: PathBuf::from("config.toml"),
            doc: DocumentMut::new(),
        };
        if running.source == ConfigSource::Environment {
            // A new document has no `providers` of another type, so this cannot fail.
            if let Err(e) = me.seed_from(running) {
                tracing::warn!(error = %e, "cannot seed the draft from the environment");
            }
        }
        me
    }

    /// The edited text.
    pub fn text(&self) -> String {
        self.doc.to_string()
    }

    /// Validates the edited text as a whole config.
    pub fn validate(&self) -> Result<Config, EditError> {
        Config::from_toml(&self.text(), &self.path).map_err(EditError::Rejected)
    }

    /// Validates, then writes the file atomically. Returns the new config to apply.
    pub fn save(&self) -> Result<Config, EditError> {
        let config = self.validate()?;
        let err = |e: std::io::Error| EditError::Write {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let target = crate::files::resolve_link(&self.path);
        crate::files::replace_atomically(&target, self.text().as_bytes()).map_err(err)?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"# My Fluxgate config
listen = "127.0.0.1:8414"   # the port my tools use

[providers.openai]
kind = "openai"
# two keys, the second for the weekend
keys = [{ id = "work" }, { id = "home", secret = "env:OPENAI_HOME" }]

[[providers.anthropic.keys]]
id = "main"

[providers.anthropic]
kind = "anthropic"

[routes.fast]
targets = ["openai/gpt-4o-mini"] # cheap
"#;

    fn doc(text: &str) -> (tempfile::TempDir, ConfigDoc) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write");
        let d = ConfigDoc::open(&path, None).expect("open");
        (dir, d)
    }

    /// RELIABILITY.md 27: a link planted at the temporary name the save used to use (or any
    /// other) cannot redirect the write or the chmod.
    #[cfg(unix)]
    #[test]
    fn a_save_never_writes_through_a_planted_link() {
        let (dir, mut doc) = doc(FILE);
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "mine").expect("write");
        std::os::unix::fs::symlink(&victim, dir.path().join("config.toml.fluxgate-edit"))
            .expect("symlink");
        assert!(doc.add_key("openai", "spare", None).expect("add"));
        doc.save().expect("saved");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "mine");
        assert!(std::fs::read_to_string(dir.path().join("config.toml"))
            .expect("read")
            .contains("spare"));
    }

    #[test]
    fn edits_keep_comments_order_and_formatting() {
        let (_d, mut doc) = doc(FILE);
        assert!(doc.add_key("openai", "spare", None).expect("add"));
        assert!(!doc.add_key("openai", "spare", None).expect("again"));
        assert!(doc.add_key("anthropic", "second", None).expect("add"));
        doc.set_key_enabled("openai", "home", false)
            .expect("disable");
        doc.set_route(
            "fast",
            &[
                "openai/gpt-4o-mini".into(),
                "anthropic/claude-haiku-4-5".into(),
            ],
            Some("round-robin"),
        )
        .expect("route");
        let text = doc.text();
        assert!(
            text.starts_with(
                "# My Fluxgate config\nlisten = \"127.0.0.1:8414\"   # the port my tools use\n"
            ),
            "{text}"
        );
        assert!(text.contains("# two keys, the second for the weekend\nkeys = [{ id = \"work\" }, { id = \"home\", secret = \"env:OPENAI_HOME\", enabled = false }, { id = \"spare\" }]"), "{text}");
        assert!(
            text.contains("[[providers.anthropic.keys]]\nid = \"second\""),
            "{text}"
        );
        assert!(text.contains("strategy = \"round-robin\""), "{text}");
        let c = doc.save().expect("valid and saved");
        let openai = c.provider("openai").expect("openai");
        assert_eq!(openai.keys.len(), 3);
        assert!(!openai.keys[1].enabled);
        assert_eq!(c.provider("anthropic").expect("a").keys.len(), 2);
        assert_eq!(std::fs::read_to_string(&doc.path).expect("read"), text);
    }

    #[test]
    fn an_edit_that_breaks_the_config_is_refused_and_nothing_is_written() {
        let (_d, mut doc) = doc(FILE);
        doc.remove_provider("openai").expect("remove");
        let err = doc.save().expect_err("the route still names openai");
        assert!(err.to_string().contains("routes.\"fast\""), "{err}");
        assert_eq!(std::fs::read_to_string(&doc.path).expect("read"), FILE);
    }

    #[test]
    fn providers_and_keys_are_added_to_a_new_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/config.toml");
        let mut doc = ConfigDoc::open(&path, None).expect("open missing");
        doc.add_provider(
            "deepseek",
            ProviderKind::OpenaiCompatible,
            Some("https://api.deepseek.com/v1"),
            &["deepseek-chat".into()],
        )
        .expect("add");
        assert!(matches!(
            doc.add_provider("deepseek", ProviderKind::Openai, None, &[]),
            Err(EditError::Conflict(_))
        ));
        doc.add_key("deepseek", "a", None).expect("key");
        let c = doc.save().expect("save");
        assert_eq!(
            c.provider("deepseek").expect("p").keys[0].secret,
            SecretRef::Keychain
        );
        assert!(matches!(
            doc.add_key("deepseek", "bad id!", None),
            Err(EditError::Invalid(_))
        ));
        assert!(matches!(
            doc.remove_key("deepseek", "nope"),
            Err(EditError::NotFound(_))
        ));
        assert!(matches!(
            doc.set_provider_enabled("nope", false),
            Err(EditError::NotFound(_))
        ));
    }

    #[test]
    fn creating_the_file_keeps_providers_detected_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.toml");
        let running = super::super::detect::from_environment(|name| {
            (name == "ANTHROPIC_API_KEY").then(|| "sk-ant-test".to_string())
        });
        let mut doc = ConfigDoc::open(&path, Some(&running)).expect("open");
        doc.add_key("anthropic", "desk", None).expect("add");
        let c = doc.save().expect("save");
        let keys = &c.provider("anthropic").expect("anthropic").keys;
        assert_eq!(keys[0].secret, SecretRef::Env("ANTHROPIC_API_KEY".into()));
        assert_eq!(keys[1].secret, SecretRef::Keychain);
        assert!(!std::fs::read_to_string(&path)
            .expect("read")
            .contains("sk-ant-test"));
    }
}
