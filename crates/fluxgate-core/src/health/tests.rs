use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::*;
use crate::config::from_environment;

fn config_with_keys(n: usize) -> Config {
    let env = move |name: &str| {
        let idx = if name == "OPENAI_API_KEY" {
            Some(1)
        } else {
            name.strip_prefix("OPENAI_API_KEY_")
                .and_then(|s| s.parse::<usize>().ok())
        };
        idx.filter(|i| *i <= n).map(|_| "sk-x".to_string())
    };
    from_environment(env)
}

fn fail(class: ErrorClass, hint: Option<u64>) -> Failure {
    Failure {
        class,
        kind: FailureKind::Status(500),
        status: Some(500),
        message: "x".into(),
        retry_hint: hint.map(Duration::from_secs),
    }
}

#[derive(Debug, Clone)]
enum Step {
    Advance(u64),
    Use(usize, Option<ErrorClass>, Option<u64>),
}

fn step() -> impl Strategy<Value = Step> {
    let class = prop_oneof![
        Just(None),
        Just(Some(ErrorClass::AuthFailed)),
        Just(Some(ErrorClass::QuotaExhausted)),
        Just(Some(ErrorClass::RateLimited)),
        Just(Some(ErrorClass::UpstreamUnavailable)),
        Just(Some(ErrorClass::RequestInvalid)),
    ];
    prop_oneof![
        (0u64..7200).prop_map(Step::Advance),
        (0usize..3, class, proptest::option::of(0u64..100_000))
            .prop_map(|(k, c, h)| Step::Use(k, c, h)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// On a paused clock: a key is never usable while cooling, every cooldown ends, and a
    /// success resets the failure count.
    #[test]
    fn keys_are_never_used_while_cooling(steps in proptest::collection::vec(step(), 1..80)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().expect("runtime");
        rt.block_on(async move {
            let config = config_with_keys(3);
            let reg = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
            reg.sync(&config);
            let accounts: Vec<String> = config.providers[0].keys.iter().map(|k| config.providers[0].account(&k.id)).collect();
            for s in steps {
                match s {
                    Step::Advance(secs) => {
                        tokio::time::advance(Duration::from_secs(secs)).await;
                        reg.tick(Instant::now());
                    }
                    Step::Use(k, outcome, hint) => {
                        let account = &accounts[k];
                        // The executor only uses usable keys; mirror that.
                        if !reg.usable(account, Instant::now()) {
                            continue;
                        }
                        match outcome {
                            None => {
                                reg.report_success(account);
                                let st = reg.state(account).expect("state");
                                prop_assert_eq!(st.consecutive_failures, 0);
                                prop_assert_eq!(st.status, KeyStatus::Healthy);
                            }
                            Some(c) => reg.report_failure(account, &fail(c, hint)),
                        }
                    }
                }
                let now = Instant::now();
                for account in &accounts {
                    let st = reg.state(account).expect("state");
                    if st.status == KeyStatus::Cooling && st.until.is_some_and(|u| u > now) {
                        prop_assert!(!reg.usable(account, now), "cooling key usable");
                    }
                    if matches!(st.status, KeyStatus::Cooling | KeyStatus::Dead | KeyStatus::Probing) {
                        let until = st.until.expect("every cooldown has an end");
                        prop_assert!(until <= now + hints::MAX_HINT + Duration::from_secs(6 * 3600));
                    }
                }
            }
            // Every cooldown ends: after a long enough wait, nothing is cooling any more.
            tokio::time::advance(Duration::from_secs(2 * 86_400)).await;
            reg.tick(Instant::now());
            for account in &accounts {
                let st = reg.state(account).expect("state");
                prop_assert!(st.status != KeyStatus::Cooling, "cooldown never ended: {:?}", st);
            }
            Ok(())
        })?;
    }
}

struct CountingRetester {
    calls: AtomicU32,
    pass_after: u32,
}

impl Retester for CountingRetester {
    fn retest(
        &self,
        _account: String,
        _reason: Option<ErrorClass>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Failure>> + Send>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let pass = n >= self.pass_after;
        Box::pin(async move {
            if pass {
                Ok(())
            } else {
                Err(fail(ErrorClass::AuthFailed, None))
            }
        })
    }
}

/// A simulated day against a dead key makes exactly the retests the schedule says:
/// 5 min, then ×3 per step up to 6 h -> at 300, 1200, 3900, 12000, 33600, 55200, 76800 s.
#[tokio::test(start_paused = true)]
async fn a_day_against_a_dead_key_makes_seven_retests() {
    let config = config_with_keys(1);
    let reg = Arc::new(HealthRegistry::new(
        Policy::default(),
        EventBus::new(),
        Arc::new(NoPersistence),
    ));
    reg.sync(&config);
    let account = config.providers[0].account("env");
    reg.report_failure(&account, &fail(ErrorClass::AuthFailed, None));
    let retester = Arc::new(CountingRetester {
        calls: AtomicU32::new(0),
        pass_after: u32::MAX,
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_scheduler(reg.clone(), retester.clone(), async move {
        let _ = stop_rx.await;
    }));
    for _ in 0..(24 * 60) {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let _ = stop_tx.send(());
    task.await.expect("scheduler");
    assert_eq!(retester.calls.load(Ordering::SeqCst), 7);
    assert_eq!(reg.state(&account).expect("state").status, KeyStatus::Dead);
}

#[tokio::test(start_paused = true)]
async fn a_passing_retest_revives_and_publishes() {
    let config = config_with_keys(1);
    let events = EventBus::new();
    let mut rx = events.subscribe();
    let reg = Arc::new(HealthRegistry::new(
        Policy::default(),
        events,
        Arc::new(NoPersistence),
    ));
    reg.sync(&config);
    let account = config.providers[0].account("env");
    reg.report_failure(&account, &fail(ErrorClass::AuthFailed, None));
    let retester = Arc::new(CountingRetester {
        calls: AtomicU32::new(0),
        pass_after: 1,
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_scheduler(reg.clone(), retester.clone(), async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_secs(301)).await;
    let _ = stop_tx.send(());
    task.await.expect("scheduler");
    assert_eq!(
        reg.state(&account).expect("state").status,
        KeyStatus::Healthy
    );
    let mut seen = Vec::new();
    while let Ok(Event::KeyStateChanged { from, to, .. }) = rx.try_recv() {
        seen.push((from, to));
    }
    assert_eq!(
        seen,
        [
            (KeyStatus::Healthy, KeyStatus::Dead),
            (KeyStatus::Dead, KeyStatus::Healthy)
        ]
    );
}

#[derive(Default)]
struct MemBackend(parking_lot::Mutex<Vec<PersistedState>>);

impl HealthBackend for MemBackend {
    fn load_all(&self) -> Vec<PersistedState> {
        self.0.lock().clone()
    }
    fn save(&self, state: PersistedState) {
        let mut v = self.0.lock();
        v.retain(|s| s.account != state.account);
        v.push(state);
    }
}

#[tokio::test]
async fn state_survives_a_new_registry() {
    let config = config_with_keys(2);
    let backend = Arc::new(MemBackend::default());
    let reg = HealthRegistry::new(Policy::default(), EventBus::new(), backend.clone());
    reg.sync(&config);
    reg.report_failure("openai/env", &fail(ErrorClass::AuthFailed, None));
    reg.report_failure("openai/env-2", &fail(ErrorClass::RateLimited, Some(60)));
    let reg2 = HealthRegistry::new(Policy::default(), EventBus::new(), backend);
    reg2.sync(&config);
    let dead = reg2.state("openai/env").expect("state");
    assert_eq!(dead.status, KeyStatus::Dead);
    let cooling = reg2.state("openai/env-2").expect("state");
    assert_eq!(cooling.status, KeyStatus::Cooling);
    let left = cooling
        .until
        .expect("until")
        .saturating_duration_since(Instant::now());
    assert!(
        left > Duration::from_secs(55) && left <= Duration::from_secs(60),
        "{left:?}"
    );
    assert!(!reg2.usable("openai/env-2", Instant::now()));
}

#[tokio::test(start_paused = true)]
async fn a_usable_key_shows_no_reason_only_when_it_last_failed() {
    let config = config_with_keys(1);
    let reg = HealthRegistry::new(Policy::default(), EventBus::new(), Arc::new(NoPersistence));
    reg.sync(&config);
    let shown = |reg: &HealthRegistry| reg.list(&config).remove(0);
    assert_eq!(shown(&reg).last_error_ms, None, "never failed");
    reg.report_failure("openai/env", &fail(ErrorClass::RateLimited, Some(60)));
    let cooling = shown(&reg);
    assert_eq!(cooling.status, KeyStatus::Cooling);
    assert_eq!(cooling.reason, Some(ErrorClass::RateLimited));
    let failed_at = cooling.last_error_ms.expect("when it failed");
    // Its cooldown over (not yet ticked) and revived: usable, so no reason, but the failure
    // stays as history.
    tokio::time::advance(Duration::from_secs(61)).await;
    let over = shown(&reg);
    assert_eq!((over.status, over.reason), (KeyStatus::Healthy, None));
    reg.revive("openai/env");
    let revived = shown(&reg);
    assert_eq!((revived.status, revived.reason), (KeyStatus::Healthy, None));
    assert_eq!(revived.last_message.as_deref(), Some("x"));
    assert_eq!(revived.last_error_ms, Some(failed_at));
}
