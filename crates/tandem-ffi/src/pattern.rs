//! The engine's test pattern as pictures for an app's own encoder: the way to measure a
//! VideoToolbox (or any foreign) encoder's stream end to end, as `VideoSource::TestPattern`
//! measures the engine's own.

use std::sync::{Arc, Mutex};

use tandem_codec::PlaneIndex;

use crate::error::TandemError;
use crate::live::{Kind, Live};

/// The engine's moving test pattern, picture by picture, for an app that encodes itself and
/// sends with [`crate::Sender::send_encoded`]. Each picture carries a pixel code with its
/// number and capture time, which a receiver in decoded output reads back
/// ([`crate::DecodedFrame::pixel_code_frame_id`], [`crate::DecodedFrame::g2g_ms`],
/// `Stats.g2g_ms`): every frame shown proves it arrived whole and in order, and its delay
/// from capture to screen is measured. (`VideoSource::TestPattern` does the same for the
/// engine's own encoder.)
#[derive(Debug, uniffi::Object)]
pub struct TestPattern {
    inner: Mutex<tandem_codec::TestPattern>,
    _live: Live,
}

#[uniffi::export]
impl TestPattern {
    /// A `width` × `height` pattern (at least 144 × 64, room for the pixel code).
    #[uniffi::constructor]
    pub fn new(width: u32, height: u32) -> Result<Arc<TestPattern>, TandemError> {
        // The frame rate only sets the pattern's own timeline, which `i420` never uses: it
        // is always given the capture time.
        let inner = tandem_codec::TestPattern::new(width, height, 60, 1)
            .map_err(|e| TandemError::invalid(e.to_string()))?;
        Ok(Arc::new(TestPattern {
            inner: Mutex::new(inner),
            _live: Live::new(Kind::TestPattern),
        }))
    }

    /// Luma width, pixels.
    pub fn width(&self) -> u32 {
        self.pattern().width()
    }

    /// Luma height, pixels.
    pub fn height(&self) -> u32 {
        self.pattern().height()
    }

    /// Picture `number` (the same number, the same picture; the pattern moves from one
    /// number to the next), its pixel code carrying `number` and `capture_us`, as tightly
    /// packed I420: the luma plane (`width` bytes a row), then Cb, then Cr (half width and
    /// height, rounded up). For glass-to-glass latency, `capture_us` is the capture time in
    /// microseconds since the Unix epoch (the clock the receiver reads the code against;
    /// Swift `UInt64(Date().timeIntervalSince1970 * 1e6)`); its low 48 bits are stamped.
    pub fn i420(&self, number: u32, capture_us: u64) -> Vec<u8> {
        let frame = {
            let mut p = self.pattern();
            p.seek(number);
            p.next_frame_at(capture_us)
        };
        let mut out = Vec::with_capacity(frame.picture_bytes());
        for plane in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V] {
            frame.append_packed(plane, &mut out);
        }
        out
    }
}

impl TestPattern {
    fn pattern(&self) -> std::sync::MutexGuard<'_, tandem_codec::TestPattern> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_carry_their_number_and_capture_time() {
        let p = TestPattern::new(320, 180).expect("pattern");
        let (w, h) = (320usize, 180usize);
        let bytes = p.i420(7, 1_234_567);
        assert_eq!(bytes.len(), w * h + 2 * (w / 2) * (h / 2));
        let frame = tandem_codec::Frame::from_planes(
            320,
            180,
            [
                bytes[..w * h].to_vec(),
                bytes[w * h..w * h + w * h / 4].to_vec(),
                bytes[w * h + w * h / 4..].to_vec(),
            ],
            [w, w / 2, w / 2],
        )
        .expect("frame");
        let code = tandem_codec::pixelcode::read(&frame).expect("a code");
        assert_eq!((code.frame_id, code.capture_us), (7, 1_234_567));
        // The same number, the same picture; the next one moves.
        assert_eq!(p.i420(7, 1_234_567), bytes);
        assert_ne!(p.i420(8, 1_234_567)[w * h / 2..], bytes[w * h / 2..]);
        assert!(TestPattern::new(100, 50).is_err());
    }
}
