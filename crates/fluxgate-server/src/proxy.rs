//! The proxy endpoints. Each reads the model and stream flag from the body, hands the request
//! to the executor, and answers in the client's dialect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Json;
use fluxgate_core::exec::{conversation_key, headers::upstream_headers, ProxyRequest};
use fluxgate_core::formats::body::read_head;
use fluxgate_core::formats::errors::ErrorCode;
use fluxgate_core::formats::translate::estimate;
use fluxgate_core::formats::{Dialect, Endpoint};
use serde_json::json;

use crate::respond::{error_response, proxy_error, proxy_response};
use crate::security::ClientName;
use crate::state::AppState;

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(1);

pub(crate) fn request_id() -> String {
    let n = REQUEST_SEQ.fetch_add(1, Ordering::Relaxed);
    let t = fluxgate_core::clock::now_ms();
    format!("fg-{t:x}-{n}")
}

/// The model and stream mode when the URL names them (Gemini).
pub(crate) struct PathModel {
    model: String,
    stream: bool,
}

async fn run(
    state: Arc<AppState>,
    endpoint: Endpoint,
    client: ClientName,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    path_model: Option<PathModel>,
) -> Response {
    let dialect = endpoint.dialect();
    let body = match body {
        Ok(b) => b,
        Err(rej) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error_response(
                dialect,
                ErrorCode::PayloadTooLarge,
                "the request body is larger than `limits.max_body_mb` allows",
                None,
            );
        }
        Err(rej) if crate::deadline::timed_out(&rej) => {
            return error_response(
                dialect,
                ErrorCode::RequestTimeout,
                &format!(
                    "the request body did not arrive within {} s (`limits.body_timeout`)",
                    state.gateway.config().body_timeout.as_secs()
                ),
                None,
            )
        }
        Err(rej) => {
            return error_response(
                dialect,
                ErrorCode::InvalidRequest,
                &format!("cannot read the request body: {rej}"),
                None,
            )
        }
    };
    if state.shutting_down.load(Ordering::Relaxed) {
        return error_response(
            dialect,
            ErrorCode::ShuttingDown,
            "Fluxgate is shutting down; retry in a moment",
            Some(1),
        );
    }
    if state.gateway.paused.load(Ordering::Relaxed) {
        return error_response(
            dialect,
            ErrorCode::Paused,
            "routing is paused in Fluxgate; resume it from the tray menu or the console (Settings)",
            None,
        );
    }
    let req = match request(endpoint, client, &headers, body, path_model) {
        Ok(r) => r,
        Err((code, message)) => return error_response(dialect, code, &message, None),
    };
    let request_id = req.request_id.clone();
    // Every line logged for this request, streams included, carries its id.
    let span = tracing::info_span!("request", request_id = %request_id);
    let mut resp =
        match tracing::Instrument::instrument(Box::pin(state.gateway.executor.execute(req)), span)
            .await
        {
            Ok(r) => proxy_response(r),
            Err(e) => proxy_error(dialect, e),
        };
    if let Ok(v) = axum::http::HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-fluxgate-request-id", v);
    }
    resp
}

/// The executor's request for a client's `body` to `endpoint`: the model and stream mode from
/// the body (or the URL), or what is wrong with it.
pub(crate) fn request(
    endpoint: Endpoint,
    client: ClientName,
    headers: &HeaderMap,
    body: Bytes,
    path_model: Option<PathModel>,
) -> Result<ProxyRequest, (ErrorCode, String)> {
    let (model, model_span, stream, conversation, tools, max_output) = match path_model {
        Some(p) => (p.model, None, p.stream, None, false, None),
        None => {
            let head = read_head(&body).map_err(|e| (ErrorCode::InvalidRequest, e.to_string()))?;
            let Some(model) = head.model.filter(|m| !m.is_empty()) else {
                return Err((
                    ErrorCode::InvalidRequest,
                    "the request names no `model`".into(),
                ));
            };
            (
                model,
                head.model_span,
                head.stream && endpoint.streams(),
                head.conversation,
                head.tools,
                head.max_output,
            )
        }
    };
    Ok(ProxyRequest {
        endpoint,
        dialect: endpoint.dialect(),
        model,
        model_span,
        stream,
        body,
        headers: upstream_headers(headers),
        client: Some(client.0.name),
        limits: client.0.limits,
        request_id: request_id(),
        conversation: conversation_key(headers, conversation),
        tools,
        max_output,
    })
}

/// The `POST` route for one proxied endpoint.
pub fn endpoint(endpoint: Endpoint) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(s): State<Arc<AppState>>,
              c: ClientName,
              h: HeaderMap,
              b: Result<Bytes, BytesRejection>| run(s, endpoint, c, h, b, None),
    )
}

/// `POST /v1beta/models/{model}:{action}`: Gemini's `generateContent`,
/// `streamGenerateContent` (answered as SSE, as with `alt=sse`) and `countTokens` (a local
/// estimate).
pub async fn gemini(
    State(s): State<Arc<AppState>>,
    Path(rest): Path<String>,
    c: ClientName,
    h: HeaderMap,
    b: Result<Bytes, BytesRejection>,
) -> Response {
    let Some((model, action)) = rest.rsplit_once(':') else {
        return error_response(
            Dialect::Gemini,
            ErrorCode::NotFound,
            "expected /v1beta/models/{model}:generateContent or :streamGenerateContent",
            None,
        );
    };
    let model = model.to_string();
    match action {
        "generateContent" | "streamGenerateContent" => {
            let path = PathModel {
                model,
                stream: action == "streamGenerateContent",
            };
            run(s, Endpoint::GenerateContent, c, h, b, Some(path)).await
        }
        "countTokens" => {
            let Ok(body) = b else {
                return error_response(
                    Dialect::Gemini,
                    ErrorCode::InvalidRequest,
                    "cannot read the request body",
                    None,
                );
            };
            // countTokens wraps the request in `generateContentRequest`, or sends `contents`.
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let inner = v.get("generateContentRequest").cloned().unwrap_or(v);
            let bytes = serde_json::to_vec(&inner).unwrap_or_default();
            match estimate::count(Dialect::Gemini, &bytes) {
                Ok(n) => {
                    let mut r = Json(json!({"totalTokens": n})).into_response();
                    r.headers_mut().insert(
                        "x-fluxgate-estimate",
                        axum::http::HeaderValue::from_static("local"),
                    );
                    r
                }
                Err(e) => error_response(
                    Dialect::Gemini,
                    ErrorCode::InvalidRequest,
                    &e.to_string(),
                    None,
                ),
            }
        }
        other => error_response(
            Dialect::Gemini,
            ErrorCode::NotFound,
            &format!("Fluxgate does not serve the Gemini method `{other}`"),
            None,
        ),
    }
}

/// Routes and provider models, in a shape both the OpenAI and the Anthropic SDKs accept, with
/// what the catalogue knows: capabilities, context window, output cap and prices (USD per
/// million tokens). A route reports what every one of its targets can do (the smallest
/// window, the capabilities they share), so a client never assumes more than it may get.
pub async fn models(State(s): State<Arc<AppState>>, client: ClientName) -> Response {
    // A token held to some routes or providers sees only what it may use.
    let limits = client.0.limits.as_deref();
    let route_ok = |name: &str| limits.is_none_or(|l| l.permits_route(name));
    let provider_ok = |name: &str| limits.is_none_or(|l| l.permits_provider(name));
    use fluxgate_core::catalogue::ModelInfo;
    let router = s.gateway.executor.router();
    let config = router.config().clone();
    let mut seen = std::collections::HashSet::new();
    let mut data = Vec::new();
    let describe = |infos: &[Option<std::sync::Arc<ModelInfo>>]| -> serde_json::Value {
        let known: Vec<&ModelInfo> = infos.iter().filter_map(|i| i.as_deref()).collect();
        if known.is_empty() || known.len() < infos.len() {
            return json!({});
        }
        let caps = known
            .iter()
            .map(|i| i.capabilities)
            .reduce(|a, b| a.intersect(b))
            .unwrap_or_default();
        let first = known[0];
        json!({
            "capabilities": caps,
            "context_window": known.iter().map(|i| i.context_window).min(),
            "max_output_tokens": known.iter().map(|i| i.max_output).min(),
            "pricing": first.prices.map(|p| json!({
                "currency": "USD", "unit": "per_million_tokens",
                "input": p.input, "output": p.output, "cached_input": p.cached_input,
            })),
        })
    };
    let mut push = |id: String, owner: &str, extra: serde_json::Value| {
        if seen.insert(id.clone()) {
            let mut v = json!({
                "id": id, "object": "model", "type": "model", "created": 0,
                "created_at": "1970-01-01T00:00:00Z", "owned_by": owner, "display_name": id,
            });
            if let (Some(o), serde_json::Value::Object(e)) = (v.as_object_mut(), extra) {
                o.extend(e);
            }
            data.push(v);
        }
    };
    for r in config.routes.iter().filter(|r| route_ok(&r.name)) {
        let infos: Vec<_> = r
            .targets
            .iter()
            .map(|t| router.model_info(&t.provider, &t.model))
            .collect();
        let mut extra = describe(&infos);
        if let Some(c) = r.capability {
            extra["route_capability"] = json!(c);
        }
        extra["strategy"] = json!(r.strategy);
        push(r.name.clone(), "fluxgate", extra);
    }
    // Models by name reach a provider directly, which a route allow-list does not permit.
    let direct_ok = limits.is_none_or(|l| l.routes.is_empty());
    for p in config
        .providers
        .iter()
        .filter(|p| direct_ok && provider_ok(&p.name))
    {
        for m in &p.models {
            let extra = describe(&[router.model_info(&p.name, m)]);
            push(m.clone(), &p.name, extra.clone());
            push(format!("{}/{m}", p.name), &p.name, extra);
        }
    }
    let first = data
        .first()
        .and_then(|d| d["id"].as_str())
        .map(str::to_string);
    let last = data
        .last()
        .and_then(|d| d["id"].as_str())
        .map(str::to_string);
    Json(json!({"object": "list", "data": data, "has_more": false, "first_id": first, "last_id": last})).into_response()
}

/// `HEAD /` and `GET /`: clients probe these.
pub async fn root() -> Response {
    (StatusCode::OK, "Fluxgate is running\n").into_response()
}

pub async fn healthz(State(s): State<Arc<AppState>>) -> Response {
    let config = s.gateway.config();
    let keys = s.gateway.health.list(&config);
    let healthy = keys
        .iter()
        .filter(|k| k.status == fluxgate_core::health::KeyStatus::Healthy)
        .count();
    Json(json!({"status": "ok", "keys": {"healthy": healthy, "total": keys.len()}})).into_response()
}

pub async fn not_found(uri: axum::http::Uri) -> Response {
    let dialect = crate::respond::dialect_for_path(uri.path());
    error_response(
        dialect,
        ErrorCode::NotFound,
        &format!("Fluxgate has no endpoint {}", uri.path()),
        None,
    )
}
