//! Which sockets a listener opens, so that a peer reaches it on every interface it is
//! advertised on: [`listen_plan`], and [`open_listen`] to open a plan.
//!
//! A listener in [`PathPreference::Automatic`] is advertised everywhere, AWDL included, so
//! it must be able to receive everywhere. Two facts shape that on Apple platforms:
//!
//! - AWDL carries IPv6 only (its peers are reached at IPv6 link-local addresses), so an
//!   IPv4 `0.0.0.0:port` socket never hears it. The wildcard is an IPv6 dual-stack socket,
//!   `[::]:port` with `IPV6_V6ONLY` off, which hears IPv4 (as `::ffff:a.b.c.d`) and IPv6.
//! - xnu drops a datagram that arrives on a restricted-receive interface unless the socket
//!   is bound to that interface (`IP_BOUND_IF`/`IPV6_BOUND_IF`) or has `SO_RECV_ANYIF`
//!   (`_inp_restricted_recv` in xnu's `bsd/netinet/in_pcb.c`; the lookup skips such sockets,
//!   `in6_pcblookup_hash_locked` in `bsd/netinet6/in6_pcb.c`), and every AWDL interface is
//!   restricted-receive (`IFEF_AWDL_MASK` in `bsd/net/if_private.h`).
//!
//! What each platform gets, and why:
//!
//! - **macOS**: one dual-stack `[::]:port` socket with `SO_RECV_ANYIF`
//!   ([`crate::socket::SO_RECV_ANYIF`]). One socket covers every interface, including an
//!   AWDL interface that comes up (or changes its link-local address) after the listener
//!   started. The option is in no public SDK header (xnu keeps it in
//!   `bsd/sys/socket_private.h`), but the kernel takes it from any process
//!   (`so_set_recv_anyif`, `bsd/kern/uipc_socket.c`) and mDNSResponder's own POSIX build
//!   sets it by number (`mDNSPosix/mDNSPosix.c`).
//! - **iOS, iPadOS, tvOS, visionOS, watchOS** (and Mac Catalyst, which builds against the
//!   iOS SDK): the same option is just as absent from the SDK, and an App Store app should
//!   not lean on private kernel options, so the listener binds instead: one dual-stack
//!   `[::]:port` for every unrestricted interface, plus one socket per peer-to-peer
//!   interface Bonjour advertises on, bound to it (`IPV6_BOUND_IF`) at its IPv6 link-local
//!   address. xnu hands a datagram to the socket whose local address matches exactly
//!   before a wildcard one (`in6_pcblookup_hash_locked`), so AWDL traffic goes to the bound
//!   socket. Its cost: an AWDL interface that appears later (or renumbers) is not covered
//!   until the plan is made again, so a listener's driver makes it again at every path
//!   check and opens what is new ([`crate::Relisten`], [`missing_sockets`]); the wildcard
//!   has `SO_REUSEADDR` from the start for them. `llw*` gets no socket: Bonjour never
//!   advertises there ([`crate::iface::bonjour_excludes`]).
//! - **Linux and the rest**: one dual-stack `[::]:port` socket: there are no
//!   restricted-receive interfaces, and dual-stack reaches IPv6-only peers (a link-local
//!   Wi-Fi Direct group) as well as IPv4 ones. Where the host has no IPv6 address at all (a
//!   kernel without IPv6 lists none), `0.0.0.0:port`.
//!
//! Infrastructure and peer-to-peer preferences listen on the one interface
//! [`choose_path`] picks, bound to it; a socket bound to AWDL is allowed to receive there.
//!
//! Left to the system: AWDL in "restricted mode" (`IFEF_AWDL_RESTRICTED`) refuses even a
//! bound socket unless it has `SO_AWDL_UNRESTRICTED`, which needs an entitlement
//! (`PRIV_NET_RESTRICTED_AWDL`, `sosetoptlock` in `bsd/kern/uipc_socket.c`). And with
//! `SO_RECV_ANYIF` the socket hears every restricted-receive interface, not only AWDL;
//! Tandem's sessions authenticate their peer, so a stranger there costs a dropped datagram.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::num::NonZeroU32;

use crate::iface::{Interface, InterfaceKind, bonjour_excludes};
use crate::path::{PathError, PathPreference, PeerHint, choose_path};
use crate::socket::{OpenedSocket, SocketConfig, open_udp};

/// Which operating system the listener runs on, for [`listen_plan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// macOS.
    MacOs,
    /// iOS, iPadOS, tvOS, visionOS, watchOS, and Mac Catalyst apps (the iOS SDK).
    Ios,
    /// Linux and every other system.
    Other,
}

impl Platform {
    /// The platform this build is for.
    pub const fn current() -> Platform {
        if cfg!(all(target_os = "macos", target_vendor = "apple")) {
            Platform::MacOs
        } else if cfg!(target_vendor = "apple") {
            Platform::Ios
        } else {
            Platform::Other
        }
    }
}

/// One socket of a listener: where to bind it, and how to open it (with [`open_udp`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSocket {
    /// The address to bind. Its port is the listener's; when the listener asked for port 0,
    /// every socket after the first takes the port the first one got (see [`open_listen`]).
    pub local: SocketAddr,
    /// How to open it.
    pub socket: SocketConfig,
}

/// The sockets a listener on `port` opens for `preference` on `platform`, first the one
/// that takes the port; `base` brings the buffers and traffic class, the plan sets the
/// rest (interface, dual stack, `SO_RECV_ANYIF`, `SO_REUSEADDR`). See the module docs for
/// what each platform gets and why.
///
/// [`PathPreference::Automatic`] never fails; the other preferences fail as [`choose_path`]
/// does when no interface of their kind is usable.
pub fn listen_plan(
    platform: Platform,
    interfaces: &[Interface],
    port: u16,
    preference: PathPreference,
    base: &SocketConfig,
) -> Result<Vec<ListenSocket>, PathError> {
    if preference != PathPreference::Automatic {
        let path = choose_path(interfaces, preference, PeerHint::default())?;
        let mut local = path.local;
        local.set_port(port);
        return Ok(vec![ListenSocket {
            local,
            socket: SocketConfig {
                interface: Some(path.index),
                dual_stack: false,
                receive_any_interface: false,
                reuse_address: false,
                ..base.clone()
            },
        }]);
    }
    let has_ipv6 = interfaces
        .iter()
        .any(|i| i.addrs.iter().any(|a| a.ip.is_ipv6()));
    if !has_ipv6 {
        return Ok(vec![ListenSocket {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            socket: SocketConfig {
                interface: None,
                dual_stack: false,
                receive_any_interface: false,
                reuse_address: false,
                ..base.clone()
            },
        }]);
    }
    let bound: Vec<ListenSocket> = match platform {
        Platform::Ios => interfaces
            .iter()
            .filter(|i| {
                i.kind == InterfaceKind::PeerToPeer && i.usable() && !bonjour_excludes(&i.name)
            })
            .filter_map(|i| {
                let index = NonZeroU32::new(i.index)?;
                let ip = i.addrs.iter().find_map(|a| match a.ip {
                    IpAddr::V6(v6) if a.is_link_local_v6() => Some(v6),
                    _ => None,
                })?;
                Some(ListenSocket {
                    local: SocketAddr::V6(SocketAddrV6::new(ip, port, 0, i.index)),
                    socket: SocketConfig {
                        interface: Some(index),
                        dual_stack: false,
                        receive_any_interface: false,
                        reuse_address: true,
                        ..base.clone()
                    },
                })
            })
            .collect(),
        Platform::MacOs | Platform::Other => Vec::new(),
    };
    let wildcard = ListenSocket {
        local: SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        socket: SocketConfig {
            interface: None,
            dual_stack: true,
            receive_any_interface: platform == Platform::MacOs,
            // Beside bound sockets on the same port, every one of them needs it (Linux
            // refuses the second bind unless both have it), also those a later plan adds
            // when a peer-to-peer interface comes up (see `crate::Relisten`).
            reuse_address: platform == Platform::Ios,
            ..base.clone()
        },
    };
    let mut plan = vec![wildcard];
    plan.extend(bound);
    Ok(plan)
}

/// Opens every socket of `plan` in order. With port 0 the first socket's port (the
/// kernel's choice) is used for the rest, so that the listener has one port to advertise.
/// Fails, closing what it opened, if any socket fails.
pub fn open_listen(plan: &[ListenSocket]) -> io::Result<Vec<OpenedSocket>> {
    let mut opened: Vec<OpenedSocket> = Vec::with_capacity(plan.len());
    for s in plan {
        let mut local = s.local;
        if let Some(first) = opened.first()
            && local.port() == 0
        {
            local.set_port(first.local.port());
        }
        opened.push(open_udp(local, &s.socket)?);
    }
    Ok(opened)
}

/// The sockets of `plan` that are not open yet: `open` holds each open socket's local
/// address and bound interface. A listener on the iOS family calls it when interfaces
/// change (an AWDL interface that came up, or renumbered) with a plan made again for the
/// port it has: what it returns is what to open. The port compares too, so a plan for
/// port 0 matches nothing; make it for the port the first socket took.
pub fn missing_sockets(
    plan: &[ListenSocket],
    open: &[(SocketAddr, Option<NonZeroU32>)],
) -> Vec<ListenSocket> {
    plan.iter()
        .filter(|s| {
            !open
                .iter()
                .any(|(local, interface)| *local == s.local && *interface == s.socket.interface)
        })
        .cloned()
        .collect()
}

/// `addr` as a socket bound to `local` can send to it: an IPv4 peer becomes IPv4-mapped
/// (`::ffff:a.b.c.d`) for an IPv6 (dual-stack) socket, which the system refuses to send to
/// a plain IPv4 address. Anything else is unchanged.
pub fn to_socket_family(addr: SocketAddr, local: SocketAddr) -> SocketAddr {
    match (addr, local) {
        (SocketAddr::V4(v4), SocketAddr::V6(_)) => {
            SocketAddr::V6(SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0))
        }
        _ => addr,
    }
}

/// The address a dual-stack socket reports for a peer, as the peer would name itself: an
/// IPv4-mapped address (`::ffff:a.b.c.d`) becomes plain IPv4, so that it compares equal to
/// the address discovery or the user gave. Anything else is unchanged.
pub fn canonical_peer(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), v6.port()),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::iface::test_interface as iface;
    use crate::socket::TrafficClass;

    /// A Mac or iPhone on Wi-Fi with AWDL up and an `llw0` beside it.
    fn apple_host() -> Vec<Interface> {
        vec![
            iface(
                "lo0",
                1,
                InterfaceKind::Loopback,
                &[("127.0.0.1", 8), ("::1", 128)],
            ),
            iface(
                "en0",
                4,
                InterfaceKind::WifiInfrastructure,
                &[("192.168.1.20", 24), ("fe80::20", 64)],
            ),
            iface("llw0", 9, InterfaceKind::PeerToPeer, &[("fe80::9", 64)]),
            iface("awdl0", 11, InterfaceKind::PeerToPeer, &[("fe80::b", 64)]),
        ]
    }

    fn base() -> SocketConfig {
        SocketConfig {
            traffic: TrafficClass::ResponsiveAv,
            ..SocketConfig::default()
        }
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn the_platform_is_chosen_by_the_build() {
        let expected = if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(target_vendor = "apple") {
            Platform::Ios
        } else {
            Platform::Other
        };
        assert_eq!(Platform::current(), expected);
        #[cfg(target_os = "linux")]
        assert_eq!(Platform::current(), Platform::Other);
    }

    #[test]
    fn macos_listens_once_dual_stack_with_recv_anyif() {
        let plan = listen_plan(
            Platform::MacOs,
            &apple_host(),
            7000,
            PathPreference::Automatic,
            &base(),
        )
        .expect("plan");
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert_eq!(plan[0].local, addr("[::]:7000"));
        let s = &plan[0].socket;
        assert!(s.dual_stack && s.receive_any_interface);
        assert_eq!(s.interface, None);
        assert!(!s.reuse_address, "nothing shares its port");
        assert_eq!(s.traffic, TrafficClass::ResponsiveAv, "the base is kept");
    }

    #[test]
    fn ios_binds_a_socket_to_each_advertised_peer_to_peer_interface() {
        let plan = listen_plan(
            Platform::Ios,
            &apple_host(),
            7000,
            PathPreference::Automatic,
            &base(),
        )
        .expect("plan");
        let locals: Vec<SocketAddr> = plan.iter().map(|s| s.local).collect();
        // The wildcard first (it takes the port), then AWDL; llw0 is not advertised on.
        assert_eq!(locals, vec![addr("[::]:7000"), addr("[fe80::b%11]:7000")]);
        let (wild, awdl) = (&plan[0].socket, &plan[1].socket);
        assert!(wild.dual_stack && !wild.receive_any_interface && wild.reuse_address);
        assert_eq!(wild.interface, None);
        assert!(!awdl.dual_stack && !awdl.receive_any_interface && awdl.reuse_address);
        assert_eq!(awdl.interface, NonZeroU32::new(11));
        assert_eq!(awdl.traffic, TrafficClass::ResponsiveAv);
        // AWDL down, or without its link-local address yet: the wildcard alone.
        let breaks: [fn(&mut Interface); 2] = [|i| i.running = false, |i| i.addrs.clear()];
        for broken in breaks {
            let mut host = apple_host();
            broken(&mut host[3]);
            let plan = listen_plan(
                Platform::Ios,
                &host,
                7000,
                PathPreference::Automatic,
                &base(),
            )
            .expect("plan");
            assert_eq!(plan.len(), 1, "{plan:?}");
            // Ready for the bound sockets a later plan adds when AWDL comes up.
            assert!(plan[0].socket.reuse_address);
        }
    }

    #[test]
    fn linux_listens_dual_stack_or_ipv4_without_ipv6() {
        let linux = vec![
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
                &[("10.0.0.2", 24)],
            ),
            iface(
                "p2p-wlan0-0",
                3,
                InterfaceKind::PeerToPeer,
                &[("fe80::3", 64)],
            ),
        ];
        let plan = listen_plan(
            Platform::Other,
            &linux,
            0,
            PathPreference::Automatic,
            &base(),
        )
        .expect("plan");
        assert_eq!(plan.len(), 1, "no restricted interfaces to bind: {plan:?}");
        assert_eq!(plan[0].local, addr("[::]:0"));
        assert!(plan[0].socket.dual_stack);
        assert!(!plan[0].socket.receive_any_interface);
        let v4_only: Vec<Interface> = vec![
            iface("lo", 1, InterfaceKind::Loopback, &[("127.0.0.1", 8)]),
            iface("eth0", 2, InterfaceKind::Wired, &[("10.0.0.2", 24)]),
        ];
        for platform in [Platform::Other, Platform::MacOs, Platform::Ios] {
            let plan = listen_plan(platform, &v4_only, 5000, PathPreference::Automatic, &base())
                .expect("plan");
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].local, addr("0.0.0.0:5000"));
            assert!(!plan[0].socket.dual_stack);
        }
    }

    #[test]
    fn a_preference_listens_on_its_interface_bound() {
        for platform in [Platform::MacOs, Platform::Ios, Platform::Other] {
            let plan = listen_plan(
                platform,
                &apple_host(),
                7000,
                PathPreference::PeerToPeer,
                &base(),
            )
            .expect("p2p");
            assert_eq!(plan.len(), 1);
            assert_eq!(plan[0].local, addr("[fe80::b%11]:7000"), "AWDL, not llw0");
            assert_eq!(plan[0].socket.interface, NonZeroU32::new(11));
            assert!(!plan[0].socket.dual_stack && !plan[0].socket.receive_any_interface);
            let plan = listen_plan(
                platform,
                &apple_host(),
                7000,
                PathPreference::Infrastructure,
                &base(),
            )
            .expect("infrastructure");
            assert_eq!(plan[0].local, addr("192.168.1.20:7000"));
            assert_eq!(plan[0].socket.interface, NonZeroU32::new(4));
        }
        let wifi_only = vec![apple_host().remove(1)];
        let e = listen_plan(
            Platform::Ios,
            &wifi_only,
            7000,
            PathPreference::PeerToPeer,
            &base(),
        )
        .expect_err("no AWDL");
        assert!(matches!(e, PathError::NoInterface { .. }), "{e}");
    }

    #[test]
    fn addresses_cross_the_dual_stack_boundary_both_ways() {
        let wild = addr("[::]:7000");
        assert_eq!(
            to_socket_family(addr("192.168.1.9:5000"), wild),
            addr("[::ffff:192.168.1.9]:5000")
        );
        assert_eq!(
            to_socket_family(addr("[fe80::1%11]:5000"), wild),
            addr("[fe80::1%11]:5000")
        );
        assert_eq!(
            to_socket_family(addr("192.168.1.9:5000"), addr("0.0.0.0:7000")),
            addr("192.168.1.9:5000")
        );
        assert_eq!(
            canonical_peer(addr("[::ffff:192.168.1.9]:5000")),
            addr("192.168.1.9:5000")
        );
        assert_eq!(canonical_peer(addr("[::1]:5000")), addr("[::1]:5000"));
        assert_eq!(
            canonical_peer(addr("[fe80::1%11]:5000")),
            addr("[fe80::1%11]:5000")
        );
        for a in ["10.0.0.1:1", "[fd00::1]:2", "[fe80::1%3]:3"] {
            assert_eq!(canonical_peer(to_socket_family(addr(a), wild)), addr(a));
        }
    }

    #[test]
    fn a_replan_opens_only_what_is_new() {
        let base = SocketConfig::default();
        let mut host = apple_host();
        let first = listen_plan(Platform::Ios, &host, 5000, PathPreference::Automatic, &base)
            .expect("plan");
        let open: Vec<_> = first
            .iter()
            .map(|s| (s.local, s.socket.interface))
            .collect();
        assert!(missing_sockets(&first, &open).is_empty());
        // AWDL renumbers (a new link-local address after it came up again).
        let awdl = host.iter_mut().find(|i| i.name == "awdl0").expect("awdl0");
        awdl.addrs[0].ip = "fe80::c".parse().expect("ip");
        let again = listen_plan(Platform::Ios, &host, 5000, PathPreference::Automatic, &base)
            .expect("plan");
        let new = missing_sockets(&again, &open);
        assert_eq!(new.len(), 1, "{new:?}");
        assert_eq!(new[0].local, addr("[fe80::c%11]:5000"));
        assert_eq!(new[0].socket.interface, NonZeroU32::new(11));
        // macOS and Linux plans are one wildcard: nothing new, whatever the interfaces do.
        for platform in [Platform::MacOs, Platform::Other] {
            let plan =
                listen_plan(platform, &host, 5000, PathPreference::Automatic, &base).expect("plan");
            let open: Vec<_> = plan.iter().map(|s| (s.local, s.socket.interface)).collect();
            assert!(missing_sockets(&plan, &open).is_empty());
        }
    }
}
