//! Tandem's network side: everything between a `tandem-proto` endpoint and the network.
//! It is where sockets, interfaces, clocks and discovery live; it is not the protocol
//! (`tandem-proto`), the impairment models (`tandem-sim`) or the media pipeline (`tandem`).
//!
//! - [`driver`]: the tokio task that runs one endpoint over a UDP socket
//!   ([`spawn_driver`]), with [`batch`]ed sends (UDP GSO on Linux), a microsecond
//!   [`timer`] for the pacer's slots, and a path check that ends a session whose interface
//!   is gone.
//! - [`socket`]: the socket itself ([`open_udp`]: buffers, traffic class — DSCP AF41, or
//!   `SO_NET_SERVICE_TYPE` on Apple — and interface binding).
//! - [`iface`], [`path`], [`watch`]: the host's interfaces, classified as loopback, wired,
//!   Wi-Fi infrastructure, peer-to-peer or other; the choice of interface and addresses for
//!   a [`PathPreference`] ([`choose_path`], [`plan_connection`] for a discovered peer); and
//!   [`PathEvent`]s as interfaces come, go and change.
//! - [`listen`]: the sockets a listener opens so that it is reachable on every interface it
//!   is advertised on, AWDL included ([`listen_plan`]).
//! - [`discovery`]: advertising and browsing `_tandem._udp` through `mdns-sd` (the
//!   embedded default) or the system's `dns_sd.h` (Bonjour on Apple, Avahi on Linux).
//!
//! Decisions are plain functions over system facts, so they are tested on Linux; the
//! Apple-only calls (`SO_NET_SERVICE_TYPE`, the MTU ioctl, linking `dns_sd.h` from
//! libSystem) are thin shims behind `cfg(target_vendor = "apple")`.

#![warn(missing_docs)]

#[cfg(target_vendor = "apple")]
mod apple;
pub mod batch;
pub mod discovery;
pub mod driver;
pub mod iface;
pub mod listen;
pub mod path;
pub mod socket;
pub mod timer;
pub mod watch;

pub use discovery::{
    Advertisement, BrowseOptions, Browser, Discovery, DiscoveryBackend, DiscoveryError,
    DiscoveryEvent, MdnsSd, NativeDnsSd, Peer, PeerAddress, PeerTxt, Registration,
};
pub use driver::{
    DriverConfig, DriverError, DriverHandle, DriverStats, DriverStopped, spawn_driver,
};
pub use iface::{Interface, InterfaceAddr, InterfaceKind, KindOverrides, classify, interfaces};
pub use listen::{ListenSocket, Platform, listen_plan, open_listen};
pub use path::{ChosenPath, PathError, PathPreference, PeerHint, choose_path, plan_connection};
pub use socket::{OpenedSocket, SocketConfig, TrafficClass, open_udp};
pub use watch::{PathEvent, PathMonitor, PathMonitorConfig, PathStatus};
