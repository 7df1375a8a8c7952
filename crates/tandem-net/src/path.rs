//! `PathPreference` and `choose_path`: which interface and local address a session uses.
//!
//! Infrastructure Wi-Fi (or a wire) goes through an access point; peer-to-peer (AWDL,
//! Wi-Fi Direct) goes device to device but stalls periodically while the radio visits the
//! infrastructure channel (see `tandem-sim`'s AWDL profiles). `Automatic` prefers a wire,
//! then infrastructure Wi-Fi, then peer-to-peer, because the stall pattern costs more than
//! the extra hop; but it always takes the interface the peer was discovered on or whose
//! subnet holds the peer's address, since another one cannot reach it. Among peer-to-peer
//! interfaces AWDL comes before `llw*` whatever their indexes
//! ([`crate::iface::peer_to_peer_rank`]).
//!
//! `Both` spans two paths at once (see `tandem_proto::multipath`): an infrastructure one
//! (a wire or the router's Wi-Fi) and a peer-to-peer one, so that a stall of one radio
//! channel is covered by the other. For a discovered peer [`plan_both`] plans each half as
//! `Infrastructure` and `PeerToPeer` would, and fails, naming the half that is missing,
//! when the peer was not seen on both kinds of interface: a session that asked for two
//! paths does not quietly start on one (an app that wants whatever works asks for
//! `Automatic`). The peer-to-peer half must be a real peer-to-peer interface: a peer on
//! this host (seen on loopback) has none.

use std::fmt;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;

use crate::discovery::Peer;
use crate::iface::{Interface, InterfaceKind, is_link_local_v6, peer_to_peer_rank};

/// Which kind of link a session should use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PathPreference {
    /// Through the access point (or a wire): Wi-Fi infrastructure or wired interfaces.
    Infrastructure,
    /// Device to device: AWDL or Wi-Fi Direct interfaces.
    PeerToPeer,
    /// Whatever reaches the peer, preferring wired, then infrastructure, then peer-to-peer.
    /// The default.
    #[default]
    Automatic,
    /// Two paths at once: an infrastructure one and a peer-to-peer one (see the module
    /// docs and [`plan_both`]).
    Both,
}

impl std::str::FromStr for PathPreference {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "infrastructure" => Ok(PathPreference::Infrastructure),
            "peer-to-peer" | "p2p" => Ok(PathPreference::PeerToPeer),
            "auto" | "automatic" => Ok(PathPreference::Automatic),
            "both" => Ok(PathPreference::Both),
            other => Err(format!(
                "path `{other}` is unknown (expected infrastructure, peer-to-peer, auto or both)"
            )),
        }
    }
}

impl fmt::Display for PathPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathPreference::Infrastructure => "infrastructure",
            PathPreference::PeerToPeer => "peer-to-peer",
            PathPreference::Automatic => "auto",
            PathPreference::Both => "both",
        })
    }
}

impl PathPreference {
    /// Whether this preference may use an interface of `kind`, and how much it likes it
    /// (lower is better).
    fn rank(self, kind: InterfaceKind) -> Option<u8> {
        use InterfaceKind as K;
        match (self, kind) {
            (PathPreference::Infrastructure, K::Wired) => Some(0),
            (PathPreference::Infrastructure, K::WifiInfrastructure) => Some(1),
            (PathPreference::PeerToPeer, K::PeerToPeer) => Some(0),
            (PathPreference::Automatic, K::Wired) => Some(0),
            (PathPreference::Automatic, K::WifiInfrastructure) => Some(1),
            (PathPreference::Automatic, K::PeerToPeer) => Some(2),
            (PathPreference::Automatic, K::Other) => Some(3),
            // Either half of a two-path session (each is planned on its own, see
            // `plan_both`): a wire, then Wi-Fi, then peer-to-peer.
            (PathPreference::Both, K::Wired) => Some(0),
            (PathPreference::Both, K::WifiInfrastructure) => Some(1),
            (PathPreference::Both, K::PeerToPeer) => Some(2),
            _ => None,
        }
    }
}

/// The interface and local address chosen for a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenPath {
    /// Interface name.
    pub interface: String,
    /// Interface index, for binding the socket.
    pub index: NonZeroU32,
    /// What kind of link it is.
    pub kind: InterfaceKind,
    /// Local address to bind (port 0); an IPv6 link-local address carries the interface as
    /// scope.
    pub local: SocketAddr,
}

/// Why no path could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No usable interface matches the preference.
    #[error("no usable {preference} interface (usable interfaces: {available})")]
    NoInterface {
        /// The preference asked for.
        preference: PathPreference,
        /// The usable interfaces there are, `name (kind)`, or "none".
        available: String,
    },
    /// Interfaces match, but none reaches the peer's address.
    #[error("no {preference} interface reaches {peer}")]
    Unreachable {
        /// The preference asked for.
        preference: PathPreference,
        /// The peer's address.
        peer: IpAddr,
    },
    /// The discovered peer was not seen on any usable interface the preference allows.
    #[error("peer `{peer}` was not seen on a usable {preference} interface (seen on: {seen_on})")]
    NotSeenOn {
        /// The preference asked for.
        preference: PathPreference,
        /// The peer's instance name.
        peer: String,
        /// The interfaces it was seen on, `name (kind)`, or "none".
        seen_on: String,
    },
    /// [`PathPreference::Both`]: the discovered peer was seen on one kind of interface but
    /// not the other.
    #[error(
        "path `both` needs peer `{peer}` on an infrastructure and a peer-to-peer interface, \
         and it was not seen on a usable {missing} one (seen on: {seen_on}); \
         `auto` takes whichever reaches it"
    )]
    HalfSeen {
        /// The half that is missing: [`PathPreference::Infrastructure`] or
        /// [`PathPreference::PeerToPeer`].
        missing: PathPreference,
        /// The peer's instance name.
        peer: String,
        /// The interfaces it was seen on, `name (kind)`, or "none".
        seen_on: String,
    },
}

/// Where the peer is, as far as the caller knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerHint {
    /// The peer's address.
    pub addr: Option<IpAddr>,
    /// The interface the peer was discovered on (its index), or the scope id of its IPv6
    /// link-local address.
    pub interface: Option<u32>,
}

/// Picks the interface and local address for `preference`, given what is known of the peer.
///
/// Among usable interfaces the preference allows: one the peer was seen on wins, then one
/// whose subnet holds the peer's address, then the preference's order, then (between
/// peer-to-peer interfaces) AWDL before `llw*`, then the lowest index. The local address
/// is of the peer's family (IPv4 when unknown); on a peer-to-peer link, or for a link-local
/// peer, an IPv6 link-local address scoped to the interface.
pub fn choose_path(
    interfaces: &[Interface],
    preference: PathPreference,
    peer: PeerHint,
) -> Result<ChosenPath, PathError> {
    let loopback_peer = peer.addr.is_some_and(|a| a.is_loopback());
    let allowed = |i: &&Interface| {
        i.usable()
            && (if loopback_peer {
                i.kind == InterfaceKind::Loopback
            } else {
                preference.rank(i.kind).is_some()
            })
    };
    let candidates: Vec<&Interface> = interfaces.iter().filter(allowed).collect();
    if candidates.is_empty() {
        let available: Vec<String> = interfaces
            .iter()
            .filter(|i| i.usable())
            .map(|i| format!("{} ({:?})", i.name, i.kind))
            .collect();
        return Err(PathError::NoInterface {
            preference,
            available: if available.is_empty() {
                "none".into()
            } else {
                available.join(", ")
            },
        });
    }
    let reaches = |i: &Interface| match peer.addr {
        Some(a) => i.addrs.iter().any(|x| x.contains(a)) || is_link_local_v6(a),
        None => true,
    };
    let score = |i: &Interface| {
        let seen_there = peer.interface == Some(i.index);
        let same_subnet = peer
            .addr
            .is_some_and(|a| i.addrs.iter().any(|x| x.contains(a)));
        (
            !seen_there,
            !same_subnet,
            preference.rank(i.kind).unwrap_or(u8::MAX),
            link_rank(i),
            i.index,
        )
    };
    let best = candidates
        .iter()
        .copied()
        .filter(|i| peer.interface == Some(i.index) || reaches(i))
        .min_by_key(|i| score(i))
        .ok_or(PathError::Unreachable {
            preference,
            peer: peer.addr.unwrap_or(IpAddr::from([0, 0, 0, 0])),
        })?;
    let index = NonZeroU32::new(best.index).ok_or_else(|| PathError::NoInterface {
        preference,
        available: format!("{} has no interface index", best.name),
    })?;
    let want_v6 = match peer.addr {
        Some(a) => a.is_ipv6(),
        None => best.kind == InterfaceKind::PeerToPeer,
    };
    let want_link_local =
        best.kind == InterfaceKind::PeerToPeer || peer.addr.is_some_and(is_link_local_v6);
    let pick = best
        .addrs
        .iter()
        .filter(|a| a.ip.is_ipv6() == want_v6)
        .min_by_key(|a| {
            (
                a.is_link_local_v6() != want_link_local,
                !peer_matches(a.ip, peer),
            )
        })
        .ok_or_else(|| PathError::NoInterface {
            preference,
            available: format!(
                "{} has no IPv{} address",
                best.name,
                if want_v6 { 6 } else { 4 }
            ),
        })?;
    let local = match pick.ip {
        IpAddr::V6(v6) => {
            let scope = if pick.is_link_local_v6() {
                best.index
            } else {
                0
            };
            SocketAddr::V6(SocketAddrV6::new(v6, 0, 0, scope))
        }
        IpAddr::V4(v4) => SocketAddr::from((v4, 0)),
    };
    Ok(ChosenPath {
        interface: best.name.clone(),
        index,
        kind: best.kind,
        local,
    })
}

/// Picks the path and the peer address for a peer found by discovery.
///
/// Among the interfaces the peer was seen on that are usable and that `preference` allows,
/// the best-ranked wins (AWDL before `llw*`, as in [`choose_path`]); a loopback sighting
/// (the peer is on this host) wins over all. A peer seen only on `llw*` is reached there,
/// the one link its address is valid on. On a
/// peer-to-peer link the peer's IPv6 link-local address is used (AWDL carries nothing
/// else), elsewhere IPv4 first. The socket then binds to that interface, so the session
/// cannot drift onto another link.
///
/// [`PathPreference::Both`] plans two paths ([`plan_both`]); here it gives the first, the
/// infrastructure one, and fails as [`plan_both`] does when either half is missing.
pub fn plan_connection(
    peer: &Peer,
    interfaces: &[Interface],
    preference: PathPreference,
) -> Result<(ChosenPath, SocketAddr), PathError> {
    if preference == PathPreference::Both {
        return plan_both(peer, interfaces).map(|p| p.infrastructure);
    }
    let address =
        sighting(peer, interfaces, preference, true).ok_or_else(|| PathError::NotSeenOn {
            preference,
            peer: peer.instance.clone(),
            seen_on: seen_on(peer, interfaces),
        })?;
    plan_at(interfaces, preference, address)
}

/// The two paths of a [`PathPreference::Both`] session to a discovered peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DualPlan {
    /// The first path (path 0): a wire or infrastructure Wi-Fi (or loopback, for a peer on
    /// this host), and the peer's address there.
    pub infrastructure: (ChosenPath, SocketAddr),
    /// The second path (path 1): a peer-to-peer interface (AWDL before `llw*`), and the
    /// peer's IPv6 link-local address there.
    pub peer_to_peer: (ChosenPath, SocketAddr),
}

/// Plans both paths of a [`PathPreference::Both`] session to `peer`: the infrastructure
/// half as [`plan_connection`] plans `Infrastructure` (a loopback sighting included), the
/// peer-to-peer half as it plans `PeerToPeer` (a real peer-to-peer interface only). When
/// the peer was not seen on a usable interface of one kind, the error names that kind and
/// where the peer was seen ([`PathError::HalfSeen`]); nothing falls back to one path (see
/// the module docs).
pub fn plan_both(peer: &Peer, interfaces: &[Interface]) -> Result<DualPlan, PathError> {
    let half = |preference, allow_loopback| {
        let address = sighting(peer, interfaces, preference, allow_loopback).ok_or_else(|| {
            PathError::HalfSeen {
                missing: preference,
                peer: peer.instance.clone(),
                seen_on: seen_on(peer, interfaces),
            }
        })?;
        plan_at(interfaces, preference, address)
    };
    Ok(DualPlan {
        infrastructure: half(PathPreference::Infrastructure, true)?,
        peer_to_peer: half(PathPreference::PeerToPeer, false)?,
    })
}

/// The peer's best sighting on a usable interface `preference` allows (a loopback one
/// first, if `allow_loopback`).
fn sighting<'a>(
    peer: &'a Peer,
    interfaces: &[Interface],
    preference: PathPreference,
    allow_loopback: bool,
) -> Option<&'a crate::discovery::PeerAddress> {
    let kind_of = |index: u32| interfaces.iter().find(|i| i.index == index && i.usable());
    peer.addresses
        .iter()
        .filter_map(|a| {
            let iface = kind_of(a.interface)?;
            let rank = if iface.kind == InterfaceKind::Loopback {
                if !allow_loopback {
                    return None;
                }
                0
            } else {
                1 + preference.rank(iface.kind)?
            };
            let family = if iface.kind == InterfaceKind::PeerToPeer {
                !is_link_local_v6(a.addr.ip())
            } else {
                a.addr.is_ipv6()
            };
            Some(((rank, link_rank(iface), family, a.interface), a))
        })
        .min_by_key(|(score, _)| *score)
        .map(|(_, a)| a)
}

/// The path to `address` (a sighting of the peer) for `preference`.
fn plan_at(
    interfaces: &[Interface],
    preference: PathPreference,
    address: &crate::discovery::PeerAddress,
) -> Result<(ChosenPath, SocketAddr), PathError> {
    let hint = PeerHint {
        addr: Some(address.addr.ip()),
        interface: Some(address.interface),
    };
    let path = choose_path(interfaces, preference, hint)?;
    Ok((path, address.addr))
}

/// Where the peer was seen, `name (kind)` each, or "none".
fn seen_on(peer: &Peer, interfaces: &[Interface]) -> String {
    let seen_on: Vec<String> = peer
        .addresses
        .iter()
        .map(
            |a| match interfaces.iter().find(|i| i.index == a.interface) {
                Some(i) => format!("{} ({:?})", i.name, i.kind),
                None => format!("index {}", a.interface),
            },
        )
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if seen_on.is_empty() {
        "none".into()
    } else {
        seen_on.join(", ")
    }
}

/// Between interfaces of one kind: AWDL before `llw*` (see
/// [`crate::iface::peer_to_peer_rank`]); other kinds are all alike.
fn link_rank(i: &Interface) -> u8 {
    if i.kind == InterfaceKind::PeerToPeer {
        peer_to_peer_rank(&i.name)
    } else {
        0
    }
}

fn peer_matches(ip: IpAddr, peer: PeerHint) -> bool {
    peer.addr.is_some_and(|p| p.is_ipv6() == ip.is_ipv6())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::iface::test_interface as iface;

    fn host() -> Vec<Interface> {
        vec![
            iface(
                "lo",
                1,
                InterfaceKind::Loopback,
                &[("127.0.0.1", 8), ("::1", 128)],
            ),
            iface(
                "wlan0",
                2,
                InterfaceKind::WifiInfrastructure,
                &[("192.168.1.20", 24), ("fe80::20", 64)],
            ),
            iface("awdl0", 3, InterfaceKind::PeerToPeer, &[("fe80::a", 64)]),
            iface("eth0", 4, InterfaceKind::Wired, &[("10.0.0.5", 8)]),
        ]
    }

    #[test]
    fn each_preference_picks_its_kind() {
        let h = host();
        let p = choose_path(&h, PathPreference::PeerToPeer, PeerHint::default()).expect("p2p");
        assert_eq!(p.interface, "awdl0");
        assert_eq!(p.local, "[fe80::a%3]:0".parse().expect("addr"));
        let p = choose_path(&h, PathPreference::Infrastructure, PeerHint::default())
            .expect("infrastructure");
        assert_eq!(p.interface, "eth0", "a wire beats Wi-Fi");
        let p = choose_path(&h, PathPreference::Automatic, PeerHint::default()).expect("auto");
        assert_eq!(p.interface, "eth0");
    }

    #[test]
    fn the_peers_subnet_or_discovery_interface_wins() {
        let h = host();
        let peer = PeerHint {
            addr: Some("192.168.1.77".parse().expect("v4")),
            interface: None,
        };
        let p = choose_path(&h, PathPreference::Automatic, peer).expect("auto");
        assert_eq!(p.interface, "wlan0");
        assert_eq!(p.local, "192.168.1.20:0".parse().expect("addr"));
        // Seen over AWDL with a link-local address: automatic follows it there.
        let peer = PeerHint {
            addr: Some("fe80::77".parse().expect("v6")),
            interface: Some(3),
        };
        let p = choose_path(&h, PathPreference::Automatic, peer).expect("auto");
        assert_eq!(
            (p.interface.as_str(), p.kind),
            ("awdl0", InterfaceKind::PeerToPeer)
        );
        assert_eq!(p.local, "[fe80::a%3]:0".parse().expect("addr"));
        // Infrastructure insists: the Wi-Fi interface, whose link-local subnet holds the
        // peer's address, with its own link-local address.
        let p = choose_path(&h, PathPreference::Infrastructure, peer).expect("infrastructure");
        assert_eq!(p.interface, "wlan0");
        assert_eq!(p.local, "[fe80::20%2]:0".parse().expect("addr"));
    }

    fn discovered(addresses: &[(&str, u32)]) -> Peer {
        Peer {
            instance: "Desk".into(),
            host: "desk.local.".into(),
            port: 5000,
            txt: crate::discovery::txt::test_txt("d"),
            addresses: addresses
                .iter()
                .map(|(a, i)| crate::discovery::PeerAddress {
                    addr: a.parse().expect("address"),
                    interface: *i,
                })
                .collect(),
        }
    }

    #[test]
    fn discovered_peers_get_the_preferred_sighting() {
        let h = host();
        let peer = discovered(&[
            ("192.168.1.77:5000", 2),
            ("[fe80::77%2]:5000", 2),
            ("[fe80::77%3]:5000", 3),
        ]);
        let (p, to) = plan_connection(&peer, &h, PathPreference::PeerToPeer).expect("p2p");
        assert_eq!(
            (p.interface.as_str(), to),
            ("awdl0", "[fe80::77%3]:5000".parse().expect("a"))
        );
        assert_eq!(p.local, "[fe80::a%3]:0".parse().expect("addr"));
        let (p, to) =
            plan_connection(&peer, &h, PathPreference::Infrastructure).expect("infrastructure");
        assert_eq!(
            (p.interface.as_str(), to),
            ("wlan0", "192.168.1.77:5000".parse().expect("a"))
        );
        assert_eq!(p.local, "192.168.1.20:0".parse().expect("addr"));
        let (p, _) = plan_connection(&peer, &h, PathPreference::Automatic).expect("auto");
        assert_eq!(p.interface, "wlan0", "infrastructure before peer-to-peer");
        let wifi_only = discovered(&[("192.168.1.77:5000", 2)]);
        let e = plan_connection(&wifi_only, &h, PathPreference::PeerToPeer).expect_err("no p2p");
        assert_eq!(
            e.to_string(),
            "peer `Desk` was not seen on a usable peer-to-peer interface \
             (seen on: wlan0 (WifiInfrastructure))"
        );
        let local = discovered(&[("192.168.1.77:5000", 2), ("127.0.0.1:5000", 1)]);
        let (p, to) = plan_connection(&local, &h, PathPreference::Infrastructure).expect("lo");
        assert_eq!((p.interface.as_str(), to.port()), ("lo", 5000));
    }

    #[test]
    fn both_plans_an_infrastructure_and_a_peer_to_peer_path_or_names_the_missing_half() {
        let h = host();
        let peer = discovered(&[
            ("192.168.1.77:5000", 2),
            ("[fe80::77%2]:5000", 2),
            ("[fe80::77%3]:5000", 3),
        ]);
        let plan = plan_both(&peer, &h).expect("both");
        let (infra, to) = &plan.infrastructure;
        assert_eq!(
            (infra.interface.as_str(), *to),
            ("wlan0", "192.168.1.77:5000".parse().expect("a"))
        );
        assert_eq!(infra.local, "192.168.1.20:0".parse().expect("addr"));
        let (p2p, to) = &plan.peer_to_peer;
        assert_eq!(
            (p2p.interface.as_str(), p2p.kind, *to),
            (
                "awdl0",
                InterfaceKind::PeerToPeer,
                "[fe80::77%3]:5000".parse().expect("a")
            )
        );
        assert_eq!(p2p.local, "[fe80::a%3]:0".parse().expect("addr"));
        // plan_connection gives the first half.
        assert_eq!(
            plan_connection(&peer, &h, PathPreference::Both).expect("both"),
            plan.infrastructure
        );
        // Seen on Wi-Fi only: the peer-to-peer half is missing, and said so.
        let wifi_only = discovered(&[("192.168.1.77:5000", 2)]);
        let e = plan_both(&wifi_only, &h).expect_err("no p2p");
        assert_eq!(
            e.to_string(),
            "path `both` needs peer `Desk` on an infrastructure and a peer-to-peer interface, \
             and it was not seen on a usable peer-to-peer one (seen on: wlan0 \
             (WifiInfrastructure)); `auto` takes whichever reaches it"
        );
        assert_eq!(
            plan_connection(&wifi_only, &h, PathPreference::Both),
            Err(e)
        );
        // Seen on AWDL only: the infrastructure half.
        let awdl_only = discovered(&[("[fe80::77%3]:5000", 3)]);
        let e = plan_both(&awdl_only, &h).expect_err("no infrastructure");
        assert!(
            matches!(
                &e,
                PathError::HalfSeen {
                    missing: PathPreference::Infrastructure,
                    ..
                }
            ) && e.to_string().contains("seen on: awdl0 (PeerToPeer)"),
            "{e}"
        );
        // A peer on this host: loopback is its first path, but it has no peer-to-peer one.
        let local = discovered(&[("127.0.0.1:5000", 1)]);
        assert!(matches!(
            plan_both(&local, &h),
            Err(PathError::HalfSeen {
                missing: PathPreference::PeerToPeer,
                ..
            })
        ));
        // A wire beats Wi-Fi for the first half, as for `infrastructure`.
        let wired = discovered(&[
            ("192.168.1.77:5000", 2),
            ("10.0.0.77:5000", 4),
            ("[fe80::77%3]:5000", 3),
        ]);
        let plan = plan_both(&wired, &h).expect("both");
        assert_eq!(plan.infrastructure.0.interface, "eth0");
        assert_eq!(plan.peer_to_peer.0.interface, "awdl0");
    }

    /// A Mac's AWDL interface and its `llw*` companion, `llw0` with the lower index (as on
    /// the hosts that have both), beside Wi-Fi.
    fn mac(with_awdl: bool) -> Vec<Interface> {
        let mut h = vec![
            iface(
                "en0",
                4,
                InterfaceKind::WifiInfrastructure,
                &[("192.168.1.20", 24), ("fe80::20", 64)],
            ),
            iface("llw0", 9, InterfaceKind::PeerToPeer, &[("fe80::9", 64)]),
        ];
        if with_awdl {
            h.push(iface(
                "awdl0",
                11,
                InterfaceKind::PeerToPeer,
                &[("fe80::11", 64)],
            ));
        }
        h
    }

    #[test]
    fn awdl_wins_over_llw_whatever_the_indexes() {
        let h = mac(true);
        let p = choose_path(&h, PathPreference::PeerToPeer, PeerHint::default()).expect("p2p");
        assert_eq!(p.interface, "awdl0");
        assert_eq!(p.local, "[fe80::11%11]:0".parse().expect("addr"));
        // A link-local peer with no interface named: every link-local subnet holds it.
        let peer = PeerHint {
            addr: Some("fe80::77".parse().expect("v6")),
            interface: None,
        };
        let p = choose_path(&h, PathPreference::PeerToPeer, peer).expect("p2p");
        assert_eq!(p.interface, "awdl0");
        // Seen on both: the AWDL sighting.
        let both = discovered(&[("[fe80::77%9]:5000", 9), ("[fe80::78%11]:5000", 11)]);
        let (p, to) = plan_connection(&both, &h, PathPreference::PeerToPeer).expect("p2p");
        assert_eq!(
            (p.interface.as_str(), to),
            ("awdl0", "[fe80::78%11]:5000".parse().expect("a"))
        );
        // Only llw0: it is all there is.
        let h = mac(false);
        let p = choose_path(&h, PathPreference::PeerToPeer, PeerHint::default()).expect("llw");
        assert_eq!(p.interface, "llw0");
        assert_eq!(p.local, "[fe80::9%9]:0".parse().expect("addr"));
        // An AWDL interface that is down does not count.
        let mut h = mac(true);
        h[2].running = false;
        let p = choose_path(&h, PathPreference::PeerToPeer, PeerHint::default()).expect("llw");
        assert_eq!(p.interface, "llw0");
    }

    #[test]
    fn loopback_peers_use_loopback() {
        let peer = PeerHint {
            addr: Some("127.0.0.1".parse().expect("v4")),
            interface: None,
        };
        let p = choose_path(&host(), PathPreference::Automatic, peer).expect("loopback");
        assert_eq!(p.interface, "lo");
        assert_eq!(p.local, "127.0.0.1:0".parse().expect("addr"));
    }

    #[test]
    fn errors_name_what_is_missing() {
        let only_wifi = vec![iface(
            "wlan0",
            2,
            InterfaceKind::WifiInfrastructure,
            &[("192.168.1.20", 24)],
        )];
        let e = choose_path(&only_wifi, PathPreference::PeerToPeer, PeerHint::default())
            .expect_err("no p2p");
        assert_eq!(
            e.to_string(),
            "no usable peer-to-peer interface (usable interfaces: wlan0 (WifiInfrastructure))"
        );
        let peer = PeerHint {
            addr: Some("172.16.0.9".parse().expect("v4")),
            interface: None,
        };
        let e = choose_path(&only_wifi, PathPreference::Infrastructure, peer).expect_err("far");
        assert_eq!(
            e.to_string(),
            "no infrastructure interface reaches 172.16.0.9"
        );
        let mut down = only_wifi.clone();
        down[0].running = false;
        let e =
            choose_path(&down, PathPreference::Automatic, PeerHint::default()).expect_err("down");
        assert!(e.to_string().contains("usable interfaces: none"), "{e}");
        assert_eq!(
            "p2p".parse::<PathPreference>(),
            Ok(PathPreference::PeerToPeer)
        );
        assert!("wifi".parse::<PathPreference>().is_err());
        for p in [
            PathPreference::Infrastructure,
            PathPreference::PeerToPeer,
            PathPreference::Automatic,
            PathPreference::Both,
        ] {
            assert_eq!(p.to_string().parse::<PathPreference>(), Ok(p));
        }
        assert_eq!(
            "wifi".parse::<PathPreference>(),
            Err(
                "path `wifi` is unknown (expected infrastructure, peer-to-peer, auto or both)"
                    .to_owned()
            )
        );
        assert_eq!(PathPreference::default(), PathPreference::Automatic);
    }
}
