//! The accept loop: HTTP/1.1 with bounded headers and a header-read timeout (slowloris), and
//! a graceful shutdown that lets in-flight requests and streams finish for up to
//! [`DRAIN_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fluxgate_core::gateway::Gateway;
use fluxgate_core::tokens::AdminToken;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tower::ServiceExt;

use crate::app::app;
use crate::security::AllowList;
use crate::state::AppState;

/// How long in-flight requests may run on after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// The drain time: [`DRAIN_TIMEOUT`], or `FLUXGATE_DRAIN_SECS` (tests).
fn drain_timeout() -> Duration {
    std::env::var("FLUXGATE_DRAIN_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DRAIN_TIMEOUT)
}

/// How often the config file is checked for edits.
pub const CONFIG_POLL: Duration = Duration::from_secs(1);
/// At most this many request headers ...
pub const MAX_HEADERS: usize = 100;
/// ... in at most this many bytes (larger: 431).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// A running server.
pub struct ServeHandle {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    scheduler: JoinHandle<()>,
}

impl ServeHandle {
    /// Stops accepting, drains in-flight requests (up to [`DRAIN_TIMEOUT`]), stops retests
    /// and writes queued records.
    pub async fn shutdown(self) {
        self.state.shutting_down.store(true, Ordering::SeqCst);
        self.state.identity.withdraw(&self.state.data_dir);
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let _ = self.scheduler.await;
        self.state.gateway.close();
    }
}

/// Serves `gateway` on `listener` until [`ServeHandle::shutdown`]. The admin API edits the
/// config's own file (none when it came from the environment).
pub fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    admin: AdminToken,
) -> std::io::Result<ServeHandle> {
    let file = match gateway.config().source.clone() {
        fluxgate_core::config::ConfigSource::File(p) => Some(p),
        fluxgate_core::config::ConfigSource::Environment => None,
    };
    serve_with(gateway, listener, admin, file)
}

/// As [`serve`], editing `config_file` (which may not exist yet: the first edit creates it,
/// keeping providers detected from the environment).
pub fn serve_with(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    admin: AdminToken,
    config_file: Option<std::path::PathBuf>,
) -> std::io::Result<ServeHandle> {
    let addr = listener.local_addr()?;
    let allow_lan = gateway.config().allow_lan;
    // Read once: a new header timeout, like a new listen address, needs a restart.
    let header_timeout = gateway.config().header_timeout;
    let body_timeout = gateway.config().body_timeout;
    let data_dir = admin
        .path()
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let identity = fluxgate_core::runtime::ServerIdentity::new();
    if let Err(e) = identity.announce(&data_dir, addr) {
        tracing::warn!(error = %e, "cannot write runtime.json; `fluxgate console` will not find this server");
    }
    let state = Arc::new(AppState {
        gateway: gateway.clone(),
        admin,
        allow: AllowList::for_port(addr.port(), allow_lan),
        shutting_down: AtomicBool::new(false),
        public_addr: addr,
        sessions: gateway.sessions.clone(),
        identity,
        data_dir,
    });
    let (stop, mut stopped) = watch::channel(false);
    let mut stopped_hooks = stop.subscribe();
    gateway.spawn_webhooks(async move {
        let _ = stopped_hooks.wait_for(|s| *s).await;
    });
    let mut stopped_sched = stop.subscribe();
    let scheduler = gateway.spawn_scheduler(async move {
        let _ = stopped_sched.wait_for(|s| *s).await;
    });
    if let Some(path) = config_file {
        gateway.set_config_file(path.clone());
        let mut stopped_watch = stop.subscribe();
        gateway.spawn_config_watch(path, CONFIG_POLL, async move {
            let _ = stopped_watch.wait_for(|s| *s).await;
        });
    }
    let router = app(state.clone());
    let cutter = gateway.executor.clone();
    let drain = drain_timeout();
    let task = tokio::spawn(async move {
        // Each connection task holds a sender: when the last has ended, `drained` resolves.
        // Stopping tells every connection to finish its request and close (an upgraded one,
        // a Responses WebSocket, is the executor's to end when the drain time is up).
        let (alive, mut all_ended) = tokio::sync::mpsc::channel::<()>(1);
        let (closing, close) = tokio::sync::watch::channel(false);
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .max_headers(MAX_HEADERS)
            .max_header_size(MAX_HEADER_BYTES);
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stopped.wait_for(|s| *s) => break,
            };
            let (stream, _peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let svc = TowerToHyperService::new(router.clone().map_request(
                move |req: http::Request<hyper::body::Incoming>| {
                    req.map(|b| crate::deadline::TimedBody::wrap(b, body_timeout))
                },
            ));
            // With upgrades: `GET /v1/responses` may become a WebSocket (Codex).
            let conn = builder
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            let alive = alive.clone();
            let mut close = close.clone();
            tokio::spawn(async move {
                let _alive = alive;
                tokio::pin!(conn);
                let ended = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = async { while !*close.borrow_and_update() && close.changed().await.is_ok() {} } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        let _ = closing.send(true);
        drop(alive);
        let drained = async move {
            let _ = all_ended.recv().await;
        };
        tokio::pin!(drained);
        if tokio::time::timeout(drain, &mut drained).await.is_err() {
            tracing::warn!(
                "some requests were still running after {} s; ending their streams with an error event",
                drain.as_secs()
            );
            cutter.cut_streams();
            // Long enough for the error events to reach the clients.
            let _ = tokio::time::timeout(Duration::from_secs(2), drained).await;
        }
    });
    Ok(ServeHandle {
        addr,
        state,
        stop,
        task,
        scheduler,
    })
}
