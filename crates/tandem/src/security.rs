//! Who this device is and whom it trusts, for a pipeline: the [`Security`] an app puts in
//! [`crate::NetConfig::security`], and how a pipeline turns it into the protocol's security
//! layer for its [`Remote`].
//!
//! The side that knows where the other is (an address, a discovered peer) starts the
//! handshake; a listener answers any paired device. Which paired device an initiator
//! expects: the one discovery names (the TXT `id` is its key's fingerprint), else
//! [`Security::peer`], else the only one in the trust store.

use std::time::Instant;

use tandem_proto::Endpoint;
use tandem_proto::security::{
    Identity, MaybeSecure, PeerKey, Secure, SecureConfig, SecurityEvent, SessionRole, TrustStore,
};

use crate::config::NetConfig;
use crate::connect::Remote;
use crate::error::EngineError;

/// This device's identity and the peers it has paired with (see
/// `tandem_proto::security::pairing` and [`crate::pairing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// This device.
    pub identity: Identity,
    /// The paired peers: a listener accepts only these, an initiator names one of them.
    pub trust: TrustStore,
    /// The paired peer an initiator expects at its address, when the trust store holds
    /// several and discovery does not say.
    pub peer: Option<PeerKey>,
}

/// Wraps `inner` in the security layer `net` asks for, as the side `remote` makes it.
pub(crate) fn guard<E: Endpoint>(
    inner: E,
    net: &NetConfig,
    remote: &Remote,
    now: Instant,
) -> Result<MaybeSecure<E>, EngineError> {
    let Some(sec) = &net.security else {
        return Ok(MaybeSecure::Plain(inner));
    };
    let role = match remote {
        Remote::Listen => SessionRole::Responder,
        Remote::Discovered(p) => {
            let peer = sec
                .trust
                .by_fingerprint(&p.txt.peer_id)
                .map(|t| t.key)
                .or(sec.peer)
                .ok_or_else(|| {
                    EngineError::NotPaired(format!(
                        "`{}` (id {}) is not paired with this device: pair with it first",
                        p.instance, p.txt.peer_id
                    ))
                })?;
            SessionRole::Initiator { peer }
        }
        Remote::Address(addr) => {
            let peer = match (sec.peer, sec.trust.peers()) {
                (Some(k), _) => k,
                (None, [only]) => only.key,
                (None, []) => {
                    return Err(EngineError::NotPaired(
                        "no paired device: pair with the one at the other end first".into(),
                    ));
                }
                (None, many) => {
                    return Err(EngineError::NotPaired(format!(
                        "{} paired devices: say which one is at {addr}",
                        many.len()
                    )));
                }
            };
            SessionRole::Initiator { peer }
        }
    };
    let config = SecureConfig::new(
        sec.identity.clone(),
        sec.trust.clone(),
        role,
        net.session_id,
    );
    Ok(MaybeSecure::Sealed(Secure::new(inner, config, now)))
}

/// What a security event means for the app, if anything: `Some(Some(message))` sets the
/// pipeline's security trouble, `Some(None)` clears it.
pub(crate) fn trouble(event: &SecurityEvent) -> Option<Option<String>> {
    match event {
        SecurityEvent::Established { peer } => {
            tracing::info!(peer = %peer.fingerprint(), "secure session up");
            Some(None)
        }
        SecurityEvent::HandshakeTimedOut { waited } => Some(Some(format!(
            "no answer to the handshake after {:.1} s: the peer is not running, has not \
             paired with this device, or speaks another protocol version",
            waited.as_secs_f64()
        ))),
        SecurityEvent::PeerVersion { version } => Some(Some(format!(
            "a peer speaks protocol version {version}; this build speaks {}: update one of them",
            tandem_proto::packet::VERSION_BYTE & 0x0f
        ))),
        SecurityEvent::SessionExpired => Some(Some("the secure session expired".into())),
        SecurityEvent::RejectedPeer { fingerprint } => {
            tracing::warn!(%fingerprint, "refused a device that is not paired");
            None
        }
    }
}
