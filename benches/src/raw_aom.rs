//! `RawAom`: libaom driven directly through aom-sys, the baseline the codec report measures
//! `AomEncoder` against.
//!
//! It applies the same configuration and controls as the wrapper (`realtime_enc_cfg`,
//! `realtime_controls`) and does only what any caller must: wrap the picture, encode, walk
//! the packets. It copies nothing out, so the ratio between the two is the whole cost of the
//! wrapper (metadata bookkeeping, the packet copy into `Bytes`, the output `Vec`).
#![allow(unsafe_code)] // the point of this module is calling libaom without the wrapper

use std::os::raw::c_int;
use std::ptr;

use aom_sys as sys;
use tandem_codec::aom_encoder::{realtime_controls, realtime_enc_cfg, wrap_image};
use tandem_codec::{CodecError, EncoderConfig, Frame};

/// A bare libaom encoder.
pub struct RawAom {
    ctx: Box<sys::aom_codec_ctx_t>,
    _cfg: Box<sys::aom_codec_enc_cfg>,
    pts: i64,
}

impl std::fmt::Debug for RawAom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawAom")
            .field("pts", &self.pts)
            .finish_non_exhaustive()
    }
}

fn failed(what: &str) -> CodecError {
    CodecError::Encoder {
        library: "libaom",
        message: format!("{what} failed"),
    }
}

impl RawAom {
    /// Opens libaom with the wrapper's settings for `config`.
    pub fn new(config: &EncoderConfig) -> Result<RawAom, CodecError> {
        let cfg = Box::new(realtime_enc_cfg(config)?);
        // SAFETY: plain data, initialised by aom_codec_enc_init_ver.
        let mut ctx: Box<sys::aom_codec_ctx_t> = Box::new(unsafe { std::mem::zeroed() });
        // SAFETY: valid context and configuration that outlive the call.
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
            return Err(failed("aom_codec_enc_init_ver"));
        }
        let enc = RawAom {
            ctx,
            _cfg: cfg,
            pts: 0,
        };
        let mut enc = enc;
        for (id, value) in realtime_controls(config) {
            // SAFETY: initialised context; each listed control takes one int.
            if unsafe { sys::aom_codec_control(&mut *enc.ctx, id as c_int, value) } != 0 {
                return Err(failed("aom_codec_control"));
            }
        }
        Ok(enc)
    }

    /// Encodes `frame`; returns the bytes of the packets libaom produced.
    pub fn encode(&mut self, frame: &Frame) -> Result<usize, CodecError> {
        let img = wrap_image(frame)?;
        // SAFETY: initialised context; the image borrows `frame`, alive for the call.
        let err = unsafe { sys::aom_codec_encode(&mut *self.ctx, &img, self.pts, 1, 0) };
        self.pts += 1;
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            return Err(failed("aom_codec_encode"));
        }
        let mut bytes = 0;
        let mut iter: sys::aom_codec_iter_t = ptr::null();
        loop {
            // SAFETY: initialised context and its packet iterator.
            let pkt = unsafe { sys::aom_codec_get_cx_data(&mut *self.ctx, &mut iter) };
            if pkt.is_null() {
                return Ok(bytes);
            }
            // SAFETY: a non-null packet is valid until the next encode; `frame` is the active
            // union member for frame packets.
            unsafe {
                if (*pkt).kind == sys::aom_codec_cx_pkt_kind::AOM_CODEC_CX_FRAME_PKT {
                    bytes += (*pkt).data.frame.sz;
                }
            }
        }
    }
}

impl Drop for RawAom {
    fn drop(&mut self) {
        // SAFETY: initialised in `new`, destroyed once.
        unsafe {
            sys::aom_codec_destroy(&mut *self.ctx);
        }
    }
}
