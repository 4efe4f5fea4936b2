//! The console at `/admin/`: the embedded `ui/` build (see `build.rs`) with a strict Content-Security-
//! Policy, and the one-time login that turns a code from `fluxgate console` (or the desktop
//! app) into a session: an id in a cookie (`HttpOnly`, `SameSite=Strict`, path `/admin`) and a
//! secret handed to the page in the redirect's fragment (`/admin/#fluxgate-session=…`, never
//! sent to any server), which the console's script keeps in its origin's storage and sends as
//! `x-fluxgate-session`. The files hold no data; everything the console shows comes from the
//! admin API, which needs the admin token or both halves of a session. `POST /admin/api/hello`
//! answers the CLI's challenge (see `fluxgate_core::runtime`).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fluxgate_core::sessions::{SESSION_COOKIE, SESSION_HEADER, SESSION_TTL};
use serde::Deserialize;
use serde_json::json;

use crate::state::AppState;

include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// What the console's pages may load: only this origin, no inline script, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}

fn page_headers(r: &mut Response, cache: &'static str) {
    let h = r.headers_mut();
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let mut r = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        format!("<!doctype html><meta charset=\"utf-8\"><title>{title}</title><h1>{title}</h1><p>{body}</p>\n"),
    )
        .into_response();
    page_headers(&mut r, "no-store");
    r
}

fn file(path: &str) -> Response {
    // build.rs refuses to make a binary without the console, so the table is never empty.
    let Some((_, bytes)) = CONSOLE_FILES.iter().find(|(p, _)| *p == path) else {
        return html(
            StatusCode::NOT_FOUND,
            "Not found",
            "No such page in the console.",
        );
    };
    let mut r = ([(header::CONTENT_TYPE, content_type(path))], bytes.to_vec()).into_response();
    // Vite names built assets by content hash; the page itself must always be fresh.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-store"
    };
    page_headers(&mut r, cache);
    r
}

/// `GET /admin` → `/admin/`
pub async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/admin/")],
    )
        .into_response()
}

/// `GET /admin/`
pub async fn index() -> Response {
    file("index.html")
}

/// `GET /admin/{*path}`
pub async fn asset(Path(path): Path<String>) -> Response {
    if path.is_empty() {
        return file("index.html");
    }
    file(&path)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    code: Option<String>,
}

/// `GET /admin/login?code=...`: a valid, unused code sets the session cookie and opens the
/// console; anything else says how to get a new link.
pub async fn login(State(s): State<Arc<AppState>>, Query(q): Query<LoginQuery>) -> Response {
    let Some(session) = q.code.as_deref().and_then(|c| s.sessions.redeem(c)) else {
        return html(
            StatusCode::UNAUTHORIZED,
            "This login link is used up or expired",
            "Login links work once, within two minutes. Open the console from the Fluxgate tray menu, or run <code>fluxgate console</code> for a new link.",
        );
    };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={}",
        session.id,
        SESSION_TTL.as_secs()
    );
    // The secret rides in the fragment: the browser keeps it for the page and sends it to no
    // server, and `Referrer-Policy: no-referrer` keeps the URL out of any referrer.
    let location = format!("/admin/#fluxgate-session={}", session.secret);
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    page_headers(&mut r, "no-store");
    r
}

/// Whether the request carries both halves of a live console session.
pub fn has_session(state: &AppState, headers: &HeaderMap) -> bool {
    let secret = headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    session_cookie(headers).is_some_and(|id| state.sessions.valid(id, secret))
}

/// The console session presented in the request's cookies, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.trim())
}

/// `POST /admin/api/logout`: ends the console session.
pub async fn logout(State(s): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(session) = session_cookie(&headers) {
        s.sessions.end(session);
    }
    let mut r = Json(json!({"signed_out": true})).into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "fluxgate_console=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// `POST /admin/api/console/login` (admin token): a one-time login URL for a browser.
pub async fn login_url(State(s): State<Arc<AppState>>) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"url": s.login_url(), "expires_in_secs": fluxgate_core::sessions::LOGIN_CODE_TTL.as_secs()})),
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct Hello {
    challenge: String,
}

/// `POST /admin/api/hello` (open): proves to the CLI that this is the server whose
/// `runtime.json` it read, before it sends the admin token.
pub async fn hello(State(s): State<Arc<AppState>>, Json(h): Json<Hello>) -> Response {
    if h.challenge.len() < 32 || h.challenge.len() > 128 {
        return crate::admin::error(
            crate::admin::AdminError::InvalidRequest,
            "the challenge must be 32 to 128 characters",
        );
    }
    Json(json!({"proof": s.identity.prove(&h.challenge)})).into_response()
}
