//! The connection to Redis: one client, two multiplexed connections that reconnect by
//! themselves (a patient one for background writes, a quick one for the request path), this
//! replica's id, and whether Redis answered last time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::IntoConnectionInfo;

use crate::config::RedisTarget;
use crate::secrets::{SecretError, Secrets};

/// How long start-up waits for Redis before it says it cannot reach it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The request path waits at most this long for a limit decision before it falls back to
/// this replica's own windows.
const FAST_TIMEOUT: Duration = Duration::from_millis(250);
/// Background writes (health) wait longer; they do not hold a request.
const SLOW_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a replica cannot join the fleet's shared state; each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TeamError {
    #[error("cannot read the Redis password (`state.redis_password = \"{reference}\"`): {source}")]
    Password {
        reference: String,
        source: SecretError,
    },
    #[error("cannot reach Redis at {url}: {reason}. Start it, correct `[state] redis`, or remove `[state]` to run on this machine's state alone")]
    Unreachable { url: String, reason: String },
    #[error("Redis at {url} refused this replica: {reason}. Check `state.redis_username` and `state.redis_password`")]
    Refused { url: String, reason: String },
    #[error("`state.redis = \"{url}\"` is not a URL Redis accepts: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("`state.redis_ca`: {reason}")]
    Ca { reason: String },
    #[error("the certificate of Redis at {url} is not trusted: {reason}. Set `state.redis_ca` to the PEM file of the CA that signed it, or give the server a certificate for this host name")]
    Untrusted { url: String, reason: String },
}

/// Whether the shared engine answered last time; logs each change once.
#[derive(Debug)]
pub struct EngineStatus {
    up: AtomicBool,
    engine: &'static str,
    /// What this replica does while the engine is away, and when it is back.
    down: &'static str,
    back: &'static str,
}

impl EngineStatus {
    pub(crate) fn new(engine: &'static str, down: &'static str, back: &'static str) -> Self {
        EngineStatus {
            up: AtomicBool::new(true),
            engine,
            down,
            back,
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Notes a failure; the first after a success is logged (not every request's).
    pub(crate) fn failed(&self, what: &str, error: &dyn std::fmt::Display) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(engine = self.engine, error = %error, "{} unreachable ({what}); {}", self.engine, self.down);
        }
    }

    /// Notes a success; the first after a failure is logged.
    pub(crate) fn answered(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(
                engine = self.engine,
                "{} reachable again; {}",
                self.engine,
                self.back
            );
        }
    }
}

/// A connected Redis, cheap to clone.
#[derive(Clone)]
pub struct Engine {
    client: redis::Client,
    slow: ConnectionManager,
    fast: ConnectionManager,
    replica: Arc<str>,
    url: Arc<str>,
    status: Arc<EngineStatus>,
}

impl Engine {
    /// Connects and checks that Redis answers (and accepts the credentials).
    pub async fn connect(target: &RedisTarget, secrets: &Secrets) -> Result<Engine, TeamError> {
        let url = target.url.clone();
        let bad_url = |e: redis::RedisError| TeamError::BadUrl {
            url: url.clone(),
            reason: e.to_string(),
        };
        let info = target
            .url
            .as_str()
            .into_connection_info()
            .map_err(bad_url)?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &target.username {
            settings = settings.set_username(user);
        }
        let mut redactor = None;
        if let Some(reference) = &target.password {
            let password = secrets
                .resolve(RedisTarget::KEYCHAIN_ACCOUNT, reference)
                .map_err(|source| TeamError::Password {
                    reference: reference.to_string(),
                    source,
                })?;
            settings = settings.set_password(password.expose());
            redactor = Some(password);
        }
        let info = info.set_redis_settings(settings);
        let client = match &target.ca {
            None => redis::Client::open(info).map_err(bad_url)?,
            Some(ca) => {
                let (pem, _) =
                    super::tls::read_ca(ca).map_err(|reason| TeamError::Ca { reason })?;
                let certs = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(info, certs).map_err(bad_url)?
            }
        };
        // Redis's errors do not quote the password; scrubbed all the same.
        let reason = |e: &dyn std::fmt::Display| {
            let text = e.to_string();
            match &redactor {
                Some(p) => p.redactor().text(&text).into_owned(),
                None => text,
            }
        };
        let manager = |timeout: Duration| {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_max_delay(Duration::from_secs(1));
            let client = client.clone();
            async move { client.get_connection_manager_with_config(config).await }
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let slow = manager(SLOW_TIMEOUT).await?;
            let fast = manager(FAST_TIMEOUT).await?;
            let mut probe = slow.clone();
            redis::cmd("PING").query_async::<()>(&mut probe).await?;
            Ok::<_, redis::RedisError>((slow, fast))
        })
        .await;
        let (slow, fast) = match connected {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if is_auth(&e) => {
                return Err(TeamError::Refused {
                    url,
                    reason: reason(&e),
                })
            }
            Ok(Err(e)) => {
                let reason = reason(&super::tls::with_causes(&e));
                return Err(if super::tls::is_certificate_error(&reason) {
                    TeamError::Untrusted { url, reason }
                } else {
                    TeamError::Unreachable { url, reason }
                });
            }
            Err(_) => {
                return Err(TeamError::Unreachable {
                    url,
                    reason: format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
                })
            }
        };
        let replica = super::random_replica_id();
        tracing::info!(redis = %url, replica = %replica, tls = target.tls(), "joined the fleet's shared state");
        Ok(Engine {
            client,
            slow,
            fast,
            replica: replica.into(),
            url: url.into(),
            status: Arc::new(EngineStatus::new(
                "redis",
                "this replica runs on its own health and limits until Redis answers again",
                "re-joining the fleet's health and limits",
            )),
        })
    }

    /// This replica's id in the shared state (random per start).
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// The URL as configured (it never holds a password).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn status(&self) -> &EngineStatus {
        &self.status
    }

    pub(crate) fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The connection for background work.
    pub(crate) fn slow(&self) -> ConnectionManager {
        self.slow.clone()
    }

    /// The connection for the request path (short timeouts).
    pub(crate) fn fast(&self) -> ConnectionManager {
        self.fast.clone()
    }
}

fn is_auth(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
        || ["WRONGPASS", "NOAUTH", "NOPERM"]
            .iter()
            .any(|w| text.contains(w))
}
