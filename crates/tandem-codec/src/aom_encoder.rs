//! `AomEncoder`: libaom in realtime mode, the zero-lag AV1 encoder and Tandem's default.
//!
//! Settings (all in [`realtime_enc_cfg`] and [`realtime_controls`], which the codec report's
//! raw-libaom baseline applies too, so the two differ only by this wrapper):
//! - usage realtime, one pass, `lag_in_frames` 0: every `encode` call returns its own frame;
//! - CBR at the target bitrate with a 1 s buffer, under/overshoot 50 %, no frame dropping
//!   (the engine decides which frames to skip, not the rate control);
//! - error resilient, no order hints, no temporal dependency model: frames decode after a
//!   loss without state the decoder may have missed;
//! - cpu-used from [`EncoderConfig::speed`] (10 by default, 9 from 720p up: see
//!   [`default_speed`](crate::encoder::default_speed)), row multithreading and tiles
//!   from [`EncoderConfig::tiles_log2`];
//! - cyclic-refresh adaptive quantisation (aq-mode 3) as libaom's own realtime examples use;
//! - keyframes on request or every `keyframe_interval` frames, both through
//!   `AOM_EFLAG_FORCE_KF` (libaom's own placement is off), encoded at cpu-used 10 whatever
//!   the configured speed, and without the intra tools realtime rarely picks (palette and
//!   intra block copy stay on for screen content). Why: a 720p keyframe took 200–250 ms
//!   at cpu-used 9 and 80–115 ms at 10; without those tools 56–72 ms, for the same size
//!   (measured with the test pattern on this 2-core machine). A keyframe is what a receiver
//!   asks for after a loss, so its encode time is recovery time.
//! - bitrate changes through `aom_codec_enc_config_set`, which libaom applies from the next
//!   frame.
#![allow(unsafe_code)] // libaom is a C library; every unsafe block states its invariant.

use std::ffi::CStr;
use std::os::raw::c_int;
use std::ptr;
use std::time::Instant;

use aom_sys as sys;
use bytes::Bytes;

use crate::encoder::{ContentKind, EncodedFrame, Encoder, EncoderConfig, EncoderStats};
use crate::error::CodecError;
use crate::frame::{Frame, PlaneIndex};

/// cpu-used for keyframes, whatever the configured speed (see the module docs).
pub const KEYFRAME_SPEED: u8 = 10;

/// libaom's realtime encoder configuration for `config`.
pub fn realtime_enc_cfg(config: &EncoderConfig) -> Result<sys::aom_codec_enc_cfg, CodecError> {
    config.validate()?;
    // SAFETY: aom_codec_enc_cfg is plain data (integers, fixed arrays, null pointers are
    // valid), and libaom fills every field from its defaults before we read any.
    let mut cfg: sys::aom_codec_enc_cfg = unsafe { std::mem::zeroed() };
    // SAFETY: `cfg` is a valid, writable config; the interface pointer is a static.
    let err = unsafe {
        sys::aom_codec_enc_config_default(
            sys::aom_codec_av1_cx(),
            &mut cfg,
            sys::AOM_USAGE_REALTIME,
        )
    };
    if err != sys::aom_codec_err_t::AOM_CODEC_OK {
        return Err(CodecError::Encoder {
            library: "libaom",
            message: format!("no realtime default configuration (error {err})"),
        });
    }
    cfg.g_w = config.width;
    cfg.g_h = config.height;
    cfg.g_threads = u32::try_from(config.threads).unwrap_or(1);
    cfg.g_timebase = sys::aom_rational {
        num: c_int::try_from(config.fps_den).unwrap_or(1),
        den: c_int::try_from(config.fps_num).unwrap_or(30),
    };
    cfg.g_pass = sys::aom_enc_pass::AOM_RC_ONE_PASS;
    cfg.g_lag_in_frames = 0;
    cfg.g_error_resilient = sys::AOM_ERROR_RESILIENT_DEFAULT;
    cfg.rc_end_usage = sys::aom_rc_mode::AOM_CBR;
    cfg.rc_target_bitrate = config.bitrate_kbps;
    cfg.rc_dropframe_thresh = 0;
    cfg.rc_min_quantizer = 2;
    cfg.rc_max_quantizer = 56;
    cfg.rc_undershoot_pct = 50;
    cfg.rc_overshoot_pct = 50;
    // Buffer sizes in ms of the target bitrate (values from libaom's realtime examples).
    cfg.rc_buf_sz = 1000;
    cfg.rc_buf_initial_sz = 600;
    cfg.rc_buf_optimal_sz = 600;
    // Keyframes are forced by the wrapper (see the module docs); libaom places none itself.
    cfg.kf_mode = sys::aom_kf_mode::AOM_KF_DISABLED;
    cfg.kf_min_dist = 0;
    cfg.kf_max_dist = u32::MAX >> 1;
    Ok(cfg)
}

/// The `aom_codec_control` calls (id, value) applied after initialisation, in order.
pub fn realtime_controls(config: &EncoderConfig) -> Vec<(u32, c_int)> {
    use sys::aome_enc_control_id as c;
    let (cols, rows) = config.tiles_log2();
    let mut v = vec![
        (c::AOME_SET_CPUUSED, c_int::from(config.speed)),
        (c::AV1E_SET_ROW_MT, c_int::from(config.threads > 1)),
        (c::AV1E_SET_TILE_COLUMNS, cols as c_int),
        (c::AV1E_SET_TILE_ROWS, rows as c_int),
        (c::AV1E_SET_ERROR_RESILIENT_MODE, 1),
        (c::AV1E_SET_ENABLE_ORDER_HINT, 0),
        (c::AV1E_SET_ENABLE_TPL_MODEL, 0),
        (c::AV1E_SET_DELTAQ_MODE, 0),
        (c::AV1E_SET_AQ_MODE, 3),
        (c::AV1E_SET_ENABLE_GLOBAL_MOTION, 0),
        (c::AV1E_SET_ENABLE_WARPED_MOTION, 0),
        (c::AV1E_SET_ENABLE_OBMC, 0),
        (c::AV1E_SET_COEFF_COST_UPD_FREQ, 3),
        (c::AV1E_SET_MODE_COST_UPD_FREQ, 3),
        (c::AV1E_SET_MV_COST_UPD_FREQ, 3),
        (c::AOME_SET_MAX_INTRA_BITRATE_PCT, 300),
        (c::AV1E_SET_NOISE_SENSITIVITY, 0),
    ];
    // Intra tools that cost keyframe time for little gain on camera content.
    v.extend([
        (c::AV1E_SET_ENABLE_FILTER_INTRA, 0),
        (c::AV1E_SET_ENABLE_CFL_INTRA, 0),
        (c::AV1E_SET_ENABLE_SMOOTH_INTRA, 0),
        (c::AV1E_SET_ENABLE_PAETH_INTRA, 0),
        (c::AV1E_SET_ENABLE_ANGLE_DELTA, 0),
    ]);
    if config.content == ContentKind::Screen {
        v.push((
            c::AV1E_SET_TUNE_CONTENT,
            sys::aom_tune_content::AOM_CONTENT_SCREEN as c_int,
        ));
    } else {
        v.extend([
            (c::AV1E_SET_ENABLE_PALETTE, 0),
            (c::AV1E_SET_ENABLE_INTRABC, 0),
        ]);
    }
    v
}

/// libaom's last error on `ctx`, with detail where it gives one.
///
/// # Safety
/// `ctx` must be an initialised libaom context.
unsafe fn last_error(ctx: *mut sys::aom_codec_ctx_t, what: &str) -> CodecError {
    // SAFETY: the caller guarantees an initialised context; libaom returns static or
    // context-owned NUL-terminated strings, or null for no detail.
    let (msg, detail) = unsafe {
        let msg = sys::aom_codec_error(ctx);
        let detail = sys::aom_codec_error_detail(ctx);
        (
            (!msg.is_null()).then(|| CStr::from_ptr(msg).to_string_lossy().into_owned()),
            (!detail.is_null()).then(|| CStr::from_ptr(detail).to_string_lossy().into_owned()),
        )
    };
    let mut message = format!("{what}: {}", msg.unwrap_or_else(|| "unknown error".into()));
    if let Some(d) = detail {
        message.push_str(&format!(" ({d})"));
    }
    CodecError::Encoder {
        library: "libaom",
        message,
    }
}

/// Wraps `frame`'s planes, with its strides, in an `aom_image_t` without copying.
///
/// The image borrows `frame`'s buffers: it must not outlive `frame`, and libaom only reads
/// through it (it copies input into its own lookahead buffer inside `aom_codec_encode`).
pub fn wrap_image(frame: &Frame) -> Result<sys::aom_image_t, CodecError> {
    // SAFETY: aom_image_t is plain data; aom_img_wrap initialises it.
    let mut img: sys::aom_image_t = unsafe { std::mem::zeroed() };
    let y = frame.plane(PlaneIndex::Y).as_ptr().cast_mut();
    // SAFETY: `img` is writable; aom_img_wrap only computes pointers from `y` (we replace
    // them below with the real plane pointers) and never dereferences it.
    let wrapped = unsafe {
        sys::aom_img_wrap(
            &mut img,
            sys::aom_img_fmt::AOM_IMG_FMT_I420,
            frame.width(),
            frame.height(),
            1,
            y,
        )
    };
    if wrapped.is_null() {
        return Err(CodecError::InvalidFrame(format!(
            "libaom cannot wrap a {}×{} I420 image",
            frame.width(),
            frame.height()
        )));
    }
    for (i, p) in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
        .into_iter()
        .enumerate()
    {
        img.planes[i] = frame.plane(p).as_ptr().cast_mut();
        img.stride[i] = c_int::try_from(frame.stride(p))
            .map_err(|_| CodecError::InvalidFrame(format!("stride {}", frame.stride(p))))?;
    }
    Ok(img)
}

/// An initialised libaom encoder context with the realtime settings applied, destroyed on
/// drop. [`AomEncoder`] drives one; the codec report's raw-libaom baseline drives another
/// directly, so both start from the same state.
pub struct AomContext {
    // Boxed so the context's address never changes: libaom keeps pointers into it.
    ctx: Box<sys::aom_codec_ctx_t>,
    cfg: Box<sys::aom_codec_enc_cfg>,
}

// SAFETY: a libaom context has no thread affinity; `&mut self` on every use keeps it to one
// thread at a time.
unsafe impl Send for AomContext {}

impl std::fmt::Debug for AomContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AomContext").finish_non_exhaustive()
    }
}

impl AomContext {
    /// Initialises libaom with [`realtime_enc_cfg`] and applies [`realtime_controls`].
    pub fn open(config: &EncoderConfig) -> Result<AomContext, CodecError> {
        let cfg = Box::new(realtime_enc_cfg(config)?);
        // SAFETY: plain data, initialised by aom_codec_enc_init_ver below.
        let mut ctx: Box<sys::aom_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: ctx and cfg are valid and outlive the call; the ABI version is the one the
        // bindings were generated from.
        let err = unsafe {
            sys::aom_codec_enc_init_ver(
                &mut *ctx,
                sys::aom_codec_av1_cx(),
                &*cfg,
                0,
                sys::AOM_ENCODER_ABI_VERSION as c_int,
            )
        };
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            // SAFETY: after a failed init libaom still fills the context's error fields.
            return Err(unsafe { last_error(&mut *ctx, "initialising") });
        }
        let mut opened = AomContext { ctx, cfg };
        for (id, value) in realtime_controls(config) {
            opened.control(id, value)?;
        }
        Ok(opened)
    }

    /// The context, for aom-sys calls.
    pub fn as_ptr(&mut self) -> *mut sys::aom_codec_ctx_t {
        &mut *self.ctx
    }

    /// Applies one `aom_codec_control` that takes an int.
    pub fn control(&mut self, id: u32, value: c_int) -> Result<(), CodecError> {
        // SAFETY: initialised context; every control used here takes one int argument.
        let err = unsafe { sys::aom_codec_control(self.as_ptr(), id as c_int, value) };
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            // SAFETY: initialised context.
            return Err(unsafe { last_error(self.as_ptr(), &format!("control {id}")) });
        }
        Ok(())
    }

    /// Changes the target bitrate from the next frame.
    pub fn set_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        let previous = self.cfg.rc_target_bitrate;
        self.cfg.rc_target_bitrate = kbps;
        // SAFETY: initialised context and a valid configuration that outlives the call.
        let err = unsafe { sys::aom_codec_enc_config_set(&mut *self.ctx, &*self.cfg) };
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            self.cfg.rc_target_bitrate = previous;
            // SAFETY: initialised context.
            return Err(unsafe { last_error(self.as_ptr(), "changing the bitrate") });
        }
        Ok(())
    }

    /// libaom's last error on this context.
    pub fn last_error(&mut self, what: &str) -> CodecError {
        // SAFETY: initialised context.
        unsafe { last_error(self.as_ptr(), what) }
    }
}

impl Drop for AomContext {
    fn drop(&mut self) {
        // SAFETY: the context was initialised in `open` and is destroyed once.
        unsafe {
            sys::aom_codec_destroy(&mut *self.ctx);
        }
    }
}

/// Source frames between submission and output, keyed by libaom's presentation index (the
/// encoder carries no metadata of ours through, unlike rav1e's opaque field).
#[derive(Debug, Default)]
pub(crate) struct InFlight {
    frames: std::collections::VecDeque<(u64, u32, u64)>,
    next_pts: u64,
}

impl InFlight {
    /// Records a submitted frame; returns its presentation index.
    pub(crate) fn submit(&mut self, frame: &Frame) -> u64 {
        let pts = self.next_pts;
        self.next_pts += 1;
        self.frames.push_back((pts, frame.id, frame.capture_us));
        pts
    }

    /// Takes the metadata of frame `pts`, dropping older entries the encoder skipped.
    pub(crate) fn complete(&mut self, pts: u64) -> Option<(u32, u64)> {
        while let Some(&(p, id, capture)) = self.frames.front() {
            self.frames.pop_front();
            if p == pts {
                return Some((id, capture));
            }
        }
        None
    }

    /// Frames submitted and not yet returned.
    pub(crate) fn len(&self) -> u32 {
        u32::try_from(self.frames.len()).unwrap_or(u32::MAX)
    }
}

/// libaom realtime AV1 encoder. See the module docs for its settings.
pub struct AomEncoder {
    ctx: AomContext,
    config: EncoderConfig,
    in_flight: InFlight,
    force_keyframe: bool,
    finished: bool,
    /// Frames since the last keyframe, for `keyframe_interval`.
    since_keyframe: u64,
    stats: EncoderStats,
}

impl std::fmt::Debug for AomEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AomEncoder")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl AomEncoder {
    /// Opens a realtime libaom encoder for `config` (whose `kind` is ignored).
    pub fn new(config: &EncoderConfig) -> Result<AomEncoder, CodecError> {
        let ctx = AomContext::open(config)?;
        Ok(AomEncoder {
            ctx,
            config: config.clone(),
            in_flight: InFlight::default(),
            // The first frame is a keyframe: forcing it makes it take the keyframe path.
            force_keyframe: true,
            finished: false,
            since_keyframe: 0,
            stats: EncoderStats {
                target_kbps: config.bitrate_kbps,
                ..EncoderStats::default()
            },
        })
    }

    /// Submits one image (or null to flush) and collects the packets libaom finished.
    fn submit(
        &mut self,
        img: Option<&sys::aom_image_t>,
        pts: i64,
        flags: i64,
    ) -> Result<Vec<EncodedFrame>, CodecError> {
        let started = Instant::now();
        let img_ptr = img.map_or(ptr::null(), |i| i as *const _);
        // SAFETY: initialised context; `img_ptr` is null (flush) or an image whose planes are
        // alive for this call (the caller's borrowed frame).
        let err = unsafe { sys::aom_codec_encode(self.ctx.as_ptr(), img_ptr, pts, 1, flags) };
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            // SAFETY: initialised context.
            return Err(self.ctx.last_error("encoding"));
        }
        let mut out = Vec::with_capacity(1);
        let mut iter: sys::aom_codec_iter_t = ptr::null();
        loop {
            // SAFETY: initialised context; `iter` is the iterator libaom asks for.
            let pkt = unsafe { sys::aom_codec_get_cx_data(self.ctx.as_ptr(), &mut iter) };
            if pkt.is_null() {
                break;
            }
            // SAFETY: non-null packets are valid until the next encode call; for frame packets
            // the `frame` union member is the active one and `buf` holds `sz` bytes.
            let (data, pts, flags) = unsafe {
                if (*pkt).kind != sys::aom_codec_cx_pkt_kind::AOM_CODEC_CX_FRAME_PKT {
                    continue;
                }
                let f = (*pkt).data.frame;
                let bytes = std::slice::from_raw_parts(f.buf.cast::<u8>().cast_const(), f.sz);
                (Bytes::copy_from_slice(bytes), f.pts, f.flags)
            };
            let Some((frame_id, capture_us)) = self.in_flight.complete(pts as u64) else {
                continue;
            };
            let keyframe = flags & sys::AOM_FRAME_IS_KEY != 0;
            self.stats.frames_out += 1;
            self.stats.bytes_out += data.len() as u64;
            self.stats.keyframes += u64::from(keyframe);
            out.push(EncodedFrame {
                data,
                frame_id,
                capture_us,
                keyframe,
            });
        }
        self.stats.encode_us += started.elapsed().as_micros() as u64;
        self.stats.max_lag_frames = self.stats.max_lag_frames.max(self.in_flight.len());
        Ok(out)
    }
}

impl Encoder for AomEncoder {
    fn encode(&mut self, frame: &Frame) -> Result<Vec<EncodedFrame>, CodecError> {
        if self.finished {
            return Err(CodecError::InvalidConfig("encode after finish".into()));
        }
        self.config.check_size(frame)?;
        let img = wrap_image(frame)?;
        let pts = self.in_flight.submit(frame);
        self.stats.frames_in += 1;
        let requested = std::mem::take(&mut self.force_keyframe);
        let periodic = self
            .config
            .keyframe_interval
            .is_some_and(|i| self.since_keyframe >= u64::from(i));
        let keyframe = requested || periodic;
        if !keyframe {
            self.since_keyframe += 1;
            return self.submit(Some(&img), pts as i64, 0);
        }
        // The first frame is forced internally; only later ones count as requests.
        self.stats.forced_keyframes += u64::from(requested && self.stats.frames_in > 1);
        self.since_keyframe = 1;
        let speed = self.config.speed;
        use sys::aome_enc_control_id::AOME_SET_CPUUSED;
        if speed != KEYFRAME_SPEED {
            self.ctx
                .control(AOME_SET_CPUUSED, c_int::from(KEYFRAME_SPEED))?;
        }
        let out = self.submit(Some(&img), pts as i64, i64::from(sys::AOM_EFLAG_FORCE_KF));
        if speed != KEYFRAME_SPEED {
            self.ctx.control(AOME_SET_CPUUSED, c_int::from(speed))?;
        }
        out
    }

    fn finish(&mut self) -> Result<Vec<EncodedFrame>, CodecError> {
        if std::mem::replace(&mut self.finished, true) {
            return Ok(Vec::new());
        }
        self.submit(None, -1, 0)
    }

    fn force_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    fn set_target_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        let candidate = self.config.clone().with_bitrate_kbps(kbps);
        candidate.validate()?;
        if kbps == self.config.bitrate_kbps {
            return Ok(());
        }
        self.ctx.set_bitrate(kbps)?;
        self.config.bitrate_kbps = kbps;
        self.stats.target_kbps = kbps;
        self.stats.bitrate_changes += 1;
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

    #[test]
    fn in_flight_matches_out_of_order_skips() {
        let mut q = InFlight::default();
        for id in 10..14 {
            q.submit(&Frame::black(16, 16).with_meta(id, u64::from(id) * 100));
        }
        assert_eq!(q.len(), 4);
        assert_eq!(q.complete(0), Some((10, 1000)));
        // Frame 1 was dropped by the encoder: completing 2 discards it.
        assert_eq!(q.complete(2), Some((12, 1200)));
        assert_eq!(q.len(), 1);
        assert_eq!(q.complete(9), None);
        assert_eq!(q.len(), 0);
    }
}
