//! When discovery includes peer-to-peer links: [`peer_to_peer_discovery`], from the path
//! preference, where the session stands ([`SessionState`]) and the app's override.
//!
//! A browse or an advertisement over AWDL is not free: Bonjour hands every request made
//! with `kDNSServiceFlagsIncludeP2P | kDNSServiceFlagsIncludeAWDL` to its AWDL transport
//! for as long as the request lives (`external_start_browsing_for_service` and
//! `external_start_advertising_service` in mDNSResponder's `mDNSMacOSX/D2D.c` start it on
//! `D2DAWDLTransport`; only the matching `external_stop_*` ends it), and while AWDL is busy
//! the one radio leaves the access point's channel for AWDL's slots: the 30–50 ms stalls on
//! the infrastructure path (see `tandem-sim`'s AWDL profiles). So discovery includes
//! peer-to-peer only while the session may use it:
//!
//! | preference       | no session / connecting | up on infrastructure   | up on peer-to-peer |
//! |------------------|-------------------------|------------------------|--------------------|
//! | `Infrastructure` | no                      | no                     | no                 |
//! | `PeerToPeer`     | yes                     | yes                    | yes                |
//! | `Automatic`      | yes                     | only if the app keeps it | yes              |
//! | `Both`           | yes                     | yes                    | yes                |
//!
//! `Both` runs over AWDL and the access point at once, so AWDL is awake anyway, and its
//! peer must be found on a peer-to-peer link too.
//! `Automatic` must be findable everywhere until a session settles, since the peer may be
//! reachable over AWDL alone; once the session runs over the access point, AWDL discovery
//! only costs stalls, unless the app wants to go on seeing peers that are only reachable
//! over AWDL (the override, "keep peer-to-peer discovery on"). The override never widens a
//! preference that cannot use peer-to-peer. A session that drops goes back to connecting,
//! and peer-to-peer discovery with it.

use std::net::{IpAddr, SocketAddr};

use crate::iface::{Interface, InterfaceKind, is_link_local_v6};
use crate::path::PathPreference;

/// Where the session stands, as far as discovery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SessionState {
    /// No session: not started, or waiting to be found. The default.
    #[default]
    Idle,
    /// A session is being set up, or re-established after its peer went silent.
    Connecting,
    /// Up over an access point, a wire or loopback.
    UpInfrastructure,
    /// Up over a peer-to-peer link (AWDL, Wi-Fi Direct).
    UpPeerToPeer,
}

impl SessionState {
    /// The state of a session that is `up` (or not) with `peer` (its address as the driver
    /// last heard it), given the host's `interfaces`. Up over a peer-to-peer interface (the
    /// scope of a link-local address, or the interface whose subnet holds the address) is
    /// [`SessionState::UpPeerToPeer`]; over any other link, including loopback and a route
    /// through a gateway, [`SessionState::UpInfrastructure`]. An up session whose link
    /// cannot be told (no address, a link-local address without a scope or with the scope
    /// of an interface that is gone) counts as
    /// [`SessionState::Connecting`]: discovery keeps peer-to-peer rather than cut a link the
    /// session may be using. Not up: connecting if a peer is known, else idle.
    pub fn of(up: bool, peer: Option<SocketAddr>, interfaces: &[Interface]) -> SessionState {
        match (up, peer) {
            (false, Some(_)) => SessionState::Connecting,
            (false, None) => SessionState::Idle,
            (true, None) => SessionState::Connecting,
            (true, Some(addr)) => match link_of(addr, interfaces) {
                Some(InterfaceKind::PeerToPeer) => SessionState::UpPeerToPeer,
                Some(_) => SessionState::UpInfrastructure,
                None => SessionState::Connecting,
            },
        }
    }
}

/// The kind of interface `addr` is reached over, if the interfaces say.
fn link_of(addr: SocketAddr, interfaces: &[Interface]) -> Option<InterfaceKind> {
    let (ip, scope) = match addr {
        SocketAddr::V4(v4) => (IpAddr::V4(*v4.ip()), 0),
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => (IpAddr::V4(v4), 0),
            None => (IpAddr::V6(*v6.ip()), v6.scope_id()),
        },
    };
    if ip.is_loopback() {
        return Some(InterfaceKind::Loopback);
    }
    if is_link_local_v6(ip) {
        return interfaces
            .iter()
            .find(|i| scope != 0 && i.index == scope)
            .map(|i| i.kind);
    }
    // On a subnet of this host's, that interface (a Wi-Fi Direct group has one); off every
    // subnet, routed through a gateway, which no peer-to-peer link has.
    let on_subnet = interfaces
        .iter()
        .filter(|i| i.addrs.iter().any(|a| a.prefix_len > 0 && a.contains(ip)))
        .map(|i| i.kind)
        .min_by_key(|k| *k == InterfaceKind::PeerToPeer);
    Some(on_subnet.unwrap_or(InterfaceKind::Other))
}

/// Whether browsing and advertising include peer-to-peer links now (see the module docs
/// for the table): never for [`PathPreference::Infrastructure`], always for
/// [`PathPreference::PeerToPeer`] and [`PathPreference::Both`] (a two-path session must
/// find its peer on a peer-to-peer link too, and uses it while it runs), and for
/// [`PathPreference::Automatic`] unless the session is up on infrastructure and the app did
/// not ask to `keep_peer_to_peer`.
pub fn peer_to_peer_discovery(
    preference: PathPreference,
    session: SessionState,
    keep_peer_to_peer: bool,
) -> bool {
    match preference {
        PathPreference::Infrastructure => false,
        PathPreference::PeerToPeer | PathPreference::Both => true,
        PathPreference::Automatic => session != SessionState::UpInfrastructure || keep_peer_to_peer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::iface::test_interface as iface;

    #[test]
    fn the_policy_table() {
        use PathPreference::{Automatic, Both, Infrastructure, PeerToPeer};
        use SessionState::{Connecting, Idle, UpInfrastructure, UpPeerToPeer};
        // (preference, session, keep) → peer-to-peer discovery
        let table = [
            (Infrastructure, Idle, false, false),
            (Infrastructure, Connecting, false, false),
            (Infrastructure, UpInfrastructure, false, false),
            (Infrastructure, UpPeerToPeer, false, false),
            (Infrastructure, Idle, true, false),
            (Infrastructure, UpInfrastructure, true, false),
            (PeerToPeer, Idle, false, true),
            (PeerToPeer, Connecting, false, true),
            (PeerToPeer, UpInfrastructure, false, true),
            (PeerToPeer, UpPeerToPeer, false, true),
            (PeerToPeer, UpPeerToPeer, true, true),
            (Automatic, Idle, false, true),
            (Automatic, Connecting, false, true),
            (Automatic, UpInfrastructure, false, false),
            (Automatic, UpPeerToPeer, false, true),
            (Automatic, Idle, true, true),
            (Automatic, Connecting, true, true),
            (Automatic, UpInfrastructure, true, true),
            (Automatic, UpPeerToPeer, true, true),
            (Both, Idle, false, true),
            (Both, Connecting, false, true),
            (Both, UpInfrastructure, false, true),
            (Both, UpPeerToPeer, false, true),
        ];
        for (preference, session, keep, expected) in table {
            assert_eq!(
                peer_to_peer_discovery(preference, session, keep),
                expected,
                "{preference:?} {session:?} keep={keep}"
            );
        }
        assert_eq!(SessionState::default(), Idle);
    }

    fn host() -> Vec<Interface> {
        vec![
            iface(
                "lo",
                1,
                InterfaceKind::Loopback,
                &[("127.0.0.1", 8), ("::1", 128)],
            ),
            iface(
                "en0",
                4,
                InterfaceKind::WifiInfrastructure,
                &[("192.168.1.20", 24), ("fe80::20", 64), ("fd00::20", 64)],
            ),
            iface("awdl0", 11, InterfaceKind::PeerToPeer, &[("fe80::b", 64)]),
        ]
    }

    #[test]
    fn the_session_state_from_the_peers_address() {
        use SessionState::{Connecting, Idle, UpInfrastructure, UpPeerToPeer};
        let h = host();
        let at = |s: &str| Some(s.parse::<SocketAddr>().expect("address"));
        // (up, peer) → state
        let table = [
            (false, None, Idle),
            (false, at("192.168.1.9:5000"), Connecting),
            (false, at("[fe80::9%11]:5000"), Connecting),
            (true, None, Connecting),
            (true, at("192.168.1.9:5000"), UpInfrastructure),
            (true, at("[::ffff:192.168.1.9]:5000"), UpInfrastructure),
            (true, at("[fd00::9]:5000"), UpInfrastructure),
            (true, at("[fe80::9%4]:5000"), UpInfrastructure),
            (true, at("[fe80::9%11]:5000"), UpPeerToPeer),
            (true, at("127.0.0.1:5000"), UpInfrastructure),
            (true, at("[::1]:5000"), UpInfrastructure),
            // Not tellable: keep peer-to-peer.
            (true, at("[fe80::9]:5000"), Connecting),
            (true, at("[fe80::9%99]:5000"), Connecting),
            // Routed through the access point's gateway.
            (true, at("172.16.0.9:5000"), UpInfrastructure),
        ];
        for (up, peer, expected) in table {
            assert_eq!(SessionState::of(up, peer, &h), expected, "{up} {peer:?}");
        }
    }
}
