//! `Rav1eEncoder`: rav1e, the pure-Rust AV1 encoder, configured for the least lag it allows.
//!
//! Settings ([`rav1e_encoder_config`]): low-latency mode (no frame reordering), speed preset
//! from [`EncoderConfig::speed`] (10 by default), `rdo_lookahead_frames` 1, scene detection
//! off (keyframes come at the start, on request and every `keyframe_interval` frames), tiles
//! from [`EncoderConfig::tiles_log2`], bitrate rate control, error resilient.
//!
//! Lag: even so, rav1e holds frames back. Its frame queue must look ahead
//! `keyframe_lookahead_distance() + 1` frames past the frame it codes (two plus one in
//! low-latency mode, `InterConfig` in rav1e's `api/internal.rs`), so a frame comes out only
//! after later frames were submitted. [`Encoder::lag_frames`] reports what was measured; the
//! crate docs carry the table of every setting tried.
//!
//! Bitrate changes: rav1e fixes its rate-control target for the life of a `Context`; there
//! is no call to change it. A change therefore rebuilds the context: the old one is flushed
//! (its held frames are encoded and returned by that call) and the new one starts with a
//! keyframe. To keep a congestion controller's small steps from turning into a keyframe
//! each, changes under 10 % are ignored, decreases apply at the next frame, increases wait
//! until a second of frames has passed since the last rebuild, and a forced keyframe applies
//! any held change at no extra cost.
//!
//! Keyframes on request go through `FrameParameters::frame_type_override`.

use std::time::Instant;

use bytes::Bytes;
use rav1e::config::SpeedSettings;
use rav1e::prelude::{
    ChromaSampling, Config, Context, EncoderStatus, FrameParameters, FrameType, FrameTypeOverride,
    Opaque, Rational, SceneDetectionSpeed,
};

use crate::encoder::{EncodedFrame, Encoder, EncoderConfig, EncoderStats};
use crate::error::CodecError;
use crate::frame::{Frame, PlaneIndex};

/// Relative bitrate changes smaller than this are ignored (each applied change costs a
/// keyframe).
const MIN_BITRATE_CHANGE: f64 = 0.10;

/// rav1e's encoder configuration for `config` at `kbps`.
pub fn rav1e_encoder_config(config: &EncoderConfig, kbps: u32) -> rav1e::EncoderConfig {
    let mut speed = SpeedSettings::from_preset(config.speed);
    speed.rdo_lookahead_frames = 1;
    speed.scene_detection_mode = SceneDetectionSpeed::None;
    let (cols, rows) = config.tiles_log2();
    rav1e::EncoderConfig {
        width: config.width as usize,
        height: config.height as usize,
        time_base: Rational::new(u64::from(config.fps_den), u64::from(config.fps_num)),
        bit_depth: 8,
        chroma_sampling: ChromaSampling::Cs420,
        low_latency: true,
        error_resilient: true,
        bitrate: i32::try_from(u64::from(kbps) * 1000).unwrap_or(i32::MAX),
        // In bitrate mode a quantizer below 255 is only a quality cap; 255 makes the bitrate
        // the per-frame budget (`RCState::select_qi` in rav1e's rate.rs).
        quantizer: 255,
        min_key_frame_interval: 0,
        // 0: no periodic keyframes (rav1e's "infinite").
        max_key_frame_interval: config.keyframe_interval.map_or(0, u64::from),
        tile_cols: cols as usize,
        tile_rows: rows as usize,
        speed_settings: speed,
        ..Default::default()
    }
}

fn encoder_error(message: String) -> CodecError {
    CodecError::Encoder {
        library: "rav1e",
        message,
    }
}

fn new_context(config: &EncoderConfig, kbps: u32) -> Result<Context<u8>, CodecError> {
    Config::new()
        .with_encoder_config(rav1e_encoder_config(config, kbps))
        .with_threads(config.threads)
        .new_context::<u8>()
        .map_err(|e| encoder_error(format!("configuration rejected: {e}")))
}

/// The metadata that rides through rav1e with each frame.
#[derive(Debug, Clone, Copy)]
struct SourceMeta {
    frame_id: u32,
    capture_us: u64,
}

/// rav1e AV1 encoder. See the module docs for its settings, lag and bitrate handling.
pub struct Rav1eEncoder {
    ctx: Context<u8>,
    config: EncoderConfig,
    /// The bitrate `ctx` was built with.
    active_kbps: u32,
    frames_since_rebuild: u64,
    force_keyframe: bool,
    finished: bool,
    stats: EncoderStats,
}

impl std::fmt::Debug for Rav1eEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rav1eEncoder")
            .field("config", &self.config)
            .field("active_kbps", &self.active_kbps)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Rav1eEncoder {
    /// Builds a rav1e encoder for `config` (whose `kind` is ignored).
    pub fn new(config: &EncoderConfig) -> Result<Rav1eEncoder, CodecError> {
        config.validate()?;
        Ok(Rav1eEncoder {
            ctx: new_context(config, config.bitrate_kbps)?,
            config: config.clone(),
            active_kbps: config.bitrate_kbps,
            frames_since_rebuild: 0,
            force_keyframe: false,
            finished: false,
            stats: EncoderStats {
                target_kbps: config.bitrate_kbps,
                ..EncoderStats::default()
            },
        })
    }

    fn held(&self) -> u32 {
        u32::try_from(self.stats.frames_in - self.stats.frames_out).unwrap_or(u32::MAX)
    }

    /// Whether the requested bitrate should be applied before the next frame.
    fn rebuild_due(&self) -> bool {
        let (want, have) = (
            f64::from(self.config.bitrate_kbps),
            f64::from(self.active_kbps),
        );
        if (want - have).abs() < have * MIN_BITRATE_CHANGE {
            return false;
        }
        let one_second = u64::from(self.config.fps_num) / u64::from(self.config.fps_den).max(1);
        self.force_keyframe || want < have || self.frames_since_rebuild >= one_second
    }

    /// Flushes the current context into `out` and starts a new one at the requested bitrate.
    fn rebuild(&mut self, out: &mut Vec<EncodedFrame>) -> Result<(), CodecError> {
        self.ctx.flush();
        self.drain(out)?;
        self.ctx = new_context(&self.config, self.config.bitrate_kbps)?;
        self.active_kbps = self.config.bitrate_kbps;
        self.frames_since_rebuild = 0;
        self.stats.bitrate_changes += 1;
        Ok(())
    }

    /// Moves every packet rav1e has ready into `out`.
    fn drain(&mut self, out: &mut Vec<EncodedFrame>) -> Result<(), CodecError> {
        loop {
            let started = Instant::now();
            let result = self.ctx.receive_packet();
            self.stats.encode_us += started.elapsed().as_micros() as u64;
            match result {
                Ok(packet) => {
                    let meta = packet
                        .opaque
                        .and_then(|o| o.downcast::<SourceMeta>().ok())
                        .map(|b| *b);
                    let Some(meta) = meta else {
                        return Err(encoder_error(format!(
                            "packet for input frame {} lost its metadata",
                            packet.input_frameno
                        )));
                    };
                    let keyframe = packet.frame_type == FrameType::KEY;
                    self.stats.frames_out += 1;
                    self.stats.bytes_out += packet.data.len() as u64;
                    self.stats.keyframes += u64::from(keyframe);
                    out.push(EncodedFrame {
                        data: Bytes::from(packet.data),
                        frame_id: meta.frame_id,
                        capture_us: meta.capture_us,
                        keyframe,
                    });
                }
                // Encoded: a frame was coded but not yet emitted (for example a hidden
                // frame); ask again.
                Err(EncoderStatus::Encoded) => {}
                Err(EncoderStatus::NeedMoreData | EncoderStatus::LimitReached) => return Ok(()),
                Err(e) => return Err(encoder_error(format!("receive_packet: {e}"))),
            }
        }
    }
}

impl Encoder for Rav1eEncoder {
    fn encode(&mut self, frame: &Frame) -> Result<Vec<EncodedFrame>, CodecError> {
        if self.finished {
            return Err(CodecError::InvalidConfig("encode after finish".into()));
        }
        self.config.check_size(frame)?;
        let mut out = Vec::new();
        if self.rebuild_due() {
            self.rebuild(&mut out)?;
        }
        let mut pic = self.ctx.new_frame();
        for (i, p) in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
            .into_iter()
            .enumerate()
        {
            let plane = &mut pic.planes[i];
            let stride = plane.cfg.stride;
            let dst = plane.data_origin_mut();
            let (w, h) = frame.plane_size(p);
            for y in 0..h {
                dst[y * stride..y * stride + w].copy_from_slice(frame.row(p, y));
            }
        }
        // The first frame of a context is a keyframe anyway.
        let requested = std::mem::take(&mut self.force_keyframe);
        let forced = requested && self.frames_since_rebuild > 0;
        let params = FrameParameters {
            frame_type_override: if forced {
                FrameTypeOverride::Key
            } else {
                FrameTypeOverride::No
            },
            opaque: Some(Opaque::new(SourceMeta {
                frame_id: frame.id,
                capture_us: frame.capture_us,
            })),
            ..Default::default()
        };
        self.stats.forced_keyframes += u64::from(requested);
        let started = Instant::now();
        let sent = self.ctx.send_frame((pic, params));
        self.stats.encode_us += started.elapsed().as_micros() as u64;
        sent.map_err(|e| encoder_error(format!("send_frame: {e}")))?;
        self.stats.frames_in += 1;
        self.frames_since_rebuild += 1;
        self.drain(&mut out)?;
        self.stats.max_lag_frames = self.stats.max_lag_frames.max(self.held());
        Ok(out)
    }

    fn finish(&mut self) -> Result<Vec<EncodedFrame>, CodecError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(Vec::new());
        }
        self.ctx.flush();
        let mut out = Vec::new();
        self.drain(&mut out)?;
        Ok(out)
    }

    fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    fn set_target_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        self.config.clone().with_bitrate_kbps(kbps).validate()?;
        self.config.bitrate_kbps = kbps;
        self.stats.target_kbps = kbps;
        Ok(())
    }

    fn stats(&self) -> EncoderStats {
        self.stats
    }

    fn config(&self) -> &EncoderConfig {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_n(enc: &mut Rav1eEncoder, n: u32) {
        for _ in 0..n {
            enc.encode(&Frame::black(64, 64)).expect("encodes");
        }
    }

    #[test]
    fn bitrate_changes_rebuild_only_when_worth_a_keyframe() {
        let config = EncoderConfig::new(64, 64, 10).with_threads(1);
        let mut enc = Rav1eEncoder::new(&config).expect("opens");
        assert_eq!(config.bitrate_kbps, 300);
        encode_n(&mut enc, 3);
        // Under 10 %: ignored for good.
        enc.set_target_bitrate(320).expect("valid");
        encode_n(&mut enc, 12);
        assert_eq!(enc.stats().bitrate_changes, 0);
        // A decrease applies at the next frame.
        enc.set_target_bitrate(200).expect("valid");
        encode_n(&mut enc, 1);
        assert_eq!(enc.stats().bitrate_changes, 1);
        // An increase waits for a second of frames (10 at 10 fps) since that rebuild.
        enc.set_target_bitrate(600).expect("valid");
        encode_n(&mut enc, 9);
        assert_eq!(enc.stats().bitrate_changes, 1);
        encode_n(&mut enc, 2);
        assert_eq!(enc.stats().bitrate_changes, 2);
        // A forced keyframe carries a held increase with it.
        enc.set_target_bitrate(1000).expect("valid");
        enc.force_keyframe();
        encode_n(&mut enc, 1);
        assert_eq!(enc.stats().bitrate_changes, 3);
        assert_eq!(enc.stats().forced_keyframes, 1);
        let out = enc.finish().expect("finishes");
        assert!(!out.is_empty());
        assert_eq!(enc.stats().frames_out, enc.stats().frames_in);
    }
}
