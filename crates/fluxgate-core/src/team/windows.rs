//! The local `rpm` / `tpm` / `rpd` windows shared through Redis. One Lua script checks every
//! limit of a key and takes the room in the same step, on Redis's clock, so replicas asking at
//! once cannot both take the last request of a minute. Windows count in buckets (1 s for the
//! minute windows, 1 min for the day), so room comes back up to a bucket later than in the
//! exact in-process windows, never earlier.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::engine::Engine;
use crate::config::KeyLimits;
use crate::routing::{BoxFuture, LimitHit, RateWindows, Signals};

/// After Redis failed, the request path uses this replica's own windows for this long before
/// it asks Redis again (so an outage costs one slow request a second, not every request).
const BREAKER: Duration = Duration::from_secs(1);

/// KEYS: minute hash, minute bucket set, day hash, day bucket set.
/// ARGV: rpm, tpm, rpd (0: no limit), tokens needed, ttl slack.
/// Returns {0, 0} when admitted (and taken), else {1|2|3 (rpm|rpd|tpm), ms until it fits}.
const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm, tpm, rpd, need = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local MINUTE, SECOND, DAY, DAYBUCKET = 60000, 1000, 86400000, 60000

-- Forgets buckets that ended a whole span ago.
local function trim(h, z, span, width)
  local cutoff = now - span - width
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', cutoff)
  for _, b in ipairs(old) do
    local r = tonumber(redis.call('HGET', h, 'r:' .. b) or '0')
    local tk = tonumber(redis.call('HGET', h, 't:' .. b) or '0')
    redis.call('HINCRBY', h, 'r', -r)
    redis.call('HINCRBY', h, 't', -tk)
    redis.call('HDEL', h, 'r:' .. b, 't:' .. b)
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff) end
end

-- Milliseconds until `n` more fit under `limit` in field `f`.
local function room_in(h, z, span, width, f, sum, limit, n)
  for _, b in ipairs(redis.call('ZRANGE', z, 0, -1)) do
    sum = sum - tonumber(redis.call('HGET', h, f .. ':' .. b) or '0')
    if sum + n <= limit then return tonumber(b) + width + span - now end
  end
  return span
end

trim(KEYS[1], KEYS[2], MINUTE, SECOND)
local mr = tonumber(redis.call('HGET', KEYS[1], 'r') or '0')
local mt = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if rpm > 0 and mr + 1 > rpm then
  return {1, room_in(KEYS[1], KEYS[2], MINUTE, SECOND, 'r', mr, rpm, 1)}
end
if rpd > 0 then
  trim(KEYS[3], KEYS[4], DAY, DAYBUCKET)
  local dr = tonumber(redis.call('HGET', KEYS[3], 'r') or '0')
  if dr + 1 > rpd then
    return {2, room_in(KEYS[3], KEYS[4], DAY, DAYBUCKET, 'r', dr, rpd, 1)}
  end
end
-- A request larger than the whole token limit goes through alone, or it never could.
local n = need
if tpm > 0 then
  n = math.min(need, tpm)
  if mt + n > tpm then
    return {3, room_in(KEYS[1], KEYS[2], MINUTE, SECOND, 't', mt, tpm, n)}
  end
end
local b = now - (now % SECOND)
redis.call('HINCRBY', KEYS[1], 'r:' .. b, 1)
redis.call('HINCRBY', KEYS[1], 't:' .. b, n)
redis.call('HINCRBY', KEYS[1], 'r', 1)
redis.call('HINCRBY', KEYS[1], 't', n)
redis.call('ZADD', KEYS[2], b, b)
redis.call('PEXPIRE', KEYS[1], MINUTE + 2 * SECOND)
redis.call('PEXPIRE', KEYS[2], MINUTE + 2 * SECOND)
if rpd > 0 then
  local d = now - (now % DAYBUCKET)
  redis.call('HINCRBY', KEYS[3], 'r:' .. d, 1)
  redis.call('HINCRBY', KEYS[3], 'r', 1)
  redis.call('ZADD', KEYS[4], d, d)
  redis.call('PEXPIRE', KEYS[3], DAY + 2 * DAYBUCKET)
  redis.call('PEXPIRE', KEYS[4], DAY + 2 * DAYBUCKET)
end
return {0, 0}
";

/// KEYS: minute hash, minute bucket set. ARGV: token correction (actual - estimated).
const SETTLE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = now - (now % 1000)
redis.call('HINCRBY', KEYS[1], 't:' .. b, ARGV[1])
redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
redis.call('ZADD', KEYS[2], b, b)
return 1
";

/// The scripts, hashed once (each call sends the hash; Redis loads the source on first use).
static ACQUIRE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ACQUIRE));
static SETTLE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SETTLE));

/// The [`RateWindows`] of a replica in a fleet.
pub struct SharedWindows {
    engine: Engine,
    /// This replica's own windows: the planning view, and the fallback while Redis is away.
    local: Signals,
    /// The fleet's last refusal per key, until it lapses (planning skips the key meanwhile).
    refused: Mutex<HashMap<String, LimitHit>>,
    /// While set and in the future, Redis is not asked.
    breaker: Mutex<Option<Instant>>,
}

fn keys(account: &str) -> [String; 4] {
    // The braces keep a key's four entries in one slot of a Redis Cluster.
    let base = format!("fluxgate:limits:{{{account}}}");
    [
        format!("{base}:minute"),
        format!("{base}:minute:buckets"),
        format!("{base}:day"),
        format!("{base}:day:buckets"),
    ]
}

impl SharedWindows {
    pub fn new(engine: Engine) -> Self {
        SharedWindows {
            engine,
            local: Signals::default(),
            refused: Mutex::new(HashMap::new()),
            breaker: Mutex::new(None),
        }
    }

    async fn acquire_shared(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit> {
        if self
            .breaker
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            return self.local.take(account, limits, tokens, now);
        }
        let [mh, mz, dh, dz] = keys(account);
        let mut con = self.engine.fast();
        let answer: redis::RedisResult<(i64, i64)> = ACQUIRE_SCRIPT
            .key(mh)
            .key(mz)
            .key(dh)
            .key(dz)
            .arg(limits.rpm.unwrap_or(0))
            .arg(limits.tpm.unwrap_or(0))
            .arg(limits.rpd.unwrap_or(0))
            .arg(tokens)
            .invoke_async(&mut con)
            .await;
        match answer {
            Ok((0, _)) => {
                self.engine.status().answered();
                self.refused.lock().remove(account);
                // Mirrored here for planning and for a fallback that starts mid-minute.
                let _ = self.local.take(account, limits, tokens, now);
                Ok(())
            }
            Ok((which, wait_ms)) => {
                self.engine.status().answered();
                let (limit, value) = match which {
                    1 => ("rpm", limits.rpm.map_or(0, u64::from)),
                    2 => ("rpd", limits.rpd.map_or(0, u64::from)),
                    _ => ("tpm", limits.tpm.unwrap_or(0)),
                };
                let hit = LimitHit {
                    limit,
                    value,
                    fits_at: Instant::now() + Duration::from_millis(wait_ms.max(0) as u64),
                };
                self.refused.lock().insert(account.to_string(), hit.clone());
                Err(hit)
            }
            Err(e) => {
                self.engine.status().failed("limits", &e);
                *self.breaker.lock() = Some(Instant::now() + BREAKER);
                self.local.take(account, limits, tokens, now)
            }
        }
    }
}

impl RateWindows for SharedWindows {
    /// The fleet's last refusal while it lasts, else this replica's own windows (a view that
    /// may be optimistic: `acquire` decides).
    fn check(
        &self,
        account: &str,
        limits: &KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> Result<(), LimitHit> {
        if let Some(hit) = self.refused.lock().get(account) {
            if Instant::now() < hit.fits_at {
                return Err(hit.clone());
            }
        }
        self.local.check(account, limits, tokens, now)
    }

    fn acquire<'a>(
        &'a self,
        account: &'a str,
        limits: &'a KeyLimits,
        tokens: u64,
        now: Instant,
    ) -> BoxFuture<'a, Result<(), LimitHit>> {
        Box::pin(self.acquire_shared(account, limits, tokens, now))
    }

    fn settle_tokens(&self, account: &str, estimated: u64, actual: u64, now: Instant) {
        self.local.settle_tokens(account, estimated, actual, now);
        let delta = actual as i64 - estimated as i64;
        if delta == 0
            || self
                .breaker
                .lock()
                .is_some_and(|until| Instant::now() < until)
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let [mh, mz, _, _] = keys(account);
        let engine = self.engine.clone();
        runtime.spawn(async move {
            let mut con = engine.slow();
            let done: redis::RedisResult<i64> = SETTLE_SCRIPT
                .key(mh)
                .key(mz)
                .arg(delta)
                .invoke_async(&mut con)
                .await;
            if let Err(e) = done {
                engine.status().failed("limits", &e);
            }
        });
    }
}
