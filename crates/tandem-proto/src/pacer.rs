//! Pacing: spreads each frame's datagrams over a bounded slice of the frame interval.
//!
//! Bursting a frame into the Wi-Fi queue costs loss and queueing delay; pacing it at a
//! small multiple of the *average* bitrate costs milliseconds on every frame (a 16 kB frame
//! at 2 × 8 Mbit/s takes 8 ms to leave). So a frame is sent at the rate that drains it in
//! `spread` (a fraction of the frame interval, default 10 %), but never faster than the
//! path-capacity estimate: faster only builds a queue in the network. When datagrams of an
//! earlier frame are still waiting (a keyframe), the queue drains at the capacity estimate.
//!
//! # What pacing costs, and why 10 % stays
//!
//! Virtual time, 60 s of 60 fps 8 Mbit/s video (16.7 kB frames, 15 datagrams), seed 1,
//! `latency` policy; capture-to-display p50 in ms (`cargo run --release -p tandem-sim --
//! --impair SPEC --seed 1` with `SenderConfig::spread_fraction` set as the column says):
//!
//! | link | spread 10 % | 5 % | 0.01 % (capacity pacing) |
//! |---|---|---|---|
//! | `delay=3ms,jitter=2ms,loss=0.3%,capacity=60mbit` | 6.53 | 6.53 | 6.53 |
//! | the same, `jitter=0ms` | 5.30 | 5.30 | 5.30 |
//! | the same, `jitter=2ms,capacity=1gbit` | 5.91 | 5.30 | 4.90 |
//! | `delay=3ms,jitter=0ms,loss=0%,capacity=1gbit` | 4.61 | 3.81 | 3.14 |
//! | `wifi` (2 ms ± 1.5 ms, 100 Mbit/s) | 4.58 | 4.33 | 4.33 |
//!
//! So the 6.53 ms of the 60 Mbit/s link are 3.00 ms of propagation, 2.30 ms of the frame's
//! serialization at the link's own 60 Mbit/s (17.2 kB on the wire), and 1.23 ms of jitter
//! (a frame completes with its latest datagram, and a FIFO link passes each datagram's
//! delay on to the ones behind it); the pacer's spread costs nothing there, because the
//! capacity estimate (1.25 × the best delivery sample, 75 Mbit/s) already caps the rate
//! below the spread's 80 Mbit/s and the link is slower still. Where the link is fast, the
//! spread is the cost: 1.47 ms of `delay=3ms,jitter=0ms` at 1 Gbit/s at 10 %, 0.67 ms at 5 %.
//! On `wifi` a 5 % spread reaches the 100 Mbit/s capacity cap, so pacing at the measured
//! capacity gains nothing more there.
//!
//! Over seeds 1–5 (5 × 3601 frames per profile), 5 % against 10 %: p50 −0.24 ms on every
//! named profile (`clean` 2.16 → 1.87, `wifi` 4.58 → 4.34, `awdl-stall` 4.59 → 4.34); late
//! frames unchanged under `burst` (2), `awdl-stall` and `awdl-heavy` (0); datagrams lost
//! 4122 → 4070 (`burst`), 1682 → 1672 (`awdl-heavy`), 249 → 258 (`awdl-stall`). But frames
//! shown under `burst` fell 17851 → 17840, seed 1 to 3555 of 3601 (98.7 %, below the
//! 99 % target; 3571 at 10 %), and on `wifi,capacity=6mbit` the video delivered fell
//! (seed 2: 3.97 → 3.83 Mbit/s). Pacing at the capacity estimate alone (0.01 %) gives the
//! same p50 and doubles the late frames under `burst` (2 → 4). A quarter of a millisecond
//! at the median is not worth frames lost under burst loss, so the spread stays at 10 %;
//! where the link is slower than the spread's rate (the 60 Mbit/s link above), the
//! capacity estimate already paces at the measured capacity.
//!
//! # Small frames
//!
//! A frame of at most [`SMALL_FRAME_DATAGRAMS`] datagrams (parity included; about 4.8 kB,
//! and 640×360 at 60 fps and 1.4 Mbit/s is 3–4) leaves at the capacity estimate instead:
//! four datagrams are no burst a Wi-Fi queue notices, and spreading them cost most of the
//! time a frame spent between encoder and decoder on a clean link (the last of 3–4
//! datagrams left 2/3–3/4 of 1.67 ms after the first).
//!
//! The real engine (`g2g --profile clean --encoder h264,aom --rounds 2 --no-baseline`, 20 s
//! each, 640×360@60): g2g p50 minus encode and decode p50 was 2.40–2.73 ms with the spread
//! and is 1.23–1.40 ms without it (H.264 p50 4.63–4.77 ms, libaom 8.64–9.06 ms, each at its
//! 1375–1384 kbit/s and the same PSNR as before). The simulator at 1.4 Mbit/s (`tandem-sim
//! --bitrate 1400kbit --seconds 60`, seeds 1–3, before → after): p50 −0.65 ms on every
//! profile (`clean` 1.87 → 0.74, `wifi` 3.71 → 3.06, `awdl-stall` 3.74 → 3.08), p99 lower
//! or equal everywhere but `step` (+0.03 ms), frames skipped under `burst` 130 → 107 and late
//! 2 → 0, `awdl-heavy` 481 → 481 skipped, and the video delivered identical (1.404–1.406
//! Mbit/s). At the simulator's default 8 Mbit/s (15 datagrams a frame) nothing changes:
//! every profile's report is identical field for field.
//!
//! Send slots are accounted from the previous slot, not from the time of the call, so a
//! driver whose timer fires late (tokio timers have 1 ms granularity) sends what is owed at
//! once instead of losing throughput; idle time, however, earns no credit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::Payload;

/// A frame of at most this many datagrams (parity included) is not spread: it leaves at the
/// capacity estimate, back to back (see the module docs, "Small frames").
pub const SMALL_FRAME_DATAGRAMS: usize = 4;

/// A paced queue of media and parity payloads.
#[derive(Debug)]
pub struct Pacer {
    queue: VecDeque<Payload>,
    next_send: Option<Instant>,
    rate_bps: u64,
    bytes_queued: usize,
}

impl Default for Pacer {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            next_send: None,
            rate_bps: 1,
            bytes_queued: 0,
        }
    }
}

/// Approximate wire size of a payload (header included), for pacing.
pub fn wire_len(p: &Payload) -> usize {
    use crate::packet::{HEADER_LEN, MEDIA_HEADER_LEN, PARITY_HEADER_LEN};
    HEADER_LEN
        + match p {
            Payload::Media(m) => MEDIA_HEADER_LEN + m.data.len(),
            Payload::Parity(s) => PARITY_HEADER_LEN + s.shard.len(),
            _ => 64,
        }
}

impl Pacer {
    /// Queues one frame's payloads, to be spread over `spread` but not faster than
    /// `capacity_bps`.
    pub fn enqueue_frame(
        &mut self,
        now: Instant,
        payloads: Vec<Payload>,
        spread: Duration,
        capacity_bps: u64,
    ) {
        let bytes: usize = payloads.iter().map(wire_len).sum();
        let spread_rate = (bytes as f64 * 8.0 / spread.as_secs_f64().max(1e-4)) as u64;
        self.rate_bps = if self.queue.is_empty() && payloads.len() > SMALL_FRAME_DATAGRAMS {
            spread_rate.min(capacity_bps).max(1)
        } else {
            capacity_bps.max(1)
        };
        if self.queue.is_empty() {
            self.next_send = Some(self.next_send.map_or(now, |t| t.max(now)));
        }
        self.bytes_queued += bytes;
        self.queue.extend(payloads);
    }

    /// Puts a retransmission at the head of the queue.
    pub fn enqueue_urgent(&mut self, now: Instant, payload: Payload) {
        if self.queue.is_empty() {
            self.next_send = Some(self.next_send.map_or(now, |t| t.max(now)));
        }
        self.bytes_queued += wire_len(&payload);
        self.queue.push_front(payload);
    }

    /// The next payload whose slot has come.
    pub fn poll(&mut self, now: Instant) -> Option<Payload> {
        let slot = self.next_send?;
        if now < slot {
            return None;
        }
        let p = self.queue.pop_front()?;
        let len = wire_len(&p);
        self.bytes_queued -= len;
        let tx = Duration::from_secs_f64(len as f64 * 8.0 / self.rate_bps as f64);
        self.next_send = Some(slot + tx);
        Some(p)
    }

    /// When the next queued payload may go, if any is queued.
    pub fn next_send_at(&self) -> Option<Instant> {
        if self.queue.is_empty() {
            None
        } else {
            self.next_send
        }
    }

    /// Current pacing rate, bit/s.
    pub fn rate_bps(&self) -> u64 {
        self.rate_bps
    }

    /// Payload bytes waiting.
    pub fn bytes_queued(&self) -> usize {
        self.bytes_queued
    }

    /// Datagrams waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_fragment;

    fn frag(seq: u32, len: usize) -> Payload {
        Payload::Media(test_fragment(seq, len))
    }

    fn drain(p: &mut Pacer, t0: Instant) -> Vec<Duration> {
        let mut out = Vec::new();
        let mut now = t0;
        while !p.is_empty() {
            match p.poll(now) {
                Some(_) => out.push(now - t0),
                None => now = p.next_send_at().expect("queued"),
            }
        }
        out
    }

    #[test]
    fn a_frame_is_spread_over_the_requested_slice() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        let frame: Vec<_> = (0..10).map(|i| frag(i, 1169)).collect();
        p.enqueue_frame(t0, frame, Duration::from_millis(2), 1_000_000_000);
        let times = drain(&mut p, t0);
        assert_eq!(times[0], Duration::ZERO, "first datagram leaves at once");
        // 10 datagrams over 2 ms: the last leaves at 9/10 of the spread.
        let last = times[9].as_secs_f64() * 1e3;
        assert!((last - 1.8).abs() < 0.01, "{last}");
    }

    #[test]
    fn capacity_caps_the_rate() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        let frame: Vec<_> = (0..10).map(|i| frag(i, 1169)).collect();
        // 12 kB in 0.1 ms would be ~960 Mbit/s; the path takes 100 Mbit/s.
        p.enqueue_frame(t0, frame, Duration::from_micros(100), 100_000_000);
        assert_eq!(p.rate_bps(), 100_000_000);
        let times = drain(&mut p, t0);
        let gap = (times[1] - times[0]).as_secs_f64() * 1e6;
        assert!((gap - 96.0).abs() < 1.0, "{gap}");
    }

    #[test]
    fn a_late_caller_catches_up_but_idle_time_earns_no_burst() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        p.enqueue_frame(
            t0,
            (0..8).map(|i| frag(i, 1169)).collect(),
            Duration::from_millis(8),
            u64::MAX,
        );
        // Woken 3 ms late: the slots at 0, 1, 2 and 3 ms are owed and go at once; the
        // fifth waits for 4 ms.
        let late = t0 + Duration::from_millis(3);
        for _ in 0..4 {
            assert!(p.poll(late).is_some());
        }
        assert!(p.poll(late).is_none(), "the slot at 4 ms is not due");
        assert!(p.poll(t0 + Duration::from_millis(8)).is_some());
        while p.poll(t0 + Duration::from_secs(1)).is_some() {}
        assert!(p.is_empty());
        // After an idle second, a new frame starts from now, not from the old slots.
        let later = t0 + Duration::from_secs(1);
        p.enqueue_frame(
            later,
            (0..6).map(|i| frag(i, 1169)).collect(),
            Duration::from_millis(6),
            u64::MAX,
        );
        assert!(p.poll(later).is_some());
        assert!(
            p.poll(later).is_none(),
            "the second datagram waits its slot"
        );
    }

    #[test]
    fn a_small_frame_leaves_back_to_back_at_the_capacity_estimate() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        let small: Vec<_> = (0..SMALL_FRAME_DATAGRAMS as u32)
            .map(|i| frag(i, 1169))
            .collect();
        p.enqueue_frame(t0, small, Duration::from_micros(1667), 100_000_000);
        assert_eq!(p.rate_bps(), 100_000_000);
        let times = drain(&mut p, t0);
        // Four datagrams of ~1.2 kB at 100 Mbit/s: the last leaves 0.29 ms after the
        // first, not 1.25 ms (3/4 of the spread).
        let last = times[SMALL_FRAME_DATAGRAMS - 1].as_secs_f64() * 1e3;
        assert!(last < 0.3, "{last}");
        // One datagram more and it is spread again.
        let big: Vec<_> = (0..=SMALL_FRAME_DATAGRAMS as u32)
            .map(|i| frag(i, 1169))
            .collect();
        let t1 = t0 + Duration::from_secs(1);
        p.enqueue_frame(t1, big, Duration::from_micros(1667), 100_000_000);
        assert!(p.rate_bps() < 100_000_000);
        let times = drain(&mut p, t1);
        let last = times[SMALL_FRAME_DATAGRAMS].as_secs_f64() * 1e3;
        assert!((last - 1.33).abs() < 0.02, "{last}");
    }
}
