//! Identity and trust store as objects: bytes in, bytes out. The engine writes no files;
//! an iOS app keeps both blobs in the Keychain (the identity holds a secret key) and
//! restores them at launch.

use std::sync::{Arc, Mutex, MutexGuard};

use tandem_proto::security::{self as sec, PeerKey};

use crate::error::TandemError;
use crate::live::{Kind, Live};

/// This device's long-term key pair. Its fingerprint is the peer id discovery advertises.
#[derive(Debug, uniffi::Object)]
pub struct Identity {
    inner: sec::Identity,
    _live: Live,
}

impl Identity {
    pub(crate) fn wrap(inner: sec::Identity) -> Arc<Identity> {
        Arc::new(Identity {
            inner,
            _live: Live::new(Kind::Identity),
        })
    }

    pub(crate) fn engine(&self) -> &sec::Identity {
        &self.inner
    }
}

#[uniffi::export]
impl Identity {
    /// A new random identity (store it: a lost identity means pairing again).
    #[uniffi::constructor]
    pub fn generate() -> Result<Arc<Identity>, TandemError> {
        Ok(Identity::wrap(sec::Identity::generate()?))
    }

    /// An identity saved with [`Identity::to_bytes`].
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<Identity>, TandemError> {
        Ok(Identity::wrap(sec::Identity::from_bytes(&bytes)?))
    }

    /// The identity, secret key included, for the Keychain.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.inner.to_bytes()
    }

    /// The public key (32 bytes), what a peer pins.
    pub fn public_key(&self) -> Vec<u8> {
        self.inner.public().0.to_vec()
    }

    /// The public key's fingerprint (32 hex digits): the peer id in discovery.
    pub fn fingerprint(&self) -> String {
        self.inner.fingerprint()
    }
}

/// A paired device.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PairedDevice {
    /// The name it gave when pairing (or the app gave it).
    pub name: String,
    /// Its key's fingerprint (its peer id in discovery).
    pub fingerprint: String,
    /// Its public key, 32 bytes.
    pub public_key: Vec<u8>,
}

impl PairedDevice {
    pub(crate) fn new(key: PeerKey, name: String) -> PairedDevice {
        PairedDevice {
            name,
            fingerprint: key.fingerprint(),
            public_key: key.0.to_vec(),
        }
    }
}

/// The devices this one has paired with. Shared by reference: adding a device after
/// pairing is seen by pipelines started afterwards.
#[derive(Debug, uniffi::Object)]
pub struct TrustStore {
    inner: Mutex<sec::TrustStore>,
    _live: Live,
}

impl TrustStore {
    fn wrap(inner: sec::TrustStore) -> Arc<TrustStore> {
        Arc::new(TrustStore {
            inner: Mutex::new(inner),
            _live: Live::new(Kind::TrustStore),
        })
    }

    fn lock(&self) -> MutexGuard<'_, sec::TrustStore> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn engine(&self) -> sec::TrustStore {
        self.lock().clone()
    }

    pub(crate) fn key_of(&self, fingerprint: &str) -> Option<PeerKey> {
        self.lock().by_fingerprint(fingerprint).map(|p| p.key)
    }
}

pub(crate) fn peer_key(bytes: &[u8]) -> Result<PeerKey, TandemError> {
    let key: [u8; 32] = bytes.try_into().map_err(|_| {
        TandemError::invalid(format!("public_key must be 32 bytes (got {})", bytes.len()))
    })?;
    Ok(PeerKey(key))
}

#[uniffi::export]
impl TrustStore {
    /// An empty trust store.
    #[uniffi::constructor]
    pub fn new() -> Arc<TrustStore> {
        TrustStore::wrap(sec::TrustStore::new())
    }

    /// A trust store saved with [`TrustStore::to_bytes`].
    #[uniffi::constructor]
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Arc<TrustStore>, TandemError> {
        Ok(TrustStore::wrap(sec::TrustStore::from_bytes(&bytes)?))
    }

    /// The trust store, for storage (public keys and names only).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.lock().to_bytes()
    }

    /// Trusts a device (what [`crate::pair`] returned), replacing its name if known.
    pub fn add(&self, device: PairedDevice) -> Result<(), TandemError> {
        let key = peer_key(&device.public_key)?;
        Ok(self.lock().add(key, &device.name)?)
    }

    /// Forgets the device with this fingerprint; whether it was there.
    pub fn remove(&self, fingerprint: String) -> bool {
        let mut store = self.lock();
        match store.by_fingerprint(&fingerprint).map(|p| p.key) {
            Some(key) => store.remove(&key),
            None => false,
        }
    }

    /// The paired devices.
    pub fn devices(&self) -> Vec<PairedDevice> {
        self.lock()
            .peers()
            .iter()
            .map(|p| PairedDevice::new(p.key, p.name.clone()))
            .collect()
    }

    /// The paired device with this fingerprint (a discovered peer's `peer_id`), if any.
    pub fn device(&self, fingerprint: String) -> Option<PairedDevice> {
        self.lock()
            .by_fingerprint(&fingerprint)
            .map(|p| PairedDevice::new(p.key, p.name.clone()))
    }
}

/// Two fresh identities that trust each other, as if paired: both ends of a session in one
/// process (tests, a loopback demo). Devices meeting for the first time use [`crate::pair`].
#[derive(Debug, Clone, uniffi::Record)]
pub struct LocalPair {
    /// The first device's keys.
    pub first: crate::types::SecurityConfig,
    /// The second device's keys.
    pub second: crate::types::SecurityConfig,
}

/// Keys for both ends in one process (see [`LocalPair`]).
#[uniffi::export]
pub fn paired_in_process(
    first_name: String,
    second_name: String,
) -> Result<LocalPair, TandemError> {
    let (a, b) = tandem::Security::paired_in_process(&first_name, &second_name)?;
    let side = |s: tandem::Security| crate::types::SecurityConfig {
        identity: Identity::wrap(s.identity),
        trust: TrustStore::wrap(s.trust),
        peer_fingerprint: None,
    };
    Ok(LocalPair {
        first: side(a),
        second: side(b),
    })
}
