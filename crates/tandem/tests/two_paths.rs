//! Sessions over two paths on loopback: a receiver listening on two sockets
//! (`NetConfig::second_local`), a sender reaching both (`Remote::Addresses`), the test
//! pattern through libaom and dav1d, under `duplicate` (sealed) and `adaptive` (in the
//! clear, then switched live to `duplicate`). What each path carried comes from
//! `Stats::paths` on both ends.
//!
//! Loopback never stalls, so this proves the plumbing (both sockets open, both carry what
//! the policy sends them, copies are dropped, frames are shown), not the scheduling, which
//! `tandem-proto` and `tandem-sim` test against a radio model.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver as Rx, unbounded};
use tandem::sink::FnSink;
use tandem::{
    DisplayFrame, PathPolicy, PathState, Receiver, ReceiverConfig, Remote, Security, Sender,
    SenderConfig, Stats, TestPatternSource,
};

const FPS: u32 = 30;

fn keys() -> &'static (Security, Security) {
    static KEYS: std::sync::OnceLock<(Security, Security)> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| Security::paired_in_process("sender", "receiver").expect("keys"))
}

/// Two paths' ends: a receiver on two loopback sockets, and the addresses to reach both.
fn two_socket_receiver(sealed: bool) -> (Receiver, Rx<DisplayFrame>, SocketAddr, SocketAddr) {
    let mut config = ReceiverConfig::default();
    config.net.bind_ip = Some([127, 0, 0, 1].into());
    config.net.second_local = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    if sealed {
        config.net.security = Some(keys().1.clone());
    }
    let (tx, frames) = unbounded();
    let rx = Receiver::start(
        config,
        Remote::Listen,
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("receiver starts");
    let first = rx.local_addr();
    let second = rx.second_local_addr().expect("a second socket");
    assert_ne!(first, second);
    (rx, frames, first, second)
}

fn sender(policy: PathPolicy, sealed: bool, first: SocketAddr, second: SocketAddr) -> Sender {
    let mut config = SenderConfig::default()
        .size(640, 360)
        .fps(FPS)
        .path_policy(policy);
    if sealed {
        config.net.security = Some(keys().0.clone());
    }
    let source = TestPatternSource::new(640, 360, FPS).expect("pattern");
    let tx = Sender::start(
        config,
        Remote::Addresses { first, second },
        Some(Box::new(source)),
    )
    .expect("sender starts");
    assert!(
        tx.second_local_addr().is_some(),
        "the sender's second socket"
    );
    tx
}

/// Frames shown within `for_`.
fn count(frames: &Rx<DisplayFrame>, for_: Duration) -> usize {
    let end = Instant::now() + for_;
    let mut n = 0;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match frames.recv_timeout(left) {
            Ok(_) => n += 1,
            Err(_) => break,
        }
    }
    n
}

/// The newest snapshot waiting, or the next one within `within`.
fn newest(stats: &Rx<Stats>, within: Duration) -> Stats {
    let mut last = None;
    while let Ok(s) = stats.try_recv() {
        last = Some(s);
    }
    last.or_else(|| stats.recv_timeout(within).ok())
        .expect("stats arrive every second")
}

fn describe(s: &Stats) -> String {
    s.paths
        .iter()
        .map(|p| {
            format!(
                "path {} {}: {} datagrams / {} B out, {} datagrams / {} B in, {} copies, \
                 {:.0}/{:.0} kbit/s out/in, rtt {:?} ms",
                p.index,
                p.state.name(),
                p.datagrams_sent,
                p.bytes_sent,
                p.datagrams_received,
                p.bytes_received,
                p.duplicates_received,
                p.sent_kbps,
                p.received_kbps,
                p.rtt_ms.map(|r| (r * 100.0).round() / 100.0),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn duplicate_sends_every_datagram_on_both_paths_and_the_copies_are_dropped() {
    let (rx, frames, first, second) = two_socket_receiver(true);
    let tx = sender(PathPolicy::Duplicate, true, first, second);
    let shown = count(&frames, Duration::from_secs(3));
    let got = newest(&rx.stats(), Duration::from_millis(1500));
    let sent = newest(&tx.stats(), Duration::from_millis(1500));
    println!("duplicate: {shown} frames shown in 3 s");
    println!("  sender:   {}", describe(&sent));
    println!("  receiver: {}", describe(&got));
    println!("  line: {sent}");
    println!("  line: {got}");
    assert!(shown >= 60, "only {shown} frames shown in 3 s at {FPS} fps");
    assert_eq!((got.error.as_deref(), sent.error.as_deref()), (None, None));
    assert_eq!(sent.path_policy.as_deref(), Some("duplicate"));
    assert_eq!(got.path_policy, None, "the receiver does not schedule");
    let ([s0, s1], [r0, r1]) = (&sent.paths[..], &got.paths[..]) else {
        panic!("two paths each: {sent:?} {got:?}");
    };
    assert_eq!((s0.index, s1.index), (0, 1));
    assert_eq!(
        s0.peer.as_deref(),
        Some(first.to_string().as_str()),
        "path 0 goes to the first address"
    );
    assert_eq!(s1.peer.as_deref(), Some(second.to_string().as_str()));
    // Every datagram on both: the same count each way (give or take the probes and
    // what was in flight as the counters were read).
    assert!(
        s0.datagrams_sent > 500 && s1.datagrams_sent > 500,
        "{sent:?}"
    );
    let ratio = s1.bytes_sent as f64 / s0.bytes_sent as f64;
    assert!(
        (0.9..1.1).contains(&ratio),
        "path 1 carried {ratio:.2}× path 0"
    );
    // Both arrive. Sealed, the later copy of each datagram is dropped by the security
    // layer's replay window before the protocol sees it (it is then neither a path's
    // datagram nor a copy here, but a `replayed` drop); in the clear the protocol counts
    // the copies itself (the adaptive test).
    assert!(
        r0.datagrams_received > 200 && r1.datagrams_received > 200,
        "{got:?}"
    );
    println!(
        "  receiver: copies counted {}, dropped by the sealed replay window {}",
        r0.duplicates_received + r1.duplicates_received,
        got.dropped_hostile
    );
    // Both paths answer the sender's probes, and the receiver's feedback comes back.
    assert!(s0.rtt_ms.is_some() && s1.rtt_ms.is_some(), "{sent:?}");
    assert!(
        s0.datagrams_received > 0 && s1.datagrams_received > 0,
        "{sent:?}"
    );
    assert!(
        s0.state != PathState::Closed && s1.state != PathState::Closed,
        "{sent:?}"
    );
    assert!(r0.state != PathState::Closed && r1.state != PathState::Closed);
    // The line names both.
    let line = sent.to_string();
    assert!(
        line.contains("paths (duplicate) 0 ") && line.contains(" | 1 "),
        "{line}"
    );
}

#[test]
fn adaptive_sends_each_datagram_once_and_switches_to_duplicate_live() {
    // In the clear: copies are dropped by the protocol's own window, not the sealed one.
    let (rx, frames, first, second) = two_socket_receiver(false);
    let tx = sender(PathPolicy::Adaptive, false, first, second);
    let shown = count(&frames, Duration::from_secs(3));
    let _ = tx.stats().try_iter().count();
    let one = newest(&tx.stats(), Duration::from_millis(1500));
    let got = newest(&rx.stats(), Duration::from_millis(1500));
    println!("adaptive: {shown} frames shown in 3 s");
    println!("  sender:   {}", describe(&one));
    println!("  receiver: {}", describe(&got));
    println!("  line: {one}");
    assert!(shown >= 60, "only {shown} frames shown in 3 s at {FPS} fps");
    assert_eq!(one.path_policy.as_deref(), Some("adaptive"));
    let (p0, p1) = (&one.paths[0], &one.paths[1]);
    // Two live paths that never stall: each datagram on one of them (whichever answers
    // faster), so both together carry about the video once, not twice (headers, parity
    // and the 5 ms probes on each add a little).
    let carried = p0.sent_kbps + p1.sent_kbps;
    assert!(
        carried > 0.9 * one.bitrate_kbps && carried < 1.5 * one.bitrate_kbps,
        "adaptive sent {carried:.0} kbit/s for {:.0} of video: {one:?}",
        one.bitrate_kbps
    );
    // Both are probed, answer, and bring the receiver something.
    assert!(p0.rtt_ms.is_some() && p1.rtt_ms.is_some(), "{one:?}");
    assert!(
        p0.datagrams_sent > 200 && p1.datagrams_sent > 200,
        "{one:?}"
    );
    assert!(
        got.paths[0].datagrams_received > 200 && got.paths[1].datagrams_received > 200,
        "{got:?}"
    );
    // Live: duplicate from the next datagram on.
    tx.set_path_policy(PathPolicy::Duplicate)
        .expect("policy changes");
    let after = count(&frames, Duration::from_millis(2200));
    let _ = tx.stats().try_iter().count();
    let _ = rx.stats().try_iter().count();
    let dup = newest(&tx.stats(), Duration::from_millis(1500));
    let got = newest(&rx.stats(), Duration::from_millis(1500));
    println!("switched to duplicate: {after} frames shown in 2.2 s");
    println!("  sender:   {}", describe(&dup));
    println!("  receiver: {}", describe(&got));
    println!("  line: {got}");
    assert!(after >= 40, "only {after} frames shown in 2.2 s");
    assert_eq!(dup.path_policy.as_deref(), Some("duplicate"));
    let (p0, p1) = (&dup.paths[0], &dup.paths[1]);
    let ratio = p1.sent_kbps / p0.sent_kbps.max(1.0);
    assert!(
        (0.8..1.25).contains(&ratio),
        "duplicate sends both alike: {ratio:.2} ({dup:?})"
    );
    assert!(
        p0.sent_kbps + p1.sent_kbps > 1.8 * dup.bitrate_kbps,
        "{dup:?}"
    );
    let (r0, r1) = (&got.paths[0], &got.paths[1]);
    // About 75 media datagrams a second at this bitrate (most datagrams on either path
    // are its 5 ms probes, which are not copies): each has a copy to drop.
    assert!(
        r0.duplicates_received + r1.duplicates_received > 150,
        "the later copy of each datagram is counted and dropped: {got:?}"
    );
    assert!(
        r0.received_kbps > 300.0 && r1.received_kbps > 300.0,
        "{got:?}"
    );
    assert_eq!((dup.error.as_deref(), got.error.as_deref()), (None, None));
}

#[test]
fn a_single_path_session_reports_no_paths() {
    let mut config = ReceiverConfig::default();
    config.net.bind_ip = Some([127, 0, 0, 1].into());
    let rx = Receiver::start(config, Remote::Listen, Box::new(FnSink(|_| {}))).expect("rx");
    assert_eq!(rx.second_local_addr(), None);
    let source = TestPatternSource::new(640, 360, FPS).expect("pattern");
    let tx = Sender::start(
        SenderConfig::default().size(640, 360).fps(FPS),
        Remote::Address(rx.local_addr()),
        Some(Box::new(source)),
    )
    .expect("sender");
    let sent = newest(&tx.stats(), Duration::from_millis(1500));
    let got = newest(&rx.stats(), Duration::from_millis(1500));
    assert!(
        sent.paths.is_empty() && sent.path_policy.is_none(),
        "{sent:?}"
    );
    assert!(got.paths.is_empty(), "{got:?}");
    assert!(!sent.to_string().contains("paths"), "{sent}");
    // Path `both` with one address is refused, naming why.
    let mut both = SenderConfig::default();
    both.net.path = tandem::PathPreference::Both;
    let e = Sender::start(both, Remote::Address(rx.local_addr()), None).expect_err("one address");
    assert!(e.to_string().contains("path `both` needs two paths"), "{e}");
}
