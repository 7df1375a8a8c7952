//! Congestion control: a delay-gradient detector at the receiver, a rate controller and a
//! path-capacity estimate at the sender.
//!
//! The receiver sees arrival times, so it runs the trendline filter of Google Congestion
//! Control (draft-ietf-rmcat-gcc; libwebrtc's `TrendlineEstimator`): per frame, the change
//! in one-way delay (arrival delta minus capture delta) is accumulated and smoothed, and a
//! least-squares slope over the last [`TREND_WINDOW`] frames says whether queues are
//! growing. The slope, scaled, is compared against an adaptive threshold; the verdict
//! ([`BandwidthUsage`]) and the slope travel in every receiver report.
//!
//! The sender's [`RateController`] turns reports into a target bitrate: multiplicative
//! decrease to 85 % of the receive rate on overuse, hold while underusing, and a gentle
//! multiplicative increase otherwise; loss above 10 % also cuts the rate
//! (rate × (1 − loss/2)), as in GCC's loss-based controller. Unlike GCC, it also acts on
//! the standing queue the receiver measures: 85 % of the link rate drains a 500 ms
//! drop-tail queue in seconds, which for interactive video is a freeze, so while a queue
//! stands the target drops to the rate that drains it within [`QUEUE_DRAIN_TIME`]. [`CapacityEstimator`] keeps the
//! pacer from bursting faster than the path can drain.
//!
//! # Stalls are not congestion
//!
//! A Wi-Fi radio that leaves its channel (AWDL, once per 1048.576 ms) silences the path for
//! 30–90 ms and then releases what it held in a burst at line rate. Fed to the signals above
//! it reads as congestion three times over: the frames after the silence show a delay that
//! rose and fell (the trendline reports overuse, and the rate is cut to 85 % of a receive
//! rate measured across the silence), a report interval inside the silence sees a standing
//! queue (cut to that same starved receive rate), and the radio's losses inside the window
//! add to the loss signal. Issue 15 measured the result: on 60–100 Mbit/s links, 7–15 % of
//! the bitrate left, with latency that looked better because the frames were tiny.
//!
//! So the receiver recognises stalls ([`crate::stall`]: a silence of ≥ 15 ms ended by a
//! datagram that was *held*, excess transit ≥ 10 ms and ≥ half the silence, lasting until a
//! frame start is back within 5 ms of the pre-stall transit) and keeps them out of all three
//! signals: frames that start inside an episode feed neither the trendline nor the standing
//! queue, and losses found inside one travel in the report as `stall_loss_fraction_q8`, which
//! the sender subtracts before its loss-based cut (FEC still sizes parity from all loss).
//! Congestion keeps every signal: a queue at a bottleneck drains at the bottleneck rate and
//! never leaves a silence, so the detector cannot hide it; and a queue standing behind a
//! stall (a link slower than the encoder) holds the excess high past the episode's cap
//! (silence + as long again + 20 ms), which ends the episode and hands the queue back to the
//! delay and queue signals. The thresholds and their reasons are in [`crate::stall`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::{BandwidthUsage, ReceiverReport};

/// Frames in the trendline regression (libwebrtc uses a window of 20 packet groups).
pub const TREND_WINDOW: usize = 20;
const SMOOTHING: f64 = 0.9;
const THRESHOLD_GAIN: f64 = 4.0;
const K_UP: f64 = 0.0087;
const K_DOWN: f64 = 0.039;
/// Overuse must persist this long before it is reported (GCC: 10 ms).
const OVERUSE_TIME: Duration = Duration::from_millis(10);

/// Receiver-side delay-gradient trendline with an adaptive overuse threshold.
#[derive(Debug)]
pub struct TrendlineEstimator {
    prev: Option<(u64, u64)>,
    first_arrival_us: Option<u64>,
    accumulated_ms: f64,
    smoothed_ms: f64,
    history: VecDeque<(f64, f64)>,
    slope: f64,
    threshold_ms: f64,
    last_update_us: Option<u64>,
    overuse_since: Option<Instant>,
    prev_trend: f64,
    usage: BandwidthUsage,
    deltas: usize,
}

impl Default for TrendlineEstimator {
    fn default() -> Self {
        Self {
            prev: None,
            first_arrival_us: None,
            accumulated_ms: 0.0,
            smoothed_ms: 0.0,
            history: VecDeque::with_capacity(TREND_WINDOW + 1),
            slope: 0.0,
            threshold_ms: 12.5,
            last_update_us: None,
            overuse_since: None,
            prev_trend: 0.0,
            usage: BandwidthUsage::Normal,
            deltas: 0,
        }
    }
}

impl TrendlineEstimator {
    /// Feeds the first packet of a new frame: `arrival_us` on the receiver clock and the
    /// frame's capture time on the sender clock. The first packet leaves the sender right
    /// after capture (the pacer drains each frame within a fraction of the frame interval),
    /// so the capture time stands in for the send time.
    pub fn on_frame_start(&mut self, now: Instant, arrival_us: u64, capture_us: u64) {
        let Some((pa, pc)) = self.prev.replace((arrival_us, capture_us)) else {
            self.first_arrival_us = Some(arrival_us);
            return;
        };
        if capture_us <= pc {
            return;
        }
        let delta_ms = ((arrival_us as f64 - pa as f64) - (capture_us as f64 - pc as f64)) / 1e3;
        self.deltas += 1;
        self.accumulated_ms += delta_ms;
        self.smoothed_ms = SMOOTHING * self.smoothed_ms + (1.0 - SMOOTHING) * self.accumulated_ms;
        let x = (arrival_us - self.first_arrival_us.unwrap_or(arrival_us)) as f64 / 1e3;
        self.history.push_back((x, self.smoothed_ms));
        if self.history.len() > TREND_WINDOW {
            self.history.pop_front();
        }
        if self.history.len() == TREND_WINDOW
            && let Some(s) = linear_slope(&self.history)
        {
            self.slope = s;
        }
        self.detect(now, arrival_us);
    }

    fn detect(&mut self, now: Instant, arrival_us: u64) {
        let trend = self.slope * self.deltas.min(60) as f64 * THRESHOLD_GAIN;
        if trend > self.threshold_ms {
            let since = *self.overuse_since.get_or_insert(now);
            if now.duration_since(since) >= OVERUSE_TIME && trend >= self.prev_trend {
                self.usage = BandwidthUsage::Overusing;
            }
        } else if trend < -self.threshold_ms {
            self.overuse_since = None;
            self.usage = BandwidthUsage::Underusing;
        } else {
            self.overuse_since = None;
            self.usage = BandwidthUsage::Normal;
        }
        self.prev_trend = trend;
        // Adaptive threshold (GCC §5.4): follow the trend slowly, but ignore jumps far
        // beyond it (a Wi-Fi stall must not desensitise the detector for minutes).
        let dt_ms = self.last_update_us.map_or(0.0, |l| {
            (arrival_us.saturating_sub(l) as f64 / 1e3).min(100.0)
        });
        self.last_update_us = Some(arrival_us);
        if (trend.abs() - self.threshold_ms) <= 15.0 {
            let k = if trend.abs() < self.threshold_ms {
                K_DOWN
            } else {
                K_UP
            };
            self.threshold_ms += k * (trend.abs() - self.threshold_ms) * dt_ms;
            self.threshold_ms = self.threshold_ms.clamp(6.0, 600.0);
        }
    }

    /// Current verdict.
    pub fn usage(&self) -> BandwidthUsage {
        self.usage
    }

    /// Slope of queueing delay, µs of delay per second.
    pub fn trend_us_per_s(&self) -> f64 {
        self.slope * 1e6 / 1e3
    }
}

fn linear_slope(points: &VecDeque<(f64, f64)>) -> Option<f64> {
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    (den > 0.0).then(|| num / den)
}

/// A standing queue longer than this is drained by the rate controller.
pub const QUEUE_DRAIN_THRESHOLD: Duration = Duration::from_millis(20);
/// How fast a standing queue is drained.
pub const QUEUE_DRAIN_TIME: Duration = Duration::from_millis(500);

/// Shortest gap between two loss-based decreases.
pub const LOSS_CUT_INTERVAL: Duration = Duration::from_millis(300);

/// Sender-side target bitrate from receiver reports.
#[derive(Debug)]
pub struct RateController {
    target_bps: u64,
    min_bps: u64,
    max_bps: u64,
    last_update: Option<Instant>,
    last_loss_cut: Option<Instant>,
}

impl RateController {
    /// Starts at `start_bps`, never leaving `[min_bps, max_bps]`.
    pub fn new(start_bps: u64, min_bps: u64, max_bps: u64) -> Self {
        let min_bps = min_bps.min(max_bps);
        Self {
            target_bps: start_bps.clamp(min_bps, max_bps),
            min_bps,
            max_bps,
            last_update: None,
            last_loss_cut: None,
        }
    }

    /// Current target.
    pub fn target_bps(&self) -> u64 {
        self.target_bps
    }

    /// Applies one report; `loss` is the loss fraction smoothed over about a second (a
    /// single report interval sees too few packets: one 5-packet burst would read as 12 %).
    /// Returns the new target if it changed.
    pub fn on_report(&mut self, now: Instant, report: &ReceiverReport, loss: f64) -> Option<u64> {
        let dt = self
            .last_update
            .map_or(Duration::ZERO, |l| now.saturating_duration_since(l));
        self.last_update = Some(now);
        let receive_bps = u64::from(report.receive_rate_kbps) * 1000;
        let mut target = self.target_bps as f64;
        match report.usage {
            BandwidthUsage::Overusing if receive_bps > 0 => {
                target = target.min(0.85 * receive_bps as f64);
            }
            BandwidthUsage::Overusing | BandwidthUsage::Underusing => {}
            BandwidthUsage::Normal => {
                // GCC's multiplicative increase, about 8 % per second, but never far ahead of
                // what actually gets through. The cap only limits growth: a sender that
                // pauses (nothing received) must not see its target collapse.
                let grown = target * 1.08f64.powf(dt.as_secs_f64().min(1.0));
                let cap = 1.5 * receive_bps as f64 + 10_000.0;
                target = target.max(grown.min(cap));
            }
        }
        // The smoothed loss stays high for a while after one lossy episode; cutting on every
        // 50 ms report would compound the same loss into a collapse.
        let cut_allowed = self
            .last_loss_cut
            .is_none_or(|t| now.saturating_duration_since(t) >= LOSS_CUT_INTERVAL);
        if loss > 0.10 && cut_allowed {
            target *= 1.0 - 0.5 * loss;
            self.last_loss_cut = Some(now);
        }
        let queue = Duration::from_micros(u64::from(report.queue_delay_us));
        if queue > QUEUE_DRAIN_THRESHOLD && receive_bps > 0 {
            // Sending at r·(1 − q/T) empties a queue of q seconds within T.
            let factor =
                (1.0 - queue.as_secs_f64() / QUEUE_DRAIN_TIME.as_secs_f64()).clamp(0.3, 0.85);
            target = target.min(receive_bps as f64 * factor);
        }
        let new = (target as u64).clamp(self.min_bps, self.max_bps);
        let changed = new != self.target_bps;
        self.target_bps = new;
        changed.then_some(new)
    }
}

/// How fast the pacer may send: the highest recently measured per-frame delivery rate,
/// with headroom so the estimate can grow (a frame paced at rate R can only ever measure
/// ≤ R; sending at up to 1.25 × the best sample probes for more, BBR-style).
#[derive(Debug)]
pub struct CapacityEstimator {
    samples: VecDeque<(Instant, u64)>,
    initial_bps: u64,
    floor_bps: u64,
}

/// How long a delivery-rate sample counts.
const CAPACITY_WINDOW: Duration = Duration::from_secs(2);
/// Probe gain over the best recent sample.
const PROBE_GAIN: f64 = 1.25;

impl CapacityEstimator {
    /// `initial_bps` until the first sample; never below `floor_bps`.
    pub fn new(initial_bps: u64, floor_bps: u64) -> Self {
        Self {
            samples: VecDeque::new(),
            initial_bps,
            floor_bps,
        }
    }

    /// Records a delivery-rate sample from a report (0 means none).
    pub fn on_sample(&mut self, now: Instant, bps: u64) {
        if bps == 0 {
            return;
        }
        self.samples.push_back((now, bps));
        while self.samples.len() > 64 {
            self.samples.pop_front();
        }
    }

    /// Current pacing ceiling in bit/s.
    pub fn estimate_bps(&mut self, now: Instant) -> u64 {
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > CAPACITY_WINDOW)
        {
            self.samples.pop_front();
        }
        match self.samples.iter().map(|(_, b)| *b).max() {
            Some(best) => ((best as f64 * PROBE_GAIN) as u64).max(self.floor_bps),
            None => self.initial_bps.max(self.floor_bps),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_trend(growth_us_per_frame: u64) -> BandwidthUsage {
        let t0 = Instant::now();
        let mut t = TrendlineEstimator::default();
        for i in 0..120u64 {
            let capture = i * 16_667;
            let arrival = capture + 2_000 + i * growth_us_per_frame;
            t.on_frame_start(t0 + Duration::from_micros(arrival), arrival, capture);
        }
        t.usage()
    }

    #[test]
    fn trendline_flags_growing_queues_only() {
        assert_eq!(run_trend(0), BandwidthUsage::Normal);
        assert_eq!(run_trend(1_500), BandwidthUsage::Overusing);
    }

    #[test]
    fn rate_controller_backs_off_on_overuse_and_loss_and_recovers() {
        let t0 = Instant::now();
        let mut c = RateController::new(8_000_000, 200_000, 8_000_000);
        let over = ReceiverReport {
            usage: BandwidthUsage::Overusing,
            receive_rate_kbps: 6_000,
            ..Default::default()
        };
        assert_eq!(c.on_report(t0, &over, 0.0), Some(5_100_000));
        let report = ReceiverReport {
            receive_rate_kbps: 5_000,
            ..Default::default()
        };
        let after_loss = c
            .on_report(t0 + Duration::from_millis(100), &report, 0.25)
            .expect("cut");
        assert!(after_loss < 5_100_000);
        let mut t = t0 + Duration::from_millis(100);
        for _ in 0..100 {
            t += Duration::from_millis(100);
            c.on_report(t, &report, 0.0);
        }
        assert!(
            c.target_bps() > after_loss,
            "recovers when the path is fine"
        );
        assert!(c.target_bps() <= 8_000_000);
        // A standing 250 ms queue at 5 Mbit/s: half the rate drains it in 0.5 s.
        let queued = ReceiverReport {
            receive_rate_kbps: 5_000,
            queue_delay_us: 250_000,
            ..Default::default()
        };
        t += Duration::from_millis(50);
        assert_eq!(c.on_report(t, &queued, 0.0), Some(2_500_000));
        // Nothing received (the sender paused): the target holds.
        let before = c.target_bps();
        let idle = ReceiverReport::default();
        c.on_report(t + Duration::from_millis(100), &idle, 0.0);
        assert_eq!(c.target_bps(), before);
    }

    #[test]
    fn capacity_estimate_probes_above_best_sample_and_expires() {
        let t0 = Instant::now();
        let mut c = CapacityEstimator::new(100_000_000, 5_000_000);
        assert_eq!(c.estimate_bps(t0), 100_000_000);
        c.on_sample(t0, 40_000_000);
        assert_eq!(c.estimate_bps(t0), 50_000_000);
        assert_eq!(c.estimate_bps(t0 + Duration::from_secs(3)), 100_000_000);
    }
}
