//! Two hosts joined by two links, one infrastructure and one peer-to-peer: discovery finds
//! the peer on both, and a session with each `PathPreference` sends its media over that
//! link and no other, as the interfaces' own packet counters show.
//!
//! Host B advertises with `mdns-sd` and listens on one port over IPv4 and IPv6; host A
//! browses, plans each connection from what discovery found, and streams 60 frames. The
//! infrastructure link is a veth that an override classifies as Wi-Fi infrastructure
//! (veths are "other" to the system); the peer-to-peer link is named `p2p-*`, the Wi-Fi
//! Direct convention, and carries only IPv6 link-local addresses, as AWDL does.
//!
//! A session over both links at once (issue 18): the same two links, each through one of a
//! pair of relays that apply the `awdl-dual` radio schedule (the infrastructure link stalls
//! about once a second; the peer-to-peer link is live only inside those stalls), and a
//! sender and receiver whose drivers each hold one socket per link.

#![cfg(target_os = "linux")]

use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::discovery::PROTOCOL_VERSION;
use tandem_net::{
    Advertisement, BrowseOptions, Discovery, DiscoveryEvent, DriverConfig, DriverHandle,
    DriverStats, InterfaceKind, KindOverrides, MdnsSd, PathConfig, PathPreference, Peer, PeerTxt,
    SecondPath, SocketConfig, interfaces, plan_connection, spawn_driver,
};
use tandem_proto::{
    OutgoingFrame, Receiver, ReceiverConfig, ReceiverEvent, ReceiverStats, SendError, Sender,
    SenderConfig, SenderEvent, SenderStats,
};
use tandem_relay::{RelayConfig, RelayCounters, spawn_dual};
use tandem_tests::netns::{self, Netns, VethEnd, VethPair, run_in};
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

/// The two-path session's length, rate and frame size: 6 s at 60 fps, about 8 Mbit/s.
const DUAL_FRAMES: u32 = 360;
const DUAL_FRAME_BYTES: usize = 16_667;

/// A socket bound to the interface with index `index`, at `local`.
fn bound_udp(local: SocketAddr, index: u32) -> PathConfig {
    PathConfig::Udp {
        local,
        socket: SocketConfig {
            interface: NonZeroU32::new(index),
            ..SocketConfig::default()
        },
    }
}

fn link_local(ip: &str, port: u16, scope: u32) -> SocketAddr {
    SocketAddr::V6(SocketAddrV6::new(
        ip.parse::<Ipv6Addr>().expect("address"),
        port,
        0,
        scope,
    ))
}

/// A completed frame as host D saw it: id, when it completed, whether it was for display.
type Completed = (u32, Instant, bool);

/// What host D saw.
struct DualReceived {
    frames: Vec<Completed>,
    driver: DriverStats,
    receiver: ReceiverStats,
    relays: [RelayCounters; 2],
    windows: Vec<(Instant, Instant)>,
    path_peers: [Option<SocketAddr>; 2],
}

/// Host D: a receiver on two sockets (peers learned), behind a relay pair with the
/// `awdl-dual` schedule, one relay on each link: the infrastructure relay listens on the
/// infrastructure veth's address, the peer-to-peer one on the peer-to-peer veth's
/// link-local address; each forwards to its socket of the receiver. Runs until `stop`.
fn dual_host_d(
    p2p_index: u32,
    ready: mpsc::Sender<(SocketAddr, SocketAddr)>,
    stop: mpsc::Receiver<()>,
) -> DualReceived {
    let now = Instant::now();
    let loopback: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: PathConfig::Udp {
                    local: loopback,
                    socket: SocketConfig::default(),
                },
                peer: None,
            }),
            ..DriverConfig::new(loopback, None)
        },
    )
    .expect("receiver on two sockets");
    let [infra, p2p] = tandem_sim::profile::dual_profile("awdl-dual").expect("awdl-dual");
    let relay = |listen, target, link| RelayConfig {
        seed: 18,
        // Four busy threads share two cores here: sleep to each delivery, do not spin.
        spin_window: Duration::ZERO,
        ..RelayConfig::new(listen, target, link)
    };
    let (relay1, relay2) = spawn_dual(
        relay(
            "10.203.0.2:0".parse().expect("addr"),
            rx.local_addr(),
            infra,
        ),
        relay(
            link_local("fe80::d", 0, p2p_index),
            rx.second_local_addr().expect("second socket"),
            p2p,
        ),
    )
    .expect("relays");
    let mut events = rx.take_events();
    let frames = std::thread::spawn(move || {
        let mut frames = Vec::new();
        while let Some(ReceiverEvent::Frame(f)) = events.blocking_recv() {
            frames.push((f.frame_id, f.completed_at, f.display));
        }
        frames
    });
    let _ = ready.send((relay1.local_addr(), relay2.local_addr()));
    let _ = stop.recv();
    let driver = rx.stats();
    let path_peers = rx.path_peers();
    let receiver = rx.shutdown().expect("receiver stops").stats();
    DualReceived {
        frames: frames.join().expect("events thread"),
        driver,
        receiver,
        relays: [relay1.counters(), relay2.counters()],
        windows: relay1.stall_windows(),
        path_peers,
    }
}

/// Host C: streams [`DUAL_FRAMES`] frames through the two relays (policy `adaptive`, the
/// default) from a socket on each link; returns the frames the sender took, its driver's
/// and its own counters.
fn dual_host_c(
    infra_index: u32,
    p2p_index: u32,
    relay1: SocketAddr,
    relay2: SocketAddr,
) -> (Vec<u32>, DriverStats, SenderStats) {
    let now = Instant::now();
    let mut tx = spawn_driver(
        Sender::new(SenderConfig::new(SESSION), now),
        DriverConfig {
            second_path: Some(SecondPath {
                path: bound_udp(link_local("fe80::c", 0, p2p_index), p2p_index),
                peer: Some(relay2),
            }),
            ..DriverConfig::with_paths(
                vec![bound_udp(
                    "10.203.0.1:0".parse().expect("addr"),
                    infra_index,
                )],
                Some(relay1),
            )
        },
    )
    .expect("sender on two sockets");
    let start = Instant::now();
    let mut sent = Vec::new();
    let mut keyframe = true;
    for n in 0..DUAL_FRAMES {
        let due = start + Duration::from_micros(16_667) * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        while let Some(e) = tx.try_next_event() {
            keyframe |= matches!(e, SenderEvent::KeyframeRequested);
        }
        let data = Bytes::from(vec![n as u8; DUAL_FRAME_BYTES]);
        let key = std::mem::take(&mut keyframe);
        match tx
            .call(move |s: &mut Sender, now| s.send_frame(now, OutgoingFrame::av1(data, now, key)))
            .expect("driver running")
        {
            Ok(id) => sent.push(id),
            // The encoder would skip this picture and send a keyframe next.
            Err(SendError::QueueFull { .. }) => keyframe = true,
            Err(e) => panic!("frame {n}: {e}"),
        }
    }
    // The last frame, and any repair, through the next peer-to-peer window.
    std::thread::sleep(Duration::from_millis(500));
    let driver = tx.stats();
    let sender = tx.shutdown().expect("sender stops").stats();
    (sent, driver, sender)
}

#[test]
fn a_session_over_both_links_on_one_radio_uses_both_and_delivers_every_frame() {
    if let Some(why) = netns::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let tag = std::process::id() % 100_000;
    let c = Netns::new(&format!("tnd-c-{tag}")).expect("namespace C");
    let d = Netns::new(&format!("tnd-d-{tag}")).expect("namespace D");
    let _infra_link = VethPair::new(
        VethEnd::new("dinf-c").in_ns(&c).addr("10.203.0.1/24"),
        VethEnd::new("dinf-d").in_ns(&d).addr("10.203.0.2/24"),
    )
    .expect("infrastructure link");
    let _p2p_link = VethPair::new(
        VethEnd::new("p2p-dc0").in_ns(&c).addr("fe80::c/64"),
        VethEnd::new("p2p-dd0").in_ns(&d).addr("fe80::d/64"),
    )
    .expect("peer-to-peer link");
    let infra_c = c.index_of("dinf-c").expect("index");
    let p2p_c = c.index_of("p2p-dc0").expect("index");
    let p2p_d = d.index_of("p2p-dd0").expect("index");

    let (ready_tx, ready) = mpsc::channel();
    let (stop, stop_rx) = mpsc::channel();
    let host_d = d.spawn(move || dual_host_d(p2p_d, ready_tx, stop_rx));
    let (relay1, relay2) = ready
        .recv_timeout(Duration::from_secs(10))
        .expect("host D ready");
    // Host C reaches the peer-to-peer relay through its own end of the link.
    let relay2 = match relay2 {
        SocketAddr::V6(v6) => link_local(&v6.ip().to_string(), v6.port(), p2p_c),
        other => other,
    };
    let before = (
        c.counters("dinf-c").expect("counters"),
        c.counters("p2p-dc0").expect("counters"),
    );
    let (sent, tx_driver, tx_stats) = c
        .spawn(move || dual_host_c(infra_c, p2p_c, relay1, relay2))
        .join()
        .expect("host C thread")
        .expect("in C");
    let after = (
        c.counters("dinf-c").expect("counters"),
        c.counters("p2p-dc0").expect("counters"),
    );
    let _ = stop.send(());
    let got = host_d.join().expect("host D thread").expect("in D");

    let delivered: std::collections::HashSet<u32> = got.frames.iter().map(|f| f.0).collect();
    let delivered_of_sent = sent.iter().filter(|id| delivered.contains(id)).count();
    let shown = got.frames.iter().filter(|f| f.2).count();
    let mut completed: Vec<Instant> = got.frames.iter().map(|f| f.1).collect();
    completed.sort();
    let longest_gap = completed
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    // Adaptive duplicates everything for its first 3.5 s (LEARNING): the same after that.
    let learned = completed.first().map(|&t| t + Duration::from_secs(4));
    let longest_gap_learned = completed
        .windows(2)
        .filter(|w| learned.is_some_and(|l| w[0] >= l))
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let link_bytes = [
        after.0.tx_bytes - before.0.tx_bytes,
        after.1.tx_bytes - before.1.tx_bytes,
    ];
    let [r1, r2] = &got.relays;
    println!(
        "two links, awdl-dual, adaptive: {} frames sent, {delivered_of_sent} delivered \
         ({:.2} %), {shown} shown, longest gap between completed frames {:.1} ms \
         ({:.1} ms after the first 4 s)",
        sent.len(),
        100.0 * delivered_of_sent as f64 / sent.len().max(1) as f64,
        longest_gap.as_secs_f64() * 1e3,
        longest_gap_learned.as_secs_f64() * 1e3
    );
    for (i, p) in tx_driver.paths.iter().enumerate() {
        println!(
            "  path {i}: sender {} datagrams / {} bytes out ({} bytes left its veth), \
             receiver {} datagrams in; relay {} forwarded up, {} down, {} held by the schedule",
            p.datagrams_out,
            p.bytes_out,
            link_bytes[i],
            got.driver.paths[i].datagrams_in,
            got.relays[i].upstream.forwarded,
            got.relays[i].downstream.forwarded,
            got.relays[i].upstream.link.held_by_stall,
        );
    }
    println!(
        "  sender paths: {:?}\n  receiver paths: {:?}\n  stall windows: {}",
        tx_stats.paths,
        got.receiver.paths,
        got.windows.len()
    );
    assert!(
        sent.len() >= DUAL_FRAMES as usize * 95 / 100,
        "{} sent",
        sent.len()
    );
    // Both links carried media: the sender's datagrams on each, through each relay, to
    // each of the receiver's sockets.
    for (i, (&on_link, path)) in link_bytes.iter().zip(&tx_driver.paths).enumerate() {
        // Adaptive sends on the peer-to-peer path only around its windows (about 4 % of
        // the time): tens of frames' worth in 6 s, where the other path carries hundreds.
        assert!(
            path.bytes_out >= 10 * DUAL_FRAME_BYTES as u64,
            "path {i} carried under 10 frames' worth: {tx_driver:?}"
        );
        assert!(
            tx_stats.paths[i].media_bytes_sent >= 5 * DUAL_FRAME_BYTES as u64,
            "path {i} carried under 5 frames of media: {:?}",
            tx_stats.paths[i]
        );
        assert!(
            got.relays[i].upstream.forwarded >= 200,
            "relay {i}: {:?}",
            got.relays[i].upstream
        );
        assert!(
            on_link >= path.bytes_out,
            "path {i}'s datagrams left its own veth: {on_link} < {}",
            path.bytes_out
        );
        assert!(got.driver.paths[i].datagrams_in > 0, "{:?}", got.driver);
        assert!(got.path_peers[i].is_some(), "{:?}", got.path_peers);
    }
    // The schedule was applied: the infrastructure link held what came in its stalls, the
    // peer-to-peer link what came outside them.
    assert!(r1.upstream.link.held_by_stall > 0 && r2.upstream.link.held_by_stall > 0);
    assert!(got.windows.len() >= 5, "{} windows", got.windows.len());
    assert!(
        delivered_of_sent * 100 >= sent.len() * 99,
        "{delivered_of_sent} of {} frames delivered",
        sent.len()
    );
    assert_eq!(tx_driver.paths_lost + got.driver.paths_lost, 0);
}

/// Host F for [`losing_either_link_leaves_the_session_on_the_other`]: a listener over two
/// paths on one dual-stack wildcard socket, split by interface (the `p2p-*` veth is
/// peer-to-peer by its name). Runs until `stop`; returns the frame ids it delivered, its
/// driver's counters and its path peers.
fn split_host_f(
    ready: mpsc::Sender<u16>,
    stop: mpsc::Receiver<()>,
) -> (Vec<u32>, DriverStats, [Option<SocketAddr>; 2], bool) {
    let now = Instant::now();
    let mut rx = spawn_driver(
        Receiver::new(ReceiverConfig::new(SESSION), now),
        DriverConfig {
            split_by_interface: Some(KindOverrides::new()),
            ..DriverConfig::with_paths(
                vec![PathConfig::Udp {
                    local: "[::]:0".parse().expect("addr"),
                    socket: SocketConfig {
                        dual_stack: true,
                        ..SocketConfig::default()
                    },
                }],
                None,
            )
        },
    )
    .expect("split listener");
    let mut events = rx.take_events();
    let frames = std::thread::spawn(move || {
        let mut ids = Vec::new();
        while let Some(ReceiverEvent::Frame(f)) = events.blocking_recv() {
            ids.push(f.frame_id);
        }
        ids
    });
    let _ = ready.send(rx.local_addr().port());
    let _ = stop.recv();
    let (stats, peers, finished) = (rx.stats(), rx.path_peers(), rx.is_finished());
    let _ = rx.shutdown();
    (frames.join().expect("events"), stats, peers, finished)
}

/// Host E: streams `frames` frames (policy `duplicate`) from a socket bound to each link;
/// calls `cut` before frame `cut_at`. Returns the frames taken, the driver's counters, its
/// path peers and whether it had ended.
fn stream_two_links(
    infra: (SocketAddr, u32),
    p2p: (SocketAddr, u32),
    frames: u32,
    cut_at: u32,
    cut: impl FnOnce(),
) -> (Vec<u32>, DriverStats, [Option<SocketAddr>; 2], bool) {
    let now = Instant::now();
    let mut tx = spawn_driver(
        Sender::new(
            SenderConfig {
                path_policy: tandem_proto::PathPolicy::Duplicate,
                ..SenderConfig::new(SESSION)
            },
            now,
        ),
        DriverConfig {
            second_path: Some(SecondPath {
                path: bound_udp(link_local("fe80::e", 0, p2p.1), p2p.1),
                peer: Some(p2p.0),
            }),
            ..DriverConfig::with_paths(
                vec![bound_udp("10.204.0.1:0".parse().expect("addr"), infra.1)],
                Some(infra.0),
            )
        },
    )
    .expect("sender on two links");
    let mut cut = Some(cut);
    let mut sent = Vec::new();
    let start = Instant::now();
    for n in 0..frames {
        let due = start + Duration::from_micros(16_667) * n;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if n == cut_at
            && let Some(cut) = cut.take()
        {
            cut();
        }
        while tx.try_next_event().is_some() {}
        let data = Bytes::from(vec![n as u8; FRAME_BYTES]);
        if let Ok(Ok(id)) = tx.call(move |s: &mut Sender, now| {
            s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
        }) {
            sent.push(id);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let (stats, peers, finished) = (tx.stats(), tx.path_peers(), tx.is_finished());
    let _ = tx.shutdown();
    (sent, stats, peers, finished)
}

#[test]
fn losing_either_link_leaves_the_session_on_the_other() {
    if let Some(why) = netns::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let tag = std::process::id() % 100_000;
    for (v, lost) in [(0usize, 1usize), (1, 0)] {
        let e = Netns::new(&format!("tnd-e{v}-{tag}")).expect("namespace E");
        let f = Netns::new(&format!("tnd-f{v}-{tag}")).expect("namespace F");
        let (infra_e, infra_f) = (format!("einf{v}-e"), format!("einf{v}-f"));
        let (p2p_e, p2p_f) = (format!("p2p-e{v}e"), format!("p2p-e{v}f"));
        let infra_link = VethPair::new(
            VethEnd::new(&infra_e).in_ns(&e).addr("10.204.0.1/24"),
            VethEnd::new(&infra_f).in_ns(&f).addr("10.204.0.2/24"),
        )
        .expect("infrastructure link");
        let p2p_link = VethPair::new(
            VethEnd::new(&p2p_e).in_ns(&e).addr("fe80::e/64"),
            VethEnd::new(&p2p_f).in_ns(&f).addr("fe80::f/64"),
        )
        .expect("peer-to-peer link");
        // One link-local address per end, as on AWDL: the kernel's own (from the MAC) would
        // be the wildcard listener's source address for its replies, which a plain sender
        // aimed at `fe80::f` does not take for its peer's.
        for (ns, name, addr) in [(&e, &p2p_e, "fe80::e/64"), (&f, &p2p_f, "fe80::f/64")] {
            run_in(
                ns,
                &["ip", "-6", "addr", "flush", "dev", name, "scope", "link"],
            )
            .expect("flush");
            run_in(ns, &["ip", "addr", "add", addr, "dev", name, "nodad"]).expect("address");
        }
        let infra_index = e.index_of(&infra_e).expect("index");
        let p2p_index = e.index_of(&p2p_e).expect("index");

        let (ready_tx, ready) = mpsc::channel();
        let (stop, stop_rx) = mpsc::channel();
        let host_f = f.spawn(move || split_host_f(ready_tx, stop_rx));
        let port = ready
            .recv_timeout(Duration::from_secs(10))
            .expect("host F ready");
        let infra_peer: SocketAddr = format!("10.204.0.2:{port}").parse().expect("addr");
        let p2p_peer = link_local("fe80::f", port, p2p_index);
        let (lost_link, kept_name) = if lost == 1 {
            (p2p_link, infra_e.clone())
        } else {
            (infra_link, p2p_e.clone())
        };
        let cut_at = 60;
        let (sent, tx, tx_peers, tx_ended) = e
            .spawn(move || {
                stream_two_links(
                    (infra_peer, infra_index),
                    (p2p_peer, p2p_index),
                    180,
                    cut_at,
                    // The link goes, both ends at once (as an AWDL interface does).
                    move || drop(lost_link),
                )
            })
            .join()
            .expect("host E thread")
            .expect("in E");
        let _ = stop.send(());
        let (got, rx, rx_peers, rx_ended) = host_f.join().expect("host F thread").expect("in F");
        let got: std::collections::HashSet<u32> = got.into_iter().collect();
        let delivered = sent.iter().filter(|id| got.contains(id)).count();
        println!(
            "path {lost} deleted at frame {cut_at}, the session went on over {kept_name}: \
             {delivered} of {} frames delivered; sender {:?} peers {tx_peers:?}; \
             split listener {:?} peers {rx_peers:?}",
            sent.len(),
            tx.paths,
            rx.paths
        );
        assert!(!tx_ended && !rx_ended, "both sessions went on");
        assert_eq!(tx.paths_lost, 1, "{tx:?}");
        assert_eq!(tx_peers[lost], None);
        assert!(tx_peers[1 - lost].is_some());
        // Each side heard the other on both paths; the split listener on one socket.
        assert!(
            tx.paths[0].datagrams_in > 0 && tx.paths[1].datagrams_in > 0,
            "{tx:?}"
        );
        assert_eq!(tx.strays, 0, "{tx:?}");
        assert!(
            rx.paths[0].datagrams_in > 0 && rx.paths[1].datagrams_in > 0,
            "{rx:?}"
        );
        if lost == 1 {
            // Its path-1 peer's interface (link-local scope) went: that path is lost too.
            assert_eq!(rx.paths_lost, 1, "{rx:?}");
            assert_eq!(rx_peers[1], None);
        }
        assert_eq!(sent.len(), 180);
        assert!(
            delivered * 100 >= sent.len() * 99,
            "{delivered} of {} frames delivered",
            sent.len()
        );
    }
}
