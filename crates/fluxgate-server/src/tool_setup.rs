//! `/admin/api/setup/tools`: the console's one-click setup of a tool's own config files, the
//! same use case as `fluxgate setup` and the tray menu (`fluxgate_core::setup::tools`): list the
//! tools with whether they already use this Fluxgate, preview a setup as a diff, apply it, undo
//! it. The files are the server user's (`HOME`, `CODEX_HOME`, `XDG_CONFIG_HOME`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::setup::tools::{self, Homes, SetupError};
use fluxgate_core::setup::ClientKind;
use serde::Deserialize;
use serde_json::json;

use crate::admin::error;
use crate::app::AppState;

fn homes() -> Result<Homes, Response> {
    Homes::from_env(|k| std::env::var(k).ok()).ok_or_else(|| {
        error(
            StatusCode::CONFLICT,
            "no_home",
            "this Fluxgate runs without HOME, so it cannot find the tools' config files",
        )
    })
}

fn tool(id: &str) -> Result<ClientKind, Response> {
    ClientKind::parse(id)
        .filter(|k| ClientKind::WRITABLE.contains(k))
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no tool `{id}` to set up (claude-code, codex, gemini-cli, opencode)"),
            )
        })
}

fn setup_error(e: SetupError) -> Response {
    let (status, kind) = match &e {
        SetupError::Malformed { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "tool_config_invalid"),
        SetupError::NothingToUndo(..) => (StatusCode::NOT_FOUND, "nothing_to_undo"),
        SetupError::NotWritable(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        SetupError::Io { .. } | SetupError::Token(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal_error")
        }
    };
    error(status, kind, e)
}

fn base(s: &AppState) -> String {
    format!("http://{}", s.public_addr)
}

/// `GET /admin/api/setup/tools`
pub async fn list(State(s): State<Arc<AppState>>) -> Response {
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return r,
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
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
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
        Err(r) => return r,
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
        Err(r) => return r,
    };
    let base = base(&s);
    let tokens = s.gateway.tokens.clone();
    let data = s.data_dir.clone();
    let models: Vec<String> = s
        .gateway
        .config()
        .routes
        .iter()
        .filter(|r| !r.name.ends_with('*'))
        .map(|r| r.name.clone())
        .collect();
    let done = tokio::task::spawn_blocking(move || {
        tools::set_up(kind, &homes, &data, &tokens, &base, &models, req.dry_run)
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
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
    }
}

/// `POST /admin/api/setup/tools/{tool}/undo`
pub async fn undo(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let kind = match tool(&id) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let homes = match homes() {
        Ok(h) => h,
        Err(r) => return r,
    };
    let tokens = s.gateway.tokens.clone();
    let data = s.data_dir.clone();
    match tokio::task::spawn_blocking(move || tools::revert(kind, &homes, &data, &tokens)).await {
        Ok(Ok(restored)) => Json(json!({"tool": kind.id(), "restored": restored})).into_response(),
        Ok(Err(e)) => setup_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", e),
    }
}
