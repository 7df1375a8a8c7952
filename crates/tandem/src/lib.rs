//! Tandem's engine: the [`Sender`] and [`Receiver`] pipelines that make the protocol, the
//! codecs and the network driver into a video stream, and the [`Stats`] they report. This
//! is the public Rust API the desktop apps and the FFI layer use; it adds threads and
//! policy, not wire format (`tandem-proto`), codecs (`tandem-codec`) or sockets
//! (`tandem-net`).
//!
//! ```text
//! Sender:   source ─▶ capture thread ─▶ [1] ─▶ encoder thread ─▶ driver ─▶ UDP
//! Receiver: UDP ─▶ driver (reassembly, repair, playout) ─▶ [1024] ─▶ decoder thread ─▶ sink
//! ```
//!
//! Threads meet in bounded channels only ([`crossbeam_channel`], and the driver's event
//! channel). Each pipeline's driver is a thread of its own that alone owns the protocol
//! endpoint (see `tandem_net::driver`), so the app needs no async runtime; the driver, the
//! encoder and the decoder threads ask for user-interactive scheduling on Apple
//! (`tandem_net::qos`). Dropping a pipeline stops it; a session outlives its peer restarting, and reports
//! ([`Stats::error`]) a peer silent past [`NetConfig::peer_timeout`].
//!
//! A session may span two paths at once, an infrastructure one and a peer-to-peer one
//! ([`PathPreference::Both`], [`Remote::Addresses`], [`Remote::Transports`]; see
//! [`connect`]): the sender's [`PathPolicy`] ([`SenderConfig::path_policy`],
//! [`Sender::set_path_policy`]) spreads the datagrams, and [`Stats::paths`] says what each
//! path carried.
//!
//! ```no_run
//! use tandem::{Receiver, ReceiverConfig, Remote, Sender, SenderConfig, TestPatternSource};
//! use tandem::sink::FnSink;
//!
//! let rx = Receiver::start(ReceiverConfig::default(), Remote::Listen, Box::new(FnSink(|f: tandem::DisplayFrame| {
//!     println!("frame {} after {:?}", f.frame.id, f.g2g);
//! })))?;
//! let source = TestPatternSource::new(640, 360, 60)?;
//! let peer = format!("127.0.0.1:{}", rx.local_addr().port()).parse().expect("address");
//! let tx = Sender::start(SenderConfig::default(), Remote::Address(peer), Some(Box::new(source)))?;
//! for stats in rx.stats().iter().take(5) {
//!     println!("{stats:?}");
//! }
//! # drop(tx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod codec_tag;
pub mod config;
pub mod connect;
pub mod error;
pub mod pairing;
mod pipeline;
pub mod receiver;
pub mod security;
pub mod sender;
pub mod sink;
pub mod source;
pub mod stats;

pub use config::{
    DEFAULT_SESSION_ID, NetConfig, OutputMode, ReceiverConfig, SenderConfig, VideoConfig,
};
pub use connect::Remote;
pub use error::EngineError;
pub use receiver::Receiver;
pub use security::{KeyDir, Security};
pub use sender::{EncodedInput, Sender};
pub use sink::{DisplayFrame, EncodedVideo, FrameSink};
pub use source::{
    Capture, MAX_WAIT, Pacing, TestPatternSource, VideoSource, Y4mFileSource, Y4mPipeSource,
};
pub use stats::{LatencyMs, PathState, PathStats, Stats, StatsFormat};

pub use tandem_codec::{Bitstream, EncoderKind, Frame};
pub use tandem_net::{PathPreference, Peer};
pub use tandem_proto::security::{Identity, PairingRole, PeerKey, TrustStore};
pub use tandem_proto::{Codec, PathPolicy, PlayoutPolicy};
