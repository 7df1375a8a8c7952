//! Pacing: spreads each frame's datagrams over a bounded slice of the frame interval.
//!
//! Bursting a frame into the Wi-Fi queue costs loss and queueing delay; pacing it at a
//! small multiple of the *average* bitrate costs milliseconds on every frame (a 16 kB frame
//! at 2 × 8 Mbit/s takes 8 ms to leave). So a frame is sent at the rate that drains it in
//! `spread` (a fraction of the frame interval, default 10 %), but never faster than the
//! path-capacity estimate: faster only builds a queue in the network. When datagrams of an
//! earlier frame are still waiting (a keyframe), the queue drains at the capacity estimate.
//!
//! Send slots are accounted from the previous slot, not from the time of the call, so a
//! driver whose timer fires late (tokio timers have 1 ms granularity) sends what is owed at
//! once instead of losing throughput; idle time, however, earns no credit.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::Payload;

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
        self.rate_bps = if self.queue.is_empty() {
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
            (0..4).map(|i| frag(i, 1169)).collect(),
            Duration::from_millis(4),
            u64::MAX,
        );
        // Woken 3 ms late: three slots are owed and go at once, the fourth waits.
        let late = t0 + Duration::from_millis(3);
        assert!(p.poll(late).is_some());
        assert!(p.poll(late).is_some());
        assert!(p.poll(late).is_some());
        assert!(p.poll(late).is_some(), "slot at 3 ms is due");
        assert!(p.is_empty());
        // After an idle second, a new frame starts from now, not from the old slots.
        let later = t0 + Duration::from_secs(1);
        p.enqueue_frame(
            later,
            (0..2).map(|i| frag(i, 1169)).collect(),
            Duration::from_millis(2),
            u64::MAX,
        );
        assert!(p.poll(later).is_some());
        assert!(
            p.poll(later).is_none(),
            "the second datagram waits its slot"
        );
    }
}
