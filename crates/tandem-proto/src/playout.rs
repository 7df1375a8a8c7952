//! When a decodable frame is handed over, and whether it is meant to be shown.
//!
//! Every policy maps the sender's capture time onto the receiver's clock through the
//! *base transit*: the smallest (completion time − capture time) seen over the last
//! [`BASE_WINDOW`], which folds together clock offset, propagation and the transmission time
//! of a small frame. A frame "on schedule" completes at `capture + base`.
//!
//! - [`PlayoutPolicy::Latency`] hands each frame over the moment it is decodable. After a
//!   stall the held frames arrive in a burst; each is still handed over (the decoder needs
//!   it as a reference) but marked not-to-display when it is more than one frame interval
//!   behind schedule: the next frame's slot has then passed too, so that frame is queued
//!   right behind it. The delay returns to baseline with the burst instead of being
//!   carried forward.
//! - [`PlayoutPolicy::Smooth`] holds each frame until `capture + base + D`, where `D`
//!   follows the jitter estimate: up at once when jitter grows, down by at most
//!   [`SMOOTH_DECAY_PER_S`] per second, always within the app's bounds.
//! - [`PlayoutPolicy::Fixed`] holds each frame until `capture + base + d`: the classic
//!   "just add a buffer", kept as the baseline to beat.
//!
//! In every policy, when several frames are due at once only the newest is displayed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::reassembly::CompleteFrame;
use crate::window::WindowedMin;

/// How long a base-transit sample counts (long enough to span stalls, short enough to
/// follow clock drift).
pub const BASE_WINDOW: Duration = Duration::from_secs(10);
/// How fast the smooth policy's delay may shrink, per second.
pub const SMOOTH_DECAY_PER_S: Duration = Duration::from_millis(10);

/// Frame scheduling policy; changeable live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PlayoutPolicy {
    /// Hand over each frame when decodable; skip display of stale frames in a burst.
    #[default]
    Latency,
    /// Buffer by the measured jitter, within `[min, max]`.
    Smooth {
        /// Never less delay than this.
        min: Duration,
        /// Never more delay than this.
        max: Duration,
    },
    /// A constant playout delay.
    Fixed(Duration),
}

impl PlayoutPolicy {
    /// `Smooth` with bounds 0–100 ms.
    pub fn smooth() -> Self {
        PlayoutPolicy::Smooth {
            min: Duration::ZERO,
            max: Duration::from_millis(100),
        }
    }
}

/// The form every Tandem tool prints and takes: `latency`, `smooth:MIN-MAX`, `fixed:MS`
/// (milliseconds).
impl std::fmt::Display for PlayoutPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlayoutPolicy::Latency => f.write_str("latency"),
            PlayoutPolicy::Smooth { min, max } => {
                write!(f, "smooth:{}-{}", min.as_millis(), max.as_millis())
            }
            PlayoutPolicy::Fixed(d) => write!(f, "fixed:{}", d.as_millis()),
        }
    }
}

/// Parses what [`Display`](std::fmt::Display) prints, and `smooth` for
/// [`PlayoutPolicy::smooth`]; milliseconds may carry an `ms` suffix.
impl std::str::FromStr for PlayoutPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let ms = |v: &str| -> Result<Duration, String> {
            v.trim_end_matches("ms")
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("invalid milliseconds {v:?} in policy {s:?}"))
        };
        match s {
            "latency" => Ok(PlayoutPolicy::Latency),
            "smooth" => Ok(PlayoutPolicy::smooth()),
            _ if s.starts_with("fixed:") => Ok(PlayoutPolicy::Fixed(ms(&s[6..])?)),
            _ if s.starts_with("smooth:") => {
                let (a, b) = s[7..]
                    .split_once('-')
                    .ok_or_else(|| format!("smooth bounds must be MIN-MAX in ms, got {s:?}"))?;
                let (min, max) = (ms(a)?, ms(b)?);
                if min > max {
                    return Err(format!(
                        "smooth bounds {s:?}: the minimum exceeds the maximum"
                    ));
                }
                Ok(PlayoutPolicy::Smooth { min, max })
            }
            _ => Err(format!(
                "unknown policy {s:?}: expected latency, smooth, smooth:MIN-MAX or fixed:MS"
            )),
        }
    }
}

/// A frame leaving playout.
#[derive(Clone, Debug)]
pub struct PlayoutFrame {
    /// The frame.
    pub frame: CompleteFrame,
    /// Whether it should be shown (false: decode only).
    pub display: bool,
    /// When it was released.
    pub released_at: Instant,
}

#[derive(Debug)]
struct Held {
    frame: CompleteFrame,
    due: Instant,
    display: bool,
}

/// The playout stage.
#[derive(Debug)]
pub struct PlayoutBuffer {
    policy: PlayoutPolicy,
    held: VecDeque<Held>,
    held_bytes: usize,
    base: WindowedMin,
    smooth_delay: Duration,
    smooth_updated: Option<Instant>,
    last_due: Option<Instant>,
}

impl PlayoutBuffer {
    /// A buffer running `policy`.
    pub fn new(policy: PlayoutPolicy) -> Self {
        Self {
            policy,
            held: VecDeque::new(),
            held_bytes: 0,
            base: WindowedMin::new(BASE_WINDOW),
            smooth_delay: Duration::ZERO,
            smooth_updated: None,
            last_due: None,
        }
    }

    /// Changes the policy; frames already held keep their schedule.
    pub fn set_policy(&mut self, policy: PlayoutPolicy) {
        self.policy = policy;
    }

    /// Current policy.
    pub fn policy(&self) -> PlayoutPolicy {
        self.policy
    }

    /// Delay this policy adds on top of the base transit.
    pub fn delay(&self) -> Duration {
        match self.policy {
            PlayoutPolicy::Latency => Duration::ZERO,
            PlayoutPolicy::Smooth { .. } => self.smooth_delay,
            PlayoutPolicy::Fixed(d) => d,
        }
    }

    /// Base transit in µs (receiver clock minus sender clock), if known.
    pub fn base_transit_us(&self) -> Option<i64> {
        self.base.min()
    }

    /// Takes a decodable frame.
    ///
    /// `completed_us` is its completion on the receiver clock; `jitter` the current
    /// frame-delay jitter estimate; `frame_interval` the sender's frame spacing.
    pub fn push(
        &mut self,
        now: Instant,
        frame: CompleteFrame,
        completed_us: u64,
        jitter: Duration,
        frame_interval: Duration,
    ) {
        let transit = completed_us as i64 - frame.info.capture_us as i64;
        self.base.push(now, transit);
        let base = self.base_transit_us().unwrap_or(transit);
        let behind = Duration::from_micros((transit - base).max(0) as u64);
        self.update_smooth(now, jitter);
        let (due, display) = match self.policy {
            // Behind by more than a frame interval means the next frame's slot has passed
            // too, so it is in the same burst: this one is already stale. A frame repaired
            // by one retransmission is a few milliseconds late, and still worth showing.
            PlayoutPolicy::Latency => (now, behind <= frame_interval),
            PlayoutPolicy::Smooth { .. } | PlayoutPolicy::Fixed(_) => {
                // Scheduled time relative to completion: (base + delay) − transit.
                let target = Duration::from_micros(base.max(0) as u64) + self.delay();
                let ahead = target.as_micros() as i64 - transit.max(0);
                let due = if ahead > 0 {
                    now + Duration::from_micros(ahead as u64)
                } else {
                    now
                };
                (due, true)
            }
        };
        let due = self.last_due.map_or(due, |l| due.max(l));
        self.last_due = Some(due);
        self.held_bytes += frame.data.len();
        self.held.push_back(Held {
            frame,
            due,
            display,
        });
    }

    fn update_smooth(&mut self, now: Instant, jitter: Duration) {
        let PlayoutPolicy::Smooth { min, max } = self.policy else {
            return;
        };
        let target = jitter.clamp(min, max);
        let dt = self
            .smooth_updated
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.smooth_updated = Some(now);
        self.smooth_delay = if target >= self.smooth_delay {
            target
        } else {
            let step = SMOOTH_DECAY_PER_S.mul_f64(dt.as_secs_f64().min(1.0));
            (self.smooth_delay.saturating_sub(step)).max(target)
        }
        .clamp(min, max);
    }

    /// Releases the next due frame. When several are due, all but the newest are marked
    /// not-to-display.
    pub fn poll(&mut self, now: Instant) -> Option<PlayoutFrame> {
        let h = self.held.front()?;
        if h.due > now {
            return None;
        }
        let h = self.held.pop_front()?;
        self.held_bytes -= h.frame.data.len();
        let newer_due = self.held.front().is_some_and(|n| n.due <= now);
        Some(PlayoutFrame {
            frame: h.frame,
            display: h.display && !newer_due,
            released_at: now,
        })
    }

    /// When the next held frame is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|h| h.due)
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_print_and_parse_the_same_way() {
        for p in [
            PlayoutPolicy::Latency,
            PlayoutPolicy::smooth(),
            PlayoutPolicy::Fixed(Duration::from_millis(50)),
        ] {
            assert_eq!(p.to_string().parse::<PlayoutPolicy>(), Ok(p));
        }
        assert_eq!("smooth".parse(), Ok(PlayoutPolicy::smooth()));
        assert_eq!(
            "fixed:20ms".parse(),
            Ok(PlayoutPolicy::Fixed(Duration::from_millis(20)))
        );
        let e = "smooth:9-1".parse::<PlayoutPolicy>().expect_err("inverted");
        assert!(e.contains("exceeds"), "{e}");
        let e = "jitter".parse::<PlayoutPolicy>().expect_err("unknown");
        assert!(e.contains("\"jitter\""), "{e}");
    }
    use crate::packet::{Codec, FrameInfo};
    use bytes::Bytes;

    fn frame(id: u32, capture_us: u64, at: Instant) -> CompleteFrame {
        CompleteFrame {
            info: FrameInfo {
                frame_id: id,
                fragment_count: 1,
                codec: Codec::Av1,
                flags: 0,
                capture_us,
            },
            first_seq: id,
            data: Bytes::from_static(b"f"),
            first_arrival: at,
            completed_at: at,
            fec_recovered: 0,
            repaired: false,
            delivery_rate_bps: None,
        }
    }

    const IV: Duration = Duration::from_micros(16_667);

    #[test]
    fn latency_releases_at_once_and_hides_stale_frames_of_a_burst() {
        let t0 = Instant::now();
        let mut p = PlayoutBuffer::new(PlayoutPolicy::Latency);
        // On schedule: 2 ms transit.
        p.push(t0, frame(0, 0, t0), 2_000, Duration::ZERO, IV);
        let f = p.poll(t0).expect("immediate");
        assert!(f.display);
        // A frame 30 ms behind: the next one's slot has passed too; decode only.
        let t1 = t0 + Duration::from_millis(50);
        p.push(t1, frame(1, 18_000, t1), 50_000, Duration::ZERO, IV);
        assert!(!p.poll(t1).expect("immediate").display);
        // The newest of the burst, 14 ms behind, is shown.
        p.push(t1, frame(2, 34_000, t1), 50_000, Duration::ZERO, IV);
        assert!(p.poll(t1).expect("immediate").display);
        // A frame repaired by a retransmission, 9 ms late, is shown.
        let t2 = t0 + Duration::from_millis(60);
        p.push(t2, frame(3, 50_000, t2), 61_000, Duration::ZERO, IV);
        assert!(p.poll(t2).expect("immediate").display);
    }

    #[test]
    fn fixed_holds_until_capture_plus_base_plus_delay() {
        let t0 = Instant::now();
        let mut p = PlayoutBuffer::new(PlayoutPolicy::Fixed(Duration::from_millis(50)));
        p.push(t0, frame(0, 0, t0), 2_000, Duration::ZERO, IV);
        assert!(p.poll(t0 + Duration::from_millis(49)).is_none());
        assert_eq!(p.next_due(), Some(t0 + Duration::from_millis(50)));
        assert!(p.poll(t0 + Duration::from_millis(50)).expect("due").display);
        // A frame that took 10 ms longer than base is held 10 ms less.
        let t1 = t0 + Duration::from_millis(28_667 / 1000);
        p.push(t1, frame(1, 16_667, t1), 28_667, Duration::ZERO, IV);
        assert_eq!(p.next_due(), Some(t1 + Duration::from_millis(40)));
    }

    #[test]
    fn several_due_at_once_show_only_the_newest() {
        let t0 = Instant::now();
        let mut p = PlayoutBuffer::new(PlayoutPolicy::Fixed(Duration::from_millis(10)));
        p.push(t0, frame(0, 0, t0), 1_000, Duration::ZERO, IV);
        p.push(t0, frame(1, 1_000, t0), 2_000, Duration::ZERO, IV);
        let late = t0 + Duration::from_millis(100);
        assert!(!p.poll(late).expect("due").display);
        assert!(p.poll(late).expect("due").display);
    }

    #[test]
    fn smooth_grows_at_once_and_shrinks_slowly_within_bounds() {
        let t0 = Instant::now();
        let bounds = PlayoutPolicy::Smooth {
            min: Duration::from_millis(2),
            max: Duration::from_millis(40),
        };
        let mut p = PlayoutBuffer::new(bounds);
        p.push(t0, frame(0, 0, t0), 1_000, Duration::from_millis(30), IV);
        assert_eq!(p.delay(), Duration::from_millis(30));
        let t1 = t0 + Duration::from_secs(1);
        p.push(
            t1,
            frame(1, 1_000_000, t1),
            1_001_000,
            Duration::from_millis(1),
            IV,
        );
        assert_eq!(p.delay(), Duration::from_millis(20), "10 ms/s decay");
        let t2 = t1 + Duration::from_millis(100);
        p.push(
            t2,
            frame(2, 1_100_000, t2),
            1_101_000,
            Duration::from_millis(90),
            IV,
        );
        assert_eq!(p.delay(), Duration::from_millis(40), "clamped to max");
    }
}
