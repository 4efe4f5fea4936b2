//! Team mode: several Fluxgates share one key pool. With `[state] redis` set, key health and
//! the local `rpm`/`tpm`/`rpd` windows live in Redis:
//!
//! - [`SharedHealth`] is the [`crate::health::HealthBackend`]: every transition is written to
//!   the `fluxgate:health` hash (the truth) and announced on the `fluxgate:health:changed`
//!   channel, which every replica applies to its in-process registry (so the request path reads
//!   a local view, never the network). Retests are claimed per key, so one replica runs each.
//! - [`SharedWindows`] is the [`crate::routing::RateWindows`]: `acquire` checks and takes room
//!   in one Lua script, so the fleet admits exactly the limit; planning reads a local view.
//!
//! When Redis cannot be reached, each replica falls back to its own in-process state, says so
//! once in the log and in `/metrics` (`fluxgate_shared_state_up`), and re-joins the fleet's state
//! when Redis answers again (it writes what changed meanwhile, then reads everything back).
//! Secrets never go to Redis: only key ids, states and counters do.
//!
//! With `[store] postgres` set, [`FleetLedger`] writes every replica's request records and
//! spend to PostgreSQL, so usage on any replica shows the whole fleet (see `ledger/`), and
//! [`SharedTokens`] keeps the fleet's client tokens there, so a token made on one replica
//! works on all and a revoked one stops everywhere within a second (see `tokens.rs`), and
//! [`SharedConversations`] keeps emulated Responses conversations there, so a turn can land on
//! any replica (see `conversations.rs`); console sessions ([`SharedSessions`]) and budget
//! holds (`budgets.rs`) live there too.
//! Secrets never go to PostgreSQL either.

mod budgets;
mod conversations;
mod engine;
mod health;
mod leases;
mod ledger;
mod pg_thread;
mod sessions;
mod tls;
mod tokens;
mod windows;

pub use conversations::SharedConversations;
pub use engine::{Engine, EngineStatus, TeamError};
pub use health::SharedHealth;
pub use leases::{LEASE_IDLE, LEASE_SHARE};
pub use ledger::{FleetLedger, LedgerError, QUEUE_BOUND, SCHEMA_VERSION};
pub use sessions::SharedSessions;
pub use tokens::SharedTokens;
pub use windows::SharedWindows;

use std::sync::Arc;

use crate::config::SharedEngines;
use crate::health::HealthBackend;
use crate::secrets::Secrets;

/// A replica's connection to the fleet's shared state, and the backends built on it.
#[derive(Clone)]
pub struct Team {
    pub engine: Engine,
    pub health: Arc<SharedHealth>,
    pub windows: Arc<SharedWindows>,
}

impl Team {
    /// Connects to the configured engines (`None` when none is configured). An engine that
    /// cannot be reached now is an error: a replica that silently started alone would admit
    /// the whole limit again and retest keys the fleet already knows are out.
    pub async fn connect(
        engines: &SharedEngines,
        secrets: &Secrets,
        local: Arc<dyn HealthBackend>,
    ) -> Result<Option<Team>, TeamError> {
        let Some(target) = &engines.redis else {
            return Ok(None);
        };
        let engine = Engine::connect(target, secrets).await?;
        let health = SharedHealth::open(&engine, local).await?;
        let windows = Arc::new(SharedWindows::new(engine.clone()));
        Ok(Some(Team {
            engine,
            health,
            windows,
        }))
    }
}

/// `fluxgate_shared_state_up` per configured engine (and the ledger's queue) for `/metrics`;
/// empty when no engine is configured.
pub fn render_metrics(team: Option<&Team>, ledger: Option<&FleetLedger>) -> String {
    let mut out = String::new();
    if team.is_none() && ledger.is_none() {
        return out;
    }
    out.push_str(
        "# HELP fluxgate_shared_state_up Whether a shared engine answers (0: this replica runs on its own state).\n\
         # TYPE fluxgate_shared_state_up gauge\n",
    );
    if let Some(t) = team {
        out.push_str(&format!(
            "fluxgate_shared_state_up{{engine=\"redis\"}} {}\n",
            u8::from(t.engine.status().is_up())
        ));
    }
    if let Some(l) = ledger {
        out.push_str(&format!(
            "fluxgate_shared_state_up{{engine=\"postgres\"}} {}\n",
            u8::from(l.status().is_up())
        ));
        out.push_str(&l.render_metrics());
    }
    out
}

/// A random id for this replica's start (16 hex digits).
pub(crate) fn random_replica_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| format!("{:02x}", rng.random::<u8>()))
        .collect()
}
