//! Key balances over HTTP: one key's remaining credit read from its vendor's balance
//! endpoint, with the key itself and through the key's proxy, and the schedule that reads
//! each key every `balance_interval` (one key at a time, so a pool of keys never bursts the
//! vendor's rate limit). What the answer means is [`crate::providers::balance`]'s; what it
//! does to the key is [`crate::health`]'s.

use std::sync::Weak;
use std::time::Duration;

use http::HeaderMap;

use super::probe::probe_body;
use super::upstream::Outbound;
use super::Executor;
use crate::health::{BalanceReading, MIN_ON_DEMAND_GAP};
use crate::providers::balance::BalanceApi;
use crate::vocab::KeyRef;

/// How long one balance check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a balance was not read now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BalanceError {
    #[error("no configured key {0}")]
    NoKey(String),
    #[error("the balance of {0}'s keys is not read (Fluxgate reads DeepSeek, OpenRouter and Moonshot balances; set `balance` on the provider)")]
    NoSource(String),
    #[error("{0}'s balance was checked less than {secs} s ago; try again shortly", secs = MIN_ON_DEMAND_GAP.as_secs())]
    TooSoon(String),
}

impl Executor {
    /// Reads `account`'s balance now and records it, unless it was read less than
    /// [`MIN_ON_DEMAND_GAP`] ago. A failed read is recorded too (the last good reading stays).
    pub async fn check_balance(&self, account: &str) -> Result<(), BalanceError> {
        self.known_balance(account)?;
        if !self.health.begin_balance_check(account, MIN_ON_DEMAND_GAP) {
            return Err(BalanceError::TooSoon(account.to_string()));
        }
        let result = self.read_balance(account).await;
        self.health.record_balance(account, result);
        Ok(())
    }

    fn known_balance(&self, account: &str) -> Result<(), BalanceError> {
        let router = self.router();
        let config = router.config();
        let key = KeyRef::parse(account).ok_or_else(|| BalanceError::NoKey(account.into()))?;
        let p = config
            .provider(&key.provider)
            .filter(|p| p.keys.iter().any(|k| k.id == key.key_id))
            .ok_or_else(|| BalanceError::NoKey(account.into()))?;
        if p.balance.is_none() {
            return Err(BalanceError::NoSource(p.name.clone()));
        }
        Ok(())
    }

    /// One read of `account`'s balance (nothing recorded but its proxy's health).
    pub async fn read_balance(&self, account: &str) -> Result<BalanceReading, String> {
        let router = self.router();
        let config = router.config().clone();
        let key = KeyRef::parse(account).ok_or("not a provider/key account")?;
        let p = config
            .provider(&key.provider)
            .ok_or("the provider is no longer configured")?;
        let k = p
            .keys
            .iter()
            .find(|k| k.id == key.key_id)
            .ok_or("the key is no longer configured")?;
        let proxy = k.egress.proxy().map(|e| e.label.clone());
        let result = read_key_balance(self.upstream(), self.secrets(), p, k).await;
        if let Some(proxy) = proxy {
            match &result {
                Err(Unread::Proxy(f)) => self.health.report_proxy(&proxy, Some(f)),
                Err(Unread::Secret(_)) => {}
                _ => self.health.report_proxy(&proxy, None),
            }
        }
        result.map_err(|e| e.to_string())
    }
}

/// Why a balance could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unread {
    #[error("the key cannot be read: {0}")]
    Secret(String),
    /// The key's proxy failed (or its password cannot be read).
    #[error("{}", .0.message)]
    Proxy(crate::health::Failure),
    #[error("{0}")]
    Other(String),
}

/// Reads key `k` of provider `p`'s balance once, through `upstream` and the key's proxy (the
/// CLI's `keys list --balance` and the executor's checks).
pub async fn read_key_balance(
    upstream: &dyn super::upstream::Upstream,
    secrets: &crate::secrets::Secrets,
    p: &crate::config::ProviderConfig,
    k: &crate::config::KeyConfig,
) -> Result<BalanceReading, Unread> {
    let source = p
        .balance
        .ok_or_else(|| Unread::Other("the provider's balance is not read".into()))?
        .source;
    let secret = secrets
        .resolve(&p.account(&k.id), &k.secret)
        .map_err(|e| Unread::Secret(e.to_string()))?;
    let via = super::egress::via(&k.egress, secrets).map_err(Unread::Proxy)?;
    let url = source.url(&p.base_url);
    let mut headers = HeaderMap::new();
    crate::providers::build(p).authorize(&mut headers, &secret);
    let out = Outbound {
        method: http::Method::GET,
        url: url
            .parse()
            .map_err(|_| Unread::Other(format!("`{url}` is not a valid balance URL")))?,
        headers,
        body: bytes::Bytes::new(),
        via,
    };
    let body = probe_body(upstream, out, &secret, CHECK_TIMEOUT)
        .await
        .map_err(|f| {
            if f.kind == crate::health::FailureKind::Proxy {
                Unread::Proxy(f)
            } else {
                Unread::Other(format!("the balance check failed: {}", f.message))
            }
        })?;
    source.read(&body, &p.base_url).map_err(Unread::Other)
}

/// Reads every due key's balance, one at a time, until `shutdown` resolves.
pub async fn run_balance_checks(
    executor: Weak<Executor>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let Some(exec) = executor.upgrade() else {
            return;
        };
        for account in exec.health.balances_due(tokio::time::Instant::now()) {
            if exec.health.begin_balance_check(&account, Duration::ZERO) {
                let result = exec.read_balance(&account).await;
                if let Err(e) = &result {
                    tracing::info!(account = %account, error = %e, "balance check failed");
                }
                exec.health.record_balance(&account, result);
            }
        }
        drop(exec);
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
