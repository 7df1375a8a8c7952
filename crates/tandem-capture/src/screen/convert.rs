//! BGRX (X11's 24/32-bit TrueColor on a little-endian server) to I420, with the `yuv`
//! crate's SIMD kernels.
//!
//! Matrix and range: BT.601, limited range (Y 16–235, U/V 16–240). None of Tandem's encoders
//! writes colour metadata (rav1e's and libaom's defaults and OpenH264's VUI-less SPS all mean
//! "limited range, matrix unspecified"), decoders and players take unspecified as BT.601 at
//! these sizes, and `tandem_codec::Frame`'s own RGB helpers (the receiver's display path)
//! are BT.601 limited; converting with anything else would shift every colour on screen.

use tandem_codec::{CodecError, Frame};
use yuv::{YuvConversionMode, YuvRange, YuvStandardMatrix};

use crate::planes::I420Planes;

/// Converts the top-left `width × height` pixels of `bgrx` (4 bytes a pixel, blue first,
/// the fourth byte ignored; rows `stride` bytes apart, `stride × height` bytes at least, the
/// last row's padding included) to a new I420 [`Frame`] with tight strides. `width` and
/// `height` must be even.
///
/// The frame's planes are new each call because the frame leaves for the encoder; the
/// screen report measures what that costs next to the conversion itself.
pub fn bgrx_to_i420(
    bgrx: &[u8],
    stride: usize,
    width: u32,
    height: u32,
) -> Result<Frame, CodecError> {
    let mut planes = Planes::new(width, height)?;
    planes.convert_rows(bgrx, stride, 0, height)?;
    planes.into_frame()
}

/// The planes of an even-sized I420 picture being filled from BGRX, possibly a band of rows
/// at a time (the MIT-SHM capture converts one band while the server writes the next).
pub(super) struct Planes(I420Planes);

impl Planes {
    pub(super) fn new(width: u32, height: u32) -> Result<Planes, CodecError> {
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(CodecError::InvalidFrame(format!(
                "BGRX to I420 needs an even, non-zero size, not {width}×{height}"
            )));
        }
        Ok(Planes(I420Planes::new(width, height)))
    }

    /// Converts rows `top .. top + rows` of the picture (`top` and `rows` even) from `bgrx`,
    /// which holds those rows only, `stride` bytes apart, `stride × rows` bytes at least.
    pub(super) fn convert_rows(
        &mut self,
        bgrx: &[u8],
        stride: usize,
        top: u32,
        rows: u32,
    ) -> Result<(), CodecError> {
        let (width, height) = (self.0.width(), self.0.height());
        let w = width as usize;
        if !top.is_multiple_of(2) || !rows.is_multiple_of(2) || rows == 0 || top + rows > height {
            return Err(CodecError::InvalidFrame(format!(
                "rows {top}..{} of a {width}×{height} picture (even bounds inside it needed)",
                top + rows,
            )));
        }
        // The whole last row, padding too: yuv 0.8 walks the source in chunks of two full
        // strides and silently leaves the last two output rows unwritten when the final
        // chunk is short.
        let need = stride * rows as usize;
        if stride < w * 4 || bgrx.len() < need {
            return Err(CodecError::InvalidFrame(format!(
                "BGRX buffer of {} bytes with stride {stride} for {width}×{rows} (needs {need})",
                bgrx.len()
            )));
        }
        let stride32 = u32::try_from(stride)
            .map_err(|_| CodecError::InvalidFrame(format!("BGRX stride {stride} too large")))?;
        // The alpha byte of `Bgra` is not read for RGB → YUV, so X's padding byte is fine.
        yuv::bgra_to_yuv420(
            &mut self.0.rows(top, rows),
            &bgrx[..need],
            stride32,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| CodecError::InvalidFrame(format!("BGRX to I420: {e}")))
    }

    pub(super) fn into_frame(self) -> Result<Frame, CodecError> {
        self.0.into_frame()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_codec::PlaneIndex;

    /// `rgb` (tight, 3 bytes a pixel) as BGRX rows `stride` bytes apart, padding 0xAB.
    fn to_bgrx(rgb: &[u8], width: usize, stride: usize) -> Vec<u8> {
        let rows = rgb.len() / 3 / width;
        let mut out = vec![0xAB; stride * rows];
        for (y, row) in rgb.chunks_exact(width * 3).enumerate() {
            for (x, p) in row.chunks_exact(3).enumerate() {
                let o = y * stride + x * 4;
                out[o..o + 4].copy_from_slice(&[p[2], p[1], p[0], 0xAB]);
            }
        }
        out
    }

    #[test]
    fn matches_the_engines_bt601_limited_conversion() {
        // Flat 2×2 blocks of primaries and greys: the reference (Frame::from_rgb, integer
        // BT.601 limited) and the SIMD kernel must agree within rounding.
        let (w, h) = (8usize, 4usize);
        let colours: [[u8; 3]; 8] = [
            [255, 255, 255],
            [0, 0, 0],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [128, 64, 200],
            [16, 200, 90],
            [77, 77, 77],
        ];
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let c = colours[(y / 2) * 4 + x / 2];
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&c);
            }
        }
        let want = Frame::from_rgb(w as u32, h as u32, &rgb).expect("reference");
        let stride = w * 4 + 12; // a padded source row
        let got =
            bgrx_to_i420(&to_bgrx(&rgb, w, stride), stride, w as u32, h as u32).expect("converts");
        assert!(got.is_tight());
        for p in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V] {
            for row in 0..want.plane_size(p).1 {
                for (a, b) in got.row(p, row).iter().zip(want.row(p, row)) {
                    assert!(a.abs_diff(*b) <= 1, "{p:?} row {row}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn odd_sizes_and_short_buffers_are_refused() {
        let buf = vec![0u8; 16 * 4 * 4];
        assert!(bgrx_to_i420(&buf, 64, 15, 4).is_err());
        assert!(bgrx_to_i420(&buf, 64, 16, 3).is_err());
        assert!(
            bgrx_to_i420(&buf, 60, 16, 4).is_err(),
            "stride narrower than a row"
        );
        assert!(bgrx_to_i420(&buf[..100], 64, 16, 4).is_err());
        assert!(bgrx_to_i420(&buf, 64, 16, 4).is_ok());
    }

    #[test]
    fn bands_of_rows_make_the_same_picture_as_one_pass() {
        let (w, h) = (40u32, 30u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 37 % 251) as u8).collect();
        let stride = w as usize * 4;
        let bgrx = to_bgrx(&rgb, w as usize, stride);
        let whole = bgrx_to_i420(&bgrx, stride, w, h).expect("converts");
        let mut planes = Planes::new(w, h).expect("even");
        for (top, rows) in [(0, 8), (8, 14), (22, 8)] {
            let band = &bgrx[top as usize * stride..(top + rows) as usize * stride];
            planes.convert_rows(band, stride, top, rows).expect("band");
        }
        assert!(planes.into_frame().expect("frame").same_picture(&whole));
        let mut planes = Planes::new(w, h).expect("even");
        assert!(planes.convert_rows(&bgrx, stride, 1, 8).is_err(), "odd top");
        assert!(
            planes.convert_rows(&bgrx, stride, 24, 8).is_err(),
            "past the bottom"
        );
    }
}
