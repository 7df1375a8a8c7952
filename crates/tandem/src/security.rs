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

impl Security {
    /// Two fresh identities that trust each other, as if paired (the first named
    /// `first_name` in the second's trust store, and so on): for both ends in one process,
    /// such as tests, benches and a loopback demo. Devices that meet for the first time pair
    /// with [`crate::pairing::pair`] instead.
    pub fn paired_in_process(
        first_name: &str,
        second_name: &str,
    ) -> Result<(Security, Security), EngineError> {
        let (a, b) = (Identity::generate()?, Identity::generate()?);
        let (mut ta, mut tb) = (TrustStore::new(), TrustStore::new());
        ta.add(b.public(), second_name)?;
        tb.add(a.public(), first_name)?;
        let side = |identity, trust| Security {
            identity,
            trust,
            peer: None,
        };
        Ok((side(a, ta), side(b, tb)))
    }
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
        Remote::Listen
        | Remote::Transport {
            initiator: false, ..
        }
        | Remote::Transports {
            initiator: false, ..
        } => SessionRole::Responder,
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
        Remote::Address(_)
        | Remote::Addresses { .. }
        | Remote::Transport {
            initiator: true, ..
        }
        | Remote::Transports {
            initiator: true, ..
        } => {
            let at = match remote {
                Remote::Address(addr) => addr.to_string(),
                Remote::Addresses { first, second } => format!("{first} and {second}"),
                Remote::Transports { .. } => "the other end of the transports".to_owned(),
                _ => "the other end of the transport".to_owned(),
            };
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
                        "{} paired devices: say which one is at {at}",
                        many.len()
                    )));
                }
            };
            SessionRole::Initiator { peer }
        }
    };
    let mut config = SecureConfig::new(
        sec.identity.clone(),
        sec.trust.clone(),
        role,
        net.session_id,
    );
    // Message 1s carry wall-clock time so that a replayed one cannot displace a newer
    // session (see `SecureConfig::wall_clock_us`).
    config.wall_clock_us = crate::stats::wall_us();
    Ok(MaybeSecure::Sealed(Secure::new(inner, config, now)))
}

/// Most warnings a pipeline keeps: the newest distinct ones.
pub const MAX_WARNINGS: usize = 4;

/// What the security layer told a pipeline, split by whom it can be believed of.
///
/// Trouble with the session itself (no answer to our handshake, the session lapsed) is the
/// pipeline's error until a session is up again. What a stranger's datagram says (another
/// protocol version, a handshake from an unpaired device) is unauthenticated: anyone can
/// send those bytes, before, during or after a handshake, so it is only ever a warning —
/// counted, shown, never a reason for an app to stop. Warnings are bounded: the newest
/// [`MAX_WARNINGS`] distinct ones.
#[derive(Debug, Default)]
pub(crate) struct SecurityReport {
    trouble: Option<String>,
    warnings: std::collections::VecDeque<String>,
}

impl SecurityReport {
    /// Takes in one event of the security layer.
    pub(crate) fn on_event(&mut self, event: &SecurityEvent) {
        match event {
            SecurityEvent::Established { peer } => {
                tracing::info!(peer = %peer.fingerprint(), "secure session up");
                self.trouble = None;
            }
            SecurityEvent::HandshakeTimedOut { waited } => {
                self.trouble = Some(format!(
                    "no answer to the handshake after {:.1} s: the peer is not running, has \
                     not paired with this device, or speaks another protocol version",
                    waited.as_secs_f64()
                ));
            }
            SecurityEvent::SessionExpired => {
                self.trouble = Some("the secure session expired".into());
            }
            SecurityEvent::PeerVersion { version, from } => self.warn(format!(
                "{} speaks protocol version {version}; this build speaks {} (ignored; if it \
                 is your other device, update one of them)",
                from.map_or("a device".to_owned(), |a| format!("a device at {a}")),
                tandem_proto::packet::VERSION_BYTE & 0x0f
            )),
            SecurityEvent::RejectedPeer { fingerprint, from } => self.warn(format!(
                "refused a device that is not paired: {fingerprint}{}",
                from.map_or(String::new(), |a| format!(" at {a}"))
            )),
        }
    }

    fn warn(&mut self, message: String) {
        tracing::warn!("{message}");
        if self.warnings.contains(&message) {
            return;
        }
        if self.warnings.len() == MAX_WARNINGS {
            self.warnings.pop_front();
        }
        self.warnings.push_back(message);
    }

    /// The session's trouble, if any: part of the pipeline's error.
    pub(crate) fn trouble(&self) -> Option<String> {
        self.trouble.clone()
    }

    /// The warnings, oldest first.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.warnings.iter().cloned().collect()
    }
}

/// An identity and a trust store kept as files in one directory: what the desktop apps use
/// (an iOS app keeps the same bytes in the Keychain instead). Nothing here runs unless the
/// app calls it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDir {
    dir: std::path::PathBuf,
}

impl KeyDir {
    /// Keys in `dir`.
    pub fn new(dir: impl Into<std::path::PathBuf>) -> KeyDir {
        KeyDir { dir: dir.into() }
    }

    /// `$XDG_CONFIG_HOME/tandem/<app>`, or `$HOME/.config/tandem/<app>`, or
    /// `./.tandem/<app>` where neither is set.
    pub fn default_for(app: &str) -> KeyDir {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".config")))
            .map_or_else(|| std::path::PathBuf::from(".tandem"), |b| b.join("tandem"));
        KeyDir::new(base.join(app))
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.dir
    }

    fn io(&self, what: &'static str) -> impl FnOnce(std::io::Error) -> EngineError + '_ {
        move |e| EngineError::Io {
            what,
            source: std::io::Error::new(e.kind(), format!("{}: {e}", self.dir.display())),
        }
    }

    /// The identity, created (readable by this user only) the first time.
    pub fn identity(&self) -> Result<Identity, EngineError> {
        let path = self.dir.join("identity");
        match std::fs::read(&path) {
            Ok(bytes) => Identity::from_bytes(&bytes)
                .map_err(|e| EngineError::NotPaired(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = Identity::generate()?;
                std::fs::create_dir_all(&self.dir)
                    .map_err(self.io("creating the key directory"))?;
                write_private(&path, &id.to_bytes()).map_err(self.io("writing the identity"))?;
                Ok(id)
            }
            Err(e) => Err(self.io("reading the identity")(e)),
        }
    }

    /// The paired peers (none before the first pairing).
    pub fn trust(&self) -> Result<TrustStore, EngineError> {
        let path = self.dir.join("trust");
        match std::fs::read(&path) {
            Ok(bytes) => TrustStore::from_bytes(&bytes)
                .map_err(|e| EngineError::NotPaired(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrustStore::new()),
            Err(e) => Err(self.io("reading the trust store")(e)),
        }
    }

    /// Adds a peer a pairing returned to the stored trust store.
    pub fn add_paired(&self, key: PeerKey, name: &str) -> Result<(), EngineError> {
        let mut trust = self.trust()?;
        trust.add(key, name)?;
        self.save_trust(&trust)
    }

    /// Stores the paired peers.
    pub fn save_trust(&self, trust: &TrustStore) -> Result<(), EngineError> {
        std::fs::create_dir_all(&self.dir).map_err(self.io("creating the key directory"))?;
        write_private(&self.dir.join("trust"), &trust.to_bytes())
            .map_err(self.io("writing the trust store"))
    }

    /// Identity and trust store as a pipeline's [`Security`].
    pub fn security(&self) -> Result<Security, EngineError> {
        Ok(Security {
            identity: self.identity()?,
            trust: self.trust()?,
            peer: None,
        })
    }
}

/// Writes `bytes` to `path` readable by this user only (on Unix), replacing it whole.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("new");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_pairs_trust_each_other_under_the_names_given() {
        let (a, b) = Security::paired_in_process("camera", "screen").expect("keys");
        assert_ne!(a.identity.public(), b.identity.public());
        let a_knows = a
            .trust
            .by_fingerprint(&b.identity.fingerprint())
            .expect("a trusts b");
        let b_knows = b
            .trust
            .by_fingerprint(&a.identity.fingerprint())
            .expect("b trusts a");
        assert_eq!(
            (a_knows.name.as_str(), b_knows.name.as_str()),
            ("screen", "camera")
        );
        assert_eq!((a.trust.peers().len(), b.trust.peers().len()), (1, 1));
        assert_eq!((a.peer, b.peer), (None, None));
    }

    #[test]
    fn key_dirs_create_once_and_keep_the_trust_store() {
        let dir = std::env::temp_dir().join(format!("tandem-keys-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let keys = KeyDir::new(&dir);
        let id = keys.identity().expect("created");
        assert_eq!(keys.identity().expect("read back").public(), id.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("identity"))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the identity");
        }
        assert!(keys.trust().expect("empty").peers().is_empty());
        let mut t = TrustStore::new();
        t.add(Identity::generate().expect("peer").public(), "Desk")
            .expect("add");
        keys.save_trust(&t).expect("saved");
        assert_eq!(keys.trust().expect("read back"), t);
        std::fs::write(dir.join("identity"), b"junk").expect("overwrite");
        let e = keys.identity().expect_err("damaged");
        assert!(e.to_string().contains("TDID"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
