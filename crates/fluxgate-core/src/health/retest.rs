//! The retest scheduler: ends cooldowns on time and retests dead and probing keys, one test at
//! a time per key, on the schedule the state machine sets. The test itself (a models list, or
//! a one-token completion) is the provider's business, reached through [`Retester`].

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::{ErrorClass, Failure, HealthRegistry};

/// Runs the cheap test that decides whether a key is back.
pub trait Retester: Send + Sync + 'static {
    fn retest(
        &self,
        account: String,
        reason: Option<ErrorClass>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>>;
}

/// How long a replica that lost the claim on a retest waits before it looks at the key again.
const CLAIM_RECHECK: Duration = Duration::from_secs(5);

/// Runs until `shutdown` resolves.
pub async fn run_scheduler(
    registry: Arc<HealthRegistry>,
    retester: Arc<dyn Retester>,
    shutdown: impl Future<Output = ()>,
) {
    let running: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    tokio::pin!(shutdown);
    loop {
        let now = Instant::now();
        let next = registry.tick(now);
        for (account, reason) in registry.due_retests(now) {
            if !running.lock().insert(account.clone()) {
                continue;
            }
            let registry = registry.clone();
            let retester = retester.clone();
            let running = running.clone();
            tokio::spawn(async move {
                if registry.claim_retest(&account).await {
                    let result = retester.retest(account.clone(), reason).await;
                    match result {
                        Ok(()) => registry.report_success(&account),
                        Err(f) => registry.report_failure(&account, &f),
                    }
                } else {
                    // Another replica runs this retest; its result arrives through the shared
                    // state. Look again once its claim could have lapsed.
                    tokio::time::sleep(CLAIM_RECHECK).await;
                }
                running.lock().remove(&account);
                registry.changed.notify_one();
            });
        }
        // Sleep until the next scheduled change, but wake at least once a minute.
        let wake = next
            .filter(|n| *n > now)
            .unwrap_or(now + Duration::from_secs(60))
            .min(now + Duration::from_secs(60));
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep_until(wake) => {}
            _ = registry.changed() => {}
        }
    }
}
