//! `OpenH264Decoder`: H.264 access units (Annex B) in, I420 [`Frame`]s out, through OpenH264.
//!
//! Settings: `DecodeFrameNoDelay`, and when that call returns no picture but the decoder
//! holds one, the held picture is flushed out of the same call. Why: OpenH264 outputs a
//! baseline picture at once but holds every main- or high-profile picture for one call, to
//! reorder (`CWelsDecoder::ReorderPicturesInDisplay`, `codec/decoder/plus/src/
//! welsDecoderExt.cpp`), whether or not the stream has B-frames; without the flush a
//! VideoToolbox main-profile stream would show each picture one frame late, under the next
//! frame's id. Live encoders do not reorder (x264 `zerolatency`, VideoToolbox real-time
//! with frame reordering off, OpenH264), so each call's picture is its own frame; a stream
//! with B-frames would come out in decoding order, which this decoder does not support.
//! Error concealment off (a picture built on
//! a lost reference is an error, and the engine asks for a keyframe, instead of a smeared
//! picture shown as good), decoding on the calling thread (OpenH264's decoder threading is
//! marked experimental by its Rust binding), and a size limit checked on every picture.
//!
//! Errors: corrupt or truncated data, or data that is not H.264, returns
//! [`CodecError::Decode`] and the decoder stays usable; the next IDR (with its SPS and PPS,
//! which every encoder here sends before each one) recovers. Only 4:2:0 8-bit pictures
//! exist in the profiles OpenH264 decodes (baseline, main; not high 4:4:4 or 10-bit).
//!
//! The picture is copied out (OpenH264 reuses its buffers on the next call): about 0.1 ms
//! at 720p here, counted in [`DecoderStats::output_us`].

use std::time::Instant;

use bytes::Bytes;
use openh264::decoder::{DecodeOptions, Decoder as Inner, DecoderConfig as InnerConfig, Flush};
use openh264::formats::YUVSource;

use crate::decoder::{Decoder, DecoderConfig, DecoderStats};
use crate::encoder::Bitstream;
use crate::error::CodecError;
use crate::frame::Frame;

/// The OpenH264 H.264 decoder.
pub struct OpenH264Decoder {
    dec: Inner,
    max_pixels: u32,
    stats: DecoderStats,
}

impl std::fmt::Debug for OpenH264Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenH264Decoder")
            .field("max_pixels", &self.max_pixels)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn decode_error(what: &str, e: impl std::fmt::Display) -> CodecError {
    CodecError::Decode(format!("OpenH264, {what}: {e}"))
}

impl OpenH264Decoder {
    /// Opens a decoder; of `config` only `max_pixels` applies (see the module docs).
    pub fn new(config: &DecoderConfig) -> Result<OpenH264Decoder, CodecError> {
        let inner = InnerConfig::new().flush_after_decode(Flush::Flush);
        let dec = Inner::with_api_config(openh264::OpenH264API::from_source(), inner)
            .map_err(|e| decode_error("opening", e))?;
        Ok(OpenH264Decoder {
            dec,
            max_pixels: config.max_pixels,
            stats: DecoderStats::default(),
        })
    }

    fn decode_inner(
        &mut self,
        data: &[u8],
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError> {
        if data.is_empty() {
            return Err(decode_error("reading", "empty access unit"));
        }
        let started = Instant::now();
        let decoded = self
            .dec
            .decode_with_options(data, DecodeOptions::new().flush_after_decode(Flush::Flush));
        self.stats.decode_us += started.elapsed().as_micros() as u64;
        let picture = match decoded {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(None),
            Err(e) => return Err(decode_error("decoding", e)),
        };
        let started = Instant::now();
        let (w, h) = picture.dimensions();
        if w == 0 || h == 0 || (w as u64) * (h as u64) > u64::from(self.max_pixels) {
            return Err(decode_error(
                "decoding",
                format!(
                    "picture {w}×{h} is over the {} pixel limit",
                    self.max_pixels
                ),
            ));
        }
        let (sy, su, sv) = picture.strides();
        let frame = Frame::from_planes(
            w as u32,
            h as u32,
            [
                picture.y().to_vec(),
                picture.u().to_vec(),
                picture.v().to_vec(),
            ],
            [sy, su, sv],
        )
        .map_err(|e| decode_error("copying the picture", e))?
        .with_meta(frame_id, capture_us);
        self.stats.output_us += started.elapsed().as_micros() as u64;
        Ok(Some(frame))
    }
}

impl Decoder for OpenH264Decoder {
    /// Decodes one access unit and returns its picture, if it completed one, carrying
    /// `frame_id` and `capture_us`.
    fn decode(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError> {
        self.stats.units_in += 1;
        let result = self.decode_inner(&data, frame_id, capture_us);
        match &result {
            Ok(Some(_)) => self.stats.frames_out += 1,
            Ok(None) => {}
            Err(_) => self.stats.errors += 1,
        }
        result
    }

    fn stats(&self) -> DecoderStats {
        self.stats
    }

    fn bitstream(&self) -> Bitstream {
        Bitstream::H264
    }
}
