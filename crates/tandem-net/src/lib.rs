//! Tandem's network side: the UDP socket a session runs on ([`open_udp`]: buffers, traffic
//! class, interface binding), the host's interfaces ([`interfaces`], classified as
//! loopback, wired, Wi-Fi infrastructure, peer-to-peer or other) and the choice of path
//! ([`choose_path`] for a [`PathPreference`]).
//!
//! Everything here is a plain function over system facts, so it is tested on Linux; the
//! Apple-only calls (`SO_NET_SERVICE_TYPE`, the MTU ioctl) are a thin shim in `apple.rs`.
//!
//! Status (issue 4 in progress): the tokio driver for a `tandem-proto` endpoint, Bonjour
//! discovery, path-change events and the impairment relay are not here yet.

#[cfg(target_vendor = "apple")]
mod apple;
pub mod iface;
pub mod path;
pub mod socket;

pub use iface::{Interface, InterfaceAddr, InterfaceKind, KindOverrides, classify, interfaces};
pub use path::{ChosenPath, PathError, PathPreference, PeerHint, choose_path};
pub use socket::{OpenedSocket, SocketConfig, TrafficClass, open_udp};
