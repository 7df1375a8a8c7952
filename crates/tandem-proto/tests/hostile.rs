//! A million hostile or random datagrams (the second half over two paths): the receiver
//! never panics and its memory stays under 16 MiB. Memory is measured with a counting
//! global allocator around the receiver; this binary holds one test only, so nothing else
//! allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tandem_proto::packet::VERSION_BYTE;
use tandem_proto::{Endpoint, PathId, Receiver, ReceiverConfig};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY-free wrapper: forwards to System and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        CURRENT.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const SESSION: u32 = 0x0bad_cafe;

/// xorshift64*: a tiny deterministic generator is all this needs.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn header(out: &mut BytesMut, kind: u8, rng: &mut Rng) {
    out.put_u8(VERSION_BYTE);
    out.put_u8(kind);
    out.put_u32(SESSION);
    out.put_u16(rng.below(1 << 16) as u16);
    out.put_u32(rng.next() as u32);
}

/// A datagram built to pass the parser and reach protocol state.
fn crafted(rng: &mut Rng) -> Bytes {
    let mut b = BytesMut::with_capacity(1300);
    match rng.below(6) {
        0 | 1 => {
            header(&mut b, 1, rng);
            let count = 1 + rng.below(4096) as u16;
            // Frame ids clustered (to collide) or anywhere.
            let frame = if rng.below(2) == 0 {
                rng.below(200) as u32
            } else {
                rng.next() as u32
            };
            b.put_u32(rng.next() as u32); // seq
            b.put_u32(frame);
            b.put_u16(rng.below(u64::from(count)) as u16);
            b.put_u16(count);
            b.put_u8((rng.below(16) as u8) << 4 | rng.below(4) as u8);
            b.put_u16(0);
            b.put_u32(rng.next() as u32);
            let len = 1 + rng.below(1169) as usize;
            b.put_bytes(0xAA, len);
        }
        2 => {
            header(&mut b, 2, rng);
            let count = 1 + rng.below(4096) as u16;
            b.put_u32(rng.below(400) as u32);
            b.put_u16(count);
            b.put_u8(rng.below(4) as u8);
            b.put_u16(0);
            b.put_u32(rng.next() as u32);
            b.put_u32(rng.next() as u32);
            let pc = 1 + rng.below(64) as u16;
            b.put_u16(rng.below(u64::from(pc)) as u16);
            b.put_u16(pc);
            let half = 2 + rng.below(580) as usize;
            b.put_bytes(0x55, half * 2);
        }
        3 => {
            header(&mut b, 6, rng);
            b.put_u32(rng.next() as u32);
            b.put_u64(rng.next());
        }
        4 => {
            header(&mut b, 7, rng);
            b.put_u32(rng.next() as u32);
            b.put_u64(rng.next());
            b.put_u64(rng.next());
        }
        _ => {
            header(&mut b, 3 + rng.below(3) as u8, rng);
            let n = rng.below(64) as usize;
            for _ in 0..n {
                b.put_u8(rng.next() as u8);
            }
        }
    }
    // Exact-size, as a driver hands datagrams over (see the crate's run-loop contract).
    Bytes::copy_from_slice(&b)
}

fn random(rng: &mut Rng) -> Bytes {
    let len = rng.below(1500) as usize;
    (0..len).map(|_| rng.next() as u8).collect()
}

#[test]
fn a_million_hostile_datagrams_cost_bounded_memory_and_no_panic() {
    let t0 = Instant::now();
    let before_tables = CURRENT.load(Ordering::Relaxed);
    // reed-solomon-simd builds process-wide lookup tables (8 MiB `Mul128`) on first use and
    // keeps them: a one-time cost shared by every endpoint, measured here separately.
    let probe: Vec<Bytes> = vec![Bytes::from(vec![1u8; 100]); 4];
    let parity = tandem_proto::fec::encode_parity(&probe, 2);
    let _ = tandem_proto::fec::recover(
        &[None, Some(probe[1].clone()), None, Some(probe[3].clone())],
        2,
        &parity.into_iter().enumerate().collect::<Vec<_>>(),
    );
    drop(probe);
    let baseline = CURRENT.load(Ordering::Relaxed);
    let tables = baseline.saturating_sub(before_tables);
    let mut rx = Receiver::new(ReceiverConfig::new(SESSION), t0);
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut now = t0;
    let mut peak_live = 0usize;
    for i in 0..1_000_000u32 {
        let d = if i % 4 == 0 {
            random(&mut rng)
        } else {
            crafted(&mut rng)
        };
        now += Duration::from_micros(rng.below(40));
        // The second half over two paths, arriving on either.
        if i == 500_000 {
            rx.set_path_open(now, PathId::SECOND, true);
        }
        let path = if i >= 500_000 && rng.below(2) == 1 {
            PathId::SECOND
        } else {
            PathId::FIRST
        };
        rx.handle_datagram_on(now, path, d);
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        while rx.poll_datagram(now).is_some() {}
        while rx.poll_event().is_some() {}
        if i % 4096 == 0 {
            peak_live = peak_live.max(CURRENT.load(Ordering::Relaxed).saturating_sub(baseline));
        }
    }
    let stats = rx.stats();
    let live = CURRENT.load(Ordering::Relaxed).saturating_sub(baseline);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(baseline);
    println!(
        "receiver: live {live} B, peak {peak} B (FEC tables {tables} B on top); buffered {} B in {} frames; drops {:?}",
        stats.buffered_bytes, stats.buffered_frames, stats.drops
    );
    assert!(peak < 16 << 20, "receiver peak {peak} bytes");
    assert!(
        peak + tables < 16 << 20,
        "receiver peak {peak} + FEC tables {tables} bytes"
    );
    assert!(
        stats.drops.malformed > 200_000,
        "random datagrams are counted as malformed"
    );
    assert!(
        stats.media_packets > 200_000,
        "crafted datagrams reached the state machine"
    );
    assert!(stats.buffered_bytes <= 8 << 20);
    drop(rx);
    let after_drop = CURRENT.load(Ordering::Relaxed).saturating_sub(baseline);
    println!("after drop {after_drop} B");
}
