//! The words people read, in English and Simplified Chinese.
//!
//! One catalogue per language, `i18n/en.json` and `i18n/zh-CN.json` beside this crate, holds
//! every string of every surface: the console (which imports the same files), the tray menu,
//! notifications and the CLI's messages. Keys are `surface.thing`; values are text with
//! `{name}` placeholders. A count that English inflects has two keys, `…_one` and `…_other`
//! ([`tn`]). The tests below fail when a key is missing from a catalogue, a placeholder differs
//! between languages, or the code asks for a key no catalogue has.
//!
//! What is not translated: free text that comes from elsewhere (an upstream's error message, a
//! config error's detail, log lines, which stay English so they can be searched and reported),
//! and names (providers, keys, routes, models).

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::OnceLock;

/// A language Fluxgate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Lang {
    #[default]
    En,
    /// Simplified Chinese.
    ZhCn,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::ZhCn];

    /// The BCP 47 tag (`en`, `zh-CN`), as the console and `FLUXGATE_LANG` spell it.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// Reads a language tag or a POSIX locale (`zh_CN.UTF-8`, `zh-Hans`, `en_GB`, `C`).
    /// Every Chinese locale maps to Simplified Chinese (the only Chinese catalogue); any other
    /// recognisable locale maps to English; an empty string is `None`.
    pub fn parse(tag: &str) -> Option<Lang> {
        let t = tag.trim();
        if t.is_empty() {
            return None;
        }
        let base = t
            .split(['_', '-', '.', '@'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        Some(if base == "zh" { Lang::ZhCn } else { Lang::En })
    }

    /// The language of this process: `FLUXGATE_LANG` if set, else the POSIX locale for
    /// messages (`LC_ALL`, then `LC_MESSAGES`, then `LANG`), else English.
    pub fn from_env() -> Lang {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Lang::from_env`] with the environment passed in (tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Lang {
        for name in ["FLUXGATE_LANG", "LC_ALL", "LC_MESSAGES", "LANG"] {
            if let Some(lang) = var(name).as_deref().and_then(Lang::parse) {
                return lang;
            }
        }
        Lang::En
    }

    /// The process's language, read from the environment once.
    pub fn current() -> Lang {
        static CURRENT: OnceLock<Lang> = OnceLock::new();
        *CURRENT.get_or_init(Lang::from_env)
    }

    fn catalogue(self) -> &'static HashMap<String, String> {
        static EN: OnceLock<HashMap<String, String>> = OnceLock::new();
        static ZH: OnceLock<HashMap<String, String>> = OnceLock::new();
        let (cell, text) = match self {
            Lang::En => (&EN, EN_JSON),
            Lang::ZhCn => (&ZH, ZH_CN_JSON),
        };
        // Both catalogues are compiled in and parsed by the tests below; were one ever broken,
        // every lookup would fall back to English, then to the key itself, rather than panic.
        cell.get_or_init(|| serde_json::from_str(text).unwrap_or_default())
    }
}

const EN_JSON: &str = include_str!("../i18n/en.json");
const ZH_CN_JSON: &str = include_str!("../i18n/zh-CN.json");

/// The text under `key`, without placeholders filled. A key missing from a language falls
/// back to English, and one missing from English is returned as itself (the tests keep both
/// from happening).
pub fn text(lang: Lang, key: &str) -> &str {
    if let Some(s) = lang.catalogue().get(key) {
        return s;
    }
    Lang::En.catalogue().get(key).map_or(key, |s| s.as_str())
}

/// The text under `key` with each `{name}` replaced by its value from `args`.
pub fn tr(lang: Lang, key: &str, args: &[(&str, &dyn Display)]) -> String {
    fill(text(lang, key), args)
}

/// [`tr`] for a count: `key_one` when `n` is 1, else `key_other`; `{n}` is filled too.
pub fn tn(lang: Lang, key: &str, n: u64, args: &[(&str, &dyn Display)]) -> String {
    let full = format!("{key}_{}", if n == 1 { "one" } else { "other" });
    let mut all: Vec<(&str, &dyn Display)> = vec![("n", &n)];
    all.extend_from_slice(args);
    fill(text(lang, &full), &all)
}

fn fill(template: &str, args: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                match args.iter().find(|(n, _)| *n == name) {
                    Some((_, v)) => out.push_str(&v.to_string()),
                    None => {
                        out.push('{');
                        out.push_str(name);
                        out.push('}');
                    }
                }
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `t!(lang, "key", name = value, …)`: [`tr`] with named arguments.
#[macro_export]
macro_rules! t {
    ($lang:expr, $key:literal $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::tr($lang, $key, &[$((stringify!($name), &$value as &dyn ::std::fmt::Display)),*])
    };
}

/// `tn!(lang, "key", n, name = value, …)`: [`tn`] with named arguments.
#[macro_export]
macro_rules! tn {
    ($lang:expr, $key:literal, $n:expr $(, $name:ident = $value:expr)* $(,)?) => {
        $crate::i18n::tn($lang, $key, ($n) as u64, &[$((stringify!($name), &$value as &dyn ::std::fmt::Display)),*])
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    fn placeholders(s: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            out.insert(after[..close].to_string());
            rest = &after[close + 1..];
        }
        out
    }

    #[test]
    fn every_catalogue_has_every_key_with_the_same_placeholders() {
        // Parsed here directly: the lookup falls back quietly on a broken catalogue.
        for (tag, json) in [("en", EN_JSON), ("zh-CN", ZH_CN_JSON)] {
            let parsed: Result<HashMap<String, String>, _> = serde_json::from_str(json);
            assert!(
                parsed.is_ok(),
                "{tag}.json is not a flat JSON object of strings: {parsed:?}"
            );
        }
        let en = Lang::En.catalogue();
        assert!(
            en.len() > 400,
            "the English catalogue has only {} keys",
            en.len()
        );
        for lang in Lang::ALL {
            let cat = lang.catalogue();
            let missing: Vec<&String> = en.keys().filter(|k| !cat.contains_key(*k)).collect();
            let extra: Vec<&String> = cat.keys().filter(|k| !en.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", lang.tag());
            assert!(
                extra.is_empty(),
                "{} has keys English lacks: {extra:?}",
                lang.tag()
            );
            for (k, v) in cat {
                assert!(!v.trim().is_empty(), "{}: {k} is empty", lang.tag());
                assert_eq!(
                    placeholders(v),
                    placeholders(&en[k]),
                    "{}: {k} has other placeholders than English",
                    lang.tag()
                );
            }
        }
        // Counted keys come in pairs.
        for k in en.keys() {
            if let Some(stem) = k.strip_suffix("_one") {
                assert!(
                    en.contains_key(&format!("{stem}_other")),
                    "{k} without _other"
                );
            }
        }
    }

    /// Every `t!`/`tn!` key in the Rust sources and every `t("…")` key in the console exists
    /// in English (and so, by the test above, in every catalogue).
    #[test]
    fn every_key_the_code_asks_for_exists() {
        let en = Lang::En.catalogue();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut asked: Vec<(String, String)> = Vec::new();
        let mut stack = vec![
            root.join("crates"),
            root.join("src-tauri/src"),
            root.join("ui/src"),
        ];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    if !p.ends_with("target") && !p.ends_with("node_modules") {
                        stack.push(p);
                    }
                    continue;
                }
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if ext != "rs" && ext != "ts" {
                    continue;
                }
                let src = std::fs::read_to_string(&p).unwrap_or_default();
                let markers: &[&str] = if ext == "rs" {
                    &["t!(", "tn!("]
                } else {
                    &[
                        " t(\"", "(t(\"", "[t(\"", "{t(\"", "!t(\"", " tn(\"", "(tn(\"",
                    ]
                };
                for m in markers {
                    for (i, _) in src.match_indices(m) {
                        // `assert!(` is not `t!(`: the marker starts a word.
                        let before = src[..i].chars().next_back().unwrap_or(' ');
                        if ext == "rs" && (before.is_alphanumeric() || before == '_') {
                            continue;
                        }
                        let tail = &src[i + m.len()..];
                        // Rust: the key is the literal after the language argument.
                        let lit = if ext == "rs" {
                            let Some(comma) = tail.find(',') else {
                                continue;
                            };
                            let Some(lit) = tail[comma + 1..].trim_start().strip_prefix('"') else {
                                continue;
                            };
                            lit
                        } else {
                            tail
                        };
                        let Some(end) = lit.find('"') else { continue };
                        let key = &lit[..end];
                        if key.contains('.') && !key.contains(' ') {
                            asked.push((p.display().to_string(), key.to_string()));
                        }
                    }
                }
            }
        }
        assert!(
            asked.len() > 50,
            "the scan found the code's keys: {}",
            asked.len()
        );
        let missing: Vec<&(String, String)> = asked
            .iter()
            .filter(|(_, k)| {
                !en.contains_key(k)
                    && !en.contains_key(&format!("{k}_one"))
                    && !k.starts_with("test.")
            })
            .collect();
        assert!(missing.is_empty(), "keys no catalogue has: {missing:?}");
    }

    #[test]
    fn locales_map_to_a_catalogue() {
        for (tag, lang) in [
            ("zh_CN.UTF-8", Some(Lang::ZhCn)),
            ("zh-CN", Some(Lang::ZhCn)),
            ("zh-Hans", Some(Lang::ZhCn)),
            ("zh_TW.UTF-8", Some(Lang::ZhCn)),
            ("ZH", Some(Lang::ZhCn)),
            ("en_US.UTF-8", Some(Lang::En)),
            ("C", Some(Lang::En)),
            ("de_DE@euro", Some(Lang::En)),
            ("", None),
            ("  ", None),
        ] {
            assert_eq!(Lang::parse(tag), lang, "{tag:?}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |n: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == n)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Lang::from_vars(env(&[])), Lang::En);
        assert_eq!(Lang::from_vars(env(&[("LANG", "zh_CN.UTF-8")])), Lang::ZhCn);
        assert_eq!(
            Lang::from_vars(env(&[("LANG", "zh_CN.UTF-8"), ("LC_ALL", "en_US.UTF-8")])),
            Lang::En
        );
        assert_eq!(
            Lang::from_vars(env(&[
                ("LC_ALL", "en_US.UTF-8"),
                ("FLUXGATE_LANG", "zh-CN")
            ])),
            Lang::ZhCn
        );
        assert_eq!(
            Lang::from_vars(env(&[("LC_ALL", ""), ("LANG", "zh_CN.UTF-8")])),
            Lang::ZhCn
        );
    }

    #[test]
    fn placeholders_fill_and_counts_pick_their_form() {
        assert_eq!(fill("{a} of {b}", &[("a", &1), ("b", &"x")]), "1 of x");
        assert_eq!(fill("{a} {missing} {", &[("a", &1)]), "1 {missing} {");
        assert_eq!(
            tn(Lang::En, "notes.more_changes", 1, &[]),
            "Fluxgate: 1 more key change"
        );
        assert_eq!(
            tn(Lang::En, "notes.more_changes", 3, &[]),
            "Fluxgate: 3 more key changes"
        );
        assert_eq!(
            tn(Lang::ZhCn, "notes.more_changes", 3, &[]),
            "Fluxgate：另有 3 个密钥状态变化"
        );
        assert_eq!(text(Lang::ZhCn, "no.such.key"), "no.such.key");
    }
}
