//! `RawAom`: libaom driven directly through aom-sys, the baseline the codec report measures
//! `AomEncoder` against.
//!
//! It opens the same `AomContext` as the wrapper (same configuration and controls) and does
//! only what any caller must: wrap the picture, encode, walk the packets. It copies nothing out, so the ratio between the two is the whole cost of the
//! wrapper (metadata bookkeeping, the packet copy into `Bytes`, the output `Vec`).
#![allow(unsafe_code)] // the point of this module is calling libaom without the wrapper

use std::ptr;

use aom_sys as sys;
use tandem_codec::aom_encoder::{AomContext, wrap_image};
use tandem_codec::{CodecError, EncoderConfig, Frame};

/// A bare libaom encoder.
#[derive(Debug)]
pub struct RawAom {
    ctx: AomContext,
    pts: i64,
}

fn failed(what: &str) -> CodecError {
    CodecError::Encoder {
        library: "libaom",
        message: format!("{what} failed"),
    }
}

impl RawAom {
    /// Opens libaom with the wrapper's settings for `config` (the same [`AomContext`]).
    pub fn new(config: &EncoderConfig) -> Result<RawAom, CodecError> {
        Ok(RawAom {
            ctx: AomContext::open(config)?,
            pts: 0,
        })
    }

    /// Encodes `frame`; returns the bytes of the packets libaom produced.
    pub fn encode(&mut self, frame: &Frame) -> Result<usize, CodecError> {
        let img = wrap_image(frame)?;
        let ctx = self.ctx.as_ptr();
        // SAFETY: initialised context; the image borrows `frame`, alive for the call.
        let err = unsafe { sys::aom_codec_encode(ctx, &img, self.pts, 1, 0) };
        self.pts += 1;
        if err != sys::aom_codec_err_t::AOM_CODEC_OK {
            return Err(failed("aom_codec_encode"));
        }
        let mut bytes = 0;
        let mut iter: sys::aom_codec_iter_t = ptr::null();
        loop {
            // SAFETY: initialised context and its packet iterator.
            let pkt = unsafe { sys::aom_codec_get_cx_data(ctx, &mut iter) };
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
