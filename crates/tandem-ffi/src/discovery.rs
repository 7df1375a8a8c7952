//! Advertising and browsing `_tandem._udp` (Bonjour on Apple, with AWDL when peer-to-peer
//! is allowed; Avahi or the embedded mDNS responder elsewhere).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tandem_net::discovery::PROTOCOL_VERSION;

use crate::error::TandemError;
use crate::keys::Identity;
use crate::live::{Kind, Live};
use crate::types::DiscoveredPeer;

/// Which responder to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DiscoveryBackend {
    /// The system's DNS-SD: Bonjour on Apple (the only one that reaches AWDL), Avahi on
    /// Linux.
    System,
    /// The embedded mDNS responder (`mdns-sd`): no daemon needed, no AWDL.
    Embedded,
}

impl DiscoveryBackend {
    /// The default for this platform: the system's on Apple, embedded elsewhere.
    fn platform_default() -> DiscoveryBackend {
        if cfg!(target_vendor = "apple") {
            DiscoveryBackend::System
        } else {
            DiscoveryBackend::Embedded
        }
    }
}

/// What a browse reports. Called on the browse's own thread.
#[uniffi::export(with_foreign)]
pub trait DiscoveryDelegate: Send + Sync {
    /// A peer was found (resolved to addresses).
    fn on_found(&self, peer: DiscoveredPeer);
    /// A known peer's addresses, port or record changed.
    fn on_updated(&self, peer: DiscoveredPeer);
    /// A peer is gone.
    fn on_lost(&self, instance: String, peer_id: String);
}

/// A discovery responder.
#[derive(Debug, uniffi::Object)]
pub struct Discovery {
    inner: Box<dyn tandem_net::Discovery>,
    _live: Live,
}

#[uniffi::export]
impl Discovery {
    /// Opens `backend` (`nil`: the platform's default, see [`DiscoveryBackend`]). On iOS
    /// the first use asks for Local Network permission (`NSLocalNetworkUsageDescription`,
    /// `NSBonjourServices` = `_tandem._udp` in Info.plist).
    #[uniffi::constructor(default(backend = None))]
    pub fn new(backend: Option<DiscoveryBackend>) -> Result<Arc<Discovery>, TandemError> {
        let backend = match backend.unwrap_or_else(DiscoveryBackend::platform_default) {
            DiscoveryBackend::System => tandem_net::DiscoveryBackend::DnsSd,
            DiscoveryBackend::Embedded => tandem_net::DiscoveryBackend::Mdns,
        };
        Ok(Arc::new(Discovery {
            inner: backend.open()?,
            _live: Live::new(Kind::Discovery),
        }))
    }

    /// The backend's name (`mdns-sd`, `dns-sd`).
    pub fn backend_name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// Advertises a session on `port` under `device_name`, with `identity`'s fingerprint as
    /// the peer id (a paired browser recognises it by that). Withdrawn when the returned
    /// object is released or withdrawn.
    #[uniffi::method(default(allow_peer_to_peer = true))]
    pub fn advertise(
        &self,
        port: u16,
        device_name: String,
        identity: Arc<Identity>,
        allow_peer_to_peer: bool,
    ) -> Result<Arc<Advertisement>, TandemError> {
        if port == 0 {
            return Err(TandemError::invalid(
                "port must be the session's port (sender.localPort()), not 0",
            ));
        }
        let txt = tandem_net::PeerTxt {
            protocol_version: PROTOCOL_VERSION,
            peer_id: identity.fingerprint(),
            device_name,
            codecs: vec![tandem::Codec::Av1, tandem::Codec::Hevc, tandem::Codec::H264],
        };
        let mut ad = tandem_net::Advertisement::new(port, txt);
        ad.allow_peer_to_peer = allow_peer_to_peer;
        let registration = self.inner.advertise(&ad)?;
        Ok(Arc::new(Advertisement {
            registration: Mutex::new(Some(registration)),
            _live: Live::new(Kind::Advertisement),
        }))
    }

    /// Browses for peers; events go to `delegate` until the returned object is stopped or
    /// released. `ignore_peer_id` leaves out this device's own advertisement.
    #[uniffi::method(default(allow_peer_to_peer = true, ignore_peer_id = None))]
    pub fn browse(
        &self,
        delegate: Arc<dyn DiscoveryDelegate>,
        allow_peer_to_peer: bool,
        ignore_peer_id: Option<String>,
    ) -> Result<Arc<Browse>, TandemError> {
        let options = tandem_net::BrowseOptions {
            allow_peer_to_peer,
            ignore_peer_id,
            ..tandem_net::BrowseOptions::default()
        };
        let browser = Arc::new(Mutex::new(self.inner.browse(&options)?));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("tandem-ffi-browse".into())
            .spawn({
                let (browser, stop) = (Arc::clone(&browser), Arc::clone(&stop));
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        let event = browser.lock().unwrap_or_else(|p| p.into_inner()).try_next();
                        match event {
                            Some(tandem_net::DiscoveryEvent::Found(p)) => {
                                delegate.on_found(DiscoveredPeer::from_engine(&p));
                            }
                            Some(tandem_net::DiscoveryEvent::Updated(p)) => {
                                delegate.on_updated(DiscoveredPeer::from_engine(&p));
                            }
                            Some(tandem_net::DiscoveryEvent::Lost { instance, peer_id }) => {
                                delegate.on_lost(instance, peer_id);
                            }
                            // Discovery events come seconds apart; a 50 ms poll costs
                            // nothing and lets stop() end the thread promptly.
                            None => std::thread::sleep(Duration::from_millis(50)),
                        }
                    }
                }
            })
            .map_err(|e| TandemError::Discovery {
                message: format!("could not start the browse thread: {e}"),
            })?;
        Ok(Arc::new(Browse {
            browser,
            stop,
            thread: Mutex::new(Some(thread)),
            _live: Live::new(Kind::Browse),
        }))
    }
}

/// A live advertisement.
#[derive(Debug, uniffi::Object)]
pub struct Advertisement {
    registration: Mutex<Option<tandem_net::Registration>>,
    _live: Live,
}

#[uniffi::export]
impl Advertisement {
    /// The name it is advertised under: the one asked for, or the responder's rename when
    /// that was taken (Bonjour may add ` (2)`); `nil` once withdrawn.
    pub fn registered_name(&self) -> Option<String> {
        self.registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|r| {
                r.registered_name()
                    .unwrap_or_else(|| r.instance().to_owned())
            })
    }

    /// Withdraws it now.
    pub fn withdraw(&self) {
        self.registration
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }
}

/// A running browse.
#[derive(Debug, uniffi::Object)]
pub struct Browse {
    browser: Arc<Mutex<tandem_net::Browser>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    _live: Live,
}

#[uniffi::export]
impl Browse {
    /// The peers known now.
    pub fn peers(&self) -> Vec<DiscoveredPeer> {
        self.browser
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .peers()
            .iter()
            .map(DiscoveredPeer::from_engine)
            .collect()
    }

    /// Stops browsing; no events after this returns (unless called from a delegate
    /// callback, which returns first).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl Drop for Browse {
    fn drop(&mut self) {
        self.stop();
    }
}
