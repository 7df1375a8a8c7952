//! A listener over two paths on shared sockets ([`super::DriverConfig::split_by_interface`]):
//! which session path a datagram belongs to, told by the interface its source is on.

use std::net::{IpAddr, SocketAddr};

use tandem_proto::PathId;

use crate::iface::{Interface, InterfaceAddr, InterfaceKind, KindOverrides, is_link_local_v6};

/// The peer-to-peer interfaces as of the last listing: what a datagram's source is matched
/// against. A lookup is a scan of a few entries, without allocation, so a stranger's
/// datagram costs no more than a counter.
#[derive(Debug)]
pub(super) struct Split {
    /// Interface kinds the application set.
    pub(super) overrides: KindOverrides,
    /// Indexes of the peer-to-peer interfaces (the scope ids of their link-local peers).
    indexes: Vec<u32>,
    /// Their addresses other than link-local: a source on one of their subnets is there.
    subnets: Vec<InterfaceAddr>,
}

impl Split {
    /// The classification for `overrides`, from `list` (the host's interfaces now; an empty
    /// list when they cannot be listed: every datagram is then path 0 until the next check).
    pub(super) fn new(overrides: KindOverrides, list: &[Interface]) -> Split {
        let mut split = Split {
            overrides,
            indexes: Vec::new(),
            subnets: Vec::new(),
        };
        split.update(list);
        split
    }

    /// Takes the interfaces as they are now (at each path check).
    pub(super) fn update(&mut self, list: &[Interface]) {
        self.indexes.clear();
        self.subnets.clear();
        for i in list.iter().filter(|i| i.kind == InterfaceKind::PeerToPeer) {
            self.indexes.push(i.index);
            self.subnets
                .extend(i.addrs.iter().filter(|a| !a.is_link_local_v6()).copied());
        }
    }

    /// The session path of a datagram from `from`: [`PathId::SECOND`] when the source is on
    /// a peer-to-peer interface (an IPv6 link-local source: the interface of its scope id;
    /// any other: the interface whose subnet holds it), else [`PathId::FIRST`].
    pub(super) fn path_of(&self, from: SocketAddr) -> PathId {
        let p2p = match from {
            SocketAddr::V6(v6) if is_link_local_v6(IpAddr::V6(*v6.ip())) => {
                self.indexes.contains(&v6.scope_id())
            }
            other => {
                let ip = crate::listen::canonical_peer(other).ip();
                self.subnets.iter().any(|a| a.contains(ip))
            }
        };
        if p2p { PathId::SECOND } else { PathId::FIRST }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iface::test_interface as iface;

    #[test]
    fn sources_on_peer_to_peer_interfaces_are_path_1() {
        let list = [
            iface("lo", 1, InterfaceKind::Loopback, &[("127.0.0.1", 8)]),
            iface(
                "en0",
                4,
                InterfaceKind::WifiInfrastructure,
                &[("192.168.1.20", 24), ("fe80::1", 64)],
            ),
            iface(
                "awdl0",
                9,
                InterfaceKind::PeerToPeer,
                &[("fe80::9", 64), ("fd00:77::9", 64)],
            ),
        ];
        let split = Split::new(KindOverrides::new(), &list);
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert_eq!(split.path_of(a("[fe80::2%9]:5000")), PathId::SECOND);
        assert_eq!(split.path_of(a("[fe80::2%4]:5000")), PathId::FIRST);
        assert_eq!(
            split.path_of(a("[fe80::2]:5000")),
            PathId::FIRST,
            "no scope"
        );
        assert_eq!(split.path_of(a("[fd00:77::5]:5000")), PathId::SECOND);
        assert_eq!(split.path_of(a("192.168.1.7:5000")), PathId::FIRST);
        assert_eq!(split.path_of(a("10.9.9.9:5000")), PathId::FIRST);
        // A v4 peer seen through a dual-stack socket.
        assert_eq!(split.path_of(a("[::ffff:192.168.1.7]:5000")), PathId::FIRST);
        // The interface goes: its sources are path 0 from the next listing on.
        let mut split = split;
        split.update(&list[..2]);
        assert_eq!(split.path_of(a("[fe80::2%9]:5000")), PathId::FIRST);
        // An override makes a veth peer-to-peer, and a v4 subnet on it counts.
        let mut veth = iface("veth1", 12, InterfaceKind::PeerToPeer, &[("10.7.0.1", 24)]);
        veth.kind = InterfaceKind::PeerToPeer;
        split.update(&[veth]);
        assert_eq!(split.path_of(a("10.7.0.2:9")), PathId::SECOND);
        assert_eq!(split.path_of(a("[::ffff:10.7.0.2]:9")), PathId::SECOND);
    }
}
