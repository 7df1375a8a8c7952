//! Listening sockets on this host: a dual-stack `[::]` socket from `open_udp` hears IPv4 and
//! IPv6 peers; this platform's listen plan opens and hears both loopbacks; a wildcard and a
//! bound socket share one port, and a datagram to the bound socket's address goes to it.

use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use tandem_net::listen::{ListenSocket, canonical_peer, to_socket_family};
use tandem_net::{
    KindOverrides, PathPreference, Platform, SocketConfig, interfaces, listen_plan, open_listen,
    open_udp,
};

/// Whether this host can use IPv6 loopback; tests that need it skip with a reason if not.
fn ipv6_loopback() -> bool {
    match UdpSocket::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            eprintln!("skipping the IPv6 part: [::1] cannot be bound here ({e})");
            false
        }
    }
}

/// The next datagram on `socket` (non-blocking), within a second.
fn receive(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut buf = [0u8; 64];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => return (buf[..n].to_vec(), from),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("nothing received: {e}"),
        }
    }
}

/// Sends `payload` from a fresh socket bound to `from_ip` to `port` at `to_ip`; returns the
/// sender's address.
fn send(from_ip: &str, to_ip: &str, port: u16, payload: &[u8]) -> SocketAddr {
    let s = UdpSocket::bind(format!("{from_ip}:0")).expect("sender");
    let to: SocketAddr = format!("{to_ip}:{port}").parse().expect("address");
    s.send_to(payload, to).expect("sent");
    s.local_addr().expect("sender address")
}

#[test]
fn a_dual_stack_wildcard_hears_ipv4_and_ipv6() {
    if !ipv6_loopback() {
        return;
    }
    let config = SocketConfig {
        dual_stack: true,
        ..SocketConfig::default()
    };
    let opened = open_udp("[::]:0".parse().expect("v6"), &config).expect("dual-stack socket");
    let s = socket2::SockRef::from(&opened.socket);
    assert!(!s.only_v6().expect("IPV6_V6ONLY"), "dual stack");
    #[cfg(target_os = "linux")]
    {
        // Both families carry AF41.
        assert_eq!(s.tclass_v6().expect("IPV6_TCLASS"), 0x88);
        assert_eq!(s.tos_v4().expect("IP_TOS"), 0x88);
    }
    let port = opened.local.port();
    let from4 = send("127.0.0.1", "127.0.0.1", port, b"four");
    let (data, from) = receive(&opened.socket);
    assert_eq!(data, b"four");
    assert_eq!(from, to_socket_family(from4, opened.local), "IPv4-mapped");
    assert_eq!(canonical_peer(from), from4);
    let from6 = send("[::1]", "[::1]", port, b"six");
    let (data, from) = receive(&opened.socket);
    assert_eq!((data.as_slice(), from), (&b"six"[..], from6));
    // And replies reach both, the IPv4 one through its mapped address.
    opened
        .socket
        .send_to(b"back", to_socket_family(from4, opened.local))
        .expect("reply to IPv4 from a dual-stack socket");

    // Without dual_stack an IPv6 socket stays IPv6-only, as before.
    let v6 = open_udp("[::]:0".parse().expect("v6"), &SocketConfig::default()).expect("v6");
    assert!(
        socket2::SockRef::from(&v6.socket)
            .only_v6()
            .expect("IPV6_V6ONLY")
    );
}

#[test]
fn this_platforms_listen_plan_opens_and_hears_both_loopbacks() {
    let list = interfaces(&KindOverrides::new()).expect("interfaces");
    let plan = listen_plan(
        Platform::current(),
        &list,
        0,
        PathPreference::Automatic,
        &SocketConfig::default(),
    )
    .expect("automatic always has a plan");
    let opened = open_listen(&plan).expect("the plan opens");
    assert_eq!(opened.len(), plan.len());
    let port = opened[0].local.port();
    assert_ne!(port, 0);
    assert!(opened.iter().all(|o| o.local.port() == port), "one port");
    send("127.0.0.1", "127.0.0.1", port, b"four");
    assert_eq!(receive(&opened[0].socket).0, b"four");
    if plan[0].local.is_ipv6() && ipv6_loopback() {
        send("[::1]", "[::1]", port, b"six");
        assert_eq!(receive(&opened[0].socket).0, b"six");
    }
}

#[test]
fn a_bound_socket_shares_the_wildcards_port_and_gets_its_own_traffic() {
    if !ipv6_loopback() {
        return;
    }
    // The shape of the iOS plan, with loopback standing in for AWDL: a dual-stack wildcard,
    // then a socket bound to one interface at one of its addresses, on the same port.
    let lo = interfaces(&KindOverrides::new())
        .expect("interfaces")
        .into_iter()
        .find(|i| {
            i.addrs
                .iter()
                .any(|a| a.ip == std::net::Ipv6Addr::LOCALHOST)
        })
        .expect("the loopback interface");
    let plan = vec![
        ListenSocket {
            local: "[::]:0".parse().expect("v6"),
            socket: SocketConfig {
                dual_stack: true,
                reuse_address: true,
                ..SocketConfig::default()
            },
        },
        ListenSocket {
            local: "[::1]:0".parse().expect("v6"),
            socket: SocketConfig {
                interface: NonZeroU32::new(lo.index),
                reuse_address: true,
                ..SocketConfig::default()
            },
        },
    ];
    let opened = open_listen(&plan).expect("both bind one port");
    let port = opened[0].local.port();
    assert_eq!(opened[1].local.port(), port);
    send("[::1]", "[::1]", port, b"bound");
    assert_eq!(
        receive(&opened[1].socket).0,
        b"bound",
        "the exact address wins"
    );
    send("127.0.0.1", "127.0.0.1", port, b"wild");
    assert_eq!(receive(&opened[0].socket).0, b"wild");
    // Without SO_REUSEADDR the second bind is refused.
    let mut strict = plan.clone();
    for s in &mut strict {
        s.socket.reuse_address = false;
    }
    assert!(open_listen(&strict).is_err(), "a wildcard holds the port");
}
