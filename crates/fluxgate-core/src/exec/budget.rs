//! A global retry budget: retries may add at most a fixed fraction of load on top of first
//! attempts, so a broken upstream cannot turn every request into `max_attempts` requests.

use parking_lot::Mutex;
use tokio::time::Instant;

/// Deposits `ratio` per first attempt, withdraws 1 per retry, and refills `floor_per_sec`
/// regardless, up to `cap`.
pub struct RetryBudget {
    state: Mutex<(f64, Instant)>,
    ratio: f64,
    floor_per_sec: f64,
    cap: f64,
}

impl RetryBudget {
    pub fn new(ratio: f64, floor_per_sec: f64, cap: f64) -> Self {
        RetryBudget {
            state: Mutex::new((cap, Instant::now())),
            ratio,
            floor_per_sec,
            cap,
        }
    }

    fn refill(&self, s: &mut (f64, Instant)) {
        let now = Instant::now();
        let secs = now.saturating_duration_since(s.1).as_secs_f64();
        s.0 = (s.0 + secs * self.floor_per_sec).min(self.cap);
        s.1 = now;
    }

    /// A first attempt was made.
    pub fn deposit(&self) {
        let mut s = self.state.lock();
        self.refill(&mut s);
        s.0 = (s.0 + self.ratio).min(self.cap);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        let mut s = self.state.lock();
        self.refill(&mut s);
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Default for RetryBudget {
    fn default() -> Self {
        // Up to 50% extra load, at least 10 retries a second, bursts of 100.
        RetryBudget::new(0.5, 10.0, 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_limits_retries_and_refills() {
        let b = RetryBudget::new(0.5, 1.0, 3.0);
        assert!(b.withdraw() && b.withdraw() && b.withdraw());
        assert!(!b.withdraw());
        b.deposit();
        b.deposit();
        assert!(b.withdraw());
        assert!(!b.withdraw());
        tokio::time::advance(std::time::Duration::from_secs(2)).await;
        assert!(b.withdraw() && b.withdraw());
        assert!(!b.withdraw());
    }
}
