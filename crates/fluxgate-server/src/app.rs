//! The axum application: its layers and routes (the state every handler reaches is in `state.rs`).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use fluxgate_core::formats::Endpoint;

use crate::security;
use crate::state::AppState;
use crate::{admin, console, manage, proxy, tool_setup};

/// Builds the application. Layers, outermost first (each runs before the next is reached):
///
/// 0. `panics::catch_panic` — a handler that panics (a bug) answers a typed 500 instead of
///    dropping the connection.
/// 1. `security::guard` — header count and size limits (431), then the `Host` must be this server's loopback address and port, and an
///    `Origin` (or `Sec-Fetch-Site: cross-site`) must be the console's own; otherwise 403
///    before any routing or body read. Applies to every route, open ones included.
/// 2. Routing. Open routes (no token): `HEAD /`, `GET /`, `GET /healthz`, the console's pages
///    and `/admin/login`, and `POST /admin/api/hello` (the CLI's challenge; it reveals nothing).
/// 3. The `ClientName` extractor on the proxy routes (before the body is read): a client token in `Authorization: Bearer`,
///    `x-api-key` or `x-goog-api-key`, else 401 in the client's dialect.
///    `security::admin_auth` on `/admin/api/*` and `/metrics`: the admin token as a bearer
///    token, or a console session — its cookie *and* its secret in `x-fluxgate-session`
///    (state-changing requests must also carry the console's own `Origin`) — else 401. `/admin/`, its files and `/admin/login` are open:
///    they hold no data.
/// 4. The body limit (`limits.max_body_mb`): larger bodies, chunked ones too, get 413 with
///    bounded memory. Every body must also arrive within `limits.body_timeout` of its
///    headers (`deadline::TimedBody`, wrapped around each request in `serve`): else 408
///    `request_timeout`. Admin API bodies are read whole by `deadline::admin_body` after the
///    token check (2 MiB at most), so their handlers' extractors never wait on a client.
/// 5. Handlers: `proxy` turns the request into an executor call; `admin` reads state.
pub fn app(state: Arc<AppState>) -> Router {
    let max_body = state.gateway.config().max_body_bytes;
    let proxy_routes = Router::new()
        .route(
            "/v1/chat/completions",
            proxy::endpoint(Endpoint::ChatCompletions),
        )
        .route(
            "/v1/responses",
            proxy::endpoint(Endpoint::Responses).get(crate::responses_ws::upgrade),
        )
        .route("/v1/messages", proxy::endpoint(Endpoint::Messages))
        .route(
            "/v1/messages/count_tokens",
            proxy::endpoint(Endpoint::CountTokens),
        )
        .route("/v1/embeddings", proxy::endpoint(Endpoint::Embeddings))
        .route("/v1beta/models/{*rest}", post(proxy::gemini))
        .route("/v1/models", get(proxy::models))
        .layer(DefaultBodyLimit::max(max_body));
    let admin_routes = Router::new()
        .route("/admin/api/keys", get(admin::keys))
        .route("/admin/api/keys/history", get(admin::key_history))
        .route("/admin/api/keychain", get(manage::keychain_status))
        .route(
            "/admin/api/keys/{provider}/{key}/revive",
            post(admin::revive),
        )
        .route(
            "/admin/api/keys/{provider}/{key}/balance",
            post(admin::check_balance),
        )
        .route(
            "/admin/api/tokens",
            get(admin::tokens).post(admin::create_token),
        )
        .route("/admin/api/tokens/{name}", delete(admin::revoke_token))
        .route("/admin/api/requests", get(crate::inspect::requests))
        .route("/admin/api/requests/export", get(crate::inspect::export))
        .route("/admin/api/requests/{id}", get(crate::inspect::request))
        .route("/metrics", get(admin::metrics))
        .route(
            "/admin/api/explain",
            get(admin::explain).post(admin::explain_request),
        )
        .route(
            "/admin/api/budgets",
            get(admin::budgets).put(manage::put_budget),
        )
        .route("/admin/api/events", get(crate::events::events))
        .route("/admin/api/usage", get(admin::usage))
        .route("/admin/api/usage/series", get(admin::usage_series))
        .route("/admin/api/config", get(manage::config))
        .route("/admin/api/providers", post(manage::add_provider))
        .route(
            "/admin/api/providers/{provider}",
            patch(manage::patch_provider).delete(manage::delete_provider),
        )
        .route(
            "/admin/api/keys/{provider}/{key}",
            put(manage::set_key).delete(manage::delete_key),
        )
        .route(
            "/admin/api/keys/{provider}/{key}/test",
            post(manage::test_key),
        )
        .route(
            "/admin/api/keys/{provider}/{key}/disable",
            post(manage::disable_key),
        )
        .route(
            "/admin/api/keys/{provider}/{key}/enable",
            post(manage::enable_key),
        )
        .route(
            "/admin/api/routes/{name}",
            put(manage::put_route).delete(manage::delete_route),
        )
        .route(
            "/admin/api/routes/{name}/preview",
            post(manage::preview_route),
        )
        .route("/admin/api/pause", post(manage::pause))
        .route("/admin/api/resume", post(manage::resume))
        .route("/admin/api/setup", post(manage::setup))
        .route("/admin/api/setup/tools", get(tool_setup::list))
        .route(
            "/admin/api/init",
            get(tool_setup::found).post(tool_setup::adopt),
        )
        .route("/admin/api/setup/tools/{tool}", post(tool_setup::apply))
        .route("/admin/api/setup/tools/{tool}/undo", post(tool_setup::undo))
        .route("/admin/api/console/login", post(console::login_url))
        .route("/admin/api/logout", post(console::logout))
        .route_layer(middleware::from_fn(crate::deadline::admin_body))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            security::admin_auth,
        ));
    Router::new()
        .route("/", get(proxy::root).head(proxy::root))
        .route("/healthz", get(proxy::healthz))
        .route("/admin", get(console::redirect))
        .route("/admin/", get(console::index))
        .route("/admin/login", get(console::login))
        .route("/admin/api/hello", post(console::hello))
        .route("/admin/{*path}", get(console::asset))
        .merge(proxy_routes)
        .merge(admin_routes)
        .fallback(proxy::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(middleware::from_fn(crate::panics::catch_panic))
        .with_state(state)
}
