//! [`I420Planes`]: the three tight planes of a picture a `yuv` kernel fills, whole or a band
//! of rows at a time, then handed over as a [`Frame`]. The screen's and the camera's
//! conversions both write into it.

use tandem_codec::{CodecError, Frame};
use yuv::{BufferStoreMut, YuvPlanarImageMut};

/// Three tight I420 planes (chroma rounded up for odd sizes) being filled.
pub(crate) struct I420Planes {
    width: u32,
    height: u32,
    planes: [Vec<u8>; 3],
}

impl I420Planes {
    pub(crate) fn new(width: u32, height: u32) -> I420Planes {
        let (w, h) = (width as usize, height as usize);
        let c = w.div_ceil(2) * h.div_ceil(2);
        I420Planes {
            width,
            height,
            planes: [vec![0; w * h], vec![0; c], vec![0; c]],
        }
    }

    pub(crate) fn width(&self) -> u32 {
        self.width
    }

    pub(crate) fn height(&self) -> u32 {
        self.height
    }

    /// The whole picture as a kernel's output.
    pub(crate) fn image(&mut self) -> YuvPlanarImageMut<'_, u8> {
        self.rows(0, self.height)
    }

    /// Rows `top .. top + rows` (`top` even, inside the picture) as a kernel's output.
    pub(crate) fn rows(&mut self, top: u32, rows: u32) -> YuvPlanarImageMut<'_, u8> {
        let (w, cw) = (self.width as usize, self.width.div_ceil(2) as usize);
        let (top, n) = (top as usize, rows as usize);
        let chroma = (top / 2) * cw..(top + n).div_ceil(2) * cw;
        let [y, u, v] = &mut self.planes;
        YuvPlanarImageMut {
            y_plane: BufferStoreMut::Borrowed(&mut y[top * w..(top + n) * w]),
            y_stride: self.width,
            u_plane: BufferStoreMut::Borrowed(&mut u[chroma.clone()]),
            u_stride: cw as u32,
            v_plane: BufferStoreMut::Borrowed(&mut v[chroma]),
            v_stride: cw as u32,
            width: self.width,
            height: rows,
        }
    }

    pub(crate) fn into_frame(self) -> Result<Frame, CodecError> {
        let (w, cw) = (self.width as usize, self.width.div_ceil(2) as usize);
        Frame::from_planes(self.width, self.height, self.planes, [w, cw, cw])
    }
}
