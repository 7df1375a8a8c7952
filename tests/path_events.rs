//! Path changes on real interfaces, in a network namespace: the monitor reports an
//! interface appearing, going down and vanishing; a session bound to an interface that is
//! deleted, or down past the grace period, ends with an error naming it instead of sending
//! into nothing.

#![cfg(target_os = "linux")]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_net::{
    DriverConfig, DriverError, DriverStopped, PathConfig, PathEvent, PathMonitor,
    PathMonitorConfig, SocketConfig, spawn_driver,
};
use tandem_proto::{OutgoingFrame, Sender, SenderConfig};
use tandem_tests::netns::{self, Netns, VethEnd, VethPair, run, run_in};
use tandem_tests::runtime;

async fn next_path_event(monitor: &mut PathMonitor) -> PathEvent {
    tokio::time::timeout(Duration::from_secs(5), monitor.events.recv())
        .await
        .expect("a path event within 5 s")
        .expect("monitor running")
}

/// A sender bound to interface `index` and address `local`, streaming small frames until
/// its driver ends; returns the error it ended with and when.
async fn stream_until_the_path_fails(
    index: u32,
    local: &str,
    grace: Duration,
) -> (DriverError, Instant) {
    let tx = spawn_driver(
        Sender::new(SenderConfig::new(7), Instant::now()),
        DriverConfig {
            path_down_grace: grace,
            ..DriverConfig::with_paths(
                vec![PathConfig::Udp {
                    local: local.parse().expect("local"),
                    socket: SocketConfig {
                        interface: NonZeroU32::new(index),
                        ..SocketConfig::default()
                    },
                }],
                Some("10.202.0.2:9".parse().expect("peer")),
            )
        },
    )
    .expect("bound to the interface");
    let mut n = 0u32;
    while !tx.is_finished() {
        let data = Bytes::from(vec![1u8; 3000]);
        let _ = tx.call(move |s: &mut Sender, now| {
            s.send_frame(now, OutgoingFrame::av1(data, now, n == 0))
        });
        n += 1;
        tokio::time::sleep(Duration::from_millis(16)).await;
    }
    let ended = Instant::now();
    assert_eq!(
        tx.call(|s: &mut Sender, _| s.stats().frames_sent).err(),
        Some(DriverStopped),
        "calls after the end are refused"
    );
    let e = tx.shutdown().expect_err("the path failed");
    (e, ended)
}

#[test]
fn interfaces_coming_and_going_are_reported_and_end_bound_sessions() {
    if let Some(why) = netns::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let tag = std::process::id() % 100_000;
    // Shared with the thread inside A, which reconfigures the links.
    let a = Arc::new(Netns::new(&format!("tnd-pa-{tag}")).expect("namespace A"));
    let b = Arc::new(Netns::new(&format!("tnd-pb-{tag}")).expect("namespace B"));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    a.spawn(move || {
        let (a, b) = (a2, b2);
        runtime().block_on(async move {
            let config = PathMonitorConfig {
                interval: Duration::from_millis(100),
                ..PathMonitorConfig::default()
            };
            let (baseline, mut monitor) = PathMonitor::spawn(config).expect("monitor");
            assert!(baseline.iter().all(|i| i.name != "wlan-t"), "{baseline:?}");

            // Appeared (and, as it comes up with an address, possibly changed).
            let _link = VethPair::new(
                VethEnd::new("wlan-t").in_ns(&a).addr("10.202.0.1/24"),
                VethEnd::new("wlan-tb").in_ns(&b).addr("10.202.0.2/24"),
            )
            .expect("veth");
            let index = a.index_of("wlan-t").expect("index");
            let e = next_path_event(&mut monitor).await;
            assert!(
                matches!(&e, PathEvent::Appeared(i) if i.name == "wlan-t" && i.index == index),
                "{e:?}"
            );

            // Down: a session bound there ends once the grace period has passed.
            let session = tokio::spawn(stream_until_the_path_fails(
                index,
                "10.202.0.1:0",
                Duration::from_millis(600),
            ));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let down_at = Instant::now();
            run_in(&a, &["ip", "link", "set", "wlan-t", "down"]).expect("down");
            loop {
                match next_path_event(&mut monitor).await {
                    PathEvent::Changed { old, new }
                        if new.name == "wlan-t" && old.up && !new.up =>
                    {
                        break;
                    }
                    PathEvent::Changed { .. } => continue,
                    other => panic!("expected wlan-t going down, got {other:?}"),
                }
            }
            let (e, ended) = session.await.expect("session task");
            let msg = e.to_string();
            assert!(matches!(e, DriverError::PathLost(_)), "{e:?}");
            assert!(
                msg.contains("wlan-t") && msg.contains("has been down"),
                "{msg}"
            );
            let after = ended - down_at;
            println!("down: session ended {after:?} after the link went down: {msg}");
            assert!(
                after >= Duration::from_millis(600),
                "not before the grace period"
            );
            assert!(after < Duration::from_secs(3), "soon after it");

            // Vanished: a session on a deleted interface ends at once.
            run_in(&a, &["ip", "link", "set", "wlan-t", "up"]).expect("up");
            tokio::time::sleep(Duration::from_millis(200)).await;
            while monitor.events.try_recv().is_ok() {}
            let session = tokio::spawn(stream_until_the_path_fails(
                index,
                "10.202.0.1:0",
                Duration::from_secs(60),
            ));
            tokio::time::sleep(Duration::from_millis(300)).await;
            let deleted_at = Instant::now();
            run(&["ip", "-n", a.name(), "link", "del", "wlan-t"]).expect("delete");
            let (e, ended) = session.await.expect("session task");
            let msg = e.to_string();
            println!(
                "deleted: session ended {:?} after: {msg}",
                ended - deleted_at
            );
            assert!(
                msg.contains(&format!(
                    "interface wlan-t (index {index}) no longer exists"
                )),
                "{msg}"
            );
            assert!(
                ended - deleted_at < Duration::from_secs(2),
                "well before the 60 s grace"
            );
            loop {
                match next_path_event(&mut monitor).await {
                    PathEvent::Vanished(i) if i.name == "wlan-t" => break,
                    PathEvent::Changed { .. } => continue,
                    other => panic!("expected wlan-t vanishing, got {other:?}"),
                }
            }
        });
    })
    .join()
    .expect("host thread")
    .expect("in A");
}

/// Polls `f` every 50 ms for up to `within`.
fn wait_for<T>(within: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A listener planned as on iOS (a wildcard socket, plus one bound to each peer-to-peer
/// interface at its link-local address) follows its interfaces: a peer-to-peer link that
/// comes up after it started gets a socket on the listener's port, bound there; a peer on
/// that link reaches the session through it; when the link goes, the session that was using
/// it ends with an error naming it.
#[test]
fn a_listener_binds_a_peer_to_peer_link_that_comes_up_after_it_started() {
    use std::net::{SocketAddr, SocketAddrV6, UdpSocket};
    use tandem_net::{
        InterfaceKind, KindOverrides, PathPreference, Platform, Relisten, interfaces, listen_plan,
    };
    use tandem_proto::{Receiver, ReceiverConfig};

    if let Some(why) = netns::unavailable() {
        println!("skipped: {why}");
        return;
    }
    let tag = std::process::id() % 100_000;
    let a = Arc::new(Netns::new(&format!("tnd-ra-{tag}")).expect("namespace A"));
    let b = Arc::new(Netns::new(&format!("tnd-rb-{tag}")).expect("namespace B"));
    let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
    a.spawn(move || {
        let (a, b) = (a2, b2);
        let overrides: KindOverrides = [("p2p-t".to_owned(), InterfaceKind::PeerToPeer)].into();
        let base = SocketConfig::default();
        let list = interfaces(&overrides).expect("interfaces");
        if !list.iter().any(|i| i.addrs.iter().any(|a| a.ip.is_ipv6())) {
            println!("skipped: no IPv6 in a new network namespace here");
            return;
        }
        let plan =
            listen_plan(Platform::Ios, &list, 0, PathPreference::Automatic, &base).expect("plan");
        assert_eq!(plan.len(), 1, "no peer-to-peer interface yet: {plan:?}");
        let paths = plan.into_iter().map(PathConfig::from).collect();
        let mut config = DriverConfig::with_paths(paths, None);
        config.path_check = Some(Duration::from_millis(100));
        config.path_down_grace = Duration::from_millis(300);
        config.relisten = Some(Relisten {
            platform: Platform::Ios,
            overrides,
            base,
        });
        let rx = spawn_driver(
            Receiver::new(ReceiverConfig::new(0x5e55), Instant::now()),
            config,
        )
        .expect("listener");
        let port = rx.local_addr().port();

        // The peer-to-peer link comes up (IPv6 link-local only, as AWDL).
        let _link = VethPair::new(
            VethEnd::new("p2p-t").in_ns(&a),
            VethEnd::new("p2p-tb").in_ns(&b),
        )
        .expect("veth");
        let index = a.index_of("p2p-t").expect("index");
        let started = Instant::now();
        // Within the address's duplicate detection and a path check or two.
        let bound = wait_for(Duration::from_secs(10), || {
            rx.local_addrs().into_iter().find_map(|l| match l {
                SocketAddr::V6(v6) if v6.scope_id() == index => Some(v6),
                _ => None,
            })
        })
        .unwrap_or_else(|| panic!("no socket bound to p2p-t: {:?}", rx.local_addrs()));
        println!(
            "bound {bound} {:?} after the link came up",
            started.elapsed()
        );
        assert_eq!(bound.port(), port, "the listener's one port");
        assert!(bound.ip().is_unicast_link_local(), "{bound}");

        // A peer on the link reaches the session there.
        let b_index = b.index_of("p2p-tb").expect("index");
        b.spawn(move || {
            let s = UdpSocket::bind("[::]:0").expect("peer socket");
            let to = SocketAddrV6::new(*bound.ip(), port, 0, b_index);
            for _ in 0..5 {
                s.send_to(b"hello over p2p", to).expect("sent");
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .join()
        .expect("peer thread")
        .expect("in B");
        let peer = wait_for(Duration::from_secs(2), || rx.peer()).expect("the peer is heard");
        assert!(
            matches!(peer, SocketAddr::V6(v6) if v6.scope_id() == index),
            "the peer is on p2p-t: {peer}"
        );

        // The link goes: the session on it ends, naming it.
        let gone = Instant::now();
        run(&["ip", "-n", a.name(), "link", "del", "p2p-t"]).expect("delete");
        let ended = wait_for(Duration::from_secs(5), || rx.is_finished().then_some(()));
        assert!(ended.is_some(), "the session on the lost link ends");
        let e = rx.shutdown().expect_err("it ended with an error");
        println!("deleted: ended {:?} after: {e}", gone.elapsed());
        assert!(
            matches!(&e, DriverError::PathLost(m) if m.contains("p2p-t")),
            "{e}"
        );
    })
    .join()
    .expect("host thread")
    .expect("in A");
}
