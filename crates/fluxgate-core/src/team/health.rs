//! Key health shared through Redis. The `fluxgate:health` hash holds every key's last state
//! (the truth); each save is also published on `fluxgate:health:changed`, and every replica
//! applies the others' messages to its in-process registry. One task per replica writes, reads
//! and re-syncs, so its writes leave in order and a re-sync never overtakes a pending write.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::engine::{Engine, TeamError};
use crate::health::PersistedState;
use crate::health::{BoxFuture, ErrorClass, HealthBackend, HealthRegistry, KeyStatus};

const HASH: &str = "fluxgate:health";
const CHANNEL: &str = "fluxgate:health:changed";
const CLAIM_PREFIX: &str = "fluxgate:retest:";
/// How long a replica holds a key's retest; another replica takes over after it lapses.
const CLAIM_TTL: Duration = Duration::from_secs(60);
/// How long the task waits before it tries Redis again after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// How long a new subscription may take.
const CONNECT: Duration = Duration::from_secs(3);
/// How often the whole hash is read again, whatever the channel said.
const RESYNC: Duration = Duration::from_secs(30);

/// A claim is this replica's when the key is free or already held by it (a replica keeps
/// running the retests of a key it started on).
const CLAIM: &str = r"
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
";

/// Writes and announces states, each only if it is not older than the one stored (two
/// replicas changing one key at once end on the later change everywhere, the hash included).
/// KEYS: the hash. ARGV: the channel, then (account, state, at_ms, message) per state.
const WRITE: &str = r"
local n = 0
for i = 2, #ARGV, 4 do
  local at = tonumber(ARGV[i + 2])
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  local newer = true
  if cur then
    local ok, d = pcall(cjson.decode, cur)
    if ok and type(d) == 'table' and tonumber(d.at_ms or 0) > at then newer = false end
  end
  if newer then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
    redis.call('PUBLISH', ARGV[1], ARGV[i + 3])
    n = n + 1
  end
end
return n
";

static WRITE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(WRITE));

static CLAIM_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(CLAIM));

/// A key's state as Redis holds it: ids, statuses and counters; never a secret.
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    account: String,
    status: String,
    reason: Option<String>,
    last_status: Option<u16>,
    last_message: Option<String>,
    until_ms: Option<i64>,
    consecutive_failures: u32,
    ladder: Option<String>,
    step: u32,
    /// When the transition happened (Unix ms, the writer's clock): the later one wins.
    #[serde(default)]
    at_ms: i64,
}

/// A published change: who made it and the new state.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    origin: String,
    state: Wire,
}

fn encode(p: &PersistedState, at_ms: i64) -> Wire {
    Wire {
        at_ms,
        account: p.account.clone(),
        status: p.status.as_str().to_string(),
        reason: p.reason.map(|r| r.as_str().to_string()),
        last_status: p.last_status,
        last_message: p.last_message.clone(),
        until_ms: p.until_ms,
        consecutive_failures: p.consecutive_failures,
        ladder: p.ladder.map(|r| r.as_str().to_string()),
        step: p.step,
    }
}

fn decode(w: Wire) -> Option<(PersistedState, i64)> {
    let at_ms = w.at_ms;
    Some((
        PersistedState {
            account: w.account,
            status: KeyStatus::parse(&w.status)?,
            reason: w.reason.as_deref().and_then(ErrorClass::parse),
            last_status: w.last_status,
            last_message: w.last_message,
            until_ms: w.until_ms,
            consecutive_failures: w.consecutive_failures,
            ladder: w.ladder.as_deref().and_then(ErrorClass::parse),
            step: w.step,
        },
        at_ms,
    ))
}

/// The [`HealthBackend`] of a replica in a fleet: the local store keeps a copy (a restart
/// without Redis starts from it), Redis is the truth.
pub struct SharedHealth {
    engine: Engine,
    local: Arc<dyn HealthBackend>,
    /// The fleet's states as last read or written here, with when each happened.
    view: Mutex<HashMap<String, (PersistedState, i64)>>,
    outbox: mpsc::UnboundedSender<(PersistedState, i64)>,
    /// How often the whole hash is read again ([`RESYNC`] unless a test shortens it).
    resync_ms: AtomicU64,
    inbox: Mutex<Option<mpsc::UnboundedReceiver<(PersistedState, i64)>>>,
}

impl SharedHealth {
    /// Reads the fleet's states, so the registry's first sync starts from them.
    pub async fn open(
        engine: &Engine,
        local: Arc<dyn HealthBackend>,
    ) -> Result<Arc<SharedHealth>, TeamError> {
        let (outbox, inbox) = mpsc::unbounded_channel();
        let me = SharedHealth {
            engine: engine.clone(),
            local,
            view: Mutex::new(HashMap::new()),
            outbox,
            resync_ms: AtomicU64::new(RESYNC.as_millis() as u64),
            inbox: Mutex::new(Some(inbox)),
        };
        let states = me.read_all().await.map_err(|e| TeamError::Unreachable {
            url: engine.url().to_string(),
            reason: e.to_string(),
        })?;
        me.view
            .lock()
            .extend(states.into_iter().map(|s| (s.0.account.clone(), s)));
        Ok(Arc::new(me))
    }

    /// Reads the whole hash this often instead of every 30 s (takes effect at the next
    /// connection; for tests).
    pub fn resync_every(&self, every: Duration) {
        self.resync_ms
            .store(every.as_millis().max(1) as u64, Ordering::Relaxed);
    }

    async fn read_all(&self) -> redis::RedisResult<Vec<(PersistedState, i64)>> {
        let mut con = self.engine.slow();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(HASH)
            .query_async(&mut con)
            .await?;
        Ok(all
            .into_values()
            .filter_map(|text| serde_json::from_str::<Wire>(&text).ok().and_then(decode))
            .collect())
    }

    /// Reads the whole hash and applies every state to `registry`; `false` (noted as a
    /// failure) when Redis did not answer.
    async fn resync(&self, registry: &Weak<HealthRegistry>) -> bool {
        match self.read_all().await {
            Ok(states) => {
                for s in states {
                    self.apply(registry, s);
                }
                true
            }
            Err(e) => {
                self.engine.status().failed("health", &e);
                false
            }
        }
    }

    /// Starts the task that writes this replica's changes, applies the fleet's, and re-syncs
    /// after an outage. It runs until `shutdown` resolves (once per backend).
    pub fn spawn(
        self: &Arc<Self>,
        registry: Weak<HealthRegistry>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let inbox = self.inbox.lock().take()?;
        let me = self.clone();
        Some(tokio::spawn(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = me.run(registry, inbox) => {}
            }
        }))
    }

    async fn run(
        &self,
        registry: Weak<HealthRegistry>,
        mut inbox: mpsc::UnboundedReceiver<(PersistedState, i64)>,
    ) {
        let mut pending: HashMap<String, (PersistedState, i64)> = HashMap::new();
        let mut first = true;
        loop {
            if !first {
                // Collect what changed here while Redis was away, then try again.
                let wait = tokio::time::sleep(RETRY);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        s = inbox.recv() => match s {
                            Some(s) => { pending.insert(s.0.account.clone(), s); }
                            None => return,
                        },
                    }
                }
            }
            first = false;
            let connect = tokio::time::timeout(CONNECT, self.engine.client().get_async_pubsub());
            let mut pubsub = match connect.await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    self.engine.status().failed("health", &e);
                    continue;
                }
                Err(_) => {
                    self.engine
                        .status()
                        .failed("health", &"no answer to a new connection");
                    continue;
                }
            };
            if let Err(e) = pubsub.subscribe(CHANNEL).await {
                self.engine.status().failed("health", &e);
                continue;
            }
            // Subscribed: nothing published from now on is missed. Write what is pending,
            // then read the truth back (it may have moved while this replica was away).
            if let Err(e) = self.flush(&mut pending).await {
                self.engine.status().failed("health", &e);
                continue;
            }
            if !self.resync(&registry).await {
                continue;
            }
            self.engine.status().answered();
            let mut messages = pubsub.into_on_message();
            // The hash is the truth: read it again now and then, so a subscription that died
            // without closing cannot leave this replica stale for longer than this.
            let every = Duration::from_millis(self.resync_ms.load(Ordering::Relaxed));
            let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = resync.tick() => {
                        if !self.resync(&registry).await {
                            break;
                        }
                    }
                    s = inbox.recv() => {
                        let Some(s) = s else { return };
                        pending.insert(s.0.account.clone(), s);
                        while let Ok(s) = inbox.try_recv() {
                            pending.insert(s.0.account.clone(), s);
                        }
                        if let Err(e) = self.flush(&mut pending).await {
                            self.engine.status().failed("health", &e);
                            break;
                        }
                    }
                    m = messages.next() => {
                        let Some(m) = m else {
                            self.engine.status().failed("health", &"the subscription ended");
                            break;
                        };
                        let Ok(text) = m.get_payload::<String>() else { continue };
                        let Ok(msg) = serde_json::from_str::<Message>(&text) else { continue };
                        if msg.origin != self.engine.replica() {
                            if let Some(s) = decode(msg.state) {
                                self.apply(&registry, s);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Writes and announces the pending states in one script call; they stay pending if it
    /// fails.
    async fn flush(
        &self,
        pending: &mut HashMap<String, (PersistedState, i64)>,
    ) -> redis::RedisResult<()> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut call = WRITE_SCRIPT.key(HASH);
        call.arg(CHANNEL);
        for (s, at_ms) in pending.values() {
            let state = serde_json::to_string(&encode(s, *at_ms)).unwrap_or_default();
            let message = serde_json::to_string(&Message {
                origin: self.engine.replica().to_string(),
                state: encode(s, *at_ms),
            })
            .unwrap_or_default();
            call.arg(&s.account).arg(state).arg(*at_ms).arg(message);
        }
        let mut con = self.engine.slow();
        call.invoke_async::<i64>(&mut con).await?;
        pending.clear();
        Ok(())
    }

    /// Takes another replica's state (unless this replica's own is newer): into the view, the
    /// local copy and the registry.
    fn apply(&self, registry: &Weak<HealthRegistry>, (s, at_ms): (PersistedState, i64)) {
        {
            let mut view = self.view.lock();
            if let Some((known, known_at)) = view.get(&s.account) {
                if *known == s || *known_at > at_ms {
                    return;
                }
            }
            view.insert(s.account.clone(), (s.clone(), at_ms));
        }
        self.local.save(s.clone());
        if let Some(r) = registry.upgrade() {
            r.apply_remote(&s);
        }
    }
}

impl HealthBackend for SharedHealth {
    /// The local copy with the fleet's states over it.
    fn load_all(&self) -> Vec<PersistedState> {
        let mut all: HashMap<String, PersistedState> = self
            .local
            .load_all()
            .into_iter()
            .map(|s| (s.account.clone(), s))
            .collect();
        for (k, (s, _)) in self.view.lock().iter() {
            all.insert(k.clone(), s.clone());
        }
        all.into_values().collect()
    }

    fn save(&self, state: PersistedState) {
        self.local.save(state.clone());
        // `disabled` is this replica's config, not the key's health: not shared.
        if state.status == KeyStatus::Disabled {
            return;
        }
        let at_ms = crate::clock::now_ms();
        self.view
            .lock()
            .insert(state.account.clone(), (state.clone(), at_ms));
        let _ = self.outbox.send((state, at_ms));
    }

    fn claim_retest(&self, account: &str) -> BoxFuture<bool> {
        let engine = self.engine.clone();
        let key = format!("{CLAIM_PREFIX}{account}");
        Box::pin(async move {
            let mut con = engine.slow();
            let claimed: redis::RedisResult<i64> = CLAIM_SCRIPT
                .key(key)
                .arg(engine.replica())
                .arg(CLAIM_TTL.as_millis() as u64)
                .invoke_async(&mut con)
                .await;
            match claimed {
                Ok(n) => {
                    engine.status().answered();
                    n == 1
                }
                Err(e) => {
                    // Alone, this replica retests its keys itself.
                    engine.status().failed("retest claims", &e);
                    true
                }
            }
        })
    }
}
