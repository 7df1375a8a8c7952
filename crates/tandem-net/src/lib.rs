//! Tandem's network side: everything between a `tandem-proto` endpoint and the network.
//! It is where sockets, interfaces, clocks and discovery live; it is not the protocol
//! (`tandem-proto`), the impairment models (`tandem-sim`) or the media pipeline (`tandem`).
//!
//! - [`driver`]: the thread that alone owns one endpoint and runs it over its paths
//!   ([`spawn_driver`]): UDP sockets with [`batch`]ed sends (UDP GSO on Linux), or a
//!   [`transport`] the application brings (its own Network.framework or Wi-Fi Aware link);
//!   other threads reach the endpoint through calls the thread runs, and read a snapshot.
//!   It sleeps in one `poll` with a nanosecond deadline for the pacer's slots, and ends a
//!   session whose path is gone. [`qos`] gives it (and the decode thread) the scheduling
//!   media threads need; [`timer`] is a precise timer for tasks that live in tokio.
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
pub mod qos;
pub mod socket;
pub mod timer;
pub mod transport;
pub mod watch;

pub use discovery::{
    Advertisement, BrowseOptions, Browser, Discovery, DiscoveryBackend, DiscoveryError,
    DiscoveryEvent, MdnsSd, NativeDnsSd, Peer, PeerAddress, PeerTxt, Registration, SessionState,
    peer_to_peer_discovery,
};
pub use driver::{
    DriverConfig, DriverError, DriverHandle, DriverPathStats, DriverStats, DriverStopped,
    PathConfig, Relisten, SecondPath, spawn_driver,
};
pub use iface::{Interface, InterfaceAddr, InterfaceKind, KindOverrides, classify, interfaces};
pub use listen::{ListenSocket, Platform, listen_plan, missing_sockets, open_listen};
pub use path::{ChosenPath, PathError, PathPreference, PeerHint, choose_path, plan_connection};
pub use socket::{OpenedSocket, SocketConfig, TrafficClass, open_udp};
pub use transport::{AppTransport, DatagramTransport, TransportError, TransportInbox};
pub use watch::{PathEvent, PathMonitor, PathMonitorConfig, PathStatus};
