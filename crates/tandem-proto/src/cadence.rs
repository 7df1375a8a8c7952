//! Frame spacing learned from capture times, shared by both endpoints.

use std::time::Duration;

/// Captures further apart than this are a pause, not the frame rate.
const MAX_SPACING: Duration = Duration::from_millis(200);

/// Smoothed spacing between consecutive captures (gain 1/8), starting from a hint.
#[derive(Clone, Copy, Debug)]
pub struct FrameCadence {
    last_capture_us: Option<u64>,
    interval: Duration,
}

impl FrameCadence {
    /// Assumes `hint` until captures show the real spacing.
    pub fn new(hint: Duration) -> Self {
        Self {
            last_capture_us: None,
            interval: hint,
        }
    }

    /// Feeds the next capture time (µs, sender clock). Spacings under 1 ms (duplicates,
    /// reordering) or over [`MAX_SPACING`] (pauses) are ignored.
    pub fn on_capture(&mut self, capture_us: u64) {
        if let Some(prev) = self.last_capture_us.replace(capture_us) {
            let d = Duration::from_micros(capture_us.saturating_sub(prev));
            if d >= Duration::from_millis(1) && d <= MAX_SPACING {
                self.interval = (self.interval * 7 + d) / 8;
            }
        }
    }

    /// Current estimate.
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges_to_the_capture_spacing_and_ignores_pauses() {
        let mut c = FrameCadence::new(Duration::from_micros(16_667));
        for i in 0..100u64 {
            c.on_capture(i * 33_333);
        }
        assert!(
            (c.interval().as_micros() as i64 - 33_333).abs() < 50,
            "{:?}",
            c.interval()
        );
        c.on_capture(99 * 33_333 + 5_000_000);
        assert!(
            (c.interval().as_micros() as i64 - 33_333).abs() < 50,
            "a pause is not a rate"
        );
    }
}
