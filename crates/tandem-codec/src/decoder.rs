//! The [`Decoder`] trait, its settings and counters, and [`VideoDecoder`], which decodes
//! whichever bitstream each frame says it is.
//!
//! A receiver does not negotiate a codec: every frame on the wire carries a codec tag, and
//! [`VideoDecoder`] opens the decoder that tag names the first time it appears (dav1d for
//! AV1, OpenH264 for H.264), so a sender may switch encoders between sessions, or a phone
//! may pass through its hardware encoder's H.264, and the same receiver shows either.

use bytes::Bytes;

use crate::dav1d_decoder::Dav1dDecoder;
use crate::encoder::Bitstream;
use crate::error::CodecError;
use crate::frame::Frame;
use crate::openh264_decoder::OpenH264Decoder;

/// Decoder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Worker threads for dav1d. Default: the machine's available parallelism, at most 4
    /// (dav1d gains little from more threads at these sizes with one frame in flight).
    /// OpenH264 decodes on the calling thread: its decoder threading is experimental.
    pub threads: u32,
    /// Frames dav1d may hold for frame threading. Default 1: no added latency. (OpenH264
    /// decodes each access unit in its own call whatever this says.)
    pub max_frame_delay: u32,
    /// Largest picture accepted, in pixels. Default 8192 × 8192.
    pub max_pixels: u32,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        DecoderConfig {
            threads: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(4) as u32,
            max_frame_delay: 1,
            max_pixels: 8192 * 8192,
        }
    }
}

/// Counters the decoder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DecoderStats {
    /// Temporal units submitted.
    pub units_in: u64,
    /// Pictures returned.
    pub frames_out: u64,
    /// Units rejected as corrupt, truncated or unsupported.
    pub errors: u64,
    /// Time inside the decoder library, µs.
    pub decode_us: u64,
    /// Pictures decoded but not returned because the same call's data completed a later one
    /// (data holding more than one temporal unit; the newest picture wins).
    pub superseded: u64,
    /// Time turning dav1d's pictures into [`Frame`]s (dav1d's are wrapped without a copy, see
    /// [`wrap_picture`](crate::dav1d_decoder::wrap_picture); OpenH264's are copied), µs.
    pub output_us: u64,
}

/// A video decoder: one access unit (AV1 temporal unit, H.264 access unit) in, the picture
/// it completes out.
///
/// Errors: corrupt or truncated data returns [`CodecError::Decode`] and the decoder stays
/// usable; the next keyframe always recovers. Nothing panics on input.
pub trait Decoder: Send {
    /// Decodes one access unit and returns the picture it completes, if any, carrying
    /// `frame_id` and `capture_us`.
    fn decode(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError>;

    /// Counters.
    fn stats(&self) -> DecoderStats;

    /// Which bitstream it reads.
    fn bitstream(&self) -> Bitstream;
}

/// Opens the decoder for `bitstream`.
pub fn new_decoder(
    bitstream: Bitstream,
    config: &DecoderConfig,
) -> Result<Box<dyn Decoder>, CodecError> {
    Ok(match bitstream {
        Bitstream::Av1 => Box::new(Dav1dDecoder::new(config)?),
        Bitstream::H264 => Box::new(OpenH264Decoder::new(config)?),
    })
}

/// Decodes AV1 and H.264 alike: each call names the frame's bitstream, and the decoder for
/// it is opened on first use and kept. A change of bitstream leaves the other decoder open
/// (its state is of no use to the new stream, and reopening costs more than keeping it).
pub struct VideoDecoder {
    config: DecoderConfig,
    av1: Option<Box<dyn Decoder>>,
    h264: Option<Box<dyn Decoder>>,
}

impl std::fmt::Debug for VideoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoDecoder")
            .field("config", &self.config)
            .field("av1", &self.av1.is_some())
            .field("h264", &self.h264.is_some())
            .finish()
    }
}

impl VideoDecoder {
    /// A decoder with `config`; nothing is opened until the first frame.
    pub fn new(config: &DecoderConfig) -> VideoDecoder {
        VideoDecoder {
            config: config.clone(),
            av1: None,
            h264: None,
        }
    }

    /// Decodes one access unit of `bitstream`.
    pub fn decode(
        &mut self,
        bitstream: Bitstream,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError> {
        let slot = match bitstream {
            Bitstream::Av1 => &mut self.av1,
            Bitstream::H264 => &mut self.h264,
        };
        let decoder = match slot {
            Some(d) => d,
            None => slot.insert(new_decoder(bitstream, &self.config)?),
        };
        decoder.decode(data, frame_id, capture_us)
    }

    /// The counters of every decoder opened so far, summed.
    pub fn stats(&self) -> DecoderStats {
        [&self.av1, &self.h264]
            .into_iter()
            .flatten()
            .map(|d| d.stats())
            .fold(DecoderStats::default(), |a, b| DecoderStats {
                units_in: a.units_in + b.units_in,
                frames_out: a.frames_out + b.frames_out,
                errors: a.errors + b.errors,
                decode_us: a.decode_us + b.decode_us,
                superseded: a.superseded + b.superseded,
                output_us: a.output_us + b.output_us,
            })
    }
}
