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

fn keys() -> (Security, Security) {
    Security::paired_in_process("sender", "receiver").expect("keys")
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
    let mut rc = ReceiverConfig::default();
    rc.net.security = Some(recv_keys);
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
    let (send_keys, recv_keys) = keys();
    let receiver_key = recv_keys.identity.public();
    let mut rc = ReceiverConfig::default();
    rc.net.security = Some(recv_keys);
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
