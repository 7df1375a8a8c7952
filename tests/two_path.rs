//! Two hosts joined by two links, one infrastructure and one peer-to-peer: discovery finds
//! the peer on both, and a session with each `PathPreference` sends its media over that
//! link and no other, as the interfaces' own packet counters show.
//!
//! Host B advertises with `mdns-sd` and listens on one port over IPv4 and IPv6; host A
//! browses, plans each connection from what discovery found, and streams 60 frames. The
//! infrastructure link is a veth that an override classifies as Wi-Fi infrastructure
//! (veths are "other" to the system); the peer-to-peer link is named `p2p-*`, the Wi-Fi
//! Direct convention, and carries only IPv6 link-local addresses, as AWDL does.

#![cfg(target_os = "linux")]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{
    Advertisement, BrowseOptions, Discovery, DiscoveryEvent, DriverConfig, DriverHandle,
    InterfaceKind, KindOverrides, MdnsSd, PathConfig, PathPreference, Peer, PeerTxt, SocketConfig,
    interfaces, plan_connection, spawn_driver,
};
use tandem_proto::{OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, Sender, SenderConfig};
use tandem_tests::netns::{self, Netns, VethEnd, VethPair};
use tandem_tests::runtime;

const SESSION: u32 = 0x2_7a7;
const FRAMES: u32 = 60;
const FRAME_BYTES: usize = 20_000;

/// Counts the frames a receiver's driver delivers.
fn count_frames(mut rx: DriverHandle<Receiver>, frames: Arc<AtomicU32>) {
    tokio::spawn(async move {
        while let Some(e) = rx.next_event().await {
            if matches!(e, ReceiverEvent::Frame(_)) {
                frames.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
}

/// Host B: advertise, listen on IPv4 and IPv6 with one port, count frames per family, until
/// `stop` says so.
fn host_b(
    ready: mpsc::Sender<u16>,
    stop: mpsc::Receiver<()>,
    v4: Arc<AtomicU32>,
    v6: Arc<AtomicU32>,
) {
    runtime().block_on(async move {
        let now = Instant::now();
        let rx4 = spawn_driver(
            Receiver::new(ReceiverConfig::new(SESSION), now),
            DriverConfig::new("0.0.0.0:0".parse().expect("v4"), None),
        )
        .expect("v4 receiver");
        let port = rx4.local_addr().port();
        let rx6 = spawn_driver(
            Receiver::new(ReceiverConfig::new(SESSION), now),
            DriverConfig::new(format!("[::]:{port}").parse().expect("v6"), None),
        )
        .expect("v6 receiver on the same port");
        count_frames(rx4, v4);
        count_frames(rx6, v6);
        let mdns = MdnsSd::new().expect("mdns-sd on host B");
        let txt = PeerTxt {
            protocol_version: PROTOCOL_VERSION,
            peer_id: "host-b".into(),
            device_name: "Host B".into(),
            codecs: vec![tandem_proto::Codec::Av1],
        };
        let _ad = mdns
            .advertise(&Advertisement::new(port, txt))
            .expect("advertised");
        let _ = ready.send(port);
        let _ = tokio::task::spawn_blocking(move || stop.recv()).await;
    });
}

/// Host A, step 1: browse until host B is seen on both links.
fn discover(infra_index: u32, p2p_index: u32) -> Peer {
    runtime().block_on(async move {
        let mdns = MdnsSd::new().expect("mdns-sd on host A");
        let mut browser = mdns.browse(&BrowseOptions::default()).expect("browsing");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let seen_on_both = |p: &Peer| {
                p.addresses_on(infra_index).any(|a| a.is_ipv4())
                    && p.addresses_on(p2p_index).any(|a| a.is_ipv6())
            };
            if let Some(p) = browser.peers().into_iter().find(|p| seen_on_both(p)) {
                return p;
            }
            match tokio::time::timeout_at(deadline, browser.next()).await {
                Ok(Some(DiscoveryEvent::Found(_) | DiscoveryEvent::Updated(_))) => {}
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => panic!(
                    "host B not seen on both links within 20 s; peers: {:?}",
                    browser.peers()
                ),
            }
        }
    })
}

/// Host A, step 2: one session with `preference`; returns the chosen interface's name,
/// the peer address used and the driver's counters.
fn stream(
    peer: Peer,
    overrides: KindOverrides,
    preference: PathPreference,
) -> (String, std::net::SocketAddr, tandem_net::DriverStats) {
    runtime().block_on(async move {
        let list = interfaces(&overrides).expect("interfaces");
        let (path, to) = plan_connection(&peer, &list, preference).expect("a path");
        let now = Instant::now();
        let tx = spawn_driver(
            Sender::new(SenderConfig::new(SESSION), now),
            DriverConfig::with_paths(
                vec![PathConfig::Udp {
                    local: path.local,
                    socket: SocketConfig {
                        interface: Some(path.index),
                        ..SocketConfig::default()
                    },
                }],
                Some(to),
            ),
        )
        .expect("sender bound to the chosen interface");
        let interval = Duration::from_micros(16_667);
        let start = tokio::time::Instant::now();
        for n in 0..FRAMES {
            tokio::time::sleep_until(start + interval * n).await;
            let data = Bytes::from(vec![n as u8; FRAME_BYTES]);
            tx.call(move |s: &mut Sender, now| {
                s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
            })
            .expect("driver running")
            .expect("frame accepted");
        }
        // Let the last frame and any repair go out.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sent = tx.stats();
        tx.shutdown().expect("sender stops");
        (path.interface, to, sent)
    })
}

#[test]
fn each_path_preference_streams_over_its_own_link() {
    if let Some(why) = netns::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let tag = std::process::id() % 100_000;
    let a = Netns::new(&format!("tnd-a-{tag}")).expect("namespace A");
    let b = Netns::new(&format!("tnd-b-{tag}")).expect("namespace B");
    let _infra_link = VethPair::new(
        VethEnd::new("infra-a").in_ns(&a).addr("10.201.0.1/24"),
        VethEnd::new("infra-b").in_ns(&b).addr("10.201.0.2/24"),
    )
    .expect("infrastructure link");
    let _p2p_link = VethPair::new(
        VethEnd::new("p2p-a0").in_ns(&a).addr("fe80::a/64"),
        VethEnd::new("p2p-b0").in_ns(&b).addr("fe80::b/64"),
    )
    .expect("peer-to-peer link");
    let infra = a.index_of("infra-a").expect("index");
    let p2p = a.index_of("p2p-a0").expect("index");

    let (v4, v6) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (ready_tx, ready) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel();
    let host_b = b.spawn({
        let (v4, v6) = (Arc::clone(&v4), Arc::clone(&v6));
        move || host_b(ready_tx, stop_rx, v4, v6)
    });
    let port = ready
        .recv_timeout(Duration::from_secs(10))
        .expect("host B ready");

    let peer = a
        .spawn(move || discover(infra, p2p))
        .join()
        .expect("discovery thread")
        .expect("in A");
    assert_eq!(peer.port, port);
    assert_eq!(peer.txt.peer_id, "host-b");
    assert!(
        peer.addresses_on(p2p).all(|a| a.is_ipv6()),
        "no IPv4 on the peer-to-peer link: {peer:?}"
    );

    let mut overrides = KindOverrides::new();
    overrides.insert("infra-a".into(), InterfaceKind::WifiInfrastructure);
    for (preference, link, other, frames) in [
        (PathPreference::Infrastructure, "infra-a", "p2p-a0", &v4),
        (PathPreference::PeerToPeer, "p2p-a0", "infra-a", &v6),
    ] {
        let before = (
            a.counters(link).expect("counters"),
            a.counters(other).expect("counters"),
        );
        let (peer, overrides) = (peer.clone(), overrides.clone());
        let (chosen, to, sent) = a
            .spawn(move || stream(peer, overrides, preference))
            .join()
            .expect("session thread")
            .expect("in A");
        let after = (
            a.counters(link).expect("counters"),
            a.counters(other).expect("counters"),
        );
        assert_eq!(chosen, link, "{preference} chose {chosen}");
        match preference {
            PathPreference::PeerToPeer => {
                assert!(
                    matches!(to, std::net::SocketAddr::V6(v) if v.scope_id() == p2p),
                    "{to}"
                );
            }
            _ => assert!(to.is_ipv4(), "{to}"),
        }
        // Bytes, not packets: a batched (GSO) send crosses a veth as one packet.
        let on_link = after.0.tx_bytes - before.0.tx_bytes;
        let on_other = after.1.tx_bytes - before.1.tx_bytes;
        println!(
            "{preference}: {} datagrams ({} bytes) sent, {on_link} bytes left {link}, \
             {on_other} bytes left {other}",
            sent.datagrams_out, sent.bytes_out
        );
        assert!(sent.datagrams_out >= u64::from(FRAMES) * 17, "{sent:?}");
        assert!(
            on_link >= sent.bytes_out,
            "every datagram left {link}: {on_link} < {}",
            sent.bytes_out
        );
        // Only stray control traffic (mDNS, neighbour discovery) may use the other link:
        // far less than one frame.
        assert!(
            on_other < FRAME_BYTES as u64 / 4,
            "{on_other} bytes left {other}"
        );
        assert_eq!(
            frames.load(Ordering::Relaxed),
            FRAMES,
            "host B got every frame over {link}"
        );
    }
    let _ = stop.send(());
    host_b.join().expect("host B thread").expect("in B");
}
