//! A minimum over a sliding time window, in amortised O(1).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Sliding-window minimum of `i64` samples.
///
/// A monotonic deque: a sample evicts every older one that is not smaller, so the front is
/// always the window's minimum and the deque holds only samples that may yet become it.
#[derive(Debug, Clone)]
pub struct WindowedMin {
    window: Duration,
    samples: VecDeque<(Instant, i64)>,
}

impl WindowedMin {
    /// A minimum over the last `window`.
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            samples: VecDeque::new(),
        }
    }

    /// Adds a sample taken at `now`.
    pub fn push(&mut self, now: Instant, value: i64) {
        while self.samples.back().is_some_and(|(_, v)| *v >= value) {
            self.samples.pop_back();
        }
        self.samples.push_back((now, value));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > self.window)
        {
            self.samples.pop_front();
        }
    }

    /// The minimum, if any sample is in the window.
    pub fn min(&self) -> Option<i64> {
        self.samples.front().map(|(_, v)| *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_the_minimum_and_forgets_old_samples() {
        let t0 = Instant::now();
        let mut w = WindowedMin::new(Duration::from_secs(10));
        w.push(t0, 5);
        w.push(t0 + Duration::from_secs(1), 9);
        w.push(t0 + Duration::from_secs(2), 7);
        assert_eq!(w.min(), Some(5));
        w.push(t0 + Duration::from_secs(11), 8);
        assert_eq!(w.min(), Some(7), "5 left the window; 7 is still in it");
        w.push(t0 + Duration::from_secs(13), 9);
        assert_eq!(w.min(), Some(8));
    }
}
