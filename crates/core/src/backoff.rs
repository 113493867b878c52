//! Exponential backoff between retries, shared by the source's reconnections and the sinks'
//! retried writes: the wait starts at `initial`, doubles after each attempt up to `max`, and
//! starts over after a success.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max,
            next: initial,
            attempt: 0,
        }
    }

    /// Counts a failed attempt; returns its number (from 1) and how long to wait before the next.
    pub fn next_delay(&mut self) -> (u32, Duration) {
        self.attempt += 1;
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        (self.attempt, delay)
    }

    /// Failed attempts counted since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempt = 0;
    }
}

/// `delay` spread by up to ±20%, so that many retriers do not retry in step.
pub fn jitter(delay: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    // A fresh random seed per call, from the standard library's hasher keys.
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(delay.as_nanos() as u64);
    let unit = (h.finish() % 1001) as f64 / 1000.0; // 0.0..=1.0
    delay.mul_f64(0.8 + 0.4 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_maximum_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(500), ms(3000));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(
            delays,
            vec![
                (1, ms(500)),
                (2, ms(1000)),
                (3, ms(2000)),
                (4, ms(3000)),
                (5, ms(3000))
            ]
        );
        b.reset();
        assert_eq!(b.next_delay(), (1, ms(500)));
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        let d = Duration::from_millis(1000);
        for _ in 0..100 {
            let j = jitter(d);
            assert!(
                j >= Duration::from_millis(800) && j <= Duration::from_millis(1200),
                "{j:?}"
            );
        }
    }
}
