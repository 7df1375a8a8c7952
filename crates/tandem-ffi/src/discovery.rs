//! Advertising and browsing `_tandem._udp` (Bonjour on Apple, with AWDL when peer-to-peer
//! is allowed; Avahi or the embedded mDNS responder elsewhere).
//!
//! Peer-to-peer discovery keeps AWDL awake, and an awake AWDL stalls the infrastructure
//! path for 30–50 ms about once a second. A [`Discovery`] therefore follows a policy
//! (`tandem_net::discovery::policy`): its advertisements and browses include peer-to-peer
//! links only while the session may use them. The app tells it where the session stands:
//!
//! ```swift
//! let discovery = try Discovery(backend: nil)
//! let ad = try discovery.advertise(port: sender.localPort(), deviceName: name, identity: id)
//! // Whenever the session may have changed (each stats tick is enough):
//! let session = try discoverySession(connected: sender.isConnected(), peer: sender.peer())
//! try discovery.setSession(path: .automatic, session: session)
//! ```
//!
//! With `.automatic`, once the session is up over Wi-Fi through the access point (or a
//! wire), the advertisement and the browse drop AWDL (each is restarted without it), and
//! take it back when the session drops; `setKeepPeerToPeer(true)` keeps AWDL discovery on
//! all the same. `.peerToPeer` always includes AWDL, `.infrastructure` never. Until the app
//! calls `setSession`, a Discovery behaves as before: peer-to-peer included.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use tandem_net::discovery::{PROTOCOL_VERSION, SessionState, peer_to_peer_discovery};

use crate::error::TandemError;
use crate::keys::Identity;
use crate::live::{Kind, Live};
use crate::types::{DiscoveredPeer, PathPreference};

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

/// Where the app's session stands, for the discovery policy (see [`Discovery::set_session`];
/// [`discovery_session`] works it out from a sender's or receiver's state).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum DiscoverySession {
    /// No session: not started, or waiting to be found.
    Idle,
    /// A session is being set up, or its peer went silent and it is trying again.
    Connecting,
    /// Up over Wi-Fi through the access point, a wire, or loopback.
    UpInfrastructure,
    /// Up over a peer-to-peer link (AWDL).
    UpPeerToPeer,
}

impl From<DiscoverySession> for SessionState {
    fn from(s: DiscoverySession) -> SessionState {
        match s {
            DiscoverySession::Idle => SessionState::Idle,
            DiscoverySession::Connecting => SessionState::Connecting,
            DiscoverySession::UpInfrastructure => SessionState::UpInfrastructure,
            DiscoverySession::UpPeerToPeer => SessionState::UpPeerToPeer,
        }
    }
}

impl From<SessionState> for DiscoverySession {
    fn from(s: SessionState) -> DiscoverySession {
        match s {
            SessionState::Idle => DiscoverySession::Idle,
            SessionState::Connecting => DiscoverySession::Connecting,
            SessionState::UpInfrastructure => DiscoverySession::UpInfrastructure,
            SessionState::UpPeerToPeer => DiscoverySession::UpPeerToPeer,
        }
    }
}

/// Where a session stands, from what a `Sender` or `Receiver` says: `connected`
/// (`sender.isConnected()`; for a receiver, video arriving) and `peer` (`peer()`, the
/// address it last heard its peer at). Up with a peer on an AWDL interface is
/// `upPeerToPeer`, up elsewhere `upInfrastructure`; not up, `connecting` with a peer known
/// and `idle` without; up over a link this device cannot tell counts as `connecting`, which
/// keeps AWDL discovery on. Lists the device's interfaces (as the engine classifies them,
/// without overrides) each call: cheap, but not for every frame. Fails only for an address
/// that does not parse.
#[uniffi::export(default(peer = None))]
pub fn discovery_session(
    connected: bool,
    peer: Option<String>,
) -> Result<DiscoverySession, TandemError> {
    let peer = peer
        .map(|p| {
            p.parse::<std::net::SocketAddr>()
                .map_err(|e| TandemError::invalid(format!("peer address `{p}`: {e}")))
        })
        .transpose()?;
    // Without the interface list the link cannot be told, which counts as connecting.
    let interfaces = tandem_net::interfaces(&tandem_net::KindOverrides::new()).unwrap_or_default();
    Ok(SessionState::of(connected, peer, &interfaces).into())
}

/// The policy's inputs, as the app last gave them.
#[derive(Debug, Clone, Copy)]
struct Policy {
    path: tandem::PathPreference,
    session: SessionState,
    keep_peer_to_peer: bool,
}

impl Policy {
    /// Whether advertisements and browses include peer-to-peer links now.
    fn peer_to_peer(&self) -> bool {
        peer_to_peer_discovery(self.path, self.session, self.keep_peer_to_peer)
    }
}

/// A discovery responder.
#[derive(Debug, uniffi::Object)]
pub struct Discovery {
    inner: Box<dyn tandem_net::Discovery>,
    /// Held while a change of policy is applied, and while an advertisement or browse
    /// starts, so that each starts with the setting in force and none is missed.
    policy: Mutex<Policy>,
    advertisements: Mutex<Vec<Weak<Advertisement>>>,
    browses: Mutex<Vec<Weak<Browse>>>,
    _live: Live,
}

/// The live ones among `list`, dropping those released.
fn live<T>(list: &Mutex<Vec<Weak<T>>>) -> Vec<Arc<T>> {
    let mut list = list.lock().unwrap_or_else(PoisonError::into_inner);
    list.retain(|w| w.strong_count() > 0);
    list.iter().filter_map(Weak::upgrade).collect()
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
            policy: Mutex::new(Policy {
                path: tandem::PathPreference::Automatic,
                session: SessionState::Idle,
                keep_peer_to_peer: false,
            }),
            advertisements: Mutex::new(Vec::new()),
            browses: Mutex::new(Vec::new()),
            _live: Live::new(Kind::Discovery),
        }))
    }

    /// Tells discovery where the session stands, under which path preference; every live
    /// advertisement and browse made by this Discovery then includes AWDL or not as the
    /// policy says (see the module docs), each restarted if its setting changes (a browse
    /// keeps the peers it knows; peers seen only over AWDL are reported lost when AWDL is
    /// dropped; an advertisement is withdrawn and registered again, so browsers see it go
    /// and come back). Returns whether peer-to-peer discovery is on now. Call it whenever
    /// the session may have changed; a call that changes nothing costs nothing. If a
    /// restart fails, the others still happen and the first error is returned (that one
    /// keeps its old setting).
    pub fn set_session(
        &self,
        path: PathPreference,
        session: DiscoverySession,
    ) -> Result<bool, TandemError> {
        self.update(|p| {
            p.path = path.into();
            p.session = session.into();
        })
    }

    /// Keeps AWDL discovery on even while an automatic session is up on infrastructure
    /// (`true`), for an app that wants to go on seeing nearby devices reachable only over
    /// AWDL, at the cost of the stalls; `false` (the default) follows the policy. Never
    /// turns AWDL on under the infrastructure preference. Applied at once, as
    /// [`Discovery::set_session`] does; returns whether peer-to-peer discovery is on now.
    pub fn set_keep_peer_to_peer(&self, keep: bool) -> Result<bool, TandemError> {
        self.update(|p| p.keep_peer_to_peer = keep)
    }

    /// Whether advertisements and browses include peer-to-peer links now (those asked with
    /// `allow_peer_to_peer` false never do).
    pub fn peer_to_peer_active(&self) -> bool {
        self.policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peer_to_peer()
    }

    /// The backend's name (`mdns-sd`, `dns-sd`).
    pub fn backend_name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// Advertises a session on `port` under `device_name`, with `identity`'s fingerprint as
    /// the peer id (a paired browser recognises it by that). Withdrawn when the returned
    /// object is released or withdrawn. `allow_peer_to_peer` false keeps it off AWDL for
    /// good; true (the default) puts it on AWDL whenever the policy does
    /// ([`Discovery::set_session`]).
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
        let policy = self.policy.lock().unwrap_or_else(PoisonError::into_inner);
        ad.allow_peer_to_peer = allow_peer_to_peer && policy.peer_to_peer();
        let registration = self.inner.advertise(&ad)?;
        let advertisement = Arc::new(Advertisement {
            registration: Mutex::new(Some(registration)),
            allow_peer_to_peer,
            _live: Live::new(Kind::Advertisement),
        });
        self.advertisements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&advertisement));
        drop(policy);
        Ok(advertisement)
    }

    /// Browses for peers; events go to `delegate` until the returned object is stopped or
    /// released. `ignore_peer_id` leaves out this device's own advertisement.
    /// `allow_peer_to_peer` as for [`Discovery::advertise`].
    #[uniffi::method(default(allow_peer_to_peer = true, ignore_peer_id = None))]
    pub fn browse(
        &self,
        delegate: Arc<dyn DiscoveryDelegate>,
        allow_peer_to_peer: bool,
        ignore_peer_id: Option<String>,
    ) -> Result<Arc<Browse>, TandemError> {
        let policy = self.policy.lock().unwrap_or_else(PoisonError::into_inner);
        let options = tandem_net::BrowseOptions {
            allow_peer_to_peer: allow_peer_to_peer && policy.peer_to_peer(),
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
        let browse = Arc::new(Browse {
            browser,
            stop,
            thread: Mutex::new(Some(thread)),
            allow_peer_to_peer,
            _live: Live::new(Kind::Browse),
        });
        self.browses
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&browse));
        drop(policy);
        Ok(browse)
    }
}

impl Discovery {
    /// Changes the policy's inputs and applies the result to every live advertisement and
    /// browse; returns whether peer-to-peer discovery is on now.
    fn update(&self, change: impl FnOnce(&mut Policy)) -> Result<bool, TandemError> {
        let mut policy = self.policy.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut policy);
        let on = policy.peer_to_peer();
        let mut first_error = None;
        for ad in live(&self.advertisements) {
            if let Err(e) = ad.set_peer_to_peer(ad.allow_peer_to_peer && on) {
                first_error.get_or_insert(e);
            }
        }
        for browse in live(&self.browses) {
            if let Err(e) = browse.set_peer_to_peer(browse.allow_peer_to_peer && on) {
                first_error.get_or_insert(e);
            }
        }
        drop(policy);
        match first_error {
            Some(e) => Err(e.into()),
            None => Ok(on),
        }
    }
}

/// A live advertisement.
#[derive(Debug, uniffi::Object)]
pub struct Advertisement {
    registration: Mutex<Option<tandem_net::Registration>>,
    /// Whether the app allowed AWDL for it (the policy decides when).
    allow_peer_to_peer: bool,
    _live: Live,
}

impl Advertisement {
    /// Puts it on peer-to-peer links or takes it off (nothing once withdrawn).
    fn set_peer_to_peer(&self, on: bool) -> Result<bool, tandem_net::DiscoveryError> {
        match self
            .registration
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            Some(r) => r.set_peer_to_peer(on),
            None => Ok(false),
        }
    }
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
    /// Whether the app allowed AWDL for it (the policy decides when).
    allow_peer_to_peer: bool,
    _live: Live,
}

impl Browse {
    /// Browses peer-to-peer links too, or stops (nothing once stopped).
    fn set_peer_to_peer(&self, on: bool) -> Result<bool, tandem_net::DiscoveryError> {
        if self.stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        self.browser
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .set_peer_to_peer(on)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Quiet;

    impl DiscoveryDelegate for Quiet {
        fn on_found(&self, _peer: DiscoveredPeer) {}
        fn on_updated(&self, _peer: DiscoveredPeer) {}
        fn on_lost(&self, _instance: String, _peer_id: String) {}
    }

    fn ad_peer_to_peer(ad: &Advertisement) -> Option<bool> {
        ad.registration
            .lock()
            .expect("lock")
            .as_ref()
            .and_then(tandem_net::Registration::allows_peer_to_peer)
    }

    fn browse_peer_to_peer(b: &Browse) -> bool {
        b.browser.lock().expect("lock").options().allow_peer_to_peer
    }

    #[test]
    fn advertisements_and_browses_follow_the_session() {
        let discovery =
            Discovery::new(Some(DiscoveryBackend::Embedded)).expect("embedded responder");
        assert!(discovery.peer_to_peer_active(), "on until told otherwise");
        let id = Identity::generate().expect("identity");
        let ad = discovery
            .advertise(47_021, "FFI policy".into(), Arc::clone(&id), true)
            .expect("advertised");
        let never = discovery
            .advertise(47_022, "FFI policy off".into(), id, false)
            .expect("advertised");
        let browse = discovery
            .browse(Arc::new(Quiet), true, None)
            .expect("browsing");
        assert_eq!(ad_peer_to_peer(&ad), Some(true));
        assert_eq!(ad_peer_to_peer(&never), Some(false));
        assert!(browse_peer_to_peer(&browse));

        // Up on infrastructure under automatic: AWDL off everywhere.
        let on = discovery
            .set_session(
                PathPreference::Automatic,
                DiscoverySession::UpInfrastructure,
            )
            .expect("applied");
        assert!(!on);
        assert_eq!(ad_peer_to_peer(&ad), Some(false));
        assert!(!browse_peer_to_peer(&browse));
        // The app keeps it: back on, but not for the one that never allowed it.
        assert!(discovery.set_keep_peer_to_peer(true).expect("applied"));
        assert_eq!(ad_peer_to_peer(&ad), Some(true));
        assert_eq!(ad_peer_to_peer(&never), Some(false));
        assert!(browse_peer_to_peer(&browse));
        // Infrastructure never, whatever the app keeps.
        assert!(
            !discovery
                .set_session(PathPreference::Infrastructure, DiscoverySession::Idle)
                .expect("applied")
        );
        assert!(!browse_peer_to_peer(&browse));
        // What starts now starts with the setting in force.
        let late = discovery
            .browse(Arc::new(Quiet), true, None)
            .expect("browsing");
        assert!(!browse_peer_to_peer(&late));
        // Withdrawn, stopped or released ones are left alone.
        ad.withdraw();
        browse.stop();
        drop(late);
        assert!(
            discovery
                .set_session(PathPreference::PeerToPeer, DiscoverySession::Connecting)
                .expect("applied")
        );
        assert_eq!(ad_peer_to_peer(&ad), None);
        assert!(!browse_peer_to_peer(&browse));
        assert_eq!(discovery.browses.lock().expect("lock").len(), 1);
    }

    #[test]
    fn the_session_from_a_pipelines_state() {
        assert_eq!(
            discovery_session(false, None).expect("idle"),
            DiscoverySession::Idle
        );
        assert_eq!(
            discovery_session(false, Some("192.168.1.9:5000".into())).expect("connecting"),
            DiscoverySession::Connecting
        );
        assert_eq!(
            discovery_session(true, Some("127.0.0.1:5000".into())).expect("loopback"),
            DiscoverySession::UpInfrastructure
        );
        let e = discovery_session(true, Some("desk.local".into())).expect_err("not an address");
        assert!(matches!(e, TandemError::InvalidArgument { .. }), "{e:?}");
        for s in [
            DiscoverySession::Idle,
            DiscoverySession::Connecting,
            DiscoverySession::UpInfrastructure,
            DiscoverySession::UpPeerToPeer,
        ] {
            assert_eq!(DiscoverySession::from(SessionState::from(s)), s);
        }
    }
}
