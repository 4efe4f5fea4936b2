//! Panic paths (RELIABILITY.md 7): a handler that panics with a key in its message answers a
//! typed 500 through the server's own middleware, and the panic hook logs it with the key
//! blanked (the log is the canary-checked trace log every test binary writes).
#![allow(clippy::expect_used, clippy::print_stdout, clippy::print_stderr)] // test code: a failed assumption fails the test, and a test may report what it measured

mod common;

use axum::routing::get;
use axum::Router;

#[tokio::test]
async fn a_panicking_handler_answers_500_and_logs_no_key() {
    // Starting a harness sets up the trace log file.
    let h = common::Harness::start(
        "[providers.p]\nkind = \"openai\"\nbase_url = \"{FAKE}/v1\"\nkeys = [{ id = \"k\" }]\n",
        &["p/k"],
        &[],
    )
    .await;
    fluxgate_server::panics::install_hook();
    let key = h.keys["k"].clone();
    let boom_key = key.clone();
    let app = Router::new()
        .route(
            "/boom",
            get(move || {
                let k = boom_key.clone();
                async move {
                    if !k.is_empty() {
                        panic!("upstream refused key {k}");
                    }
                    "unreachable"
                }
            }),
        )
        .layer(axum::middleware::from_fn(
            fluxgate_server::panics::catch_panic,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let resp = h
        .http
        .get(format!("http://{addr}/boom"))
        .send()
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(resp.status(), 500);
    let v: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(v["error"]["type"], "internal_error");
    assert!(!v.to_string().contains(&key[..12]));
    let log = std::fs::read_to_string(common::log_file()).expect("log");
    assert!(log.contains("panic (a bug"), "the panic was not logged");
    assert!(
        log.contains("upstream refused key ***"),
        "the panic message lost its context"
    );
    h.assert_no_canary_leak();
}
