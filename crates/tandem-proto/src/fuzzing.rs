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
        while rx.poll_datagram(now).is_some() {}
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
            while p.poll_datagram(now).is_some() {}
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
    let Some(reply) = rx.poll_datagram(t0) else {
        panic!("a paired initiator gets a reply");
    };
    let Ok((keys, _)) =
        init.finish(&reply[crate::packet::HEADER_LEN + crate::security::handshake::MAC1_LEN..])
    else {
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
        while rx.poll_datagram(now).is_some() {}
        while rx.poll_event().is_some() {}
        assert!(rx.inner().stats().buffered_bytes <= bound + 64 * 1024);
    }
}

/// A whole session between a sealed sender and a sealed receiver in virtual time —
/// handshake, streaming, a silence long enough that the sender rehandshakes, streaming
/// again — with hostile datagrams from `data` interleaved: raw bytes to either side,
/// replays of the session's own datagrams (exact or with a bit flipped), and drops of real
/// ones.
///
/// Layout: repeated `[action: u8][arg: u8]`, one pair consumed per 1 ms step; action % 6:
/// 0 raw bytes to the receiver (`arg` bytes taken from the input), 1 the same to the
/// sender, 2 replay a captured datagram (index `arg`), 3 replay it with bit `arg` flipped,
/// 4 drop the next real datagram, 5 nothing.
///
/// Checks: nothing panics; the receiver's buffers stay bounded; neither side opens more
/// datagrams than the genuine ones delivered to it (nothing hostile is authenticated) nor
/// ever authenticates another peer; and when nothing real was dropped, the stream resumes
/// after the rehandshake (frames are delivered in its second half).
pub fn drive_session(data: &[u8]) -> SessionSummary {
    use std::collections::VecDeque;

    use crate::security::TrustStore;
    use crate::security::{Secure, SecureConfig, SecureEvent, SecurityEvent, SessionRole};
    use crate::{Sender, SenderConfig};

    let t0 = Instant::now();
    let (a, b) = (fuzz_identity(1), fuzz_identity(2));
    let (mut trust_a, mut trust_b) = (TrustStore::new(), TrustStore::new());
    let _ = trust_a.add(b.public(), "b");
    let _ = trust_b.add(a.public(), "a");
    let config = ReceiverConfig::new(FUZZ_SESSION);
    let bound = config.max_buffered_bytes;
    let mut rx = Secure::new(
        Receiver::new(config, t0),
        SecureConfig::new(b.clone(), trust_b, SessionRole::Responder, FUZZ_SESSION),
        t0,
    );
    let mut tx = Secure::new(
        Sender::new(SenderConfig::new(FUZZ_SESSION), t0),
        SecureConfig::new(
            a.clone(),
            trust_a,
            SessionRole::Initiator { peer: b.public() },
            FUZZ_SESSION,
        ),
        t0,
    );
    // Genuine datagrams each side was handed (what it may open at most).
    let (mut genuine_to_rx, mut genuine_to_tx) = (0u64, 0u64);
    let mut captured: VecDeque<(bool, Bytes)> = VecDeque::new();
    let mut dropped_real = false;
    let mut drop_next = false;
    // The encoder's side: the first frame is a keyframe, and so is the next after a request.
    let mut keyframe_wanted = true;
    let (mut delivered_early, mut delivered_late) = (0u64, 0u64);
    let mut input = data;
    let mut now = t0;
    let steps = 600u32;
    for step in 0..steps {
        // Half way: 1.5 s in which nothing arrives, so the sender rehandshakes.
        now += if step == steps / 2 {
            Duration::from_millis(1500)
        } else {
            Duration::from_millis(1)
        };
        if step % 17 == 0 && step < steps - 40 {
            let size = 400 + (step as usize * 37) % 3000;
            let keyframe = std::mem::take(&mut keyframe_wanted);
            let frame =
                crate::OutgoingFrame::av1(Bytes::from(vec![step as u8; size]), now, keyframe);
            let _ = tx.inner_mut().send_frame(now, frame);
        }
        if tx.poll_timeout().is_some_and(|t| t <= now) {
            tx.handle_timeout(now);
        }
        if rx.poll_timeout().is_some_and(|t| t <= now) {
            rx.handle_timeout(now);
        }
        // The real traffic of this step, each way.
        if step != steps / 2 {
            while let Some(t) = tx.poll_datagram(now) {
                if std::mem::take(&mut drop_next) {
                    dropped_real = true;
                    continue;
                }
                remember(&mut captured, true, &t);
                genuine_to_rx += 1;
                rx.handle_datagram(now, t);
            }
            while let Some(t) = rx.poll_datagram(now) {
                remember(&mut captured, false, &t);
                genuine_to_tx += 1;
                tx.handle_datagram(now, t);
            }
        } else {
            while tx.poll_datagram(now).is_some() {}
            while rx.poll_datagram(now).is_some() {}
        }
        // One hostile action.
        if input.len() >= 2 {
            let (action, arg) = (input[0], input[1]);
            input = &input[2..];
            match action % 6 {
                0 | 1 => {
                    let take = usize::from(arg).min(input.len());
                    let raw = Bytes::copy_from_slice(&input[..take]);
                    input = &input[take..];
                    if action % 6 == 0 {
                        rx.handle_datagram(now, raw);
                    } else {
                        tx.handle_datagram(now, raw);
                    }
                }
                2 | 3 => {
                    if let Some((to_rx, d)) = captured
                        .get(usize::from(arg) % captured.len().max(1))
                        .cloned()
                    {
                        let mut d = d.to_vec();
                        if action % 6 == 3 && !d.is_empty() {
                            let bit = usize::from(arg) * 7 % (d.len() * 8);
                            d[bit / 8] ^= 1 << (bit % 8);
                        }
                        if to_rx {
                            rx.handle_datagram(now, Bytes::from(d));
                        } else {
                            tx.handle_datagram(now, Bytes::from(d));
                        }
                    }
                }
                4 => drop_next = true,
                _ => {}
            }
        }
        while let Some(e) = tx.poll_event() {
            match e {
                SecureEvent::Security(SecurityEvent::Established { peer }) => {
                    assert_eq!(peer, b.public(), "the sender authenticated someone else");
                }
                SecureEvent::Inner(crate::SenderEvent::KeyframeRequested) => {
                    keyframe_wanted = true;
                }
                _ => {}
            }
        }
        while let Some(e) = rx.poll_event() {
            match e {
                SecureEvent::Security(SecurityEvent::Established { peer }) => {
                    assert_eq!(peer, a.public(), "the receiver authenticated someone else");
                }
                SecureEvent::Inner(crate::ReceiverEvent::Frame(_)) => {
                    if step > steps / 2 {
                        delivered_late += 1;
                    } else {
                        delivered_early += 1;
                    }
                }
                _ => {}
            }
        }
        assert!(rx.inner().stats().buffered_bytes <= bound + 64 * 1024);
        assert!(
            rx.stats().opened <= genuine_to_rx && tx.stats().opened <= genuine_to_tx,
            "a hostile datagram was opened"
        );
    }
    if !dropped_real {
        assert!(
            delivered_late > 0,
            "the stream did not resume after the rehandshake"
        );
    }
    SessionSummary {
        delivered_early,
        delivered_late,
        handshakes: rx.stats().handshakes,
    }
}

/// What [`drive_session`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionSummary {
    /// Frames the receiver delivered before the silence.
    pub delivered_early: u64,
    /// And after it.
    pub delivered_late: u64,
    /// Handshakes the receiver accepted.
    pub handshakes: u64,
}

/// Keeps the newest 64 genuine datagrams for replay.
fn remember(captured: &mut std::collections::VecDeque<(bool, Bytes)>, to_rx: bool, d: &Bytes) {
    if captured.len() == 64 {
        captured.pop_front();
    }
    captured.push_back((to_rx, d.clone()));
}
