//! Why a pipeline could not start or had to stop.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tandem_codec::CodecError;
use tandem_net::{DriverError, PathError};

/// A pipeline's error. Each message says what failed and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No interface fits the path preference and the peer.
    #[error("choosing a path: {0}")]
    Path(#[from] PathError),
    /// A system call failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// The encoder or decoder failed (or a system library is missing: the message names the
    /// package).
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    /// The network side ended (path lost, socket failed).
    #[error("network: {0}")]
    Driver(#[from] DriverError),
    /// The peer fell silent.
    #[error("the peer at {peer} has sent nothing for {:.1} s; it is gone", silent.as_secs_f64())]
    PeerGone {
        /// Its address.
        peer: SocketAddr,
        /// For how long.
        silent: Duration,
    },
    /// Nobody answered.
    #[error("no answer from {peer} within {:.1} s (is a receiver listening there?)", waited.as_secs_f64())]
    NoAnswer {
        /// Where we sent.
        peer: SocketAddr,
        /// How long we waited.
        waited: Duration,
    },
    /// The security layer cannot start: no pairing with the peer.
    #[error("not paired: {0}")]
    NotPaired(String),
    /// An identity or trust store could not be made or read (no randomness, bytes that are
    /// not a Tandem key file).
    #[error("keys: {0}")]
    Keys(#[from] tandem_proto::security::SecurityError),
    /// Pairing did not succeed.
    #[error("pairing failed: {0}")]
    Pairing(tandem_proto::security::pairing::PairingFailure),
    /// No receiver to send to yet (none has reached a listening sender, or the handshake
    /// is not done).
    #[error("no receiver is connected yet: wait until the sender is connected")]
    NotConnected,
    /// The settings contradict each other (path `both` with a single address).
    #[error("{0}")]
    Config(String),
    /// The pipeline was already stopped.
    #[error("the pipeline has stopped")]
    Stopped,
}

impl EngineError {
    pub(crate) fn io(what: &'static str) -> impl FnOnce(io::Error) -> EngineError {
        move |source| EngineError::Io { what, source }
    }
}
