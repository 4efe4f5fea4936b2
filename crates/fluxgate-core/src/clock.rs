//! One clock. Durations, deadlines, cooldowns and rate windows use tokio's monotonic
//! [`Instant`] (which tests pause and advance); what is stored or shown uses wall time in Unix
//! milliseconds from [`now_ms`]. Nothing else in the crate reads the system clock.

use std::time::{SystemTime, UNIX_EPOCH};

pub use tokio::time::Instant;

/// Wall time now (for dates an upstream sends, such as an HTTP-date `Retry-After`).
pub fn wall() -> SystemTime {
    SystemTime::now()
}

/// Wall time now, in Unix milliseconds (0 if the system clock is before 1970).
pub fn now_ms() -> i64 {
    unix_ms(wall())
}

/// A wall time in Unix milliseconds (0 before 1970).
pub fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wall_time_is_unix_milliseconds() {
        assert_eq!(unix_ms(UNIX_EPOCH), 0);
        assert_eq!(
            unix_ms(UNIX_EPOCH + std::time::Duration::from_millis(1_500)),
            1_500
        );
        assert_eq!(unix_ms(UNIX_EPOCH - std::time::Duration::from_secs(1)), 0);
        assert!(now_ms() > 1_700_000_000_000);
    }
}
