//! The admin API's writes: keys (write-only: set, replace, delete, test, disable, enable),
//! providers, routes with a live explain preview, pause/resume, client setup, and the
//! config view the console reads. Config changes go through [`ConfigDoc`] (`toml_edit`:
//! comments and order kept, validated as a whole before the atomic write) and are applied at
//! once; the file watcher sees the same text and changes nothing more.
//!
//! Secrets travel one way: in a `PUT` body, straight into the keychain. No answer carries
//! one; a key is shown by id, where its secret lives, and at most its last four characters.

// Handlers return early with a ready `Response` as their error; it is built once per request.
#![allow(clippy::result_large_err)]

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::config::edit::{ConfigDoc, EditError};
use fluxgate_core::config::{Config, ProviderKind, StrategyKind};
use fluxgate_core::formats::translate::TranslatorRegistry;
use fluxgate_core::gateway::EditConfigError;
use fluxgate_core::secrets::{SecretRef, SecretValue};
use fluxgate_core::setup::{snippet, ClientKind};
use fluxgate_core::vocab::KeyRef;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::admin::{error, AdminError};
use crate::state::AppState;

fn edit_error(e: EditError) -> Response {
    match e {
        EditError::NotFound(_) => error(AdminError::NotFound, e),
        EditError::Conflict(_) => error(AdminError::Conflict, e),
        EditError::Invalid(_) | EditError::Rejected(_) => error(AdminError::InvalidConfig, e),
        EditError::Unreadable { .. } => error(AdminError::ConfigUnreadable, e),
        EditError::Write { .. } => error(AdminError::Internal, e),
    }
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    shape: &str,
) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| error(AdminError::InvalidRequest, format!("expected {shape}: {e}")))
}

/// Edits the config through [`Gateway::edit_config`](fluxgate_core::gateway::Gateway), with
/// its refusals as admin API errors.
pub(crate) async fn edit<T: Send + 'static>(
    s: &Arc<AppState>,
    f: impl FnOnce(&mut ConfigDoc) -> Result<T, EditError> + Send + 'static,
) -> Result<T, Response> {
    s.gateway.edit_config(f).await.map_err(edit_config_error)
}

fn edit_config_error(e: EditConfigError) -> Response {
    match e {
        EditConfigError::ReadOnly => error(AdminError::ConfigReadOnly, e),
        EditConfigError::Edit(e) => edit_error(e),
        EditConfigError::Interrupted(_) => error(AdminError::Internal, e),
    }
}

fn secret_source(r: &SecretRef) -> String {
    match r {
        SecretRef::Keychain => "keychain".into(),
        SecretRef::Env(n) => format!("env:{n}"),
        SecretRef::File(_) => "file".into(),
    }
}

/// `GET /admin/api/config`: providers (keys by id and where their secret lives), routes and
/// settings, as the console shows them.
pub async fn config(State(s): State<Arc<AppState>>) -> Response {
    let c = s.gateway.config();
    let providers: Vec<Value> = c
        .providers
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "kind": p.kind.as_str(),
                "base_url": p.base_url,
                "enabled": p.enabled,
                "models": p.models,
                "keys": p.keys.iter().map(|k| json!({
                    "id": k.id,
                    "secret": secret_source(&k.secret),
                    "enabled": k.enabled,
                    "limits": k.limits,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let routes: Vec<Value> = c
        .routes
        .iter()
        .map(|r| {
            json!({
                "name": r.name,
                "targets": r.targets.iter().map(|t| format!("{}/{}", t.provider, t.model)).collect::<Vec<_>>(),
                "strategy": r.strategy.as_str(),
                "capability": r.capability,
            })
        })
        .collect();
    Json(json!({
        "config_file": s.gateway.config_file().map(absolute),
        "editable": s.gateway.config_file().is_some(),
        "from_environment": c.source == fluxgate_core::config::ConfigSource::Environment,
        "data_dir": absolute(&s.gateway.data_dir),
        "listen": c.listen.to_string(),
        "base_url": format!("http://{}", s.public_addr),
        "paused": s.gateway.paused.load(Ordering::Relaxed),
        "shared": {
            "redis": c.shared.redis.as_ref().map(|r| r.url.clone()),
            "up": s.gateway.team.as_ref().map(|t| t.engine.status().is_up()),
            "postgres": c.shared.postgres.as_ref().map(|p| p.url.clone()),
            "postgres_up": s.gateway.ledger.as_ref().map(|l| l.status().is_up()),
            "postgres_pending": s.gateway.ledger.as_ref().map(|l| l.pending()),
        },
        "providers": providers,
        "routes": routes,
        "strategies": StrategyKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "catalogue": fluxgate_core::catalogue::Catalogue::builtin_ids().collect::<Vec<_>>(),
        "kinds": ProviderKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "clients": ClientKind::ALL.iter().map(|k| json!({"id": k.id(), "title": k.title()})).collect::<Vec<_>>(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct NewProvider {
    name: String,
    kind: String,
    base_url: Option<String>,
    #[serde(default)]
    models: Vec<String>,
}

/// `POST /admin/api/providers`: adds a provider (keys are added one by one after).
pub async fn add_provider(State(s): State<Arc<AppState>>, body: bytes::Bytes) -> Response {
    let req: NewProvider = match json_body(
        &body,
        r#"{"name": "...", "kind": "openai|anthropic|gemini|openai-compatible|azure-openai", "base_url"?: "...", "models"?: [...]}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(kind) = ProviderKind::ALL
        .into_iter()
        .find(|k| k.as_str() == req.kind)
    else {
        return error(
            AdminError::InvalidRequest,
            "kind must be openai, anthropic, gemini, openai-compatible or azure-openai",
        );
    };
    let name = req.name.clone();
    match edit(&s, move |doc| {
        doc.add_provider(&req.name, kind, req.base_url.as_deref(), &req.models)
    })
    .await
    {
        Ok(()) => (StatusCode::CREATED, Json(json!({"provider": name}))).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderPatch {
    enabled: Option<bool>,
    /// `""`: the vendor's own.
    base_url: Option<String>,
    models: Option<Vec<String>>,
}

/// `PATCH /admin/api/providers/{provider}` with any of `{"enabled": bool, "base_url": "…",
/// "models": [...]}` (`"base_url": ""` goes back to the vendor's own; `"models": []` removes
/// the list). One edit, checked as a whole.
pub async fn patch_provider(
    State(s): State<Arc<AppState>>,
    Path(provider): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let req: ProviderPatch = match json_body(
        &body,
        r#"{"enabled"?: true|false, "base_url"?: "https://…" or "", "models"?: ["…"]}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    if req.enabled.is_none() && req.base_url.is_none() && req.models.is_none() {
        return error(
            AdminError::InvalidRequest,
            "nothing to change: give enabled, base_url or models",
        );
    }
    let p = provider.clone();
    let answer = json!({"provider": provider, "enabled": req.enabled, "base_url": req.base_url, "models": req.models});
    match edit(&s, move |doc| {
        if let Some(e) = req.enabled {
            doc.set_provider_enabled(&p, e)?;
        }
        let base = req.base_url.as_deref().map(str::trim);
        doc.set_provider_settings(&p, base, req.models.as_deref())
    })
    .await
    {
        Ok(()) => Json(answer).into_response(),
        Err(r) => r,
    }
}

/// `DELETE /admin/api/providers/{provider}` (its keychain entries stay; delete keys first to
/// remove them).
pub async fn delete_provider(
    State(s): State<Arc<AppState>>,
    Path(provider): Path<String>,
) -> Response {
    let p = provider.clone();
    match edit(&s, move |doc| doc.remove_provider(&p)).await {
        Ok(()) => Json(json!({"deleted": provider})).into_response(),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSecret {
    /// The key itself, for the OS keychain.
    secret: Option<String>,
    /// Or the environment variable Fluxgate reads it from.
    env: Option<String>,
    /// Or the file Fluxgate reads it from (an absolute path).
    file: Option<String>,
}

/// `GET /admin/api/keychain`: whether the OS keychain can take a key now (`ok`, `locked` or
/// `unavailable`), and what to do when it cannot; asked before a key is pasted.
pub async fn keychain_status(State(s): State<Arc<AppState>>) -> Response {
    use fluxgate_core::secrets::SecretError;
    let probe = keychain_call(&s, |store| match store.get("fluxgate/console-probe") {
        Ok(_) | Err(SecretError::NotFound(_)) => Ok("ok"),
        Err(SecretError::KeychainLocked) => Ok("locked"),
        Err(e) => Err(e),
    })
    .await;
    let (state, detail, hint) = match probe {
        Ok("ok") => ("ok", "reachable and unlocked".to_string(), None),
        Ok(_) => (
            "locked",
            "the keychain is locked".to_string(),
            Some("unlock it (log in to the desktop session), or keep this key in an environment variable or a file"),
        ),
        Err(_) => (
            "unavailable",
            "no Secret Service answers in this session".to_string(),
            Some("start one (GNOME Keyring, KeePassXC or KWallet), or keep this key in an environment variable or a file"),
        ),
    };
    Json(json!({"state": state, "available": state == "ok", "detail": detail, "hint": hint}))
        .into_response()
}

/// `PUT /admin/api/keys/{p}/{k}` with `{"env": "VAR"}` or `{"file": "/path"}`: the key is
/// read from there (nothing is stored); the answer says whether it can be read now.
async fn set_key_reference(
    s: &Arc<AppState>,
    provider: String,
    key: String,
    reference: SecretRef,
) -> Response {
    let config = s.gateway.config();
    let Some(pc) = config.provider(&provider) else {
        return error(
            AdminError::NotFound,
            format!("no provider `{provider}`; add the provider first"),
        );
    };
    if pc.keys.iter().any(|k| k.id == key) {
        return error(
            AdminError::Conflict,
            format!("{provider}/{key} exists already; delete it first to read it from elsewhere"),
        );
    }
    let text = reference.to_string();
    let (p, k, t) = (provider.clone(), key.clone(), text.clone());
    if let Err(r) = edit(s, move |doc| doc.add_key(&p, &k, Some(&t))).await {
        return r;
    }
    let account = pc.account(&key);
    let readable = s.gateway.executor.secrets().resolve(&account, &reference);
    s.gateway.executor.secrets().invalidate(&account);
    let note = readable.err().map(|e| {
        format!("{e}; the key is skipped until it can be read (Fluxgate reads it when it needs it)")
    });
    tracing::info!(key = %account, source = %text, "key added, read from outside the keychain");
    (
        StatusCode::CREATED,
        Json(json!({"key": account, "stored_in": text, "added": true, "note": note})),
    )
        .into_response()
}

async fn keychain_call<T: Send + 'static>(
    s: &Arc<AppState>,
    f: impl FnOnce(
            &dyn fluxgate_core::secrets::SecretStore,
        ) -> Result<T, fluxgate_core::secrets::SecretError>
        + Send
        + 'static,
) -> Result<T, Response> {
    let secrets = s.gateway.executor.secrets().clone();
    let call = tokio::task::spawn_blocking(move || {
        let store = secrets.keychain()?;
        f(store.as_ref())
    });
    match tokio::time::timeout(std::time::Duration::from_secs(10), call).await {
        Ok(Ok(Ok(v))) => Ok(v),
        Ok(Ok(Err(e))) => Err(error(AdminError::KeychainUnavailable, e)),
        Ok(Err(e)) => Err(error(AdminError::Internal, e)),
        Err(_) => Err(error(
            AdminError::KeychainUnavailable,
            "the OS keychain did not answer within 10 s",
        )),
    }
}

/// `PUT /admin/api/keys/{provider}/{key}` with `{"secret": "..."}`: stores the key in the OS
/// keychain and adds it to the provider (or replaces the secret of a keychain key). The key
/// comes back healthy. The answer names the key and its last four characters, nothing more.
pub async fn set_key(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
    body: bytes::Bytes,
) -> Response {
    let shape = r#"{"secret": "the API key"} or {"env": "VARIABLE"} or {"file": "/absolute/path"}"#;
    let req: NewSecret = match json_body(&body, shape) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let secret = match (req.secret, req.env, req.file) {
        (Some(secret), None, None) => secret,
        (None, Some(var), None) => {
            let var = var.trim().to_string();
            let valid = !var.is_empty()
                && !var.starts_with(|c: char| c.is_ascii_digit())
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return error(
                    AdminError::InvalidRequest,
                    "an environment variable's name is letters, digits and _, not starting with a digit",
                );
            }
            return set_key_reference(&s, provider, key, SecretRef::Env(var)).await;
        }
        (None, None, Some(path)) => {
            let path = std::path::PathBuf::from(path.trim());
            if !path.is_absolute() {
                return error(
                    AdminError::InvalidRequest,
                    "give the file's absolute path (Fluxgate's working directory is not yours)",
                );
            }
            return set_key_reference(&s, provider, key, SecretRef::File(path)).await;
        }
        _ => {
            return error(
                AdminError::InvalidRequest,
                format!("expected one of {shape}"),
            )
        }
    };
    let value = SecretValue::new(secret.trim());
    drop(secret);
    if value.expose().is_empty() || value.expose().chars().any(char::is_whitespace) {
        return error(
            AdminError::InvalidRequest,
            "the key is empty or contains spaces; paste the whole key",
        );
    }
    let config = s.gateway.config();
    let Some(pc) = config.provider(&provider) else {
        return error(
            AdminError::NotFound,
            format!("no provider `{provider}`; add the provider first"),
        );
    };
    if let Some(k) = pc.keys.iter().find(|k| k.id == key) {
        if k.secret != SecretRef::Keychain {
            return error(
                AdminError::Conflict,
                format!(
                    "{provider}/{key} reads its secret from {}; change it there, or delete the key and add it again",
                    secret_source(&k.secret)
                ),
            );
        }
    }
    let account = pc.account(&key);
    let hint = value.hint();
    {
        let account = account.clone();
        if let Err(r) = keychain_call(&s, move |store| store.set(&account, &value)).await {
            return r;
        }
    }
    let (p, k) = (provider.clone(), key.clone());
    let added = match edit(&s, move |doc| doc.add_key(&p, &k, None)).await {
        Ok(a) => a,
        Err(r) => {
            // Nothing stays behind for a key the config refused.
            if config
                .provider(&provider)
                .is_none_or(|pc| pc.keys.iter().all(|k| k.id != key))
            {
                let account = account.clone();
                let _ = keychain_call(&s, move |store| store.delete(&account)).await;
            }
            return r;
        }
    };
    s.gateway.executor.secrets().invalidate(&account);
    s.gateway.health.revive(&account);
    tracing::info!(key = %account, added, "key stored in the keychain");
    (
        if added {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        Json(json!({"key": account, "stored_in": "keychain", "hint": hint, "added": added})),
    )
        .into_response()
}

/// `DELETE /admin/api/keys/{provider}/{key}`: removes the key from the config and, when it
/// lives there, from the keychain.
pub async fn delete_key(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    let config = s.gateway.config();
    let in_keychain = config
        .provider(&provider)
        .and_then(|p| p.keys.iter().find(|k| k.id == key))
        .is_some_and(|k| k.secret == SecretRef::Keychain);
    let (p, k) = (provider.clone(), key.clone());
    if let Err(r) = edit(&s, move |doc| doc.remove_key(&p, &k)).await {
        return r;
    }
    let account = format!("{provider}/{key}");
    s.gateway.executor.secrets().invalidate(&account);
    let mut removed_secret = false;
    if in_keychain {
        let a = account.clone();
        match keychain_call(&s, move |store| store.delete(&a)).await {
            Ok(()) => removed_secret = true,
            Err(_) => {
                tracing::warn!(key = %account, "the key left the config but its keychain entry could not be deleted")
            }
        }
    }
    Json(json!({"deleted": account, "keychain_entry_deleted": removed_secret})).into_response()
}

async fn set_key_enabled(s: Arc<AppState>, provider: String, key: String, on: bool) -> Response {
    let key = KeyRef::new(provider, key);
    match s.gateway.set_key_enabled(&key, on).await {
        Ok(()) => Json(json!({"key": key.account(), "enabled": on})).into_response(),
        Err(e) => edit_config_error(e),
    }
}

/// `POST /admin/api/keys/{provider}/{key}/disable`
pub async fn disable_key(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    set_key_enabled(s, provider, key, false).await
}

/// `POST /admin/api/keys/{provider}/{key}/enable`
pub async fn enable_key(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    set_key_enabled(s, provider, key, true).await
}

/// `POST /admin/api/keys/{provider}/{key}/test`: runs the key's retest now (a models list)
/// and records the outcome in its health, as a scheduled retest would.
pub async fn test_key(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    match s.gateway.test_key(&KeyRef::new(provider, key)).await {
        Ok(t) => Json(t).into_response(),
        Err(e) => error(AdminError::NotFound, e),
    }
}

#[derive(Deserialize)]
struct RouteEdit {
    targets: Vec<String>,
    strategy: Option<String>,
    /// For the preview: the dialect a client would speak (default openai).
    dialect: Option<String>,
}

const ROUTE_SHAPE: &str =
    r#"{"targets": ["provider/model", ...], "strategy"?: "priority|round-robin|..."}"#;

/// `PUT /admin/api/routes/{name}`: creates or replaces a route's targets and strategy.
pub async fn put_route(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let req: RouteEdit = match json_body(&body, ROUTE_SHAPE) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let n = name.clone();
    match edit(&s, move |doc| {
        doc.set_route(&n, &req.targets, req.strategy.as_deref())
    })
    .await
    {
        Ok(()) => Json(json!({"route": name})).into_response(),
        Err(r) => r,
    }
}

/// `DELETE /admin/api/routes/{name}`
pub async fn delete_route(State(s): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let n = name.clone();
    match edit(&s, move |doc| doc.remove_route(&n)).await {
        Ok(()) => Json(json!({"deleted": name})).into_response(),
        Err(r) => r,
    }
}

/// `POST /admin/api/routes/{name}/preview`: the order a draft of the route would try, with
/// the running health, budgets and limits, without saving anything. An invalid draft answers
/// 422 with the validation message (the console shows it as you type).
pub async fn preview_route(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let req: RouteEdit = match json_body(&body, ROUTE_SHAPE) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let endpoint = match crate::admin::endpoint_for(req.dialect.as_deref()) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let path = s.gateway.config_file().map(std::path::Path::to_path_buf);
    let running = s.gateway.config();
    let route_name = name.clone();
    let draft = tokio::task::spawn_blocking(move || -> Result<Config, EditError> {
        let mut doc = match &path {
            Some(p) => ConfigDoc::open(p, Some(&running))?,
            None => ConfigDoc::detached(&running),
        };
        doc.set_route(&name, &req.targets, req.strategy.as_deref())?;
        let mut c = doc.validate()?;
        c.source = running.source.clone();
        Ok(c)
    })
    .await;
    let config = match draft {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return edit_error(e),
        Err(e) => return error(AdminError::Internal, e),
    };
    let router =
        fluxgate_core::routing::Router::new(Arc::new(config), TranslatorRegistry::builtin());
    let ex = &s.gateway.executor;
    match ex.plan(&router, endpoint, &route_name, None, None, None) {
        Ok(plan) => Json(plan.report(endpoint, &ex.health().proxies())).into_response(),
        Err(e) => error(AdminError::NoRoute, e),
    }
}

/// `POST /admin/api/pause` and `/resume`: routing on or off (proxy requests get 503
/// `routing_paused` while paused).
pub async fn pause(State(s): State<Arc<AppState>>) -> Response {
    s.gateway.set_paused(true);
    Json(json!({"paused": true})).into_response()
}

pub async fn resume(State(s): State<Arc<AppState>>) -> Response {
    s.gateway.set_paused(false);
    Json(json!({"paused": false})).into_response()
}

#[derive(Deserialize)]
struct SetupReq {
    client: String,
    /// Make a new client token for this tool (default true); false shows a placeholder.
    new_token: Option<bool>,
}

/// `POST /admin/api/setup` with `{"client": "claude-code|codex|openai-sdk|anthropic-sdk"}`:
/// makes a client token named after the tool and answers the setup text with it (the token
/// is shown this once).
pub async fn setup(State(s): State<Arc<AppState>>, body: bytes::Bytes) -> Response {
    let req: SetupReq = match json_body(
        &body,
        r#"{"client": "claude-code|codex|openai-sdk|anthropic-sdk"}"#,
    ) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(kind) = ClientKind::parse(&req.client) else {
        return error(
            AdminError::InvalidRequest,
            "client must be claude-code, codex, openai-sdk or anthropic-sdk",
        );
    };
    let base = format!("http://{}", s.public_addr);
    if req.new_token == Some(false) {
        return Json(
            json!({"client": kind.id(), "text": snippet(kind, &base, "YOUR_FLUXGATE_TOKEN")}),
        )
        .into_response();
    }
    let tokens = s.gateway.tokens.clone();
    let made = tokio::task::spawn_blocking(move || tokens.create_numbered(kind.id())).await;
    match made {
        Ok(Ok((name, token))) => (
            StatusCode::CREATED,
            Json(json!({"client": kind.id(), "token_name": name, "text": snippet(kind, &base, &token)})),
        )
            .into_response(),
        Ok(Err(e)) => error(AdminError::Internal, e),
        Err(e) => error(AdminError::Internal, e),
    }
}

/// A path as the absolute one a user can paste anywhere (a relative `--config` or
/// `--data-dir` is relative to where Fluxgate was started, which the console cannot know).
fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetEdit {
    /// `all`, `key`, `provider`, `route` or `client`.
    kind: String,
    /// The key (`provider/key_id`), provider, route or client token; not for `all`.
    name: Option<String>,
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
    daily_tokens: Option<u64>,
    monthly_tokens: Option<u64>,
}

/// `PUT /admin/api/budgets` with `{"kind": "provider", "name": "deepseek", "daily_usd": 1.0,
/// "monthly_usd"?, "daily_tokens"?, "monthly_tokens"?}`: sets that scope's budget in the
/// config (replacing its `[[budgets]]` entry, comments kept); no limits removes it. Checked as
/// a whole first: a name the config does not have, or a negative amount, changes nothing.
pub async fn put_budget(State(s): State<Arc<AppState>>, body: bytes::Bytes) -> Response {
    let shape = r#"{"kind": "all|key|provider|route|client", "name"?: "…", "daily_usd"?: N, "monthly_usd"?: N, "daily_tokens"?: N, "monthly_tokens"?: N}"#;
    let req: BudgetEdit = match json_body(&body, shape) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let limits = fluxgate_core::config::edit::BudgetLimits {
        daily_usd: req.daily_usd,
        monthly_usd: req.monthly_usd,
        daily_tokens: req.daily_tokens,
        monthly_tokens: req.monthly_tokens,
    };
    let answer = json!({"kind": req.kind, "name": req.name, "removed": limits.is_empty()});
    match edit(&s, move |doc| {
        doc.set_budget(&req.kind, req.name.as_deref(), &limits)
    })
    .await
    {
        Ok(()) => Json(answer).into_response(),
        Err(r) => r,
    }
}
