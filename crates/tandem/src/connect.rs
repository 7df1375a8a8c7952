//! How a pipeline reaches the other end: the socket's interface and address for the
//! [`Remote`] and the [`NetConfig`]'s path preference, or the application's own transport.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    /// Found by discovery: the path preference picks the interface and address.
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
}

/// The driver settings for `remote`, and the path chosen (when one was).
pub(crate) fn driver_config(
    net: &NetConfig,
    remote: &Remote,
) -> Result<(DriverConfig, Option<ChosenPath>), EngineError> {
    if let Remote::Transport { transport, .. } = remote {
        return Ok((DriverConfig::over_transport(transport.clone()), None));
    }
    let list = interfaces(&net.kind_overrides).map_err(EngineError::io("listing interfaces"))?;
    let base = SocketConfig {
        traffic: net.traffic,
        ..SocketConfig::default()
    };
    if *remote == Remote::Listen && net.path == PathPreference::Automatic && net.bind_ip.is_none() {
        // Listening on every interface is what "automatic" means for a listener: it is
        // advertised everywhere, AWDL included, so it must hear everywhere (see
        // `tandem_net::listen` for the sockets each platform needs and why).
        let plan = listen_plan(Platform::current(), &list, net.port, net.path, &base)?;
        let paths = plan.into_iter().map(PathConfig::from).collect();
        let mut config = DriverConfig::with_paths(paths, None);
        // And stays so as interfaces come, go and renumber (iOS binds AWDL by address).
        config.relisten = Some(Relisten {
            platform: Platform::current(),
            overrides: net.kind_overrides.clone(),
            base,
        });
        return Ok((config, None));
    }
    let (path, peer) = match remote {
        Remote::Transport { .. } => unreachable!("handled above"),
        Remote::Address(addr) => {
            let scope = match addr {
                SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
                _ => None,
            };
            let hint = PeerHint {
                addr: Some(addr.ip()),
                interface: scope,
            };
            (Some(choose_path(&list, net.path, hint)?), Some(*addr))
        }
        Remote::Discovered(peer) => {
            let (path, addr) = plan_connection(peer, &list, net.path)?;
            (Some(path), Some(addr))
        }
        // An automatic listener at the address the application chose (above: everywhere).
        Remote::Listen if net.path == PathPreference::Automatic => (None, None),
        // A preference for one kind binds to that kind's interface.
        Remote::Listen => (
            Some(choose_path(&list, net.path, PeerHint::default())?),
            None,
        ),
    };
    let local = match &path {
        Some(p) => with_port(p.local, net.port),
        None => SocketAddr::new(
            net.bind_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
            net.port,
        ),
    };
    let socket = SocketConfig {
        interface: path.as_ref().map(|p| p.index),
        ..base
    };
    let config = DriverConfig::with_paths(vec![PathConfig::Udp { local, socket }], peer);
    Ok((config, path))
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
}
