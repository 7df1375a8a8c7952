//! `open_udp`: the UDP socket a session runs on, with large buffers, its traffic class and,
//! when a path was chosen, bound to that path's interface.
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
}

impl Default for SocketConfig {
    fn default() -> Self {
        SocketConfig {
            recv_buffer: 4 << 20,
            send_buffer: 1 << 20,
            traffic: TrafficClass::default(),
            interface: None,
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

/// Opens a non-blocking UDP socket bound to `local` with `config`'s buffers, traffic class
/// and interface binding. Each failing step's error says which step failed.
pub fn open_udp(local: SocketAddr, config: &SocketConfig) -> io::Result<OpenedSocket> {
    let domain = Domain::for_address(local);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| context(e, "creating a UDP socket".into()))?;
    if local.is_ipv6() {
        // A v6 socket carries only v6: a dual-stack socket would make the traffic class and
        // interface binding depend on which family a datagram used.
        socket
            .set_only_v6(true)
            .map_err(|e| context(e, "setting IPV6_V6ONLY".into()))?;
    }
    socket
        .set_nonblocking(true)
        .map_err(|e| context(e, "setting non-blocking".into()))?;
    // Buffer sizes are requests: a smaller grant is reported, not an error.
    let _ = socket.set_recv_buffer_size(config.recv_buffer);
    let _ = socket.set_send_buffer_size(config.send_buffer);
    set_traffic_class(&socket, local, config.traffic)?;
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
fn set_traffic_class(socket: &Socket, local: SocketAddr, class: TrafficClass) -> io::Result<()> {
    let tos = tos_byte(class.dscp());
    let result = if local.is_ipv6() {
        socket.set_tclass_v6(tos)
    } else {
        socket.set_tos_v4(tos)
    };
    result.map_err(|e| context(e, format!("setting traffic class {tos:#x}")))
}

#[cfg(target_vendor = "apple")]
fn set_traffic_class(socket: &Socket, _local: SocketAddr, class: TrafficClass) -> io::Result<()> {
    crate::apple::set_net_service_type(socket, class.apple_net_service_type())
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
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = SocketConfig::default();
        assert_eq!(c.recv_buffer, 4 << 20);
        assert_eq!(c.send_buffer, 1 << 20);
        assert_eq!(c.traffic, TrafficClass::InteractiveVideo);
        assert_eq!(c.interface, None);
    }
}
