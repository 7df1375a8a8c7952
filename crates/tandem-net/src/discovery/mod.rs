//! Discovery: advertise this peer as `_tandem._udp` and browse for others, through one
//! [`Discovery`] trait with two backends.
//!
//! - [`MdnsSd`] (the `mdns-sd` crate): pure Rust, its own multicast DNS responder; the
//!   embedded default on every platform. It needs multicast on the interfaces it uses (on
//!   iOS, the multicast entitlement).
//! - [`NativeDnsSd`] (the `dns_sd.h` API): the system's responder. On Apple that is
//!   Bonjour, which needs no multicast entitlement and is the only way to reach AWDL
//!   (`kDNSServiceFlagsIncludeP2P | kDNSServiceFlagsIncludeAWDL`); on Linux it is Avahi's
//!   compatibility library in front of avahi-daemon.
//!
//! A browse yields [`DiscoveryEvent`]s: a peer found (once it resolves to addresses),
//! updated (addresses, TXT record), lost (gone from every interface). Each address says
//! which interface it was seen on, which is what [`crate::path::plan_connection`] needs to
//! pick a path for a [`crate::PathPreference`]. Both backends feed one merge (the peer
//! table), so their events mean the same thing. A TXT record that is not a Tandem peer's
//! is counted ([`BrowseStats::malformed`]) and ignored.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

mod dnssd;
mod mdns;
mod table;
pub mod txt;

pub use dnssd::{NativeDnsSd, dns_service_flags};
pub use mdns::MdnsSd;
pub use txt::{PeerTxt, TxtError};

pub(crate) use table::PeerTable;

/// The DNS-SD service type Tandem advertises and browses (RFC 6763 §7: `_name._udp`).
pub const SERVICE_TYPE: &str = "_tandem._udp";

/// The Tandem protocol version this build speaks (the low nibble of the datagram header's
/// first byte), advertised in the TXT record's `v`.
pub const PROTOCOL_VERSION: u8 = tandem_proto::packet::VERSION_BYTE & 0x0f;

/// What to advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Service instance name: what a browsing user sees (DNS-SD allows UTF-8, ≤ 63 bytes).
    /// A responder that finds the name taken renames it (for example `Name (2)`).
    pub instance: String,
    /// UDP port of the session socket.
    pub port: u16,
    /// The TXT record.
    pub txt: PeerTxt,
    /// Advertise over peer-to-peer links too (AWDL; Apple's Bonjour only).
    pub allow_peer_to_peer: bool,
    /// Only on this interface (its index); `None` for every interface.
    pub interface: Option<u32>,
}

impl Advertisement {
    /// Advertises `txt` on `port` under the device name, on every interface, peer-to-peer
    /// included.
    pub fn new(port: u16, txt: PeerTxt) -> Advertisement {
        Advertisement {
            instance: txt.device_name.clone(),
            port,
            txt,
            allow_peer_to_peer: true,
            interface: None,
        }
    }
}

/// How to browse. [`BrowseOptions::default`] documents the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowseOptions {
    /// Browse peer-to-peer links too (AWDL; Apple's Bonjour only). Default true.
    pub allow_peer_to_peer: bool,
    /// Peers with this id are not reported (our own advertisement). Default `None`.
    pub ignore_peer_id: Option<String>,
    /// Only this interface (its index). Default `None`: every interface.
    pub interface: Option<u32>,
    /// Events held for the application before further ones are dropped (counted in
    /// [`BrowseStats::events_dropped`]; [`Browser::peers`] stays exact). Default 256.
    pub event_capacity: usize,
}

impl Default for BrowseOptions {
    fn default() -> Self {
        BrowseOptions {
            allow_peer_to_peer: true,
            ignore_peer_id: None,
            interface: None,
            event_capacity: 256,
        }
    }
}

/// One address of a peer and the interface it was seen on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerAddress {
    /// Address and port; an IPv6 link-local address carries the interface as scope id.
    pub addr: SocketAddr,
    /// Index of the local interface it was seen on.
    pub interface: u32,
}

/// A peer found by browsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Service instance name.
    pub instance: String,
    /// Its host name (`name.local.`).
    pub host: String,
    /// Port of its session socket.
    pub port: u16,
    /// What it says about itself.
    pub txt: PeerTxt,
    /// Its addresses, by interface then address.
    pub addresses: Vec<PeerAddress>,
}

impl Peer {
    /// Whether it speaks this build's protocol version.
    pub fn compatible(&self) -> bool {
        self.txt.protocol_version == PROTOCOL_VERSION
    }

    /// Its addresses seen on interface `index`.
    pub fn addresses_on(&self, index: u32) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addresses
            .iter()
            .filter(move |a| a.interface == index)
            .map(|a| a.addr)
    }
}

/// What a browse reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryEvent {
    /// A peer resolved to addresses for the first time.
    Found(Peer),
    /// A known peer's addresses, port or TXT record changed.
    Updated(Peer),
    /// A peer is gone from every interface.
    Lost {
        /// Its service instance name.
        instance: String,
        /// Its peer id.
        peer_id: String,
    },
}

/// Why discovery failed.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// The backend cannot run here (library or daemon missing); the message says which
    /// package or service provides it.
    #[error("{backend} is unavailable: {why}")]
    Unavailable {
        /// The backend.
        backend: &'static str,
        /// What is missing and how to get it.
        why: String,
    },
    /// The advertisement breaks a DNS-SD or TXT limit.
    #[error("invalid advertisement: {0}")]
    InvalidAdvertisement(String),
    /// The backend refused a request.
    #[error("{backend}: {what} failed: {why}")]
    Backend {
        /// The backend.
        backend: &'static str,
        /// The request.
        what: &'static str,
        /// The backend's error.
        why: String,
    },
}

/// Which [`Discovery`] backend to use, by name (`mdns` or `dns-sd`, as the apps take it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscoveryBackend {
    /// [`MdnsSd`], the embedded responder. The default.
    #[default]
    Mdns,
    /// [`NativeDnsSd`], the system's (Bonjour; Avahi on Linux).
    DnsSd,
}

impl std::str::FromStr for DiscoveryBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mdns" | "mdns-sd" => Ok(DiscoveryBackend::Mdns),
            "dns-sd" | "dnssd" | "bonjour" | "avahi" => Ok(DiscoveryBackend::DnsSd),
            other => Err(format!(
                "discovery backend `{other}` is unknown (expected mdns or dns-sd)"
            )),
        }
    }
}

impl DiscoveryBackend {
    /// Starts the backend.
    pub fn open(self) -> Result<Box<dyn Discovery>, DiscoveryError> {
        Ok(match self {
            DiscoveryBackend::Mdns => Box::new(MdnsSd::new()?),
            DiscoveryBackend::DnsSd => Box::new(NativeDnsSd::new()?),
        })
    }
}

/// Advertising and browsing, whatever the responder.
pub trait Discovery: Send + Sync + fmt::Debug {
    /// The backend's name, for messages.
    fn name(&self) -> &'static str;
    /// Starts advertising; the advertisement lasts until the [`Registration`] is dropped.
    fn advertise(&self, ad: &Advertisement) -> Result<Registration, DiscoveryError>;
    /// Starts browsing; the browse lasts until the [`Browser`] is dropped.
    fn browse(&self, options: &BrowseOptions) -> Result<Browser, DiscoveryError>;
}

/// Checks what every backend checks before advertising.
pub(crate) fn validate(ad: &Advertisement) -> Result<(), DiscoveryError> {
    ad.txt
        .validate()
        .map_err(|e| DiscoveryError::InvalidAdvertisement(e.to_string()))?;
    if ad.instance.is_empty() || ad.instance.len() > 63 {
        return Err(DiscoveryError::InvalidAdvertisement(format!(
            "instance name must be 1 to 63 bytes, not {}",
            ad.instance.len()
        )));
    }
    if ad.port == 0 {
        return Err(DiscoveryError::InvalidAdvertisement(
            "port 0 cannot be reached".into(),
        ));
    }
    Ok(())
}

/// A live advertisement; dropping it withdraws the service.
pub struct Registration {
    instance: String,
    registered: Option<Arc<Mutex<Option<String>>>>,
    _guard: Box<dyn Any + Send>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("instance", &self.instance)
            .field("registered_name", &self.registered_name())
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Wraps a backend's handle, whose drop withdraws the service.
    pub(crate) fn new(instance: String, guard: Box<dyn Any + Send>) -> Registration {
        Registration {
            instance,
            registered: None,
            _guard: guard,
        }
    }

    /// For a backend whose responder confirms the registration: it writes the name it was
    /// registered under into `name`.
    pub(crate) fn reporting_name(mut self, name: Arc<Mutex<Option<String>>>) -> Registration {
        self.registered = Some(name);
        self
    }

    /// The instance name asked for.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The name the responder confirmed it registered, which differs from
    /// [`Registration::instance`] if it renamed the service after a conflict. `None` until
    /// it has confirmed, and always for backends that do not confirm (`mdns-sd`).
    pub fn registered_name(&self) -> Option<String> {
        self.registered
            .as_ref()
            .and_then(|n| n.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// Counters of one browse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BrowseStats {
    /// Services of our type whose TXT record is not a Tandem peer's, ignored.
    pub malformed: u64,
    /// Events dropped because the application did not take them in time.
    pub events_dropped: u64,
}

#[derive(Debug)]
struct BrowseShared {
    table: Mutex<PeerTable>,
    malformed: AtomicU64,
    events_dropped: AtomicU64,
}

/// What a backend reports into a browse. Cheap to clone; every clone feeds the same
/// [`Browser`].
#[derive(Debug, Clone)]
pub(crate) struct BrowseSink {
    shared: Arc<BrowseShared>,
    events: mpsc::Sender<DiscoveryEvent>,
}

impl BrowseSink {
    fn emit(&self, event: Option<DiscoveryEvent>) {
        if let Some(e) = event {
            tracing::debug!(?e, "discovery");
            if self.events.try_send(e).is_err() {
                self.shared.events_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, PeerTable> {
        self.shared
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A service's TXT record failed to parse.
    pub(crate) fn malformed(&self, instance: &str, error: &TxtError) {
        tracing::debug!(instance, %error, "ignoring a service that is not a Tandem peer");
        self.shared.malformed.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies one change to the peer table and reports the event it makes, if any.
    pub(crate) fn update(&self, change: impl FnOnce(&mut PeerTable) -> Option<DiscoveryEvent>) {
        let e = change(&mut self.table());
        self.emit(e);
    }

    /// Whether the [`Browser`] is gone (the backend may stop).
    pub(crate) fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

/// A running browse: events as they happen, and the current peers at any time. Dropping
/// it stops the browse.
pub struct Browser {
    events: mpsc::Receiver<DiscoveryEvent>,
    shared: Arc<BrowseShared>,
    _guard: Option<Box<dyn Any + Send>>,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// A browser and the sink its backend reports into; the backend then hands its stop
    /// handle to [`Browser::attach`].
    pub(crate) fn channel(options: &BrowseOptions) -> (Browser, BrowseSink) {
        let (tx, rx) = mpsc::channel(options.event_capacity.max(1));
        let shared = Arc::new(BrowseShared {
            table: Mutex::new(PeerTable::new(options.ignore_peer_id.clone())),
            malformed: AtomicU64::new(0),
            events_dropped: AtomicU64::new(0),
        });
        (
            Browser {
                events: rx,
                shared: Arc::clone(&shared),
                _guard: None,
            },
            BrowseSink { shared, events: tx },
        )
    }

    /// Keeps `guard` (the backend's browse handle) alive as long as the browser.
    pub(crate) fn attach(mut self, guard: Box<dyn Any + Send>) -> Browser {
        self._guard = Some(guard);
        self
    }

    /// The next event; `None` once the backend has stopped.
    pub async fn next(&mut self) -> Option<DiscoveryEvent> {
        self.events.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_next(&mut self) -> Option<DiscoveryEvent> {
        self.events.try_recv().ok()
    }

    /// The peers known now.
    pub fn peers(&self) -> Vec<Peer> {
        self.shared
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peers()
    }

    /// Counters.
    pub fn stats(&self) -> BrowseStats {
        BrowseStats {
            malformed: self.shared.malformed.load(Ordering::Relaxed),
            events_dropped: self.shared.events_dropped.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends_by_name() {
        assert_eq!("mdns".parse(), Ok(DiscoveryBackend::Mdns));
        assert_eq!("dns-sd".parse(), Ok(DiscoveryBackend::DnsSd));
        assert_eq!(DiscoveryBackend::default(), DiscoveryBackend::Mdns);
        let e = "zeroconf".parse::<DiscoveryBackend>().expect_err("unknown");
        assert!(e.contains("`zeroconf`"), "{e}");
    }

    #[test]
    fn defaults_are_documented_values() {
        let o = BrowseOptions::default();
        assert!(o.allow_peer_to_peer);
        assert_eq!(o.ignore_peer_id, None);
        assert_eq!(o.interface, None);
        assert_eq!(o.event_capacity, 256);
        assert_eq!(PROTOCOL_VERSION, 1);
        let txt = PeerTxt {
            protocol_version: PROTOCOL_VERSION,
            peer_id: "p".into(),
            device_name: "Desk".into(),
            codecs: vec![tandem_proto::Codec::Av1],
        };
        let ad = Advertisement::new(4000, txt);
        assert_eq!(ad.instance, "Desk");
        assert!(ad.allow_peer_to_peer);
        assert_eq!(ad.interface, None);
        assert!(validate(&ad).is_ok());
        let mut bad = ad.clone();
        bad.port = 0;
        assert!(validate(&bad).is_err());
        bad = ad;
        bad.instance = "n".repeat(64);
        assert!(validate(&bad).is_err());
    }

    #[test]
    fn a_full_event_queue_drops_and_counts_but_peers_stay_exact() {
        let options = BrowseOptions {
            event_capacity: 1,
            ..BrowseOptions::default()
        };
        let (mut browser, sink) = Browser::channel(&options);
        let txt = PeerTxt {
            protocol_version: 1,
            peer_id: "a".into(),
            device_name: "A".into(),
            codecs: vec![],
        };
        for port in [1u16, 2, 3] {
            let addr = PeerAddress {
                addr: SocketAddr::from(([10, 0, 0, 2], port)),
                interface: 2,
            };
            sink.update(|t| t.resolved_all("a", "a.local.", port, txt.clone(), vec![addr]));
        }
        assert_eq!(browser.stats().events_dropped, 2);
        assert!(matches!(browser.try_next(), Some(DiscoveryEvent::Found(_))));
        assert_eq!(browser.peers()[0].port, 3);
        sink.malformed("junk", &TxtError::Missing("v"));
        assert_eq!(browser.stats().malformed, 1);
        drop(browser);
        assert!(sink.is_closed());
    }
}
