//! The admin API (admin token): key health, revive, recent requests, explain. Keys are
//! write-only everywhere; nothing here returns key material.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::formats::translate::main_endpoint;
use fluxgate_core::formats::{Dialect, Endpoint};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;

pub async fn keys(State(s): State<Arc<AppState>>) -> Response {
    Json(json!({"keys": s.gateway.health.list(&s.gateway.config())})).into_response()
}

pub async fn revive(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    let account = format!("{provider}/{key}");
    if s.gateway.health.state(&account).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"type": "not_found", "message": format!("no key {account}")}})),
        )
            .into_response();
    }
    s.gateway.executor.secrets().invalidate(&account);
    s.gateway.health.revive(&account);
    Json(json!({"revived": account})).into_response()
}

#[derive(Deserialize)]
pub struct Limit {
    limit: Option<usize>,
}

pub async fn requests(State(s): State<Arc<AppState>>, Query(q): Query<Limit>) -> Response {
    match s.gateway.log.recent(q.limit.unwrap_or(100).min(1000)) {
        Ok(rows) => Json(json!({"requests": rows})).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"type": "internal_error", "message": e.to_string()}})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
pub struct ExplainQuery {
    model: String,
    dialect: Option<String>,
}

pub async fn explain(State(s): State<Arc<AppState>>, Query(q): Query<ExplainQuery>) -> Response {
    let endpoint = match q.dialect.as_deref().map(Dialect::parse) {
        None => Endpoint::ChatCompletions,
        Some(Some(d)) => main_endpoint(d),
        Some(None) => {
            return (StatusCode::BAD_REQUEST, Json(json!({"error": {"type": "invalid_request", "message": "dialect must be openai, responses, anthropic or gemini"}}))).into_response()
        }
    };
    let router = s.gateway.executor.router();
    match router.plan(endpoint, &q.model, &s.gateway.health, tokio::time::Instant::now()) {
        Ok(plan) => Json(json!({
            "route": plan.route,
            "resolution": plan.resolution,
            "strategy": plan.strategy,
            "degraded": plan.degraded,
            "candidates": plan.candidates.iter().map(|c| json!({"provider": c.provider, "key_id": c.key_id, "model": c.model, "upstream_endpoint": c.upstream_endpoint})).collect::<Vec<_>>(),
            "skipped": plan.skipped,
        }))
        .into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({"error": {"type": "no_route", "message": e.to_string()}}))).into_response(),
    }
}
