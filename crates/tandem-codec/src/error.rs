//! `CodecError`: everything that can go wrong turning pictures into AV1 or H.264 and back.

/// An error from a source, encoder, decoder or sink.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// A frame's size, strides or buffer lengths are inconsistent.
    #[error("invalid frame: {0}")]
    InvalidFrame(String),
    /// A frame does not match the size the encoder was configured for.
    #[error("frame is {got_w}×{got_h} but the encoder was configured for {want_w}×{want_h}")]
    SizeMismatch {
        /// Configured width.
        want_w: u32,
        /// Configured height.
        want_h: u32,
        /// The frame's width.
        got_w: u32,
        /// The frame's height.
        got_h: u32,
    },
    /// An encoder setting is out of range (the message names the setting).
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(String),
    /// The encoder library reported a failure.
    #[error("{library} encoder: {message}")]
    Encoder {
        /// `libaom`, `rav1e` or `OpenH264`.
        library: &'static str,
        /// What the library said.
        message: String,
    },
    /// The decoder rejected the data: corrupt, truncated or unsupported AV1 or H.264 (the
    /// message names the library). The decoder stays usable; the next keyframe recovers.
    #[error("decoder: {0}")]
    Decode(String),
    /// A stream file (Y4M, IVF) is malformed or uses a format Tandem does not handle; the
    /// message names the field or feature.
    #[error("{format}: {message}")]
    Format {
        /// `Y4M` or `IVF`.
        format: &'static str,
        /// What is wrong, naming the field or feature.
        message: String,
    },
    /// A capture source (a screen, a camera, a pipe) is unavailable or failed; the message
    /// names the device and, where there is one, what to do about it.
    #[error("{0}")]
    Capture(String),
    /// Reading or writing a file failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// The message of a [`CodecError::Format`] error about `format`; panics on any other
    /// error (a test helper for the stream parsers).
    #[cfg(test)]
    pub(crate) fn format_message(self, format: &str) -> String {
        match self {
            CodecError::Format { format: f, message } if f == format => message,
            other => panic!("expected a {format} format error, got {other:?}"),
        }
    }
}
