//! The composition root. [`Gateway::open`] assembles the router from a config and a data
//! directory: store, health (restored from SQLite), router, executor, tokens and the retest
//! scheduler; the server and the desktop shell both start Fluxgate through it, so they cannot
//! drift apart. The gateway also owns the use cases the admin API, the tray and the CLI share
//! (`use_cases.rs`: edit the config, test / revive / enable / disable a key, switch a provider,
//! pause), so each is written once.

mod use_cases;

pub use use_cases::{EditConfigError, KeyTest, NoSuchKey};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::events::{Event, EventBus};
use crate::exec::{Executor, HttpRetester};
use crate::formats::translate::TranslatorRegistry;
use crate::health::{run_scheduler, HealthRegistry, Policy};
use crate::recorder::Recorder;
use crate::routing::Router;
use crate::secrets::Secrets;
use crate::sessions::{ConsoleSessions, SessionStore};
use crate::store::{Conversations, TokenRows};
use crate::store::{Store, StoreError};
use crate::team::{
    FleetLedger, LedgerError, SharedConversations, SharedSessions, SharedTokens, Team, TeamError,
};
use crate::tokens::ClientTokens;

/// Why a gateway could not open: its store, or the fleet's shared state.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Team(#[from] TeamError),
    #[error("{0}")]
    Ledger(#[from] LedgerError),
}

/// What a replica shares with the fleet (team mode); empty on a single machine.
#[derive(Default)]
struct Fleet {
    team: Option<Team>,
    ledger: Option<Arc<FleetLedger>>,
    tokens: Option<Arc<dyn TokenRows>>,
    conversations: Option<Arc<dyn Conversations>>,
    sessions: Option<Arc<dyn SessionStore>>,
}

/// A running router's shared parts.
pub struct Gateway {
    pub data_dir: PathBuf,
    pub store: Store,
    pub health: Arc<HealthRegistry>,
    pub executor: Arc<Executor>,
    pub tokens: Arc<ClientTokens>,
    /// Console logins (the fleet's in team mode with `[store] postgres`).
    pub sessions: Arc<dyn SessionStore>,
    pub events: EventBus,
    pub log: Recorder,
    /// The fleet's shared state, when `[state]` names an engine (team mode).
    pub team: Option<Team>,
    /// The fleet's durable ledger, when `[store] postgres` is set (team mode).
    pub ledger: Option<Arc<FleetLedger>>,
    /// Routing paused by the user (tray or console): proxy requests get 503
    /// `routing_paused` and nothing is sent upstream. Not persisted: a restart resumes.
    pub paused: std::sync::atomic::AtomicBool,
    /// The config file edits are written to (it may not exist yet); unset: read-only.
    config_file: std::sync::OnceLock<PathBuf>,
    /// One config edit at a time, whoever asks (admin API, tray).
    edit_lock: tokio::sync::Mutex<()>,
}

impl Gateway {
    /// A gateway on this machine's state alone (`[state]` is not consulted: tests, tools).
    pub fn open(config: Config, data_dir: &Path, secrets: Secrets) -> Result<Gateway, StoreError> {
        let store = Store::open(data_dir)?;
        Self::assemble(config, data_dir, store, secrets, Fleet::default())
    }

    /// A gateway that joins the fleet's shared state when the config's `[state]` names an
    /// engine; an engine configured but unreachable is an error, not a silent solo start.
    pub async fn connect(
        config: Config,
        data_dir: &Path,
        secrets: Secrets,
    ) -> Result<Gateway, OpenError> {
        let store = Store::open(data_dir)?;
        let team = Team::connect(&config.shared, &secrets, Arc::new(store.clone())).await?;
        let mut fleet = Fleet {
            team,
            ..Fleet::default()
        };
        if let Some(target) = &config.shared.postgres {
            let ledger = FleetLedger::connect(target, &secrets).await?;
            let (l, local) = (ledger.clone(), store.clone());
            // The token worker's first read and the adoption of this machine's tokens block;
            // keep them off the runtime.
            let (tokens, sessions) = tokio::task::spawn_blocking(move || {
                Ok::<_, LedgerError>((SharedTokens::open(&l, &local)?, SharedSessions::open(&l)?))
            })
            .await
            .map_err(|e| LedgerError::Query {
                url: target.url.clone(),
                reason: e.to_string(),
            })??;
            fleet.tokens = Some(tokens);
            fleet.sessions = Some(sessions);
            fleet.conversations =
                Some(SharedConversations::open(&ledger, Arc::new(store.clone()))?);
            fleet.ledger = Some(ledger);
        }
        Ok(Self::assemble(config, data_dir, store, secrets, fleet)?)
    }

    fn assemble(
        config: Config,
        data_dir: &Path,
        store: Store,
        secrets: Secrets,
        fleet: Fleet,
    ) -> Result<Gateway, StoreError> {
        let Fleet {
            team,
            ledger,
            tokens,
            conversations,
            sessions,
        } = fleet;
        let events = EventBus::new();
        let backend: Arc<dyn crate::health::HealthBackend> = match &team {
            Some(t) => t.health.clone(),
            None => Arc::new(store.clone()),
        };
        let health = Arc::new(HealthRegistry::new(
            Policy::default(),
            events.clone(),
            backend,
        ));
        health.sync(&config);
        let config = Arc::new(config);
        let router = Arc::new(Router::new(config.clone(), TranslatorRegistry::builtin()));
        let budget_ledger = Arc::new(crate::budgets::Ledger::load(
            &store,
            events.clone(),
            &config.budgets,
        )?);
        let mut log = Recorder::start(&store).with_ledger(budget_ledger);
        if let Some(l) = &ledger {
            log = log.with_fleet(l.clone());
        }
        let mut executor = Executor::new(
            router,
            health.clone(),
            Arc::new(secrets),
            log.clone(),
            events.clone(),
        )
        .with_response_store(conversations.unwrap_or_else(|| Arc::new(store.clone())));
        if let Some(t) = &team {
            executor = executor.with_windows(t.windows.clone());
        }
        if let Some(l) = &ledger {
            executor = executor.with_fleet_budgets(Arc::new(l.clone()));
        }
        let tokens = Arc::new(ClientTokens::new(
            tokens.unwrap_or_else(|| Arc::new(store.clone())),
        ));
        Ok(Gateway {
            data_dir: data_dir.to_path_buf(),
            store,
            health,
            executor: Arc::new(executor),
            tokens,
            sessions: sessions.unwrap_or_else(|| Arc::new(ConsoleSessions::new())),
            events,
            log,
            team,
            ledger,
            paused: std::sync::atomic::AtomicBool::new(false),
            config_file: std::sync::OnceLock::new(),
            edit_lock: tokio::sync::Mutex::new(()),
        })
    }

    pub fn config(&self) -> Arc<Config> {
        self.executor.router().config().clone()
    }

    /// Starts the retest scheduler and the balance checks; they run until `shutdown` resolves.
    pub fn spawn_scheduler(
        &self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        use futures_util::FutureExt;
        let shutdown = shutdown.shared();
        if let Some(t) = &self.team {
            t.health
                .spawn(Arc::downgrade(&self.health), shutdown.clone());
        }
        if let Some(l) = &self.ledger {
            tokio::spawn(l.clone().run(shutdown.clone()));
        }
        tokio::spawn(crate::exec::balance::run_balance_checks(
            Arc::downgrade(&self.executor),
            shutdown.clone(),
        ));
        tokio::spawn(record_key_history(
            self.store.clone(),
            self.events.subscribe(),
            shutdown.clone(),
        ));
        let retester = Arc::new(HttpRetester::new(Arc::downgrade(&self.executor)));
        tokio::spawn(run_scheduler(self.health.clone(), retester, shutdown))
    }

    /// Starts webhook delivery (a no-op queue when the config names none).
    pub fn spawn_webhooks(
        self: &Arc<Self>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::downgrade(self);
        crate::webhooks::spawn(
            move || me.upgrade().map(|g| g.config()),
            &self.events,
            shutdown,
        )
    }

    /// Applies a new config: routes, providers and the set of keys (their health is kept).
    pub fn reload(&self, config: Config) {
        self.health.sync(&config);
        if let Some(l) = self.log.ledger() {
            l.set_budgets(&config.budgets);
        }
        self.executor.set_router(Arc::new(Router::new(
            Arc::new(config),
            TranslatorRegistry::builtin(),
        )));
    }

    /// Applies a config edited through the admin API or the tray (`config::edit`). The
    /// listen address stays (it needs a restart), as with a watched edit.
    pub fn apply(&self, mut config: Config) {
        let running = self.config();
        config.listen = running.listen;
        self.reload(config);
        let path = match &self.config().source {
            crate::config::ConfigSource::File(p) => p.display().to_string(),
            crate::config::ConfigSource::Environment => String::new(),
        };
        self.events.publish(Event::ConfigReloaded { path });
    }

    /// Pauses or resumes routing; publishes [`Event::RoutingPaused`] when it changes.
    pub fn set_paused(&self, paused: bool) {
        use std::sync::atomic::Ordering;
        if self.paused.swap(paused, Ordering::SeqCst) != paused {
            tracing::info!(
                paused,
                "routing {}",
                if paused { "paused" } else { "resumed" }
            );
            self.events.publish(Event::RoutingPaused { paused });
        }
    }

    /// Watches the config file and applies every valid change without a restart. An invalid
    /// edit is logged and published as [`Event::ConfigInvalid`], and the running config stays.
    /// The file is polled (modification time and size, then content): editors that replace
    /// the file by renaming are seen the same way as in-place writes. `listen` changes need a
    /// restart; every other setting applies to the next request.
    pub fn spawn_config_watch(
        self: &Arc<Self>,
        path: PathBuf,
        every: Duration,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let gateway = self.clone();
        let stamp = |p: &Path| {
            std::fs::metadata(p)
                .ok()
                .map(|m| (m.modified().ok(), m.len()))
        };
        // The file as it is now, read before this returns (not when the task first runs): an
        // edit made right after the server says it listens is a change, however late the
        // task starts.
        let mut last_stamp = stamp(&path);
        let mut last_text = std::fs::read_to_string(&path).ok();
        // The `listen` the file itself says (a `--listen` flag may override it): a restart is
        // needed only when the file's own value changes, so a file without `listen` under
        // `serve --listen` does not warn on every reload.
        let mut file_listen = last_text
            .as_deref()
            .and_then(|t| Config::from_toml(t, &path).ok())
            .map(|c| c.listen);
        tokio::spawn(async move {
            tokio::pin!(shutdown);
            loop {
                tokio::select! {
                    _ = &mut shutdown => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let now = stamp(&path);
                if now == last_stamp {
                    continue;
                }
                last_stamp = now;
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                if last_text.as_deref() == Some(text.as_str()) {
                    continue;
                }
                last_text = Some(text.clone());
                let shown = path.display().to_string();
                match Config::from_toml(&text, &path) {
                    Ok(mut config) => {
                        let running = gateway.config();
                        if file_listen.is_some_and(|l| l != config.listen) {
                            tracing::warn!(path = %shown, "`listen` changed; restart Fluxgate to apply it");
                        }
                        file_listen = Some(config.listen);
                        config.listen = running.listen;
                        gateway.reload(config);
                        tracing::info!(path = %shown, "config reloaded");
                        gateway
                            .events
                            .publish(Event::ConfigReloaded { path: shown });
                    }
                    Err(e) => {
                        tracing::error!(path = %shown, error = %e, "the edited config is invalid; keeping the running one");
                        gateway.events.publish(Event::ConfigInvalid {
                            path: shown,
                            error: e.to_string(),
                        });
                    }
                }
            }
        })
    }

    /// Writes queued request records to disk now.
    pub fn flush(&self) {
        self.log.flush();
    }

    /// Writes queued request records and stops the writer (at shutdown).
    pub fn close(&self) {
        self.log.close();
    }
}

/// Writes every key's change of state to the store's history (the dashboard's health strip)
/// until `shutdown`.
async fn record_key_history(
    store: crate::store::Store,
    mut rx: tokio::sync::broadcast::Receiver<Event>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let event = tokio::select! {
            _ = &mut shutdown => return,
            e = rx.recv() => e,
        };
        let change = match event {
            Ok(Event::KeyStateChanged {
                provider,
                key_id,
                to,
                reason,
                ..
            }) => crate::store::KeyChange {
                ts_ms: crate::clock::now_ms(),
                provider,
                key_id,
                status: to,
                reason,
            },
            Ok(_) => continue,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "the key history fell behind the event bus");
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        let store = store.clone();
        let written = tokio::task::spawn_blocking(move || store.record_key_change(&change)).await;
        if let Ok(Err(e)) = written {
            tracing::warn!(error = %e, "cannot record a key's change of state");
        }
    }
}
