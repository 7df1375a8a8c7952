//! Tandem's network side: the tokio task that drives a `tandem-proto` endpoint over UDP
//! ([`spawn_driver`]), the socket it runs on ([`open_udp`]: buffers, traffic class,
//! interface binding), the host's interfaces ([`interfaces`], classified as
//! loopback, wired, Wi-Fi infrastructure, peer-to-peer or other) and the choice of path
//! ([`choose_path`] for a [`PathPreference`]).
//!
//! Everything here is a plain function over system facts, so it is tested on Linux; the
//! Apple-only calls (`SO_NET_SERVICE_TYPE`, the MTU ioctl) are a thin shim in `apple.rs`.
//!
//! Status (issue 4 in progress): batched sends (sendmmsg/GSO), Bonjour discovery,
//! path-change events and the impairment relay are not here yet.

#[cfg(target_vendor = "apple")]
mod apple;
pub mod batch;
pub mod discovery;
pub mod driver;
pub mod iface;
pub mod path;
pub mod socket;
pub mod timer;
pub mod watch;

pub use discovery::{
    Advertisement, BrowseOptions, Browser, Discovery, DiscoveryError, DiscoveryEvent, MdnsSd,
    NativeDnsSd, Peer, PeerAddress, PeerTxt, Registration,
};
pub use driver::{
    DriverConfig, DriverError, DriverHandle, DriverStats, DriverStopped, spawn_driver,
};
pub use iface::{Interface, InterfaceAddr, InterfaceKind, KindOverrides, classify, interfaces};
pub use path::{ChosenPath, PathError, PathPreference, PeerHint, choose_path, plan_connection};
pub use socket::{OpenedSocket, SocketConfig, TrafficClass, open_udp};
pub use watch::{PathEvent, PathMonitor, PathMonitorConfig, PathStatus};
