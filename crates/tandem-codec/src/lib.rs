//! Tandem's pictures and AV1: I420 [`Frame`]s, sources ([`TestPattern`], [`Y4mSource`]),
//! encoders behind one [`Encoder`] trait ([`AomEncoder`], libaom realtime, the default for
//! live streaming; [`Rav1eEncoder`], pure Rust), the [`Dav1dDecoder`], and sinks
//! ([`Y4mWriter`], [`IvfWriter`]).
//!
//! ```text
//! TestPattern / Y4mSource ──Frame──▶ Encoder ──EncodedFrame──▶ (transport) ──▶ Dav1dDecoder ──Frame──▶ sink / display
//!                                  (AomEncoder | Rav1eEncoder)                                    (pixelcode::read for g2g)
//! ```
//!
//! # Which encoder
//!
//! The encoder dominates glass-to-glass latency, so the default ([`EncoderKind::Aom`]) is the
//! one with the least: libaom in realtime mode returns every frame from the call that
//! submitted it (lag 0). rav1e cannot: in its low-latency mode it still needs later frames
//! before it emits one (see [`rav1e_encoder`] and the table below), and it is several times
//! slower per frame here. `codec-report` (in `tandem-benches`) prints both, measured.
//!
//! # Defaults
//!
//! [`EncoderConfig::new`] documents every default and a unit test pins them: libaom, 0.1 bit
//! per pixel per frame ([`default_bitrate_kbps`]), keyframes at the start and on request
//! only, all available threads, speed 10 below 720p and 9 from 720p up ([`default_speed`]
//! says why), camera content. [`DecoderConfig::default`]: `max_frame_delay` 1, up to four
//! threads, an 8192×8192 size limit.
//!
//! # System libraries
//!
//! libaom (≥ 3.0, Debian `libaom-dev`, Homebrew `aom`), libdav1d 1.0 (Debian
//! `libdav1d-dev`, Homebrew `dav1d`; the `dav1d` crate 0.9 is the last that binds 1.0),
//! libclang for aom-sys's bindgen (Debian `libclang-dev`) and nasm for rav1e's assembly. The
//! build script checks them first and names the package to install.
//!
//! # rav1e lag
//!
pub mod aom_encoder;
pub mod dav1d_decoder;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod ivf;
pub mod pattern;
pub mod pixelcode;
pub mod rav1e_encoder;
pub mod y4m;

pub use aom_encoder::AomEncoder;
pub use dav1d_decoder::{Dav1dDecoder, DecoderConfig, DecoderStats};
pub use encoder::{
    ContentKind, EncodedFrame, Encoder, EncoderConfig, EncoderKind, EncoderStats,
    default_bitrate_kbps, default_speed, new_encoder,
};
pub use error::CodecError;
pub use frame::{Frame, PlaneIndex, psnr};
pub use ivf::{IvfReader, IvfWriter};
pub use pattern::TestPattern;
pub use pixelcode::PixelCode;
pub use rav1e_encoder::Rav1eEncoder;
pub use y4m::{Y4mSource, Y4mWriter};
