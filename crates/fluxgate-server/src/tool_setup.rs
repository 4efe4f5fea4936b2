//! `/admin/api/setup/tools`: the console's one-click setup of a tool's own config files, the
//! same use case as `fluxgate setup` and the tray menu (`fluxgate_core::setup::tools`): list the
//! tools with whether they already use this Fluxgate, preview a setup as a diff, apply it, undo
//! it. `/admin/api/init`: the welcome page's keys found on this machine and their adoption into
//! the keychain and the config (`fluxgate_core::setup::first_run`, as `fluxgate init`). The
//! files are the server user's (`HOME`, `CODEX_HOME`, `XDG_CONFIG_HOME`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::setup::tools::{self, Homes, SetupError};
use fluxgate_core::setup::ClientKind;
use serde::Deserialize;
use serde_json::json;

use crate::admin::{error, AdminError};
use crate::state::AppState;

fn homes() -> Result<Homes, Box<Response>> {
    Homes::from_env(|k| std::env::var(k).ok()).ok_or_else(|| {
        Box::new(error(
            AdminError::NoHome,
            "this Fluxgate runs without HOME, so it cannot find the tools' config files",
        ))
    })
}

fn tool(id: &str) -> Result<ClientKind, Box<Response>> {
    ClientKind::parse(id)
        .filter(|k| ClientKind::WRITABLE.contains(k))
        .ok_or_else(|| {
            Box::new(error(
                AdminError::NotFound,
                format!("no tool `{id}` to set up (claude-code, codex, gemini-cli, opencode)"),
            ))
        })
}

fn setup_error(e: SetupError) -> Response {
    let kind = match &e {
        SetupError::Malformed { .. } => AdminError::ToolConfigInvalid,
        SetupError::NothingToUndo(..) => AdminError::NothingToUndo,
        SetupError::NotWritable(_) => AdminError::InvalidRequest,
        SetupError::NoSafeBackup { .. } => AdminError::KeychainUnavailable,
        SetupError::Io { .. } | SetupError::Token(_) => AdminError::Internal,
    };
    error(kind, e)
}

fn base(s: &AppState) -> String {
    format!("http://{}", s.public_addr)
}

/// `GET /admin/api/setup/tools`
pub async fn list(State(s): State<Arc<AppState>>) -> Response {
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let base = base(&s);
    let tokens = s.gateway.tokens.clone();
    let data = s.data_dir.clone();
    let listed = tokio::task::spawn_blocking(move || {
        ClientKind::WRITABLE
            .iter()
            .map(|&k| {
                let now = tools::current(k, &homes);
                let configured = now.as_ref().is_ok_and(|c| {
                    c.base_url.as_deref() == Some(base.as_str())
                        && c.token.as_deref().and_then(|t| tokens.verify(t)).is_some()
                });
                json!({
                    "id": k.id(),
                    "title": k.title(),
                    "files": tools::files(k, &homes).unwrap_or_default(),
                    "configured": configured,
                    "undo": tools::has_backup(k, &data),
                    "problem": now.err().map(|e| e.to_string()),
                    "note": k.note(),
                })
            })
            .collect::<Vec<_>>()
    })
    .await;
    match listed {
        Ok(t) => Json(json!({"tools": t})).into_response(),
        Err(e) => error(AdminError::Internal, e),
    }
}

#[derive(Deserialize, Default)]
struct Apply {
    #[serde(default)]
    dry_run: bool,
}

/// `POST /admin/api/setup/tools/{tool}` with `{"dry_run": true}` (preview) or `{}` (write).
pub async fn apply(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: bytes::Bytes,
) -> Response {
    let kind = match tool(&id) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let req: Apply = if body.is_empty() {
        Apply::default()
    } else {
        match crate::manage::json_body(&body, r#"{"dry_run": true|false}"#) {
            Ok(r) => r,
            Err(r) => return r,
        }
    };
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let base = base(&s);
    let tokens = s.gateway.tokens.clone();
    let data = s.data_dir.clone();
    let models: Vec<String> = s.gateway.config().route_names();
    let secrets = s.gateway.executor.secrets().clone();
    let done = tokio::task::spawn_blocking(move || {
        let keychain = secrets.keychain();
        let keychain = keychain.as_deref().map_err(|e| e.to_string());
        tools::set_up(
            kind,
            &homes,
            &data,
            &tokens,
            keychain,
            &base,
            &models,
            req.dry_run,
        )
    })
    .await;
    match done {
        Ok(Ok(out)) => Json(json!({
            "tool": kind.id(),
            "dry_run": req.dry_run,
            "changes": out.plan.changes(),
            "diff": out.diff,
            "token_name": out.new_token,
            "written": out.written,
            "note": kind.note(),
        }))
        .into_response(),
        Ok(Err(e)) => setup_error(e),
        Err(e) => error(AdminError::Internal, e),
    }
}

/// `POST /admin/api/setup/tools/{tool}/undo`
pub async fn undo(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let kind = match tool(&id) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let tokens = s.gateway.tokens.clone();
    let data = s.data_dir.clone();
    let secrets = s.gateway.executor.secrets().clone();
    let undone = tokio::task::spawn_blocking(move || {
        let keychain = secrets.keychain();
        let keychain = keychain.as_deref().map_err(|e| e.to_string());
        tools::revert(kind, &homes, &data, &tokens, keychain)
    });
    match undone.await {
        Ok(Ok(restored)) => Json(json!({"tool": kind.id(), "restored": restored})).into_response(),
        Ok(Err(e)) => setup_error(e),
        Err(e) => error(AdminError::Internal, e),
    }
}

/// Whether the console should open on its welcome page: no config file yet and no key.
fn welcome(s: &AppState) -> bool {
    let c = s.gateway.config();
    c.source == fluxgate_core::config::ConfigSource::Environment
        && c.providers.iter().all(|p| p.keys.is_empty())
}

/// `GET /admin/api/init`: the keys on this machine (provider, last four characters, where
/// each was found; never a key) and the tools found, for the console's welcome page.
pub async fn found(State(s): State<Arc<AppState>>) -> Response {
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let welcome = welcome(&s);
    let listed = tokio::task::spawn_blocking(move || {
        let found = fluxgate_core::setup::first_run::discover(|k| std::env::var(k).ok(), &homes);
        let tools = fluxgate_core::setup::first_run::installed_tools(
            &homes,
            std::env::var("PATH").ok().as_deref(),
        );
        (found, tools)
    })
    .await;
    match listed {
        Ok((found, tools)) => Json(json!({
            "welcome": welcome,
            "found": found.iter().map(|f| json!({
                "id": f.id,
                "provider": f.provider,
                "key_id": f.key_id,
                "hint": f.hint(),
                "source": f.source,
            })).collect::<Vec<_>>(),
            "tools": tools.iter().map(|k| k.id()).collect::<Vec<_>>(),
        }))
        .into_response(),
        Err(e) => error(AdminError::Internal, e),
    }
}

#[derive(Deserialize)]
struct Adopt {
    ids: Vec<String>,
}

/// `POST /admin/api/init` with `{"ids": [...]}`: stores the picked keys in the OS keychain and
/// adds them (with their providers) to the config file, which is created if needed.
pub async fn adopt(State(s): State<Arc<AppState>>, body: bytes::Bytes) -> Response {
    let req: Adopt =
        match crate::manage::json_body(&body, r#"{"ids": ["env:OPENAI_API_KEY", ...]}"#) {
            Ok(r) => r,
            Err(r) => return r,
        };
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let found = fluxgate_core::setup::first_run::discover(|k| std::env::var(k).ok(), &homes);
    let unknown: Vec<&String> = req
        .ids
        .iter()
        .filter(|id| !found.iter().any(|f| &f.id == *id))
        .collect();
    if !unknown.is_empty() {
        return error(
            AdminError::NotFound,
            format!("no key found at {unknown:?} any more; reload the page"),
        );
    }
    let picked: Vec<_> = found
        .into_iter()
        .filter(|f| req.ids.contains(&f.id))
        .collect();
    if picked.is_empty() {
        return error(AdminError::InvalidRequest, "pick at least one key");
    }
    let store = match s.gateway.executor.secrets().keychain() {
        Ok(k) => k,
        Err(e) => {
            return error(
                AdminError::KeychainUnavailable,
                format!("{e}; nothing was stored"),
            )
        }
    };
    let kept = crate::manage::edit(&s, move |doc| {
        fluxgate_core::setup::first_run::adopt(&picked, store.as_ref(), doc).map_err(|e| match e {
            fluxgate_core::setup::first_run::AdoptError::Config(c) => c,
            other => fluxgate_core::config::edit::EditError::Invalid(other.to_string()),
        })
    })
    .await;
    match kept {
        Ok(accounts) => (StatusCode::CREATED, Json(json!({"stored": accounts}))).into_response(),
        Err(r) => r,
    }
}
