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

/// Fixed identities for the security harnesses: the fuzzer must see the same keys every run.
fn fuzz_identity(seed: u8) -> crate::security::Identity {
    let mut blob = b"TDID\x01".to_vec();
    blob.extend_from_slice(&[seed; 32]);
    match crate::security::Identity::from_bytes(&blob) {
        Ok(id) => id,
        Err(e) => panic!("a fixed identity must load: {e}"),
    }
}

/// Feeds `data` to every handshake and pairing step that takes bytes from the network:
/// the responder's message 1, the initiator's message 2, and both pairing roles' datagrams.
/// Nothing may panic; a stranger's message never yields a session.
pub fn drive_handshake(data: &[u8]) {
    use crate::security::handshake::{Initiator, respond};
    use crate::security::{Pairing, PairingConfig, PairingRole, TrustStore};
    let (a, b) = (fuzz_identity(1), fuzz_identity(2));
    let mut trust = TrustStore::new();
    let _ = trust.add(a.public(), "a");
    // Random bytes are never a valid message 1 from a paired key.
    if let Ok(accepted) = respond(&b, &trust, data, &[]) {
        assert_eq!(accepted.keys.peer, a.public());
    }
    if let Ok((init, _)) = Initiator::start(&a, b.public(), &[]) {
        assert!(init.finish(data).is_err(), "random bytes are not message 2");
    }
    let t0 = Instant::now();
    for role in [PairingRole::ShowCode, PairingRole::EnterCode] {
        let mut p = Pairing::new(PairingConfig::new(role, "123456", a.clone(), "fuzz"), t0);
        let mut now = t0;
        for chunk in data.chunks(80) {
            // Pairing datagrams are type 10 with session 0; keep the fuzzer on that path.
            let mut d = crate::packet::security_header(crate::packet::TYPE_PAIR, 0, 0).to_vec();
            d.extend_from_slice(chunk);
            p.handle_datagram(now, Bytes::from(d));
            now += Duration::from_millis(100);
            p.handle_timeout(now);
            while p.poll_transmit(now).is_some() {}
            while let Some(e) = p.poll_event() {
                assert!(
                    !matches!(e, crate::security::PairingEvent::Paired { .. }),
                    "random bytes cannot pair"
                );
            }
        }
    }
}

/// Drives a receiver behind the security layer: a real handshake first, then a stream cut
/// from `data` as in [`drive_receiver`], each datagram either sealed with the session's key
/// (reaching the receiver's state machine through the layer) or delivered raw (forgeries,
/// handshakes, garbage). Checks that buffers stay bounded and that no raw datagram is ever
/// taken as authentic.
pub fn drive_secure_receiver(data: &[u8]) {
    use crate::security::handshake::Initiator;
    use crate::security::seal::SealKeys;
    use crate::security::{Secure, SecureConfig, SessionRole, TrustStore};
    let t0 = Instant::now();
    let (a, b) = (fuzz_identity(1), fuzz_identity(2));
    let mut trust = TrustStore::new();
    let _ = trust.add(a.public(), "a");
    let config = ReceiverConfig::new(FUZZ_SESSION);
    let bound = config.max_buffered_bytes;
    let mut rx = Secure::new(
        Receiver::new(config, t0),
        SecureConfig::new(b.clone(), trust, SessionRole::Responder, FUZZ_SESSION),
        t0,
    );
    let Ok((init, msg1)) = Initiator::start(&a, b.public(), &[]) else {
        return;
    };
    let mut m =
        crate::packet::security_header(crate::packet::TYPE_HANDSHAKE, FUZZ_SESSION, 0).to_vec();
    m.extend_from_slice(&msg1);
    rx.handle_datagram(t0, Bytes::from(m));
    let Some(reply) = rx.poll_transmit(t0) else {
        panic!("a paired initiator gets a reply");
    };
    let Ok((keys, _)) = init.finish(&reply.contents[crate::packet::HEADER_LEN..]) else {
        panic!("the reply completes the handshake");
    };
    let mut seal = SealKeys::new(keys.send);
    let mut now = t0;
    let mut rest = data;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        now += Duration::from_micros(u64::from(rest[2]) * 50);
        let sealed = rest[3] & 1 == 1;
        rest = &rest[4..];
        let take = len.min(rest.len());
        let mut dgram = rest[..take].to_vec();
        rest = &rest[take..];
        if dgram.len() >= 6 {
            dgram[2..6].copy_from_slice(&FUZZ_SESSION.to_be_bytes());
        }
        if sealed && dgram.len() >= crate::packet::HEADER_LEN {
            dgram[0] = crate::packet::VERSION_BYTE;
            dgram[1] &= 0x0f;
            match seal.seal(&dgram) {
                Ok(s) => rx.handle_datagram(now, s),
                Err(_) => continue,
            }
        } else {
            let opened_before = rx.stats().opened;
            rx.handle_datagram(now, Bytes::from(dgram));
            assert_eq!(
                rx.stats().opened,
                opened_before,
                "a raw datagram was opened"
            );
        }
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        while rx.poll_transmit(now).is_some() {}
        while rx.poll_event().is_some() {}
        assert!(rx.inner().stats().buffered_bytes <= bound + 64 * 1024);
    }
}
