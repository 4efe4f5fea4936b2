use super::*;

const BASE: &str = "http://127.0.0.1:8414";
const TOKEN: &str =
    "fgk_0123456789ab_00000000000000000000000000000000000000000000000000000000deadbeef";
const TOKEN2: &str =
    "fgk_ba9876543210_11111111111111111111111111111111111111111111111111111111cafef00d";

fn homes(dir: &Path) -> Homes {
    Homes {
        home: dir.join("home"),
        codex: dir.join("home/.codex"),
        config: dir.join("home/.config"),
    }
}

fn write(path: &Path, text: &str, mode: u32) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = mode;
}

/// The user's own files, with comments, unknown keys and settings of their own.
fn existing(kind: ClientKind, h: &Homes) -> Vec<(PathBuf, String)> {
    match kind {
        ClientKind::ClaudeCode => vec![(
            h.home.join(".claude/settings.json"),
            "{\n    \"model\": \"opus\",\n    \"env\": {\n        \"DISABLE_TELEMETRY\": \"1\",\n        \"ANTHROPIC_API_KEY\": \"sk-ant-mine\"\n    },\n    \"permissions\": {\"allow\": [\"Bash(ls)\"]}\n}\n".into(),
        )],
        ClientKind::Codex => vec![(
            h.codex.join("config.toml"),
            "# my codex\nmodel = \"gpt-5\"   # the default\n\n[model_providers.other]\nname = \"Other\"\nbase_url = \"https://other.example/v1\"\n\n[profiles.fast]\nmodel = \"gpt-5-mini\"\n".into(),
        )],
        ClientKind::GeminiCli => vec![
            (h.home.join(".gemini/.env"), "# mine\nGEMINI_MODEL=gemini-2.5-pro\nGEMINI_API_KEY=AIza-mine\n".into()),
            (h.home.join(".gemini/settings.json"), "{\n  \"ui\": {\"theme\": \"GitHub\"},\n  \"security\": {\"auth\": {\"selectedType\": \"oauth-personal\"}}\n}\n".into()),
        ],
        ClientKind::Opencode => vec![(
            h.config.join("opencode/opencode.json"),
            "{\n  // jsonc: comments are allowed here\n  \"$schema\": \"https://opencode.ai/config.json\",\n  \"theme\": \"tokyonight\",\n  \"provider\": {\n    \"ollama\": {\"npm\": \"@ai-sdk/openai-compatible\"},\n  },\n}\n".into(),
        )],
        ClientKind::OpenaiSdk | ClientKind::AnthropicSdk => Vec::new(),
    }
}

fn mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0o600
    }
}

#[test]
fn every_tool_is_set_up_kept_intact_idempotent_and_undone_byte_for_byte() {
    for kind in ClientKind::WRITABLE {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        let data = dir.path().join("data");
        let keychain = crate::secrets::MemoryStore::default();
        let originals = existing(kind, &h);
        for (p, t) in &originals {
            write(p, t, 0o644);
        }
        assert_eq!(current(kind, &h).expect("read").base_url, None, "{kind:?}");

        let p = plan(kind, &h, BASE, TOKEN, &["m".into(), "claude-*".into()]).expect("plan");
        assert!(p.changes(), "{kind:?}");
        let diff = p.diff(TOKEN);
        assert!(
            !diff.contains(TOKEN) && diff.contains("fgk_…beef"),
            "{kind:?}: {diff}"
        );
        apply(&p, &data, Ok(&keychain)).expect("apply");
        let now = current(kind, &h).expect("read");
        assert_eq!(now.base_url.as_deref(), Some(BASE), "{kind:?}");
        assert_eq!(now.token.as_deref(), Some(TOKEN), "{kind:?}");
        for f in &p.files {
            assert_eq!(mode(&f.path), 0o600, "{kind:?} {}", f.path.display());
            let text = std::fs::read_to_string(&f.path).expect("read");
            // Everything of the user's that is not the setup's own is still there.
            for keep in [
                "opus",
                "DISABLE_TELEMETRY",
                "Bash(ls)",
                "# my codex",
                "# the default",
                "profiles.fast",
                "model_providers.other",
                "GEMINI_MODEL",
                "# mine",
                "GitHub",
                "// jsonc",
                "tokyonight",
                "ollama",
            ] {
                let was = f.before.as_deref().unwrap_or("").contains(keep);
                assert!(
                    !was || text.contains(keep),
                    "{kind:?}: lost {keep:?} in\n{text}"
                );
            }
        }
        match kind {
            ClientKind::ClaudeCode => {
                let text = std::fs::read_to_string(&p.files[0].path).expect("read");
                assert!(
                    !text.contains("sk-ant-mine"),
                    "a key of the user's would win over the token: {text}"
                );
                let v: serde_json::Value = serde_json::from_str(&text).expect("still JSON");
                assert_eq!(v["env"]["ANTHROPIC_AUTH_TOKEN"], TOKEN);
            }
            ClientKind::Codex => {
                let text = std::fs::read_to_string(&p.files[0].path).expect("read");
                let v: toml::Value = toml::from_str(&text).expect("still TOML");
                assert_eq!(v["model_provider"].as_str(), Some("fluxgate"));
                assert_eq!(
                    v["model_providers"]["fluxgate"]["wire_api"].as_str(),
                    Some("responses")
                );
                assert_eq!(
                    v["model_providers"]["fluxgate"]["base_url"].as_str(),
                    Some("http://127.0.0.1:8414/v1")
                );
            }
            ClientKind::GeminiCli => {
                let env = std::fs::read_to_string(&p.files[0].path).expect("read");
                assert!(
                    env.contains("GEMINI_API_KEY=fgk_") && !env.contains("AIza-mine"),
                    "{env}"
                );
                let s = std::fs::read_to_string(&p.files[1].path).expect("read");
                assert!(s.contains("\"selectedType\": \"gemini-api-key\""), "{s}");
            }
            _ => {}
        }

        // Again, with the same working token: nothing to change.
        let again = plan(kind, &h, BASE, TOKEN, &["m".into(), "claude-*".into()]).expect("plan");
        assert!(!again.changes(), "{kind:?}: {}", again.diff(TOKEN));
        // With a new token (the old one was revoked): written, and undo still goes back to the
        // files as they were before the first setup.
        apply(
            &plan(kind, &h, BASE, TOKEN2, &[]).expect("plan"),
            &data,
            Ok(&keychain),
        )
        .expect("apply");
        assert_eq!(
            current(kind, &h).expect("read").token.as_deref(),
            Some(TOKEN2)
        );

        let undone = undo(kind, &data, Ok(&keychain)).expect("undo");
        assert_eq!(undone.len(), p.files.len());
        for (path, text) in &originals {
            assert_eq!(
                &std::fs::read_to_string(path).expect("restored"),
                text,
                "{kind:?}"
            );
            assert_eq!(mode(path), 0o644, "{kind:?}");
        }
        assert!(matches!(
            undo(kind, &data, Ok(&keychain)),
            Err(SetupError::NothingToUndo(..))
        ));
    }
}

#[test]
fn files_the_setup_created_are_removed_by_undo() {
    for kind in ClientKind::WRITABLE {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        let data = dir.path().join("data");
        let keychain = crate::secrets::MemoryStore::default();
        let p = plan(kind, &h, BASE, TOKEN, &["m".into()]).expect("plan");
        assert!(p.files.iter().all(|f| f.before.is_none()));
        assert!(p.diff(TOKEN).contains("(new file)"));
        apply(&p, &data, Ok(&keychain)).expect("apply");
        assert!(has_backup(kind, &data));
        for f in &p.files {
            assert!(f.path.exists());
        }
        undo(kind, &data, Ok(&keychain)).expect("undo");
        for f in &p.files {
            assert!(
                !f.path.exists(),
                "{kind:?}: {} left behind",
                f.path.display()
            );
        }
        assert!(!has_backup(kind, &data));
    }
}

#[test]
fn a_malformed_file_is_refused_with_its_line_and_left_untouched() {
    for (kind, rel, text, line) in [
        (
            ClientKind::ClaudeCode,
            ".claude/settings.json",
            "{\n  \"env\": {\n    \"A\": 1,\n  \"B\"\n}\n",
            "line 5",
        ),
        (
            ClientKind::Codex,
            ".codex/config.toml",
            "model = \"x\"\n[model_providers\nname = 1\n",
            "line 2",
        ),
        (
            ClientKind::GeminiCli,
            ".gemini/settings.json",
            "{\"ui\": }",
            "line 1",
        ),
        (
            ClientKind::Opencode,
            ".config/opencode/opencode.json",
            "[]",
            "line 1",
        ),
    ] {
        let dir = tempfile::tempdir().expect("dir");
        let h = homes(dir.path());
        let path = h.home.join(rel);
        write(&path, text, 0o644);
        let err = plan(kind, &h, BASE, TOKEN, &[]).expect_err("malformed");
        let msg = err.to_string();
        assert!(
            msg.contains(&path.display().to_string()) && msg.contains(line),
            "{kind:?}: {msg}"
        );
        assert!(msg.contains("Nothing was changed"), "{msg}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        assert!(!has_backup(kind, &dir.path().join("data")));
    }
}

#[test]
fn homes_follow_the_environment() {
    let env = |k: &str| match k {
        "HOME" => Some("/home/u".to_string()),
        "CODEX_HOME" => Some("/srv/codex".to_string()),
        _ => None,
    };
    let h = Homes::from_env(env).expect("home");
    assert_eq!(
        files(ClientKind::Codex, &h).expect("files"),
        [PathBuf::from("/srv/codex/config.toml")]
    );
    assert_eq!(
        files(ClientKind::Opencode, &h).expect("files"),
        [PathBuf::from("/home/u/.config/opencode/opencode.json")]
    );
    assert!(matches!(
        files(ClientKind::OpenaiSdk, &h),
        Err(SetupError::NotWritable(_))
    ));
    assert!(Homes::from_env(|_| None).is_none());
}

/// An original holding the user's own key is backed up in the keychain, never on disk; with no
/// keychain, the setup is refused and nothing changes.
#[test]
fn an_original_holding_a_key_is_kept_only_in_the_keychain() {
    let dir = tempfile::tempdir().expect("dir");
    let h = homes(dir.path());
    let data = dir.path().join("data");
    let path = h.home.join(".claude/settings.json");
    let original =
        "{\n  \"env\": {\"ANTHROPIC_API_KEY\": \"sk-ant-canary-0123456789abcdefghij\"}\n}\n";
    write(&path, original, 0o600);
    let p = plan(ClientKind::ClaudeCode, &h, BASE, TOKEN, &[]).expect("plan");
    let refused = apply(&p, &data, Err("no Secret Service".into())).expect_err("no keychain");
    assert!(
        matches!(refused, SetupError::NoSafeBackup { .. }),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), original);
    assert!(!has_backup(ClientKind::ClaudeCode, &data));

    let keychain = crate::secrets::MemoryStore::default();
    apply(&p, &data, Ok(&keychain)).expect("apply");
    let mut on_disk = Vec::new();
    for e in walk(&data) {
        on_disk.push(std::fs::read_to_string(&e).unwrap_or_default());
    }
    assert!(
        on_disk.iter().all(|t| !t.contains("sk-ant-canary")),
        "{on_disk:?}"
    );
    assert_eq!(
        keychain
            .get("setup-backup/claude-code/0")
            .expect("kept")
            .expose(),
        original
    );
    undo(ClientKind::ClaudeCode, &data, Ok(&keychain)).expect("undo");
    assert_eq!(std::fs::read_to_string(&path).expect("restored"), original);
    assert!(
        keychain.get("setup-backup/claude-code/0").is_err(),
        "the backup is dropped"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
