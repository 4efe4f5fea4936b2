use std::path::Path;

use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, Path::new("test.toml"))
}

fn invalid_key(text: &str) -> (String, String) {
    match load(text) {
        Err(ConfigError::Invalid { key, message }) => (key, message),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}

const FULL: &str = r#"
listen = "127.0.0.1:8414"

[providers.anthropic]
kind = "anthropic"
keys = [
  { id = "work" },
  { id = "spare", secret = "env:ANTHROPIC_KEY_2", weight = 2 },
]

[providers.deepseek]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1/"
keys = [{ id = "a", secret = "env:DEEPSEEK_API_KEY" }]
models = ["deepseek-chat", "deepseek-reasoner"]

[routes."claude-sonnet-4-5"]
targets = ["anthropic/claude-sonnet-4-5", "deepseek/deepseek-chat"]
strategy = "priority"

[routes."gpt-4o"]
targets = ["deepseek/deepseek-chat"]
"#;

#[test]
fn the_design_example_loads_in_order() {
    let c = load(FULL).expect("valid");
    assert_eq!(c.listen.to_string(), "127.0.0.1:8414");
    assert_eq!(c.providers[0].name, "anthropic");
    assert_eq!(c.providers[0].base_url, "https://api.anthropic.com");
    assert_eq!(c.providers[0].keys[0].secret, SecretRef::Keychain);
    assert_eq!(
        c.providers[0].keys[1].secret,
        SecretRef::Env("ANTHROPIC_KEY_2".into())
    );
    assert_eq!(c.providers[0].keys[1].weight, 2);
    assert_eq!(c.providers[1].base_url, "https://api.deepseek.com/v1");
    assert_eq!(c.routes[0].name, "claude-sonnet-4-5");
    assert_eq!(
        c.routes[0].targets[1],
        Target {
            provider: "deepseek".into(),
            model: "deepseek-chat".into()
        }
    );
    assert_eq!(c.routes[1].strategy, StrategyKind::Priority);
    assert!(c.uses_keychain());
}

#[test]
fn unknown_keys_name_their_path() {
    let (key, msg) = invalid_key(
        "[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"x\", secrett = \"env:A\" }]\n",
    );
    assert_eq!(key, "providers.a.keys[0].secrett");
    assert!(msg.contains("secrett"), "{msg}");
    let (key, _) = invalid_key("lisen = \"127.0.0.1:1\"\n");
    assert_eq!(key, "lisen");
    let (key, _) = invalid_key("[timeouts]\nconect = 3\n");
    assert_eq!(key, "timeouts.conect");
}

#[test]
fn literal_keys_are_rejected_with_a_way_out() {
    let (key, msg) = invalid_key("[providers.openai]\nkind = \"openai\"\nkeys = [{ id = \"main\", secret = \"sk-proj-abc123\" }]\n");
    assert_eq!(key, "providers.openai.keys[0].secret");
    assert!(msg.contains("fluxgate keys set openai/main"), "{msg}");
    assert!(
        !msg.contains("sk-proj-abc123"),
        "the error must not echo the key"
    );
    let (key, msg) =
        invalid_key("[providers.openai]\nkind = \"openai\"\napi_key = \"sk-proj-abc123\"\n");
    assert_eq!(key, "providers.openai.api_key");
    assert!(msg.contains("keychain"), "{msg}");
    assert!(!msg.contains("sk-proj-abc123"));
}

#[test]
fn bad_values_are_explained() {
    let cases: &[(&str, &str, &str)] = &[
        ("[providers.a]\nkind = \"foo\"\n", "providers.a.kind", "unknown kind"),
        ("[providers.a]\nkind = \"openai-compatible\"\n", "providers.a.base_url", "required"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"http://api.example.com/v1\"\n", "providers.a.base_url", "unencrypted"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"https://u:p@api.example.com/v1\"\n", "providers.a.base_url", "credentials"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"https://api.example.com/v1#x\"\n", "providers.a.base_url", "fragment"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"http://169.254.169.254/v1\"\ninsecure_http = true\n", "providers.a.base_url", "link-local"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"https://[fe80::1]/v1\"\n", "providers.a.base_url", "link-local"),
        ("[providers.a]\nkind = \"openai\"\nbase_url = \"https://0.0.0.0/v1\"\n", "providers.a.base_url", "unspecified"),
        ("[providers.\"..\"]\nkind = \"openai\"\n", "providers...", "letters"),
        ("[providers.\".\"]\nkind = \"openai\"\n", "providers..", "letters"),
        ("[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"x\" }, { id = \"x\" }]\n", "providers.a.keys[1].id", "twice"),
        ("[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"x y\" }]\n", "providers.a.keys[0].id", "letters"),
        ("[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"x\", weight = 0 }]\n", "providers.a.keys[0].weight", "between"),
        ("[routes.m]\ntargets = [\"nope/x\"]\n", "routes.\"m\".targets[0]", "no provider named `nope`"),
        ("[providers.a]\nkind = \"openai\"\n[routes.m]\ntargets = [\"a\"]\n", "routes.\"m\".targets[0]", "provider/model"),
        ("[providers.a]\nkind = \"openai\"\n[routes.m]\ntargets = []\n", "routes.\"m\".targets", "at least one"),
        ("[providers.a]\nkind = \"openai\"\n[routes.m]\ntargets = [\"a/b\"]\nstrategy = \"fastest\"\n", "routes.\"m\".strategy", "unknown strategy"),
        ("[providers.a]\nkind = \"openai\"\n[routes.m]\ntargets = [\"a/b\"]\nstrategy = \"fastest\"\n", "routes.\"m\".strategy", "least-latency, least-cost, quota-aware"),
        ("[providers.a]\nkind = \"openai\"\nmodels = [\"gpt-4o\"]\n[routes.v]\ncapability = [\"embeddings\"]\n", "routes.\"v\".capability", "no configured model has embeddings"),
        ("[providers.a]\nkind = \"openai\"\n[routes.v]\ncapability = [\"telepathy\"]\n", "routes.\"v\".capability", "unknown capability `telepathy`"),
        ("[providers.a]\nkind = \"openai\"\n[routes.v]\ncapability = [\"chat\"]\ntargets = [\"a/b\"]\n", "routes.\"v\"", "both `targets` and `capability`"),
        ("[providers.a]\nkind = \"openai\"\n[[budgets]]\nprovider = \"a\"\nroute = \"r\"\ndaily_usd = 1\n", "budgets[0]", "at most one"),
        ("[providers.a]\nkind = \"openai\"\n[[budgets]]\nprovider = \"a\"\n", "budgets[0]", "sets no limit"),
        ("[providers.a]\nkind = \"openai\"\n[[budgets]]\nprovider = \"b\"\ndaily_usd = 1\n", "budgets[0].provider", "no provider named `b`"),
        ("[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"k\" }]\n[[budgets]]\nkey = \"a/x\"\ndaily_usd = 1\n", "budgets[0].key", "no key `a/x`"),
        ("[providers.a]\nkind = \"openai\"\n[[budgets]]\nmonthly_usd = -2\n", "budgets[0].monthly_usd", "above 0"),
        ("[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"k\", rpm = 0 }]\n", "providers.a.keys[0].rpm", "at least 1"),
        ("[models.\"m\"]\ninput_price = -1\n", "models.\"m\".input_price", "USD per million"),
        ("[models.\"m\"]\ncapabilities = [\"x\"]\n", "models.\"m\".capabilities", "unknown capability"),
        ("listen = \"0.0.0.0:8414\"\n", "listen", "allow_lan"),
        ("listen = \"nope\"\n", "listen", "not an address"),
        ("[timeouts]\nconnect = -1\n", "timeouts.connect", "seconds"),
        ("[retry]\nmax_attempts = 0\n", "retry.max_attempts", "between"),
    ];
    for (text, want_key, want_msg) in cases {
        let (key, msg) = invalid_key(text);
        assert_eq!(&key, want_key, "for {text}");
        assert!(msg.contains(want_msg), "for {text}: {msg}");
    }
}

#[test]
fn loopback_http_and_lan_opt_in_are_accepted() {
    let c = load("listen = \"0.0.0.0:9000\"\nallow_lan = true\n[providers.o]\nkind = \"openai-compatible\"\nbase_url = \"http://127.0.0.1:11434/v1\"\n").expect("valid");
    assert!(c.allow_lan);
    assert_eq!(c.providers[0].base_url, "http://127.0.0.1:11434/v1");
}

#[test]
fn syntax_errors_name_the_file() {
    match load("[providers.a\n") {
        Err(ConfigError::Syntax { path, .. }) => assert_eq!(path, "test.toml"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn environment_detection_pools_numbered_variables() {
    let env = |name: &str| match name {
        "OPENAI_API_KEY" => Some("sk-1".to_string()),
        "OPENAI_API_KEY_2" => Some("sk-2".to_string()),
        "DEEPSEEK_API_KEY" => Some("sk-3".to_string()),
        "ANTHROPIC_API_KEY" => Some("  ".to_string()),
        _ => None,
    };
    let c = from_environment(env);
    assert_eq!(c.source, ConfigSource::Environment);
    let names: Vec<&str> = c.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["openai", "deepseek"]);
    let ids: Vec<&str> = c.providers[0].keys.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(ids, ["env", "env-2"]);
    assert_eq!(
        c.providers[0].keys[1].secret,
        SecretRef::Env("OPENAI_API_KEY_2".into())
    );
    assert!(!c.uses_keychain());
}

/// RELIABILITY.md 29: a key pasted anywhere it does not belong is refused with the place it is
/// at and what to do, never with the key itself (the message reaches the log, the event
/// stream, webhooks and notifications).
#[test]
fn errors_quote_structure_never_a_pasted_key() {
    // A key with nothing key-shaped about it but its place, and a typical one.
    for key in [
        "sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4",
        "plainwordsecret",
    ] {
        let cases = [
            format!("[providers.o]\nkind = \"openai\"\nkeys = [\"{key}\"]\n"),
            format!(
                "[providers.o]\nkind = \"openai\"\nkeys = [{{ id = \"a\", secret = \"{key}\" }}]\n"
            ),
            format!("[providers.o]\nkind = \"openai\"\napi_key = \"{key}\"\n"),
            format!("[providers.o]\nkind = \"{key}\"\n"),
            format!("[providers.o]\nkind = \"openai\"\nbase_url = \"{key}\"\n"),
            format!("[providers.o]\nkind = \"openai\"\n{key} = 1\n"),
            format!("listen = \"{key}\"\n"),
            format!("[providers.o]\nkind = \"openai\"\nkeys = [{key}]\n"),
            format!("[providers.o]\nkind = \"openai\"\nkeys = [\"{key}\n"),
            format!("[providers.o]\nkind = \"openai\"\nkeys = [{{ id = \"{key}\" }}]\n"),
            format!("[routes.r]\ntargets = [\"{key}\"]\n"),
            format!("[providers.{key}x]\nkind = \"openai\"\n"),
        ];
        for text in &cases {
            let long = key.len() >= 20;
            let err = match load(text) {
                Err(e) => e.to_string(),
                // An ordinary word is a fine key id or provider name.
                Ok(_) if !long => continue,
                Ok(_) => panic!("a key-shaped name was accepted: {text}"),
            };
            if long {
                assert!(!err.contains(&key[..12]), "{text}\n=> {err}");
            } else {
                // A short, ordinary-looking word cannot be told from a name; it must at least
                // never appear where a value was quoted by serde or by the TOML source line.
                assert!(
                    !err.contains(&format!("\"{key}\"")) && !err.contains(&format!("{key}\"]")),
                    "{text}\n=> {err}"
                );
            }
            assert!(!err.trim().is_empty());
        }
    }
    // The error still says where and what.
    let err = load("[providers.o]\nkind = \"openai\"\nkeys = [\"sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4\"]\n")
        .expect_err("invalid")
        .to_string();
    assert!(err.contains("providers.o.keys"), "{err}");
    let err = load(
        "[providers.o]\nkind = \"openai\"\nkeys = [sk-canary-3f9a2c71d04e4b8e9c5a7f10b2d6e8a4]\n",
    )
    .expect_err("invalid")
    .to_string();
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn state_names_a_redis_without_credentials_in_its_url() {
    // Absent: single-instance, nothing shared.
    let c = load("").expect("valid");
    assert_eq!(c.shared, crate::config::SharedEngines::default());

    let c = load(
        "[state]\nredis = \"rediss://cache.internal:6380/2\"\nredis_username = \"fluxgate\"\nredis_password = \"env:FLUXGATE_REDIS_PASSWORD\"\n",
    )
    .expect("valid");
    let r = c.shared.redis.expect("redis");
    assert_eq!(r.url, "rediss://cache.internal:6380/2");
    assert!(r.tls());
    assert_eq!(r.ca, None);
    assert_eq!(r.username.as_deref(), Some("fluxgate"));
    let c =
        load("[state]\nredis = \"rediss://cache.internal\"\nredis_ca = \"/etc/fluxgate/ca.pem\"\n")
            .expect("valid");
    assert_eq!(
        c.shared.redis.expect("redis").ca.as_deref(),
        Some(std::path::Path::new("/etc/fluxgate/ca.pem"))
    );
    assert_eq!(
        r.password,
        Some(SecretRef::Env("FLUXGATE_REDIS_PASSWORD".into()))
    );

    let cases = [
        // A password in the URL, or pasted as the reference, is refused without quoting it.
        (
            "redis = \"redis://:hunter2-secret@host:6379\"",
            "state.redis",
            "hunter2",
        ),
        (
            "redis = \"redis://u:hunter2-secret@host\"",
            "state.redis",
            "hunter2",
        ),
        (
            "redis = \"redis://host\"\nredis_password = \"hunter2-secret\"",
            "state.redis_password",
            "hunter2",
        ),
        ("redis = \"http://host:6379\"", "state.redis", "\u{0}"),
        ("redis = \"redis://host:6379/db\"", "state.redis", "\u{0}"),
        ("redis = \"redis://host?timeout=1\"", "state.redis", "\u{0}"),
        (
            "redis_password = \"env:X\"",
            "state.redis_password",
            "\u{0}",
        ),
        ("reddis = \"redis://host\"", "reddis", "\u{0}"),
        // A private CA only for an encrypted connection, and only as an absolute path.
        (
            "redis = \"redis://host\"\nredis_ca = \"/etc/ca.pem\"",
            "state.redis_ca",
            "\u{0}",
        ),
        (
            "redis = \"rediss://host\"\nredis_ca = \"ca.pem\"",
            "state.redis_ca",
            "\u{0}",
        ),
    ];
    for (body, key, never) in cases {
        let err = load(&format!("[state]\n{body}\n"))
            .expect_err(body)
            .to_string();
        assert!(err.contains(key), "{body} => {err}");
        assert!(!err.contains(never), "{body} => {err}");
    }
}

#[test]
fn store_names_a_postgres_with_a_user_and_no_password_in_its_url() {
    let c = load(
        "[store]\npostgres = \"postgres://fluxgate@db.internal:5432/fluxgate?sslmode=require\"\npostgres_password = \"file:/run/secrets/pg\"\n",
    )
    .expect("valid");
    let p = c.shared.postgres.expect("postgres");
    assert_eq!(
        p.url,
        "postgres://fluxgate@db.internal:5432/fluxgate?sslmode=require"
    );
    assert!(p.tls());
    assert_eq!(p.ca, None);
    assert_eq!(p.password, Some(SecretRef::File("/run/secrets/pg".into())));
    let c = load("[store]\npostgres = \"postgres://u@db/d?sslmode=require\"\npostgres_ca = \"/etc/fluxgate/ca.pem\"\n")
        .expect("valid");
    assert_eq!(
        c.shared.postgres.expect("postgres").ca.as_deref(),
        Some(std::path::Path::new("/etc/fluxgate/ca.pem"))
    );
    assert!(c.shared.redis.is_none(), "the engines are independent");
    assert!(!p.budgets_fail_open, "budgets fail closed by default");
    let c = load("[store]\npostgres = \"postgresql://u@127.0.0.1/db\"\nbudgets_when_unreachable = \"open\"\n")
        .expect("valid");
    let p = c.shared.postgres.expect("postgres");
    assert!(!p.tls());
    assert!(p.budgets_fail_open);

    let cases = [
        // A password in the URL, or pasted as the reference, is refused without quoting it.
        (
            "postgres = \"postgres://u:hunter2-secret@host/db\"",
            "store.postgres",
            "hunter2",
        ),
        (
            "postgres = \"postgres://u@host/db\"\npostgres_password = \"hunter2-secret\"",
            "store.postgres_password",
            "hunter2",
        ),
        (
            "postgres = \"mysql://u@host/db\"",
            "store.postgres",
            "\u{0}",
        ),
        (
            "postgres = \"postgres://host/db\"",
            "store.postgres",
            "\u{0}",
        ),
        (
            "postgres = \"postgres://u@host\"",
            "store.postgres",
            "\u{0}",
        ),
        (
            "postgres = \"postgres://u@host/db?sslmode=verify-full\"",
            "sslmode=require",
            "\u{0}",
        ),
        (
            "postgres_password = \"env:X\"",
            "store.postgres_password",
            "\u{0}",
        ),
        ("postgress = \"postgres://u@h/d\"", "postgress", "\u{0}"),
        (
            "postgres = \"postgres://u@h/d?sslmode=disable\"\npostgres_ca = \"/etc/ca.pem\"",
            "store.postgres_ca",
            "\u{0}",
        ),
        (
            "postgres = \"postgres://u@h/d?sslmode=require\"\npostgres_ca = \"./ca.pem\"",
            "store.postgres_ca",
            "\u{0}",
        ),
        (
            "postgres_ca = \"/etc/ca.pem\"",
            "store.postgres_ca",
            "\u{0}",
        ),
        (
            "postgres = \"postgres://u@h/d\"\nbudgets_when_unreachable = \"maybe\"",
            "store.budgets_when_unreachable",
            "\u{0}",
        ),
    ];
    for (body, key, never) in cases {
        let err = load(&format!("[store]\n{body}\n"))
            .expect_err(body)
            .to_string();
        assert!(err.contains(key), "{body} => {err}");
        assert!(!err.contains(never), "{body} => {err}");
    }
}

#[test]
fn proxies_apply_key_over_provider_over_file() {
    let config = load(
        r#"
proxy = "corp"

[proxies.corp]
url = "http://proxy.corp:3128"
username = "alice"
password = "keychain"

[providers.a]
kind = "openai"
keys = [{ id = "k1" }, { id = "k2", proxy = "direct" }]

[providers.b]
kind = "anthropic"
proxy = "socks5h://127.0.0.1:1080"
keys = [{ id = "k1" }, { id = "k2", proxy = "corp" }]

[providers.local]
kind = "openai-compatible"
base_url = "http://localhost:11434/v1"
proxy = "env"
keys = [{ id = "k1" }]
"#,
    )
    .expect("valid");
    let via = |p: &str, k: &str| {
        config
            .provider(p)
            .and_then(|p| p.keys.iter().find(|x| x.id == k))
            .and_then(|k| k.egress.proxy().map(|e| e.label.clone()))
    };
    assert_eq!(
        via("a", "k1").as_deref(),
        Some("corp"),
        "the file's default"
    );
    assert_eq!(via("a", "k2"), None, "a key going direct");
    assert_eq!(
        via("b", "k1").as_deref(),
        Some("socks5h://127.0.0.1:1080"),
        "the provider's own"
    );
    assert_eq!(via("b", "k2").as_deref(), Some("corp"), "a key's own");
    assert_eq!(via("local", "k1"), None, "env never proxies loopback");
    assert_eq!(config.proxies.len(), 1);

    let (key, message) = invalid_key(
        "[providers.a]\nkind = \"openai\"\nkeys = [{ id = \"k\", proxy = \"nope\" }]\n",
    );
    assert_eq!(key, "providers.a.keys[0].proxy");
    assert!(message.contains("none is defined"), "{message}");
    let (key, _) = invalid_key("proxy = \"ftp://x:1\"\n");
    assert_eq!(key, "proxy");
}

#[test]
fn balances_are_found_by_host_named_or_off_and_their_settings_checked() {
    let config = load(
        r#"
[providers.ds]
kind = "openai-compatible"
base_url = "https://api.deepseek.com/v1"
keys = [{ id = "k" }]

[providers.local]
kind = "openai-compatible"
base_url = "http://localhost:9000/v1"
balance = "openrouter"
low_balance = 2.5
low_balance_action = "rotate-out"
balance_interval = 120
keys = [{ id = "k" }]

[providers.quiet]
kind = "openai-compatible"
base_url = "https://openrouter.ai/api/v1"
balance = "off"
keys = [{ id = "k" }]
"#,
    )
    .expect("valid");
    let b = |name: &str| config.provider(name).and_then(|p| p.balance);
    let ds = b("ds").expect("deepseek by host");
    assert_eq!(ds.source, crate::vocab::BalanceSource::DeepSeek);
    assert_eq!((ds.threshold, ds.rotate_out), (None, false));
    assert_eq!(ds.interval, std::time::Duration::from_secs(600));
    let local = b("local").expect("named");
    assert_eq!(
        (
            local.source,
            local.threshold,
            local.rotate_out,
            local.interval.as_secs()
        ),
        (
            crate::vocab::BalanceSource::OpenRouter,
            Some(2.5),
            true,
            120
        )
    );
    assert_eq!(b("quiet"), None);
    for (extra, field, says) in [
        ("balance = \"kimi\"", "balance", "one of deepseek"),
        ("low_balance = -1.0", "low_balance", "0 or more"),
        (
            "low_balance_action = \"drop\"",
            "low_balance_action",
            "rotate-out",
        ),
        ("balance_interval = 5", "balance_interval", "at least 60"),
    ] {
        let (key, message) = invalid_key(&format!(
            "[providers.ds]\nkind = \"openai-compatible\"\nbase_url = \"https://api.deepseek.com\"\n{extra}\n"
        ));
        assert_eq!(key, format!("providers.ds.{field}"));
        assert!(message.contains(says), "{message}");
    }
    let (key, message) = invalid_key(
        "[providers.x]\nkind = \"openai-compatible\"\nbase_url = \"https://llm.example/v1\"\nlow_balance = 1.0\n",
    );
    assert_eq!(key, "providers.x.low_balance");
    assert!(message.contains("not read"), "{message}");
    let (key, _) = invalid_key("[providers.o]\nkind = \"openai\"\nbalance = \"deepseek\"\n");
    assert_eq!(key, "providers.o.balance");
}

#[test]
fn a_route_keeps_bodies_only_for_a_time_and_size_it_names() {
    let route = |extra: &str| {
        format!(
            "[providers.p]\nkind = \"openai\"\nkeys = [{{ id = \"a\" }}]\n[routes.r]\ntargets = [\"p/m\"]\n{extra}\n"
        )
    };
    let c = load(&route("keep_bodies_hours = 24")).expect("valid");
    assert_eq!(
        c.route("r").and_then(|r| r.keep_bodies),
        Some(KeepBodies {
            hours: 24,
            max_bytes: 64 * 1024
        })
    );
    assert_eq!(
        load(&route(""))
            .expect("valid")
            .route("r")
            .and_then(|r| r.keep_bodies),
        None
    );
    for (extra, field, says) in [
        ("keep_bodies_kb = 8", "keep_bodies_kb", "keep_bodies_hours"),
        ("keep_bodies_hours = 0", "keep_bodies_hours", "1 to 168"),
        ("keep_bodies_hours = 169", "keep_bodies_hours", "1 to 168"),
        (
            "keep_bodies_hours = 1.5",
            "keep_bodies_hours",
            "whole number",
        ),
        (
            "keep_bodies_hours = 1\nkeep_bodies_kb = 2048",
            "keep_bodies_kb",
            "1 to 1024",
        ),
        (
            "keep_bodies_hours = 1\nkeep_bodies_kb = 0",
            "keep_bodies_kb",
            "1 to 1024",
        ),
    ] {
        let (key, message) = invalid_key(&route(extra));
        assert_eq!(key, format!("routes.\"r\".{field}"), "{extra}");
        assert!(message.contains(says), "{extra}: {message}");
    }
}
