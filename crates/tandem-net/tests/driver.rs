//! A real sender and receiver, each on its own driver task and socket, over loopback.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::{DriverConfig, spawn_driver};
use tandem_proto::{OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig};

const SESSION: u32 = 0x7e57;

fn frame_bytes(n: u32) -> Bytes {
    // 20 kB, different per frame so a mix-up shows.
    Bytes::from(
        (0..20_000u32)
            .map(|i| (i.wrapping_mul(31) ^ n) as u8)
            .collect::<Vec<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_cross_real_sockets_in_order_and_intact() {
    let start = Instant::now();
    let rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), start),
        DriverConfig::new("127.0.0.1:0".parse().expect("addr"), None),
    )
    .expect("receiver driver");
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), start),
        DriverConfig::new("127.0.0.1:0".parse().expect("addr"), Some(rx.local_addr())),
    )
    .expect("sender driver");

    // A stranger sends junk to the receiver once the stream is under way.
    let stranger = std::net::UdpSocket::bind("127.0.0.1:0").expect("stranger");
    let frames = 120u32;
    let rx_addr = rx.local_addr();
    let mut rx = rx;
    let interval = Duration::from_micros(16_667);
    let collector = tokio::spawn(async move {
        let mut got = Vec::new();
        while got.len() < frames as usize {
            match tokio::time::timeout(Duration::from_secs(5), rx.next_event()).await {
                Ok(Some(ReceiverEvent::Frame(f))) => got.push((f.frame_id, f.data)),
                Ok(None) | Err(_) => break,
            }
        }
        (got, rx)
    });
    for n in 0..frames {
        tokio::time::sleep_until((start + interval * n).into()).await;
        if n == 30 {
            for _ in 0..100 {
                stranger.send_to(b"not tandem", rx_addr).expect("junk sent");
            }
        }
        let data = frame_bytes(n);
        let sent = tx
            .call(move |s: &mut Sender, now| {
                s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            })
            .expect("driver running");
        assert!(sent.is_ok(), "frame {n}: {sent:?}");
    }
    let (got, rx) = collector.await.expect("collector");
    assert_eq!(got.len(), frames as usize, "every frame arrives");
    for (i, (id, data)) in got.iter().enumerate() {
        assert_eq!(*id, i as u32);
        assert_eq!(*data, frame_bytes(i as u32), "frame {i} intact");
    }
    let rs = rx.stats();
    assert_eq!(
        rs.strays, 100,
        "junk from another address is counted and dropped"
    );
    assert!(rs.datagrams_in >= u64::from(frames) * 17, "{rs:?}");
    let ts = tx.stats();
    assert_eq!(ts.send_errors, 0, "{ts:?}");
    assert_eq!(ts.events_dropped, 0);
    let sender = tx.shutdown().expect("sender stops");
    let receiver = rx.shutdown().expect("receiver stops");
    assert!(sender.stats().frames_sent >= u64::from(frames));
    assert_eq!(receiver.stats().frames_completed, u64::from(frames));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encoder_thread_hands_frames_straight_to_the_socket() {
    let start = Instant::now();
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), start),
        DriverConfig::new("127.0.0.1:0".parse().expect("addr"), None),
    )
    .expect("receiver driver");
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), start),
        DriverConfig::new("127.0.0.1:0".parse().expect("addr"), Some(rx.local_addr())),
    )
    .expect("sender driver");
    // A plain thread, no runtime: what an encoder thread is.
    let encoder = std::thread::spawn(move || {
        for n in 0..30u32 {
            let data = frame_bytes(n);
            let sent = tx.call(move |s: &mut Sender, now| {
                s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            });
            assert!(matches!(sent, Ok(Ok(id)) if id == n), "frame {n}: {sent:?}");
            std::thread::sleep(Duration::from_millis(16));
        }
        tx
    });
    for n in 0..30u32 {
        let e = tokio::time::timeout(Duration::from_secs(5), rx.next_event())
            .await
            .expect("frame within 5 s");
        assert!(
            matches!(e, Some(ReceiverEvent::Frame(ref f)) if f.frame_id == n),
            "{e:?}"
        );
    }
    let tx = tokio::task::spawn_blocking(move || encoder.join())
        .await
        .expect("join")
        .expect("encoder thread");
    let sender = tx.shutdown().expect("sender stops");
    assert_eq!(sender.stats().frames_sent, 30);
}
