//! How often a frame's bytes are copied on their way through a sealed session, sans-IO:
//! once between the frame handed to the sender and the socket, once between the socket and
//! the reassembled frame, and nowhere in the security layer, as long as the driver hands
//! each datagram over in a buffer of its own (as `tandem-net` does).
//!
//! Two witnesses: the copy counters in the endpoints' statistics, and a counting allocator
//! around the endpoints' calls (bytes allocated on this thread inside them), which does not
//! rely on the counters: every extra copy of the payload needs a buffer to go to, so one
//! more copy per datagram anywhere on the path costs about one more of the frames' bytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_proto::security::{
    Identity, Secure, SecureConfig, SecureEvent, SecurityStats, SessionRole, TrustStore,
};
use tandem_proto::{
    Endpoint, FecMode, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, ReceiverStats,
    Sender, SenderConfig, SenderEvent, SenderStats,
};

struct Counting;

thread_local! {
    /// Whether this thread is inside an endpoint call, and what it allocated there. Per
    /// thread, so the tests of this binary may run side by side.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATED: Cell<u64> = const { Cell::new(0) };
    /// Of those, how many were the size of a datagram (see [`DATAGRAM_SIZED`]).
    static DATAGRAM_SIZED_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The sizes a buffer holding one full datagram would have: a 1169-byte fragment (1169),
/// with its 31 bytes of headers (1200), sealed (1216). No power of two falls in it, so
/// growing collections do not either (and a B-tree node of complete frames, 1288 bytes,
/// stays out).
const DATAGRAM_SIZED: std::ops::RangeInclusive<usize> = 1150..=1250;

fn count(bytes: usize) {
    // `try_with`: the allocator also serves threads being torn down.
    let _ = MEASURING.try_with(|m| {
        if m.get() {
            let _ = ALLOCATED.try_with(|a| a.set(a.get() + bytes as u64));
            if DATAGRAM_SIZED.contains(&bytes) {
                let _ = DATAGRAM_SIZED_ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
            }
        }
    });
}

// Forwards to System and only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        count(l.size());
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        // A grown buffer may move: count the new size, as a fresh allocation would.
        count(new_size);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with its allocations counted.
fn measured<T>(f: impl FnOnce() -> T) -> T {
    MEASURING.with(|m| m.set(true));
    let out = f();
    MEASURING.with(|m| m.set(false));
    out
}

const SESSION: u32 = 0xc0b1;
const LINK: Duration = Duration::from_millis(2);
/// Frame sizes, in turn: one fragment and less, exactly one, just over one, a few, many.
const SIZES: [usize; 6] = [300, 1169, 1170, 6000, 25_000, 60_000];

/// What the link does with a datagram on its way to the receiver.
enum Delivery {
    /// Each datagram in a buffer of its own, the only handle to it: as the driver will.
    Own,
    /// The receiver's handle is one of two: a tap keeps the other alive.
    Shared,
}

struct Session {
    now: Instant,
    tx: Secure<Sender>,
    rx: Secure<Receiver>,
    to_rx: Vec<(Instant, Bytes)>,
    to_tx: Vec<(Instant, Bytes)>,
    delivery: Delivery,
    /// Sender → receiver datagrams dropped: every `lose_every`-th (0: none).
    lose_every: u64,
    forward: u64,
    tap: Vec<Bytes>,
    sent: Vec<Bytes>,
    delivered: Vec<(u32, Bytes)>,
    keyframe_due: bool,
    /// The driver's send buffer, reused for every datagram.
    buf: Vec<u8>,
}

fn frame(n: usize) -> Bytes {
    let len = SIZES[n % SIZES.len()];
    let mut x = n as u64 * 0x9e37_79b9_7f4a_7c15 + 1;
    Bytes::from(
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>(),
    )
}

impl Session {
    fn new(delivery: Delivery, lose_every: u64, fec: FecMode) -> Session {
        let now = Instant::now();
        let (a, b) = (
            Identity::generate().expect("a"),
            Identity::generate().expect("b"),
        );
        let (mut ta, mut tb) = (TrustStore::new(), TrustStore::new());
        ta.add(b.public(), "receiver").expect("trust");
        tb.add(a.public(), "sender").expect("trust");
        let peer = b.public();
        let mut sender = SenderConfig::new(SESSION);
        sender.fec = fec;
        let mut receiver = ReceiverConfig::new(SESSION);
        receiver.fec = fec != FecMode::Off;
        let tx = SecureConfig::new(a, ta, SessionRole::Initiator { peer }, SESSION);
        let rx = SecureConfig::new(b, tb, SessionRole::Responder, SESSION);
        Session {
            now,
            tx: Secure::new(Sender::new(sender, now), tx, now),
            rx: Secure::new(Receiver::new(receiver, now), rx, now),
            to_rx: Vec::new(),
            to_tx: Vec::new(),
            delivery,
            lose_every,
            forward: 0,
            tap: Vec::new(),
            sent: Vec::new(),
            delivered: Vec::new(),
            keyframe_due: true,
            buf: Vec::with_capacity(2048),
        }
    }

    /// Streams `frames` frames at 60 fps, then runs on until everything is delivered.
    fn run(&mut self, frames: usize) {
        let mut next_frame = self.now;
        let end = self.now + Duration::from_millis(17 * frames as u64 + 500);
        while self.now < end {
            let now = self.now;
            if self.sent.len() < frames && now >= next_frame && self.tx.is_established() {
                let data = frame(self.sent.len());
                let f = OutgoingFrame::av1(data.clone(), now, self.keyframe_due);
                let tx = &mut self.tx;
                if measured(|| tx.inner_mut().send_frame(now, f)).is_ok() {
                    self.sent.push(data);
                    self.keyframe_due = false;
                }
                next_frame = now + Duration::from_micros(16_667);
            }
            self.pump(now);
            self.now = now + Duration::from_micros(250);
        }
    }

    fn pump(&mut self, now: Instant) {
        let (tx, rx, buf) = (&mut self.tx, &mut self.rx, &mut self.buf);
        // The driver's send buffer is reused; the socket copies each datagram out of it,
        // and the receiving socket into a buffer of the datagram's own.
        while let Some(n) = measured(|| tx.poll_transmit(now, buf)) {
            assert_eq!(
                n,
                buf.len(),
                "one datagram, at the start of an empty buffer"
            );
            self.forward += 1;
            let received = Bytes::from(buf.to_vec());
            buf.clear();
            if self.lose_every > 0 && self.forward.is_multiple_of(self.lose_every) {
                continue;
            }
            let received = match self.delivery {
                Delivery::Own => received,
                Delivery::Shared => {
                    self.tap.push(received.clone());
                    received
                }
            };
            self.to_rx.push((now + LINK, received));
        }
        while let Some(n) = measured(|| rx.poll_transmit(now, buf)) {
            assert_eq!(n, buf.len());
            self.to_tx.push((now + LINK, Bytes::from(buf.to_vec())));
            buf.clear();
        }
        while self.to_rx.first().is_some_and(|(t, _)| *t <= now) {
            let (_, d) = self.to_rx.remove(0);
            measured(|| rx.handle_datagram(now, d));
        }
        while self.to_tx.first().is_some_and(|(t, _)| *t <= now) {
            let (_, d) = self.to_tx.remove(0);
            measured(|| tx.handle_datagram(now, d));
        }
        measured(|| {
            tx.handle_timeout(now);
            rx.handle_timeout(now);
        });
        while let Some(e) = measured(|| tx.poll_event()) {
            if let SecureEvent::Inner(SenderEvent::KeyframeRequested) = e {
                self.keyframe_due = true;
            }
        }
        while let Some(e) = measured(|| rx.poll_event()) {
            if let SecureEvent::Inner(ReceiverEvent::Frame(f)) = e {
                self.delivered.push((f.frame_id, f.data));
            }
        }
    }

    fn stats(&self) -> (SenderStats, ReceiverStats, SecurityStats, SecurityStats) {
        (
            self.tx.inner().stats(),
            self.rx.inner().stats(),
            self.tx.stats(),
            self.rx.stats(),
        )
    }

    /// Every frame sent was delivered, in order, byte for byte.
    fn assert_all_delivered(&self) {
        assert_eq!(
            self.delivered.len(),
            self.sent.len(),
            "every frame delivered"
        );
        for (i, ((id, got), want)) in self.delivered.iter().zip(&self.sent).enumerate() {
            assert_eq!(*id as usize, i, "in order");
            assert!(got == want, "frame {i} arrives as sent");
        }
    }

    /// Bytes of the delivered frames of more than one fragment: the ones reassembly copies.
    fn multi_fragment_bytes(&self) -> u64 {
        let per = self.tx.inner().fragment_payload();
        self.delivered
            .iter()
            .map(|(_, d)| d.len())
            .filter(|n| *n > per)
            .sum::<usize>() as u64
    }
}

#[test]
fn each_payload_byte_is_copied_once_per_side() {
    let mut s = Session::new(Delivery::Own, 0, FecMode::Adaptive);
    let allocated_before = ALLOCATED.with(Cell::get);
    let datagram_sized_before = DATAGRAM_SIZED_ALLOCATIONS.with(Cell::get);
    s.run(240);
    let allocated = ALLOCATED.with(Cell::get) - allocated_before;
    let datagram_sized = DATAGRAM_SIZED_ALLOCATIONS.with(Cell::get) - datagram_sized_before;
    s.assert_all_delivered();
    let (tx, rx, tx_sec, rx_sec) = s.stats();
    let media: u64 = s.sent.iter().map(|f| f.len() as u64).sum();
    let delivered: u64 = s.delivered.iter().map(|(_, d)| d.len() as u64).sum();
    assert_eq!(tx.media_bytes, media);
    assert_eq!(rx.frame_bytes_completed, delivered);

    // Sender: one copy per byte of fresh media (retransmissions and parity are counted
    // apart; a clean link needs no retransmission).
    assert_eq!(tx.media_bytes_copied, media, "{tx:?}");
    assert_eq!(tx.retransmitted_bytes_copied, 0);
    // Receiver: one copy per byte of each frame of several fragments; the frames of one
    // fragment are handed on as their slice of the datagram.
    let multi = s.multi_fragment_bytes();
    assert!(multi < delivered, "some frames are of one fragment");
    assert_eq!(rx.frame_bytes_copied, multi, "{rx:?}");
    assert_eq!(rx.parity_bytes_copied, 0, "nothing to repair");
    // The security layer seals and opens in place.
    for sec in [tx_sec, rx_sec] {
        assert_eq!(
            (
                sec.open_copies,
                sec.open_bytes_copied,
                sec.seal_bytes_copied
            ),
            (0, 0, 0),
            "{sec:?}"
        );
    }
    assert!(tx_sec.sealed > 1000 && rx_sec.opened == tx_sec.sealed);

    // The allocator's witness. A copy of a datagram needs a datagram-sized buffer, and
    // inside the endpoints the only ones are the reassembly buffers of the 1170-byte
    // frames (two fragments: a copy the counters count). Encoding apart from the caller's
    // buffer, sealing or opening into a new one would each add one per datagram.
    let frames_1170 = s.delivered.iter().filter(|(_, d)| d.len() == 1170).count() as u64;
    assert_eq!(
        datagram_sized, frames_1170,
        "datagram-sized buffers allocated"
    );
    // And in bytes: the frames' reassembly buffers and parity are all the payload-sized
    // memory the endpoints allocate; their bookkeeping (slot tables, queues) comes to well
    // under the media's size, which one more copy of every datagram would add.
    let copies = rx.frame_bytes_copied + tx.parity_bytes_copied;
    assert!(
        allocated < copies + media,
        "{allocated} bytes allocated inside the endpoints, {copies} of them copies, \
         {media} bytes of media"
    );
}

#[test]
fn retransmissions_and_parity_are_counted_apart() {
    // Every 17th datagram to the receiver lost, parity on every frame.
    let mut s = Session::new(Delivery::Own, 17, FecMode::Fixed(0.25));
    s.run(240);
    let (tx, rx, tx_sec, rx_sec) = s.stats();
    let media: u64 = s.sent.iter().map(|f| f.len() as u64).sum();
    assert_eq!(
        tx.media_bytes_copied, media,
        "fresh media still copied once"
    );
    assert!(
        tx.retransmissions > 0 && tx.retransmitted_bytes_copied > 0,
        "{tx:?}"
    );
    assert!(tx.parity_packets > 0 && tx.parity_bytes_copied > 0);
    assert!(
        rx.frames_fec_recovered > 0 && rx.parity_bytes_copied > 0,
        "{rx:?}"
    );
    // Every frame completed of several fragments is copied once, repaired or not.
    let per = s.tx.inner().fragment_payload() as u64;
    let single: u64 = s
        .delivered
        .iter()
        .map(|(_, d)| d.len() as u64)
        .filter(|n| *n <= per)
        .sum();
    assert_eq!(rx.frame_bytes_copied, rx.frame_bytes_completed - single);
    for sec in [tx_sec, rx_sec] {
        assert_eq!((sec.open_copies, sec.seal_bytes_copied), (0, 0), "{sec:?}");
    }
}

#[test]
fn a_shared_datagram_opens_from_a_copy() {
    let mut s = Session::new(Delivery::Shared, 0, FecMode::Adaptive);
    s.run(60);
    s.assert_all_delivered();
    let (tx, rx, _, rx_sec) = s.stats();
    // Every sealed datagram was shared with the tap, so each was opened from a copy.
    let sealed_bytes: u64 = s
        .tap
        .iter()
        .filter(|d| d[1] >> 4 == 1)
        .map(|d| d.len() as u64)
        .sum();
    assert_eq!(rx_sec.open_copies, rx_sec.opened, "{rx_sec:?}");
    assert_eq!(rx_sec.open_bytes_copied, sealed_bytes);
    // The copy is the security layer's; the endpoints' own counts do not change.
    assert_eq!(tx.media_bytes_copied, tx.media_bytes);
    assert_eq!(rx.frame_bytes_copied, s.multi_fragment_bytes());
    // And the tap still holds the datagrams as they were on the wire (opened in place,
    // they would read as unsealed now): opening a copy leaves the shared buffer alone.
    let still_sealed = s.tap.iter().filter(|d| d[1] >> 4 == 1).count() as u64;
    assert_eq!(still_sealed, rx_sec.opened);
}
