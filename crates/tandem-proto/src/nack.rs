//! Which media sequence numbers are missing, and when to ask for them (again).
//!
//! A number becomes missing when a later one arrives (a gap) or when its frame's tail is
//! overdue. It is NACKed at once — on a LAN one round trip is a few milliseconds, cheaper
//! than waiting to tell reordering from loss — then again each `retry_interval` (about one
//! RTT) until it arrives, its frame is finished, or `max_retries` is reached.
//!
//! The set is bounded; a gap larger than the bound is not worth repairing packet by packet
//! (the receiver asks for a keyframe instead).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::packet::{MAX_NACK_RANGES, Nack, SeqRange};

/// Most sequence numbers tracked at once.
pub const MAX_TRACKED: usize = 2048;

#[derive(Clone, Copy, Debug)]
struct Missing {
    next_at: Instant,
    retries: u32,
}

/// Tracks missing sequence numbers.
#[derive(Debug, Default)]
pub struct NackTracker {
    missing: BTreeMap<u32, Missing>,
    given_up: u64,
}

impl NackTracker {
    /// Marks `seq` missing as of `now`; returns false if it was already tracked or the
    /// tracker is full.
    pub fn add(&mut self, now: Instant, seq: u32) -> bool {
        if self.missing.len() >= MAX_TRACKED || self.missing.contains_key(&seq) {
            return false;
        }
        self.missing.insert(
            seq,
            Missing {
                next_at: now,
                retries: 0,
            },
        );
        true
    }

    /// `seq` arrived; returns whether it had been missing.
    pub fn received(&mut self, seq: u32) -> bool {
        self.missing.remove(&seq).is_some()
    }

    /// The `count` numbers from `first` are all accounted for (their frame is complete).
    pub fn received_all(&mut self, first: u32, count: u32) {
        if self.missing.is_empty() {
            return;
        }
        for i in 0..count {
            self.missing.remove(&first.wrapping_add(i));
        }
    }

    /// Stops tracking everything below `seq` (its frames are finished).
    pub fn forget_below(&mut self, seq: u32) {
        self.missing = self.missing.split_off(&seq);
    }

    /// Builds a NACK of everything due, and schedules the next retry of each. The flag says
    /// whether it repeats an earlier request (the caller sends repeats redundantly: the
    /// feedback path loses in bursts too).
    pub fn poll(
        &mut self,
        now: Instant,
        retry_interval: Duration,
        max_retries: u32,
    ) -> Option<(Nack, bool)> {
        let mut due = Vec::new();
        let mut dead = Vec::new();
        let mut repeat = false;
        for (&seq, m) in self.missing.iter_mut() {
            if m.next_at > now {
                continue;
            }
            if m.retries >= max_retries {
                dead.push(seq);
                continue;
            }
            repeat |= m.retries > 0;
            m.retries += 1;
            m.next_at = now + retry_interval;
            due.push(seq);
        }
        for seq in dead {
            self.missing.remove(&seq);
            self.given_up += 1;
        }
        let mut ranges: Vec<SeqRange> = Vec::new();
        for seq in due {
            match ranges.last_mut() {
                Some(r)
                    if r.first.wrapping_add(u32::from(r.extra) + 1) == seq
                        && r.extra < u16::MAX =>
                {
                    r.extra += 1;
                }
                _ => {
                    if ranges.len() == usize::from(MAX_NACK_RANGES) {
                        break;
                    }
                    ranges.push(SeqRange {
                        first: seq,
                        extra: 0,
                    });
                }
            }
        }
        (!ranges.is_empty()).then_some((Nack { ranges }, repeat))
    }

    /// When the next NACK is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.missing.values().map(|m| m.next_at).min()
    }

    /// Numbers currently missing.
    pub fn len(&self) -> usize {
        self.missing.len()
    }

    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty()
    }

    /// Numbers abandoned after `max_retries`.
    pub fn given_up(&self) -> u64 {
        self.given_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nacks_at_once_then_retries_then_gives_up() {
        let t0 = Instant::now();
        let rtt = Duration::from_millis(5);
        let mut n = NackTracker::default();
        for s in [3, 4, 5, 9] {
            n.add(t0, s);
        }
        let (first, repeat) = n.poll(t0, rtt, 2).expect("due now");
        assert!(!repeat);
        assert_eq!(
            first.ranges,
            vec![
                SeqRange { first: 3, extra: 2 },
                SeqRange { first: 9, extra: 0 }
            ]
        );
        assert!(
            n.poll(t0 + Duration::from_millis(1), rtt, 2).is_none(),
            "not before the retry"
        );
        assert!(n.received(4));
        assert_eq!(n.next_due(), Some(t0 + rtt));
        let (second, repeat) = n.poll(t0 + rtt, rtt, 2).expect("retry");
        assert!(repeat);
        assert_eq!(second.ranges.len(), 3);
        assert!(n.poll(t0 + rtt * 2, rtt, 2).is_none());
        assert_eq!(n.given_up(), 3);
        assert!(n.is_empty());
    }

    #[test]
    fn bounded_and_forgets_finished_frames() {
        let t0 = Instant::now();
        let mut n = NackTracker::default();
        for s in 0..(MAX_TRACKED as u32 + 10) {
            n.add(t0, s);
        }
        assert_eq!(n.len(), MAX_TRACKED);
        n.forget_below(2000);
        assert_eq!(n.len(), MAX_TRACKED - 2000);
        let (nack, _) = n.poll(t0, Duration::from_millis(1), 5).expect("due");
        assert!(nack.ranges.len() <= usize::from(MAX_NACK_RANGES));
    }
}
