//! Counts of live FFI objects, so a leak across the boundary (a foreign reference never
//! released, a pipeline never torn down) shows up as a number that does not come back.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of object counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Sender,
    Receiver,
    DecodedFrame,
    EncodedFrame,
    Identity,
    TrustStore,
    Discovery,
    Advertisement,
    Browse,
    Transport,
    TransportInbox,
    TestPattern,
}

static COUNTS: [AtomicU64; 12] = [const { AtomicU64::new(0) }; 12];

/// Held by each counted object: counts it while it lives.
#[derive(Debug)]
pub(crate) struct Live(Kind);

impl Live {
    pub(crate) fn new(kind: Kind) -> Live {
        COUNTS[kind as usize].fetch_add(1, Ordering::Relaxed);
        Live(kind)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        COUNTS[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

/// How many of each FFI object are alive now (for leak checks in tests and debug builds of
/// apps: every count returns to its old value once the objects are released).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct LiveObjects {
    /// Senders.
    pub senders: u64,
    /// Receivers.
    pub receivers: u64,
    /// Decoded frames not yet released.
    pub decoded_frames: u64,
    /// Encoded frames not yet released.
    pub encoded_frames: u64,
    /// Identities.
    pub identities: u64,
    /// Trust stores.
    pub trust_stores: u64,
    /// Discovery handles.
    pub discoveries: u64,
    /// Advertisements.
    pub advertisements: u64,
    /// Browses.
    pub browses: u64,
    /// App transports a session (or pairing) holds: each holds the app's
    /// `DatagramTransport` until the session has stopped.
    pub transports: u64,
    /// Transport inboxes (one per started transport, until the app releases it).
    pub transport_inboxes: u64,
    /// Test patterns.
    pub test_patterns: u64,
}

/// The live-object counts now.
#[uniffi::export]
pub fn live_objects() -> LiveObjects {
    let n = |k: Kind| COUNTS[k as usize].load(Ordering::Relaxed);
    LiveObjects {
        senders: n(Kind::Sender),
        receivers: n(Kind::Receiver),
        decoded_frames: n(Kind::DecodedFrame),
        encoded_frames: n(Kind::EncodedFrame),
        identities: n(Kind::Identity),
        trust_stores: n(Kind::TrustStore),
        discoveries: n(Kind::Discovery),
        advertisements: n(Kind::Advertisement),
        browses: n(Kind::Browse),
        transports: n(Kind::Transport),
        transport_inboxes: n(Kind::TransportInbox),
        test_patterns: n(Kind::TestPattern),
    }
}
