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
