//! The admin API (admin token): key health, revive, client tokens, recent requests, explain.
//! Keys are write-only everywhere; nothing here returns key material, and a client token is
//! shown once, in the answer that created it. A write is answered 200/201 only after it is
//! committed to SQLite.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use fluxgate_core::budgets::Period;
use fluxgate_core::formats::translate::main_endpoint;
use fluxgate_core::formats::{Dialect, Endpoint};
use fluxgate_core::tokens::TokenError;
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;

pub async fn keys(State(s): State<Arc<AppState>>) -> Response {
    Json(json!({
        "keys": s.gateway.health.list(&s.gateway.config()),
        "proxies": s.gateway.health.proxies(),
    }))
    .into_response()
}

pub async fn revive(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    let key = fluxgate_core::vocab::KeyRef::new(provider, key);
    match s.gateway.revive_key(&key) {
        Ok(()) => Json(json!({"revived": key.account()})).into_response(),
        Err(e) => error(AdminError::NotFound, e),
    }
}

/// Reads a key's balance now (at most once per 30 s per key) and answers with it.
pub async fn check_balance(
    State(s): State<Arc<AppState>>,
    Path((provider, key)): Path<(String, String)>,
) -> Response {
    use fluxgate_core::exec::balance::BalanceError;
    let account = fluxgate_core::vocab::KeyRef::new(provider, key).account();
    match s.gateway.executor.check_balance(&account).await {
        Ok(()) => Json(json!({
            "account": account,
            "balance": s.gateway.health.balance(&account),
        }))
        .into_response(),
        Err(e @ BalanceError::NoKey(_)) => error(AdminError::NotFound, e),
        Err(e @ BalanceError::NoSource(_)) => error(AdminError::InvalidRequest, e),
        Err(e @ BalanceError::TooSoon(_)) => error(AdminError::TooSoon, e),
    }
}

pub(crate) use crate::admin_error::{error, AdminError};

fn token_error(e: TokenError) -> Response {
    match e {
        TokenError::InvalidName => error(AdminError::InvalidRequest, e),
        TokenError::NameTaken(_) => error(AdminError::Conflict, e),
        TokenError::NotFound(_) => error(AdminError::NotFound, e),
        TokenError::Store(fluxgate_core::store::StoreError::Shared(_)) => {
            error(AdminError::SharedStoreUnavailable, e)
        }
        TokenError::Store(_) | TokenError::AdminFile { .. } => error(AdminError::Internal, e),
    }
}

/// `GET /admin/api/tokens`: names and creation times, never the tokens.
pub async fn tokens(State(s): State<Arc<AppState>>) -> Response {
    match s.gateway.tokens.list() {
        Ok(list) => Json(json!({"tokens": list})).into_response(),
        Err(e) => token_error(e),
    }
}

/// `POST /admin/api/tokens` with `{"name": "...", "expires_in_days"?: N, "routes"?: [...],
/// "providers"?: [...]}`: 201 with the token, shown this once. The lists must name routes and
/// providers of the config.
pub async fn create_token(State(s): State<Arc<AppState>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NewToken {
        name: String,
        expires_in_days: Option<u32>,
        #[serde(default)]
        routes: Vec<String>,
        #[serde(default)]
        providers: Vec<String>,
    }
    let req: NewToken = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                AdminError::InvalidRequest,
                format!("expected {{\"name\": \"...\", \"expires_in_days\"?: N, \"routes\"?: [...], \"providers\"?: [...]}}: {e}"),
            )
        }
    };
    let limits = match fluxgate_core::tokens::TokenLimits::asked(
        &s.gateway.config(),
        fluxgate_core::clock::now_ms(),
        req.expires_in_days,
        req.routes,
        req.providers,
    ) {
        Ok(l) => l,
        Err(e) => return error(AdminError::InvalidRequest, e),
    };
    // In team mode this waits on PostgreSQL: off the runtime.
    let (tokens, name) = (s.gateway.tokens.clone(), req.name.clone());
    let made = tokio::task::spawn_blocking(move || tokens.create_with(&name, limits)).await;
    let made = match made {
        Ok(r) => r,
        Err(e) => return error(AdminError::Internal, e),
    };
    match made {
        Ok(token) => (
            StatusCode::CREATED,
            Json(json!({"name": req.name, "token": token})),
        )
            .into_response(),
        Err(e) => token_error(e),
    }
}

/// `DELETE /admin/api/tokens/{name}`.
pub async fn revoke_token(State(s): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    let (tokens, n) = (s.gateway.tokens.clone(), name.clone());
    let revoked = match tokio::task::spawn_blocking(move || tokens.revoke(&n)).await {
        Ok(r) => r,
        Err(e) => return error(AdminError::Internal, e),
    };
    match revoked {
        Ok(()) => Json(json!({"revoked": name})).into_response(),
        Err(e) => token_error(e),
    }
}

/// `GET /metrics` (admin token): Prometheus text format.
pub async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    let keys = s.gateway.health.list(&s.gateway.config());
    // Budgets: in team mode the fleet's spend (as the budget check sees it) when PostgreSQL
    // answers within half a second, else this replica's own.
    let mut budgets = None;
    if let (Some(fleet), Some(ledger)) = (&s.gateway.ledger, s.gateway.log.ledger()) {
        let read = tokio::time::timeout(Duration::from_millis(500), FleetSpend::read(fleet));
        if let Ok(Some(spend)) = read.await {
            budgets = Some(fluxgate_core::budgets::render_used_ratio(
                &ledger.budget_list(),
                |p, sc| spend.spent(p, sc),
            ));
        }
    }
    let budgets = budgets.unwrap_or_else(|| {
        s.gateway
            .log
            .ledger()
            .map(|l| l.render_metrics())
            .unwrap_or_default()
    });
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.gateway.log.metrics().render(&keys)
            + &budgets
            + &fluxgate_core::team::render_metrics(
                s.gateway.team.as_ref(),
                s.gateway.ledger.as_deref(),
            ),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct ExplainQuery {
    model: String,
    dialect: Option<String>,
}

pub async fn explain(State(s): State<Arc<AppState>>, Query(q): Query<ExplainQuery>) -> Response {
    let endpoint = match endpoint_for(q.dialect.as_deref()) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let ex = &s.gateway.executor;
    match ex.plan(&ex.router(), endpoint, &q.model, None, None, None) {
        Ok(plan) => Json(plan.report(endpoint, &ex.health().proxies())).into_response(),
        Err(e) => error(AdminError::NoRoute, e),
    }
}

#[derive(Deserialize)]
pub struct ExplainBody {
    /// The request body as a client would send it.
    request: serde_json::Value,
    /// openai (default), responses, anthropic or gemini.
    dialect: Option<String>,
    /// The model, for Gemini requests (whose model is in the URL) or to override the body's.
    model: Option<String>,
    /// A client token's name, for client budgets.
    client: Option<String>,
}

fn bad_request(message: &str) -> Response {
    error(AdminError::InvalidRequest, message)
}

/// The endpoint a client of `dialect` speaks (default: Chat Completions), for explain and
/// previews.
#[expect(clippy::result_large_err)] // a ready answer, built once on a bad request
pub(crate) fn endpoint_for(dialect: Option<&str>) -> Result<Endpoint, Response> {
    match dialect.map(Dialect::parse) {
        None => Ok(Endpoint::ChatCompletions),
        Some(Some(d)) => Ok(main_endpoint(d)),
        Some(None) => Err(bad_request(
            "dialect must be openai, responses, anthropic or gemini",
        )),
    }
}

/// `POST /admin/api/explain`: the plan for a whole request: capabilities it needs, its
/// estimated size and cost, budgets, limits and health, per candidate.
pub async fn explain_request(
    State(s): State<Arc<AppState>>,
    body: Result<Json<ExplainBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Ok(Json(b)) = body else {
        return bad_request("expected {\"request\": {...the request body...}, \"dialect\": \"openai|responses|anthropic|gemini\", \"model\"?: \"...\", \"client\"?: \"...\"}");
    };
    let endpoint = match endpoint_for(b.dialect.as_deref()) {
        Ok(e) => e,
        Err(r) => return r,
    };
    let raw = Bytes::from(b.request.to_string());
    let head = match fluxgate_core::formats::body::read_head(&raw) {
        Ok(h) => h,
        Err(e) => return bad_request(&e.to_string()),
    };
    let Some(model) = b.model.or(head.model) else {
        return bad_request("the request names no `model` (for Gemini, give `model`)");
    };
    let needs = fluxgate_core::routing::Needs::new(endpoint, raw, head.tools, head.max_output);
    let ex = &s.gateway.executor;
    match ex.plan(
        &ex.router(),
        endpoint,
        &model,
        head.conversation,
        Some(&needs),
        b.client.as_deref(),
    ) {
        Ok(plan) => {
            let mut report = plan.report(endpoint, &ex.health().proxies());
            report["request"] = json!({
                "model": model,
                "needs": needs.caps(),
                "estimated_prompt_tokens": needs.prompt_tokens(),
                "max_output": needs.max_output,
            });
            if plan.candidates.is_empty() {
                if let Some(e) = plan.budget_refusal() {
                    report["refused"] =
                        json!({"type": "budget_exceeded", "message": e.to_string()});
                }
            }
            Json(report).into_response()
        }
        Err(e) => error(AdminError::NoRoute, e),
    }
}

/// `GET /admin/api/budgets`: every budget with its spend today and this month.
pub async fn budgets(State(s): State<Arc<AppState>>) -> Response {
    let Some(ledger) = s.gateway.log.ledger() else {
        return Json(json!({"budgets": [], "source": "local"})).into_response();
    };
    // Team mode: what the whole fleet spent (what the budget check itself uses).
    if let Some(fleet) = &s.gateway.ledger {
        fleet.flush().await;
        if let Some(spend) = FleetSpend::read(fleet).await {
            let list =
                fluxgate_core::budgets::report_with(&ledger.budget_list(), spend.now, |p, s| {
                    spend.spent(p, s)
                });
            return Json(json!({"budgets": list, "source": "fleet"})).into_response();
        }
    }
    Json(json!({"budgets": ledger.report(), "source": "local"})).into_response()
}

/// The fleet's spend today and this month, per scope, from PostgreSQL.
struct FleetSpend {
    now: i64,
    periods: [String; 2],
    rows: Vec<(String, String, fluxgate_core::budgets::Spend)>,
}

impl FleetSpend {
    async fn read(fleet: &fluxgate_core::team::FleetLedger) -> Option<FleetSpend> {
        let now = fluxgate_core::clock::now_ms();
        let periods = fluxgate_core::record::periods(now);
        let rows = fleet.spend_in(&periods).await.ok()?;
        Some(FleetSpend { now, periods, rows })
    }

    fn spent(&self, period: Period, scope: &str) -> fluxgate_core::budgets::Spend {
        let p = &self.periods[period as usize];
        self.rows
            .iter()
            .find(|(rp, rs, _)| rp == p && rs == scope)
            .map(|(_, _, s)| *s)
            .unwrap_or_default()
    }
}

#[derive(Deserialize)]
pub struct UsageQuery {
    hours: Option<u32>,
}

/// `GET /admin/api/usage?hours=24`: requests, errors, tokens, cache hits and spend per route,
/// provider and key over the last hours (from the request log: the fleet's in PostgreSQL when
/// `[store] postgres` is set and answers, `"source": "fleet"`; else this replica's).
pub async fn usage(State(s): State<Arc<AppState>>, Query(q): Query<UsageQuery>) -> Response {
    let hours = q.hours.unwrap_or(24).clamp(1, 24 * 31);
    if let Some(l) = &s.gateway.ledger {
        l.flush().await;
        if let Ok(rows) = l.usage_since(hours).await {
            return Json(json!({"hours": hours, "usage": rows, "source": "fleet"})).into_response();
        }
    }
    s.gateway.flush();
    let lag = record_lag_ms(&s);
    match s.gateway.store.usage_since(hours, lag) {
        Ok(rows) => Json(json!({"hours": hours, "usage": rows, "source": "local"})).into_response(),
        Err(e) => error(AdminError::Internal, e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    span: Option<String>,
    route: Option<String>,
    provider: Option<String>,
    key: Option<String>,
}

/// `GET /admin/api/usage/series?span=1h|24h|7d|30d[&route=R][&provider=P][&key=K]`: requests
/// that succeeded and failed, tokens and spend per bucket (minutes, hours, 6 hours, UTC days),
/// ending now; the fleet's in team mode with `[store] postgres`.
pub async fn usage_series(
    State(s): State<Arc<AppState>>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    let q: SeriesQuery = match serde_urlencoded::from_str(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return bad_request(&format!(
                "{e}; give span (1h, 24h, 7d or 30d) and optionally route, provider, key"
            ))
        }
    };
    let span_text = q.span.as_deref().unwrap_or("24h");
    let Some(span) = fluxgate_core::store::Span::parse(span_text) else {
        return bad_request(&format!(
            "span must be 1h, 24h, 7d or 30d, not {span_text:?}"
        ));
    };
    let (bucket_ms, _) = span.buckets();
    let filter = fluxgate_core::store::SeriesFilter {
        route: q.route,
        provider: q.provider,
        key: q.key,
    };
    if let Some(l) = &s.gateway.ledger {
        l.flush().await;
        if let Ok(b) = l.series(span, &filter).await {
            return Json(
                json!({"span": span, "bucket_ms": bucket_ms, "buckets": b, "source": "fleet"}),
            )
            .into_response();
        }
    }
    s.gateway.flush();
    match s.gateway.store.series(span, &filter, record_lag_ms(&s)) {
        Ok(b) => {
            Json(json!({"span": span, "bucket_ms": bucket_ms, "buckets": b, "source": "local"}))
                .into_response()
        }
        Err(e) => error(AdminError::Internal, e),
    }
}

/// How much later than its start a request can be recorded: the config's total timeout (a
/// stream's pump records it when it ends), with a minute to spare.
fn record_lag_ms(s: &AppState) -> i64 {
    s.gateway.config().timeouts.total.as_millis() as i64 + 60_000
}

/// `GET /admin/api/keys/history?hours=24`: each key's stretches out of rotation (cooling,
/// dead, probing) in the last `hours` (at most 31 days), with the reason, for the dashboard's
/// health strip. This replica's own history.
pub async fn key_history(State(s): State<Arc<AppState>>, Query(q): Query<UsageQuery>) -> Response {
    let hours = q.hours.unwrap_or(24).clamp(1, 24 * 31);
    let now = fluxgate_core::clock::now_ms();
    let since = now - i64::from(hours) * 3_600_000;
    let store = s.gateway.store.clone();
    match tokio::task::spawn_blocking(move || store.key_history(since)).await {
        Ok(Ok(keys)) => {
            Json(json!({"since_ms": since, "now_ms": now, "keys": keys})).into_response()
        }
        Ok(Err(e)) => error(AdminError::Internal, e),
        Err(e) => error(AdminError::Internal, e),
    }
}
