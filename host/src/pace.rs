//! Pacing for the work loops: a doubling pause for loops that find the database (or a
//! target) away — they wait a little, then longer, never spin, and come back quickly once
//! it answers again — and a bell that wakes every loop waiting for new work.

use std::time::Duration;
use tokio::sync::watch;

/// Rung when new work is committed; every subscriber wakes (a ring while a loop is busy is
/// kept for its next wait).
#[derive(Debug)]
pub struct Bell(watch::Sender<u64>);

impl Default for Bell {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Bell {
    pub fn ring(&self) {
        self.0.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The pause to take now; the one after is twice as long, up to the maximum.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// The work succeeded: the next failure starts from the minimum again.
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ring_wakes_every_subscriber_also_one_that_was_busy() {
        let bell = Bell::default();
        let (mut a, mut b) = (bell.subscribe(), bell.subscribe());
        bell.ring();
        a.changed().await.unwrap();
        b.changed().await.unwrap();
        bell.ring();
        bell.ring();
        b.changed().await.unwrap();
        assert!(
            !b.has_changed().unwrap(),
            "two rings while busy: one wake-up"
        );
    }

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let pauses: Vec<u128> = (0..5).map(|_| b.next_pause().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_pause().as_millis(), 100);
    }
}
