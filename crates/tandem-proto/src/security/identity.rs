//! Long-term identities: this device's [`Identity`] (an X25519 key pair, the static key of
//! Noise handshakes), a peer's public [`PeerKey`] and its fingerprint (the peer id
//! discovery advertises), and the [`TrustStore`] of paired peers.
//!
//! The engine does no file I/O: the app stores [`Identity::to_bytes`] and
//! [`TrustStore::to_bytes`] where it keeps secrets (the Keychain on Apple) and hands them
//! back with `from_bytes`. Both formats carry a magic and a version so that a wrong or
//! damaged blob is an error, not a different key.

use std::fmt;

use sha2::{Digest, Sha256};
use snow::resolvers::{CryptoResolver, DefaultResolver};

use super::SecurityError;

/// Bytes of an X25519 key.
pub const KEY_LEN: usize = 32;
const IDENTITY_MAGIC: &[u8; 4] = b"TDID";
const TRUST_MAGIC: &[u8; 4] = b"TDTS";
const FORMAT_VERSION: u8 = 1;
/// Longest peer name a trust store keeps, bytes.
pub const MAX_NAME: usize = 100;
/// Most peers a trust store holds (a device pairs with a handful, not thousands).
pub const MAX_PEERS: usize = 256;

/// A peer's long-term public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerKey(pub [u8; KEY_LEN]);

impl PeerKey {
    /// The peer id: the first 16 bytes of SHA-256 over a label and the key, in hex. A
    /// spoofed advertisement can copy it but not the key behind it, and the handshake
    /// proves the key.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"tandem peer id v1")
            .chain_update(self.0)
            .finalize();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({})", self.fingerprint())
    }
}

/// This device's identity: an X25519 key pair. The secret never leaves except through
/// [`Identity::to_bytes`].
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    secret: [u8; KEY_LEN],
    public: PeerKey,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.public.fingerprint())
    }
}

fn public_of(secret: &[u8; KEY_LEN]) -> Result<PeerKey, SecurityError> {
    let mut dh = DefaultResolver
        .resolve_dh(&snow::params::DHChoice::Curve25519)
        .ok_or_else(|| SecurityError::Crypto("no X25519 implementation".into()))?;
    dh.set(secret);
    let mut public = [0u8; KEY_LEN];
    public.copy_from_slice(dh.pubkey());
    Ok(PeerKey(public))
}

impl Identity {
    /// A new random identity (from the operating system's random source).
    pub fn generate() -> Result<Identity, SecurityError> {
        let mut secret = [0u8; KEY_LEN];
        getrandom::fill(&mut secret)
            .map_err(|e| SecurityError::Crypto(format!("no randomness: {e}")))?;
        Identity::from_secret(secret)
    }

    fn from_secret(secret: [u8; KEY_LEN]) -> Result<Identity, SecurityError> {
        Ok(Identity {
            public: public_of(&secret)?,
            secret,
        })
    }

    /// The public half, what peers pin.
    pub fn public(&self) -> PeerKey {
        self.public
    }

    /// The peer id others see (see [`PeerKey::fingerprint`]).
    pub fn fingerprint(&self) -> String {
        self.public.fingerprint()
    }

    pub(crate) fn secret(&self) -> &[u8; KEY_LEN] {
        &self.secret
    }

    /// The identity for safekeeping: `TDID`, format version, the secret key (37 bytes).
    /// Treat it as a password.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + KEY_LEN);
        out.extend_from_slice(IDENTITY_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.secret);
        out
    }

    /// Reads what [`Identity::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Identity, SecurityError> {
        let rest = bytes
            .strip_prefix(IDENTITY_MAGIC.as_slice())
            .ok_or_else(|| {
                SecurityError::BadFormat("not a Tandem identity (no TDID magic)".into())
            })?;
        match rest.split_first() {
            Some((&FORMAT_VERSION, key)) if key.len() == KEY_LEN => {
                let mut secret = [0u8; KEY_LEN];
                secret.copy_from_slice(key);
                Identity::from_secret(secret)
            }
            Some((&FORMAT_VERSION, key)) => Err(SecurityError::BadFormat(format!(
                "identity key is {} bytes, expected {KEY_LEN}",
                key.len()
            ))),
            Some((v, _)) => Err(SecurityError::BadFormat(format!(
                "identity format version {v}; this build reads {FORMAT_VERSION}"
            ))),
            None => Err(SecurityError::BadFormat("identity is truncated".into())),
        }
    }
}

impl Drop for Identity {
    /// Zeroes the secret, best effort: without unsafe code there is no volatile write, so
    /// `black_box` is what keeps the compiler from dropping the stores.
    fn drop(&mut self) {
        self.secret = [0; KEY_LEN];
        std::hint::black_box(&self.secret);
    }
}

/// A paired peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedPeer {
    /// Its key.
    pub key: PeerKey,
    /// What the user called it (its device name at pairing time).
    pub name: String,
}

/// The peers this device has paired with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustStore {
    peers: Vec<TrustedPeer>,
}

impl TrustStore {
    /// An empty store.
    pub fn new() -> TrustStore {
        TrustStore::default()
    }

    /// Adds (or renames) a peer. Fails when the store is full.
    pub fn add(&mut self, key: PeerKey, name: &str) -> Result<(), SecurityError> {
        let name: String = name.chars().take(MAX_NAME).collect();
        if let Some(p) = self.peers.iter_mut().find(|p| p.key == key) {
            p.name = name;
            return Ok(());
        }
        if self.peers.len() >= MAX_PEERS {
            return Err(SecurityError::BadFormat(format!(
                "the trust store is full ({MAX_PEERS} peers)"
            )));
        }
        self.peers.push(TrustedPeer { key, name });
        Ok(())
    }

    /// Forgets a peer; returns whether it was there.
    pub fn remove(&mut self, key: &PeerKey) -> bool {
        let before = self.peers.len();
        self.peers.retain(|p| p.key != *key);
        self.peers.len() != before
    }

    /// Whether `key` is paired.
    pub fn contains(&self, key: &PeerKey) -> bool {
        self.peers.iter().any(|p| p.key == *key)
    }

    /// The paired peer whose fingerprint (peer id) is `id`.
    pub fn by_fingerprint(&self, id: &str) -> Option<&TrustedPeer> {
        self.peers.iter().find(|p| p.key.fingerprint() == id)
    }

    /// Every paired peer.
    pub fn peers(&self) -> &[TrustedPeer] {
        &self.peers
    }

    /// The store for safekeeping: `TDTS`, format version, count u16, then per peer its key
    /// and its name (length u8, UTF-8).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(TRUST_MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(self.peers.len() as u16).to_be_bytes());
        for p in &self.peers {
            out.extend_from_slice(&p.key.0);
            let name = &p.name.as_bytes()[..p.name.len().min(MAX_NAME)];
            out.push(name.len() as u8);
            out.extend_from_slice(name);
        }
        out
    }

    /// Reads what [`TrustStore::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<TrustStore, SecurityError> {
        let bad = |why: &str| SecurityError::BadFormat(format!("trust store: {why}"));
        let rest = bytes
            .strip_prefix(TRUST_MAGIC.as_slice())
            .ok_or_else(|| bad("no TDTS magic"))?;
        let (&version, rest) = rest.split_first().ok_or_else(|| bad("truncated"))?;
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "format version {version}; this build reads {FORMAT_VERSION}"
            )));
        }
        let count = rest
            .get(..2)
            .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
            .ok_or_else(|| bad("truncated"))?;
        if count > MAX_PEERS {
            return Err(bad(&format!("{count} peers, at most {MAX_PEERS}")));
        }
        let mut at = 2;
        let mut store = TrustStore::new();
        for i in 0..count {
            let key = rest
                .get(at..at + KEY_LEN)
                .ok_or_else(|| bad(&format!("peer {i} truncated")))?;
            at += KEY_LEN;
            let len = usize::from(
                *rest
                    .get(at)
                    .ok_or_else(|| bad(&format!("peer {i} truncated")))?,
            );
            at += 1;
            let name = rest
                .get(at..at + len)
                .ok_or_else(|| bad(&format!("peer {i} truncated")))?;
            at += len;
            let name = std::str::from_utf8(name)
                .map_err(|_| bad(&format!("peer {i}'s name is not UTF-8")))?;
            let mut k = [0u8; KEY_LEN];
            k.copy_from_slice(key);
            store.add(PeerKey(k), name)?;
        }
        if at != rest.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_refuse_other_blobs() {
        let id = Identity::generate().expect("identity");
        let back = Identity::from_bytes(&id.to_bytes()).expect("read back");
        assert_eq!(back.public(), id.public());
        assert_eq!(id.fingerprint().len(), 32);
        assert_ne!(Identity::generate().expect("another").public(), id.public());
        let e = Identity::from_bytes(b"XXXX\x01").expect_err("magic");
        assert!(e.to_string().contains("TDID"), "{e}");
        let mut v2 = id.to_bytes();
        v2[4] = 2;
        assert!(
            Identity::from_bytes(&v2)
                .expect_err("version")
                .to_string()
                .contains("version 2")
        );
        assert!(Identity::from_bytes(&id.to_bytes()[..20]).is_err());
    }

    #[test]
    fn trust_stores_round_trip_and_look_up_by_fingerprint() {
        let (a, b) = (
            Identity::generate().expect("a").public(),
            Identity::generate().expect("b").public(),
        );
        let mut store = TrustStore::new();
        store.add(a, "Ana's iPad").expect("add");
        store.add(b, "Desk").expect("add");
        store.add(a, "Kitchen").expect("rename");
        assert_eq!(store.peers().len(), 2);
        let back = TrustStore::from_bytes(&store.to_bytes()).expect("read back");
        assert_eq!(back, store);
        assert_eq!(
            back.by_fingerprint(&a.fingerprint())
                .map(|p| p.name.as_str()),
            Some("Kitchen")
        );
        assert!(back.contains(&b));
        let mut gone = back.clone();
        assert!(gone.remove(&b) && !gone.contains(&b));
        let bytes = store.to_bytes();
        for cut in [3, 6, 10, bytes.len() - 1] {
            assert!(
                TrustStore::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(
            TrustStore::from_bytes(&extra)
                .expect_err("trailing")
                .to_string()
                .contains("trailing")
        );
    }
}
