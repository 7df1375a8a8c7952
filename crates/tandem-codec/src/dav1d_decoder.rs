//! `Dav1dDecoder`: AV1 temporal units in, I420 [`Frame`]s out, through libdav1d.
//!
//! Settings: `max_frame_delay` 1 (a frame comes out of the call that fed it, instead of
//! after frame-threading's pipeline fills), a thread count, film grain not applied (the
//! encoders here never signal it, and it would cost time), and a frame-size limit so a
//! hostile sequence header cannot make dav1d allocate gigabytes.
//!
//! Errors: corrupt or truncated data returns [`CodecError::Decode`] and the decoder stays
//! usable; frames that depend on what was lost keep failing (or decode with artefacts, as
//! AV1 allows) until the next keyframe, which always recovers. Nothing here panics on input:
//! dav1d's `EAGAIN` protocol (output must be taken before more input is accepted) is
//! followed to the letter, and only 8-bit 4:2:0 pictures are copied out (others are an
//! error naming the format).

use std::time::Instant;

use bytes::Bytes;
use dav1d::{PixelLayout, PlanarImageComponent, Settings};

use crate::decoder::{Decoder, DecoderConfig, DecoderStats};
use crate::encoder::Bitstream;
use crate::error::CodecError;
use crate::frame::Frame;

/// The dav1d AV1 decoder.
pub struct Dav1dDecoder {
    dec: dav1d::Decoder,
    config: DecoderConfig,
    stats: DecoderStats,
}

impl std::fmt::Debug for Dav1dDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dav1dDecoder")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn decode_error(what: &str, e: dav1d::Error) -> CodecError {
    CodecError::Decode(format!("dav1d, {what}: {e}"))
}

impl Dav1dDecoder {
    /// Opens a decoder with `config`.
    pub fn new(config: &DecoderConfig) -> Result<Dav1dDecoder, CodecError> {
        let mut s = Settings::new();
        s.set_n_threads(config.threads);
        s.set_max_frame_delay(config.max_frame_delay);
        s.set_apply_grain(false);
        s.set_frame_size_limit(config.max_pixels);
        let dec = dav1d::Decoder::with_settings(&s).map_err(|e| decode_error("opening", e))?;
        Ok(Dav1dDecoder {
            dec,
            config: config.clone(),
            stats: DecoderStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> DecoderStats {
        self.stats
    }

    /// Decodes one temporal unit and returns the picture it completes, if any, carrying
    /// `frame_id` and `capture_us` (dav1d passes them through with the picture, so a held
    /// frame comes out with its own metadata). Data holding several temporal units returns
    /// the newest picture and counts the others in [`DecoderStats::superseded`], which is what
    /// a latency-first receiver shows anyway.
    pub fn decode(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError> {
        let Some(pic) = self.decode_picture(data, frame_id, capture_us)? else {
            return Ok(None);
        };
        let started = Instant::now();
        let frame = wrap_picture(&pic);
        self.stats.output_us += started.elapsed().as_micros() as u64;
        if frame.is_err() {
            self.stats.errors += 1;
        } else {
            self.stats.frames_out += 1;
        }
        frame.map(Some)
    }

    /// Decodes one temporal unit and returns dav1d's picture without copying it.
    pub fn decode_picture(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<dav1d::Picture>, CodecError> {
        self.stats.units_in += 1;
        if data.is_empty() {
            self.stats.errors += 1;
            return Err(CodecError::Decode("dav1d: empty temporal unit".into()));
        }
        let started = Instant::now();
        let result = self.feed(data, frame_id, capture_us);
        self.stats.decode_us += started.elapsed().as_micros() as u64;
        if result.is_err() {
            self.stats.errors += 1;
        }
        result
    }

    fn feed(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<dav1d::Picture>, CodecError> {
        let capture = i64::try_from(capture_us).unwrap_or(i64::MAX);
        let mut picture = None;
        let mut sent = self
            .dec
            .send_data(data, Some(i64::from(frame_id)), Some(capture), None);
        // EAGAIN from send: dav1d kept the rest of the data and wants a picture taken first.
        // Bounded: each round either takes a picture or dav1d consumes data.
        for _ in 0..64 {
            match sent {
                Ok(()) => break,
                Err(e) if e.is_again() => match self.dec.get_picture() {
                    Ok(p) => {
                        self.stats.superseded += u64::from(picture.is_some());
                        picture = Some(p);
                        sent = self.dec.send_pending_data();
                    }
                    Err(e) if e.is_again() => {
                        sent = self.dec.send_pending_data();
                        if sent.as_ref().is_err_and(|e| e.is_again()) {
                            // No picture to take and the data still not accepted: dav1d is
                            // stuck on this unit. Drop it (and the decoder's state) rather
                            // than spin; the next keyframe starts clean.
                            self.dec.flush();
                            return Err(CodecError::Decode(
                                "dav1d accepted neither data nor output; reset".into(),
                            ));
                        }
                    }
                    Err(e) => {
                        self.dec.flush();
                        return Err(decode_error("decoding", e));
                    }
                },
                Err(e) => return Err(decode_error("decoding", e)),
            }
        }
        if sent.is_err() {
            self.dec.flush();
            return Err(CodecError::Decode(
                "dav1d did not accept the unit; reset".into(),
            ));
        }
        // Take every picture ready: with max_frame_delay 1 nothing is gained by leaving one
        // in dav1d, and a unit that held several frames would otherwise return them late.
        loop {
            match self.dec.get_picture() {
                Ok(p) => {
                    self.stats.superseded += u64::from(picture.is_some());
                    picture = Some(p);
                }
                Err(e) if e.is_again() => return Ok(picture),
                Err(e) => return Err(decode_error("decoding", e)),
            }
        }
    }
}

impl Decoder for Dav1dDecoder {
    fn decode(
        &mut self,
        data: Bytes,
        frame_id: u32,
        capture_us: u64,
    ) -> Result<Option<Frame>, CodecError> {
        Dav1dDecoder::decode(self, data, frame_id, capture_us)
    }

    fn stats(&self) -> DecoderStats {
        Dav1dDecoder::stats(self)
    }

    fn bitstream(&self) -> Bitstream {
        Bitstream::Av1
    }
}

/// Wraps a dav1d picture as a [`Frame`] without copying: the frame's planes share dav1d's
/// buffers (keeping the picture alive) with dav1d's padded strides.
///
/// Why not copy: a copy of a 720p picture costs about 0.2 ms here, 5–8 % of the decode
/// itself, for nothing the receiver needs; [`Frame::to_tight`] copies when a consumer wants
/// tight rows.
pub fn wrap_picture(pic: &dav1d::Picture) -> Result<Frame, CodecError> {
    if pic.bit_depth() != 8 {
        return Err(CodecError::Decode(format!(
            "{}-bit pictures are not supported: Tandem handles 8-bit 4:2:0",
            pic.bit_depth()
        )));
    }
    if pic.pixel_layout() != PixelLayout::I420 {
        return Err(CodecError::Decode(format!(
            "pixel layout {:?} is not supported: Tandem handles 8-bit 4:2:0",
            pic.pixel_layout()
        )));
    }
    let components = [
        PlanarImageComponent::Y,
        PlanarImageComponent::U,
        PlanarImageComponent::V,
    ];
    let strides = components.map(|c| pic.stride(c) as usize);
    let planes = components.map(|c| Bytes::from_owner(pic.plane(c)));
    let frame = Frame::from_shared_planes(pic.width(), pic.height(), planes, strides)?;
    let id = u32::try_from(pic.offset()).unwrap_or(0);
    let capture = pic
        .timestamp()
        .and_then(|t| u64::try_from(t).ok())
        .unwrap_or(0);
    Ok(frame.with_meta(id, capture))
}
