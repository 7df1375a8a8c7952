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
    /// package). The message includes the codec's own, so it is not also given as the
    /// error's source (a chain printed with `{:#}` would say it twice).
    #[error("codec: {0}")]
    Codec(CodecError),
    /// The network side ended (path lost, socket failed); the message includes the
    /// driver's, as for [`EngineError::Codec`].
    #[error("network: {0}")]
    Driver(DriverError),
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

impl From<CodecError> for EngineError {
    fn from(e: CodecError) -> EngineError {
        EngineError::Codec(e)
    }
}

impl From<DriverError> for EngineError {
    fn from(e: DriverError) -> EngineError {
        EngineError::Driver(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tandem-send` printed "network: the session's path is gone: X: the session's path is
    /// gone: X": the message and its source, each with the driver's reason.
    #[test]
    fn a_chain_says_the_driver_s_reason_once() {
        let e = EngineError::from(DriverError::PathLost("wlan0 went away".into()));
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            chain = format!("{chain}: {s}");
            source = s.source();
        }
        assert_eq!(chain.matches("wlan0 went away").count(), 1, "{chain}");
    }
}
