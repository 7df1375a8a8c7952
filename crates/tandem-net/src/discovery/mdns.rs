//! [`MdnsSd`]: discovery through the `mdns-sd` crate's own multicast DNS responder.
//!
//! `mdns-sd` runs a thread per daemon. Advertisements share one daemon; each browse gets a
//! daemon of its own, because a daemon keeps one browse per service type and a second
//! would silently replace the first. A thread per browse turns the daemon's resolutions
//! into the peer table's terms: every address with the interface it was seen on (IPv6
//! link-local addresses get that interface as their scope id, or they cannot be used).

use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mdns_sd::{
    IfKind, IfPredicate, ResolvedService, ScopedIp, ServiceDaemon, ServiceEvent, ServiceInfo,
};

use super::txt::PeerTxt;
use super::{
    Advertisement, BrowseOptions, BrowseSink, Browser, Discovery, DiscoveryError, PeerAddress,
    Registration, SERVICE_TYPE, validate,
};
use crate::iface::{is_link_local_v6, peer_to_peer_by_name};

const BACKEND: &str = "mdns-sd";

/// `_tandem._udp.local.`, the form `mdns-sd` wants.
fn ty_domain() -> String {
    format!("{SERVICE_TYPE}.local.")
}

/// Discovery through `mdns-sd`. See the module docs.
pub struct MdnsSd {
    daemon: ServiceDaemon,
}

impl std::fmt::Debug for MdnsSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsSd").finish_non_exhaustive()
    }
}

fn backend_error(what: &'static str, e: mdns_sd::Error) -> DiscoveryError {
    DiscoveryError::Backend {
        backend: BACKEND,
        what,
        why: e.to_string(),
    }
}

fn new_daemon() -> Result<ServiceDaemon, DiscoveryError> {
    let daemon = ServiceDaemon::new().map_err(|e| DiscoveryError::Unavailable {
        backend: BACKEND,
        why: format!("cannot open the mDNS sockets (UDP port 5353): {e}"),
    })?;
    // Peer-to-peer interfaces (AWDL) are left out by default; which of them a service or a
    // browse uses is decided per call below.
    daemon
        .include_apple_p2p(true)
        .map_err(|e| backend_error("enabling peer-to-peer interfaces", e))?;
    Ok(daemon)
}

impl MdnsSd {
    /// Starts the responder that advertisements use.
    pub fn new() -> Result<MdnsSd, DiscoveryError> {
        Ok(MdnsSd {
            daemon: new_daemon()?,
        })
    }
}

/// Withdraws the service when dropped.
struct Advertised {
    daemon: ServiceDaemon,
    fullname: String,
}

impl Drop for Advertised {
    fn drop(&mut self) {
        // The goodbye packets go out from the daemon thread; waiting for them is not needed.
        let _ = self.daemon.unregister(&self.fullname);
    }
}

/// Which interfaces a call may use: one index, or all but peer-to-peer ones, or all.
fn interface_filter(interface: Option<u32>, allow_peer_to_peer: bool) -> Option<Vec<IfKind>> {
    match interface {
        Some(index) => Some(vec![IfKind::IndexV4(index), IfKind::IndexV6(index)]),
        None if !allow_peer_to_peer => Some(vec![IfKind::Predicate(IfPredicate::new(|i| {
            !peer_to_peer_by_name(&i.name)
        }))]),
        None => None,
    }
}

/// A host name for our advertisement: the system's, else one derived from the peer id.
fn host_name(txt: &PeerTxt) -> String {
    let base = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .unwrap_or_else(|| {
            let id: String = txt
                .peer_id
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect();
            format!("tandem-{id}")
        });
    format!("{base}.local.")
}

/// Registers `ad` with `daemon`; the registration can be renewed with other settings.
fn register(daemon: &ServiceDaemon, ad: &Advertisement) -> Result<Registration, DiscoveryError> {
    validate(ad)?;
    let pairs = ad.txt.to_pairs();
    let props: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut info = ServiceInfo::new(
        &ty_domain(),
        &ad.instance,
        &host_name(&ad.txt),
        (),
        ad.port,
        &props[..],
    )
    .map_err(|e| DiscoveryError::InvalidAdvertisement(e.to_string()))?
    .enable_addr_auto();
    if let Some(filter) = interface_filter(ad.interface, ad.allow_peer_to_peer) {
        info.set_interfaces(filter);
    }
    let fullname = info.get_fullname().to_owned();
    daemon
        .register(info)
        .map_err(|e| backend_error("registering the service", e))?;
    let again = daemon.clone();
    Ok(Registration::new(
        ad.instance.clone(),
        Box::new(Advertised {
            daemon: daemon.clone(),
            fullname,
        }),
    )
    .renewable(ad.clone(), move |ad| register(&again, ad)))
}

/// Starts a browse reporting into `sink`, on a daemon of its own; returns its stop handle.
fn start_browse(
    options: &BrowseOptions,
    sink: BrowseSink,
) -> Result<Box<dyn std::any::Any + Send>, DiscoveryError> {
    let daemon = new_daemon()?;
    if let Some(filter) = interface_filter(options.interface, options.allow_peer_to_peer) {
        // A browse only hears what arrives on the interfaces its daemon listens on.
        daemon
            .disable_interface(IfKind::All)
            .and_then(|()| daemon.enable_interface(filter))
            .map_err(|e| backend_error("choosing interfaces", e))?;
    }
    let events = daemon
        .browse(&ty_domain())
        .map_err(|e| backend_error("browsing", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        let options = options.clone();
        std::thread::Builder::new()
            .name("tandem-mdns-browse".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) && !sink.is_closed() {
                    match events.recv_timeout(Duration::from_millis(100)) {
                        Ok(event) => handle(&sink, &options, event),
                        Err(mdns_sd::RecvTimeoutError::Timeout) => {}
                        Err(mdns_sd::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .map_err(|e| DiscoveryError::Backend {
                backend: BACKEND,
                what: "starting the browse thread",
                why: e.to_string(),
            })?
    };
    Ok(Box::new(Browsing {
        daemon,
        stop,
        thread: Some(thread),
    }))
}

impl Discovery for MdnsSd {
    fn name(&self) -> &'static str {
        BACKEND
    }

    fn advertise(&self, ad: &Advertisement) -> Result<Registration, DiscoveryError> {
        register(&self.daemon, ad)
    }

    fn browse(&self, options: &BrowseOptions) -> Result<Browser, DiscoveryError> {
        Browser::start(options, start_browse)
    }
}

/// Stops the browse and its daemon when dropped.
struct Browsing {
    daemon: ServiceDaemon,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Browsing {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.daemon.stop_browse(&ty_domain());
        let _ = self.daemon.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The instance name inside a full service name (`Ana\.s iPad._tandem._udp.local.`).
fn instance_of(fullname: &str) -> &str {
    let suffix = format!(".{}", ty_domain());
    fullname.strip_suffix(suffix.as_str()).unwrap_or(fullname)
}

fn unescape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

fn handle(sink: &BrowseSink, options: &BrowseOptions, event: ServiceEvent) {
    match event {
        ServiceEvent::ServiceResolved(service) => resolved(sink, options, &service),
        ServiceEvent::ServiceRemoved(_, fullname) => {
            sink.update(|t| t.removed(&unescape(instance_of(&fullname)), None));
        }
        _ => {}
    }
}

fn resolved(sink: &BrowseSink, options: &BrowseOptions, service: &ResolvedService) {
    let instance = unescape(instance_of(&service.fullname));
    let pairs = service
        .txt_properties
        .iter()
        .map(|p| (p.key(), p.val().unwrap_or_default()));
    let txt = match PeerTxt::from_pairs(pairs) {
        Ok(t) => t,
        Err(e) => {
            sink.malformed(&instance, &e);
            return;
        }
    };
    let addresses = peer_addresses(service.port, &service.addresses)
        .into_iter()
        .filter(|a| options.interface.is_none_or(|i| a.interface == i))
        .collect();
    sink.update(|t| t.resolved_all(&instance, &service.host, service.port, txt, addresses));
}

/// Every (address, interface) pair `mdns-sd` saw, link-local IPv6 scoped to its interface.
fn peer_addresses<'a>(
    port: u16,
    addrs: impl IntoIterator<Item = &'a ScopedIp>,
) -> Vec<PeerAddress> {
    let mut out = Vec::new();
    for a in addrs {
        match a {
            ScopedIp::V4(v4) => {
                for id in v4.interface_ids() {
                    out.push(PeerAddress {
                        addr: SocketAddr::from((*v4.addr(), port)),
                        interface: id.index,
                    });
                }
            }
            ScopedIp::V6(v6) => {
                let index = v6.scope_id().index;
                let ip = *v6.addr();
                let scope = if is_link_local_v6(IpAddr::V6(ip)) {
                    index
                } else {
                    0
                };
                out.push(PeerAddress {
                    addr: SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)),
                    interface: index,
                });
            }
            // ScopedIp is non-exhaustive: a future address family is not ours to use.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_come_back_unescaped() {
        assert_eq!(instance_of("Desk._tandem._udp.local."), "Desk");
        assert_eq!(
            unescape(instance_of("Ana\\.s\\\\ iPad._tandem._udp.local.")),
            "Ana.s\\ iPad"
        );
        assert_eq!(ty_domain(), "_tandem._udp.local.");
    }
}
