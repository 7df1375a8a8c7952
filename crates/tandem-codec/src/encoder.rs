//! The `Encoder` trait, its configuration and statistics, shared by every encoder.
//!
//! An encoder takes [`Frame`]s in capture order and returns [`EncodedFrame`]s, each one
//! access unit that the matching decoder decodes on its own once the frames before it have
//! been decoded: a temporal unit of AV1 (OBUs, low-overhead format) or an access unit of
//! H.264 (Annex B). An encoder with lag returns nothing for the first
//! frames and then one frame per call; [`Encoder::lag_frames`] reports how many frames it
//! held back, measured, never assumed.

use bytes::Bytes;

use crate::error::CodecError;
use crate::frame::Frame;

/// The compressed format a stream is in: what an encoder writes and a decoder reads, and
/// what the codec tag on the wire says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bitstream {
    /// AV1, OBUs in the low-overhead format, one temporal unit per frame.
    Av1,
    /// H.264, Annex B (start codes), one access unit per frame.
    H264,
}

impl std::fmt::Display for Bitstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Bitstream::Av1 => "AV1",
            Bitstream::H264 => "H.264",
        })
    }
}

/// Which encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EncoderKind {
    /// libaom (AV1) in realtime mode: no lag. The default of a bare [`EncoderConfig`]; the
    /// engine's sessions default to [`EncoderKind::OpenH264`] (see the crate docs for why).
    #[default]
    Aom,
    /// rav1e (AV1): pure Rust, but at least three frames of lag even in low-latency mode
    /// (see the crate docs).
    Rav1e,
    /// OpenH264 (H.264, constrained baseline): no lag, and what Apple's hardware decodes.
    OpenH264,
}

impl EncoderKind {
    /// The bitstream this encoder writes.
    pub fn bitstream(self) -> Bitstream {
        match self {
            EncoderKind::Aom | EncoderKind::Rav1e => Bitstream::Av1,
            EncoderKind::OpenH264 => Bitstream::H264,
        }
    }
}

impl std::str::FromStr for EncoderKind {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, CodecError> {
        match s {
            "aom" | "libaom" => Ok(EncoderKind::Aom),
            "rav1e" => Ok(EncoderKind::Rav1e),
            "h264" | "openh264" => Ok(EncoderKind::OpenH264),
            other => Err(CodecError::InvalidConfig(format!(
                "encoder `{other}` is unknown (expected `aom`, `rav1e` or `h264`)"
            ))),
        }
    }
}

impl std::fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EncoderKind::Aom => "aom",
            EncoderKind::Rav1e => "rav1e",
            EncoderKind::OpenH264 => "h264",
        })
    }
}

/// What the pictures show; libaom tunes its tools for screen content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContentKind {
    /// Camera or game footage. The default.
    #[default]
    Camera,
    /// Desktop or app mirroring: sharp text, large flat areas.
    Screen,
}

/// Encoder settings. [`EncoderConfig::new`] gives the documented defaults for a size and rate.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// Which encoder. Default: [`EncoderKind::Aom`].
    pub kind: EncoderKind,
    /// Picture width in pixels.
    pub width: u32,
    /// Picture height in pixels.
    pub height: u32,
    /// Frame rate numerator (frames per `fps_den` seconds).
    pub fps_num: u32,
    /// Frame rate denominator. Default 1.
    pub fps_den: u32,
    /// Target bitrate. Default: [`default_bitrate_kbps`] for the size and rate.
    pub bitrate_kbps: u32,
    /// A keyframe at least every this many frames; `None` sends keyframes only at the start
    /// and on request, which is what a live stream with keyframe requests wants (periodic
    /// keyframes are bitrate spikes that a tight playout buffer turns into late frames).
    /// Default `None`.
    pub keyframe_interval: Option<u32>,
    /// Encoder threads. Default: the machine's available parallelism.
    pub threads: usize,
    /// Speed preset, 0 (slowest) to 10 (fastest), meaning libaom's cpu-used, rav1e's speed or
    /// OpenH264's complexity (low from 8, medium from 4, high below).
    /// Default: [`default_speed`] (10 below 1280×720, 9 from there up).
    pub speed: u8,
    /// Content tuning. Default [`ContentKind::Camera`].
    pub content: ContentKind,
}

/// Default bitrate: 0.1 bit per pixel per frame, at least 300 kbit/s.
///
/// That is 1382 kbit/s for 640×360 at 60 fps and 2765 kbit/s for 1280×720 at 30 fps, where
/// the test pattern decodes at well over 32 dB PSNR with libaom realtime (the codec report
/// prints the figure).
pub fn default_bitrate_kbps(width: u32, height: u32, fps_num: u32, fps_den: u32) -> u32 {
    let pixels_per_s =
        f64::from(width) * f64::from(height) * f64::from(fps_num) / f64::from(fps_den.max(1));
    ((pixels_per_s * 0.1 / 1000.0).round() as u32).max(300)
}

/// Default speed preset: 10 for pictures smaller than 1280×720, 9 from 1280×720 up.
///
/// Why not 10 everywhere: at 1280×720, libaom's cpu-used 10 was seen to mispredict sharp
/// high-contrast blocks and leave them uncorrected. On the test pattern's pixel code (24-pixel
/// black and white cells) two neighbouring cells came out swapped in 15 of 300 frames, a
/// 24-pixel block showing the wrong content until refreshed: a visible glitch on text and
/// HUDs, not only on our marker. cpu-used 9 did it in none of those 300 frames (nor in the
/// 1000-frame test) for about 10 % more encode time. At 640×360, cpu-used 10 read back all of
/// 1000 codes. rav1e takes the same number as its speed preset.
pub fn default_speed(width: u32, height: u32) -> u8 {
    if u64::from(width) * u64::from(height) >= 1280 * 720 {
        9
    } else {
        10
    }
}

impl EncoderConfig {
    /// The defaults for `width × height` at `fps` frames per second.
    pub fn new(width: u32, height: u32, fps: u32) -> EncoderConfig {
        EncoderConfig {
            kind: EncoderKind::default(),
            width,
            height,
            fps_num: fps,
            fps_den: 1,
            bitrate_kbps: default_bitrate_kbps(width, height, fps, 1),
            keyframe_interval: None,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            speed: default_speed(width, height),
            content: ContentKind::default(),
        }
    }

    /// The same settings with another encoder.
    pub fn with_kind(mut self, kind: EncoderKind) -> EncoderConfig {
        self.kind = kind;
        self
    }

    /// The same settings with another target bitrate.
    pub fn with_bitrate_kbps(mut self, kbps: u32) -> EncoderConfig {
        self.bitrate_kbps = kbps;
        self
    }

    /// The same settings with another thread count.
    pub fn with_threads(mut self, threads: usize) -> EncoderConfig {
        self.threads = threads;
        self
    }

    /// The frame interval in µs (rounded).
    pub fn frame_interval_us(&self) -> u64 {
        (1_000_000 * u64::from(self.fps_den) + u64::from(self.fps_num) / 2)
            / u64::from(self.fps_num.max(1))
    }

    /// Checks every field, naming the first one out of range.
    pub fn validate(&self) -> Result<(), CodecError> {
        let bad = |m: String| Err(CodecError::InvalidConfig(m));
        if self.width < 16 || self.height < 16 || self.width > 8192 || self.height > 8192 {
            return bad(format!(
                "size {}×{} (width and height must be 16 to 8192)",
                self.width, self.height
            ));
        }
        if self.fps_num == 0 || self.fps_den == 0 {
            return bad(format!("frame rate {}/{}", self.fps_num, self.fps_den));
        }
        if !(10..=1_000_000).contains(&self.bitrate_kbps) {
            return bad(format!(
                "bitrate {} kbit/s (must be 10 to 1000000)",
                self.bitrate_kbps
            ));
        }
        if self.speed > 10 {
            return bad(format!("speed {} (must be 0 to 10)", self.speed));
        }
        if self.threads == 0 || self.threads > 64 {
            return bad(format!("threads {} (must be 1 to 64)", self.threads));
        }
        if self.keyframe_interval == Some(0) {
            return bad("keyframe interval 0 (use None for keyframes on request only)".into());
        }
        Ok(())
    }

    /// Checks that `frame` has the configured size.
    pub(crate) fn check_size(&self, frame: &Frame) -> Result<(), CodecError> {
        if frame.width() != self.width || frame.height() != self.height {
            return Err(CodecError::SizeMismatch {
                want_w: self.width,
                want_h: self.height,
                got_w: frame.width(),
                got_h: frame.height(),
            });
        }
        Ok(())
    }

    /// Tile columns and rows (as log2) for this size and thread count: enough tiles that
    /// every thread has one, never tiles narrower than 256 pixels or shorter than 128 rows
    /// (smaller tiles cost compression for no speed).
    pub fn tiles_log2(&self) -> (u32, u32) {
        let want = self
            .threads
            .clamp(1, 16)
            .next_power_of_two()
            .trailing_zeros();
        let max_cols = (self.width / 256).max(1).ilog2();
        let max_rows = (self.height / 128).max(1).ilog2();
        let cols = want.min(max_cols);
        let rows = (want - cols).min(max_rows);
        (cols, rows)
    }
}

/// One encoded frame: a temporal unit of AV1 OBUs or an H.264 access unit in Annex B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// The compressed data.
    pub data: Bytes,
    /// The id of the source frame.
    pub frame_id: u32,
    /// The source frame's capture time (µs).
    pub capture_us: u64,
    /// Whether this is a keyframe, decodable without any earlier frame.
    pub keyframe: bool,
}

/// Counters an encoder keeps; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncoderStats {
    /// Frames submitted.
    pub frames_in: u64,
    /// Frames returned.
    pub frames_out: u64,
    /// Bytes returned.
    pub bytes_out: u64,
    /// Keyframes returned.
    pub keyframes: u64,
    /// Keyframes forced by [`Encoder::force_keyframe`].
    pub forced_keyframes: u64,
    /// The current target bitrate.
    pub target_kbps: u32,
    /// Bitrate changes applied.
    pub bitrate_changes: u64,
    /// Most frames the encoder has held at once after returning from `encode` (its lag).
    pub max_lag_frames: u32,
    /// Time spent inside the encoder library, µs.
    pub encode_us: u64,
}

/// A video encoder.
pub trait Encoder: Send {
    /// Submits `frame` and returns the frames the encoder finished, in order (with a lagging
    /// encoder these are earlier frames).
    fn encode(&mut self, frame: &Frame) -> Result<Vec<EncodedFrame>, CodecError>;

    /// Ends the stream: returns every frame still held. The encoder accepts no more frames.
    fn finish(&mut self) -> Result<Vec<EncodedFrame>, CodecError>;

    /// Makes the next submitted frame a keyframe.
    fn force_keyframe(&mut self);

    /// Changes the target bitrate; it takes effect within a few frames.
    fn set_target_bitrate(&mut self, kbps: u32) -> Result<(), CodecError>;

    /// Frames submitted but not yet returned, at most, so far: the encoder's lag, measured.
    fn lag_frames(&self) -> u32 {
        self.stats().max_lag_frames
    }

    /// Counters.
    fn stats(&self) -> EncoderStats;

    /// The settings the encoder runs with (the bitrate is the current target).
    fn config(&self) -> &EncoderConfig;
}

/// Builds the encoder `config.kind` names.
pub fn new_encoder(config: &EncoderConfig) -> Result<Box<dyn Encoder>, CodecError> {
    Ok(match config.kind {
        EncoderKind::Aom => Box::new(crate::aom_encoder::AomEncoder::new(config)?),
        EncoderKind::Rav1e => Box::new(crate::rav1e_encoder::Rav1eEncoder::new(config)?),
        EncoderKind::OpenH264 => Box::new(crate::openh264_encoder::OpenH264Encoder::new(config)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_documented_values() {
        let c = EncoderConfig::new(640, 360, 60);
        assert_eq!(c.kind, EncoderKind::Aom);
        assert_eq!(c.bitrate_kbps, 1382);
        assert_eq!(EncoderConfig::new(1280, 720, 30).bitrate_kbps, 2765);
        assert_eq!(EncoderConfig::new(64, 64, 10).bitrate_kbps, 300);
        assert_eq!(c.fps_den, 1);
        assert_eq!(c.keyframe_interval, None);
        assert_eq!(c.speed, 10);
        assert_eq!(EncoderConfig::new(1280, 720, 30).speed, 9);
        assert_eq!(EncoderConfig::new(1920, 1080, 30).speed, 9);
        assert_eq!(EncoderConfig::new(1279, 720, 30).speed, 10);
        assert_eq!(c.content, ContentKind::Camera);
        assert!(c.threads >= 1);
        assert_eq!(c.frame_interval_us(), 16_667);
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn validate_names_the_bad_field() {
        let base = EncoderConfig::new(640, 360, 30);
        let msg = |c: EncoderConfig| c.validate().expect_err("invalid").to_string();
        assert!(
            msg(EncoderConfig {
                width: 8,
                ..base.clone()
            })
            .contains("size 8×360")
        );
        assert!(
            msg(EncoderConfig {
                fps_num: 0,
                ..base.clone()
            })
            .contains("frame rate")
        );
        assert!(msg(base.clone().with_bitrate_kbps(1)).contains("bitrate 1"));
        assert!(
            msg(EncoderConfig {
                speed: 11,
                ..base.clone()
            })
            .contains("speed 11")
        );
        assert!(msg(base.clone().with_threads(0)).contains("threads 0"));
        let kf = EncoderConfig {
            keyframe_interval: Some(0),
            ..base
        };
        assert!(msg(kf).contains("keyframe interval"));
        assert!("x264".parse::<EncoderKind>().is_err());
        assert_eq!(
            "h264".parse::<EncoderKind>().ok(),
            Some(EncoderKind::OpenH264)
        );
        assert_eq!(EncoderKind::OpenH264.to_string(), "h264");
        assert_eq!(EncoderKind::OpenH264.bitstream(), Bitstream::H264);
        assert_eq!(EncoderKind::Aom.bitstream(), Bitstream::Av1);
        assert_eq!(
            "rav1e".parse::<EncoderKind>().ok(),
            Some(EncoderKind::Rav1e)
        );
    }

    #[test]
    fn tiles_follow_threads_and_size() {
        let t = |w, h, n| EncoderConfig::new(w, h, 30).with_threads(n).tiles_log2();
        assert_eq!(t(640, 360, 1), (0, 0));
        assert_eq!(t(640, 360, 2), (1, 0));
        assert_eq!(t(640, 360, 4), (1, 1));
        assert_eq!(t(1280, 720, 2), (1, 0));
        assert_eq!(t(1280, 720, 8), (2, 1));
        assert_eq!(t(200, 100, 8), (0, 0));
    }
}
