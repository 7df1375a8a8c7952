//! Network interfaces: enumeration with addresses, index and MTU, and classification into
//! loopback, wired, Wi-Fi infrastructure, peer-to-peer and other.
//!
//! Classification uses what the system says about an interface (loopback flag; on Linux,
//! sysfs: a `wireless` or `phy80211` entry means Wi-Fi, ARP type 1 with a backing `device`
//! means a wired NIC), never a list of names. The one exception is peer-to-peer Wi-Fi,
//! which no portable API identifies: [`peer_to_peer_by_name`] holds those conventions in
//! one place. An app that knows better passes overrides (name → kind), which win.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;

/// What kind of link an interface is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InterfaceKind {
    /// The host itself.
    Loopback,
    /// Ethernet with a physical device behind it.
    Wired,
    /// Wi-Fi associated with an access point.
    WifiInfrastructure,
    /// Peer-to-peer Wi-Fi: AWDL on Apple platforms, Wi-Fi Direct elsewhere.
    PeerToPeer,
    /// Anything else: tunnels, bridges, virtual Ethernet, unknown.
    Other,
}

/// One address of an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterfaceAddr {
    /// The address.
    pub ip: IpAddr,
    /// Prefix length of its netmask.
    pub prefix_len: u8,
}

impl InterfaceAddr {
    /// Whether `other` is on this address's subnet.
    pub fn contains(&self, other: IpAddr) -> bool {
        match (self.ip, other) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let bits = u32::from(self.prefix_len.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let bits = u32::from(self.prefix_len.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }

    /// Whether this is an IPv6 link-local address (`fe80::/10`), usable only with the
    /// interface as scope.
    pub fn is_link_local_v6(&self) -> bool {
        is_link_local_v6(self.ip)
    }
}

/// Whether `ip` is an IPv6 link-local address (`fe80::/10`), usable only with an interface
/// as scope.
pub fn is_link_local_v6(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(a) if a.segments()[0] & 0xffc0 == 0xfe80)
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// System name.
    pub name: String,
    /// Index (the scope id of its IPv6 link-local addresses).
    pub index: u32,
    /// MTU, when the system says.
    pub mtu: Option<u32>,
    /// Administratively up.
    pub up: bool,
    /// Link up (carrier).
    pub running: bool,
    /// Supports multicast (mDNS needs it).
    pub multicast: bool,
    /// Addresses, IPv4 and IPv6.
    pub addrs: Vec<InterfaceAddr>,
    /// Classification.
    pub kind: InterfaceKind,
}

impl Interface {
    /// Whether the interface can carry traffic now.
    pub fn usable(&self) -> bool {
        self.up && self.running && !self.addrs.is_empty()
    }
}

/// What the system says about an interface, the input to [`classify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceFacts {
    /// System name.
    pub name: String,
    /// The loopback flag is set.
    pub loopback: bool,
    /// The system says it is Wi-Fi.
    pub wireless: bool,
    /// Ethernet framing (ARP hardware type 1).
    pub ethernet: bool,
    /// A physical device backs it (not a veth, bridge, tunnel or other software device).
    pub physical: bool,
}

/// The peer-to-peer naming conventions, the only names Tandem interprets:
/// - Apple: `awdl*` (Apple Wireless Direct Link) and `llw*` (its low-latency companion);
/// - Linux: `p2p-*` (wpa_supplicant's Wi-Fi Direct group interfaces).
///
/// No API identifies these links; the conventions come from the platforms' own tools
/// (`ifconfig` on macOS, wpa_supplicant's group naming).
pub fn peer_to_peer_by_name(name: &str) -> bool {
    name.starts_with("awdl") || name.starts_with("llw") || name.starts_with("p2p-")
}

/// Among peer-to-peer interfaces, how much a session likes this one (lower is better):
/// `llw*` comes after every other. Apple's Bonjour never uses `llw*` ("llw0 interface is
/// excluded from Bonjour discovery", `isExcludedInterface` in mDNSResponder's
/// `mDNSMacOSX/mDNSMacOSX.c`), so no peer advertises there and the AWDL interface beside it
/// is the one to bind; `llw*` is kept only for a host that has nothing else.
pub fn peer_to_peer_rank(name: &str) -> u8 {
    u8::from(name.starts_with("llw"))
}

/// Whether Apple's Bonjour leaves this interface out (see [`peer_to_peer_rank`]): a service
/// registered with peer-to-peer allowed is never advertised there.
pub fn bonjour_excludes(name: &str) -> bool {
    name.starts_with("llw")
}

/// The indexes of the interfaces [`peer_to_peer_by_name`] names, as the system lists them
/// now (none if it will not say).
pub fn peer_to_peer_indexes() -> Vec<u32> {
    nix::net::if_::if_nameindex()
        .map(|list| {
            list.iter()
                .filter(|i| i.name().to_str().is_ok_and(peer_to_peer_by_name))
                .map(|i| i.index())
                .collect()
        })
        .unwrap_or_default()
}

/// Classifies an interface from its facts (see the module docs for the rules).
pub fn classify(facts: &InterfaceFacts) -> InterfaceKind {
    if facts.loopback {
        InterfaceKind::Loopback
    } else if peer_to_peer_by_name(&facts.name) {
        InterfaceKind::PeerToPeer
    } else if facts.wireless {
        InterfaceKind::WifiInfrastructure
    } else if facts.ethernet && facts.physical {
        InterfaceKind::Wired
    } else {
        InterfaceKind::Other
    }
}

/// Classification overrides an app supplies: interface name → kind.
pub type KindOverrides = HashMap<String, InterfaceKind>;

#[cfg(target_os = "linux")]
fn system_facts(name: &str, loopback: bool) -> (InterfaceFacts, Option<u32>) {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).ok();
    let facts = InterfaceFacts {
        name: name.to_owned(),
        loopback,
        wireless: dir.join("wireless").exists() || dir.join("phy80211").exists(),
        ethernet: read("type").is_some_and(|t| t.trim() == "1"),
        physical: dir.join("device").exists(),
    };
    let mtu = read("mtu").and_then(|m| m.trim().parse().ok());
    (facts, mtu)
}

#[cfg(target_vendor = "apple")]
fn system_facts(name: &str, loopback: bool) -> (InterfaceFacts, Option<u32>) {
    // Apple offers no sysfs; Wi-Fi vs wired needs SystemConfiguration, which apps use to
    // pass overrides. Without one, an `en*` interface is "Other".
    let facts = InterfaceFacts {
        name: name.to_owned(),
        loopback,
        ..InterfaceFacts::default()
    };
    (facts, crate::apple::interface_mtu(name))
}

#[cfg(not(any(target_os = "linux", target_vendor = "apple")))]
fn system_facts(name: &str, loopback: bool) -> (InterfaceFacts, Option<u32>) {
    let facts = InterfaceFacts {
        name: name.to_owned(),
        loopback,
        ..InterfaceFacts::default()
    };
    (facts, None)
}

fn prefix_len(mask: Option<IpAddr>) -> u8 {
    match mask {
        Some(IpAddr::V4(m)) => u32::from(m).count_ones() as u8,
        Some(IpAddr::V6(m)) => u128::from(m).count_ones() as u8,
        None => 0,
    }
}

fn ip_of(addr: &nix::sys::socket::SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(IpAddr::V4(v4.ip()));
    }
    addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
}

/// Lists the system's interfaces, classified, with `overrides` applied.
pub fn interfaces(overrides: &KindOverrides) -> io::Result<Vec<Interface>> {
    use nix::net::if_::InterfaceFlags;
    let mut out: Vec<Interface> = Vec::new();
    for entry in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let pos = match out.iter().position(|i| i.name == entry.interface_name) {
            Some(p) => p,
            None => {
                let name = entry.interface_name.clone();
                let index = nix::net::if_::if_nametoindex(name.as_str()).unwrap_or(0);
                let loopback = entry.flags.contains(InterfaceFlags::IFF_LOOPBACK);
                let (facts, mtu) = system_facts(&name, loopback);
                let kind = overrides
                    .get(&name)
                    .copied()
                    .unwrap_or_else(|| classify(&facts));
                out.push(Interface {
                    name,
                    index,
                    mtu,
                    up: entry.flags.contains(InterfaceFlags::IFF_UP),
                    running: entry.flags.contains(InterfaceFlags::IFF_RUNNING),
                    multicast: entry.flags.contains(InterfaceFlags::IFF_MULTICAST),
                    addrs: Vec::new(),
                    kind,
                });
                out.len() - 1
            }
        };
        if let Some(ip) = entry.address.as_ref().and_then(ip_of) {
            let prefix = prefix_len(entry.netmask.as_ref().and_then(ip_of));
            out[pos].addrs.push(InterfaceAddr {
                ip,
                prefix_len: prefix,
            });
        }
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// An interface for tests elsewhere in the crate: up, running, MTU 1500.
#[cfg(test)]
pub(crate) fn test_interface(
    name: &str,
    index: u32,
    kind: InterfaceKind,
    addrs: &[(&str, u8)],
) -> Interface {
    Interface {
        name: name.into(),
        index,
        mtu: Some(1500),
        up: true,
        running: true,
        multicast: true,
        addrs: addrs
            .iter()
            .map(|(a, p)| InterfaceAddr {
                ip: a.parse().expect("address"),
                prefix_len: *p,
            })
            .collect(),
        kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(name: &str) -> InterfaceFacts {
        InterfaceFacts {
            name: name.into(),
            ..InterfaceFacts::default()
        }
    }

    #[test]
    fn classification_rules() {
        let lo = InterfaceFacts {
            loopback: true,
            ..facts("lo")
        };
        assert_eq!(classify(&lo), InterfaceKind::Loopback);
        let wifi = InterfaceFacts {
            wireless: true,
            ethernet: true,
            physical: true,
            ..facts("wlp2s0")
        };
        assert_eq!(classify(&wifi), InterfaceKind::WifiInfrastructure);
        let nic = InterfaceFacts {
            ethernet: true,
            physical: true,
            ..facts("enp3s0")
        };
        assert_eq!(classify(&nic), InterfaceKind::Wired);
        let veth = InterfaceFacts {
            ethernet: true,
            ..facts("veth0")
        };
        assert_eq!(classify(&veth), InterfaceKind::Other);
        // Peer-to-peer names win over the Wi-Fi facts they also carry.
        for name in ["awdl0", "llw0", "p2p-wlan0-0"] {
            let p2p = InterfaceFacts {
                wireless: true,
                ..facts(name)
            };
            assert_eq!(classify(&p2p), InterfaceKind::PeerToPeer, "{name}");
        }
        assert!(!peer_to_peer_by_name("en0"));
        assert!(!peer_to_peer_by_name("wlan0"));
        // AWDL before its low-latency companion; Bonjour skips the latter.
        assert!(peer_to_peer_rank("awdl0") < peer_to_peer_rank("llw0"));
        assert_eq!(peer_to_peer_rank("p2p-wlan0-0"), peer_to_peer_rank("awdl0"));
        assert!(bonjour_excludes("llw0"));
        assert!(!bonjour_excludes("awdl0"));
    }

    #[test]
    fn subnet_membership() {
        let a = InterfaceAddr {
            ip: "192.168.1.20".parse().expect("v4"),
            prefix_len: 24,
        };
        assert!(a.contains("192.168.1.200".parse().expect("v4")));
        assert!(!a.contains("192.168.2.1".parse().expect("v4")));
        assert!(!a.contains("fe80::1".parse().expect("v6")));
        let ll = InterfaceAddr {
            ip: "fe80::1234".parse().expect("v6"),
            prefix_len: 64,
        };
        assert!(ll.is_link_local_v6());
        assert!(ll.contains("fe80::9".parse().expect("v6")));
        let any = InterfaceAddr {
            ip: "10.0.0.1".parse().expect("v4"),
            prefix_len: 0,
        };
        assert!(any.contains("8.8.8.8".parse().expect("v4")));
    }
}
