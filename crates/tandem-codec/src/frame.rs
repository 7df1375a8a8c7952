//! `Frame`: one 8-bit I420 picture with per-plane strides, its frame id and capture time.
//!
//! Strides are kept per plane because decoders hand out padded rows (dav1d aligns rows to
//! 64 bytes or more) and capture APIs do the same; a frame never assumes `stride == width`.
//! Odd sizes are allowed: chroma planes are `ceil(width / 2) × ceil(height / 2)`.
//!
//! Plane storage is either owned (`Vec<u8>`, what sources and conversions produce) or shared
//! (`Bytes`, for example a decoder's own picture buffer wrapped without a copy). Writing to a
//! shared plane first copies it ([`Frame::plane_mut`]), so sharing is never observable.
//!
//! The RGB helpers use BT.601 limited range (Y 16–235, U/V 16–240), which is what the
//! encoders signal by default; they exist for display and for tests, not for the hot path.

use bytes::Bytes;

use crate::error::CodecError;

/// Which plane of an I420 frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneIndex {
    /// Luma, full resolution.
    Y = 0,
    /// Blue-difference chroma, half resolution in both directions.
    U = 1,
    /// Red-difference chroma, half resolution in both directions.
    V = 2,
}

/// One plane's bytes: owned, or shared with whoever produced them.
#[derive(Clone, PartialEq, Eq)]
enum PlaneData {
    Owned(Vec<u8>),
    Shared(Bytes),
}

impl PlaneData {
    fn as_slice(&self) -> &[u8] {
        match self {
            PlaneData::Owned(v) => v,
            PlaneData::Shared(b) => b,
        }
    }

    fn make_mut(&mut self) -> &mut [u8] {
        if let PlaneData::Shared(b) = self {
            *self = PlaneData::Owned(b.to_vec());
        }
        match self {
            PlaneData::Owned(v) => v,
            PlaneData::Shared(_) => unreachable!("converted to owned above"),
        }
    }
}

/// An 8-bit I420 picture.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    width: u32,
    height: u32,
    planes: [PlaneData; 3],
    strides: [usize; 3],
    /// The frame's sequence number as the source numbered it.
    pub id: u32,
    /// When the picture was captured, in µs of the source's clock.
    pub capture_us: u64,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("strides", &self.strides)
            .field("id", &self.id)
            .field("capture_us", &self.capture_us)
            .finish_non_exhaustive()
    }
}

/// Width and height of the chroma planes of an I420 picture of `width × height`.
pub const fn chroma_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(2), height.div_ceil(2))
}

impl Frame {
    /// A black frame (Y 16, U/V 128) with tight strides.
    ///
    /// # Panics
    /// If `width` or `height` is zero.
    pub fn black(width: u32, height: u32) -> Frame {
        Self::filled(width, height, [16, 128, 128])
    }

    /// A frame whose planes are filled with `yuv`, with tight strides.
    ///
    /// # Panics
    /// If `width` or `height` is zero.
    pub fn filled(width: u32, height: u32, yuv: [u8; 3]) -> Frame {
        assert!(width > 0 && height > 0, "a frame needs a non-zero size");
        let (cw, ch) = chroma_size(width, height);
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        Frame {
            width,
            height,
            planes: [
                PlaneData::Owned(vec![yuv[0]; w * h]),
                PlaneData::Owned(vec![yuv[1]; cw * ch]),
                PlaneData::Owned(vec![yuv[2]; cw * ch]),
            ],
            strides: [w, cw, cw],
            id: 0,
            capture_us: 0,
        }
    }

    /// A frame that owns `planes`, laid out with `strides`.
    ///
    /// Each plane must hold `stride × (rows - 1) + row width` bytes at least, and each stride
    /// must be at least that plane's width.
    pub fn from_planes(
        width: u32,
        height: u32,
        planes: [Vec<u8>; 3],
        strides: [usize; 3],
    ) -> Result<Frame, CodecError> {
        Self::from_plane_data(width, height, planes.map(PlaneData::Owned), strides)
    }

    /// A frame over shared buffers (for example a decoder's picture, wrapped without a copy),
    /// with the same layout rules as [`Frame::from_planes`]. Writing to a plane copies it.
    pub fn from_shared_planes(
        width: u32,
        height: u32,
        planes: [Bytes; 3],
        strides: [usize; 3],
    ) -> Result<Frame, CodecError> {
        Self::from_plane_data(width, height, planes.map(PlaneData::Shared), strides)
    }

    fn from_plane_data(
        width: u32,
        height: u32,
        planes: [PlaneData; 3],
        strides: [usize; 3],
    ) -> Result<Frame, CodecError> {
        if width == 0 || height == 0 {
            return Err(CodecError::InvalidFrame(format!("size {width}×{height}")));
        }
        let (cw, ch) = chroma_size(width, height);
        let dims = [(width, height), (cw, ch), (cw, ch)];
        for (i, ((w, h), (plane, stride))) in
            dims.iter().zip(planes.iter().zip(strides)).enumerate()
        {
            let (w, h) = (*w as usize, *h as usize);
            if stride < w {
                return Err(CodecError::InvalidFrame(format!(
                    "plane {i}: stride {stride} is narrower than its width {w}"
                )));
            }
            let need = stride * (h - 1) + w;
            let len = plane.as_slice().len();
            if len < need {
                return Err(CodecError::InvalidFrame(format!(
                    "plane {i}: {len} bytes, {w}×{h} with stride {stride} needs {need}"
                )));
            }
        }
        Ok(Frame {
            width,
            height,
            planes,
            strides,
            id: 0,
            capture_us: 0,
        })
    }

    /// Sets the frame id and capture time.
    pub fn with_meta(mut self, id: u32, capture_us: u64) -> Frame {
        self.id = id;
        self.capture_us = capture_us;
        self
    }

    /// Luma width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Luma height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Width and height of `plane` in samples.
    pub fn plane_size(&self, plane: PlaneIndex) -> (usize, usize) {
        match plane {
            PlaneIndex::Y => (self.width as usize, self.height as usize),
            PlaneIndex::U | PlaneIndex::V => {
                let (w, h) = chroma_size(self.width, self.height);
                (w as usize, h as usize)
            }
        }
    }

    /// Distance in bytes between the starts of two rows of `plane`.
    pub fn stride(&self, plane: PlaneIndex) -> usize {
        self.strides[plane as usize]
    }

    /// The whole buffer of `plane`, padding included.
    pub fn plane(&self, plane: PlaneIndex) -> &[u8] {
        self.planes[plane as usize].as_slice()
    }

    /// The whole buffer of `plane`, padding included, for writing (a shared plane is copied
    /// first).
    pub fn plane_mut(&mut self, plane: PlaneIndex) -> &mut [u8] {
        self.planes[plane as usize].make_mut()
    }

    /// Whether `plane` is shared with its producer rather than owned.
    pub fn is_shared(&self, plane: PlaneIndex) -> bool {
        matches!(self.planes[plane as usize], PlaneData::Shared(_))
    }

    /// Row `y` of `plane`, without padding.
    pub fn row(&self, plane: PlaneIndex, y: usize) -> &[u8] {
        let (w, _) = self.plane_size(plane);
        let s = self.strides[plane as usize];
        &self.planes[plane as usize].as_slice()[y * s..y * s + w]
    }

    /// Row `y` of `plane`, without padding, for writing.
    pub fn row_mut(&mut self, plane: PlaneIndex, y: usize) -> &mut [u8] {
        let (w, _) = self.plane_size(plane);
        let s = self.strides[plane as usize];
        &mut self.planes[plane as usize].make_mut()[y * s..y * s + w]
    }

    /// Appends `plane`'s rows to `out` without padding (`width` bytes apart): what a packed
    /// I420 buffer, a Y4M frame or an app's copy of one plane holds.
    pub fn append_packed(&self, plane: PlaneIndex, out: &mut Vec<u8>) {
        let (w, h) = self.plane_size(plane);
        if self.stride(plane) == w {
            out.extend_from_slice(&self.plane(plane)[..w * h]);
        } else {
            for y in 0..h {
                out.extend_from_slice(self.row(plane, y));
            }
        }
    }

    /// Whether every stride equals its plane's width (planes are contiguous).
    pub fn is_tight(&self) -> bool {
        [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
            .into_iter()
            .all(|p| self.stride(p) == self.plane_size(p).0)
    }

    /// A copy with tight strides (no row padding).
    pub fn to_tight(&self) -> Frame {
        if self.is_tight() {
            return self.clone();
        }
        let mut out = Frame::black(self.width, self.height).with_meta(self.id, self.capture_us);
        for p in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V] {
            for y in 0..self.plane_size(p).1 {
                out.row_mut(p, y).copy_from_slice(self.row(p, y));
            }
        }
        out
    }

    /// Bytes of picture data without padding (`width × height × 3 / 2` for even sizes).
    pub fn picture_bytes(&self) -> usize {
        let (w, h) = self.plane_size(PlaneIndex::Y);
        let (cw, ch) = self.plane_size(PlaneIndex::U);
        w * h + 2 * cw * ch
    }

    /// Whether two frames hold the same picture, whatever their strides and metadata.
    pub fn same_picture(&self, other: &Frame) -> bool {
        self.width == other.width
            && self.height == other.height
            && [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
                .into_iter()
                .all(|p| (0..self.plane_size(p).1).all(|y| self.row(p, y) == other.row(p, y)))
    }

    /// An I420 frame from bi-planar NV12 (a luma plane, then a plane of interleaved Cb, Cr
    /// pairs at half resolution, as cameras and `CVPixelBuffer`s give it): luma rows
    /// copied, chroma split into its two planes. Rows are `luma_stride` and
    /// `chroma_stride` bytes apart; each plane's last row may end at its width.
    pub fn from_nv12(
        width: u32,
        height: u32,
        luma: &[u8],
        luma_stride: usize,
        chroma: &[u8],
        chroma_stride: usize,
    ) -> Result<Frame, CodecError> {
        let (cw, ch) = chroma_size(width, height);
        let (w, h, cw, ch) = (width as usize, height as usize, cw as usize, ch as usize);
        let needs = |stride: usize, row: usize, rows: usize| stride * (rows - 1) + row;
        if width == 0
            || height == 0
            || luma_stride < w
            || chroma_stride < 2 * cw
            || luma.len() < needs(luma_stride, w, h)
            || chroma.len() < needs(chroma_stride, 2 * cw, ch)
        {
            return Err(CodecError::InvalidFrame(format!(
                "NV12 {width}×{height}: luma {} bytes with stride {luma_stride}, chroma {} \
                 bytes with stride {chroma_stride}",
                luma.len(),
                chroma.len()
            )));
        }
        let mut y = Vec::with_capacity(w * h);
        for row in luma.chunks(luma_stride).take(h) {
            y.extend_from_slice(&row[..w]);
        }
        let (mut u, mut v) = (vec![0; cw * ch], vec![0; cw * ch]);
        // A plain shuffle, one output row of each plane at a time: the compiler vectorises it.
        let rows = chroma.chunks(chroma_stride).take(ch);
        for ((row, u_row), v_row) in rows.zip(u.chunks_exact_mut(cw)).zip(v.chunks_exact_mut(cw)) {
            for ((pair, u), v) in row[..2 * cw].chunks_exact(2).zip(u_row).zip(v_row) {
                (*u, *v) = (pair[0], pair[1]);
            }
        }
        Frame::from_planes(width, height, [y, u, v], [w, cw, cw])
    }

    /// Converts packed 8-bit RGB (`width × height × 3` bytes, rows tight) to I420, BT.601
    /// limited range; each chroma sample averages its 2×2 block.
    pub fn from_rgb(width: u32, height: u32, rgb: &[u8]) -> Result<Frame, CodecError> {
        let (w, h) = (width as usize, height as usize);
        if width == 0 || height == 0 || rgb.len() != w * h * 3 {
            return Err(CodecError::InvalidFrame(format!(
                "RGB buffer of {} bytes for {width}×{height} (needs {})",
                rgb.len(),
                w * h * 3
            )));
        }
        let mut f = Frame::black(width, height);
        let px = |x: usize, y: usize| {
            let i = (y * w + x) * 3;
            (
                i32::from(rgb[i]),
                i32::from(rgb[i + 1]),
                i32::from(rgb[i + 2]),
            )
        };
        for y in 0..h {
            let row = f.row_mut(PlaneIndex::Y, y);
            for (x, out) in row.iter_mut().enumerate() {
                let (r, g, b) = px(x, y);
                *out = clamp_u8(((66 * r + 129 * g + 25 * b + 128) >> 8) + 16);
            }
        }
        let (cw, ch) = f.plane_size(PlaneIndex::U);
        for cy in 0..ch {
            for cx in 0..cw {
                let (mut r, mut g, mut b, mut n) = (0, 0, 0, 0);
                for (x, y) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let (x, y) = (cx * 2 + x, cy * 2 + y);
                    if x < w && y < h {
                        let (pr, pg, pb) = px(x, y);
                        (r, g, b, n) = (r + pr, g + pg, b + pb, n + 1);
                    }
                }
                let (r, g, b) = ((r + n / 2) / n, (g + n / 2) / n, (b + n / 2) / n);
                f.row_mut(PlaneIndex::U, cy)[cx] =
                    clamp_u8(((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128);
                f.row_mut(PlaneIndex::V, cy)[cx] =
                    clamp_u8(((112 * r - 94 * g - 18 * b + 128) >> 8) + 128);
            }
        }
        Ok(f)
    }

    /// Converts to packed 8-bit RGB (`width × height × 3` bytes), BT.601 limited range,
    /// nearest-neighbour chroma.
    pub fn to_rgb(&self) -> Vec<u8> {
        let (w, h) = self.plane_size(PlaneIndex::Y);
        let mut out = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            let (ly, u, v) = (
                self.row(PlaneIndex::Y, y),
                self.row(PlaneIndex::U, y / 2),
                self.row(PlaneIndex::V, y / 2),
            );
            for x in 0..w {
                let c = 298 * (i32::from(ly[x]) - 16);
                let d = i32::from(u[x / 2]) - 128;
                let e = i32::from(v[x / 2]) - 128;
                out.push(clamp_u8((c + 409 * e + 128) >> 8));
                out.push(clamp_u8((c - 100 * d - 208 * e + 128) >> 8));
                out.push(clamp_u8((c + 516 * d + 128) >> 8));
            }
        }
        out
    }

    /// Converts to packed 32-bit `0RGB` words, the layout most window toolkits blit.
    pub fn to_xrgb(&self) -> Vec<u32> {
        self.to_rgb()
            .chunks_exact(3)
            .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2]))
            .collect()
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// Peak signal-to-noise ratio in dB over all three planes (sample-weighted), 8-bit peak.
/// Identical pictures give `f64::INFINITY`.
pub fn psnr(a: &Frame, b: &Frame) -> Result<f64, CodecError> {
    if a.width() != b.width() || a.height() != b.height() {
        return Err(CodecError::InvalidFrame(format!(
            "PSNR of {}×{} against {}×{}",
            a.width(),
            a.height(),
            b.width(),
            b.height()
        )));
    }
    let (mut sse, mut n) = (0u64, 0u64);
    for p in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V] {
        for y in 0..a.plane_size(p).1 {
            for (x, z) in a.row(p, y).iter().zip(b.row(p, y)) {
                let d = u64::from(x.abs_diff(*z));
                sse += d * d;
            }
            n += a.plane_size(p).0 as u64;
        }
    }
    if sse == 0 {
        return Ok(f64::INFINITY);
    }
    let mse = sse as f64 / n as f64;
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_planes_drop_the_padding() {
        let tight = Frame::filled(6, 4, [10, 20, 30]);
        let padded = Frame::from_planes(
            6,
            4,
            [vec![10; 9 * 3 + 6], vec![20; 5 + 3], vec![30; 5 + 3]],
            [9, 5, 5],
        )
        .expect("valid planes");
        for p in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V] {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            tight.append_packed(p, &mut a);
            padded.append_packed(p, &mut b);
            let (w, h) = tight.plane_size(p);
            assert_eq!(a.len(), w * h);
            assert_eq!(a, b);
        }
    }

    fn rgb1(r: u8, g: u8, b: u8) -> Frame {
        Frame::from_rgb(2, 2, &[r, g, b].repeat(4)).expect("valid RGB")
    }

    fn yuv(f: &Frame) -> [u8; 3] {
        [
            f.plane(PlaneIndex::Y)[0],
            f.plane(PlaneIndex::U)[0],
            f.plane(PlaneIndex::V)[0],
        ]
    }

    #[test]
    fn rgb_to_yuv_matches_bt601_limited_reference_values() {
        // ITU-R BT.601 limited range, exact values rounded: white 235/128/128,
        // black 16/128/128, red 81/90/240, green 145/54/34, blue 41/240/110. The 8-bit integer
        // coefficients may land one level away.
        let cases = [
            ([255, 255, 255], [235, 128, 128]),
            ([0, 0, 0], [16, 128, 128]),
            ([255, 0, 0], [81, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
        ];
        for (rgb, want) in cases {
            let got = yuv(&rgb1(rgb[0], rgb[1], rgb[2]));
            for (g, w) in got.iter().zip(want) {
                assert!(g.abs_diff(w) <= 1, "{rgb:?} -> {got:?}, reference {want:?}");
            }
        }
    }

    #[test]
    fn nv12_is_split_into_i420_by_stride_with_short_last_rows() {
        // 3×3: chroma is 2×2. Strides 4 (luma) and 6 (chroma); each last row stops at its
        // width, as an app's buffer may.
        let luma = [1, 2, 3, 0, 4, 5, 6, 0, 7, 8, 9];
        let chroma = [10, 20, 11, 21, 0, 0, 12, 22, 13, 23];
        let f = Frame::from_nv12(3, 3, &luma, 4, &chroma, 6).expect("valid");
        assert_eq!(f.plane(PlaneIndex::Y), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(f.plane(PlaneIndex::U), [10, 11, 12, 13]);
        assert_eq!(f.plane(PlaneIndex::V), [20, 21, 22, 23]);
        let e = Frame::from_nv12(3, 3, &luma[..10], 4, &chroma, 6).expect_err("short luma");
        assert!(e.to_string().contains("NV12 3×3"), "{e}");
        assert!(
            Frame::from_nv12(3, 3, &luma, 2, &chroma, 6).is_err(),
            "narrow stride"
        );
    }

    #[test]
    fn yuv_to_rgb_round_trips_primaries_within_two_levels() {
        for c in [
            [255, 255, 255],
            [0, 0, 0],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [128, 64, 200],
        ] {
            let back = rgb1(c[0], c[1], c[2]).to_rgb();
            for (a, b) in back[..3].iter().zip(c) {
                assert!(a.abs_diff(b) <= 2, "{c:?} came back as {:?}", &back[..3]);
            }
        }
    }

    #[test]
    fn odd_sizes_have_rounded_up_chroma() {
        let f = Frame::black(5, 3);
        assert_eq!(f.plane_size(PlaneIndex::U), (3, 2));
        assert_eq!(f.picture_bytes(), 15 + 2 * 6);
        let rgb = vec![200u8; 5 * 3 * 3];
        let f = Frame::from_rgb(5, 3, &rgb).expect("valid");
        assert_eq!(f.to_rgb().len(), rgb.len());
    }

    #[test]
    fn padded_strides_are_respected_and_removed_by_to_tight() {
        let (w, h) = (4u32, 2u32);
        let y = vec![1, 2, 3, 4, 99, 99, 5, 6, 7, 8, 99, 99];
        let u = vec![10, 11, 99];
        let v = vec![20, 21, 99];
        let f = Frame::from_planes(w, h, [y, u, v], [6, 3, 3]).expect("valid");
        assert!(!f.is_tight());
        assert_eq!(f.row(PlaneIndex::Y, 1), &[5, 6, 7, 8]);
        let t = f.to_tight();
        assert!(t.is_tight());
        assert_eq!(t.plane(PlaneIndex::Y), &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(t.same_picture(&f));
    }

    #[test]
    fn from_planes_rejects_short_buffers_and_narrow_strides() {
        let err = Frame::from_planes(4, 2, [vec![0; 7], vec![0; 2], vec![0; 2]], [4, 2, 2]);
        assert!(matches!(err, Err(CodecError::InvalidFrame(m)) if m.contains("plane 0")));
        let err = Frame::from_planes(4, 2, [vec![0; 8], vec![0; 2], vec![0; 2]], [4, 1, 2]);
        assert!(matches!(err, Err(CodecError::InvalidFrame(m)) if m.contains("stride 1")));
    }

    #[test]
    fn psnr_of_known_error() {
        let a = Frame::filled(4, 4, [100, 128, 128]);
        let b = Frame::filled(4, 4, [110, 128, 128]);
        // MSE = 100 over 16 of 24 samples -> 66.67; PSNR = 10 log10(65025 / 66.67).
        let p = psnr(&a, &b).expect("same size");
        assert!((p - 29.891).abs() < 0.01, "{p}");
        assert_eq!(psnr(&a, &a).expect("same size"), f64::INFINITY);
    }
}
