//! Sessions over two paths on loopback: a sender and a receiver each with two UDP sockets
//! (or a transport and a socket), plain and sealed; what each path carries, strangers on
//! the second socket, and a session that loses one of its paths and goes on over the other.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::{
    AppTransport, DatagramTransport, DriverConfig, DriverHandle, PathConfig, SecondPath,
    SocketConfig, TransportError, TransportInbox, spawn_driver,
};
use tandem_proto::security::{
    Identity, PeerKey, Secure, SecureConfig, SecureEvent, SessionRole, TrustStore,
};
use tandem_proto::{
    OutgoingFrame, PathPolicy, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig,
};
use tokio::sync::mpsc;

const SESSION: u32 = 0x2_9a7;
const INTERVAL: Duration = Duration::from_micros(16_667);

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

fn udp(local: SocketAddr) -> PathConfig {
    PathConfig::Udp {
        local,
        socket: SocketConfig::default(),
    }
}

fn frame_bytes(n: u32) -> Bytes {
    Bytes::from(
        (0..15_000u32)
            .map(|i| (i.wrapping_mul(13) ^ n) as u8)
            .collect::<Vec<_>>(),
    )
}

fn sender_config(policy: PathPolicy) -> SenderConfig {
    SenderConfig {
        path_policy: policy,
        ..SenderConfig::new(SESSION)
    }
}

/// Collects the frames a receiver's driver delivers, until `want` arrived or nothing came
/// for two seconds.
fn collect<Ev: Send + 'static>(
    mut events: mpsc::Receiver<Ev>,
    want: u32,
    frame_of: fn(Ev) -> Option<(u32, Bytes)>,
) -> std::thread::JoinHandle<Vec<(u32, Bytes)>> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let mut got = Vec::new();
            while got.len() < want as usize {
                match tokio::time::timeout(Duration::from_secs(2), events.recv()).await {
                    Ok(Some(e)) => got.extend(frame_of(e)),
                    Ok(None) | Err(_) => break,
                }
            }
            got
        })
    })
}

fn plain_frame(e: ReceiverEvent) -> Option<(u32, Bytes)> {
    #[allow(unreachable_patterns)] // ReceiverEvent may gain variants.
    match e {
        ReceiverEvent::Frame(f) => Some((f.frame_id, f.data)),
        _ => None,
    }
}

fn sealed_frame(e: SecureEvent<ReceiverEvent>) -> Option<(u32, Bytes)> {
    match e {
        SecureEvent::Inner(e) => plain_frame(e),
        SecureEvent::Security(_) => None,
    }
}

/// Sends `frames` frames at 60 fps through `send` (`n`, its bytes); `at(n)` runs before
/// frame `n`.
fn stream(frames: u32, mut at: impl FnMut(u32), send: impl Fn(u32, Bytes)) {
    let start = Instant::now();
    for n in 0..frames {
        let due = start + INTERVAL * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        at(n);
        send(n, frame_bytes(n));
    }
}

fn send_plain(tx: &DriverHandle<Sender>) -> impl Fn(u32, Bytes) + '_ {
    move |n, data| {
        let sent = tx
            .call(move |s: &mut Sender, now| {
                s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            })
            .expect("driver running");
        assert!(sent.is_ok(), "frame {n}: {sent:?}");
    }
}

fn assert_intact(got: &[(u32, Bytes)], frames: u32) {
    assert_eq!(got.len(), frames as usize, "every frame arrives");
    for (i, (id, data)) in got.iter().enumerate() {
        assert_eq!(*id, i as u32);
        assert_eq!(*data, frame_bytes(i as u32), "frame {i} intact");
    }
}

/// A plain receiver listening on two sockets (both peers learned) and a sender with two
/// sockets aimed at them.
fn plain_pair(policy: PathPolicy) -> (DriverHandle<Sender>, DriverHandle<Receiver>) {
    let now = Instant::now();
    let rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: udp(loopback()),
                peer: None,
            }),
            ..DriverConfig::new(loopback(), None)
        },
    )
    .expect("receiver");
    let tx = spawn_driver(
        Sender::new(sender_config(policy), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: udp(loopback()),
                peer: Some(rx.second_local_addr().expect("second socket")),
            }),
            ..DriverConfig::new(loopback(), Some(rx.local_addr()))
        },
    )
    .expect("sender");
    (tx, rx)
}

#[test]
fn a_duplicate_session_delivers_every_frame_and_both_sockets_carry_it() {
    let (tx, mut rx) = plain_pair(PathPolicy::Duplicate);
    let frames = 120;
    let collector = collect(rx.take_events(), frames, plain_frame);
    stream(frames, |_| {}, send_plain(&tx));
    let got = collector.join().expect("collector");
    assert_intact(&got, frames);
    let (ts, rs) = (tx.stats(), rx.stats());
    println!("sender {ts:?}\nreceiver {rs:?}");
    let [tx0, tx1] = ts.paths;
    assert!(tx0.datagrams_out >= u64::from(frames) * 13, "{ts:?}");
    // Every datagram on both (the second path opened at once: its peer is configured).
    assert!(
        tx1.datagrams_out * 100 >= tx0.datagrams_out * 95,
        "path 1 carried a copy of nearly everything: {ts:?}"
    );
    assert_eq!(ts.datagrams_out, tx0.datagrams_out + tx1.datagrams_out);
    assert_eq!(ts.bytes_out, tx0.bytes_out + tx1.bytes_out);
    assert!(
        rs.paths[0].datagrams_in > 0 && rs.paths[1].datagrams_in > 0,
        "{rs:?}"
    );
    assert_eq!(
        rs.datagrams_in,
        rs.paths[0].datagrams_in + rs.paths[1].datagrams_in
    );
    // Each side knows the other's two sockets.
    assert_eq!(
        rx.path_peers(),
        [Some(tx.local_addr()), tx.second_local_addr()]
    );
    assert_eq!(
        tx.path_peers(),
        [Some(rx.local_addr()), rx.second_local_addr()]
    );
    assert_eq!((ts.paths_lost, rs.paths_lost, ts.send_errors), (0, 0, 0));
    let sender = tx.shutdown().expect("sender stops");
    let receiver = rx.shutdown().expect("receiver stops");
    let (s, r) = (sender.stats(), receiver.stats());
    assert!(s.paths[1].open && r.paths[1].open, "both opened path 1");
    assert!(
        r.paths[1].duplicates_received + r.paths[0].duplicates_received > 0,
        "copies were dropped: {:?}",
        r.paths
    );
    // The receiver's feedback reached the sender (on whichever path it chose).
    assert!(s.paths[0].datagrams_received + s.paths[1].datagrams_received > 0);
}

fn identities() -> (Identity, Identity, TrustStore, TrustStore) {
    let a = Identity::generate().expect("identity");
    let b = Identity::generate().expect("identity");
    let (mut ta, mut tb) = (TrustStore::new(), TrustStore::new());
    ta.add(b.public(), "receiver").expect("trust");
    tb.add(a.public(), "sender").expect("trust");
    (a, b, ta, tb)
}

type SealedTx = DriverHandle<Secure<Sender>>;
type SealedRx = DriverHandle<Secure<Receiver>>;

/// A sealed receiver (responder) on two sockets, peers learned, and a sealed sender
/// (initiator) whose second path is `tx_second` (`None`: one path).
fn sealed_pair(
    policy: PathPolicy,
    tx_second: bool,
    rx_second: Option<PathConfig>,
) -> (SealedTx, SealedRx, PeerKey) {
    let (a, b, ta, tb) = identities();
    let peer = b.public();
    let now = Instant::now();
    let rx = spawn_driver(
        Secure::new(
            Receiver::new(ReceiverConfig::new(SESSION), now),
            SecureConfig::new(b, tb, SessionRole::Responder, SESSION),
            now,
        ),
        DriverConfig {
            second_path: rx_second.map(|path| SecondPath { path, peer: None }),
            ..DriverConfig::new(loopback(), None)
        },
    )
    .expect("receiver");
    let tx = spawn_driver(
        Secure::new(
            Sender::new(sender_config(policy), now),
            SecureConfig::new(a, ta, SessionRole::Initiator { peer }, SESSION),
            now,
        ),
        DriverConfig {
            second_path: tx_second.then(|| SecondPath {
                path: udp(loopback()),
                peer: rx.second_local_addr(),
            }),
            ..DriverConfig::new(loopback(), Some(rx.local_addr()))
        },
    )
    .expect("sender");
    (tx, rx, peer)
}

fn send_sealed(tx: &SealedTx) -> impl Fn(u32, Bytes) + '_ {
    move |n, data| {
        let sent = tx
            .call(move |s: &mut Secure<Sender>, now| {
                s.inner_mut()
                    .send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            })
            .expect("driver running");
        assert!(sent.is_ok(), "frame {n}: {sent:?}");
    }
}

fn wait_established(tx: &SealedTx) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !tx.is_established() {
        assert!(Instant::now() < deadline, "no session within 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_sealed_duplicate_session_learns_the_second_path_and_strangers_there_change_nothing() {
    let (tx, mut rx, _) = sealed_pair(PathPolicy::Duplicate, true, Some(udp(loopback())));
    let second = rx.second_local_addr().expect("second socket");
    let stranger = UdpSocket::bind(loopback()).expect("stranger");
    // While the handshake runs, junk at the second socket: it teaches no peer (the
    // sender's own handshake, sent on both paths, may have taught the real one).
    for _ in 0..50 {
        stranger.send_to(b"not tandem", second).expect("junk");
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_ne!(
        rx.path_peers()[1],
        stranger.local_addr().ok(),
        "junk taught no peer"
    );
    wait_established(&tx);
    let frames = 120;
    let collector = collect(rx.take_events(), frames, sealed_frame);
    stream(
        frames,
        |n| {
            if n == 60 {
                // Mid-stream, a stranger on the second socket: counted, nothing else.
                for _ in 0..100 {
                    stranger.send_to(&[0x54; 80], second).expect("junk");
                }
            }
        },
        send_sealed(&tx),
    );
    let got = collector.join().expect("collector");
    assert_intact(&got, frames);
    let (ts, rs) = (tx.stats(), rx.stats());
    println!("sender {ts:?}\nreceiver {rs:?}");
    assert!(
        ts.paths[0].datagrams_out >= u64::from(frames) * 13,
        "{ts:?}"
    );
    assert!(
        ts.paths[1].datagrams_out >= u64::from(frames) * 13,
        "{ts:?}"
    );
    assert!(
        rs.paths[0].datagrams_in > 0 && rs.paths[1].datagrams_in > 0,
        "{rs:?}"
    );
    assert!(
        rs.strays >= 150,
        "the stranger's datagrams were counted: {rs:?}"
    );
    assert_eq!(rs.peer_changes, 0, "{rs:?}");
    assert_eq!(
        rx.path_peers(),
        [Some(tx.local_addr()), tx.second_local_addr()],
        "each path's peer is the sender's socket, not the stranger"
    );
    let receiver = rx.shutdown().expect("receiver stops");
    assert!(receiver.inner().stats().paths[1].open);
    assert!(receiver.stats().forged + receiver.stats().malformed >= 150);
    tx.shutdown().expect("sender stops");
}

#[test]
fn an_unpaired_device_on_the_second_socket_opens_nothing() {
    // The real sender has one path; a stranger (a sealed sender of its own, unpaired)
    // hammers the receiver's second socket with handshakes, and junk comes too.
    let (tx, mut rx, receiver_key) =
        sealed_pair(PathPolicy::Adaptive, false, Some(udp(loopback())));
    let second = rx.second_local_addr().expect("second socket");
    let now = Instant::now();
    // The stranger knows the receiver's key (it is no secret) but is not trusted by it.
    let stranger_id = Identity::generate().expect("identity");
    let mut trust = TrustStore::new();
    trust.add(receiver_key, "victim").expect("trust");
    let stranger = spawn_driver(
        Secure::new(
            Sender::new(SenderConfig::new(SESSION), now),
            SecureConfig::new(
                stranger_id,
                trust,
                SessionRole::Initiator { peer: receiver_key },
                SESSION,
            ),
            now,
        ),
        DriverConfig::new(loopback(), Some(second)),
    )
    .expect("stranger");
    let junk = UdpSocket::bind(loopback()).expect("junk");
    wait_established(&tx);
    let frames = 60;
    let collector = collect(rx.take_events(), frames, sealed_frame);
    stream(
        frames,
        |_| {
            let _ = junk.send_to(&[0u8; 40], second);
        },
        send_sealed(&tx),
    );
    let got = collector.join().expect("collector");
    assert_intact(&got, frames);
    let rs = rx.stats();
    println!("receiver {rs:?}, stranger {:?}", stranger.stats());
    assert!(
        stranger.stats().datagrams_out >= 5,
        "the stranger kept trying"
    );
    assert_eq!(rx.path_peers(), [Some(tx.local_addr()), None]);
    assert_eq!(rs.paths[1].datagrams_in, 0, "{rs:?}");
    assert!(rs.strays >= u64::from(frames), "{rs:?}");
    assert_eq!(rs.peer_changes, 0);
    let receiver = rx.shutdown().expect("receiver stops");
    assert!(
        !receiver.inner().stats().paths[1].open,
        "path 1 never opened"
    );
    stranger.shutdown().expect("stranger stops");
    tx.shutdown().expect("sender stops");
}

#[test]
fn a_configured_second_peer_keeps_its_place_against_strays() {
    // A plain receiver told where the sender's second socket is: a stranger's datagrams
    // there are strays, and the peer stays.
    let legit = UdpSocket::bind(loopback()).expect("legit");
    let now = Instant::now();
    let rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: udp(loopback()),
                peer: Some(legit.local_addr().expect("addr")),
            }),
            ..DriverConfig::new(loopback(), None)
        },
    )
    .expect("receiver");
    let second = rx.second_local_addr().expect("second");
    let stranger = UdpSocket::bind(loopback()).expect("stranger");
    for _ in 0..20 {
        stranger.send_to(b"hi", second).expect("stray");
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while rx.stats().strays < 20 {
        assert!(Instant::now() < deadline, "{:?}", rx.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rx.path_peers(), [None, legit.local_addr().ok()]);
    assert_eq!(rx.stats().paths[1].datagrams_in, 0);
    // The peer itself is heard on path 1.
    legit
        .send_to(b"junk but from the peer", second)
        .expect("send");
    let deadline = Instant::now() + Duration::from_secs(2);
    while rx.stats().paths[1].datagrams_in < 1 {
        assert!(Instant::now() < deadline, "{:?}", rx.stats());
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rx.stats().peer_changes, 0);
    let receiver = rx.shutdown().expect("receiver stops");
    assert!(
        receiver.stats().paths[1].open,
        "a configured peer opens path 1 at start"
    );
}

/// A transport over a connected UDP socket pair that fails (on both sides) once `fail`
/// is set: the sending side's send errors, the receiving side's inbox is failed.
struct UdpTransport {
    socket: UdpSocket,
    fail: Arc<AtomicBool>,
    stopped: AtomicBool,
    sends: AtomicU32,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl UdpTransport {
    fn pair() -> (AppTransport, AppTransport, Arc<AtomicBool>) {
        let a = UdpSocket::bind(loopback()).expect("a");
        let b = UdpSocket::bind(loopback()).expect("b");
        a.connect(b.local_addr().expect("b")).expect("connect");
        b.connect(a.local_addr().expect("a")).expect("connect");
        let fail = Arc::new(AtomicBool::new(false));
        let make = |socket: UdpSocket| {
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
            AppTransport::new(UdpTransport {
                socket,
                fail: Arc::clone(&fail),
                stopped: AtomicBool::new(false),
                sends: AtomicU32::new(0),
                reader: Mutex::new(None),
            })
        };
        (make(a), make(b), fail)
    }
}

impl DatagramTransport for UdpTransport {
    fn start(&self, inbox: TransportInbox) {
        let socket = self.socket.try_clone().expect("clone");
        let fail = Arc::clone(&self.fail);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !inbox.is_closed() {
                if fail.load(Ordering::Relaxed) {
                    inbox.fail("the test link went down");
                    return;
                }
                if let Ok(n) = socket.recv(&mut buf) {
                    inbox.deliver(Bytes::copy_from_slice(&buf[..n]));
                }
            }
        });
        *self.reader.lock().expect("lock") = Some(reader);
    }

    fn send(&self, datagrams: &[&[u8]]) -> Result<(), TransportError> {
        self.sends.fetch_add(1, Ordering::Relaxed);
        if self.fail.load(Ordering::Relaxed) {
            return Err(TransportError::new("the test link went down"));
        }
        for d in datagrams {
            let _ = self.socket.send(d);
        }
        Ok(())
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.lock().expect("lock").take() {
            let _ = r.join();
        }
    }
}

/// Streams 180 frames over a session of a transport and a UDP socket, one of which
/// (`lose`: the first or the second path) fails after a second; both sides go on over the
/// other, and nothing is missing.
fn lose_one_path(lose_first: bool) {
    let (ta, tb, fail) = UdpTransport::pair();
    let now = Instant::now();
    // The receiver's UDP socket comes first so the sender can aim at it.
    let (rx_paths, rx_second) = if lose_first {
        (vec![PathConfig::Transport(tb)], udp(loopback()))
    } else {
        (vec![udp(loopback())], PathConfig::Transport(tb))
    };
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: rx_second,
                peer: None,
            }),
            ..DriverConfig::with_paths(rx_paths, None)
        },
    )
    .expect("receiver");
    let rx_udp = if lose_first {
        rx.second_local_addr().expect("second")
    } else {
        rx.local_addr()
    };
    let (tx_paths, tx_peer, tx_second) = if lose_first {
        (
            vec![PathConfig::Transport(ta)],
            None,
            SecondPath {
                path: udp(loopback()),
                peer: Some(rx_udp),
            },
        )
    } else {
        (
            vec![udp(loopback())],
            Some(rx_udp),
            SecondPath {
                path: PathConfig::Transport(ta),
                peer: None,
            },
        )
    };
    let tx = spawn_driver(
        Sender::new(sender_config(PathPolicy::Duplicate), now),
        DriverConfig {
            second_path: Some(tx_second),
            ..DriverConfig::with_paths(tx_paths, tx_peer)
        },
    )
    .expect("sender");
    let frames = 180;
    let collector = collect(rx.take_events(), frames, plain_frame);
    let mut before = None;
    stream(
        frames,
        |n| {
            if n == 60 {
                before = Some((tx.stats(), rx.stats()));
                fail.store(true, Ordering::Relaxed);
            }
        },
        send_plain(&tx),
    );
    let got = collector.join().expect("collector");
    let (ts, rs) = (tx.stats(), rx.stats());
    let (tb, rb) = before.expect("stats before the loss");
    let lost = if lose_first { 0 } else { 1 };
    let kept = 1 - lost;
    println!("lost path {lost}: sender {ts:?}\nreceiver {rs:?}");
    assert!(
        !tx.is_finished() && !rx.is_finished(),
        "both sessions go on"
    );
    assert_eq!(
        (ts.paths_lost, rs.paths_lost),
        (1, 1),
        "each side lost one path"
    );
    assert_eq!(tx.path_peers()[lost], None);
    assert_eq!(rx.path_peers()[lost], None);
    assert!(tx.path_peers()[kept].is_some() && rx.path_peers()[kept].is_some());
    assert!(
        tb.paths[lost].datagrams_out > 0 && rb.paths[lost].datagrams_in > 0,
        "path {lost} carried media before: {tb:?} {rb:?}"
    );
    assert!(
        ts.paths[kept].datagrams_out - tb.paths[kept].datagrams_out >= 100 * 13,
        "the rest went on path {kept}: {ts:?}"
    );
    // Duplicated up to the loss, then on the other path alone: nothing missing.
    assert_intact(&got, frames);
    tx.shutdown().expect("sender stops cleanly");
    rx.shutdown().expect("receiver stops cleanly");
}

#[test]
fn losing_the_first_path_leaves_the_session_on_the_second() {
    lose_one_path(true);
}

#[test]
fn losing_the_second_path_leaves_the_session_on_the_first() {
    lose_one_path(false);
}

#[test]
fn a_single_path_session_counts_everything_on_path_0() {
    let now = Instant::now();
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig::new(loopback(), None),
    )
    .expect("receiver");
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), now),
        DriverConfig::new(loopback(), Some(rx.local_addr())),
    )
    .expect("sender");
    let frames = 30;
    let collector = collect(rx.take_events(), frames, plain_frame);
    stream(frames, |_| {}, send_plain(&tx));
    assert_intact(&collector.join().expect("collector"), frames);
    let (ts, rs) = (tx.stats(), rx.stats());
    assert_eq!(ts.paths[0].datagrams_out, ts.datagrams_out);
    assert_eq!(ts.paths[0].bytes_out, ts.bytes_out);
    assert_eq!(ts.paths[1], Default::default());
    assert_eq!(rs.paths[0].datagrams_in, rs.datagrams_in);
    assert_eq!(tx.path_peers(), [Some(rx.local_addr()), None]);
    assert_eq!(tx.second_local_addr(), None);
    let receiver = rx.shutdown().expect("stops");
    assert!(!receiver.stats().paths[1].open);
    tx.shutdown().expect("stops");
}
