//! Radio stalls told apart from queues, at the receiver.
//!
//! On Apple Wi-Fi the radio leaves the router's channel to serve AWDL: for 30–90 ms nothing
//! arrives, then every datagram held meanwhile arrives in a burst at line rate, and the path
//! carries afterwards exactly what it carried before (`shared/DESIGN.md`). To a
//! delay-gradient controller that looks like a queue that built up and drained, and to a
//! loss-based one like loss; treated as congestion it cuts the video to a fraction of its
//! bitrate once a second while the latency even looks better (issue 15 measured 7–15 % of
//! the bitrate left on 60–100 Mbit/s links). Congestion looks different: datagrams keep
//! arriving at the bottleneck rate while the one-way delay rises, and loss follows a full
//! queue. The [`StallDetector`] recognises the first pattern so that the receiver can keep
//! it out of the congestion signals, and learns when the next stall is due.
//!
//! # Signals and thresholds
//!
//! Every media or parity datagram reports its arrival time and its *excess transit*:
//! arrival minus capture time, less the smallest such transit of recent frame starts (the
//! path's base; sender and receiver clocks need not agree, only their difference is used).
//!
//! - **Start.** A stall is recognised when the first datagram after a silence of at least
//!   [`MIN_SILENCE`] was *held*: its excess transit is at least half the silence and at
//!   least [`MIN_HELD`]. Both together are the signature of a link that stopped draining.
//!   A sender that paused (or runs at a low frame rate) leaves silences too, but the
//!   datagram that ends them left the sender just then and has no excess; a queue at a
//!   bottleneck never leaves a silence, because it drains at the bottleneck rate for as
//!   long as it holds anything. The episode is dated from the last arrival before the
//!   silence. A sender that holds a frame itself (a keyframe that takes 50–250 ms to
//!   encode) leaves the same signature, and rightly: that is not congestion either. It is
//!   counted as a stall, but such stalls have no period, so they forecast nothing.
//! - **Burst.** The episode goes on while the held datagrams drain: it ends at the first
//!   frame start whose excess transit is back within [`SETTLE_MARGIN`] of what frame starts
//!   showed before the stall (an average of frame-start excess outside episodes, gain 1/16).
//!   A burst drains at line rate, so this takes a few milliseconds on a fast link.
//! - **Cap.** If the excess has not settled by the end of the silence plus as long again
//!   (at most [`MAX_DRAIN`]) plus [`SETTLE_SLACK`], the held data is not draining like a
//!   burst: a real queue stands behind it (a link slower than the encoder). The episode
//!   ends there and the congestion signals see the queue, so a slow link that also stalls
//!   still backs off.
//!
//! While an episode lasts, the receiver feeds no frame to the delay-gradient trendline, takes
//! no standing-queue sample, and counts the losses it finds as stall losses, reported apart
//! from the loss that congestion control acts on (FEC still sees all of it).
//!
//! # Period and phase
//!
//! AWDL stalls repeat with the AWDL period (16 slots × 64 TU = 1048.576 ms) but a stall can
//! have any period, and a stall that falls between two frames leaves no trace, so the
//! spacing of detected stalls is a multiple of the period. [`StallDetector::period`] is the
//! smallest spacing among the last [`PERIOD_HISTORY`] stalls that the others are whole
//! multiples of (within [`PERIOD_TOLERANCE`]), once at least three spacings agree; with the
//! latest stall's start it predicts the next ([`StallDetector::next_expected`]).
//!
//! Reports carry the forecast to the sender: the period, when the next stall should begin
//! (ms after the report), the longest recent silence, and the share of datagrams lost inside
//! recent episodes. A datagram the radio loses inside a stall is found missing only when
//! the burst arrives, and its NACK round trip holds every later frame in decode order: on
//! `awdl-heavy` (10 % loss inside 30–90 ms stalls) that repair, not the burst, made the
//! settling time (21.9 ms p99 on seed 1 against 11.6 ms with the in-stall loss switched
//! off) and six of eight display freezes. So the sender's [`StallForecast`] gives the frames
//! it sends inside a forecast window parity enough for that loss, and those frames complete
//! from the burst alone. Frames outside the windows pay nothing. Measured on `awdl-heavy`,
//! seeds 1–5, without → with the forecast's parity: settling p99 21.9/21.7/23.1/22.5/23.4 →
//! 13.1/21.7/13.3/17.4/14.2 ms (from the sixth stall on, once a period is learned, at most
//! 14.9 ms; the 21.7 and 17.4 are the second stall of their run), display freezes over
//! 100 ms 53 → 33 in all, frames shown +0.3 %, at 2.5 points more overhead (3.7 → 6.2 %).

use std::collections::VecDeque;
use std::time::Duration;

/// Shortest silence that can be a stall. Shorter gaps are Wi-Fi contention and frame
/// spacing; the AWDL stalls of the design are 30–90 ms.
pub const MIN_SILENCE: Duration = Duration::from_millis(15);
/// Least excess transit of the datagram that ends the silence.
pub const MIN_HELD: Duration = Duration::from_millis(10);
/// How close to the pre-stall excess a frame start must be for the burst to count as over.
pub const SETTLE_MARGIN: Duration = Duration::from_millis(5);
/// Slack on the drain time a burst may take (silence, then as long again, plus this).
pub const SETTLE_SLACK: Duration = Duration::from_millis(20);
/// Longest drain time granted, however long the silence: a link that was gone for seconds
/// must not hide a queue for as long again.
pub const MAX_DRAIN: Duration = Duration::from_millis(250);
/// Stall starts remembered for the period estimate.
pub const PERIOD_HISTORY: usize = 8;
/// Relative tolerance when matching spacings to a period.
pub const PERIOD_TOLERANCE: f64 = 0.05;

/// One recognised stall: the silence and the burst that drained it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StallEpisode {
    /// Last arrival before the silence, µs on the receiver clock.
    pub start_us: u64,
    /// First arrival after it.
    pub silence_end_us: u64,
    /// When the burst was over (the excess settled, or the cap passed); `None` while it lasts.
    pub end_us: Option<u64>,
    /// Whether it ended at the cap: the held data did not drain like a burst.
    pub capped: bool,
}

impl StallEpisode {
    /// Length of the silence.
    pub fn silence(&self) -> Duration {
        Duration::from_micros(self.silence_end_us - self.start_us)
    }
}

/// Recognises radio stalls from arrival gaps and held datagrams. See the module docs.
#[derive(Debug, Default)]
pub struct StallDetector {
    last_arrival_us: Option<u64>,
    current: Option<StallEpisode>,
    settle_deadline_us: u64,
    /// Average excess transit of frame starts outside episodes, µs.
    typical_excess_us: f64,
    starts: VecDeque<u64>,
    silences: VecDeque<u64>,
    /// Datagrams received and found lost in the episode under way.
    episode_received: u64,
    episode_lost: u64,
    /// Average share of datagrams lost inside episodes (gain 1/4 per episode).
    window_loss: f64,
    stalls: u64,
    capped: u64,
    stalled_us: u64,
}

impl StallDetector {
    /// Feeds one media or parity datagram: `now_us` on the receiver clock, `excess_us` its
    /// transit above the path's base, `frame_start` whether it is the first datagram seen
    /// of a newer frame. Returns whether the datagram arrived inside a stall episode (the
    /// one it may have just opened included).
    pub fn on_datagram(&mut self, now_us: u64, excess_us: u64, frame_start: bool) -> bool {
        let prev = self.last_arrival_us.replace(now_us);
        if let Some(ep) = &mut self.current {
            let settled = frame_start
                && (excess_us as f64) <= self.typical_excess_us + SETTLE_MARGIN.as_micros() as f64;
            let capped = now_us >= self.settle_deadline_us;
            if settled || capped {
                let seen = self.episode_received + self.episode_lost;
                if seen > 0 {
                    let loss = self.episode_lost as f64 / seen as f64;
                    self.window_loss += (loss - self.window_loss) / 4.0;
                }
                ep.end_us = Some(now_us);
                ep.capped = capped && !settled;
                self.capped += u64::from(ep.capped);
                self.stalled_us += now_us - ep.start_us;
                self.current = None;
            } else {
                self.episode_received += 1;
                return true;
            }
        }
        if let Some(prev) = prev {
            let silence = now_us.saturating_sub(prev);
            if silence >= MIN_SILENCE.as_micros() as u64
                && excess_us >= MIN_HELD.as_micros() as u64
                && excess_us * 2 >= silence
            {
                self.current = Some(StallEpisode {
                    start_us: prev,
                    silence_end_us: now_us,
                    end_us: None,
                    capped: false,
                });
                let drain = silence.min(MAX_DRAIN.as_micros() as u64);
                self.settle_deadline_us = now_us + drain + SETTLE_SLACK.as_micros() as u64;
                self.stalls += 1;
                if self.starts.len() == PERIOD_HISTORY {
                    self.starts.pop_front();
                    self.silences.pop_front();
                }
                self.starts.push_back(prev);
                self.silences.push_back(silence);
                self.episode_received = 1;
                self.episode_lost = 0;
                return true;
            }
        }
        if frame_start {
            self.typical_excess_us += (excess_us as f64 - self.typical_excess_us) / 16.0;
        }
        false
    }

    /// Counts datagrams found missing while an episode is under way (the radio's loss).
    pub fn on_loss(&mut self, lost: u64) {
        if self.current.is_some() {
            self.episode_lost += lost;
        }
    }

    /// Share of datagrams lost inside recent episodes.
    pub fn window_loss(&self) -> f64 {
        self.window_loss
    }

    /// The longest silence among the recent stalls.
    pub fn longest_recent_silence(&self) -> Option<Duration> {
        self.silences
            .iter()
            .max()
            .map(|&s| Duration::from_micros(s))
    }

    /// Whether a stall episode is under way.
    pub fn in_stall(&self) -> bool {
        self.current.is_some()
    }

    /// The episode under way, if any.
    pub fn current(&self) -> Option<StallEpisode> {
        self.current
    }

    /// Stalls recognised so far.
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// Episodes that ended at the cap (a queue behind the stall).
    pub fn capped(&self) -> u64 {
        self.capped
    }

    /// Time spent in finished episodes, silence and burst.
    pub fn stalled(&self) -> Duration {
        Duration::from_micros(self.stalled_us)
    }

    /// The stall period, once the recent stalls agree on one.
    pub fn period(&self) -> Option<Duration> {
        let spacings: Vec<u64> = self
            .starts
            .iter()
            .zip(self.starts.iter().skip(1))
            .map(|(a, b)| b - a)
            .collect();
        if spacings.len() < 3 {
            return None;
        }
        // A stall between two frames leaves no trace, so some spacings span several
        // periods: take the smallest spacing as the period if every other one is a whole
        // multiple of it.
        let base = *spacings.iter().min()? as f64;
        if base <= 0.0 {
            return None;
        }
        let mut periods = 0.0;
        for &s in &spacings {
            let k = (s as f64 / base).round();
            if k < 1.0 || (s as f64 - k * base).abs() > PERIOD_TOLERANCE * base {
                return None;
            }
            periods += k;
        }
        // The average over all spacings is finer than the smallest one alone.
        let total: u64 = spacings.iter().sum();
        Some(Duration::from_micros((total as f64 / periods) as u64))
    }

    /// When the next stall should begin, µs on the receiver clock, once a period is known.
    pub fn next_expected(&self, now_us: u64) -> Option<u64> {
        let period = self.period()?.as_micros() as u64;
        let last = *self.starts.back()?;
        let k = now_us.saturating_sub(last).div_ceil(period).max(1);
        Some(last + k * period)
    }
}

/// Margin around a forecast window: the period estimate drifts by a fraction of a
/// millisecond per period, and a frame's datagrams leave over up to 1.7 ms.
pub const FORECAST_MARGIN: Duration = Duration::from_millis(5);

/// The sender's view of the receiver's stall forecast: when datagrams it sends will meet the
/// next stall. See the module docs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StallForecast {
    /// A send time that meets the start of a stall.
    anchor: std::time::Instant,
    period: Duration,
    length: Duration,
    /// Share of datagrams lost inside stalls.
    pub window_loss: f64,
}

impl StallForecast {
    /// From a report that arrived at `now`: stalls every `period`, the next beginning `next`
    /// after the report left the receiver, lasting up to `length`, losing `window_loss` of
    /// what they hold. A datagram sent at `t` reaches the receiver's side of the link about
    /// half a round trip later, and the report took the other half to come, so the window's
    /// start on the sender's clock is `now + next − rtt`.
    pub fn new(
        now: std::time::Instant,
        rtt: Duration,
        period: Duration,
        next: Duration,
        length: Duration,
        window_loss: f64,
    ) -> Option<StallForecast> {
        if period.is_zero() || length.is_zero() || length >= period {
            return None;
        }
        let start = now + next;
        let anchor = start.checked_sub(rtt).unwrap_or(start);
        Some(StallForecast {
            anchor,
            period,
            length,
            window_loss,
        })
    }

    /// Whether a datagram sent at `t` is forecast to meet a stall (margin included).
    pub fn covers(&self, t: std::time::Instant) -> bool {
        let period = self.period.as_nanos();
        let offset = if t >= self.anchor {
            (t - self.anchor).as_nanos() % period
        } else {
            (period - (self.anchor - t).as_nanos() % period) % period
        };
        let margin = FORECAST_MARGIN.as_nanos();
        offset <= self.length.as_nanos() + margin || offset + margin >= period
    }

    /// Parity shards for a frame of `fragments` sent inside a window: three times the
    /// expected loss, at least one. At 10 % loss a 15-datagram frame gets 5 shards and
    /// fails to complete from the burst alone about 1 % of the time (twice the loss, 3
    /// shards: about 10 %).
    pub fn parity_for(&self, fragments: usize) -> usize {
        ((fragments as f64 * 3.0 * self.window_loss).ceil() as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME_US: u64 = 16_667;

    /// A 60 fps stream of 4-datagram frames (0.4 ms apart) over a 2 ms path whose
    /// bottleneck takes 100 µs a datagram, or `slow_tx_us` from frame `slow_from` on (a
    /// link slower than the stream: a queue builds), silenced by `stalls` ([start, end) in
    /// µs). Returns, per datagram, (arrival µs, in stall).
    fn stream(
        d: &mut StallDetector,
        frames: u64,
        stalls: &[(u64, u64)],
        slow_from: u64,
        slow_tx_us: u64,
    ) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let mut link_free = 0u64;
        let base = 2_000;
        let mut newest_frame = None;
        for f in 0..frames {
            let capture = f * FRAME_US;
            for i in 0..4u64 {
                let sent = capture + i * 400;
                let tx = if f >= slow_from { slow_tx_us } else { 100 };
                let mut arrival = sent + base;
                if let Some(&(_, end)) = stalls.iter().find(|(s, e)| arrival >= *s && arrival < *e)
                {
                    arrival = end;
                }
                arrival = arrival.max(link_free + tx);
                link_free = arrival;
                let start = newest_frame.is_none_or(|n| f > n);
                newest_frame = Some(f);
                let excess = arrival - capture - base;
                out.push((arrival, d.on_datagram(arrival, excess, start && i == 0)));
            }
        }
        out
    }

    #[test]
    fn a_stall_is_recognised_and_ends_with_its_burst() {
        let mut d = StallDetector::default();
        let stall = (1_000_000, 1_045_000);
        let arrivals = stream(&mut d, 120, &[stall], u64::MAX, 0);
        assert_eq!(d.stalls(), 1);
        assert_eq!(d.capped(), 0);
        let flagged: Vec<u64> = arrivals.iter().filter(|a| a.1).map(|a| a.0).collect();
        assert!(flagged.iter().all(|&t| t >= stall.1), "{flagged:?}");
        // The burst of held datagrams is inside, and it is over within a frame.
        assert!(flagged.len() >= 8, "{flagged:?}");
        assert!(*flagged.last().expect("some") < stall.1 + FRAME_US);
        assert!(!d.in_stall());
    }

    #[test]
    fn a_paused_sender_and_a_growing_queue_are_not_stalls() {
        // A pause: frames 30–40 never sent.
        let mut d = StallDetector::default();
        let mut t = 0;
        for f in (0..100u64).filter(|f| !(30..40).contains(f)) {
            t = f * FRAME_US + 2_000;
            assert!(!d.on_datagram(t, 0, true));
        }
        assert!(t > 0);
        assert_eq!(d.stalls(), 0);
        // A bottleneck: 4 datagrams of 5 ms each a 16.7 ms frame interval, so the delay grows
        // 3.3 ms a frame while datagrams keep arriving.
        let mut d = StallDetector::default();
        let arrivals = stream(&mut d, 200, &[], 20, 5_000);
        assert!(arrivals.iter().all(|a| !a.1));
        assert_eq!(d.stalls(), 0);
    }

    #[test]
    fn a_queue_behind_a_stall_ends_the_episode_at_the_cap() {
        let mut d = StallDetector::default();
        // The link turns slower than the stream as the stall starts: the held datagrams
        // never drain like a burst.
        let stall = (1_000_000, 1_040_000);
        stream(&mut d, 150, &[stall], 60, 5_000);
        assert_eq!(d.stalls(), 1);
        assert_eq!(d.capped(), 1);
        assert!(!d.in_stall());
    }

    #[test]
    fn the_forecast_covers_each_window_with_its_margin() {
        let t0 = std::time::Instant::now();
        let ms = Duration::from_millis;
        // Report at t0, next stall 100 ms after it, RTT 4 ms: the window opens at 96 ms.
        let f = StallForecast::new(t0, ms(4), ms(1000), ms(100), ms(40), 0.1).expect("valid");
        for (at, inside) in [
            (0, false),
            (90, false),
            (92, true),
            (96, true),
            (140, true),
            (142, false),
            (600, false),
            (1_096, true),
            (2_130, true),
            (2_200, false),
        ] {
            assert_eq!(f.covers(t0 + ms(at)), inside, "{at} ms");
        }
        assert_eq!(f.parity_for(15), 5);
        assert_eq!(f.parity_for(1), 1);
        assert!(StallForecast::new(t0, ms(4), ms(100), ms(10), ms(100), 0.1).is_none());
    }

    #[test]
    fn a_long_outage_hides_nothing_for_longer_than_the_drain_cap() {
        let mut d = StallDetector::default();
        assert!(!d.on_datagram(0, 0, true));
        // Ten seconds of silence ended by a datagram held all that time.
        assert!(d.on_datagram(10_000_000, 10_000_000, true));
        let cap = (MAX_DRAIN + SETTLE_SLACK).as_micros() as u64;
        // The excess never settles: the episode ends at the cap, not ten seconds later.
        let mut t = 10_000_000;
        while d.on_datagram(t, 1_000_000, true) {
            t += 1_000;
        }
        assert!(t - 10_000_000 <= cap + 1_000, "{t}");
        assert_eq!(d.capped(), 1);
    }

    #[test]
    fn the_period_is_learned_even_when_stalls_go_unseen() {
        let mut d = StallDetector::default();
        let period = 1_048_576;
        // Stalls at 0.5 s + k·period, but the one at k = 3 falls where nothing is sent
        // (left out), so one spacing spans two periods.
        let stalls: Vec<(u64, u64)> = [0u64, 1, 2, 4, 5, 6]
            .iter()
            .map(|k| (500_000 + k * period, 500_000 + k * period + 40_000))
            .collect();
        stream(&mut d, 60 * 8, &stalls, u64::MAX, 0);
        assert_eq!(d.stalls(), 6);
        let p = d.period().expect("period").as_micros() as u64;
        // Detected starts are the last arrival before each stall: within a frame of it.
        assert!(p.abs_diff(period) < 2_000, "{p}");
        let next = d
            .next_expected(500_000 + 6 * period + 100_000)
            .expect("next");
        assert!(next.abs_diff(500_000 + 7 * period) < FRAME_US, "{next}");
    }
}
