//! A UDP socket as one of the driver's paths: the socket, its batched sends, and the check
//! that notices when its interface or address goes away.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::owner::Role;
use crate::batch::BatchSender;
use crate::iface::Interface;
use crate::socket::{OpenedSocket, SocketConfig};
use crate::watch::{PathStatus, path_status};

/// One socket the driver receives on and may send from.
pub(super) struct UdpPath {
    pub(super) socket: UdpSocket,
    pub(super) local: SocketAddr,
    pub(super) batch: BatchSender,
    pub(super) watch: PathWatch,
    /// The session path(s) its datagrams belong to.
    pub(super) role: Role,
    /// The kernel refused a send for want of buffer room: wait until the socket is
    /// writable before sending more.
    pub(super) blocked: bool,
    /// Whether the poller reports writability for this socket now (only while blocked:
    /// level-triggered, it would report it on every turn).
    pub(super) writable_interest: bool,
}

impl UdpPath {
    pub(super) fn new(
        opened: OpenedSocket,
        config: &SocketConfig,
        grace: Duration,
        role: Role,
    ) -> UdpPath {
        let batch = BatchSender::new(&opened.socket);
        UdpPath {
            watch: PathWatch::new(config, opened.local, grace),
            role,
            local: opened.local,
            socket: opened.socket,
            batch,
            blocked: false,
            writable_interest: false,
        }
    }

    /// The interface the socket is bound to, if any.
    pub(super) fn interface(&self) -> Option<std::num::NonZeroU32> {
        self.watch.index.and_then(std::num::NonZeroU32::new)
    }

    /// The scope an IPv6 link-local peer without one gets on this path.
    pub(super) fn scope(&self) -> u32 {
        self.watch.index.unwrap_or(match self.local {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        })
    }

    /// Whether this socket can send to `to` (its family; a dual-stack socket sends to both).
    pub(super) fn reaches(&self, to: SocketAddr) -> bool {
        match (self.local, to) {
            (SocketAddr::V4(_), SocketAddr::V4(_)) => true,
            (SocketAddr::V6(_), SocketAddr::V6(_)) => true,
            (SocketAddr::V6(l), SocketAddr::V4(_)) => {
                l.ip().is_unspecified()
                    && !socket2::SockRef::from(&self.socket)
                        .only_v6()
                        .unwrap_or(true)
            }
            (SocketAddr::V4(_), SocketAddr::V6(_)) => false,
        }
    }

    /// A v4 destination as a dual-stack v6 socket must address it (v4-mapped).
    pub(super) fn destination(&self, to: SocketAddr) -> SocketAddr {
        crate::listen::to_socket_family(to, self.local)
    }
}

/// An IPv6 link-local address without a scope cannot be sent to: give it `scope`.
pub(super) fn with_scope(addr: SocketAddr, scope: u32) -> SocketAddr {
    match addr {
        SocketAddr::V6(mut v6)
            if v6.scope_id() == 0 && crate::iface::is_link_local_v6(v6.ip().to_owned().into()) =>
        {
            v6.set_scope_id(scope);
            SocketAddr::V6(v6)
        }
        other => other,
    }
}

/// Whether a datagram from `from` is from the peer at `expected` (a scope id of 0 on the
/// expected side matches any).
pub(super) fn is_peer(expected: SocketAddr, from: SocketAddr) -> bool {
    match (expected, from) {
        (SocketAddr::V6(e), SocketAddr::V6(f)) => {
            e.ip() == f.ip()
                && e.port() == f.port()
                && (e.scope_id() == 0 || e.scope_id() == f.scope_id())
        }
        (e, f) => e == f,
    }
}

/// Whether a send error is what a vanished interface or address causes.
pub(super) fn path_error(e: &io::Error) -> bool {
    // ENODEV, ENETDOWN, ENETUNREACH, EADDRNOTAVAIL, ENXIO (Linux and Apple share the
    // meaning; the numbers differ, so ask the kind where std has one).
    matches!(
        e.kind(),
        io::ErrorKind::NetworkDown
            | io::ErrorKind::NetworkUnreachable
            | io::ErrorKind::AddrNotAvailable
    ) || e.raw_os_error().is_some_and(|c| {
        #[cfg(unix)]
        {
            c == nix::errno::Errno::ENODEV as i32 || c == nix::errno::Errno::ENXIO as i32
        }
        #[cfg(not(unix))]
        {
            let _ = c;
            false
        }
    })
}

/// The path check's state.
#[derive(Debug)]
pub(super) struct PathWatch {
    grace: Duration,
    index: Option<u32>,
    local: std::net::IpAddr,
    /// What to call the path in messages.
    pub(super) name: String,
    unusable_since: Option<Instant>,
    /// A send failed the way a lost path fails: check now.
    pub(super) suspect: bool,
}

impl PathWatch {
    fn new(config: &SocketConfig, local: SocketAddr, grace: Duration) -> PathWatch {
        let index = config.interface.map(std::num::NonZeroU32::get);
        let name = index
            .and_then(|i| {
                nix::net::if_::if_nameindex()
                    .ok()?
                    .iter()
                    .find(|n| n.index() == i)
                    .map(|n| format!("interface {} (index {i})", n.name().to_string_lossy()))
            })
            .unwrap_or_else(|| format!("local address {}", local.ip()));
        PathWatch {
            grace,
            index,
            local: local.ip(),
            name,
            unusable_since: None,
            suspect: false,
        }
    }

    /// Checks the path against `list`, the host's interfaces now; `Err` (why) when it is
    /// lost for good.
    pub(super) fn check(&mut self, now: Instant, list: &[Interface]) -> Result<(), String> {
        self.suspect = false;
        let status = path_status(list, self.index, self.local);
        let what = match status {
            PathStatus::Alive => {
                self.unusable_since = None;
                return Ok(());
            }
            PathStatus::InterfaceGone => return Err(format!("{} no longer exists", self.name)),
            PathStatus::InterfaceDown => "has been down".to_owned(),
            PathStatus::AddressGone => format!("has been without address {}", self.local),
        };
        let since = *self.unusable_since.get_or_insert(now);
        let down_for = now - since;
        if down_for >= self.grace {
            return Err(format!(
                "{} {what} for {:.1} s",
                self.name,
                down_for.as_secs_f64()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_peers_match_with_or_without_scope() {
        let a = |s: &str| s.parse::<SocketAddr>().expect("addr");
        assert!(is_peer(a("[fe80::2]:5000"), a("[fe80::2%7]:5000")));
        assert!(is_peer(a("[fe80::2%7]:5000"), a("[fe80::2%7]:5000")));
        assert!(!is_peer(a("[fe80::2%7]:5000"), a("[fe80::2%8]:5000")));
        assert!(!is_peer(a("[fe80::2]:5000"), a("[fe80::2%7]:5001")));
        assert!(is_peer(a("10.0.0.2:5000"), a("10.0.0.2:5000")));
        assert!(!is_peer(a("10.0.0.2:5000"), a("10.0.0.3:5000")));
        assert_eq!(with_scope(a("[fe80::2]:9"), 4), a("[fe80::2%4]:9"));
        assert_eq!(with_scope(a("[fe80::2%3]:9"), 4), a("[fe80::2%3]:9"));
        assert_eq!(with_scope(a("[2001:db8::2]:9"), 4), a("[2001:db8::2]:9"));
        assert_eq!(with_scope(a("10.0.0.2:9"), 4), a("10.0.0.2:9"));
    }
}
