//! Jitter measurement, per packet and per frame.
//!
//! [`InterarrivalJitter`] is RFC 3550 §6.4.1's estimator: the smoothed absolute change in
//! transit time between consecutive packets (gain 1/16). It is what RTP tools report and
//! what the receiver report carries.
//!
//! [`FrameDelayEstimator`] models the delay variation of whole frames, as libwebrtc's
//! jitter estimator does: the variation `d` between two frames (arrival-time delta minus
//! capture-time delta) is explained by a term proportional to the frame-size difference
//! (a big frame takes longer to cross the link) plus noise:
//! `d = θ₀·ΔS + θ₁ + n`. A two-state Kalman filter tracks `θ`, and the noise variance is
//! tracked separately. The jitter estimate — the extra delay a buffer needs to absorb both
//! a worst-case-size frame and the noise — is `θ₀·(S_max − S_avg) + 2.33·σ_n`
//! (2.33 standard deviations ≈ the 99th percentile of a normal distribution, the constant
//! libwebrtc uses).

/// RFC 3550 interarrival jitter, in microseconds.
#[derive(Clone, Debug, Default)]
pub struct InterarrivalJitter {
    last_transit_us: Option<i64>,
    jitter_us: f64,
}

impl InterarrivalJitter {
    /// Feeds one packet: its arrival on the receiver clock and its media timestamp on the
    /// sender clock (both µs). Clock offset cancels out of the difference.
    pub fn on_packet(&mut self, arrival_us: u64, media_us: u64) {
        let transit = arrival_us as i64 - media_us as i64;
        if let Some(last) = self.last_transit_us {
            let d = (transit - last).unsigned_abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit_us = Some(transit);
    }

    /// Current estimate, µs.
    pub fn jitter_us(&self) -> f64 {
        self.jitter_us
    }
}

/// Kalman-filtered frame delay variation; see the module docs.
#[derive(Clone, Debug)]
pub struct FrameDelayEstimator {
    theta: [f64; 2],
    p: [[f64; 2]; 2],
    var_noise: f64,
    avg_noise: f64,
    avg_size: f64,
    max_size: f64,
    prev: Option<(u64, u64, f64)>,
    samples: u64,
}

impl Default for FrameDelayEstimator {
    fn default() -> Self {
        Self {
            // Start from "1 µs per byte" ≈ an 8 Mbit/s link: a sensible prior that the
            // filter leaves quickly once frames of different sizes arrive.
            theta: [1.0 / 12.5, 0.0],
            p: [[1e-2, 0.0], [0.0, 1e4]],
            var_noise: 4e6,
            avg_noise: 0.0,
            avg_size: 0.0,
            max_size: 0.0,
            prev: None,
            samples: 0,
        }
    }
}

/// Process noise: how fast the link's per-byte cost and offset may drift between frames.
const Q: [f64; 2] = [2.5e-10, 1e-1];
/// Variations beyond this many standard deviations are clamped (a stall is not noise).
const MAX_DEVIATIONS: f64 = 15.0;
/// Multiplier on the noise standard deviation (≈ 99th percentile).
const NOISE_STD_DEVS: f64 = 2.33;

impl FrameDelayEstimator {
    /// Feeds one completed frame: arrival (receiver µs), capture (sender µs), size in bytes.
    pub fn on_frame(&mut self, arrival_us: u64, capture_us: u64, size: usize) {
        let size = size as f64;
        self.avg_size = if self.samples == 0 {
            size
        } else {
            0.97 * self.avg_size + 0.03 * size
        };
        self.max_size = (0.9999 * self.max_size).max(size);
        let Some((pa, pc, ps)) = self.prev.replace((arrival_us, capture_us, size)) else {
            self.samples += 1;
            return;
        };
        self.samples += 1;
        if capture_us <= pc {
            return; // out-of-order capture times carry no delay information
        }
        let d = (arrival_us as f64 - pa as f64) - (capture_us as f64 - pc as f64);
        let ds = size - ps;
        // Predict.
        self.p[0][0] += Q[0];
        self.p[1][1] += Q[1];
        let residual = d - (self.theta[0] * ds + self.theta[1]);
        let sigma = self.var_noise.sqrt();
        let clamped = residual.clamp(-MAX_DEVIATIONS * sigma, MAX_DEVIATIONS * sigma);
        // Noise statistics (exponential, slower while warming up).
        let alpha = if self.samples < 30 { 0.9 } else { 0.99 };
        self.avg_noise = alpha * self.avg_noise + (1.0 - alpha) * clamped;
        let dev = clamped - self.avg_noise;
        self.var_noise = (alpha * self.var_noise + (1.0 - alpha) * dev * dev).max(1.0);
        // Update: observation vector h = [ds, 1].
        let h = [ds, 1.0];
        let ph = [
            self.p[0][0] * h[0] + self.p[0][1],
            self.p[1][0] * h[0] + self.p[1][1],
        ];
        let s = h[0] * ph[0] + ph[1] + self.var_noise;
        if s <= 0.0 || !s.is_finite() {
            return;
        }
        let k = [ph[0] / s, ph[1] / s];
        self.theta[0] += k[0] * clamped;
        self.theta[1] += k[1] * clamped;
        let p = self.p;
        for (i, ki) in k.iter().enumerate() {
            for (j, cell) in self.p[i].iter_mut().enumerate() {
                *cell = p[i][j] - ki * (h[0] * p[0][j] + p[1][j]);
            }
        }
        // A negative per-byte cost is unphysical: clamp rather than let it cancel noise.
        self.theta[0] = self.theta[0].max(0.0);
    }

    /// Extra delay (µs) a playout buffer needs to absorb frame-size and noise variation.
    pub fn jitter_us(&self) -> f64 {
        let size_term = self.theta[0] * (self.max_size - self.avg_size).max(0.0);
        (size_term + NOISE_STD_DEVS * self.var_noise.sqrt()).max(0.0)
    }

    /// Estimated link cost per byte (µs), the filter's θ₀.
    pub fn us_per_byte(&self) -> f64 {
        self.theta[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3550_jitter_of_constant_transit_is_zero_and_of_alternating_transit_converges() {
        let mut j = InterarrivalJitter::default();
        for i in 0..100u64 {
            j.on_packet(1_000 + i * 1_000, i * 1_000);
        }
        assert_eq!(j.jitter_us(), 0.0);
        // Transit alternates by 800 µs: |D| = 800 every packet, so J → 800.
        let mut j = InterarrivalJitter::default();
        for i in 0..400u64 {
            j.on_packet(i * 1_000 + if i % 2 == 0 { 0 } else { 800 }, i * 1_000);
        }
        assert!((j.jitter_us() - 800.0).abs() < 1.0, "{}", j.jitter_us());
    }

    #[test]
    fn frame_estimator_separates_size_cost_from_noise() {
        // 60 fps; the link costs 0.08 µs/byte (100 Mbit/s); sizes alternate 10 kB / 30 kB.
        let mut e = FrameDelayEstimator::default();
        let mut quiet = e.clone();
        let mut noisy_seed = 7u64;
        for i in 0..3000u64 {
            let size = if i % 2 == 0 { 10_000 } else { 30_000 };
            let capture = i * 16_667;
            let arrival = capture + 2_000 + (size as f64 * 0.08) as u64;
            quiet.on_frame(arrival, capture, size);
            noisy_seed = noisy_seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let noise = (noisy_seed >> 33) % 3_000; // 0..3 ms uniform
            e.on_frame(arrival + noise, capture, size);
        }
        assert!(
            (quiet.us_per_byte() - 0.08).abs() < 0.01,
            "{}",
            quiet.us_per_byte()
        );
        // Quiet: only the size term (0.08 × ~20 kB ≈ 1.6 ms) remains.
        assert!(quiet.jitter_us() < 2_500.0, "{}", quiet.jitter_us());
        // Noisy: uniform 0–3 ms noise → frame-to-frame σ ≈ 1.22 ms, estimate ≈ 1.6 + 2.85 ms.
        assert!(
            e.jitter_us() > 3_000.0 && e.jitter_us() < 6_500.0,
            "{}",
            e.jitter_us()
        );
    }

    #[test]
    fn a_single_stall_does_not_explode_the_estimate() {
        let mut e = FrameDelayEstimator::default();
        for i in 0..600u64 {
            let capture = i * 16_667;
            let stall = if i == 300 { 80_000 } else { 0 };
            e.on_frame(capture + 2_000 + stall + (i % 3) * 300, capture, 15_000);
        }
        assert!(e.jitter_us() < 20_000.0, "{}", e.jitter_us());
    }
}
