//! A real sender and receiver over loopback: the test pattern encoded with libaom (AV1) or
//! OpenH264 (H.264), sent, decoded with dav1d or OpenH264 by the frames' codec tag, and
//! glass-to-glass latency read back from the pixels; pass-through
//! of encoded frames; live policy changes; a sender that restarts; a sender that vanishes.
//!
//! Assertions count frames and codes; latency is a printed figure, not a bound (the report
//! binaries measure it).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_channel::{Receiver as Rx, unbounded};
use tandem::sink::{EncodedVideo, FnSink, FrameSink};
use tandem::{
    Codec, DisplayFrame, EncodedInput, EncoderKind, Identity, NetConfig, OutputMode, PlayoutPolicy,
    Receiver, ReceiverConfig, Remote, Security, Sender, SenderConfig, Stats, TestPatternSource,
    TrustStore,
};

const FPS: u32 = 30;

/// A sender's and a receiver's security, paired with each other (one pair for the whole
/// file: what a real pairing leaves behind).
fn keys() -> &'static (Security, Security) {
    static KEYS: std::sync::OnceLock<(Security, Security)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Security::paired_in_process("sender", "receiver").expect("keys"))
}

fn sender_config() -> SenderConfig {
    let mut c = SenderConfig::default().size(640, 360).fps(FPS);
    c.net.security = Some(keys().0.clone());
    c
}

fn receiver_config() -> ReceiverConfig {
    let mut c = ReceiverConfig::default();
    c.net.security = Some(keys().1.clone());
    c
}

fn pattern() -> Box<TestPatternSource> {
    Box::new(TestPatternSource::new(640, 360, FPS).expect("pattern"))
}

/// A receiver listening on loopback whose shown frames arrive on the returned channel.
fn receiver(config: ReceiverConfig) -> (Receiver, Rx<DisplayFrame>, SocketAddr) {
    let (tx, rx) = unbounded();
    let r = Receiver::start(
        config,
        Remote::Listen,
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("receiver starts");
    let addr = SocketAddr::from(([127, 0, 0, 1], r.local_addr().port()));
    (r, rx, addr)
}

fn collect(rx: &Rx<DisplayFrame>, for_: Duration) -> Vec<DisplayFrame> {
    let end = Instant::now() + for_;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(f) => out.push(f),
            Err(_) => break,
        }
    }
    out
}

fn last_stats(stats: &Rx<Stats>, within: Duration) -> Stats {
    let end = Instant::now() + within;
    let mut last = None;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match stats.recv_timeout(left) {
            Ok(s) => last = Some(s),
            Err(_) => break,
        }
    }
    last.expect("stats arrive every second")
}

#[test]
fn the_test_pattern_streams_and_its_pixel_codes_give_glass_to_glass_latency() {
    pattern_streams(EncoderKind::Aom, "AV1");
}

#[test]
fn the_test_pattern_streams_in_h264_and_the_receiver_decodes_it_by_its_tag() {
    pattern_streams(EncoderKind::OpenH264, "H.264");
}

fn pattern_streams(encoder: EncoderKind, codec: &str) {
    let (rx, frames, addr) = receiver(receiver_config());
    let config = sender_config().encoder(encoder);
    let tx = Sender::start(config, Remote::Address(addr), Some(pattern())).expect("sender");
    let shown = collect(&frames, Duration::from_secs(3));
    let stats = last_stats(&rx.stats(), Duration::from_millis(1500));
    let sent = last_stats(&tx.stats(), Duration::from_millis(1100));
    drop(tx);
    assert!(
        shown.len() >= 60,
        "only {} frames shown in 3 s at {FPS} fps",
        shown.len()
    );
    let with_code = shown.iter().filter(|f| f.code.is_some()).count();
    assert_eq!(
        with_code,
        shown.len(),
        "every shown picture carries its code"
    );
    assert!(
        shown.windows(2).all(|w| w[0].frame.id < w[1].frame.id),
        "frames are shown in order"
    );
    // The pattern numbers its captures, the protocol the frames it sent (captures before
    // the handshake finished were not encoded): the two move together.
    let offset = shown[0].code.expect("code").frame_id - shown[0].frame.id;
    for f in &shown {
        let code = f.code.expect("code");
        assert_eq!(
            code.frame_id - f.frame.id,
            offset,
            "the code is this frame's"
        );
        assert!(f.g2g.is_some(), "latency read from the pixels");
    }
    let mut g2g: Vec<f64> = shown
        .iter()
        .filter_map(|f| f.g2g)
        .map(|d| d.as_secs_f64() * 1e3)
        .collect();
    g2g.sort_by(f64::total_cmp);
    println!(
        "{encoder}: {} frames shown, glass-to-glass p50 {:.1} ms, max {:.1} ms; receiver stats {stats:?}; sender stats {sent:?}",
        shown.len(),
        g2g[g2g.len() / 2],
        g2g[g2g.len() - 1]
    );
    assert_eq!(stats.role, "receiver");
    assert_eq!(
        stats.codec.as_deref(),
        Some(codec),
        "the receiver names the codec"
    );
    assert_eq!(
        sent.codec.as_deref(),
        Some(codec),
        "the sender names the codec"
    );
    assert!(stats.frames_shown >= 60, "{stats:?}");
    assert!(
        stats.g2g_ms.is_some() && stats.decode_ms.is_some(),
        "{stats:?}"
    );
    assert!(stats.rtt_ms.is_some(), "{stats:?}");
    assert_eq!(stats.error, None);
    assert_eq!(sent.role, "sender");
    assert!(sent.frames_sent >= 60 && sent.keyframes >= 1, "{sent:?}");
    assert!(sent.encode_ms.is_some() && sent.target_kbps > 0, "{sent:?}");
    // Both ends give the target and the bitrate delivered against it: the receiver learns
    // the target from the sender's pings, the sender the delivered rate from the reports.
    assert!(
        stats.target_kbps > 0 && stats.delivered_kbps.is_some_and(|d| d > 0.0),
        "{stats:?}"
    );
    assert_eq!(stats.delivered_kbps, Some(stats.bitrate_kbps));
    assert!(sent.delivered_kbps.is_some_and(|d| d > 0.0), "{sent:?}");
    rx.shutdown().expect("receiver stops cleanly");
}

/// Records encoded frames.
struct EncodedSink(crossbeam_channel::Sender<EncodedVideo>);

impl FrameSink for EncodedSink {
    fn on_frame(&mut self, _frame: DisplayFrame) {}
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        let _ = self.0.send(frame.clone());
    }
}

#[test]
fn encoded_frames_pass_through_untouched() {
    let (etx, erx) = unbounded();
    let rx = Receiver::start(
        receiver_config().output(OutputMode::Encoded),
        Remote::Listen,
        Box::new(EncodedSink(etx)),
    )
    .expect("receiver");
    let addr = SocketAddr::from(([127, 0, 0, 1], rx.local_addr().port()));
    let tx = Sender::start(sender_config(), Remote::Address(addr), None).expect("sender");
    // An app that encodes itself waits for the session, which asks it for a keyframe.
    tx.keyframe_requests()
        .recv_timeout(Duration::from_secs(5))
        .expect("the new session asks for a keyframe");
    assert!(tx.is_connected());
    let unit = |i: u32| Bytes::from(format!("H.264 access unit {i}").repeat(200));
    for i in 0..30u32 {
        let id = tx
            .send_encoded(EncodedInput {
                data: unit(i),
                codec: Codec::H264,
                keyframe: i == 0,
                captured_at: Instant::now(),
            })
            .expect("sent");
        assert_eq!(id, i);
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut got = Vec::new();
    while got.len() < 30 {
        match erx.recv_timeout(Duration::from_secs(3)) {
            Ok(f) => got.push(f),
            Err(_) => break,
        }
    }
    assert_eq!(got.len(), 30);
    for (i, f) in got.iter().enumerate() {
        assert_eq!((f.frame_id, f.codec), (i as u32, Codec::H264));
        assert_eq!(f.data, unit(i as u32), "frame {i} intact");
        assert_eq!(f.size, None, "not decoded");
    }
}

#[test]
fn the_playout_policy_changes_live() {
    let (rx, frames, addr) = receiver(receiver_config());
    let tx =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    let before = collect(&frames, Duration::from_millis(1500));
    rx.set_playout_policy(PlayoutPolicy::Fixed(Duration::from_millis(80)))
        .expect("policy");
    let _ = collect(&frames, Duration::from_millis(500));
    let after = collect(&frames, Duration::from_millis(1500));
    drop(tx);
    let median = |v: &[DisplayFrame]| {
        let mut l: Vec<f64> = v
            .iter()
            .filter_map(|f| f.g2g)
            .map(|d| d.as_secs_f64() * 1e3)
            .collect();
        l.sort_by(f64::total_cmp);
        l[l.len() / 2]
    };
    let (a, b) = (median(&before), median(&after));
    println!("glass-to-glass p50 {a:.1} ms with latency, {b:.1} ms with fixed:80");
    assert!(!before.is_empty() && !after.is_empty());
    // The buffer holds each frame until 80 ms after capture (on the sender's clock).
    assert!(
        b >= 80.0 && b > a,
        "fixed:80 median {b:.1} ms, latency median {a:.1} ms"
    );
}

#[test]
fn a_restarted_sender_is_followed_and_video_resumes() {
    let (rx, frames, addr) = receiver(receiver_config());
    let first =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    assert!(!collect(&frames, Duration::from_millis(1500)).is_empty());
    drop(first);
    // Silent past the driver's one second, then a new sender (new port, frame ids from 0).
    std::thread::sleep(Duration::from_millis(1300));
    while frames.try_recv().is_ok() {}
    let second =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    let resumed = collect(&frames, Duration::from_secs(3));
    let stats = last_stats(&rx.stats(), Duration::from_millis(1100));
    drop(second);
    println!("after the restart: {} frames; {stats:?}", resumed.len());
    assert!(
        resumed.len() >= 30,
        "video resumed: {} frames",
        resumed.len()
    );
    assert!(
        resumed.iter().any(|f| f.frame.id < 60),
        "the new sender's ids, from 0"
    );
    assert!(stats.restarts >= 1, "{stats:?}");
}

#[test]
fn a_vanished_sender_is_reported_by_name() {
    let config = ReceiverConfig {
        net: NetConfig {
            peer_timeout: Duration::from_secs(1),
            ..receiver_config().net
        },
        ..receiver_config()
    };
    let (rx, frames, addr) = receiver(config);
    let tx =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    assert!(!collect(&frames, Duration::from_millis(1000)).is_empty());
    let sender_addr = rx.peer().expect("peer known");
    drop(tx);
    std::thread::sleep(Duration::from_millis(2500));
    let error = rx.error().expect("the receiver says the sender is gone");
    println!("{error}");
    assert!(
        error.contains(&sender_addr.to_string()) && error.contains("has sent nothing"),
        "{error}"
    );
}

#[test]
fn encoded_frames_before_a_session_are_refused() {
    let tx = Sender::start(sender_config(), Remote::Listen, None).expect("sender");
    assert!(!tx.is_connected());
    let e = tx
        .send_encoded(EncodedInput {
            data: Bytes::from_static(b"too early"),
            codec: Codec::H264,
            keyframe: true,
            captured_at: Instant::now(),
        })
        .expect_err("nobody to send to");
    assert!(matches!(e, tandem::EngineError::NotConnected), "{e}");
}

/// A listening sender (automatic path preference) that a receiver reaches at `ip`: it waits
/// for the receiver, then streams to it. Returns where the sender says its receiver is.
fn listening_sender_reached_at(ip: std::net::IpAddr) -> SocketAddr {
    let tx = Sender::start(sender_config(), Remote::Listen, Some(pattern())).expect("sender");
    assert_eq!(tx.peer(), None);
    let sender_addr = SocketAddr::new(ip, tx.local_addr().port());
    let (fsend, frames) = unbounded();
    let rx = Receiver::start(
        receiver_config(),
        Remote::Address(sender_addr),
        Box::new(FnSink(move |f| {
            let _ = fsend.send(f);
        })),
    )
    .expect("receiver reaches the sender");
    let shown = collect(&frames, Duration::from_secs(2));
    assert!(shown.len() >= 20, "{} frames over {ip}", shown.len());
    let peer = tx.peer().expect("the sender knows its receiver");
    assert_eq!(peer.port(), rx.local_addr().port());
    peer
}

#[test]
fn a_listening_sender_waits_for_its_receiver() {
    listening_sender_reached_at(std::net::Ipv4Addr::LOCALHOST.into());
}

/// An automatic listener hears IPv6 as well as IPv4 (AWDL peers are IPv6 link-local only):
/// a receiver reaches a listening sender at `[::1]`, the sender answers it there.
#[test]
fn an_automatic_listener_is_reachable_over_ipv6() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this host has no IPv6 loopback (::1)");
        return;
    }
    let peer = listening_sender_reached_at(std::net::Ipv6Addr::LOCALHOST.into());
    assert!(peer.is_ipv6(), "{peer}");
}

#[test]
fn a_restarted_receiver_gets_a_keyframe_and_video() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let config = || receiver_config().port(port);
    let (first, frames, addr) = receiver(config());
    let tx =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    assert!(!collect(&frames, Duration::from_millis(1200)).is_empty());
    drop(first);
    std::thread::sleep(Duration::from_millis(300));
    // The same address again, with no state: the stream is mid-way, so it must ask for a
    // keyframe before it can show anything.
    let (second, frames, _) = receiver(config());
    let shown = collect(&frames, Duration::from_secs(3));
    let sent = last_stats(&tx.stats(), Duration::from_millis(1100));
    drop(second);
    println!(
        "after the receiver restarted: {} frames; sender {sent:?}",
        shown.len()
    );
    assert!(shown.len() >= 20, "video resumed: {} frames", shown.len());
    assert!(
        shown[0].keyframe,
        "the first frame shown is the keyframe it asked for"
    );
    assert!(sent.keyframes >= 2, "{sent:?}");
}

#[test]
fn paired_devices_stream_sealed_and_know_each_other() {
    let (rx, frames, addr) = receiver(receiver_config());
    let tx =
        Sender::start(sender_config(), Remote::Address(addr), Some(pattern())).expect("sender");
    assert!(collect(&frames, Duration::from_secs(2)).len() >= 40);
    let r = last_stats(&rx.stats(), Duration::from_millis(1100));
    let s = last_stats(&tx.stats(), Duration::from_millis(1100));
    assert!(r.secure && s.secure);
    assert_eq!(
        r.peer_id,
        Some(keys().0.identity.fingerprint()),
        "the receiver knows the sender"
    );
    assert_eq!(
        s.peer_id,
        Some(keys().1.identity.fingerprint()),
        "and the other way round"
    );
    assert_eq!((r.dropped_hostile, r.unpaired_refused), (0, 0), "{r:?}");
}

#[test]
fn an_unpaired_sender_gets_nothing_and_is_told_why() {
    let (rx, frames, addr) = receiver(receiver_config());
    // A sender with its own identity that trusts the receiver, but the receiver never
    // paired with it.
    let mut config = sender_config();
    let stranger = Identity::generate().expect("identity");
    let mut trust = TrustStore::new();
    trust
        .add(keys().1.identity.public(), "receiver")
        .expect("trust");
    config.net.security = Some(Security {
        identity: stranger,
        trust,
        peer: None,
    });
    let tx = Sender::start(config, Remote::Address(addr), Some(pattern())).expect("sender");
    assert!(
        collect(&frames, Duration::from_millis(6500)).is_empty(),
        "no frame reached the sink"
    );
    let error = tx.error().expect("the sender says why");
    println!("{error}");
    assert!(error.contains("no answer to the handshake"), "{error}");
    let r = last_stats(&rx.stats(), Duration::from_millis(1100));
    assert!(r.unpaired_refused > 0 && r.frames_shown == 0, "{r:?}");
    // Configured without any pairing at all, a sender does not even start.
    let mut lonely = sender_config();
    lonely.net.security = Some(Security {
        identity: Identity::generate().expect("identity"),
        trust: TrustStore::new(),
        peer: None,
    });
    let e = Sender::start(lonely, Remote::Address(addr), None).expect_err("not paired");
    assert!(e.to_string().contains("no paired device"), "{e}");
}

#[test]
fn a_spoofed_advertisement_cannot_take_a_paired_session() {
    // An impostor advertises the paired sender's id at its own address. It has its own key
    // (it cannot have the sender's), so the receiver's handshake, made for the real
    // sender's key, gets nowhere there.
    let impostor_keys = {
        let mut trust = TrustStore::new();
        trust
            .add(keys().1.identity.public(), "victim")
            .expect("trust");
        Security {
            identity: Identity::generate().expect("identity"),
            trust,
            peer: None,
        }
    };
    let mut ic = sender_config();
    ic.net.security = Some(impostor_keys);
    let impostor = Sender::start(ic, Remote::Listen, Some(pattern())).expect("impostor");
    let spoofed = tandem::Peer {
        instance: "Desk".into(),
        host: "desk.local.".into(),
        port: impostor.local_addr().port(),
        txt: tandem_net::PeerTxt {
            protocol_version: 1,
            peer_id: keys().0.identity.fingerprint(),
            device_name: "Desk".into(),
            codecs: vec![Codec::Av1],
        },
        addresses: vec![tandem_net::PeerAddress {
            addr: SocketAddr::from(([127, 0, 0, 1], impostor.local_addr().port())),
            interface: 1,
        }],
    };
    let (tx, frames) = unbounded();
    let rx = Receiver::start(
        receiver_config(),
        Remote::Discovered(spoofed),
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("the receiver starts towards the advertised address");
    assert!(
        collect(&frames, Duration::from_millis(6500)).is_empty(),
        "nothing shown"
    );
    let error = rx.error().expect("the receiver says why");
    assert!(error.contains("no answer to the handshake"), "{error}");
    assert_eq!(impostor.peer(), None, "the impostor never got a session");
}
