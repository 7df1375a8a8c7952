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
