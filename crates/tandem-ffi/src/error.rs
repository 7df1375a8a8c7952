//! The one error type every throwing call uses: a Swift `throws` whose case says what kind
//! of trouble it is and whose message says what to do.

use tandem::EngineError;

/// Why a call failed. Every case carries a message written for the developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum TandemError {
    /// An argument was out of range or malformed (the message names it).
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What was wrong.
        message: String,
    },
    /// The peer is not paired with this device (pair first), or none was named.
    #[error("{message}")]
    NotPaired {
        /// What was wrong.
        message: String,
    },
    /// Pairing did not succeed (wrong code, too many attempts, no answer in time).
    #[error("pairing failed: {message}")]
    Pairing {
        /// Why.
        message: String,
    },
    /// An identity or trust store could not be made or read.
    #[error("keys: {message}")]
    Keys {
        /// Why.
        message: String,
    },
    /// The encoder or decoder failed, or a codec library is missing.
    #[error("codec: {message}")]
    Codec {
        /// Why.
        message: String,
    },
    /// No path, a socket or the network failed.
    #[error("network: {message}")]
    Network {
        /// Why.
        message: String,
    },
    /// Discovery (Bonjour, mDNS) failed or is unavailable; on iOS, often the Local Network
    /// permission.
    #[error("discovery: {message}")]
    Discovery {
        /// Why.
        message: String,
    },
    /// A sender has no receiver to send to yet: wait for `isConnected()` (or the first
    /// `onKeyframeRequested`).
    #[error("{message}")]
    NotConnected {
        /// What to wait for.
        message: String,
    },
    /// The object was already stopped.
    #[error("{message}")]
    Stopped {
        /// What was stopped.
        message: String,
    },
}

impl TandemError {
    pub(crate) fn invalid(message: impl Into<String>) -> TandemError {
        TandemError::InvalidArgument {
            message: message.into(),
        }
    }

    /// The same case with its message rewritten by `f`.
    pub(crate) fn map_message(mut self, f: impl FnOnce(String) -> String) -> TandemError {
        use TandemError::*;
        let (InvalidArgument { message }
        | NotPaired { message }
        | Pairing { message }
        | Keys { message }
        | Codec { message }
        | Network { message }
        | Discovery { message }
        | NotConnected { message }
        | Stopped { message }) = &mut self;
        *message = f(std::mem::take(message));
        self
    }
}

impl From<EngineError> for TandemError {
    fn from(e: EngineError) -> TandemError {
        let message = e.to_string();
        match e {
            // A silent peer reaches the app through on_error and Stats.error, never as a
            // thrown error; were one thrown, it would be the network's.
            EngineError::Path(_)
            | EngineError::Io { .. }
            | EngineError::Driver(_)
            | EngineError::PeerGone { .. }
            | EngineError::NoAnswer { .. } => TandemError::Network { message },
            EngineError::Codec(_) => TandemError::Codec { message },
            EngineError::NotPaired(_) => TandemError::NotPaired { message },
            EngineError::Keys(_) => TandemError::Keys { message },
            EngineError::Pairing(f) => TandemError::Pairing {
                message: f.to_string(),
            },
            EngineError::NotConnected => TandemError::NotConnected { message },
            EngineError::Config(_) => TandemError::InvalidArgument { message },
            EngineError::Stopped => TandemError::Stopped { message },
        }
    }
}

impl From<tandem_proto::security::SecurityError> for TandemError {
    fn from(e: tandem_proto::security::SecurityError) -> TandemError {
        TandemError::Keys {
            message: e.to_string(),
        }
    }
}

impl From<tandem_net::DiscoveryError> for TandemError {
    fn from(e: tandem_net::DiscoveryError) -> TandemError {
        TandemError::Discovery {
            message: e.to_string(),
        }
    }
}

impl From<tandem_codec::CodecError> for TandemError {
    fn from(e: tandem_codec::CodecError) -> TandemError {
        TandemError::Codec {
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_keep_their_message_under_the_right_case() {
        let e: TandemError = EngineError::NotPaired("pair first".into()).into();
        assert_eq!(
            e,
            TandemError::NotPaired {
                message: "not paired: pair first".into()
            }
        );
        let e: TandemError = EngineError::Stopped.into();
        assert!(matches!(e, TandemError::Stopped { .. }));
        assert_eq!(e.to_string(), "the pipeline has stopped");
    }
}
