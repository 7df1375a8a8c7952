//! The sender's bounded retransmission history, answering NACKs.
//!
//! Fragments are kept by sequence number in a ring, bounded both in count and in age: a
//! fragment older than the receiver's give-up horizon is worthless, and an unbounded
//! history is memory a lossy peer could make us hold. A fragment is retransmitted at most
//! once per `min_interval` (about one RTT), so duplicate NACKs cost nothing.
//!
//! A fragment NACKed again after a retransmission was lost is sent with rising redundancy
//! (2, 3, then 4 copies): losses come in bursts, and a lone retransmission sent into an
//! idle link is the very next datagram a burst will take. Repeat requests are rare, so the
//! copies cost little; each one that gets through saves a round trip of waiting.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::packet::MediaFragment;

#[derive(Debug)]
struct Entry {
    fragment: MediaFragment,
    sent_at: Instant,
    last_retransmit: Option<Instant>,
    retransmits: u8,
}

/// Bounded history of sent fragments.
#[derive(Debug)]
pub struct RetransmitHistory {
    entries: VecDeque<Entry>,
    first_seq: u32,
    max_packets: usize,
    max_age: Duration,
}

/// Why a NACKed sequence number was not retransmitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// Never sent, or already evicted.
    Unknown,
    /// Older than the history's age bound.
    TooOld,
    /// Retransmitted too recently.
    RecentlyRetransmitted,
}

impl RetransmitHistory {
    /// A history holding at most `max_packets` fragments no older than `max_age`.
    pub fn new(max_packets: usize, max_age: Duration) -> Self {
        Self {
            entries: VecDeque::new(),
            first_seq: 0,
            max_packets: max_packets.max(1),
            max_age,
        }
    }

    /// Records a fragment at its first transmission. Sequence numbers must be consecutive.
    pub fn push(&mut self, now: Instant, fragment: MediaFragment) {
        if self.entries.is_empty() {
            self.first_seq = fragment.seq;
        }
        debug_assert_eq!(
            fragment.seq,
            self.first_seq.wrapping_add(self.entries.len() as u32)
        );
        self.entries.push_back(Entry {
            fragment,
            sent_at: now,
            last_retransmit: None,
            retransmits: 0,
        });
        while self.entries.len() > self.max_packets {
            self.entries.pop_front();
            self.first_seq = self.first_seq.wrapping_add(1);
        }
    }

    /// The fragment to retransmit for `seq` and how many copies to send, if it should be.
    pub fn retransmit(
        &mut self,
        now: Instant,
        seq: u32,
        min_interval: Duration,
    ) -> Result<(MediaFragment, usize), Miss> {
        let idx = seq.wrapping_sub(self.first_seq) as usize;
        let max_age = self.max_age;
        let e = self.entries.get_mut(idx).ok_or(Miss::Unknown)?;
        if now.saturating_duration_since(e.sent_at) > max_age {
            return Err(Miss::TooOld);
        }
        if e.last_retransmit
            .is_some_and(|t| now.saturating_duration_since(t) < min_interval)
        {
            return Err(Miss::RecentlyRetransmitted);
        }
        e.last_retransmit = Some(now);
        let copies = 1 + usize::from(e.retransmits.min(3));
        e.retransmits = e.retransmits.saturating_add(1);
        Ok((e.fragment.clone(), copies))
    }

    /// Fragments held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::test_fragment;

    fn frag(seq: u32) -> MediaFragment {
        test_fragment(seq, 1)
    }

    #[test]
    fn bounded_by_count_and_age_and_rate_limited() {
        let t0 = Instant::now();
        let mut h = RetransmitHistory::new(3, Duration::from_millis(500));
        for s in 10..15 {
            h.push(t0, frag(s));
        }
        assert_eq!(h.len(), 3);
        assert_eq!(h.retransmit(t0, 11, Duration::ZERO), Err(Miss::Unknown));
        assert_eq!(h.retransmit(t0, 15, Duration::ZERO), Err(Miss::Unknown));
        assert_eq!(
            h.retransmit(t0, 13, Duration::from_millis(5))
                .map(|(f, n)| (f.seq, n)),
            Ok((13, 1))
        );
        assert_eq!(
            h.retransmit(t0 + Duration::from_millis(1), 13, Duration::from_millis(5)),
            Err(Miss::RecentlyRetransmitted)
        );
        let again = h.retransmit(t0 + Duration::from_millis(6), 13, Duration::from_millis(5));
        assert_eq!(
            again.map(|(_, n)| n),
            Ok(2),
            "a repeat request gets redundancy"
        );
        for (i, want) in [3, 4, 4].into_iter().enumerate() {
            let t = t0 + Duration::from_millis(12 + 6 * i as u64);
            assert_eq!(
                h.retransmit(t, 13, Duration::from_millis(5))
                    .map(|(_, n)| n),
                Ok(want)
            );
        }
        assert_eq!(
            h.retransmit(t0 + Duration::from_secs(1), 14, Duration::ZERO),
            Err(Miss::TooOld)
        );
    }
}
