//! The session handshake: Noise IK (`Noise_IK_25519_ChaChaPoly_BLAKE2s`), as WireGuard uses
//! it. The initiator knows the responder's static key (paired before) and sends its own,
//! encrypted, in the first message; the responder accepts only initiators in its trust
//! store. One round trip, mutual authentication, forward secrecy from the ephemeral keys.
//!
//! ```text
//! initiator → responder   header (type 8) | Noise message 1 (e, es, s, ss; 96 B + payload)
//!                                          | mac1 (16 B)
//! responder → initiator   header (type 9) | mac1 of the message 1 answered (16 B)
//!                                          | Noise message 2 (e, ee, se; 48 B + payload)
//! ```
//!
//! `mac1` is HMAC-SHA256 over message 1, keyed by a hash of the responder's public key,
//! truncated to 16 bytes (the idea of WireGuard's `mac1`). Only a device that knows the
//! responder's key — one it paired with — can make it, and checking it costs a hash, not a
//! Diffie-Hellman: a flood of forged handshakes is refused before the responder spends its
//! rate-limited handshake budget on them, so it cannot starve the paired peer's handshake.
//! A reply repeats the `mac1` of the message 1 it answers, so an initiator drops a stale
//! reply (the answer to an older call, replayed) without spending its handshake state.
//! Message 1's payload is the initiator's wall-clock time (µs, 8 bytes), and a responder
//! takes from each peer only message 1s newer than the last it took (see
//! `secure::SecureConfig::wall_clock_us`).
//!
//! Message 1 carries the protocol version and a random session nonce, so a replayed message
//! 1 is recognised (see `secure`). Each side then takes its two transport keys from the
//! Noise split (initiator sends with the first) into [`super::seal::SealKeys`].

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use snow::{Builder, HandshakeState};

use super::SecurityError;
use super::identity::{Identity, PeerKey, TrustStore};

const PATTERN: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// Binds every handshake to this protocol and version: a Tandem v2 handshake cannot be
/// replayed into v1.
const PROLOGUE: &[u8] = b"tandem/1 session";
/// Longest handshake message accepted (Noise message 1 and its mac).
pub const MAX_MESSAGE: usize = 256;
/// Bytes of `mac1` after Noise message 1.
pub const MAC1_LEN: usize = 16;

fn mac1(responder: &PeerKey, msg: &[u8]) -> [u8; MAC1_LEN] {
    let key = Sha256::new()
        .chain_update(b"tandem/1 mac1")
        .chain_update(responder.0)
        .finalize();
    // HMAC takes keys of any length: new_from_slice cannot fail.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(&key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    };
    m.update(msg);
    let mut out = [0u8; MAC1_LEN];
    out.copy_from_slice(&m.finalize().into_bytes()[..MAC1_LEN]);
    out
}

/// The `mac1` tag that ends `msg1` (zeros for a message too short to carry one): an
/// identifier of the exact message, for recognising replays.
pub fn mac1_tag(msg1: &[u8]) -> [u8; MAC1_LEN] {
    let mut tag = [0u8; MAC1_LEN];
    if msg1.len() >= MAC1_LEN {
        tag.copy_from_slice(&msg1[msg1.len() - MAC1_LEN..]);
    }
    tag
}

/// Whether `msg1` ends in a valid `mac1` for the responder `ours`: the cheap check that
/// comes before any Diffie-Hellman. Constant-time in the mac's bytes.
pub fn mac1_valid(ours: &PeerKey, msg1: &[u8]) -> bool {
    if msg1.len() <= MAC1_LEN || msg1.len() > MAX_MESSAGE {
        return false;
    }
    let (body, tag) = msg1.split_at(msg1.len() - MAC1_LEN);
    let want = mac1(ours, body);
    want.iter().zip(tag).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Keys for one session, from a finished handshake.
#[derive(Debug)]
pub struct SessionKeys {
    /// Key for what we send.
    pub send: [u8; 32],
    /// Key for what we receive.
    pub recv: [u8; 32],
    /// The authenticated peer.
    pub peer: PeerKey,
}

fn builder() -> Result<Builder<'static>, SecurityError> {
    let params = PATTERN
        .parse()
        .map_err(|e| SecurityError::Crypto(format!("{PATTERN}: {e:?}")))?;
    Builder::new(params).prologue(PROLOGUE).map_err(noise)
}

fn noise(e: snow::Error) -> SecurityError {
    SecurityError::Crypto(format!("noise: {e}"))
}

/// The initiator half, between its message and the reply.
pub struct Initiator {
    state: HandshakeState,
    peer: PeerKey,
}

impl std::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Initiator")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl Initiator {
    /// Starts a handshake with `peer`; returns the state and message 1 (carrying
    /// `payload`).
    pub fn start(
        identity: &Identity,
        peer: PeerKey,
        payload: &[u8],
    ) -> Result<(Initiator, Vec<u8>), SecurityError> {
        let mut state = builder()?
            .local_private_key(identity.secret())
            .map_err(noise)?
            .remote_public_key(&peer.0)
            .map_err(noise)?
            .build_initiator()
            .map_err(noise)?;
        let mut msg = vec![0u8; MAX_MESSAGE];
        let n = state.write_message(payload, &mut msg).map_err(noise)?;
        msg.truncate(n);
        if msg.len() + MAC1_LEN > MAX_MESSAGE {
            return Err(SecurityError::Crypto("handshake payload too long".into()));
        }
        msg.extend_from_slice(&mac1(&peer, &msg));
        Ok((Initiator { state, peer }, msg))
    }

    /// Finishes with the responder's message 2; returns the session keys and its payload.
    pub fn finish(mut self, msg2: &[u8]) -> Result<(SessionKeys, Vec<u8>), SecurityError> {
        let mut payload = vec![0u8; MAX_MESSAGE];
        let n = self
            .state
            .read_message(msg2, &mut payload)
            .map_err(|_| SecurityError::Forged)?;
        payload.truncate(n);
        let (send, recv) = self.state.dangerously_get_raw_split();
        Ok((
            SessionKeys {
                send,
                recv,
                peer: self.peer,
            },
            payload,
        ))
    }
}

/// What a responder made of a message 1.
#[derive(Debug)]
pub struct Accepted {
    /// The session's keys (the peer in them is authenticated and trusted).
    pub keys: SessionKeys,
    /// Message 2, to send back.
    pub reply: Vec<u8>,
    /// The initiator's payload.
    pub payload: Vec<u8>,
}

/// Answers a message 1 from a trusted initiator, replying with `payload`. A message that is
/// not a valid handshake is [`SecurityError::Forged`]; a valid one from a key not in `trust`
/// is [`SecurityError::UnknownPeer`] (and gets no reply: nothing is learned).
pub fn respond(
    identity: &Identity,
    trust: &TrustStore,
    msg1: &[u8],
    payload: &[u8],
) -> Result<Accepted, SecurityError> {
    if !mac1_valid(&identity.public(), msg1) {
        return Err(SecurityError::Forged);
    }
    let msg1 = &msg1[..msg1.len() - MAC1_LEN];
    let mut state = builder()?
        .local_private_key(identity.secret())
        .map_err(noise)?
        .build_responder()
        .map_err(noise)?;
    let mut theirs = vec![0u8; MAX_MESSAGE];
    let n = state
        .read_message(msg1, &mut theirs)
        .map_err(|_| SecurityError::Forged)?;
    theirs.truncate(n);
    let peer = state
        .get_remote_static()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .map(PeerKey)
        .ok_or(SecurityError::Forged)?;
    if !trust.contains(&peer) {
        return Err(SecurityError::UnknownPeer(peer.fingerprint()));
    }
    let mut reply = vec![0u8; MAX_MESSAGE];
    let m = state.write_message(payload, &mut reply).map_err(noise)?;
    reply.truncate(m);
    let (initiator_sends, responder_sends) = state.dangerously_get_raw_split();
    Ok(Accepted {
        keys: SessionKeys {
            send: responder_sends,
            recv: initiator_sends,
            peer,
        },
        reply,
        payload: theirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (Identity, Identity, TrustStore) {
        let (a, b) = (
            Identity::generate().expect("a"),
            Identity::generate().expect("b"),
        );
        let mut trust_b = TrustStore::new();
        trust_b.add(a.public(), "a").expect("trust");
        (a, b, trust_b)
    }

    #[test]
    fn paired_peers_agree_on_keys() {
        let (a, b, trust_b) = pair();
        let (init, msg1) = Initiator::start(&a, b.public(), b"hello").expect("start");
        let accepted = respond(&b, &trust_b, &msg1, b"welcome").expect("accepted");
        assert_eq!(accepted.payload, b"hello");
        assert_eq!(accepted.keys.peer, a.public());
        let (keys, payload) = init.finish(&accepted.reply).expect("finished");
        assert_eq!(payload, b"welcome");
        assert_eq!(keys.peer, b.public());
        assert_eq!(keys.send, accepted.keys.recv);
        assert_eq!(keys.recv, accepted.keys.send);
        assert_ne!(keys.send, keys.recv);
    }

    #[test]
    fn strangers_and_forgeries_are_refused() {
        let (a, b, _) = pair();
        // B trusts nobody: A is valid but unknown.
        let (_, msg1) = Initiator::start(&a, b.public(), b"").expect("start");
        match respond(&b, &TrustStore::new(), &msg1, b"") {
            Err(SecurityError::UnknownPeer(id)) => assert_eq!(id, a.fingerprint()),
            other => panic!("expected an unknown peer, got {other:?}"),
        }
        // A message for another responder fails its mac1, before any Diffie-Hellman.
        assert!(!mac1_valid(
            &Identity::generate().expect("x").public(),
            &msg1
        ));
        assert!(mac1_valid(&b.public(), &msg1));
        let c = Identity::generate().expect("c");
        let mut trust_c = TrustStore::new();
        trust_c.add(a.public(), "a").expect("trust");
        assert!(matches!(
            respond(&c, &trust_c, &msg1, b""),
            Err(SecurityError::Forged)
        ));
        // Bit flips anywhere are forgeries.
        let (_, _, trust_b) = pair();
        for i in [0, 40, msg1.len() - 1] {
            let mut bad = msg1.clone();
            bad[i] ^= 1;
            assert!(respond(&b, &trust_b, &bad, b"").is_err(), "byte {i}");
        }
        assert!(matches!(
            respond(&b, &trust_b, &[0; 300], b""),
            Err(SecurityError::Forged)
        ));
        // A reply from an impostor who does not hold B's key fails at the initiator.
        let (init, msg1) = Initiator::start(&a, b.public(), b"").expect("start");
        let impostor = Identity::generate().expect("impostor");
        let mut trust_i = TrustStore::new();
        trust_i.add(a.public(), "a").expect("trust");
        assert!(respond(&impostor, &trust_i, &msg1, b"").is_err());
        let fake = vec![7u8; 48];
        assert!(matches!(init.finish(&fake), Err(SecurityError::Forged)));
    }
}
