//! The security layer end to end in virtual time: a paired sender and receiver handshake and
//! stream sealed; a man in the middle flips bits, truncates, replays, reorders and injects,
//! and all of it is counted and dropped while the stream goes on; strangers, other
//! versions and restarts each end the way the honest side can understand.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_proto::security::{
    Identity, MAX_VERSION_REPORTS, Secure, SecureConfig, SecureEvent, SecurityEvent, SessionRole,
    TrustStore,
};
use tandem_proto::{
    Endpoint, OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig,
    SenderEvent,
};

const SESSION: u32 = 0x5ec0;
const LINK: Duration = Duration::from_millis(2);

type Tamper = Box<dyn FnMut(Instant, Bytes) -> Vec<Bytes>>;

struct Run {
    now: Instant,
    tx: Secure<Sender>,
    rx: Secure<Receiver>,
    to_rx: Vec<(Instant, Bytes)>,
    to_tx: Vec<(Instant, Bytes)>,
    tamper: Tamper,
    frames: Vec<u32>,
    tx_events: Vec<SecurityEvent>,
    rx_events: Vec<SecurityEvent>,
    next_frame: Instant,
    sent: u32,
    keyframe_due: bool,
}

fn identities() -> (Identity, Identity, TrustStore, TrustStore) {
    let (a, b) = (
        Identity::generate().expect("a"),
        Identity::generate().expect("b"),
    );
    let (mut ta, mut tb) = (TrustStore::new(), TrustStore::new());
    ta.add(b.public(), "receiver").expect("trust");
    tb.add(a.public(), "sender").expect("trust");
    (a, b, ta, tb)
}

impl Run {
    fn new(tx: SecureConfig, rx: SecureConfig, tamper: Tamper) -> Run {
        let now = Instant::now();
        Run {
            now,
            tx: Secure::new(Sender::new(SenderConfig::new(SESSION), now), tx, now),
            rx: Secure::new(Receiver::new(ReceiverConfig::new(SESSION), now), rx, now),
            to_rx: Vec::new(),
            to_tx: Vec::new(),
            tamper,
            frames: Vec::new(),
            tx_events: Vec::new(),
            rx_events: Vec::new(),
            next_frame: now,
            sent: 0,
            keyframe_due: true,
        }
    }

    fn paired(tamper: Tamper) -> Run {
        let (a, b, ta, tb) = identities();
        let peer = b.public();
        Run::new(
            SecureConfig::new(a, ta, SessionRole::Initiator { peer }, SESSION),
            SecureConfig::new(b, tb, SessionRole::Responder, SESSION),
            tamper,
        )
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            let now = self.now;
            if now >= self.next_frame {
                let data = Bytes::from(vec![self.sent as u8; 6000]);
                let keyframe = self.keyframe_due;
                if self
                    .tx
                    .inner_mut()
                    .send_frame(now, OutgoingFrame::av1(data, now, keyframe))
                    .is_ok()
                {
                    self.sent += 1;
                    self.keyframe_due = false;
                }
                self.next_frame = now + Duration::from_micros(16_667);
            }
            while let Some(t) = self.tx.poll_datagram(now) {
                for d in (self.tamper)(now, t) {
                    self.to_rx.push((now + LINK, d));
                }
            }
            while let Some(t) = self.rx.poll_datagram(now) {
                self.to_tx.push((now + LINK, t));
            }
            self.to_rx.sort_by_key(|(t, _)| *t);
            while self.to_rx.first().is_some_and(|(t, _)| *t <= now) {
                let (_, d) = self.to_rx.remove(0);
                self.rx.handle_datagram(now, d);
            }
            while self.to_tx.first().is_some_and(|(t, _)| *t <= now) {
                let (_, d) = self.to_tx.remove(0);
                self.tx.handle_datagram(now, d);
            }
            self.tx.handle_timeout(now);
            self.rx.handle_timeout(now);
            while let Some(e) = self.tx.poll_event() {
                match e {
                    SecureEvent::Security(s) => self.tx_events.push(s),
                    // As an encoder would.
                    SecureEvent::Inner(SenderEvent::KeyframeRequested) => self.keyframe_due = true,
                    SecureEvent::Inner(_) => {}
                }
            }
            while let Some(e) = self.rx.poll_event() {
                match e {
                    SecureEvent::Inner(ReceiverEvent::Frame(f)) => self.frames.push(f.frame_id),
                    SecureEvent::Security(s) => self.rx_events.push(s),
                }
            }
            self.now = now + Duration::from_micros(500);
        }
    }
}

#[test]
fn paired_peers_stream_sealed() {
    let wire: std::rc::Rc<std::cell::RefCell<Vec<Bytes>>> = Default::default();
    let seen = std::rc::Rc::clone(&wire);
    let mut run = Run::paired(Box::new(move |_, d| {
        seen.borrow_mut().push(d.clone());
        vec![d]
    }));
    run.run_for(Duration::from_secs(2));
    assert!(run.frames.len() >= 110, "{} frames", run.frames.len());
    assert!(
        run.frames.windows(2).all(|w| w[0] + 1 == w[1]),
        "every frame, in order"
    );
    assert!(
        matches!(
            run.tx_events.as_slice(),
            [SecurityEvent::Established { .. }]
        ),
        "{:?}",
        run.tx_events
    );
    assert!(
        matches!(
            run.rx_events.as_slice(),
            [SecurityEvent::Established { .. }]
        ),
        "{:?}",
        run.rx_events
    );
    let (tx_peer, rx_peer) = (
        run.tx.peer().expect("tx peer"),
        run.rx.peer().expect("rx peer"),
    );
    assert_ne!(tx_peer, rx_peer, "each authenticated the other");
    let s = run.rx.stats();
    assert_eq!(
        (s.forged, s.replayed, s.unsealed, s.handshakes),
        (0, 0, 0, 1),
        "{s:?}"
    );
    // Nobody else can watch: every frame is 6000 copies of one byte, and no datagram on the
    // wire holds even 64 equal bytes in a row.
    let wire = wire.borrow();
    assert!(
        wire.iter().skip(1).all(|d| d[1] >> 4 == 1),
        "every datagram after the handshake is sealed"
    );
    assert!(
        !wire
            .iter()
            .any(|d| d.windows(64).any(|w| w.iter().all(|b| *b == w[0])))
    );
}

#[test]
fn a_man_in_the_middle_is_counted_and_changes_nothing() {
    let mut n = 0u64;
    let mut held: Vec<Bytes> = Vec::new();
    let mut run = Run::paired(Box::new(move |_, d| {
        n += 1;
        let mut out = vec![d.clone()];
        match n % 7 {
            // Flip a bit in a copy that arrives first (header, body or tag).
            1 => {
                let mut f = d.to_vec();
                let i = (n as usize * 13) % f.len();
                f[i] ^= 0x04;
                out.insert(0, Bytes::from(f));
            }
            // A truncated copy.
            2 => out.push(d.slice(..d.len() / 2)),
            // Replay an older datagram.
            3 => out.extend(held.first().cloned()),
            // Reorder: hold this one back a little (delivered with the next).
            4 => {
                held.push(d);
                out.clear();
            }
            5 => out.extend(held.drain(..).rev()),
            // Inject random garbage and a forged sealed datagram.
            6 => {
                out.push(Bytes::from(vec![0xD1; 80]));
                let mut forged = d.to_vec();
                let last = forged.len() - 1;
                forged[last] ^= 0xff;
                out.insert(0, Bytes::from(forged));
            }
            _ => {}
        }
        out
    }));
    run.run_for(Duration::from_secs(3));
    let s = run.rx.stats();
    println!("{s:?}; {} of {} frames", run.frames.len(), run.sent);
    assert!(
        s.forged > 50 && s.replayed > 20 && s.malformed + s.unsealed > 0,
        "{s:?}"
    );
    let mut shown = run.frames.clone();
    shown.dedup();
    assert_eq!(shown, run.frames, "no frame twice");
    assert!(
        run.frames.len() as u32 >= run.sent - 3,
        "{} of {} frames",
        run.frames.len(),
        run.sent
    );
    // Only real fragments reached the protocol: it never saw a malformed datagram.
    let drops = run.rx.inner().stats().drops;
    assert_eq!(
        (drops.malformed, drops.rejected_fragments),
        (0, 0),
        "{drops:?}"
    );
}

#[test]
fn a_stranger_gets_no_answer_and_the_honest_side_is_told() {
    let (a, b, _, _) = identities();
    let peer = b.public();
    // B trusts nobody.
    let mut run = Run::new(
        SecureConfig::new(
            a.clone(),
            TrustStore::new(),
            SessionRole::Initiator { peer },
            SESSION,
        ),
        SecureConfig::new(b, TrustStore::new(), SessionRole::Responder, SESSION),
        Box::new(|_, d| vec![d]),
    );
    run.run_for(Duration::from_secs(6));
    assert!(run.frames.is_empty());
    assert!(
        run.to_tx.is_empty() && run.tx.stats().opened == 0,
        "nothing came back"
    );
    assert!(
        run.rx_events.iter().any(|e| matches!(e, SecurityEvent::RejectedPeer { fingerprint, .. } if *fingerprint == a.fingerprint())),
        "{:?}",
        run.rx_events
    );
    assert!(
        run.tx_events
            .iter()
            .any(|e| matches!(e, SecurityEvent::HandshakeTimedOut { .. })),
        "{:?}",
        run.tx_events
    );
    assert!(run.rx.stats().unknown_peers > 0);
}

#[test]
fn other_versions_and_replayed_handshakes_do_not_disturb_a_session() {
    let mut first_handshake: Option<Bytes> = None;
    let mut count = 0u32;
    let mut run = Run::paired(Box::new(move |_, d| {
        count += 1;
        if first_handshake.is_none() {
            first_handshake = Some(d.clone());
        }
        let mut out = vec![d];
        if count.is_multiple_of(50) {
            // Replay the first handshake message, and a datagram of protocol version 2.
            out.extend(first_handshake.clone());
            let mut v2 = out[0].to_vec();
            v2[0] = 0xD2;
            out.push(Bytes::from(v2));
        }
        out
    }));
    run.run_for(Duration::from_secs(3));
    assert!(run.frames.len() >= 170, "{} frames", run.frames.len());
    // With a session up, a v2 datagram is someone else's (or forged): counted, not news.
    assert!(
        !run.rx_events
            .iter()
            .any(|e| matches!(e, SecurityEvent::PeerVersion { .. }))
    );
    let s = run.rx.stats();
    assert!(s.other_version > 0, "{s:?}");
    // The replays were answered from the cache (one handshake), or as new ones that never
    // replaced the live keys.
    assert_eq!(
        run.tx_events
            .iter()
            .filter(|e| matches!(e, SecurityEvent::Established { .. }))
            .count(),
        1
    );
}

#[test]
fn a_responder_that_forgets_its_keys_gets_a_new_handshake() {
    let (a, b, ta, tb) = identities();
    let peer = b.public();
    let rx_config = SecureConfig::new(b, tb, SessionRole::Responder, SESSION);
    let mut run = Run::new(
        SecureConfig::new(a, ta, SessionRole::Initiator { peer }, SESSION),
        rx_config.clone(),
        Box::new(|_, d| vec![d]),
    );
    run.run_for(Duration::from_secs(1));
    let before = run.frames.len();
    // The receiving app restarts: new protocol state, no session keys.
    let now = run.now;
    run.rx = Secure::new(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        rx_config,
        now,
    );
    run.frames.clear();
    run.run_for(Duration::from_secs(6));
    assert!(before > 50);
    assert!(
        !run.frames.is_empty(),
        "video resumed after the new handshake"
    );
    assert_eq!(
        run.tx_events
            .iter()
            .filter(|e| matches!(e, SecurityEvent::Established { .. }))
            .count(),
        2,
        "{:?}",
        run.tx_events
    );
    assert!(
        run.rx.stats().forged > 0,
        "the old session's datagrams were refused meanwhile"
    );
}

#[test]
fn a_peer_of_another_version_is_reported_while_no_session_is_up() {
    let (_, b, _, tb) = identities();
    let now = Instant::now();
    let mut rx = Secure::new(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        SecureConfig::new(b, tb, SessionRole::Responder, SESSION),
        now,
    );
    let mut v2 = vec![0xD2, 8, 0, 0, 0x5e, 0xc0, 0, 0, 0, 0, 0, 0];
    v2.extend_from_slice(&[0; 96]);
    let stranger: std::net::SocketAddr = "192.0.2.7:5000".parse().expect("addr");
    rx.handle_datagram_from(now, stranger, Bytes::from(v2.clone()));
    rx.handle_datagram_from(now, stranger, Bytes::from(v2.clone()));
    let events: Vec<_> = std::iter::from_fn(|| rx.poll_event()).collect();
    assert!(
        matches!(
            events.as_slice(),
            [SecureEvent::Security(SecurityEvent::PeerVersion {
                version: 2,
                from: Some(a)
            })] if *a == stranger
        ),
        "reported once per source, naming it: {events:?}"
    );
    // Another source is news (a stranger cannot hide a real peer's version by speaking
    // first), but only for a bounded number of sources.
    for port in 1..=20u16 {
        let from = std::net::SocketAddr::new(stranger.ip(), port);
        rx.handle_datagram_from(now, from, Bytes::from(v2.clone()));
    }
    let more = std::iter::from_fn(|| rx.poll_event()).count();
    assert_eq!(more, MAX_VERSION_REPORTS - 1);
    assert_eq!(rx.stats().other_version, 22);
    assert!(rx.poll_datagram(now).is_none(), "and not answered");
}

#[test]
fn replayed_handshakes_cannot_keep_a_restarted_sender_out() {
    // An attacker on the path records every message 1 and replays all of them beside
    // every datagram the sender sends. The sender then restarts (new process, same
    // identity, a later wall clock). Its new message 1 must win: an old one, replayed,
    // may not displace the session it sets up, and exact replays cost no Diffie-Hellman.
    let (a, b, ta, tb) = identities();
    let peer = b.public();
    let wall = 1_800_000_000_000_000u64;
    let mut tx_config = SecureConfig::new(a, ta, SessionRole::Initiator { peer }, SESSION);
    tx_config.wall_clock_us = wall;
    let mut rx_config = SecureConfig::new(b, tb, SessionRole::Responder, SESSION);
    rx_config.wall_clock_us = wall;
    let calls: std::rc::Rc<std::cell::RefCell<Vec<Bytes>>> = Default::default();
    let seen = std::rc::Rc::clone(&calls);
    let mut run = Run::new(
        tx_config.clone(),
        rx_config,
        Box::new(move |_, d| {
            let mut out = seen.borrow().clone();
            if d.len() > 1 && d[1] & 0x0f == tandem_proto::packet::TYPE_HANDSHAKE {
                seen.borrow_mut().push(d.clone());
            }
            out.push(d);
            out
        }),
    );
    run.run_for(Duration::from_secs(1));
    assert!(run.frames.len() > 50, "{} frames before", run.frames.len());
    // The sending app restarts a second later, its clock a second on.
    let now = run.now;
    tx_config.wall_clock_us = wall + 2_000_000;
    run.tx = Secure::new(Sender::new(SenderConfig::new(SESSION), now), tx_config, now);
    run.keyframe_due = true;
    run.frames.clear();
    run.run_for(Duration::from_secs(2));
    let s = run.rx.stats();
    println!("after the restart: {} frames; {s:?}", run.frames.len());
    assert!(
        run.frames.len() > 100,
        "the restarted sender streamed: {} frames",
        run.frames.len()
    );
    assert!(s.replayed > 100, "the replays were recognised: {s:?}");
    assert!(
        s.handshakes <= 4,
        "replays cost no Diffie-Hellman beyond the first: {s:?}"
    );
}

/// Over two paths the peer sends some datagrams on both, sealed once: the later copy is
/// dropped unopened by the replay window and counted as a copy, not as a replay (an
/// attack); with one path open the same copy is a replay.
#[test]
fn copies_over_two_paths_are_not_counted_as_replays() {
    for two_paths in [false, true] {
        let mut run = Run::paired(Box::new(|_, d: Bytes| vec![d.clone(), d]));
        if two_paths {
            let now = run.now;
            run.rx
                .set_path_open(now, tandem_proto::PathId::SECOND, true);
        }
        run.run_for(Duration::from_secs(1));
        assert!(run.frames.len() >= 50, "{} frames", run.frames.len());
        let s = run.rx.stats();
        let copies = if two_paths { s.path_copies } else { s.replayed };
        assert!(copies > 200, "{s:?}");
        assert_eq!(
            if two_paths { s.replayed } else { s.path_copies },
            0,
            "{s:?}"
        );
        assert_eq!(s.forged, 0, "{s:?}");
    }
}
