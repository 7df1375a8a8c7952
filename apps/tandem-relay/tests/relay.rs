//! The relay between two real sockets on loopback.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use tandem_relay::{RelayConfig, start};
use tandem_sim::profile::parse_profile_or_spec;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    s
}

#[test]
fn clean_profile_delivers_everything_both_ways_and_never_early() {
    let target = socket();
    let relay = start(RelayConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        target.local_addr().expect("addr"),
        parse_profile_or_spec("clean").expect("profile"),
    ))
    .expect("relay starts");
    let relay_addr = relay.local_addr();
    let count = 300u32;
    let rtts = {
        let client = socket();
        // The target echoes everything back through the relay.
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let mut echoed = 0;
            while let Ok((n, from)) = target.recv_from(&mut buf) {
                target.send_to(&buf[..n], from).expect("echo");
                echoed += 1;
            }
            echoed
        });
        let mut rtts = Vec::new();
        let mut buf = [0u8; 64];
        for i in 0..count {
            let sent = Instant::now();
            client.send_to(&i.to_be_bytes(), relay_addr).expect("send");
            let (n, _) = client.recv_from(&mut buf).expect("echo arrives");
            assert_eq!(&buf[..n], &i.to_be_bytes());
            rtts.push(sent.elapsed());
        }
        (rtts, echo.join().expect("echo thread"))
    };
    let (rtts, echoed) = rtts;
    assert_eq!(echoed, count);
    // 0.5 ms each way: no datagram may come back sooner than 1 ms.
    let fastest = rtts.iter().min().copied().expect("samples");
    assert!(
        fastest >= Duration::from_millis(1),
        "fastest round trip {fastest:?}"
    );
    let c = relay.counters();
    assert_eq!(c.upstream.forwarded, u64::from(count));
    assert_eq!(c.downstream.forwarded, u64::from(count));
    assert_eq!(c.upstream.link.datagrams_in, u64::from(count));
    assert_eq!(c.strays, 0);
    assert_eq!(c.lateness_us.len(), 2 * count as usize);
}

#[test]
fn loss_follows_the_link_model_exactly_and_strays_are_counted() {
    let target = socket();
    let relay = start(RelayConfig {
        seed: 7,
        ..RelayConfig::new(
            "127.0.0.1:0".parse().expect("addr"),
            target.local_addr().expect("addr"),
            parse_profile_or_spec("delay=1ms,loss=20%").expect("spec"),
        )
    })
    .expect("relay starts");
    let relay_addr = relay.local_addr();
    let received = {
        // The target reads while the client sends, as a real receiver does.
        let reader = std::thread::spawn(move || {
            let mut got = 0u64;
            let mut buf = [0u8; 16];
            while target.recv_from(&mut buf).is_ok() {
                got += 1;
            }
            got
        });
        let client = socket();
        let stranger = socket();
        for i in 0..1000u32 {
            client.send_to(&i.to_be_bytes(), relay_addr).expect("send");
            if i % 100 == 0 {
                stranger.send_to(b"x", relay_addr).expect("stray");
            }
            if i % 20 == 0 {
                // About 10 Mbit/s of small datagrams: a stream, not a flood.
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        reader.join().expect("reader")
    };
    let c = relay.counters();
    assert_eq!(c.upstream.link.datagrams_in, 1000);
    assert!(
        c.upstream.link.dropped_random > 100,
        "{:?}",
        c.upstream.link
    );
    assert_eq!(
        received, c.upstream.link.delivered,
        "delivered exactly what the model said"
    );
    assert_eq!(c.upstream.forwarded, received);
    assert_eq!(c.strays, 10);
}

#[test]
fn config_defaults_are_documented_values() {
    let c = RelayConfig::new(
        "127.0.0.1:1".parse().expect("addr"),
        "127.0.0.1:2".parse().expect("addr"),
        parse_profile_or_spec("clean").expect("profile"),
    );
    assert_eq!(c.seed, 1);
    assert_eq!(c.spin_window, tandem_relay::DEFAULT_SPIN_WINDOW);
    assert_eq!(
        tandem_relay::DEFAULT_SPIN_WINDOW,
        std::time::Duration::from_micros(120)
    );
}

#[test]
fn stall_windows_are_the_schedule_the_relay_applied() {
    let target = socket();
    let before = Instant::now();
    let relay = start(RelayConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        target.local_addr().expect("addr"),
        parse_profile_or_spec("stall=40ms/200ms,stall-phase=100ms").expect("spec"),
    ))
    .expect("relay starts");
    let after = Instant::now();
    let relay_addr = relay.local_addr();
    let reader = std::thread::spawn(move || {
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok((n, _)) = target.recv_from(&mut buf) {
            if n == 4 {
                let i = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                arrivals.push((i, Instant::now()));
            }
        }
        arrivals
    });
    let client = socket();
    let mut sent = Vec::new();
    // A datagram every 2 ms for a second: about 20 inside each 40 ms window.
    for i in 0..500u32 {
        sent.push(Instant::now());
        client.send_to(&i.to_be_bytes(), relay_addr).expect("send");
        std::thread::sleep(Duration::from_millis(2));
    }
    let windows = relay.stall_windows();
    let arrivals = reader.join().expect("reader");
    // 40 ms windows every 200 ms from 100 ms after the start: at least 100, 300, …, 900.
    assert!(windows.len() >= 5, "{} windows", windows.len());
    for (k, &(s, e)) in windows.iter().enumerate() {
        let offset = Duration::from_millis(100 + 200 * k as u64);
        assert!(
            s >= before + offset && s <= after + offset,
            "window {k} starts {:?} after the relay",
            s - before
        );
        assert_eq!(e - s, Duration::from_millis(40), "window {k}");
    }
    // Whatever was sent inside a window was held to its end (the relay never sends early),
    // and what was sent well away from every window went through at once.
    let mut held = 0;
    let mut prompt = Vec::new();
    for &(i, at) in &arrivals {
        let t = sent[i as usize];
        if let Some(&(_, e)) = windows.iter().find(|&&(s, e)| t >= s && t < e) {
            assert!(
                at >= e,
                "datagram {i} sent in a window arrived before its end"
            );
            held += 1;
        } else if windows
            .iter()
            .all(|&(s, e)| t + Duration::from_millis(5) < s || t > e + Duration::from_millis(5))
        {
            prompt.push(at - t);
        }
    }
    assert!(held >= 5 * 15, "only {held} datagrams sent inside windows");
    prompt.sort();
    let median = prompt[prompt.len() / 2];
    assert!(
        median < Duration::from_millis(5),
        "median transit outside windows {median:?}"
    );
}

/// Reads `socket` until it is silent for 1.5 s (longer than the gap between two AWDL
/// windows): each 4-byte datagram's number and arrival time.
fn arrivals(socket: UdpSocket) -> std::thread::JoinHandle<Vec<(u32, Instant)>> {
    socket
        .set_read_timeout(Some(Duration::from_millis(1_500)))
        .expect("timeout");
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while let Ok((n, _)) = socket.recv_from(&mut buf) {
            if n == 4 {
                got.push((
                    u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]),
                    Instant::now(),
                ));
            }
        }
        got
    })
}

#[test]
fn awdl_dual_second_link_delivers_only_inside_the_first_links_stall_windows() {
    let [infra, p2p] = tandem_sim::profile::dual_profile("awdl-dual").expect("dual profile");
    let (target1, target2) = (socket(), socket());
    let lo = "127.0.0.1:0".parse().expect("addr");
    let (relay1, relay2) = tandem_relay::spawn_dual(
        RelayConfig {
            seed: 11,
            ..RelayConfig::new(lo, target1.local_addr().expect("addr"), infra)
        },
        RelayConfig {
            seed: 11,
            ..RelayConfig::new(lo, target2.local_addr().expect("addr"), p2p)
        },
    )
    .expect("relays start");
    let (at1, at2) = (arrivals(target1), arrivals(target2));
    let (client1, client2) = (socket(), socket());
    // A datagram every 2 ms through both links for 1.7 s: the windows at 0.5 s and about
    // 1.55 s (awdl-stall's phase and period) lie inside; the next is at about 2.6 s.
    let mut sent = Vec::new();
    let start = Instant::now();
    let mut i = 0u32;
    while start.elapsed() < Duration::from_millis(1_700) {
        sent.push(Instant::now());
        client1
            .send_to(&i.to_be_bytes(), relay1.local_addr())
            .expect("send 1");
        client2
            .send_to(&i.to_be_bytes(), relay2.local_addr())
            .expect("send 2");
        i += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let stopped = Instant::now();
    // What link 2 held after its last window before `stopped` leaves in the next one.
    let (got1, got2) = (at1.join().expect("reader 1"), at2.join().expect("reader 2"));
    let windows = relay1.stall_windows();
    assert_eq!(windows, relay2.stall_windows(), "one radio, one schedule");
    assert!(windows.len() >= 3, "{} windows", windows.len());
    // wifi's delay (2 ms ± 1.5 ms), the relay's own lateness and the burst's drain at link
    // rate: what a datagram sent at a window's last live instant may take to arrive.
    let tail = Duration::from_millis(8);
    let mut per_window = vec![0u32; windows.len()];
    for &(n, at) in &got2 {
        let k = windows.iter().position(|&(s, e)| at >= s && at <= e + tail);
        let Some(k) = k else {
            let since = at.saturating_duration_since(start);
            panic!("link 2 delivered datagram {n} at {since:?}, outside every window {windows:?}");
        };
        per_window[k] += 1;
    }
    println!(
        "windows {:?}; link 2 datagrams per window {per_window:?}; link 1 delivered {}",
        windows
            .iter()
            .map(|&(s, e)| (s - start, e - s))
            .collect::<Vec<_>>(),
        got1.len()
    );
    // Every window while we sent carried link 2's traffic (what waited since the last one,
    // and what was sent inside it), and the next one what was sent after.
    let sending = windows.iter().filter(|&&(s, _)| s < stopped).count();
    assert!(
        per_window[..=sending].iter().all(|&n| n > 0),
        "{per_window:?}"
    );
    let c2 = relay2.counters();
    assert!(c2.upstream.link.held_by_stall > 0, "{:?}", c2.upstream.link);
    // (A window's burst may overflow the reading socket's buffer: fewer may be read.)
    assert!(c2.upstream.forwarded as usize >= got2.len());
    // Link 1 is the other side: nothing arrives while the radio is away (but what was in
    // flight as the window began), and what was sent inside a window waited for its end.
    for &(s, e) in &windows {
        let inside = got1
            .iter()
            .filter(|&&(_, at)| at >= s + tail && at < e)
            .count();
        assert_eq!(
            inside,
            0,
            "link 1 delivered inside the window {:?}",
            s - start
        );
    }
    for &(n, at) in &got1 {
        let t = sent[n as usize];
        if let Some(&(_, e)) = windows.iter().find(|&&(s, e)| t >= s && t < e) {
            assert!(
                at >= e,
                "link 1: datagram {n} sent in a window arrived before its end"
            );
        }
    }
    let c1 = relay1.counters();
    assert!(c1.upstream.link.held_by_stall > 0, "{:?}", c1.upstream.link);
    // Link 2 held nearly everything (it is live 30–50 ms a second); link 1 little.
    assert!(
        c2.upstream.link.held_by_stall > 10 * c1.upstream.link.held_by_stall,
        "held: link 1 {}, link 2 {}",
        c1.upstream.link.held_by_stall,
        c2.upstream.link.held_by_stall
    );
}

#[test]
fn the_cli_names_the_missing_second_path_argument() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem-relay"))
            .args(args)
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let base = ["--listen", "127.0.0.1:0", "--to", "127.0.0.1:9"];
    let (ok, err, _) = run(&[&base[..], &["--profile", "awdl-dual"]].concat());
    assert!(!ok && err.contains("--listen2"), "{err}");
    let (ok, err, _) = run(&[
        &base[..],
        &["--profile", "awdl-dual", "--listen2", "127.0.0.1:0"],
    ]
    .concat());
    assert!(!ok && err.contains("--to2"), "{err}");
    let (ok, err, _) = run(&[
        &base[..],
        &[
            "--profile",
            "wifi",
            "--listen2",
            "127.0.0.1:0",
            "--to2",
            "127.0.0.1:9",
        ],
    ]
    .concat());
    assert!(
        !ok && err.contains("dual profile") && err.contains("awdl-dual"),
        "{err}"
    );
    let (ok, err, out) = run(&[
        &base[..],
        &[
            "--profile",
            "awdl-dual",
            "--listen2",
            "127.0.0.1:0",
            "--to2",
            "127.0.0.1:9",
            "--seconds",
            "1",
        ],
    ]
    .concat());
    assert!(ok, "{err}");
    assert!(
        err.contains("link 2") && out.contains("link 2"),
        "{err}\n{out}"
    );
}
