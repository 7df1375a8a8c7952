//! Tandem for Swift (and Python): the engine's [`Sender`], [`Receiver`], [`Discovery`],
//! pairing and keys as UniFFI objects, records and delegates. This is the only crate the
//! Swift package links; it adds no policy of its own — every default is the engine's —
//! only the shapes a foreign language needs: strings for addresses, milliseconds for
//! durations, delegates for events, `async` for waits.
//!
//! ```text
//! Swift app ── Sender/Receiver/Discovery (objects) ──▶ tandem ──▶ tandem-net, -codec, -proto
//!           ◀── SenderDelegate/ReceiverDelegate/… (foreign traits, called on engine threads)
//! ```
//!
//! # Threads and callbacks
//!
//! Delegates are called on the engine's threads: [`ReceiverDelegate::on_frame`] on the
//! decoder thread (so a slow delegate delays the next frame: hand the frame to your own
//! queue), stats and errors on a stats thread per pipeline. No method here blocks for long
//! except [`Sender::stop`] / [`Receiver::stop`] (they join the pipeline's threads, well
//! under a second) and the waits that are `async`.
//!
//! # Copies across the boundary
//!
//! A decoded picture reaches the app as a [`DecodedFrame`] object, not as bytes: the app
//! asks it to copy a plane straight into memory it owns (a locked `CVPixelBuffer`), one
//! copy in all ([`DecodedFrame::copy_plane`], [`DecodedFrame::copy_nv12`]). Asking for a
//! plane as bytes ([`DecodedFrame::plane_bytes`]) costs two (into a UniFFI buffer, then
//! into `Data`). Encoded input likewise: [`Sender::send_encoded_from`] reads the app's
//! memory once; [`Sender::send_encoded`] with `Data` copies twice.
//!
//! # Codecs
//!
//! The sender encodes the pictures it is given with [`SenderConfig::encoder`]: H.264
//! ([`VideoEncoder::OpenH264`], the engine's default) or AV1 (libaom, rav1e). An app that encodes itself
//! (VideoToolbox) sends H.264 or HEVC access units, or AV1, through
//! [`Sender::send_encoded`]. A receiver in decoded output decodes each frame by the codec
//! it carries (AV1 with dav1d, H.264 with OpenH264); in encoded output it hands every frame
//! to the app (an `AVSampleBufferDisplayLayer` decodes H.264 and HEVC in hardware).
//! [`TestPattern`] gives an app's own encoder the engine's test pattern, so that the
//! receiver reads every frame's pixel code and glass-to-glass latency as it does for the
//! engine's encoders.
//!
//! # The app's own transport
//!
//! A session can run over a datagram link the app provides instead of the engine's UDP
//! sockets (a Network.framework connection, a Wi-Fi Aware data path in realtime mode): the
//! app implements [`DatagramTransport`] and hands it to [`Sender::over_transport`],
//! [`Receiver::over_transport`] or [`pair_over_transport`], with `initiator` saying which end
//! opened the link. The engine does everything else as on its own sockets (pacing, recovery,
//! congestion control, the sealed session).
//!
//! # Two paths
//!
//! One session can run over two paths at once, so that a stall on one radio channel is
//! covered by the other: [`PathPreference::Both`] (the router's Wi-Fi and AWDL, through the
//! engine's sockets), [`Remote::Addresses`] (two explicit addresses), or two app transports
//! ([`Sender::over_transports`], [`Receiver::over_transports`]). The sender's
//! [`PathPolicy`] ([`SenderConfig::path_policy`], [`Sender::set_path_policy`]) spreads the
//! datagrams; [`Stats::paths`] reports each path. Over two transports one failing closes
//! its path only ([`PathStats::failure`]); the session goes on over the other.
//!
//! # Proven on Linux
//!
//! There is no Swift toolchain on the Linux hosts that build this, so `cargo xtask test`
//! generates UniFFI's Python bindings from the same library and runs `tests/python` (pytest)
//! against them: a sealed loopback stream (and one over transports written in Python),
//! every object, record, enum, error case and delegate, and 1,000 create/destroy cycles
//! checked with [`live_objects`]; H.264 from the engine's OpenH264 encoder and from x264
//! through [`Sender::send_encoded`], decoded with every frame's pixel code read. `cargo xtask swift --check` fails when the committed Swift
//! sources are not what this crate generates.

// The FFI is where raw memory crosses: UniFFI's scaffolding and the copies to and from
// addresses the app hands over.
#![allow(unsafe_code)]
#![warn(missing_docs)]

uniffi::setup_scaffolding!();

mod discovery;
mod error;
mod frames;
mod keys;
mod live;
mod pairing;
mod pattern;
mod receiver;
mod sender;
mod stats_feed;
mod transport;
mod types;

pub use discovery::{Advertisement, Browse, Discovery, DiscoveryBackend, DiscoveryDelegate};
pub use error::TandemError;
pub use frames::{DecodedFrame, EncodedFrame, PlaneLayout};
pub use keys::{Identity, LocalPair, PairedDevice, TrustStore, paired_in_process};
pub use live::{LiveObjects, live_objects};
pub use pairing::{PairingDelegate, PairingRole, new_pairing_code, pair, pair_over_transport};
pub use pattern::TestPattern;
pub use receiver::{Receiver, ReceiverDelegate};
pub use sender::{PlaneSource, Sender, SenderDelegate};
pub use transport::{DatagramTransport, TRANSPORT_LABEL, TransportFailure, TransportInbox};
pub use types::*;

/// The engine's version (the crate's), for an app's about box and bug reports.
#[uniffi::export]
pub fn tandem_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// The protocol version this build speaks (advertised in discovery as `v`).
#[uniffi::export]
pub fn protocol_version() -> u8 {
    tandem_net::discovery::PROTOCOL_VERSION
}
