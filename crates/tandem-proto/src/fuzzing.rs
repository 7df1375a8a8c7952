//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the tests that run the same
//! bodies on random input in CI, so the fuzz harnesses cannot rot unnoticed.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::packet::Packet;
use crate::{Endpoint, Receiver, ReceiverConfig};

/// Session id the fuzz inputs are parsed against.
pub const FUZZ_SESSION: u32 = 0x7a4d_0001;

/// Parses `data`; whatever parses must re-encode to the identical bytes.
pub fn parse_roundtrip(data: &[u8]) {
    if let Ok(p) = Packet::parse(Bytes::copy_from_slice(data), FUZZ_SESSION) {
        let again = p.encode();
        assert_eq!(&again[..], data, "parse → encode must be the identity");
    }
}

/// Drives a receiver with a stream of datagrams cut from `data`.
///
/// Layout: repeated `[len: u16 BE][advance µs: u8][len bytes]`. Every datagram is
/// rewritten to carry [`FUZZ_SESSION`] when it is long enough, so the fuzzer reaches the
/// state machine instead of the session check. Checks that the receiver's buffers stay
/// within its configured bounds.
pub fn drive_receiver(data: &[u8]) {
    let t0 = Instant::now();
    let config = ReceiverConfig::new(FUZZ_SESSION);
    let bound = config.max_buffered_bytes;
    let mut rx = Receiver::new(config, t0);
    let mut now = t0;
    let mut rest = data;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        now += Duration::from_micros(u64::from(rest[2]) * 50);
        rest = &rest[3..];
        let take = len.min(rest.len());
        let mut dgram = rest[..take].to_vec();
        rest = &rest[take..];
        if dgram.len() >= 6 {
            dgram[2..6].copy_from_slice(&FUZZ_SESSION.to_be_bytes());
        }
        rx.handle_datagram(now, Bytes::from(dgram));
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        while rx.poll_transmit(now).is_some() {}
        while rx.poll_event().is_some() {}
        assert!(rx.stats().buffered_bytes <= bound + 64 * 1024);
    }
}
