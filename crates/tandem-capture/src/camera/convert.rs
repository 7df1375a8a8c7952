//! What a camera's buffer holds ([`PixelFormat`]) and its conversion to the 8-bit I420
//! [`Frame`] the encoders take ([`Converter`]), in the colours the rest of Tandem assumes:
//! BT.601 matrix, limited range (Y 16–235, U/V 16–240). Tandem's encoders signal no colour
//! description, so decoders show the pictures as limited-range BT.601 (the assumption
//! [`tandem_codec::Frame`]'s own RGB helpers make too).
//!
//! - YUYV (packed 4:2:2) and NV12 (semi-planar 4:2:0) are limited-range BT.601 as webcams
//!   (UVC) give them, so they are only rearranged: YUYV with the `yuv` crate's SIMD kernel
//!   (chroma of each even row, as libyuv's YUY2ToI420 does), NV12 by copying the luma rows and
//!   splitting the interleaved chroma plane.
//! - MJPEG frames are JFIF: full-range BT.601. They are decoded with `zune-jpeg` to RGB and
//!   converted to limited-range I420 with the `yuv` crate's SIMD kernel. Full-range samples
//!   passed through as they are would be shown as limited range: everything below 16 and above
//!   235 clipped, shadows and highlights crushed, colours too strong; the range has to be
//!   reduced somewhere, and `zune-jpeg` (which can only give interleaved, chroma-upsampled
//!   samples, never planar 4:2:0) and `yuv` (which has no planar range reduction) leave RGB
//!   as the one path made only of SIMD kernels.
//!
//! Many webcams' MJPEG frames carry no Huffman tables (no DHT segment): by the AVI1 / "MJPG"
//! convention they are coded with the standard tables of JPEG Annex K.3 (the OpenDML AVI
//! spec gives them). `zune-jpeg` 0.5 falls back to those tables only when the frame has an
//! `AVI1` APP0 segment (zune-jpeg's decoder.rs and misc.rs, `is_mjpeg` and
//! `fill_default_mjpeg_tables`); a frame with neither tables nor that segment fails with
//! "No DC table for component Y". So such a frame gets an `AVI1` APP0 segment inserted after
//! its start marker before decoding (one copy of the frame, a few hundred kilobytes at most).

use tandem_codec::{CodecError, Frame};

use crate::planes::I420Planes;
use yuv::{YuvConversionMode, YuvPackedImage, YuvRange, YuvStandardMatrix};
use zune_jpeg::JpegDecoder;
use zune_jpeg::zune_core::bytestream::ZCursor;
use zune_jpeg::zune_core::colorspace::ColorSpace;
use zune_jpeg::zune_core::options::DecoderOptions;

/// The pixel formats Tandem reads from a camera, in the order it prefers them when each
/// reaches the frame rate asked for: raw ones first (no decoding, so less delay and CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PixelFormat {
    /// Semi-planar 4:2:0 (`NV12`): a luma plane, then one plane of interleaved Cb/Cr.
    Nv12,
    /// Packed 4:2:2 (`YUYV`, also called YUY2): Y0 Cb Y1 Cr for each pair of pixels.
    Yuyv,
    /// Motion JPEG (`MJPG`, or `JPEG`): every frame a JPEG picture.
    Mjpeg,
}

impl PixelFormat {
    /// The V4L2 four-character code Tandem asks the device for.
    pub fn fourcc(self) -> [u8; 4] {
        match self {
            PixelFormat::Nv12 => *b"NV12",
            PixelFormat::Yuyv => *b"YUYV",
            PixelFormat::Mjpeg => *b"MJPG",
        }
    }

    /// The format of a V4L2 four-character code, if Tandem reads it. `JPEG` is MJPEG under
    /// another name (some drivers offer it for the same stream).
    pub fn from_fourcc(code: [u8; 4]) -> Option<PixelFormat> {
        match &code {
            b"NV12" => Some(PixelFormat::Nv12),
            b"YUYV" => Some(PixelFormat::Yuyv),
            b"MJPG" | b"JPEG" => Some(PixelFormat::Mjpeg),
            _ => None,
        }
    }

    /// Whether the device's buffers hold samples rather than a compressed picture.
    pub fn is_raw(self) -> bool {
        !matches!(self, PixelFormat::Mjpeg)
    }
}

impl std::fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PixelFormat::Nv12 => "NV12",
            PixelFormat::Yuyv => "YUYV",
            PixelFormat::Mjpeg => "MJPEG",
        })
    }
}

/// Converts a camera's buffers of one format and size to I420 frames, keeping its scratch
/// memory (the decoded RGB of an MJPEG frame) from one frame to the next.
#[derive(Debug)]
pub struct Converter {
    format: PixelFormat,
    width: u32,
    height: u32,
    /// Bytes from one row's start to the next in the device's buffer (V4L2 `bytesperline`);
    /// for NV12 the same for both planes. Unused for MJPEG.
    stride: usize,
    rgb: Vec<u8>,
    /// An MJPEG frame with the `AVI1` segment inserted (see the module docs).
    patched: Vec<u8>,
}

impl Converter {
    /// A converter for `format` buffers of `width × height` with rows `stride` bytes apart
    /// (`0` for tight rows).
    pub fn new(
        format: PixelFormat,
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Converter, CodecError> {
        if width == 0 || height == 0 {
            return Err(CodecError::InvalidFrame(format!("size {width}×{height}")));
        }
        let tight = match format {
            PixelFormat::Yuyv => 2 * width as usize,
            PixelFormat::Nv12 => width as usize,
            PixelFormat::Mjpeg => 0,
        };
        if format.is_raw() && (!width.is_multiple_of(2) || !height.is_multiple_of(2)) {
            // Both lay out chroma for pixel pairs (and NV12 for row pairs); V4L2 drivers give
            // them only at even sizes.
            return Err(CodecError::InvalidFrame(format!(
                "{format} at the odd size {width}×{height}"
            )));
        }
        if format.is_raw() && stride != 0 && stride < tight {
            return Err(CodecError::InvalidFrame(format!(
                "{format} {width}×{height}: row stride {stride} is narrower than a row ({tight} bytes)"
            )));
        }
        Ok(Converter {
            format,
            width,
            height,
            stride: if stride == 0 { tight } else { stride },
            rgb: Vec::new(),
            patched: Vec::new(),
        })
    }

    /// The bytes a raw buffer must hold at least (`0` for MJPEG).
    pub fn min_bytes(&self) -> usize {
        let h = self.height as usize;
        match self.format {
            PixelFormat::Yuyv => self.stride * h,
            PixelFormat::Nv12 => self.stride * (h + h / 2),
            PixelFormat::Mjpeg => 0,
        }
    }

    /// Converts one buffer (its used bytes only) to an I420 frame with tight strides.
    ///
    /// Fails with [`CodecError::InvalidFrame`] for a buffer too short for the size, and with
    /// [`CodecError::Decode`] for an MJPEG frame that does not decode or decodes to another
    /// size: a camera's occasional damaged frame, which the caller drops.
    pub fn convert(&mut self, data: &[u8]) -> Result<Frame, CodecError> {
        let need = self.min_bytes();
        if data.len() < need {
            return Err(CodecError::InvalidFrame(format!(
                "{} {}×{} buffer of {} bytes, needs {need}",
                self.format,
                self.width,
                self.height,
                data.len()
            )));
        }
        match self.format {
            PixelFormat::Yuyv => self.yuyv(&data[..need]),
            PixelFormat::Nv12 => self.nv12(data),
            PixelFormat::Mjpeg => self.mjpeg(data),
        }
    }

    fn yuyv(&self, data: &[u8]) -> Result<Frame, CodecError> {
        let mut planes = I420Planes::new(self.width, self.height);
        let packed = YuvPackedImage {
            yuy: data,
            yuy_stride: self.stride as u32,
            width: self.width,
            height: self.height,
        };
        yuv::yuyv422_to_yuv420(&mut planes.image(), &packed)
            .map_err(|e| CodecError::InvalidFrame(format!("YUYV to I420: {e}")))?;
        planes.into_frame()
    }

    fn nv12(&self, data: &[u8]) -> Result<Frame, CodecError> {
        let luma_bytes = self.stride * self.height as usize;
        Frame::from_nv12(
            self.width,
            self.height,
            &data[..luma_bytes],
            self.stride,
            &data[luma_bytes..],
            self.stride,
        )
    }

    fn mjpeg(&mut self, data: &[u8]) -> Result<Frame, CodecError> {
        let data = if lacks_huffman_tables(data) {
            self.patched.clear();
            self.patched.extend_from_slice(&data[..2]);
            self.patched.extend_from_slice(&AVI1_APP0);
            self.patched.extend_from_slice(&data[2..]);
            &self.patched
        } else {
            data
        };
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::RGB);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(data), options);
        decoder
            .decode_headers()
            .map_err(|e| CodecError::Decode(format!("MJPEG frame: {e}")))?;
        let (w, h) = decoder
            .dimensions()
            .ok_or_else(|| CodecError::Decode("MJPEG frame without a size".into()))?;
        if (w as u32, h as u32) != (self.width, self.height) {
            return Err(CodecError::Decode(format!(
                "MJPEG frame is {w}×{h}, the camera granted {}×{}",
                self.width, self.height
            )));
        }
        let size = decoder
            .output_buffer_size()
            .ok_or_else(|| CodecError::Decode("MJPEG frame without a size".into()))?;
        self.rgb.resize(size, 0);
        decoder
            .decode_into(&mut self.rgb)
            .map_err(|e| CodecError::Decode(format!("MJPEG frame: {e}")))?;
        if decoder.output_colorspace() != Some(ColorSpace::RGB) || size != w * h * 3 {
            return Err(CodecError::Decode(format!(
                "MJPEG frame decoded to {:?}, not RGB",
                decoder.output_colorspace()
            )));
        }
        let mut planes = I420Planes::new(self.width, self.height);
        // JFIF's YCbCr is full-range BT.601; zune-jpeg undoes it, this redoes it limited.
        yuv::rgb_to_yuv420(
            &mut planes.image(),
            &self.rgb,
            self.width * 3,
            YuvRange::Limited,
            YuvStandardMatrix::Bt601,
            YuvConversionMode::Balanced,
        )
        .map_err(|e| CodecError::InvalidFrame(format!("RGB to I420: {e}")))?;
        planes.into_frame()
    }
}

/// An APP0 segment (`FF E0`, length 7) holding `AVI1\0`: the mark of an MJPEG frame coded
/// with the standard Huffman tables.
const AVI1_APP0: [u8; 9] = [0xFF, 0xE0, 0x00, 0x07, b'A', b'V', b'I', b'1', 0];

/// Whether a JPEG's header (the segments before its first scan) has neither Huffman tables
/// nor an `AVI1` APP0 segment, so `zune-jpeg` would not decode it. A header that does not
/// parse says `false`: the decoder reports what is wrong with it.
pub fn lacks_huffman_tables(jpeg: &[u8]) -> bool {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return false;
    }
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return false;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            // A fill byte before the marker.
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        match marker {
            0xC4 => return false,
            0xDA => return true,
            0xE0 if jpeg[i + 4..].starts_with(b"AVI1") => return false,
            _ => {}
        }
        i += 2 + len;
    }
    false
}
