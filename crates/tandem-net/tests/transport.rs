//! Sessions over transports the application brings: a transport over a real UDP socket
//! pair (what an app's Network.framework connection is to the driver), junk delivered
//! through it, and a transport that fails mid-stream.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::{
    AppTransport, DatagramTransport, DriverConfig, DriverError, TransportError, TransportInbox,
    spawn_driver,
};
use tandem_proto::{OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig};

const SESSION: u32 = 0x7a7;

/// A transport over a connected UDP socket, with a thread of its own reading it, as an
/// app's link would deliver from its own queue.
struct UdpTransport {
    socket: UdpSocket,
    stopped: Arc<AtomicBool>,
    /// Sends after which it fails (`u32::MAX`: never).
    fail_after: u32,
    sends: AtomicU32,
    reader: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl UdpTransport {
    fn pair(fail_after: u32) -> (AppTransport, AppTransport, Arc<AtomicBool>) {
        let a = UdpSocket::bind("127.0.0.1:0").expect("a");
        let b = UdpSocket::bind("127.0.0.1:0").expect("b");
        a.connect(b.local_addr().expect("b addr"))
            .expect("connect a");
        b.connect(a.local_addr().expect("a addr"))
            .expect("connect b");
        let stopped = Arc::new(AtomicBool::new(false));
        let make = |socket: UdpSocket, fail_after| {
            socket
                .set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
            AppTransport::new(UdpTransport {
                socket,
                stopped: Arc::clone(&stopped),
                fail_after,
                sends: AtomicU32::new(0),
                reader: Mutex::new(None),
            })
        };
        (make(a, fail_after), make(b, u32::MAX), stopped)
    }
}

impl DatagramTransport for UdpTransport {
    fn start(&self, inbox: TransportInbox) {
        let socket = self.socket.try_clone().expect("clone");
        let stopped = Arc::clone(&self.stopped);
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !stopped.load(Ordering::Relaxed) && !inbox.is_closed() {
                if let Ok(n) = socket.recv(&mut buf) {
                    inbox.deliver(Bytes::copy_from_slice(&buf[..n]));
                }
            }
        });
        *self.reader.lock().expect("lock") = Some(reader);
    }

    fn send(&self, datagrams: &[&[u8]]) -> Result<(), TransportError> {
        if self.sends.fetch_add(1, Ordering::Relaxed) >= self.fail_after {
            return Err(TransportError::new("the link went down (test)"));
        }
        for d in datagrams {
            // A full buffer drops, as a socket's would.
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

    fn describe(&self) -> String {
        "UDP test transport".into()
    }
}

fn frame_bytes(n: u32) -> Bytes {
    Bytes::from(
        (0..12_000u32)
            .map(|i| (i.wrapping_mul(7) ^ n) as u8)
            .collect::<Vec<_>>(),
    )
}

#[test]
fn frames_cross_app_transports_intact_and_junk_through_them_is_dropped() {
    let (ta, tb, stopped) = UdpTransport::pair(u32::MAX);
    let now = Instant::now();
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig::over_transport(tb.clone()),
    )
    .expect("receiver");
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), now),
        DriverConfig::over_transport(ta),
    )
    .expect("sender");
    let mut events = rx.take_events();
    let frames = 60u32;
    let collector = std::thread::spawn(move || {
        let mut got = Vec::new();
        while got.len() < frames as usize {
            match events.blocking_recv() {
                Some(ReceiverEvent::Frame(f)) => got.push((f.frame_id, f.data)),
                None => break,
            }
        }
        got
    });
    for n in 0..frames {
        let data = frame_bytes(n);
        let sent = tx
            .call(move |s: &mut Sender, now| {
                s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            })
            .expect("driver running");
        assert!(sent.is_ok(), "frame {n}: {sent:?}");
        std::thread::sleep(Duration::from_millis(16));
    }
    let got = collector.join().expect("collector");
    assert_eq!(got.len(), frames as usize, "every frame arrives");
    for (i, (id, data)) in got.iter().enumerate() {
        assert_eq!((*id, data), (i as u32, &frame_bytes(i as u32)), "frame {i}");
    }
    assert_eq!(tx.peer(), Some(tandem_net::transport::TRANSPORT_PEER));
    let ts = tx.stats();
    assert!(ts.datagrams_out >= u64::from(frames) * 9, "{ts:?}");
    assert_eq!(ts.send_errors, 0, "{ts:?}");
    let sender = tx.shutdown().expect("sender stops");
    assert_eq!(sender.stats().frames_sent, u64::from(frames));
    // The receiver's stats count what came through its transport.
    let rs = rx.stats();
    assert!(rs.datagrams_in >= u64::from(frames) * 9, "{rs:?}");
    let receiver = rx.shutdown().expect("receiver stops");
    assert_eq!(receiver.stats().frames_completed, u64::from(frames));
    assert!(
        stopped.load(Ordering::Relaxed),
        "the transports were stopped"
    );
}

#[test]
fn a_flooding_transport_costs_counters_not_memory() {
    let (_, tb, _) = UdpTransport::pair(u32::MAX);
    let now = Instant::now();
    let inbox: Arc<Mutex<Option<TransportInbox>>> = Arc::default();
    // A transport that hands its inbox out, so the test can flood it directly.
    struct Leaky(AppTransport, Arc<Mutex<Option<TransportInbox>>>);
    impl DatagramTransport for Leaky {
        fn start(&self, inbox: TransportInbox) {
            *self.1.lock().expect("lock") = Some(inbox.clone());
            self.0.0.start(inbox);
        }
        fn send(&self, d: &[&[u8]]) -> Result<(), TransportError> {
            self.0.0.send(d)
        }
        fn stop(&self) {
            self.0.0.stop();
        }
    }
    let mut config = DriverConfig::over_transport(AppTransport::new(Leaky(tb, Arc::clone(&inbox))));
    config.transport_inbox = 256;
    let rx = spawn_driver(Receiver::new(ReceiverConfig::new(SESSION), now), config).expect("rx");
    let deadline = Instant::now() + Duration::from_secs(2);
    let inbox = loop {
        if let Some(i) = inbox.lock().expect("lock").clone() {
            break i;
        }
        assert!(Instant::now() < deadline, "the transport was started");
        std::thread::sleep(Duration::from_millis(1));
    };
    let (mut kept, mut refused) = (0u64, 0u64);
    for i in 0..200_000u32 {
        let mut junk = vec![0xa5u8; 1200];
        junk[..4].copy_from_slice(&i.to_be_bytes());
        if inbox.deliver(Bytes::from(junk)) {
            kept += 1;
        } else {
            refused += 1;
        }
    }
    // Oversized datagrams are not the protocol's: dropped before the endpoint sees them
    // (once the driver has drained the flood, there is room for it).
    std::thread::sleep(Duration::from_millis(200));
    assert!(inbox.deliver(Bytes::from(vec![0u8; 4000])));
    std::thread::sleep(Duration::from_millis(200));
    let st = rx.stats();
    assert!(
        refused > 0,
        "a burst this size overflows a 256-datagram inbox"
    );
    assert_eq!(st.transport_dropped, refused, "{st:?}");
    // A transport is a link to its peer: what it delivers reaches the endpoint, which
    // judges it (a sealed session authenticates it). The oversized one never does.
    assert_eq!(st.strays, 1, "{st:?}");
    assert_eq!(st.datagrams_in, kept, "{st:?}");
    assert!(!rx.is_finished(), "junk never ends a session");
    let receiver = rx.shutdown().expect("receiver stops");
    let rs = receiver.stats();
    assert_eq!(rs.frames_completed, 0);
    let judged = rs.drops.malformed + rs.drops.wrong_session + rs.drops.unsupported_version;
    assert_eq!(
        judged, kept,
        "every junk datagram is counted as what it is: {rs:?}"
    );
    assert!(inbox.is_closed());
    assert!(!inbox.deliver(Bytes::from_static(b"after the end")));
}

#[test]
fn a_transport_that_fails_mid_stream_ends_the_session_with_its_reason() {
    let (ta, tb, stopped) = UdpTransport::pair(40);
    let now = Instant::now();
    let rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig::over_transport(tb),
    )
    .expect("receiver");
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), now),
        DriverConfig::over_transport(ta),
    )
    .expect("sender");
    let mut sent = 0;
    for n in 0..200u32 {
        let data = frame_bytes(n);
        match tx.call(move |s: &mut Sender, now| {
            s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
        }) {
            Ok(_) => sent += 1,
            Err(_) => break,
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(sent < 200, "calls fail once the transport has failed");
    // A call fails as soon as the driver's thread has let go of its queue; the thread
    // itself ends a moment later.
    let deadline = Instant::now() + Duration::from_secs(2);
    while !tx.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(tx.is_finished());
    match tx.shutdown() {
        Err(DriverError::Transport(reason)) => assert_eq!(reason, "the link went down (test)"),
        other => panic!("expected the transport's failure, got {other:?}"),
    }
    assert!(
        stopped.load(Ordering::Relaxed),
        "the failed transport was stopped"
    );
    drop(rx);
}
