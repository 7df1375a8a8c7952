//! Tandem's pictures and codecs: I420 [`Frame`]s, sources ([`TestPattern`], [`Y4mSource`]),
//! encoders behind one [`Encoder`] trait ([`OpenH264Encoder`], H.264, the engine's default;
//! [`AomEncoder`], libaom realtime AV1; [`Rav1eEncoder`], pure-Rust AV1), decoders behind one
//! [`Decoder`] trait ([`Dav1dDecoder`] for AV1, [`OpenH264Decoder`] for H.264, and
//! [`VideoDecoder`], which picks by each frame's [`Bitstream`]), and sinks ([`Y4mWriter`],
//! [`IvfWriter`]).
//!
//! ```text
//! TestPattern / Y4mSource ──Frame──▶ Encoder ──EncodedFrame──▶ (transport) ──▶ VideoDecoder ──Frame──▶ sink / display
//!                        (OpenH264Encoder | AomEncoder | Rav1eEncoder)   (Dav1dDecoder | OpenH264Decoder)  (pixelcode::read for g2g)
//! ```
//!
//! # Which encoder
//!
//! The encoder dominates glass-to-glass latency. OpenH264 and libaom in realtime mode both
//! return every frame from the call that submitted it (lag 0); OpenH264 takes a third to a
//! quarter of libaom's time per frame here, at an equal or better PSNR on the test pattern
//! at the same bitrate (`codec-report` prints both), so the engine's sessions default to it
//! (`tandem::VideoConfig`). [`EncoderKind::default`] stays libaom: a bare
//! [`EncoderConfig::new`] is an AV1 configuration, as it always was. rav1e cannot reach lag
//! 0: in its low-latency mode it still needs later frames before it emits one (see
//! [`rav1e_encoder`] and the table below), and it is several times slower per frame here.
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
//! libclang for aom-sys's bindgen (Debian `libclang-dev`) and nasm for rav1e's and
//! OpenH264's assembly. OpenH264 (BSD-2) is compiled from the source the `openh264-sys2`
//! crate carries, with a C++ compiler (Debian `g++`); no system OpenH264 is used. The build
//! script checks the system libraries first and names the package to install.
//!
//! # rav1e lag
//!
//! Measured with `cargo run --release -p tandem-codec --example rav1e_lag -- --res 360`
//! (and `--res 720`, `--fast`), which feeds the test pattern to rav1e 0.8.1 under each
//! setting that could lower lag, one change at a time from [`rav1e_encoder::rav1e_encoder_config`]'s
//! baseline. Lag is the number of frames submitted after frame *n* before *n*'s packet came
//! out; it was identical in every run of a setting:
//!
//! | setting | lag (frames) |
//! |---|---|
//! | low latency, `rdo_lookahead_frames` 1 (ours) | **4** |
//! | `rdo_lookahead_frames` 3 / 10 (the preset's) | 6 / 13 |
//! | `rdo_lookahead_frames` 0 | rejected by rav1e's config validation |
//! | `low_latency` off (frame reordering) | 10 median, 12 max |
//! | scene detection None / Fast / Standard, `reservoir_frame_delay` 12, quantizer instead of bitrate, threads 1/2/4, tiles 1/2/4/8, speed 9, key-frame intervals, switch frames, error resilience, tune, multiref | 4 |
//!
//! **The winner is low latency with `rdo_lookahead_frames` 1, and 4 frames is rav1e's floor**:
//! lag = `rdo_lookahead_frames` + 3. In rav1e's `api/internal.rs`, `InterConfig::new` makes
//! one-frame groups in low-latency mode, so `keyframe_lookahead_distance()` is 2;
//! `ContextInner::needs_more_frame_q_lookahead` then holds frame *n* until input *n* + 3 is
//! queued, and `needs_more_fi_lookahead` (checked first in `receive_packet`) waits for
//! `rdo_lookahead_frames` + 1 frames' invariants. Neither distance is public, and the only
//! public way past them, `Context::flush`, ends the stream. With the default speed settings
//! the extra look-ahead frames are not even used (temporal RDO is off in every preset), so
//! more of them only add delay. Four frames are 67 ms at 60 fps and 133 ms at 30 fps before
//! any encoding time.
//!
//! Throughput is the other problem: on this 2-core machine rav1e encodes the 640×360 pattern
//! at 14–35 frames/s (as fast as it can, by setting; noisy) and 1280×720 at 5–13, so at a
//! live 60 or 30 fps it falls behind and frames must be skipped (`codec-report` counts
//! them). More tiles and fewer bits help a little; threads beyond two do not, since rav1e
//! encodes on the calling thread inside `receive_packet` and parallelises only within a
//! frame. libaom realtime needs neither trick: lag 0 and 6 ms (360p) / 19 ms (720p) a frame.
//!
pub mod aom_encoder;
pub mod dav1d_decoder;
pub mod decoder;
pub mod encoder;
pub mod error;
pub mod frame;
pub mod ivf;
pub mod openh264_decoder;
pub mod openh264_encoder;
pub mod pattern;
pub mod pixelcode;
pub mod rav1e_encoder;
mod read_fill;
pub mod y4m;

pub use aom_encoder::AomEncoder;
pub use dav1d_decoder::Dav1dDecoder;
pub use decoder::{Decoder, DecoderConfig, DecoderStats, VideoDecoder, new_decoder};
pub use encoder::{
    Bitstream, ContentKind, EncodedFrame, Encoder, EncoderConfig, EncoderKind, EncoderStats,
    default_bitrate_kbps, default_speed, new_encoder,
};
pub use error::CodecError;
pub use frame::{Frame, PlaneIndex, psnr};
pub use ivf::{IvfReader, IvfWriter};
pub use openh264_decoder::OpenH264Decoder;
pub use openh264_encoder::OpenH264Encoder;
pub use pattern::TestPattern;
pub use pixelcode::PixelCode;
pub use rav1e_encoder::Rav1eEncoder;
pub use y4m::{Y4mSource, Y4mWriter};
