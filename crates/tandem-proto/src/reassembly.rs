//! Bounded reassembly of frames from fragments and parity shards.
//!
//! A frame is complete when all its fragments are present, directly or rebuilt from parity.
//! Memory is bounded three ways: frames in flight, total bytes (counting each frame's slot
//! table too, so a hostile "4096 fragments" header cannot reserve memory for free), and a
//! window of frame ids around the newest frame seen. When a bound is hit the oldest
//! incomplete frame is evicted: it has waited longest and is the least likely to finish.
//! Fragments that contradict what earlier fragments said about their frame are rejected.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::fec;
use crate::packet::{
    FrameInfo, HEADER_LEN, MEDIA_HEADER_LEN, MediaFragment, PARITY_HEADER_LEN, ParityShard,
};

/// Frame ids further than this ahead of the newest frame are refused.
pub const FRAME_ID_WINDOW: u32 = 4096;
const SLOT_COST: usize = std::mem::size_of::<Option<Bytes>>();
/// Charged per stored piece on top of its whole datagram (which the zero-copy slice keeps
/// alive): bookkeeping, so a flood of one-byte fragments is not nearly free.
const PIECE_OVERHEAD: usize = 64;

/// A fully reassembled frame.
#[derive(Clone, Debug)]
pub struct CompleteFrame {
    /// Frame facts from its headers.
    pub info: FrameInfo,
    /// Sequence number of fragment 0.
    pub first_seq: u32,
    /// The reassembled bytes.
    pub data: Bytes,
    /// First datagram of the frame arrived.
    pub first_arrival: Instant,
    /// The frame became complete.
    pub completed_at: Instant,
    /// Fragments rebuilt from parity.
    pub fec_recovered: u16,
    /// Whether any fragment came from a retransmission or parity.
    pub repaired: bool,
    /// Per-frame delivery rate (bit/s) when the frame arrived unrepaired in ≥ 4 datagrams.
    pub delivery_rate_bps: Option<u64>,
}

#[derive(Debug)]
struct Partial {
    info: FrameInfo,
    first_seq: Option<u32>,
    fragments: Vec<Option<Bytes>>,
    received: u16,
    parity: Vec<(usize, Bytes)>,
    parity_count: u16,
    bytes: usize,
    first_arrival: Instant,
    last_arrival: Instant,
    bytes_after_first: usize,
    repaired: bool,
    tail_nacked: bool,
}

/// What became of an inserted fragment or shard.
#[derive(Debug)]
pub enum Insert {
    /// Stored; the frame is not complete yet.
    Stored,
    /// The frame is now complete.
    Complete(CompleteFrame),
    /// Already had it.
    Duplicate,
    /// The frame was already delivered or given up.
    Stale,
    /// Contradicts earlier headers of the same frame, or lies outside the id window.
    Rejected,
}

/// Reassembles frames within memory bounds.
#[derive(Debug)]
pub struct FrameReassembler {
    frames: BTreeMap<u32, Partial>,
    bytes: usize,
    max_frames: usize,
    max_bytes: usize,
    /// Frames below this id are finished (delivered or abandoned).
    floor: Option<u32>,
    newest: Option<u32>,
    use_fec: bool,
    evicted: u64,
    copied: u64,
    parity_copied: u64,
}

impl FrameReassembler {
    /// Holds at most `max_frames` frames and `max_bytes` bytes.
    pub fn new(max_frames: usize, max_bytes: usize, use_fec: bool) -> Self {
        Self {
            frames: BTreeMap::new(),
            bytes: 0,
            max_frames: max_frames.max(1),
            max_bytes,
            floor: None,
            newest: None,
            use_fec,
            evicted: 0,
            copied: 0,
            parity_copied: 0,
        }
    }

    fn admit(&mut self, now: Instant, info: &FrameInfo) -> Result<&mut Partial, Insert> {
        let id = info.frame_id;
        if self.floor.is_some_and(|f| id < f) {
            return Err(Insert::Stale);
        }
        if self
            .newest
            .is_some_and(|n| id > n.saturating_add(FRAME_ID_WINDOW))
        {
            return Err(Insert::Rejected);
        }
        if !self.frames.contains_key(&id) {
            let slots = usize::from(info.fragment_count) * SLOT_COST;
            while !self.frames.is_empty()
                && (self.frames.len() >= self.max_frames || self.bytes + slots > self.max_bytes)
            {
                self.evict_oldest();
            }
            if slots > self.max_bytes {
                return Err(Insert::Rejected);
            }
            self.bytes += slots;
            self.frames.insert(
                id,
                Partial {
                    info: *info,
                    first_seq: None,
                    fragments: vec![None; usize::from(info.fragment_count)],
                    received: 0,
                    parity: Vec::new(),
                    parity_count: 0,
                    bytes: slots,
                    first_arrival: now,
                    last_arrival: now,
                    bytes_after_first: 0,
                    repaired: false,
                    tail_nacked: false,
                },
            );
            self.newest = Some(self.newest.map_or(id, |n| n.max(id)));
        }
        let p = self.frames.get_mut(&id).ok_or(Insert::Rejected)?;
        if p.info != *info {
            return Err(Insert::Rejected);
        }
        Ok(p)
    }

    fn evict_oldest(&mut self) {
        if let Some((_, p)) = self.frames.pop_first() {
            self.bytes -= p.bytes;
            self.evicted += 1;
        }
    }

    /// Adds a media fragment. `retransmitted` marks a fragment the receiver had NACKed.
    pub fn insert_fragment(
        &mut self,
        now: Instant,
        f: MediaFragment,
        retransmitted: bool,
    ) -> Insert {
        let max_bytes = self.max_bytes;
        let total = self.bytes;
        let p = match self.admit(now, &f.frame) {
            Ok(p) => p,
            Err(e) => return e,
        };
        let first_seq = f.seq.wrapping_sub(u32::from(f.index));
        if p.first_seq.is_some_and(|s| s != first_seq) {
            return Insert::Rejected;
        }
        let i = usize::from(f.index);
        if p.fragments[i].is_some() {
            return Insert::Duplicate;
        }
        let cost = f.data.len() + HEADER_LEN + MEDIA_HEADER_LEN + PIECE_OVERHEAD;
        if total + cost > max_bytes {
            return Insert::Rejected;
        }
        p.first_seq = Some(first_seq);
        if p.received > 0 && !retransmitted {
            p.bytes_after_first += f.data.len();
        }
        if !retransmitted {
            p.last_arrival = now;
        }
        p.repaired |= retransmitted;
        p.bytes += cost;
        p.received += 1;
        p.fragments[i] = Some(f.data);
        self.bytes += cost;
        self.try_complete(now, f.frame.frame_id)
    }

    /// Adds a parity shard.
    pub fn insert_parity(&mut self, now: Instant, s: ParityShard) -> Insert {
        if !self.use_fec {
            return Insert::Stale;
        }
        let max_bytes = self.max_bytes;
        let total = self.bytes;
        let p = match self.admit(now, &s.frame) {
            Ok(p) => p,
            Err(e) => return e,
        };
        if p.first_seq.is_some_and(|f| f != s.first_seq)
            || (p.parity_count != 0 && p.parity_count != s.count)
        {
            return Insert::Rejected;
        }
        if p.parity.iter().any(|(i, _)| *i == usize::from(s.index)) {
            return Insert::Duplicate;
        }
        let cost = s.shard.len() + HEADER_LEN + PARITY_HEADER_LEN + PIECE_OVERHEAD;
        if total + cost > max_bytes {
            return Insert::Rejected;
        }
        p.first_seq = Some(s.first_seq);
        p.parity_count = s.count;
        p.bytes += cost;
        p.parity.push((usize::from(s.index), s.shard));
        self.bytes += cost;
        self.try_complete(now, s.frame.frame_id)
    }

    fn try_complete(&mut self, now: Instant, id: u32) -> Insert {
        let Some(p) = self.frames.get_mut(&id) else {
            return Insert::Stored;
        };
        let mut fec_recovered = 0;
        let count = usize::from(p.info.fragment_count);
        let missing = usize::from(p.received) < count;
        if missing
            && usize::from(p.received) + p.parity.len() >= count
            && let Some(rebuilt) = fec::recover_counted(
                &p.fragments,
                usize::from(p.parity_count),
                &p.parity,
                &mut self.parity_copied,
            )
        {
            for (i, b) in rebuilt {
                if p.fragments[i].is_none() {
                    p.fragments[i] = Some(b);
                    p.received += 1;
                    fec_recovered += 1;
                }
            }
            p.repaired = true;
        }
        if usize::from(p.received) < count {
            return Insert::Stored;
        }
        let Some(p) = self.frames.remove(&id) else {
            return Insert::Stored;
        };
        self.bytes -= p.bytes;
        let span = p.last_arrival.saturating_duration_since(p.first_arrival);
        let delivery_rate_bps = (!p.repaired && count >= 4 && span.as_micros() >= 100)
            .then(|| (p.bytes_after_first as f64 * 8.0 / span.as_secs_f64()) as u64);
        let data = match <[Option<Bytes>; 1]>::try_from(p.fragments) {
            // One fragment is the whole frame: its slice of the datagram, no copy.
            Ok([Some(only)]) => only,
            Ok([None]) => Bytes::new(),
            // The frame's one copy: its fragments, end to end.
            Err(fragments) => {
                let len = fragments.iter().flatten().map(Bytes::len).sum();
                let mut data = BytesMut::with_capacity(len);
                for f in fragments.iter().flatten() {
                    data.extend_from_slice(f);
                }
                self.copied += len as u64;
                data.freeze()
            }
        };
        Insert::Complete(CompleteFrame {
            info: p.info,
            first_seq: p.first_seq.unwrap_or(0),
            data,
            first_arrival: p.first_arrival,
            completed_at: now,
            fec_recovered,
            repaired: p.repaired,
            delivery_rate_bps,
        })
    }

    /// Marks every frame below `id` finished and drops what is held of them.
    pub fn finish_below(&mut self, id: u32) {
        if self.floor.is_some_and(|f| f >= id) {
            return;
        }
        self.floor = Some(id);
        while let Some((&k, _)) = self.frames.first_key_value() {
            if k >= id {
                break;
            }
            self.evict_oldest();
            self.evicted -= 1;
        }
    }

    /// Missing fragment sequence numbers of incomplete frames whose last datagram arrived at
    /// or before `quiet_since` (the frame's tail is overdue). Each frame is reported once;
    /// NACK retries take over from there.
    pub fn take_overdue_tails(&mut self, quiet_since: Instant) -> Vec<u32> {
        let mut out = Vec::new();
        for p in self.frames.values_mut() {
            let Some(first) = p.first_seq else { continue };
            if p.tail_nacked || p.last_arrival.max(p.first_arrival) > quiet_since {
                continue;
            }
            p.tail_nacked = true;
            for (i, f) in p.fragments.iter().enumerate() {
                if f.is_none() {
                    out.push(first.wrapping_add(i as u32));
                }
            }
        }
        out
    }

    /// Earliest last-arrival among incomplete frames whose tail is not yet NACKed.
    pub fn oldest_unchecked_tail(&self) -> Option<Instant> {
        self.frames
            .values()
            .filter(|p| !p.tail_nacked)
            .map(|p| p.last_arrival.max(p.first_arrival))
            .min()
    }

    /// Info of a buffered frame.
    pub fn info(&self, id: u32) -> Option<FrameInfo> {
        self.frames.get(&id).map(|p| p.info)
    }

    /// Newest frame id seen.
    pub fn newest(&self) -> Option<u32> {
        self.newest
    }

    /// Frames buffered.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Bytes buffered (fragment data, shards, and slot tables).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames evicted by a memory bound.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Fragment bytes copied into complete frames: every byte of each frame of two or more
    /// fragments, once (a frame of one fragment is that fragment, a zero-copy slice of its
    /// datagram).
    pub fn bytes_copied(&self) -> u64 {
        self.copied
    }

    /// Bytes copied to rebuild fragments from parity (see `fec::recover`).
    pub fn parity_bytes_copied(&self) -> u64 {
        self.parity_copied
    }
}
