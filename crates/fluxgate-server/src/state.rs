//! What every handler can reach: the gateway (which owns the config, the use cases and the
//! background tasks) and what only the HTTP side needs (tokens, the allow list, the console's
//! sessions, the address clients use).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fluxgate_core::gateway::Gateway;
use fluxgate_core::sessions::SessionStore;
use fluxgate_core::tokens::AdminToken;

use crate::security::AllowList;

/// What every handler can reach.
pub struct AppState {
    pub gateway: Arc<Gateway>,
    pub admin: AdminToken,
    pub allow: AllowList,
    /// Set when the server is draining; new proxy requests are refused.
    pub shutting_down: AtomicBool,
    /// The address clients use (the bound one).
    pub public_addr: SocketAddr,
    /// Console login codes and sessions.
    pub sessions: std::sync::Arc<dyn SessionStore>,
    /// What proves this server to the CLI (`DATA_DIR/runtime.json`).
    pub identity: fluxgate_core::runtime::ServerIdentity,
    /// Where `runtime.json` is written.
    pub data_dir: PathBuf,
}

impl AppState {
    /// A one-time URL that signs a browser into the console.
    pub fn login_url(&self) -> String {
        format!(
            "http://{}/admin/login?code={}",
            self.public_addr,
            self.sessions.new_code()
        )
    }
}
