//! One timer for a client session's whole life.
//!
//! Between two commands a session waits with a deadline (give its backend
//! connections back after `pool.release_idle_after_ms`, disconnect after
//! `proxy.client_idle_timeout`). A fresh `sleep` per command registers a
//! timer in the runtime's timer wheel for every statement, and a timer
//! earlier than the one the runtime sleeps on wakes another worker thread
//! to re-arm it: on the point-select path that was a measurable share of the
//! CPU. The alarm instead keeps its deadline whenever that deadline is no
//! later than the one wanted; it then rings early, the caller sees the real
//! deadline has not come and sets it again. A busy session touches the
//! timer wheel about once per deadline period instead of once per command.

use std::pin::Pin;
use tokio::time::{Instant, Sleep};

pub struct Alarm {
    sleep: Pin<Box<Sleep>>,
    /// When it rings; `None`: not set (never rings).
    set_for: Option<Instant>,
}

impl Alarm {
    pub fn new() -> Alarm {
        Alarm {
            // Reset before it is ever polled.
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            set_for: None,
        }
    }

    /// Makes the alarm ring no later than `deadline` (never, for `None`).
    /// It may ring earlier, at a deadline set for a previous command.
    pub fn ring_by(&mut self, deadline: Option<Instant>) {
        match deadline {
            None => self.set_for = None,
            Some(at) if self.set_for.is_some_and(|set| set <= at) => {}
            Some(at) => {
                self.sleep.as_mut().reset(at);
                self.set_for = Some(at);
            }
        }
    }

    pub fn is_set(&self) -> bool {
        self.set_for.is_some()
    }

    /// Completes when the alarm rings; it is then no longer set. Only poll
    /// it while [`Alarm::is_set`].
    pub async fn rings(&mut self) {
        self.sleep.as_mut().await;
        self.set_for = None;
    }
}

/// The earlier of two optional deadlines.
pub fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn keeps_an_earlier_deadline_and_rings_at_it() {
        let start = Instant::now();
        let mut alarm = Alarm::new();
        alarm.ring_by(Some(start + Duration::from_secs(1)));
        // A later deadline keeps the earlier one (no timer re-registration).
        alarm.ring_by(Some(start + Duration::from_secs(5)));
        alarm.rings().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert!(!alarm.is_set());
        // Set again, it rings at the new deadline.
        alarm.ring_by(Some(start + Duration::from_secs(5)));
        alarm.rings().await;
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_it_forward() {
        let start = Instant::now();
        let mut alarm = Alarm::new();
        alarm.ring_by(Some(start + Duration::from_secs(10)));
        alarm.ring_by(Some(start + Duration::from_secs(2)));
        alarm.rings().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[test]
    fn no_deadline_unsets_it() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut alarm = Alarm::new();
            alarm.ring_by(Some(Instant::now() + Duration::from_secs(1)));
            assert!(alarm.is_set());
            alarm.ring_by(None);
            assert!(!alarm.is_set());
        });
    }

    #[test]
    fn earliest_of_two_deadlines() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        assert_eq!(earliest(Some(now), Some(later)), Some(now));
        assert_eq!(earliest(None, Some(later)), Some(later));
        assert_eq!(earliest(Some(now), None), Some(now));
        assert_eq!(earliest(None, None), None);
    }
}
