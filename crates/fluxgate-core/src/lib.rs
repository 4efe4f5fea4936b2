//! Fluxgate's router as a library.
//!
//! Everything that decides where a request goes and what happens when an upstream fails lives
//! here: configuration, wire formats, providers, routing, health, the failover executor, the
//! SQLite store and the secret store. This crate never depends on an HTTP server framework or
//! on a GUI toolkit; `fluxgate-server` and the desktop shell wrap it.

pub mod budgets;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod events;
pub mod exec;
pub mod files;
pub mod formats;
#[doc(hidden)]
pub mod fuzzing;
pub mod gateway;
pub mod health;
pub mod i18n;
pub mod metrics;
pub mod net;
pub mod paths;
pub mod providers;
pub mod record;
pub mod recorder;
pub mod routing;
pub mod runtime;
pub mod secrets;
pub mod sessions;
pub mod setup;
pub mod store;
pub mod team;
pub mod tokens;
#[cfg(test)]
mod typescript;
pub mod vocab;
pub mod webhooks;

pub use config::Config;
