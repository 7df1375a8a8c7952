//! The Apple-only calls, kept to the few that have no portable form. Their values and the
//! decisions around them live in plain functions tested on every platform.
#![allow(unsafe_code)] // setsockopt and ioctl through libc

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// Sets the `SOL_SOCKET`-level int option `name` to `value`; `what` names it in the error.
fn set_socket_int(socket: &Socket, name: libc::c_int, value: i32, what: &str) -> io::Result<()> {
    let v: libc::c_int = value;
    // SAFETY: a valid descriptor, and a pointer to a c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::last_os_error();
        Err(io::Error::new(
            e.kind(),
            format!("setting {what} {value}: {e}"),
        ))
    }
}

/// Sets `SO_NET_SERVICE_TYPE` (see [`crate::socket::TrafficClass::apple_net_service_type`]).
pub(crate) fn set_net_service_type(socket: &Socket, value: i32) -> io::Result<()> {
    set_socket_int(
        socket,
        crate::socket::SO_NET_SERVICE_TYPE,
        value,
        "SO_NET_SERVICE_TYPE",
    )
}

/// Sets `SO_RECV_ANYIF` (see [`crate::socket::SO_RECV_ANYIF`] for its source): the socket
/// then receives on restricted-receive interfaces such as AWDL without being bound to them.
/// xnu takes an int, non-zero for on (`so_set_recv_anyif` in `bsd/kern/uipc_socket.c`).
pub(crate) fn set_recv_any_interface(socket: &Socket, on: bool) -> io::Result<()> {
    set_socket_int(
        socket,
        crate::socket::SO_RECV_ANYIF,
        i32::from(on),
        "SO_RECV_ANYIF",
    )
}

/// The MTU of interface `name` (`SIOCGIFMTU`), or `None` if the kernel will not say.
pub(crate) fn interface_mtu(name: &str) -> Option<u32> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // SAFETY: ifreq is plain data; zeroed is a valid empty request.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return None;
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = *src as libc::c_char;
    }
    // SAFETY: a valid descriptor and a NUL-terminated interface name in a writable ifreq.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFMTU, &mut req) };
    if rc != 0 {
        return None;
    }
    // SAFETY: after SIOCGIFMTU succeeds the union holds the MTU.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).ok()
}
