//! Tandem's pictures and AV1: I420 [`Frame`]s, sources ([`TestPattern`], [`Y4mSource`]),
//! encoders behind one [`Encoder`] trait ([`AomEncoder`], libaom realtime, the default for
//! live streaming; [`Rav1eEncoder`], pure Rust), the [`Dav1dDecoder`], and sinks
//! ([`Y4mWriter`], [`IvfWriter`]).

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
