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

    /// After a success: the next failure waits `initial` again.
    pub fn reset(&mut self) {
        self.next = self.initial;
        self.attempt = 0;
    }
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
}
