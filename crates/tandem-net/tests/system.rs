//! The real system: this host's interfaces, and sockets read back from the kernel.

use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;
use std::time::Duration;

use tandem_net::socket::{DSCP_AF41, bound_interface_of, tos_byte, traffic_class_of};
use tandem_net::{
    InterfaceKind, KindOverrides, PathPreference, PeerHint, SocketConfig, choose_path, interfaces,
    open_udp,
};

#[test]
fn loopback_is_listed_with_index_mtu_and_addresses() {
    let all = interfaces(&KindOverrides::new()).expect("getifaddrs");
    let lo = all
        .iter()
        .find(|i| i.kind == InterfaceKind::Loopback)
        .expect("a loopback interface");
    let index = nix::net::if_::if_nametoindex(lo.name.as_str()).expect("if_nametoindex");
    assert_eq!(lo.index, index);
    assert!(lo.up && lo.running, "{lo:?}");
    assert!(lo.mtu.is_some_and(|m| m >= 1500), "{lo:?}");
    assert!(
        lo.addrs
            .iter()
            .any(|a| a.ip == std::net::IpAddr::from([127, 0, 0, 1]) && a.prefix_len == 8),
        "{lo:?}"
    );
    // Overrides win over the system's facts.
    let mut overrides = KindOverrides::new();
    overrides.insert(lo.name.clone(), InterfaceKind::PeerToPeer);
    let all = interfaces(&overrides).expect("getifaddrs");
    let again = all
        .iter()
        .find(|i| i.name == lo.name)
        .expect("still listed");
    assert_eq!(again.kind, InterfaceKind::PeerToPeer);
}

fn roundtrip(server: &UdpSocket, to: SocketAddr, from: SocketAddr) {
    let client = UdpSocket::bind(from).expect("client socket");
    client.send_to(b"tandem", to).expect("send");
    server.set_nonblocking(false).expect("blocking");
    server
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let (n, _) = server.recv_from(&mut buf).expect("receive");
    assert_eq!(&buf[..n], b"tandem");
}

#[test]
fn sockets_carry_af41_and_stay_on_the_chosen_interface_v4() {
    let all = interfaces(&KindOverrides::new()).expect("getifaddrs");
    let peer = PeerHint {
        addr: Some("127.0.0.1".parse().expect("v4")),
        interface: None,
    };
    let path = choose_path(&all, PathPreference::Automatic, peer).expect("loopback path");
    assert_eq!(path.kind, InterfaceKind::Loopback);
    let config = SocketConfig {
        interface: Some(path.index),
        ..SocketConfig::default()
    };
    let opened = open_udp(path.local, &config).expect("socket opens");
    assert_eq!(
        traffic_class_of(&opened.socket).expect("TOS"),
        tos_byte(DSCP_AF41)
    );
    assert_eq!(
        bound_interface_of(&opened.socket).expect("index"),
        Some(path.index)
    );
    assert!(opened.recv_buffer > 0 && opened.send_buffer > 0);
    assert_ne!(opened.local.port(), 0);
    roundtrip(
        &opened.socket,
        opened.local,
        "127.0.0.1:0".parse().expect("addr"),
    );
}

#[test]
fn sockets_carry_af41_v6() {
    let all = interfaces(&KindOverrides::new()).expect("getifaddrs");
    let has_v6_loopback = all.iter().any(|i| {
        i.addrs
            .iter()
            .any(|a| a.ip == std::net::IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]))
    });
    if !has_v6_loopback {
        println!("skipped: no ::1 on this host (IPv6 disabled)");
        return;
    }
    let opened = open_udp("[::1]:0".parse().expect("v6"), &SocketConfig::default()).expect("v6");
    assert_eq!(
        traffic_class_of(&opened.socket).expect("TCLASS"),
        tos_byte(DSCP_AF41)
    );
    roundtrip(
        &opened.socket,
        opened.local,
        "[::1]:0".parse().expect("addr"),
    );
}

#[test]
fn binding_to_a_missing_interface_says_which() {
    let config = SocketConfig {
        interface: NonZeroU32::new(999_999),
        ..SocketConfig::default()
    };
    let err = open_udp("127.0.0.1:0".parse().expect("v4"), &config).expect_err("no such index");
    assert!(
        err.to_string()
            .contains("binding to interface index 999999"),
        "{err}"
    );
}
