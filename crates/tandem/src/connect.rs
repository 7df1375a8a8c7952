//! How a pipeline reaches the other end: the socket's interface and address for the
//! [`Remote`] and the [`NetConfig`]'s path preference, or the application's own transport.
//!
//! # Two paths
//!
//! A session may span two paths at once (see `tandem_proto::multipath`): path 0 and path 1,
//! each with its own socket or transport, and the sender's [`tandem_proto::PathPolicy`]
//! choosing which datagram goes where. It does when:
//!
//! - the preference is [`PathPreference::Both`] and the peer was discovered: path 0 on the
//!   infrastructure interface (a wire or the router's Wi-Fi) to the peer's address there,
//!   path 1 on the peer-to-peer interface (AWDL) to its link-local address there
//!   ([`tandem_net::path::plan_both`], which fails naming the missing half when the peer
//!   was not seen on both kinds);
//! - the preference is [`PathPreference::Both`] and this end listens: the listener's
//!   sockets (as `Automatic` opens them), with datagrams from a peer-to-peer interface
//!   taken as path 1;
//! - the remote is [`Remote::Addresses`] (two explicit addresses, each reached on the
//!   interface that reaches it), or [`Remote::Transports`] (two app transports);
//! - a listener has [`NetConfig::second_local`]: a second socket there is path 1.
//!
//! [`PathPreference::Both`] with a single address ([`Remote::Address`]) is refused: it names
//! one path.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tandem_net::driver::SecondPath;
use tandem_net::{
    AppTransport, ChosenPath, DriverConfig, PathConfig, PathPreference, Peer, PeerHint, Platform,
    Relisten, SocketConfig, choose_path, interfaces, listen_plan, plan_connection,
};

use crate::config::NetConfig;
use crate::error::EngineError;

/// Where the other end is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// At this address (a receiver listening there, or a sender that advertised it).
    Address(SocketAddr),
    /// At two addresses, one per path (see the module docs): path 0 to `first`, path 1 to
    /// `second`, each from a socket on the interface that reaches it (the path preference
    /// does not apply: the addresses say where the peer is). For two relays in front of one
    /// receiver, or an infrastructure and a peer-to-peer address known without discovery.
    /// The other end listens with two sockets ([`NetConfig::second_local`]) or, with
    /// [`PathPreference::Both`], tells its paths by interface.
    Addresses {
        /// Path 0's peer address.
        first: SocketAddr,
        /// Path 1's peer address.
        second: SocketAddr,
    },
    /// Found by discovery: the path preference picks the interface and address
    /// ([`PathPreference::Both`]: two of each).
    Discovered(Peer),
    /// Not known yet: wait for the other end to reach us (we listen, or advertise).
    Listen,
    /// Over a link the application provides (its own Network.framework connection, a
    /// Wi-Fi Aware link; see [`tandem_net::transport`]). The path preference, port and
    /// interfaces do not apply. `initiator` says which end starts a paired session's
    /// handshake: the end that opened the link (the Wi-Fi Aware subscriber, the side that
    /// connected); the other end answers. Unpaired sessions ignore it.
    Transport {
        /// The link.
        transport: AppTransport,
        /// Whether this end starts the handshake.
        initiator: bool,
    },
    /// Over two links the application provides, one per path: path 0 over `first` (say a
    /// Network.framework connection over the router), path 1 over `second` (a Wi-Fi Aware
    /// link). As [`Remote::Transport`] otherwise; the other end has its two transports in
    /// the same order.
    Transports {
        /// Path 0's link.
        first: AppTransport,
        /// Path 1's link.
        second: AppTransport,
        /// Whether this end starts the handshake.
        initiator: bool,
    },
}

impl Remote {
    /// Whether a session to this remote under `net` spans two paths (see the module docs).
    pub fn two_paths(&self, net: &NetConfig) -> bool {
        match self {
            Remote::Addresses { .. } | Remote::Transports { .. } => true,
            Remote::Discovered(_) => net.path == PathPreference::Both,
            Remote::Listen => net.path == PathPreference::Both || net.second_local.is_some(),
            Remote::Address(_) | Remote::Transport { .. } => false,
        }
    }
}

/// The driver settings for `remote`, and the path chosen (when one was; the first path's,
/// for two).
pub(crate) fn driver_config(
    net: &NetConfig,
    remote: &Remote,
) -> Result<(DriverConfig, Option<ChosenPath>), EngineError> {
    match remote {
        Remote::Transport { transport, .. } => {
            return Ok((DriverConfig::over_transport(transport.clone()), None));
        }
        Remote::Transports { first, second, .. } => {
            let mut config = DriverConfig::over_transport(first.clone());
            config.second_path = Some(SecondPath {
                path: PathConfig::Transport(second.clone()),
                peer: None,
            });
            return Ok((config, None));
        }
        Remote::Address(addr) if net.path == PathPreference::Both => {
            return Err(EngineError::Config(format!(
                "path `both` needs two paths, and the address {addr} names one: give a second \
                 address (Remote::Addresses), a discovered peer, or use another path preference"
            )));
        }
        _ => {}
    }
    let list = interfaces(&net.kind_overrides).map_err(EngineError::io("listing interfaces"))?;
    let base = SocketConfig {
        traffic: net.traffic,
        ..SocketConfig::default()
    };
    let wide_listener = matches!(net.path, PathPreference::Automatic | PathPreference::Both);
    if *remote == Remote::Listen && wide_listener && net.bind_ip.is_none() {
        // Listening on every interface is what "automatic" means for a listener: it is
        // advertised everywhere, AWDL included, so it must hear everywhere (see
        // `tandem_net::listen` for the sockets each platform needs and why). A listener
        // over both paths opens the same sockets and tells the paths by interface.
        let plan = listen_plan(
            Platform::current(),
            &list,
            net.port,
            PathPreference::Automatic,
            &base,
        )?;
        let paths = plan.into_iter().map(PathConfig::from).collect();
        let mut config = DriverConfig::with_paths(paths, None);
        // And stays so as interfaces come, go and renumber (iOS binds AWDL by address).
        config.relisten = Some(Relisten {
            platform: Platform::current(),
            overrides: net.kind_overrides.clone(),
            base: base.clone(),
        });
        listen_second(&mut config, net, &base);
        return Ok((config, None));
    }
    // Path 0 (and, for two, path 1): a path chosen, or none (an address the app chose),
    // and the peer there. The configured port is path 0's; path 1 takes any.
    let udp = |path: Option<&ChosenPath>, fallback: SocketAddr, port: u16| {
        let local = match path {
            Some(p) => with_port(p.local, port),
            None => fallback,
        };
        let socket = SocketConfig {
            interface: path.map(|p| p.index),
            ..base.clone()
        };
        PathConfig::Udp { local, socket }
    };
    let (path, peer, second) = match remote {
        Remote::Transport { .. } | Remote::Transports { .. } => unreachable!("handled above"),
        Remote::Address(addr) => (Some(path_to(&list, net.path, *addr)?), Some(*addr), None),
        Remote::Addresses { first, second } => {
            let to_second = path_to(&list, PathPreference::Automatic, *second)?;
            let second = SecondPath {
                path: udp(Some(&to_second), to_second.local, 0),
                peer: Some(*second),
            };
            (
                Some(path_to(&list, PathPreference::Automatic, *first)?),
                Some(*first),
                Some(second),
            )
        }
        Remote::Discovered(peer) if net.path == PathPreference::Both => {
            let plan = tandem_net::path::plan_both(peer, &list)?;
            let (p2p, p2p_peer) = plan.peer_to_peer;
            let second = SecondPath {
                path: udp(Some(&p2p), p2p.local, 0),
                peer: Some(p2p_peer),
            };
            let (infra, infra_peer) = plan.infrastructure;
            (Some(infra), Some(infra_peer), Some(second))
        }
        Remote::Discovered(peer) => {
            let (path, addr) = plan_connection(peer, &list, net.path)?;
            (Some(path), Some(addr), None)
        }
        // An automatic listener at the address the application chose (above: everywhere).
        Remote::Listen if wide_listener => (None, None, None),
        // A preference for one kind binds to that kind's interface.
        Remote::Listen => (
            Some(choose_path(&list, net.path, PeerHint::default())?),
            None,
            None,
        ),
    };
    let fallback = SocketAddr::new(
        net.bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        net.port,
    );
    let mut config = DriverConfig::with_paths(vec![udp(path.as_ref(), fallback, net.port)], peer);
    config.second_path = second;
    if *remote == Remote::Listen {
        listen_second(&mut config, net, &base);
    }
    Ok((config, path))
}

/// The path that reaches `addr` (a link-local address's scope id names its interface).
fn path_to(
    list: &[tandem_net::Interface],
    preference: PathPreference,
    addr: SocketAddr,
) -> Result<ChosenPath, EngineError> {
    let scope = match addr {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
        _ => None,
    };
    let hint = PeerHint {
        addr: Some(addr.ip()),
        interface: scope,
    };
    Ok(choose_path(list, preference, hint)?)
}

/// A listener's second path: its second socket ([`NetConfig::second_local`]), or, over both
/// kinds of link, what arrives from a peer-to-peer interface.
fn listen_second(config: &mut DriverConfig, net: &NetConfig, base: &SocketConfig) {
    if let Some(local) = net.second_local {
        config.second_path = Some(SecondPath {
            path: PathConfig::Udp {
                local,
                socket: base.clone(),
            },
            peer: None,
        });
    } else if net.path == PathPreference::Both {
        config.split_by_interface = Some(net.kind_overrides.clone());
    }
}

fn with_port(mut addr: SocketAddr, port: u16) -> SocketAddr {
    addr.set_port(port);
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_addresses_bind_loopback_and_listeners_bind_everything() {
        let net = NetConfig {
            port: 0,
            ..NetConfig::default()
        };
        let (c, path) = driver_config(
            &net,
            &Remote::Address("127.0.0.1:5000".parse().expect("addr")),
        )
        .expect("a loopback path");
        assert_eq!(c.peer, Some("127.0.0.1:5000".parse().expect("addr")));
        let [PathConfig::Udp { local, socket }] = &c.paths[..] else {
            panic!("one UDP path: {:?}", c.paths);
        };
        assert_eq!(local.ip(), IpAddr::from([127, 0, 0, 1]));
        assert!(path.is_some() && socket.interface.is_some());
        let (c, path) = driver_config(
            &NetConfig {
                port: 6000,
                ..net.clone()
            },
            &Remote::Listen,
        )
        .expect("listen");
        // This platform's plan (Linux: one dual-stack wildcard, or IPv4's without IPv6).
        let PathConfig::Udp { local, socket } = &c.paths[0] else {
            panic!("a UDP path: {:?}", c.paths);
        };
        assert!(
            local.ip().is_unspecified() && local.port() == 6000,
            "{local}"
        );
        assert_eq!(socket.dual_stack, local.is_ipv6());
        assert_eq!((c.peer, path, socket.interface), (None, None, None));
        assert!(
            c.relisten.is_some(),
            "an automatic listener follows its interfaces"
        );
        let e = driver_config(
            &NetConfig {
                path: PathPreference::PeerToPeer,
                ..net
            },
            &Remote::Address("127.0.0.1:5000".parse().expect("addr")),
        );
        // Loopback peers always use loopback, whatever the preference.
        assert!(e.is_ok(), "{e:?}");
    }

    struct Mute;

    impl tandem_net::DatagramTransport for Mute {
        fn start(&self, _inbox: tandem_net::TransportInbox) {}
        fn send(&self, _datagrams: &[&[u8]]) -> Result<(), tandem_net::TransportError> {
            Ok(())
        }
        fn stop(&self) {}
    }

    #[test]
    fn two_paths_get_a_second_path_and_one_address_cannot_be_both() {
        let net = NetConfig::default();
        let (first, second): (SocketAddr, SocketAddr) = (
            "127.0.0.1:5000".parse().expect("addr"),
            "127.0.0.1:5001".parse().expect("addr"),
        );
        let remote = Remote::Addresses { first, second };
        assert!(remote.two_paths(&net));
        let (c, _) = driver_config(&net, &remote).expect("two loopback paths");
        assert_eq!(c.peer, Some(first));
        let [PathConfig::Udp { local, .. }] = &c.paths[..] else {
            panic!("one UDP path 0: {:?}", c.paths);
        };
        assert!(local.ip().is_loopback(), "{local}");
        let Some(SecondPath {
            path: PathConfig::Udp { local, socket },
            peer,
        }) = &c.second_path
        else {
            panic!("a UDP path 1: {:?}", c.second_path);
        };
        assert_eq!(*peer, Some(second));
        assert!(local.ip().is_loopback() && local.port() == 0, "{local}");
        assert!(socket.interface.is_some());
        // One address names one path.
        let both = NetConfig {
            path: PathPreference::Both,
            ..NetConfig::default()
        };
        let e = driver_config(&both, &Remote::Address(first)).expect_err("one address");
        assert!(
            e.to_string()
                .contains("path `both` needs two paths, and the address 127.0.0.1:5000 names one"),
            "{e}"
        );
        assert!(!Remote::Address(first).two_paths(&both));
        // A listener over both: its usual sockets, the paths told by interface.
        let (c, _) = driver_config(&both, &Remote::Listen).expect("listen");
        assert!(c.second_path.is_none() && c.relisten.is_some());
        assert_eq!(c.split_by_interface, Some(both.kind_overrides.clone()));
        assert!(Remote::Listen.two_paths(&both));
        // A listener with a second socket.
        let two_sockets = NetConfig {
            bind_ip: Some(IpAddr::from([127, 0, 0, 1])),
            second_local: Some("127.0.0.1:0".parse().expect("addr")),
            ..NetConfig::default()
        };
        let (c, _) = driver_config(&two_sockets, &Remote::Listen).expect("listen");
        assert!(matches!(
            &c.second_path,
            Some(SecondPath { path: PathConfig::Udp { local, .. }, peer: None })
                if *local == "127.0.0.1:0".parse::<SocketAddr>().expect("addr")
        ));
        assert_eq!(c.split_by_interface, None);
        // Two transports: one per path.
        let (a, b) = (AppTransport::new(Mute), AppTransport::new(Mute));
        let remote = Remote::Transports {
            first: a.clone(),
            second: b.clone(),
            initiator: true,
        };
        let (c, _) = driver_config(&net, &remote).expect("transports");
        assert_eq!(c.paths, vec![PathConfig::Transport(a)]);
        assert_eq!(
            c.second_path,
            Some(SecondPath {
                path: PathConfig::Transport(b),
                peer: None
            })
        );
        // Single paths stay single.
        let (c, _) = driver_config(&net, &Remote::Address(first)).expect("one");
        assert!(c.second_path.is_none() && c.split_by_interface.is_none());
    }
}
