//! Fluxgate's HTTP server: the proxy endpoints, a small admin API and the security layers,
//! on one port. All routing, failover and health logic lives in `fluxgate-core`; this crate
//! turns HTTP into [`fluxgate_core::exec::ProxyRequest`]s and answers back in the client's
//! dialect.

pub mod admin;
pub mod admin_error;
pub mod app;
pub mod console;
pub mod deadline;
pub mod events;
pub mod inspect;
pub mod launch;
pub mod logging;
pub mod manage;
pub mod panics;
pub mod proxy;
pub mod respond;
pub mod responses_ws;
pub mod security;
pub mod serve;
pub mod state;
pub mod tool_setup;

pub use app::app;
pub use serve::{serve, serve_with, ServeHandle};
pub use state::AppState;
