//! Hostile input that costs nothing: a paired sender streams to a receiver while another
//! socket throws 1,000,000 random and crafted datagrams at the receiver (garbage, Tandem
//! headers with the right session and random sealed bodies, handshakes from nobody,
//! plaintext media, replays of real datagrams). The receiver must show at least 99 % of the
//! frames the same stream shows without the flood, and its memory may grow by 16 MiB at
//! most.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use tandem::sink::FnSink;
use tandem::{
    DEFAULT_SESSION_ID, Receiver, ReceiverConfig, Remote, Security, Sender, SenderConfig, Stats,
    TestPatternSource,
};

const FLOOD: u64 = 1_000_000;
const RUN: Duration = Duration::from_secs(8);

/// One test at a time: each measures the process's memory and floods loopback, and a test
/// running beside it would count in both.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn keys() -> (Security, Security) {
    Security::paired_in_process("sender", "receiver").expect("keys")
}

/// A receiver with `keys` listening on loopback (every interface, as an app's would); the
/// ids of the frames it shows arrive on the channel; the address to reach it at.
fn listening_receiver(keys: Security) -> (Receiver, crossbeam_channel::Receiver<u32>, SocketAddr) {
    let mut rc = ReceiverConfig::default();
    rc.net.security = Some(keys);
    let (tx_frames, frames) = crossbeam_channel::unbounded::<u32>();
    let rx = Receiver::start(
        rc,
        Remote::Listen,
        Box::new(FnSink(move |f: tandem::DisplayFrame| {
            let _ = tx_frames.send(f.frame.id);
        })),
    )
    .expect("receiver");
    let to = SocketAddr::from(([127, 0, 0, 1], rx.local_addr().port()));
    (rx, frames, to)
}

/// The process's resident memory, bytes (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

/// A cheap deterministic generator (the flood needs volume, not quality).
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, b: &mut [u8]) {
        for chunk in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// One flood datagram of kind `i % 5` into `buf`; returns its length.
fn craft(i: u64, rng: &mut Xorshift, buf: &mut [u8; 1400]) -> usize {
    let len = 20 + (rng.next() % 1180) as usize;
    rng.fill(&mut buf[..len]);
    let header = |buf: &mut [u8; 1400], type_flags: u8| {
        buf[0] = tandem_proto::packet::VERSION_BYTE;
        buf[1] = type_flags;
        buf[2..6].copy_from_slice(&DEFAULT_SESSION_ID.to_be_bytes());
    };
    match i % 5 {
        // Random bytes.
        0 => {}
        // Sealed media with a random body and tag: an AEAD check each.
        1 => header(buf, 0x11),
        // Handshake messages from nobody.
        2 => header(buf, tandem_proto::packet::TYPE_HANDSHAKE),
        // Unsealed media, as an old or a lazy attacker would send.
        3 => header(buf, 0x01),
        // Another protocol version.
        _ => {
            header(buf, 0x11);
            buf[0] = 0xD2;
        }
    }
    len
}

/// Streams for [`RUN`]; with `flood`, a second socket sends [`FLOOD`] datagrams meanwhile.
/// Returns the frames shown, the receiver's last stats and its memory growth.
fn stream(flood: bool) -> (u64, Stats, u64) {
    let (send_keys, recv_keys) = keys();
    let (rx, frames, to) = listening_receiver(recv_keys);
    let mut sc = SenderConfig::default().fps(30);
    sc.net.security = Some(send_keys);
    let source = TestPatternSource::new(640, 360, 30).expect("pattern");
    let tx = Sender::start(sc, Remote::Address(to), Some(Box::new(source))).expect("sender");
    // Let the session come up and memory settle before measuring.
    std::thread::sleep(Duration::from_secs(1));
    while frames.try_recv().is_ok() {}
    let before = rss();
    let flooder = flood.then(|| {
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").expect("flood socket");
            let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
            let mut buf = [0u8; 1400];
            let started = Instant::now();
            let mut sent = 0u64;
            for i in 0..FLOOD {
                let n = craft(i, &mut rng, &mut buf);
                if s.send_to(&buf[..n], to).is_ok() {
                    sent += 1;
                }
                // Spread the million over most of the run: 200 k datagrams per second,
                // several times what the stream itself sends.
                if i % 1000 == 999 {
                    let due = Duration::from_secs_f64((i + 1) as f64 / 200_000.0);
                    if let Some(w) = due.checked_sub(started.elapsed()) {
                        std::thread::sleep(w);
                    }
                }
            }
            sent
        })
    });
    let end = Instant::now() + RUN;
    let mut shown = 0u64;
    let mut peak = before;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if frames
            .recv_timeout(left.min(Duration::from_millis(100)))
            .is_ok()
        {
            shown += 1;
        }
        peak = peak.max(rss());
    }
    if let Some(f) = flooder {
        let sent = f.join().expect("flood thread");
        println!("flood: {sent} datagrams sent");
    }
    let stats = {
        let s = rx.stats();
        let mut last = None;
        while let Ok(x) = s.recv_timeout(Duration::from_millis(1100)) {
            last = Some(x);
            if s.is_empty() {
                break;
            }
        }
        last.expect("stats")
    };
    drop(tx);
    (shown, stats, peak.saturating_sub(before))
}

#[test]
fn a_million_hostile_datagrams_cost_nothing() {
    let _one = serial();
    let (quiet, _, quiet_growth) = stream(false);
    let (flooded, stats, growth) = stream(true);
    println!(
        "frames shown: {quiet} without the flood, {flooded} with it ({:.2} %); memory growth \
         {:.1} MiB (without: {:.1} MiB); receiver dropped {} hostile datagrams, refused {} \
         handshakes from unpaired devices; {stats}",
        flooded as f64 * 100.0 / quiet.max(1) as f64,
        growth as f64 / (1 << 20) as f64,
        quiet_growth as f64 / (1 << 20) as f64,
        stats.dropped_hostile,
        stats.unpaired_refused,
    );
    assert!(quiet >= 200, "the quiet run streamed: {quiet} frames");
    assert!(
        flooded as f64 >= 0.99 * quiet as f64,
        "{flooded} frames with the flood, {quiet} without"
    );
    assert!(growth <= 16 << 20, "memory grew {growth} bytes");
    assert!(
        stats.dropped_hostile > 100_000,
        "the flood reached the receiver: {stats:?}"
    );
    assert_eq!(
        stats.unpaired_refused, 0,
        "random handshakes are not valid ones"
    );
}

/// Issue 16's case: a stranger's datagrams reach a paired receiver before its sender has
/// started, and go on through the handshake: another protocol version, random bytes,
/// handshakes from nobody, and real handshakes from a device that is not paired. None of
/// it may end the session or set an error: it is shown as warnings that name the version
/// and the source, and the stream shows what it shows without the stranger.
#[test]
fn a_strangers_datagrams_before_the_handshake_are_warnings_not_errors() {
    let _one = serial();
    let (send_keys, recv_keys) = keys();
    let receiver_key = recv_keys.identity.public();
    let (rx, frames, to) = listening_receiver(recv_keys);
    let stats = rx.stats();
    // The stranger: every fifth datagram speaks version 2 (`craft`), the rest random bytes,
    // sealed junk, handshakes from nobody and plaintext media, from before the sender
    // starts until after the session is up.
    let stranger = UdpSocket::bind("127.0.0.1:0").expect("stranger socket");
    let stranger_addr = stranger.local_addr().expect("addr");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut rng = Xorshift(0x5eed_0016);
            let mut buf = [0u8; 1400];
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let n = craft(i, &mut rng, &mut buf);
                let _ = stranger.send_to(&buf[..n], to);
                i += 1;
                if i.is_multiple_of(200) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // A real device that knows the receiver's key but that the receiver does not trust (it
    // was unpaired, say) tries too.
    let (mut unpaired_keys, _) =
        Security::paired_in_process("intruder", "elsewhere").expect("keys");
    unpaired_keys.trust = tandem_proto::security::TrustStore::new();
    unpaired_keys
        .trust
        .add(receiver_key, "receiver")
        .expect("trust");
    let mut uc = SenderConfig::default().fps(30);
    uc.net.security = Some(unpaired_keys);
    let intruder = Sender::start(
        uc,
        Remote::Address(to),
        Some(Box::new(
            TestPatternSource::new(320, 180, 30).expect("pattern"),
        )),
    )
    .expect("intruder");
    let mut sc = SenderConfig::default().fps(30);
    sc.net.security = Some(send_keys);
    let tx = Sender::start(
        sc,
        Remote::Address(to),
        Some(Box::new(
            TestPatternSource::new(640, 360, 30).expect("pattern"),
        )),
    )
    .expect("sender");
    let tx_stats = tx.stats();
    let end = Instant::now() + Duration::from_secs(5);
    let mut shown = 0u64;
    let mut frames_sent = 0;
    let mut snapshots: Vec<Stats> = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if frames
            .recv_timeout(left.min(Duration::from_millis(50)))
            .is_ok()
        {
            shown += 1;
        }
        snapshots.extend(stats.try_iter());
        if let Some(s) = tx_stats.try_iter().last() {
            frames_sent = s.frames_sent;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent = flooder.join().expect("flood thread");
    drop(intruder);
    drop(tx);
    let last = snapshots.last().cloned().expect("stats");
    println!(
        "stranger sent {sent} datagrams from {stranger_addr}; {shown} frames shown of {frames_sent} \
         sent; errors seen: {:?}; last: {last}",
        snapshots
            .iter()
            .filter_map(|s| s.error.clone())
            .collect::<Vec<_>>()
    );
    for s in &snapshots {
        assert_eq!(s.error, None, "a stranger set an error: {s}");
    }
    assert!(
        last.warnings.iter().any(
            |w| w.contains("speaks protocol version") && w.contains(&stranger_addr.to_string())
        ),
        "the version warning names the version and the source: {:?}",
        last.warnings
    );
    assert!(
        last.warnings.iter().any(|w| w.contains("not paired")),
        "the intruder is named: {:?}",
        last.warnings
    );
    assert!(last.unpaired_refused > 0, "{last:?}");
    // What the sender had sent by its last snapshot (up to a second before the end) is
    // shown, and the session came up early: 5 s at 30 fps from 0.5 s in is ~135 frames.
    assert!(
        shown as f64 >= 0.95 * frames_sent as f64 && shown >= 100,
        "{shown} frames shown of {frames_sent} sent"
    );
}

// ---------------------------------------------------------------------------------------
// Floods at every moment of a session, from a stranger's address and from the paired
// peer's own, with every kind of datagram (issue 16).
//
// The sender reaches the receiver through a forwarder in this process (`Forwarder`), so
// the receiver sees the forwarder's socket as its paired peer's address. The flooder sends
// through that same socket, so its forged datagrams and replays come from the address the
// peer's genuine datagrams come from, and through a stranger's socket of its own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// When the flood runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    /// From before the sender starts until the end.
    BeforeHandshake,
    /// From the sender's start (its handshake) for two seconds.
    DuringHandshake,
    /// From two seconds in, the session streaming, until the end.
    MidStream,
    /// Throughout, while the sender is stopped and another with the same keys starts.
    AcrossRestart,
}

/// Datagrams each flood sends: a short flood in CI, `cargo xtask flood` sets a million.
fn flood_size() -> u64 {
    std::env::var("TANDEM_FLOOD_DATAGRAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000)
}

/// A UDP forwarder between the sender and the receiver that keeps the newest datagrams
/// the sender sent, for the flooder to replay.
struct Forwarder {
    /// Where the sender sends.
    front: SocketAddr,
    /// The socket the receiver hears its peer on.
    back: UdpSocket,
    captured: Arc<Mutex<VecDeque<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(receiver: SocketAddr) -> Forwarder {
        let front = UdpSocket::bind("127.0.0.1:0").expect("front");
        let back = UdpSocket::bind("127.0.0.1:0").expect("back");
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50)))
                .expect("timeout");
        }
        let front_addr = front.local_addr().expect("addr");
        let sender: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let captured: Arc<Mutex<VecDeque<Vec<u8>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let forward = {
            let (front, back) = (
                front.try_clone().expect("clone"),
                back.try_clone().expect("clone"),
            );
            let (sender, captured, stop) = (
                Arc::clone(&sender),
                Arc::clone(&captured),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *sender.lock().expect("lock") = Some(from);
                        let _ = back.send_to(&buf[..n], receiver);
                        let mut c = captured.lock().expect("lock");
                        if c.len() == 256 {
                            c.pop_front();
                        }
                        c.push_back(buf[..n].to_vec());
                    }
                }
            })
        };
        let reverse = {
            let back = back.try_clone().expect("clone");
            let (sender, stop) = (Arc::clone(&sender), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = back.recv_from(&mut buf) {
                        let to = *sender.lock().expect("lock");
                        if let Some(to) = to {
                            let _ = front.send_to(&buf[..n], to);
                        }
                    }
                }
            })
        };
        Forwarder {
            front: front_addr,
            back,
            captured,
            stop,
            threads: vec![forward, reverse],
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// One flood datagram of every kind in turn into `buf`: random bytes, a crafted header of
/// any type, flags and version with the session's id, a replay of a datagram the peer
/// really sent (exact, or with one bit flipped), or a forged sealed media packet.
/// Returns its length and whether it should come from the peer's own address.
fn hostile(
    i: u64,
    rng: &mut Xorshift,
    captured: &Mutex<VecDeque<Vec<u8>>>,
    buf: &mut [u8; 1400],
) -> (usize, bool) {
    let len = 13 + (rng.next() % 1187) as usize;
    rng.fill(&mut buf[..len]);
    match i % 6 {
        0 => (len, false),
        // Every version nibble under the magic, every type nibble and flag combination.
        1 | 2 => {
            buf[0] = 0xD0 | (rng.next() % 16) as u8;
            buf[1] = rng.next() as u8;
            buf[2..6].copy_from_slice(&DEFAULT_SESSION_ID.to_be_bytes());
            (len, i % 6 == 2)
        }
        // The peer's own datagrams again, from its own address.
        3 | 4 => {
            let c = captured.lock().expect("lock");
            if c.is_empty() {
                return (len, false);
            }
            let pick = &c[(rng.next() % c.len() as u64) as usize];
            let n = pick.len().min(buf.len());
            buf[..n].copy_from_slice(&pick[..n]);
            if i % 6 == 4 {
                let bit = (rng.next() % (n as u64 * 8)) as usize;
                buf[bit / 8] ^= 1 << (bit % 8);
            }
            (n, true)
        }
        // Sealed media with a random body and tag, from the peer's address.
        _ => {
            buf[0] = tandem_proto::packet::VERSION_BYTE;
            buf[1] = 0x11;
            buf[2..6].copy_from_slice(&DEFAULT_SESSION_ID.to_be_bytes());
            (len, true)
        }
    }
}

/// What one run showed.
struct Run {
    shown: u64,
    flood_sent: u64,
    errors: Vec<String>,
    growth: u64,
    last: Stats,
}

/// How long each run streams: 6 s, longer for a large flood (about 150 k datagrams a
/// second leave the flood thread here).
fn run_length() -> Duration {
    Duration::from_secs_f64((flood_size() as f64 / 150_000.0).max(4.0) + 2.0)
}

/// Streams 30 fps for [`run_length`] through a [`Forwarder`]; with `flood`, floods as
/// `when` says. [`When::AcrossRestart`] stops the sender at 2.5 s and starts another with
/// the same keys 0.3 s later.
fn flooded_run(when: When, flood: bool) -> Run {
    let restart = when == When::AcrossRestart;
    let (send_keys, recv_keys) = keys();
    let (rx, frames, to) = listening_receiver(recv_keys);
    let stats = rx.stats();
    let forwarder = Forwarder::start(to);
    let start = Instant::now();
    let before = rss();
    // The flood's window, from the run's start.
    let length = run_length();
    let (from, until) = match when {
        When::BeforeHandshake | When::AcrossRestart => (Duration::ZERO, length),
        When::DuringHandshake => (Duration::from_millis(500), Duration::from_millis(2500)),
        When::MidStream => (Duration::from_millis(2500), length),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let flooder = flood.then(|| {
        let peer_socket = forwarder.back.try_clone().expect("clone");
        let captured = Arc::clone(&forwarder.captured);
        let (stop, sent) = (Arc::clone(&stop), Arc::clone(&sent));
        std::thread::spawn(move || {
            let stranger = UdpSocket::bind("127.0.0.1:0").expect("stranger");
            let mut rng = Xorshift(0x0016_f100d);
            let mut buf = [0u8; 1400];
            let total = flood_size();
            if let Some(w) = from.checked_sub(start.elapsed()) {
                std::thread::sleep(w);
            }
            let window = (until - from).as_secs_f64();
            let began = Instant::now();
            for i in 0..total {
                if stop.load(Ordering::Relaxed) || start.elapsed() >= until {
                    break;
                }
                let (n, as_peer) = hostile(i, &mut rng, &captured, &mut buf);
                let socket = if as_peer { &peer_socket } else { &stranger };
                if socket.send_to(&buf[..n], to).is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                // Spread the flood over its window.
                if i % 500 == 499 {
                    let due = Duration::from_secs_f64((i + 1) as f64 * window / total as f64);
                    if let Some(w) = due.checked_sub(began.elapsed()) {
                        std::thread::sleep(w);
                    }
                }
            }
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let start_sender = |keys: Security| {
        let mut sc = SenderConfig::default().fps(30);
        sc.net.security = Some(keys);
        let source = TestPatternSource::new(640, 360, 30).expect("pattern");
        Sender::start(sc, Remote::Address(forwarder.front), Some(Box::new(source))).expect("sender")
    };
    let mut tx = Some(start_sender(send_keys.clone()));
    let mut restarted = false;
    let end = start + length;
    let mut shown = 0u64;
    let mut peak = before;
    let mut snapshots: Vec<Stats> = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if frames
            .recv_timeout(left.min(Duration::from_millis(50)))
            .is_ok()
        {
            shown += 1;
        }
        snapshots.extend(stats.try_iter());
        peak = peak.max(rss());
        if restart && !restarted && start.elapsed() >= Duration::from_millis(2500) {
            restarted = true;
            drop(tx.take());
            std::thread::sleep(Duration::from_millis(300));
            tx = Some(start_sender(send_keys.clone()));
        }
    }
    stop.store(true, Ordering::Relaxed);
    if let Some(f) = flooder {
        f.join().expect("flood thread");
    }
    drop(tx);
    drop(forwarder);
    snapshots.extend(stats.try_iter());
    let last = snapshots.last().cloned().expect("stats");
    Run {
        shown,
        flood_sent: sent.load(Ordering::Relaxed),
        errors: snapshots.iter().filter_map(|s| s.error.clone()).collect(),
        growth: peak.saturating_sub(before),
        last,
    }
}

#[test]
fn floods_at_every_moment_and_from_the_peers_own_address_cost_at_most_5_percent() {
    let _one = serial();
    let plain = flooded_run(When::MidStream, false);
    let restarted = flooded_run(When::AcrossRestart, false);
    println!(
        "without a flood: {} frames shown; with a sender restart: {}",
        plain.shown, restarted.shown
    );
    assert!(
        plain.shown >= 120,
        "the quiet run streamed: {}",
        plain.shown
    );
    // A sender that restarts (from the same address, as the forwarder makes it) costs the
    // 0.3 s it was away and little more: the new session starts the receiver's stream over
    // at the new sender's first frame, a keyframe.
    assert!(
        restarted.shown as f64 >= 0.85 * plain.shown as f64,
        "{} frames shown across a restart, {} without",
        restarted.shown,
        plain.shown
    );
    for when in [
        When::BeforeHandshake,
        When::DuringHandshake,
        When::MidStream,
        When::AcrossRestart,
    ] {
        let baseline = if when == When::AcrossRestart {
            &restarted
        } else {
            &plain
        };
        let r = flooded_run(when, true);
        println!(
            "{when:?}: {} hostile datagrams; {} frames shown ({:.1} % of {}); memory growth \
             {:.1} MiB ({:.1} without); dropped as hostile {}; errors {:?}; warnings {:?}",
            r.flood_sent,
            r.shown,
            r.shown as f64 * 100.0 / baseline.shown.max(1) as f64,
            baseline.shown,
            r.growth as f64 / (1 << 20) as f64,
            baseline.growth as f64 / (1 << 20) as f64,
            r.last.dropped_hostile,
            r.errors,
            r.last.warnings
        );
        assert!(r.flood_sent > 0, "{when:?}: the flood ran");
        assert!(
            r.shown as f64 >= 0.95 * baseline.shown as f64,
            "{when:?}: {} frames shown with the flood, {} without",
            r.shown,
            baseline.shown
        );
        assert!(
            r.errors.is_empty(),
            "{when:?}: a flood set an error: {:?}",
            r.errors
        );
        // Growth is counted from before the sender starts (its encoder's buffers
        // included), so it is judged against the same run without the flood.
        assert!(
            r.growth <= baseline.growth + (16 << 20),
            "{when:?}: memory grew {} bytes, {} without the flood",
            r.growth,
            baseline.growth
        );
    }
}
