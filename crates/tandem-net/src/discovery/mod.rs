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
//!
//! Peer-to-peer discovery keeps AWDL awake, and an awake AWDL is what stalls the
//! infrastructure path: [`policy`] decides when browsing and advertising include
//! peer-to-peer links, and a running [`Browser`] or [`Registration`] follows that decision
//! mid-session ([`Browser::set_peer_to_peer`], [`Registration::set_peer_to_peer`]), each by
//! restarting its request with the new setting.

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;

mod dnssd;
mod mdns;
pub mod policy;
mod table;
pub mod txt;

pub use dnssd::{NativeDnsSd, dns_service_flags};
pub use mdns::MdnsSd;
pub use policy::{SessionState, peer_to_peer_discovery};
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
    /// The request cannot be restarted with new settings (a handle a backend made without
    /// the means to restart it).
    #[error("{0} cannot be restarted with new settings")]
    NotRestartable(&'static str),
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

/// Starts an advertisement again with new settings (the backend's own advertise).
type Readvertise = Box<dyn Fn(&Advertisement) -> Result<Registration, DiscoveryError> + Send>;

/// A live advertisement; dropping it withdraws the service.
pub struct Registration {
    instance: String,
    registered: Option<Arc<Mutex<Option<String>>>>,
    guard: Option<Box<dyn Any + Send>>,
    /// What is advertised, and how to advertise it again.
    renew: Option<(Advertisement, Readvertise)>,
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("instance", &self.instance)
            .field("registered_name", &self.registered_name())
            .field("peer_to_peer", &self.allows_peer_to_peer())
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// Wraps a backend's handle, whose drop withdraws the service.
    pub(crate) fn new(instance: String, guard: Box<dyn Any + Send>) -> Registration {
        Registration {
            instance,
            registered: None,
            guard: Some(guard),
            renew: None,
        }
    }

    /// For a backend whose responder confirms the registration: it writes the name it was
    /// registered under into `name`.
    pub(crate) fn reporting_name(mut self, name: Arc<Mutex<Option<String>>>) -> Registration {
        self.registered = Some(name);
        self
    }

    /// Lets [`Registration::set_peer_to_peer`] advertise `ad` again through `again`.
    pub(crate) fn renewable(
        mut self,
        ad: Advertisement,
        again: impl Fn(&Advertisement) -> Result<Registration, DiscoveryError> + Send + 'static,
    ) -> Registration {
        self.renew = Some((ad, Box::new(again)));
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

    /// Whether it is advertised on peer-to-peer links too (`None` if the backend did not
    /// say what it advertised).
    pub fn allows_peer_to_peer(&self) -> Option<bool> {
        self.renew.as_ref().map(|(ad, _)| ad.allow_peer_to_peer)
    }

    /// Advertises on peer-to-peer links too (`true`) or not, from now on; `Ok(false)` when
    /// that is already so. No responder can change this on a live registration, so the
    /// service is withdrawn and registered again with the new setting: withdrawn first,
    /// because a responder that still held the old registration would take the new one for
    /// a conflict and rename it. Browsers see it go and come back on the links that change
    /// (on Bonjour the name may come back renamed, as [`Registration::registered_name`]
    /// then says). If registering again fails, the old advertisement is put back when it
    /// can be, and the error returned.
    pub fn set_peer_to_peer(&mut self, allow: bool) -> Result<bool, DiscoveryError> {
        let Some((ad, again)) = self.renew.take() else {
            return Err(DiscoveryError::NotRestartable("this advertisement"));
        };
        if ad.allow_peer_to_peer == allow {
            self.renew = Some((ad, again));
            return Ok(false);
        }
        let mut next = ad.clone();
        next.allow_peer_to_peer = allow;
        drop(self.guard.take());
        let result = match again(&next) {
            Ok(fresh) => {
                self.adopt(fresh);
                self.renew = Some((next, again));
                return Ok(true);
            }
            Err(e) => e,
        };
        match again(&ad) {
            Ok(old) => self.adopt(old),
            Err(e) => {
                tracing::warn!(instance = %ad.instance, %e, "could not put the advertisement back")
            }
        }
        self.renew = Some((ad, again));
        Err(result)
    }

    /// Takes over `fresh`'s live request.
    fn adopt(&mut self, fresh: Registration) {
        self.guard = fresh.guard;
        self.registered = fresh.registered;
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

    /// Applies a change that may touch several peers, and reports every event it makes.
    pub(crate) fn update_all(&self, change: impl FnOnce(&mut PeerTable) -> Vec<DiscoveryEvent>) {
        let events = change(&mut self.table());
        for e in events {
            self.emit(Some(e));
        }
    }

    /// Whether the [`Browser`] is gone (the backend may stop).
    pub(crate) fn is_closed(&self) -> bool {
        self.events.is_closed()
    }
}

/// Starts a backend's browse reporting into a sink; returns its stop handle.
type StartBrowse =
    Box<dyn Fn(&BrowseOptions, BrowseSink) -> Result<Box<dyn Any + Send>, DiscoveryError> + Send>;

/// A running browse: events as they happen, and the current peers at any time. Dropping
/// it stops the browse.
pub struct Browser {
    events: mpsc::Receiver<DiscoveryEvent>,
    /// Where backends report, without keeping the channel open once they have all stopped.
    events_tx: mpsc::WeakSender<DiscoveryEvent>,
    shared: Arc<BrowseShared>,
    options: BrowseOptions,
    guard: Option<Box<dyn Any + Send>>,
    restart: Option<StartBrowse>,
}

impl fmt::Debug for Browser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Browser")
            .field("stats", &self.stats())
            .field("peer_to_peer", &self.options.allow_peer_to_peer)
            .finish_non_exhaustive()
    }
}

impl Browser {
    /// A browser and the sink its backend reports into (tests feed the sink themselves;
    /// backends go through [`Browser::start`]).
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
                events_tx: tx.downgrade(),
                shared: Arc::clone(&shared),
                options: options.clone(),
                guard: None,
                restart: None,
            },
            BrowseSink { shared, events: tx },
        )
    }

    /// Starts a browse with `start`, which [`Browser::set_peer_to_peer`] calls again to
    /// restart it with new options.
    pub(crate) fn start(
        options: &BrowseOptions,
        start: impl Fn(&BrowseOptions, BrowseSink) -> Result<Box<dyn Any + Send>, DiscoveryError>
        + Send
        + 'static,
    ) -> Result<Browser, DiscoveryError> {
        let (mut browser, sink) = Browser::channel(options);
        browser.guard = Some(start(options, sink)?);
        browser.restart = Some(Box::new(start));
        Ok(browser)
    }

    /// The options it browses with now.
    pub fn options(&self) -> &BrowseOptions {
        &self.options
    }

    /// Browses peer-to-peer links too (`true`) or not, from now on; `Ok(false)` when that is
    /// already so. The backend's browse is restarted with the new setting; the peer table
    /// and the event queue stay, so a peer seen on both kinds of link stays found. Turning
    /// peer-to-peer off forgets what was seen only on peer-to-peer interfaces (the new
    /// browse will not report their departure): such a peer is [`DiscoveryEvent::Lost`], one
    /// seen elsewhere too is [`DiscoveryEvent::Updated`] without those addresses. If the new
    /// browse cannot start, the old one goes on and the error is returned.
    pub fn set_peer_to_peer(&mut self, allow: bool) -> Result<bool, DiscoveryError> {
        if self.options.allow_peer_to_peer == allow {
            return Ok(false);
        }
        let peer_to_peer = if allow {
            Vec::new()
        } else {
            crate::iface::peer_to_peer_indexes()
        };
        self.restart_peer_to_peer(allow, &peer_to_peer)
    }

    /// [`Browser::set_peer_to_peer`] with the peer-to-peer interfaces' indexes given.
    fn restart_peer_to_peer(
        &mut self,
        allow: bool,
        peer_to_peer: &[u32],
    ) -> Result<bool, DiscoveryError> {
        let Some(start) = self.restart.take() else {
            return Err(DiscoveryError::NotRestartable("this browse"));
        };
        let mut next = self.options.clone();
        next.allow_peer_to_peer = allow;
        let sink = self.sink();
        let started = start(&next, sink.clone());
        self.restart = Some(start);
        let guard = started?;
        // Stopping the old browse waits for its thread: nothing it saw arrives after this.
        drop(self.guard.replace(guard));
        self.options = next;
        if !allow {
            sink.update_all(|t| t.retain_interfaces(|i| !peer_to_peer.contains(&i)));
        }
        Ok(true)
    }

    /// A sink into this browser's table and queue, for a new backend browse. If every
    /// backend has stopped (the daemon went away), the queue is opened anew, keeping the
    /// events still waiting in it.
    fn sink(&mut self) -> BrowseSink {
        let events = match self.events_tx.upgrade() {
            Some(tx) => tx,
            None => {
                let (tx, rx) = mpsc::channel(self.options.event_capacity.max(1));
                while let Ok(e) = self.events.try_recv() {
                    let _ = tx.try_send(e);
                }
                self.events = rx;
                self.events_tx = tx.downgrade();
                tx
            }
        };
        BrowseSink {
            shared: Arc::clone(&self.shared),
            events,
        }
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

    use std::sync::atomic::AtomicBool;

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

    fn sighting(port: u16, interfaces: &[u32]) -> Vec<PeerAddress> {
        interfaces
            .iter()
            .map(|i| PeerAddress {
                addr: SocketAddr::from(([10, 0, 0, *i as u8], port)),
                interface: *i,
            })
            .collect()
    }

    /// Logs its name when dropped (a backend's request being stopped).
    struct Stops(Arc<Mutex<Vec<String>>>, String);

    impl Drop for Stops {
        fn drop(&mut self) {
            self.0.lock().expect("log").push(format!("stop {}", self.1));
        }
    }

    #[test]
    fn a_browse_restarts_with_peer_to_peer_and_keeps_its_table() {
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        // A backend that, with peer-to-peer, sees `a` on interface 3 (peer-to-peer) and `b`
        // on 2 and 3; without, `b` on 2 only. Interface 9 makes it fail.
        let start = {
            let log = Arc::clone(&log);
            move |o: &BrowseOptions, sink: BrowseSink| {
                if o.interface == Some(9) {
                    return Err(DiscoveryError::NotRestartable("test"));
                }
                let p2p = o.allow_peer_to_peer;
                log.lock().expect("log").push(format!("start {p2p}"));
                let t = |id: &str| txt::test_txt(id);
                if p2p {
                    sink.update(|tb| {
                        tb.resolved_all("a", "a.local.", 1, t("a"), sighting(1, &[3]))
                    });
                }
                let b = if p2p {
                    sighting(2, &[2, 3])
                } else {
                    sighting(2, &[2])
                };
                sink.update(|tb| tb.resolved_all("b", "b.local.", 2, t("b"), b));
                let guard: Box<dyn Any + Send> = Box::new(Stops(Arc::clone(&log), p2p.to_string()));
                Ok(guard)
            }
        };
        let mut browser = Browser::start(&BrowseOptions::default(), start).expect("starts");
        let drain = |b: &mut Browser| std::iter::from_fn(|| b.try_next()).collect::<Vec<_>>();
        assert_eq!(drain(&mut browser).len(), 2, "a and b found");
        assert!(browser.options().allow_peer_to_peer);

        assert!(browser.restart_peer_to_peer(false, &[3]).expect("restarts"));
        assert_eq!(
            *log.lock().expect("log"),
            vec!["start true", "start false", "stop true"],
            "the new browse starts before the old one stops"
        );
        let events = drain(&mut browser);
        assert!(
            events.iter().any(|e| matches!(e, DiscoveryEvent::Updated(p)
                if p.instance == "b" && p.addresses == sighting(2, &[2]))),
            "{events:?}"
        );
        assert!(events.contains(&DiscoveryEvent::Lost {
            instance: "a".into(),
            peer_id: "a".into()
        }));
        assert_eq!(browser.peers().len(), 1);
        assert!(!browser.options().allow_peer_to_peer);
        // Already so: nothing restarts.
        assert!(!browser.set_peer_to_peer(false).expect("no-op"));
        assert_eq!(log.lock().expect("log").len(), 3);

        // Back on: a and b's AWDL address return.
        assert!(browser.set_peer_to_peer(true).expect("restarts"));
        let events = drain(&mut browser);
        assert!(
            events
                .iter()
                .any(|e| matches!(e, DiscoveryEvent::Found(p) if p.instance == "a"))
        );
        assert_eq!(browser.peers().len(), 2);

        // A browse that cannot restart leaves the old one running.
        let before = log.lock().expect("log").clone();
        browser.options.interface = Some(9);
        let e = browser
            .restart_peer_to_peer(false, &[3])
            .expect_err("fails");
        assert!(matches!(e, DiscoveryError::NotRestartable("test")), "{e}");
        assert!(browser.options().allow_peer_to_peer);
        assert_eq!(
            *log.lock().expect("log"),
            before,
            "nothing started or stopped"
        );
        drop(browser);
        assert_eq!(
            log.lock().expect("log").last().map(String::as_str),
            Some("stop true")
        );
    }

    #[test]
    fn a_browse_whose_backend_ended_restarts_on_a_fresh_queue_keeping_what_waits() {
        // A backend that reports one peer and stops at once (a daemon that went away).
        let start = |o: &BrowseOptions, sink: BrowseSink| {
            let id = if o.allow_peer_to_peer { "old" } else { "new" };
            sink.update(|t| {
                t.resolved_all(id, "h.local.", 1, txt::test_txt(id), sighting(1, &[2]))
            });
            let guard: Box<dyn Any + Send> = Box::new(());
            Ok(guard)
        };
        let mut browser = Browser::start(&BrowseOptions::default(), start).expect("starts");
        assert!(browser.set_peer_to_peer(false).expect("restarts"));
        let found: Vec<String> = std::iter::from_fn(|| browser.try_next())
            .filter_map(|e| match e {
                DiscoveryEvent::Found(p) => Some(p.instance),
                _ => None,
            })
            .collect();
        assert_eq!(found, vec!["old".to_owned(), "new".to_owned()]);
    }

    #[test]
    fn an_advertisement_is_withdrawn_then_registered_again_with_the_new_setting() {
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        let fail_without = Arc::new(AtomicBool::new(false));
        fn register(
            log: &Arc<Mutex<Vec<String>>>,
            fail_without: &Arc<AtomicBool>,
            ad: &Advertisement,
        ) -> Result<Registration, DiscoveryError> {
            let p2p = ad.allow_peer_to_peer;
            if !p2p && fail_without.load(Ordering::Relaxed) {
                log.lock().expect("log").push("refused false".into());
                return Err(DiscoveryError::NotRestartable("test"));
            }
            log.lock().expect("log").push(format!("register {p2p}"));
            let again = (Arc::clone(log), Arc::clone(fail_without));
            Ok(Registration::new(
                ad.instance.clone(),
                Box::new(Stops(Arc::clone(log), p2p.to_string())),
            )
            .renewable(ad.clone(), move |ad| register(&again.0, &again.1, ad)))
        }
        let ad = Advertisement::new(4000, txt::test_txt("me"));
        let mut reg = register(&log, &fail_without, &ad).expect("registers");
        assert_eq!(reg.allows_peer_to_peer(), Some(true));
        assert!(reg.set_peer_to_peer(false).expect("renews"));
        assert_eq!(
            *log.lock().expect("log"),
            vec!["register true", "stop true", "register false"],
            "withdrawn before it is registered again"
        );
        assert_eq!(reg.allows_peer_to_peer(), Some(false));
        assert!(!reg.set_peer_to_peer(false).expect("already so"));
        assert!(reg.set_peer_to_peer(true).expect("renews"));
        // A refused renewal puts the old advertisement back and says why.
        fail_without.store(true, Ordering::Relaxed);
        log.lock().expect("log").clear();
        let e = reg.set_peer_to_peer(false).expect_err("refused");
        assert!(matches!(e, DiscoveryError::NotRestartable("test")), "{e}");
        assert_eq!(
            *log.lock().expect("log"),
            vec!["stop true", "refused false", "register true"]
        );
        assert_eq!(reg.allows_peer_to_peer(), Some(true));
        // One without the means to renew says so.
        let mut plain = Registration::new("x".into(), Box::new(()));
        assert_eq!(plain.allows_peer_to_peer(), None);
        assert!(matches!(
            plain.set_peer_to_peer(false),
            Err(DiscoveryError::NotRestartable(_))
        ));
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
