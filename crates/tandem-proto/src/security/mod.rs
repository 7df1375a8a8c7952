//! Security: only paired peers stream, nobody else can watch, and nothing a stranger sends
//! does more than bump a counter.
//!
//! - [`identity`]: each device's long-term X25519 [`Identity`], a peer's [`PeerKey`] and its
//!   fingerprint (the peer id discovery advertises), the [`TrustStore`] of paired peers.
//! - [`pairing`]: the first meeting. One device shows a short code, the other types it;
//!   SPAKE2 turns the code into a shared key without letting an eavesdropper or a man in
//!   the middle test guesses offline, and both exchange their identity keys under it.
//!   Wrong codes are counted and limited.
//! - [`handshake`]: every session starts with a Noise IK handshake between paired peers
//!   (one round trip, mutual authentication, fresh keys).
//! - [`seal`]: every datagram after it is sealed with ChaCha20-Poly1305, the packet number
//!   as nonce, the header as associated data, a sliding replay window, keys rotating every
//!   2³² packets.
//! - [`secure`]: [`Secure`], the endpoint that wraps a [`crate::Sender`] or
//!   [`crate::Receiver`] and does all of the above around it, sans-IO like them.
//!
//! The only thing this module takes from the operating system is randomness (key
//! generation, Noise ephemerals, SPAKE2 scalars); it still never reads a clock or touches
//! a socket.

pub mod handshake;
pub mod identity;
pub mod pairing;
pub mod seal;
pub mod secure;

pub use identity::{Identity, PeerKey, TrustStore, TrustedPeer};
pub use pairing::{Pairing, PairingConfig, PairingEvent, PairingRole};
pub use secure::{
    MAX_VERSION_REPORTS, MaybeSecure, Secure, SecureConfig, SecureEvent, SecurityEvent,
    SecurityStats, SessionRole,
};

/// What went wrong in the security layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// A datagram or handshake message failed authentication (forged, damaged, replayed or
    /// for other keys).
    #[error("authentication failed")]
    Forged,
    /// A valid handshake from a key this device has not paired with.
    #[error("peer {0} is not paired with this device")]
    UnknownPeer(String),
    /// Not even a datagram of ours.
    #[error("malformed datagram")]
    Malformed,
    /// The session has used up its packet numbers and must handshake again.
    #[error("the session's keys are used up")]
    KeysExhausted,
    /// A stored identity or trust store cannot be read.
    #[error("{0}")]
    BadFormat(String),
    /// The crypto library failed (no randomness, a bad parameter).
    #[error("crypto: {0}")]
    Crypto(String),
}
