//! Round-trip time and clock-offset estimation from ping/pong, used by both endpoints.
//!
//! Each side pings the other every [`PING_INTERVAL`]; the answer echoes the ping's send
//! time and adds the responder's clock reading. RTT is `now − sent`; the offset of the
//! peer's clock is `responder − (sent + rtt/2)`, trusted most from the lowest-RTT probe in
//! a window (the probe that queued least has the most symmetric path). Only pongs that
//! answer a ping we actually sent (id and time both match) are accepted, so a forged pong
//! cannot poison the estimates.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::{Ping, Pong};

/// How often each endpoint probes.
pub const PING_INTERVAL: Duration = Duration::from_millis(250);
/// Outstanding pings remembered (older ones count as lost).
const OUTSTANDING: usize = 8;
/// Offset samples considered when picking the lowest-RTT one.
const OFFSET_WINDOW: usize = 16;

/// Microsecond timestamps relative to an endpoint's own epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose zero is `epoch`.
    pub fn new(epoch: Instant) -> Self {
        Self { epoch }
    }
    /// Microseconds since the epoch (0 for instants before it).
    pub fn us(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.epoch).as_micros() as u64
    }
    /// The instant `us` microseconds after the epoch.
    pub fn instant(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }
}

/// Smoothed RTT as in RFC 6298 (gains 1/8 and 1/4), plus the minimum seen.
#[derive(Clone, Copy, Debug, Default)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min: Option<Duration>,
    latest: Option<Duration>,
}

impl RttEstimator {
    /// Feeds one sample.
    pub fn on_sample(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        match self.srtt {
            None => {
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(s) => {
                let dev = s.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + dev) / 4;
                self.srtt = Some((s * 7 + rtt) / 8);
            }
        }
    }
    /// Smoothed RTT, if any sample arrived.
    pub fn smoothed(&self) -> Option<Duration> {
        self.srtt
    }
    /// Smoothed RTT, or `fallback` before the first sample.
    pub fn smoothed_or(&self, fallback: Duration) -> Duration {
        self.srtt.unwrap_or(fallback)
    }
    /// RTT variation.
    pub fn variation(&self) -> Duration {
        self.rttvar
    }
    /// Smallest sample seen.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }
    /// Most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }
}

/// Sends pings on schedule and turns pongs into RTT and clock-offset estimates.
#[derive(Debug)]
pub struct Prober {
    next_ping: Instant,
    interval: Duration,
    remember: usize,
    next_id: u32,
    outstanding: VecDeque<Ping>,
    rtt: RttEstimator,
    offsets: VecDeque<(Duration, i64)>,
}

impl Prober {
    /// A prober whose first ping goes out at `now`.
    pub fn new(now: Instant) -> Self {
        Self::with_interval(now, PING_INTERVAL, OUTSTANDING, 1)
    }

    /// A prober pinging every `interval` from `now`, remembering the latest `remember`
    /// pings (a pong for an older one is not ours), its ping ids counting from `first_id`
    /// (so that several probers of one endpoint never answer each other's pongs).
    pub fn with_interval(now: Instant, interval: Duration, remember: usize, first_id: u32) -> Self {
        Self {
            next_ping: now,
            interval,
            remember: remember.max(1),
            next_id: first_id,
            outstanding: VecDeque::new(),
            rtt: RttEstimator::default(),
            offsets: VecDeque::new(),
        }
    }

    /// When the next ping is due.
    pub fn next_ping_at(&self) -> Instant {
        self.next_ping
    }

    /// Returns a ping if one is due.
    pub fn poll_ping(&mut self, now: Instant, clock: &Clock) -> Option<Ping> {
        if now < self.next_ping {
            return None;
        }
        self.next_ping = now + self.interval;
        let ping = Ping {
            ping_id: self.next_id,
            sent_us: clock.us(now),
            target_kbps: 0,
        };
        self.next_id = self.next_id.wrapping_add(1);
        if self.outstanding.len() >= self.remember {
            self.outstanding.pop_front();
        }
        self.outstanding.push_back(ping);
        Some(ping)
    }

    /// The answer to a peer's ping.
    pub fn answer(ping: &Ping, now: Instant, clock: &Clock) -> Pong {
        Pong {
            ping_id: ping.ping_id,
            echoed_sent_us: ping.sent_us,
            responder_us: clock.us(now),
        }
    }

    /// Feeds a pong; returns false (and changes nothing) if it answers no ping of ours.
    pub fn on_pong(&mut self, pong: &Pong, now: Instant, clock: &Clock) -> bool {
        let Some(pos) = self
            .outstanding
            .iter()
            .position(|p| p.ping_id == pong.ping_id && p.sent_us == pong.echoed_sent_us)
        else {
            return false;
        };
        self.outstanding.remove(pos);
        let now_us = clock.us(now);
        let rtt_us = now_us.saturating_sub(pong.echoed_sent_us);
        let rtt = Duration::from_micros(rtt_us);
        self.rtt.on_sample(rtt);
        let offset = pong.responder_us as i64 - (pong.echoed_sent_us + rtt_us / 2) as i64;
        if self.offsets.len() == OFFSET_WINDOW {
            self.offsets.pop_front();
        }
        self.offsets.push_back((rtt, offset));
        true
    }

    /// RTT estimates.
    pub fn rtt(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Peer clock minus local clock, µs, from the lowest-RTT recent probe.
    pub fn peer_clock_offset_us(&self) -> Option<i64> {
        self.offsets
            .iter()
            .min_by_key(|(rtt, _)| *rtt)
            .map(|&(_, off)| off)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_and_offset_from_a_symmetric_exchange() {
        let t0 = Instant::now();
        let local = Clock::new(t0);
        // The peer's clock started 5 s earlier: it reads 5 s ahead of ours.
        let peer = Clock::new(t0 - Duration::from_secs(5));
        let mut p = Prober::new(t0);
        let ping = p.poll_ping(t0, &local).expect("due at start");
        assert!(p.poll_ping(t0, &local).is_none(), "one per interval");
        let pong = Prober::answer(&ping, t0 + Duration::from_millis(3), &peer);
        assert!(p.on_pong(&pong, t0 + Duration::from_millis(6), &local));
        assert_eq!(p.rtt().smoothed(), Some(Duration::from_millis(6)));
        assert_eq!(p.peer_clock_offset_us(), Some(5_000_000));
        // A replay of the same pong, or a forged one, is ignored.
        assert!(!p.on_pong(&pong, t0 + Duration::from_millis(7), &local));
        let forged = Pong {
            ping_id: 99,
            echoed_sent_us: 0,
            responder_us: 0,
        };
        assert!(!p.on_pong(&forged, t0 + Duration::from_millis(7), &local));
    }

    #[test]
    fn smoothed_rtt_follows_rfc6298_gains() {
        let mut r = RttEstimator::default();
        r.on_sample(Duration::from_millis(8));
        r.on_sample(Duration::from_millis(16));
        assert_eq!(r.smoothed(), Some(Duration::from_millis(9)));
        assert_eq!(r.min(), Some(Duration::from_millis(8)));
    }
}
