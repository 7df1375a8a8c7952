//! The Apple-only calls, kept to the few that have no portable form. Their values and the
//! decisions around them live in plain functions tested on every platform.
#![allow(unsafe_code)] // setsockopt and ioctl through libc

use std::io;
use std::os::fd::AsRawFd;

use socket2::Socket;

/// Sets `SO_NET_SERVICE_TYPE` (see [`crate::socket::TrafficClass::apple_net_service_type`]).
pub(crate) fn set_net_service_type(socket: &Socket, value: i32) -> io::Result<()> {
    let v: libc::c_int = value;
    // SAFETY: a valid descriptor, and a pointer to a c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            crate::socket::SO_NET_SERVICE_TYPE,
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
            format!("setting SO_NET_SERVICE_TYPE {value}: {e}"),
        ))
    }
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
