//! `OpenH264Encoder`: H.264 through OpenH264 (BSD-2, built from source), configured for live
//! streaming: what Apple's hardware decoders and every desktop decoder read.
//!
//! Settings (all in [`encoder_params`], tested):
//! - real-time usage (camera or screen content, from [`EncoderConfig::content`]), one spatial
//!   and one temporal layer, one reference frame: no B-frames and no lookahead, so every
//!   `encode` call returns its own frame (lag 0, measured by the tests);
//! - constrained baseline profile (CAVLC, no B slices): VideoToolbox and every software
//!   decoder read it; level chosen by OpenH264 from size and rate;
//! - bitrate rate control at the target, frame skipping off (the engine decides which frames
//!   to skip, not the rate control), scene-change IDRs off (a keyframe nobody asked for is a
//!   bitrate spike the playout buffer turns into a late frame), adaptive quantisation and
//!   background detection on;
//! - threads from [`EncoderConfig::threads`], with one slice per thread: OpenH264 parallelises
//!   across slices only, so one slice would leave every thread but one idle;
//! - complexity from [`EncoderConfig::speed`]: low from 8 up (the default speeds are 9 and
//!   10), medium from 4, high below;
//! - keyframes (IDR, preceded by SPS and PPS so a receiver can join on any keyframe) at the
//!   start, on request through `ForceIntraFrame`, and every `keyframe_interval` frames if set;
//! - bitrate changes through `ENCODER_OPTION_BITRATE`, applied from the next frame.
//!
//! The output is Annex B: each NAL unit after a four-byte start code, one access unit per
//! frame, the framing the Swift layer's `SampleBufferAssembler` reads.
#![allow(unsafe_code)] // OpenH264 is a C++ library behind a C vtable; every unsafe block states its invariant.

use std::os::raw::{c_int, c_void};
use std::ptr;
use std::time::Instant;

use bytes::Bytes;
use openh264_sys2 as sys;

use crate::encoder::{ContentKind, EncodedFrame, Encoder, EncoderConfig, EncoderStats};
use crate::error::CodecError;
use crate::frame::{Frame, PlaneIndex};

const LIBRARY: &str = "OpenH264";

/// OpenH264's parameters for `config`.
pub fn encoder_params(config: &EncoderConfig, base: sys::SEncParamExt) -> sys::SEncParamExt {
    let mut p = base;
    let (w, h) = (config.width as c_int, config.height as c_int);
    let bps = bits_per_s(config.bitrate_kbps);
    let fps = config.fps_num as f32 / config.fps_den.max(1) as f32;
    p.iUsageType = match config.content {
        ContentKind::Camera => sys::CAMERA_VIDEO_REAL_TIME,
        ContentKind::Screen => sys::SCREEN_CONTENT_REAL_TIME,
    };
    p.iPicWidth = w;
    p.iPicHeight = h;
    p.iTargetBitrate = bps;
    p.iMaxBitrate = sys::UNSPECIFIED_BIT_RATE as c_int;
    p.iRCMode = sys::RC_BITRATE_MODE;
    p.fMaxFrameRate = fps;
    p.iTemporalLayerNum = 1;
    p.iSpatialLayerNum = 1;
    p.iNumRefFrame = 1;
    p.uiIntraPeriod = config.keyframe_interval.unwrap_or(0);
    p.eSpsPpsIdStrategy = sys::CONSTANT_ID;
    p.bPrefixNalAddingCtrl = false;
    p.bEnableSSEI = false;
    p.iEntropyCodingModeFlag = 0; // CAVLC: baseline
    p.bEnableFrameSkip = false;
    p.bEnableSceneChangeDetect = false;
    p.bEnableAdaptiveQuant = true;
    p.bEnableBackgroundDetection = true;
    p.bEnableDenoise = false;
    p.bEnableLongTermReference = false;
    p.iLoopFilterDisableIdc = 0;
    p.iComplexityMode = match config.speed {
        8.. => sys::LOW_COMPLEXITY,
        4..=7 => sys::MEDIUM_COMPLEXITY,
        _ => sys::HIGH_COMPLEXITY,
    };
    let threads = slice_count(config);
    p.iMultipleThreadIdc = threads as u16;
    p.bUseLoadBalancing = false;
    let layer = &mut p.sSpatialLayers[0];
    layer.iVideoWidth = w;
    layer.iVideoHeight = h;
    layer.fFrameRate = fps;
    layer.iSpatialBitrate = bps;
    layer.iMaxSpatialBitrate = sys::UNSPECIFIED_BIT_RATE as c_int;
    layer.uiProfileIdc = sys::PRO_BASELINE;
    layer.uiLevelIdc = sys::LEVEL_UNKNOWN;
    layer.sSliceArgument.uiSliceMode = if threads > 1 {
        sys::SM_FIXEDSLCNUM_SLICE
    } else {
        sys::SM_SINGLE_SLICE
    };
    layer.sSliceArgument.uiSliceNum = threads;
    p
}

/// Slices (and threads): one per thread, at most one per 16-pixel macroblock row pair so
/// no slice is thinner than two rows, and at most 4 (more slices cost compression for
/// little more speed at these sizes).
pub fn slice_count(config: &EncoderConfig) -> u32 {
    let mb_rows = config.height.div_ceil(16);
    (config.threads as u32)
        .clamp(1, 4)
        .min((mb_rows / 2).max(1))
}

fn bits_per_s(kbps: u32) -> c_int {
    c_int::try_from(u64::from(kbps) * 1000).unwrap_or(c_int::MAX)
}

/// The instance's methods used after initialisation, taken from its vtable once, so a
/// missing one fails `new` rather than a frame.
#[derive(Clone, Copy)]
struct Calls {
    encode: unsafe extern "C" fn(
        *mut sys::ISVCEncoder,
        *const sys::SSourcePicture,
        *mut sys::SFrameBSInfo,
    ) -> c_int,
    force_intra: unsafe extern "C" fn(*mut sys::ISVCEncoder, bool) -> c_int,
    set_option:
        unsafe extern "C" fn(*mut sys::ISVCEncoder, sys::ENCODER_OPTION, *mut c_void) -> c_int,
    uninitialize: unsafe extern "C" fn(*mut sys::ISVCEncoder) -> c_int,
}

/// A vtable entry, or an error naming it.
fn need<T>(entry: Option<T>, name: &str) -> Result<T, CodecError> {
    entry.ok_or_else(|| CodecError::Encoder {
        library: LIBRARY,
        message: format!("the vtable has no {name}"),
    })
}

impl Calls {
    fn of(vtbl: &sys::ISVCEncoderVtbl) -> Result<Calls, CodecError> {
        Ok(Calls {
            encode: need(vtbl.EncodeFrame, "EncodeFrame")?,
            force_intra: need(vtbl.ForceIntraFrame, "ForceIntraFrame")?,
            set_option: need(vtbl.SetOption, "SetOption")?,
            uninitialize: need(vtbl.Uninitialize, "Uninitialize")?,
        })
    }
}

/// The OpenH264 H.264 encoder.
pub struct OpenH264Encoder {
    enc: *mut sys::ISVCEncoder,
    calls: Calls,
    config: EncoderConfig,
    stats: EncoderStats,
    info: Box<sys::SFrameBSInfo>,
    force_next: bool,
    finished: bool,
}

// SAFETY: the encoder instance is used only through `&mut self` (one thread at a time);
// OpenH264 keeps no thread-affine state (its worker threads are its own).
unsafe impl Send for OpenH264Encoder {}

impl std::fmt::Debug for OpenH264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenH264Encoder")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str, code: c_int) -> CodecError {
    CodecError::Encoder {
        library: LIBRARY,
        message: format!("{what} failed (error {code})"),
    }
}

impl OpenH264Encoder {
    /// Opens an encoder for `config`.
    pub fn new(config: &EncoderConfig) -> Result<OpenH264Encoder, CodecError> {
        config.validate()?;
        if !config.width.is_multiple_of(2)
            || !config.height.is_multiple_of(2)
            || config.width > 3840
        {
            return Err(CodecError::InvalidConfig(format!(
                "size {}×{} (H.264 through OpenH264 needs even sizes up to 3840 wide)",
                config.width, config.height
            )));
        }
        let mut enc: *mut sys::ISVCEncoder = ptr::null_mut();
        // SAFETY: `enc` is a valid out-pointer; OpenH264 writes an instance or leaves null.
        let rc = unsafe { sys::source::APILoader::WelsCreateSVCEncoder(&mut enc) };
        if rc != 0 || enc.is_null() {
            return Err(failed("WelsCreateSVCEncoder", rc));
        }
        // SAFETY: `enc` points at an ISVCEncoder, itself a pointer to its vtable.
        let vtbl = unsafe { **enc };
        let calls = match Calls::of(&vtbl) {
            Ok(c) => c,
            Err(e) => {
                // SAFETY: created above, never initialised, destroyed once.
                unsafe { sys::source::APILoader::WelsDestroySVCEncoder(enc) };
                return Err(e);
            }
        };
        let mut this = OpenH264Encoder {
            enc,
            calls,
            config: config.clone(),
            stats: EncoderStats {
                target_kbps: config.bitrate_kbps,
                ..EncoderStats::default()
            },
            info: Box::default(),
            force_next: false,
            finished: false,
        };
        let mut base = sys::SEncParamExt::default();
        let get_default = need(vtbl.GetDefaultParams, "GetDefaultParams")?;
        // SAFETY: `base` is a valid, writable parameter struct.
        let rc = unsafe { get_default(this.enc, &mut base) };
        if rc != 0 {
            return Err(failed("GetDefaultParams", rc));
        }
        // Quiet before initialising: OpenH264 otherwise prints its parameter warnings to
        // stderr (the trace level is the one option it accepts before initialisation).
        let mut quiet: c_int = sys::WELS_LOG_QUIET as c_int;
        this.set_option(sys::ENCODER_OPTION_TRACE_LEVEL, (&raw mut quiet).cast())?;
        let params = encoder_params(config, base);
        let init = need(vtbl.InitializeExt, "InitializeExt")?;
        // SAFETY: `params` is fully initialised from OpenH264's own defaults.
        let rc = unsafe { init(this.enc, &params) };
        if rc != 0 {
            return Err(failed(
                &format!(
                    "initialising {}×{} at {} kbit/s",
                    config.width, config.height, config.bitrate_kbps
                ),
                rc,
            ));
        }
        let mut format: c_int = sys::videoFormatI420 as c_int;
        this.set_option(sys::ENCODER_OPTION_DATAFORMAT, (&raw mut format).cast())?;
        Ok(this)
    }

    fn set_option(
        &mut self,
        option: sys::ENCODER_OPTION,
        value: *mut c_void,
    ) -> Result<(), CodecError> {
        // SAFETY: the instance exists and `value` points at the type `option` takes.
        let rc = unsafe { (self.calls.set_option)(self.enc, option, value) };
        if rc != 0 {
            return Err(failed(&format!("SetOption {option}"), rc));
        }
        Ok(())
    }

    fn encode_one(&mut self, frame: &Frame) -> Result<Option<EncodedFrame>, CodecError> {
        self.config.check_size(frame)?;
        let stride = |p| c_int::try_from(frame.stride(p)).unwrap_or(c_int::MAX);
        let plane = |p| frame.plane(p).as_ptr().cast_mut();
        let source = sys::SSourcePicture {
            iColorFormat: sys::videoFormatI420 as c_int,
            iStride: [
                stride(PlaneIndex::Y),
                stride(PlaneIndex::U),
                stride(PlaneIndex::V),
                0,
            ],
            pData: [
                plane(PlaneIndex::Y),
                plane(PlaneIndex::U),
                plane(PlaneIndex::V),
                ptr::null_mut(),
            ],
            iPicWidth: self.config.width as c_int,
            iPicHeight: self.config.height as c_int,
            uiTimeStamp: i64::try_from(frame.capture_us / 1000).unwrap_or(0),
            bPsnrY: false,
            bPsnrU: false,
            bPsnrV: false,
        };
        let forced = std::mem::take(&mut self.force_next);
        if forced {
            // SAFETY: the instance is initialised.
            unsafe { (self.calls.force_intra)(self.enc, true) };
        }
        let started = Instant::now();
        // SAFETY: `source` points at the frame's planes, valid and at least as large as the
        // configured size with these strides (checked by `check_size` and Frame's
        // invariants); OpenH264 only reads them. `info` is a valid output struct whose
        // buffers OpenH264 owns until the next call.
        let rc = unsafe { (self.calls.encode)(self.enc, &source, &mut *self.info) };
        self.stats.encode_us += started.elapsed().as_micros() as u64;
        if rc != 0 {
            return Err(failed("EncodeFrame", rc));
        }
        let info = &*self.info;
        if info.eFrameType == sys::videoFrameTypeSkip
            || info.eFrameType == sys::videoFrameTypeInvalid
        {
            return Ok(None);
        }
        let mut data = Vec::with_capacity(usize::try_from(info.iFrameSizeInBytes).unwrap_or(0));
        let layers = usize::try_from(info.iLayerNum)
            .unwrap_or(0)
            .min(info.sLayerInfo.len());
        for layer in &info.sLayerInfo[..layers] {
            let nals = usize::try_from(layer.iNalCount).unwrap_or(0);
            let mut len = 0usize;
            for i in 0..nals {
                // SAFETY: OpenH264 fills `iNalCount` lengths in `pNalLengthInByte`.
                len += usize::try_from(unsafe { *layer.pNalLengthInByte.add(i) }).unwrap_or(0);
            }
            if len > 0 {
                // SAFETY: the layer's NAL units lie back to back in `pBsBuf`, `len` bytes.
                data.extend_from_slice(unsafe { std::slice::from_raw_parts(layer.pBsBuf, len) });
            }
        }
        let keyframe = info.eFrameType == sys::videoFrameTypeIDR;
        self.stats.frames_out += 1;
        self.stats.bytes_out += data.len() as u64;
        self.stats.keyframes += u64::from(keyframe);
        self.stats.forced_keyframes += u64::from(forced && keyframe);
        Ok(Some(EncodedFrame {
            data: Bytes::from(data),
            frame_id: frame.id,
            capture_us: frame.capture_us,
            keyframe,
        }))
    }
}

impl Encoder for OpenH264Encoder {
    fn encode(&mut self, frame: &Frame) -> Result<Vec<EncodedFrame>, CodecError> {
        if self.finished {
            return Err(CodecError::Encoder {
                library: LIBRARY,
                message: "frame submitted after finish".into(),
            });
        }
        self.stats.frames_in += 1;
        Ok(self.encode_one(frame)?.into_iter().collect())
    }

    fn finish(&mut self) -> Result<Vec<EncodedFrame>, CodecError> {
        // Nothing is ever held: `EncodeFrame` writes the submitted picture's bitstream before
        // it returns (no lookahead, no reordering), so `max_lag_frames` stays 0 by what the
        // library does, and the round-trip tests check each call returns its own frame.
        self.finished = true;
        Ok(Vec::new())
    }

    fn force_keyframe(&mut self) {
        self.force_next = true;
    }

    fn set_target_bitrate(&mut self, kbps: u32) -> Result<(), CodecError> {
        self.config.clone().with_bitrate_kbps(kbps).validate()?;
        let mut info = sys::SBitrateInfo {
            iLayer: sys::SPATIAL_LAYER_ALL,
            iBitrate: bits_per_s(kbps),
        };
        self.set_option(sys::ENCODER_OPTION_BITRATE, (&raw mut info).cast())?;
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

impl Drop for OpenH264Encoder {
    fn drop(&mut self) {
        // SAFETY: the instance is not used again; Uninitialize returns at once for an instance
        // whose initialisation failed (`if (!m_bInitialFlag) return 0;` in OpenH264's
        // codec/encoder/plus/src/welsEncoderExt.cpp).
        unsafe { (self.calls.uninitialize)(self.enc) };
        // SAFETY: `enc` came from WelsCreateSVCEncoder and is destroyed once.
        unsafe { sys::source::APILoader::WelsDestroySVCEncoder(self.enc) };
    }
}
