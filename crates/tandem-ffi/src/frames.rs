//! Frames handed to the app: a decoded picture or an encoded frame, as objects that copy
//! themselves into the app's memory, once.
//!
//! The copy-into calls take a raw address (`UInt64` in Swift: `UInt64(UInt(bitPattern:
//! pointer))`) and the size of the memory there. The engine checks the size against what it
//! will write and writes nothing outside it; the app promises that the address is valid
//! and writable for that many bytes for the length of the call (a `CVPixelBuffer` locked
//! with `CVPixelBufferLockBaseAddress`, `Data.withUnsafeMutableBytes`).

use std::sync::Arc;
use std::time::Duration;

use tandem::{DisplayFrame, EncodedVideo};
use tandem_codec::{Frame, PlaneIndex};

use crate::error::TandemError;
use crate::live::{Kind, Live};
use crate::types::{Plane, VideoCodec};

/// Writes `rows` rows of `width` bytes from `src` (rows `src_stride` apart) to `dst`
/// (rows `dst_stride` apart), after checking that they fit in `dst_len` bytes.
fn write_rows(
    src: &[u8],
    src_stride: usize,
    width: usize,
    rows: usize,
    dst: u64,
    dst_stride: usize,
    dst_len: u64,
) -> Result<(), TandemError> {
    let out = destination(dst, dst_stride, width, rows, dst_len)?;
    for r in 0..rows {
        out[r * dst_stride..r * dst_stride + width]
            .copy_from_slice(&src[r * src_stride..r * src_stride + width]);
    }
    Ok(())
}

/// The app's memory at `address` as a slice, after checking it holds `rows` rows of `width`
/// bytes `stride` apart.
fn destination<'a>(
    address: u64,
    stride: usize,
    width: usize,
    rows: usize,
    len: u64,
) -> Result<&'a mut [u8], TandemError> {
    if address == 0 {
        return Err(TandemError::invalid("destination address is null"));
    }
    if stride < width {
        return Err(TandemError::invalid(format!(
            "destination stride {stride} is narrower than the plane's width {width}"
        )));
    }
    let need = if rows == 0 {
        0
    } else {
        stride * (rows - 1) + width
    };
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if len < need {
        return Err(TandemError::invalid(format!(
            "destination holds {len} bytes; {rows} rows of {width} with stride {stride} need \
             {need}"
        )));
    }
    let ptr = usize::try_from(address)
        .map_err(|_| TandemError::invalid("destination address does not fit this platform"))?
        as *mut u8;
    // SAFETY: the caller (the app, through the documented contract) hands over `len`
    // writable bytes at `address` for the duration of the call, and nothing else refers
    // to them meanwhile; `need <= len`.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, need) })
}

/// A decoded I420 picture to show. Release it soon: the decoder's buffer behind it stays
/// alive while the app holds it.
#[derive(Debug, uniffi::Object)]
pub struct DecodedFrame {
    inner: DisplayFrame,
    _live: Live,
}

impl DecodedFrame {
    pub(crate) fn new(inner: DisplayFrame) -> Arc<DecodedFrame> {
        Arc::new(DecodedFrame {
            inner,
            _live: Live::new(Kind::DecodedFrame),
        })
    }

    fn frame(&self) -> &Frame {
        &self.inner.frame
    }
}

/// A plane's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PlaneLayout {
    /// Width in pixels (= bytes per row of picture).
    pub width: u32,
    /// Rows.
    pub height: u32,
    /// Bytes from one row to the next in the engine's buffer.
    pub stride: u32,
}

#[uniffi::export]
impl DecodedFrame {
    /// Luma width, pixels.
    pub fn width(&self) -> u32 {
        self.frame().width()
    }

    /// Luma height, pixels.
    pub fn height(&self) -> u32 {
        self.frame().height()
    }

    /// The sender's frame id.
    pub fn frame_id(&self) -> u32 {
        self.frame().id
    }

    /// Whether it was a keyframe.
    pub fn keyframe(&self) -> bool {
        self.inner.keyframe
    }

    /// Capture time on the sender's clock, µs.
    pub fn capture_us(&self) -> u64 {
        self.inner.capture_us
    }

    /// Glass-to-glass latency read from the pixel code (test pattern only), ms.
    pub fn g2g_ms(&self) -> Option<f64> {
        self.inner.g2g.map(|d: Duration| d.as_secs_f64() * 1e3)
    }

    /// The frame id stamped in the picture's pixel code (test pattern only).
    pub fn pixel_code_frame_id(&self) -> Option<u32> {
        self.inner.code.map(|c| c.frame_id)
    }

    /// A plane's width, height and stride.
    pub fn layout(&self, plane: Plane) -> PlaneLayout {
        let p = PlaneIndex::from(plane);
        let (w, h) = self.frame().plane_size(p);
        PlaneLayout {
            width: w as u32,
            height: h as u32,
            stride: self.frame().stride(p) as u32,
        }
    }

    /// The plane's picture bytes, rows packed (`width` apart). Convenient, and two copies
    /// (into a UniFFI buffer, then into `Data`); to show frames, use
    /// [`DecodedFrame::copy_plane`].
    pub fn plane_bytes(&self, plane: Plane) -> Vec<u8> {
        let p = PlaneIndex::from(plane);
        let (w, h) = self.frame().plane_size(p);
        let mut out = Vec::with_capacity(w * h);
        self.frame().append_packed(p, &mut out);
        out
    }

    /// Copies a plane into the app's memory at `destination` (`destination_len` bytes,
    /// rows `destination_stride` apart): the one copy between decoder and screen. For a
    /// planar (`y420`) `CVPixelBuffer`, once per plane.
    pub fn copy_plane(
        &self,
        plane: Plane,
        destination: u64,
        destination_stride: u32,
        destination_len: u64,
    ) -> Result<(), TandemError> {
        let p = PlaneIndex::from(plane);
        let (w, h) = self.frame().plane_size(p);
        write_rows(
            self.frame().plane(p),
            self.frame().stride(p),
            w,
            h,
            destination,
            destination_stride as usize,
            destination_len,
        )
    }

    /// Copies the picture into a bi-planar NV12 layout (`420v`/`420f` `CVPixelBuffer`,
    /// what `AVSampleBufferDisplayLayer` and Metal prefer): luma as is, chroma interleaved
    /// Cb,Cr. Still one copy: the interleave happens as it is written.
    pub fn copy_nv12(
        &self,
        luma: u64,
        luma_stride: u32,
        luma_len: u64,
        chroma: u64,
        chroma_stride: u32,
        chroma_len: u64,
    ) -> Result<(), TandemError> {
        self.copy_plane(Plane::Y, luma, luma_stride, luma_len)?;
        let f = self.frame();
        let (cw, ch) = f.plane_size(PlaneIndex::U);
        let out = destination(chroma, chroma_stride as usize, cw * 2, ch, chroma_len)?;
        for r in 0..ch {
            let (u, v) = (f.row(PlaneIndex::U, r), f.row(PlaneIndex::V, r));
            let row = &mut out[r * chroma_stride as usize..][..cw * 2];
            for (x, pair) in row.chunks_exact_mut(2).enumerate() {
                pair[0] = u[x];
                pair[1] = v[x];
            }
        }
        Ok(())
    }
}

/// An encoded frame as it arrived (every frame, in order: a decoder needs them all).
#[derive(Debug, uniffi::Object)]
pub struct EncodedFrame {
    inner: EncodedVideo,
    _live: Live,
}

impl EncodedFrame {
    pub(crate) fn new(inner: EncodedVideo) -> Arc<EncodedFrame> {
        Arc::new(EncodedFrame {
            inner,
            _live: Live::new(Kind::EncodedFrame),
        })
    }
}

#[uniffi::export]
impl EncodedFrame {
    /// The sender's frame id.
    pub fn frame_id(&self) -> u32 {
        self.inner.frame_id
    }

    /// Its codec (`nil` for one this build has no name for).
    pub fn codec(&self) -> Option<VideoCodec> {
        VideoCodec::from_engine(self.inner.codec)
    }

    /// Whether it decodes on its own.
    pub fn keyframe(&self) -> bool {
        self.inner.keyframe
    }

    /// Whether playout marked it for display (false: decode it, but show the next).
    pub fn display(&self) -> bool {
        self.inner.display
    }

    /// Capture time on the sender's clock, µs.
    pub fn capture_us(&self) -> u64 {
        self.inner.capture_us
    }

    /// Its length in bytes.
    pub fn len(&self) -> u64 {
        self.inner.data.len() as u64
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.inner.data.is_empty()
    }

    /// The bytes (two copies; see [`EncodedFrame::copy_to`] for one).
    pub fn data(&self) -> Vec<u8> {
        self.inner.data.to_vec()
    }

    /// Copies the bytes to `destination` (`destination_len` bytes available, at least
    /// [`EncodedFrame::len`]), for a `CMBlockBuffer` a VideoToolbox decoder reads.
    pub fn copy_to(&self, destination: u64, destination_len: u64) -> Result<(), TandemError> {
        let n = self.inner.data.len();
        write_rows(&self.inner.data, n, n, 1, destination, n, destination_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_land_at_the_destination_stride_and_nothing_past_the_length() {
        let src = [1u8, 2, 3, 0, 4, 5, 6, 0];
        let mut dst = vec![9u8; 10];
        let addr = dst.as_mut_ptr() as u64;
        write_rows(&src, 4, 3, 2, addr, 5, 8).expect("fits");
        assert_eq!(dst, [1, 2, 3, 9, 9, 4, 5, 6, 9, 9]);
        let e = write_rows(&src, 4, 3, 2, addr, 5, 7).expect_err("too short");
        assert!(e.to_string().contains("need 8"), "{e}");
        let e = write_rows(&src, 4, 3, 2, 0, 5, 8).expect_err("null");
        assert!(e.to_string().contains("null"), "{e}");
        let e = write_rows(&src, 4, 3, 2, addr, 2, 8).expect_err("narrow");
        assert!(e.to_string().contains("narrower"), "{e}");
    }
}
