//! Tandem's criterion benchmarks and latency report binaries.
//!
//! `benches/proto.rs` measures the protocol's data path on one core: packetize →
//! serialize → parse → reassemble throughput, and the receiver's cost per datagram. The
//! virtual-time latency report is `tandem-sim`'s binary. `benches/codec.rs` measures
//! encode and decode time per frame; the `codec-report` binary feeds each encoder (libaom,
//! rav1e, OpenH264) at a live rate and prints latency, lag, bitrate and quality, the bitrate
//! OpenH264 needs to match libaom's picture quality, and the wrappers' cost against libaom
//! and dav1d called directly ([`raw_aom`]). `net-report` measures the network driver and the
//! relay on loopback. The `g2g` binary is the glass-to-glass report: the `tandem` engine's
//! real sender and receiver through `tandem-relay`, figures defined by `tandem-sim`'s code;
//! `benches/e2e.rs` times the same pipeline ([`g2g`]) with criterion.

#![warn(missing_docs)]

pub mod g2g;
pub mod raw_aom;

use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_proto::{
    Endpoint, FecMode, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig,
};

/// Session id used by the benchmarks.
pub const SESSION: u32 = 0xbe_4c;

/// A sender/receiver pair driven back to back with no network in between.
#[derive(Debug)]
pub struct Loopback {
    /// The sender.
    pub tx: Sender,
    /// The receiver.
    pub rx: Receiver,
    /// Virtual now.
    pub now: Instant,
}

impl Default for Loopback {
    fn default() -> Self {
        Self::new()
    }
}

impl Loopback {
    /// A pair with FEC off (the path under test is the data path) and pacing unbounded.
    pub fn new() -> Self {
        let now = Instant::now();
        let mut c = SenderConfig::new(SESSION);
        c.fec = FecMode::Off;
        c.initial_capacity_bps = u64::MAX / 4;
        Self {
            tx: Sender::new(c, now),
            rx: Receiver::new(ReceiverConfig::new(SESSION), now),
            now,
        }
    }

    /// Sends one frame through serialize → parse → reassemble; returns the bytes delivered.
    pub fn frame(&mut self, data: Bytes, keyframe: bool) -> usize {
        self.now += Duration::from_micros(16_667);
        let frame = OutgoingFrame::av1(data, self.now, keyframe);
        if self.tx.send_frame(self.now, frame).is_err() {
            return 0;
        }
        // Past every pacing slot: the pacer hands over the whole frame.
        let later = self.now + Duration::from_millis(16);
        while let Some(t) = self.tx.poll_datagram(later) {
            self.rx.handle_datagram(later, t);
        }
        while self.rx.poll_datagram(later).is_some() {}
        let mut delivered = 0;
        while let Some(ReceiverEvent::Frame(f)) = self.rx.poll_event() {
            delivered += f.data.len();
        }
        delivered
    }
}
