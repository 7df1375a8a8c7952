//! `open_udp`: the UDP socket a session runs on, with large buffers, its traffic class and,
//! when a path was chosen, bound to that path's interface; for a listener, also dual-stack
//! and open to restricted-receive interfaces (see [`crate::listen`] for which sockets a
//! listener opens).
//!
//! Traffic class: interactive video must not queue behind bulk traffic on the Wi-Fi
//! access point or the host. Elsewhere that is DSCP AF41 (RFC 4594's class for interactive
//! video, codepoint 34) in the IPv4 TOS byte or IPv6 traffic class; on Apple platforms the
//! system maps `SO_NET_SERVICE_TYPE` to its Wi-Fi access categories itself, so Tandem sets
//! that instead (see [`TrafficClass`]).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroU32;

use socket2::{Domain, Protocol, Socket, Type};

/// DSCP AF41: interactive video (RFC 4594).
pub const DSCP_AF41: u8 = 34;

/// The IPv4 TOS / IPv6 traffic-class byte for a DSCP: the DSCP in the upper six bits, ECN
/// bits left zero.
pub const fn tos_byte(dscp: u8) -> u32 {
    (dscp as u32) << 2
}

/// What the traffic is, for the network's queueing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrafficClass {
    /// Camera or game video. The default.
    #[default]
    InteractiveVideo,
    /// Screen sharing / mirroring.
    ResponsiveAv,
}

impl TrafficClass {
    /// The DSCP set outside Apple platforms (both classes are AF41: neither has a better
    /// standard codepoint that home routers honour).
    pub const fn dscp(self) -> u8 {
        DSCP_AF41
    }

    /// The `SO_NET_SERVICE_TYPE` value on Apple platforms: `NET_SERVICE_TYPE_VI` (3) for
    /// interactive video, `NET_SERVICE_TYPE_RV` (5) for responsive audio/video (values from
    /// Apple's `<sys/socket.h>`).
    pub const fn apple_net_service_type(self) -> i32 {
        match self {
            TrafficClass::InteractiveVideo => 3,
            TrafficClass::ResponsiveAv => 5,
        }
    }
}

/// `SO_NET_SERVICE_TYPE` on Apple platforms (`<sys/socket.h>`).
pub const SO_NET_SERVICE_TYPE: i32 = 0x1116;

/// `SO_RECV_ANYIF` on Apple platforms: "unrestricted inbound processing". Source: xnu
/// `bsd/sys/socket_private.h` (earlier releases: `bsd/sys/socket.h` inside `#ifdef
/// PRIVATE`), so no public SDK header defines it, macOS's included; the kernel takes it
/// from any process (`so_set_recv_anyif` in `bsd/kern/uipc_socket.c` checks no privilege).
/// With it, `_inp_restricted_recv` (`bsd/netinet/in_pcb.c`) lets a socket receive on an
/// interface flagged `IFEF_RESTRICTED_RECV`, which every AWDL interface is
/// (`IFEF_AWDL_MASK` in `bsd/net/if_private.h`); mDNSResponder sets it on its own
/// multicast sockets for that reason (`SetupSocket` in `mDNSMacOSX/mDNSMacOSX.c`).
pub const SO_RECV_ANYIF: i32 = 0x1104;

/// Socket settings. [`SocketConfig::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// Receive buffer requested, bytes. Default 4 MiB: a 60 fps keyframe burst plus an AWDL
    /// stall's backlog (about 100 ms at 50 Mbit/s is 625 kB) with room to spare. The kernel
    /// may grant less (Linux caps it at `net.core.rmem_max`); [`OpenedSocket`] says what was
    /// granted.
    pub recv_buffer: usize,
    /// Send buffer requested, bytes. Default 1 MiB: the pacer keeps the queue short, this only
    /// absorbs a keyframe handed over at once.
    pub send_buffer: usize,
    /// Traffic class. Default [`TrafficClass::InteractiveVideo`].
    pub traffic: TrafficClass,
    /// Interface index to bind to (`SO_BINDTOIFINDEX` on Linux, `IP_BOUND_IF`/`IPV6_BOUND_IF`
    /// on Apple). Default `None`: the routing table decides.
    pub interface: Option<NonZeroU32>,
    /// For an IPv6 address: carry IPv4 as well (`IPV6_V6ONLY` off), so that `[::]:port`
    /// receives from IPv4 peers (as IPv4-mapped addresses, `::ffff:a.b.c.d`) and IPv6 ones,
    /// link-local included. Ignored for an IPv4 address. Default `false`: an IPv6 socket
    /// carries IPv6 only, as a session bound to one path wants. On a dual-stack socket the
    /// traffic class is set for both families (IPv6 traffic class and IPv4 TOS; Apple's
    /// `SO_NET_SERVICE_TYPE` covers both anyway).
    pub dual_stack: bool,
    /// Receive on restricted-receive interfaces (AWDL) without being bound to them:
    /// `SO_RECV_ANYIF` ([`SO_RECV_ANYIF`]) on Apple. A no-op elsewhere: Linux and the other
    /// systems have no restricted-receive interfaces, a socket there hears every interface
    /// its address allows. Default `false`.
    pub receive_any_interface: bool,
    /// `SO_REUSEADDR`: bind the port even though another socket of the same listener holds
    /// it on another address (a wildcard `[::]:port` beside `[fe80::1%awdl0]:port`). xnu
    /// (`in6_pcbbind` in `bsd/netinet6/in6_pcb.c`) and Linux both refuse that second bind
    /// without it. Default `false`.
    pub reuse_address: bool,
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            recv_buffer: 4 << 20,
            send_buffer: 1 << 20,
            traffic: TrafficClass::default(),
            interface: None,
            dual_stack: false,
            receive_any_interface: false,
            reuse_address: false,
        }
    }
}

/// A socket opened by [`open_udp`], with what the kernel granted.
#[derive(Debug)]
pub struct OpenedSocket {
    /// The socket, non-blocking.
    pub socket: UdpSocket,
    /// The address it is bound to (with the port the kernel chose for port 0).
    pub local: SocketAddr,
    /// Receive buffer granted, bytes (Linux reports double the usable size).
    pub recv_buffer: usize,
    /// Send buffer granted, bytes.
    pub send_buffer: usize,
}

fn context(e: io::Error, what: String) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Opens a non-blocking UDP socket bound to `local` with `config`'s buffers, traffic class,
/// interface binding, dual stack, `SO_RECV_ANYIF` and `SO_REUSEADDR`. Each failing step's
/// error says which step failed.
pub fn open_udp(local: SocketAddr, config: &SocketConfig) -> io::Result<OpenedSocket> {
    let domain = Domain::for_address(local);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| context(e, "creating a UDP socket".into()))?;
    let dual_stack = local.is_ipv6() && config.dual_stack;
    if local.is_ipv6() {
        // Set either way: the system default differs (Linux's net.ipv6.bindv6only, 0 on most
        // distributions; xnu's net.inet6.ip6.v6only).
        socket
            .set_only_v6(!dual_stack)
            .map_err(|e| context(e, format!("setting IPV6_V6ONLY {}", !dual_stack)))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| context(e, "setting non-blocking".into()))?;
    if config.reuse_address {
        socket
            .set_reuse_address(true)
            .map_err(|e| context(e, "setting SO_REUSEADDR".into()))?;
    }
    // Buffer sizes are requests: a smaller grant is reported, not an error.
    let _ = socket.set_recv_buffer_size(config.recv_buffer);
    let _ = socket.set_send_buffer_size(config.send_buffer);
    set_traffic_class(&socket, local, dual_stack, config.traffic)?;
    if config.receive_any_interface {
        set_receive_any_interface(&socket)?;
    }
    if let Some(index) = config.interface {
        bind_interface(&socket, local, index)?;
    }
    socket
        .bind(&local.into())
        .map_err(|e| context(e, format!("binding to {local}")))?;
    let bound = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound address is not an IP socket address"))?;
    Ok(OpenedSocket {
        recv_buffer: socket.recv_buffer_size()?,
        send_buffer: socket.send_buffer_size()?,
        local: bound,
        socket: socket.into(),
    })
}

#[cfg(not(target_vendor = "apple"))]
fn set_traffic_class(
    socket: &Socket,
    local: SocketAddr,
    dual_stack: bool,
    class: TrafficClass,
) -> io::Result<()> {
    let tos = tos_byte(class.dscp());
    let result = if local.is_ipv6() {
        socket.set_tclass_v6(tos)
    } else {
        socket.set_tos_v4(tos)
    };
    result.map_err(|e| context(e, format!("setting traffic class {tos:#x}")))?;
    if dual_stack {
        // IPv4 datagrams of a dual-stack socket take the IPv4 TOS (Linux takes IP_TOS on an
        // IPv6 UDP socket for exactly these). A system that refuses it still sends, unmarked.
        if let Err(e) = socket.set_tos_v4(tos) {
            tracing::debug!(%e, "IP_TOS on a dual-stack socket refused; IPv4 goes unmarked");
        }
    }
    Ok(())
}

#[cfg(target_vendor = "apple")]
fn set_traffic_class(
    socket: &Socket,
    _local: SocketAddr,
    _dual_stack: bool,
    class: TrafficClass,
) -> io::Result<()> {
    // One socket-level option, whatever the family of each datagram.
    crate::apple::set_net_service_type(socket, class.apple_net_service_type())
}

#[cfg(target_vendor = "apple")]
fn set_receive_any_interface(socket: &Socket) -> io::Result<()> {
    crate::apple::set_recv_any_interface(socket, true)
}

/// No restricted-receive interfaces outside Apple: nothing to lift.
#[cfg(not(target_vendor = "apple"))]
fn set_receive_any_interface(_socket: &Socket) -> io::Result<()> {
    Ok(())
}

/// Binds `socket` to interface `index` for `local`'s family.
fn bind_interface(socket: &Socket, local: SocketAddr, index: NonZeroU32) -> io::Result<()> {
    // Linux accepts SO_BINDTOIFINDEX for an index that does not exist (the socket then
    // reaches nothing); a vanished interface must be an error here instead. (nix's
    // `if_indextoname` misses libc's null return, so the list is searched.)
    #[cfg(unix)]
    if !nix::net::if_::if_nameindex().is_ok_and(|l| l.iter().any(|i| i.index() == index.get())) {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("binding to interface index {index}: no such interface"),
        ));
    }
    let result = if local.is_ipv6() {
        socket.bind_device_by_index_v6(Some(index))
    } else {
        socket.bind_device_by_index_v4(Some(index))
    };
    result.map_err(|e| context(e, format!("binding to interface index {index}")))
}

/// The traffic-class byte a socket carries (IPv4 TOS or IPv6 traffic class), read back from
/// the kernel.
#[cfg(not(target_vendor = "apple"))]
pub fn traffic_class_of(socket: &UdpSocket) -> io::Result<u32> {
    let s = socket2::SockRef::from(socket);
    if socket.local_addr()?.is_ipv6() {
        s.tclass_v6()
    } else {
        s.tos_v4()
    }
}

/// The interface index a socket is bound to, read back from the kernel.
pub fn bound_interface_of(socket: &UdpSocket) -> io::Result<Option<NonZeroU32>> {
    let s = socket2::SockRef::from(socket);
    if socket.local_addr()?.is_ipv6() {
        s.device_index_v6()
    } else {
        s.device_index_v4()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn af41_is_0x88_in_the_tos_byte() {
        assert_eq!(tos_byte(DSCP_AF41), 0x88);
        assert_eq!(TrafficClass::default(), TrafficClass::InteractiveVideo);
        assert_eq!(TrafficClass::InteractiveVideo.apple_net_service_type(), 3);
        assert_eq!(TrafficClass::ResponsiveAv.apple_net_service_type(), 5);
        assert_eq!(SO_NET_SERVICE_TYPE, 0x1116);
        assert_eq!(SO_RECV_ANYIF, 0x1104);
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = SocketConfig::default();
        assert_eq!(c.recv_buffer, 4 << 20);
        assert_eq!(c.send_buffer, 1 << 20);
        assert_eq!(c.traffic, TrafficClass::InteractiveVideo);
        assert_eq!(c.interface, None);
        assert!(
            !c.dual_stack,
            "an IPv6 socket carries IPv6 only unless asked"
        );
        assert!(!c.receive_any_interface);
        assert!(!c.reuse_address);
    }

    #[test]
    fn the_new_options_are_honoured_or_harmless() {
        // Outside Apple SO_RECV_ANYIF is a no-op: asking for it still opens the socket.
        let config = SocketConfig {
            receive_any_interface: true,
            reuse_address: true,
            ..SocketConfig::default()
        };
        let opened = open_udp("127.0.0.1:0".parse().expect("v4"), &config).expect("opens");
        let s = socket2::SockRef::from(&opened.socket);
        assert!(s.reuse_address().expect("SO_REUSEADDR"));
        // An IPv4 address ignores dual_stack.
        let v4 = SocketConfig {
            dual_stack: true,
            ..SocketConfig::default()
        };
        assert!(open_udp("127.0.0.1:0".parse().expect("v4"), &v4).is_ok());
    }
}
