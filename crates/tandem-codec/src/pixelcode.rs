//! Pixel code: a 96-bit stamp (frame id, capture time, CRC) drawn into the luma of a frame so
//! that a receiver can tell which source frame a decoded picture is, and when it was captured,
//! from the pixels alone.
//!
//! The code uses large binary cells at the two extremes of the limited luma range, so it
//! survives lossy AV1 at moderate bitrates: the encoder has to smear a cell by more than a
//! hundred levels before the reader, which averages the middle of each cell, gets a bit wrong,
//! and a CRC turns the few frames where that does happen into `None` instead of a wrong value.
//!
//! # Layout
//!
//! Let `W × H` be the luma size of the frame.
//!
//! * **Cell size** `c = max(8, floor(H / 30) rounded down to even)` luma pixels (12 at 360p,
//!   24 at 720p, 36 at 1080p, 72 at 2160p). It is even so the code covers whole chroma
//!   samples.
//! * **Region**: the top-left `18c × 8c` luma pixels, `x ∈ [0, 18c)`, `y ∈ [0, 8c)` (see
//!   [`area`]). The frame must hold it: `W ≥ 18c` and `H ≥ 8c` (see [`fits`]; the smallest
//!   frame of all is [`min_size`], `144 × 64`).
//! * **Quiet border**: the outermost one-cell-wide ring of the region is luma
//!   [`QUIET_LUMA`] (126, mid-grey), so content next to the code cannot bleed into the data
//!   cells through the encoder's transforms and filters.
//! * **Data cells**: 16 columns × 6 rows inside the border. Cell `(col, row)`, `col ∈ 0..16`,
//!   `row ∈ 0..6`, covers `x ∈ [(1 + col)c, (2 + col)c)`, `y ∈ [(1 + row)c, (2 + row)c)`.
//!   A 1 bit is luma [`ONE_LUMA`] (235), a 0 bit is luma [`ZERO_LUMA`] (16).
//! * **Chroma**: U and V are 128 over the whole region, chroma samples
//!   `x ∈ [0, 9c)`, `y ∈ [0, 4c)`, so the code is grey and colour bleed cannot shift luma.
//! * **Bit order**: cell `k = row × 16 + col` carries bit `7 − (k mod 8)` of payload byte
//!   `k / 8` (most significant bit first, row-major).
//! * **Payload** (12 bytes):
//!   * bytes 0–3: frame id, `u32` big-endian;
//!   * bytes 4–9: capture time in µs, the low 48 bits of the `u64`, big-endian (48 bits of
//!     µs wrap after 8.9 years, which no session comes near; higher bits are dropped, so a
//!     read gives back `capture_us & 0xFFFF_FFFF_FFFF`);
//!   * bytes 10–11: CRC-16/CCITT-FALSE (polynomial `0x1021`, initial value `0xFFFF`, no
//!     reflection, no final XOR; check value `0x29B1` for `"123456789"`) over bytes 0–9,
//!     big-endian.
//!
//! # Reading
//!
//! For each data cell the reader averages the luma of the inner half of the cell, the square
//! `[c/4, c − c/4)` on both axes relative to the cell's corner (integer division), because the
//! cell edges are where compression ringing and deblocking are worst. The bit is 1 when that
//! mean exceeds the midpoint 125.5 of the two levels. The payload is accepted only if its CRC
//! matches and, when both kinds of bit are present, the mean of the cells read as 1 is at
//! least [`MIN_CONTRAST`] levels above the mean of the cells read as 0 (a real code is about
//! 219 apart even after compression; ordinary picture content rarely is, which cuts down the
//! one-in-65536 chance of random content passing the CRC).

use crate::frame::{Frame, PlaneIndex};

/// Data columns in the grid.
pub const COLUMNS: u32 = 16;
/// Data rows in the grid.
pub const ROWS: u32 = 6;
/// Payload size in bits (`COLUMNS × ROWS`).
pub const PAYLOAD_BITS: u32 = COLUMNS * ROWS;
/// Luma of a cell carrying a 1 bit (limited-range white).
pub const ONE_LUMA: u8 = 235;
/// Luma of a cell carrying a 0 bit (limited-range black).
pub const ZERO_LUMA: u8 = 16;
/// Luma of the quiet border around the data cells.
pub const QUIET_LUMA: u8 = 126;
/// Least difference, in luma levels, between the mean of the 1 cells and the mean of the 0
/// cells for a read to be accepted.
pub const MIN_CONTRAST: u32 = 64;
/// Mask of the capture-time bits the code carries.
pub const CAPTURE_MASK: u64 = (1 << 48) - 1;

const PAYLOAD_BYTES: usize = (PAYLOAD_BITS / 8) as usize;
const MIN_CELL: u32 = 8;

/// What a pixel code carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelCode {
    /// The source's frame sequence number.
    pub frame_id: u32,
    /// Capture time in µs of the source's clock; only the low 48 bits are stamped.
    pub capture_us: u64,
}

/// Side of one cell in luma pixels for a frame `height` pixels tall.
pub fn cell_size(height: u32) -> u32 {
    ((height / 30) & !1).max(MIN_CELL)
}

/// Width and height in luma pixels of the code region, border included, for a
/// `width × height` frame. The region is anchored at the top-left corner; a pattern generator
/// can leave it out or draw under it, since [`stamp`] overwrites all of it. Whether the frame
/// is wide enough is [`fits`]'s question.
pub fn area(width: u32, height: u32) -> (u32, u32) {
    // Cells scale with the height alone; the width is part of the signature so callers need
    // not know that.
    let _ = width;
    let c = cell_size(height);
    ((COLUMNS + 2) * c, (ROWS + 2) * c)
}

/// Whether a `width × height` frame can hold the code.
pub fn fits(width: u32, height: u32) -> bool {
    let (w, h) = area(width, height);
    width >= w && height >= h
}

/// The smallest frame that can hold the code at all. Taller frames use larger cells and need
/// proportionally more width; [`fits`] gives the exact rule for a given size.
pub fn min_size() -> (u32, u32) {
    ((COLUMNS + 2) * MIN_CELL, (ROWS + 2) * MIN_CELL)
}

/// Draws `code` into the top-left corner of `frame`, overwriting the whole code region in all
/// three planes. Does nothing if the frame is too small (see [`fits`]); it does not set
/// `frame.id` or `frame.capture_us`.
pub fn stamp(frame: &mut Frame, code: PixelCode) {
    let (width, height) = (frame.width(), frame.height());
    if !fits(width, height) {
        return;
    }
    let c = cell_size(height) as usize;
    let (aw, ah) = area(width, height);
    let (aw, ah) = (aw as usize, ah as usize);
    let bytes = payload(code);
    let bit = |k: usize| bytes[k / 8] >> (7 - k % 8) & 1 == 1;

    for y in 0..ah {
        let row = &mut frame.row_mut(PlaneIndex::Y, y)[..aw];
        let grid_row = y / c;
        if grid_row == 0 || grid_row > ROWS as usize {
            row.fill(QUIET_LUMA);
            continue;
        }
        for (col, cell) in row.chunks_exact_mut(c).enumerate() {
            let level = if col == 0 || col > COLUMNS as usize {
                QUIET_LUMA
            } else if bit((grid_row - 1) * COLUMNS as usize + col - 1) {
                ONE_LUMA
            } else {
                ZERO_LUMA
            };
            cell.fill(level);
        }
    }
    for plane in [PlaneIndex::U, PlaneIndex::V] {
        for y in 0..ah / 2 {
            frame.row_mut(plane, y)[..aw / 2].fill(128);
        }
    }
}

/// Reads a code from the top-left corner of a (possibly decoded, lossy) picture.
///
/// Returns `None` when the frame is too small to hold a code (see [`fits`]), when the CRC does
/// not match (no code, or one damaged beyond what thresholding absorbs) or when the cells lack
/// the contrast of a real code. `capture_us` comes back truncated to 48 bits.
pub fn read(frame: &Frame) -> Option<PixelCode> {
    let (width, height) = (frame.width(), frame.height());
    if !fits(width, height) {
        return None;
    }
    let c = cell_size(height) as usize;
    let (lo, hi) = (c / 4, c - c / 4);
    let n = ((hi - lo) * (hi - lo)) as u32;
    let threshold = u32::from(ONE_LUMA) + u32::from(ZERO_LUMA);

    let mut bytes = [0u8; PAYLOAD_BYTES];
    let (mut ones, mut ones_sum, mut zeros_sum) = (0u32, 0u64, 0u64);
    for row in 0..ROWS as usize {
        let mut sums = [0u32; COLUMNS as usize];
        for y in (1 + row) * c + lo..(1 + row) * c + hi {
            let line = frame.row(PlaneIndex::Y, y);
            for (col, sum) in sums.iter_mut().enumerate() {
                let x0 = (1 + col) * c;
                *sum += line[x0 + lo..x0 + hi]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
        }
        for (col, &sum) in sums.iter().enumerate() {
            // Comparing 2·sum with (235 + 16)·n thresholds the mean at 125.5 without division.
            if 2 * sum > threshold * n {
                let k = row * COLUMNS as usize + col;
                bytes[k / 8] |= 1 << (7 - k % 8);
                ones += 1;
                ones_sum += u64::from(sum);
            } else {
                zeros_sum += u64::from(sum);
            }
        }
    }

    let crc = u16::from_be_bytes([bytes[10], bytes[11]]);
    if crc16_ccitt_false(&bytes[..10]) != crc {
        return None;
    }
    let zeros = PAYLOAD_BITS - ones;
    if ones > 0 && zeros > 0 {
        // Compare mean(ones) − mean(zeros) ≥ MIN_CONTRAST in integers, scaled by
        // ones · zeros · n.
        let lhs = ones_sum * u64::from(zeros);
        let rhs = zeros_sum * u64::from(ones)
            + u64::from(MIN_CONTRAST) * u64::from(ones) * u64::from(zeros) * u64::from(n);
        if lhs < rhs {
            return None;
        }
    }

    let frame_id = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let mut capture = [0u8; 8];
    capture[2..].copy_from_slice(&bytes[4..10]);
    Some(PixelCode {
        frame_id,
        capture_us: u64::from_be_bytes(capture),
    })
}

fn payload(code: PixelCode) -> [u8; PAYLOAD_BYTES] {
    let mut bytes = [0u8; PAYLOAD_BYTES];
    bytes[..4].copy_from_slice(&code.frame_id.to_be_bytes());
    bytes[4..10].copy_from_slice(&(code.capture_us & CAPTURE_MASK).to_be_bytes()[2..]);
    let crc = crc16_ccitt_false(&bytes[..10]);
    bytes[10..].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// CRC-16/CCITT-FALSE, bitwise: ten bytes per frame do not justify a table.
fn crc16_ccitt_false(data: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, so the noise in these tests is the same on every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
    }

    /// A frame with something other than flat black around the code, so bleed would show.
    fn textured(width: u32, height: u32) -> Frame {
        let mut f = Frame::black(width, height);
        for y in 0..height as usize {
            for (x, v) in f.row_mut(PlaneIndex::Y, y).iter_mut().enumerate() {
                *v = (16 + (x * 7 + y * 13) % 220) as u8;
            }
        }
        f
    }

    fn code(frame_id: u32, capture_us: u64) -> PixelCode {
        PixelCode {
            frame_id,
            capture_us,
        }
    }

    fn map_luma(f: &mut Frame, mut op: impl FnMut(usize, usize, u8) -> u8) {
        for y in 0..f.height() as usize {
            for (x, v) in f.row_mut(PlaneIndex::Y, y).iter_mut().enumerate() {
                *v = op(x, y, *v);
            }
        }
    }

    fn box_blur(f: &Frame) -> Frame {
        let (w, h) = (f.width() as usize, f.height() as usize);
        let mut out = f.clone();
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut n) = (0u32, 0u32);
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        sum += u32::from(f.row(PlaneIndex::Y, yy)[xx]);
                        n += 1;
                    }
                }
                out.row_mut(PlaneIndex::Y, y)[x] = ((sum + n / 2) / n) as u8;
            }
        }
        out
    }

    fn block_mean(f: &mut Frame, block: usize) {
        let (w, h) = (f.width() as usize, f.height() as usize);
        for by in (0..h).step_by(block) {
            for bx in (0..w).step_by(block) {
                let (ye, xe) = ((by + block).min(h), (bx + block).min(w));
                let mut sum = 0u32;
                for y in by..ye {
                    sum += f.row(PlaneIndex::Y, y)[bx..xe]
                        .iter()
                        .map(|&v| u32::from(v))
                        .sum::<u32>();
                }
                let n = ((ye - by) * (xe - bx)) as u32;
                let mean = ((sum + n / 2) / n) as u8;
                for y in by..ye {
                    f.row_mut(PlaneIndex::Y, y)[bx..xe].fill(mean);
                }
            }
        }
    }

    const SIZES: [(u32, u32); 6] = [
        (160, 90),
        (640, 360),
        (1280, 720),
        (1920, 1080),
        (3840, 2160),
        (641, 361),
    ];

    #[test]
    fn crc_matches_the_catalogue_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn cell_and_area_sizes_follow_the_documented_rule() {
        assert_eq!(cell_size(90), 8);
        assert_eq!(cell_size(360), 12);
        assert_eq!(cell_size(720), 24);
        assert_eq!(cell_size(1080), 36);
        assert_eq!(cell_size(2160), 72);
        assert_eq!(area(1280, 720), (18 * 24, 8 * 24));
        assert_eq!(min_size(), (144, 64));
        assert!(fits(144, 64));
        assert!(!fits(143, 64));
        assert!(!fits(144, 63));
        for (w, h) in SIZES {
            assert!(fits(w, h), "{w}×{h}");
        }
    }

    #[test]
    fn round_trips_many_values_including_edges() {
        let mut rng = Rng(1);
        let mut values = vec![
            (0, 0),
            (u32::MAX, CAPTURE_MASK),
            (0, CAPTURE_MASK),
            (u32::MAX, 0),
            (1, 1),
            (0x8000_0000, 1 << 47),
            (0x5555_5555, 0xAAAA_AAAA_AAAA),
            (0xAAAA_AAAA, 0x5555_5555_5555),
        ];
        values.extend((0..200).map(|_| (rng.next() as u32, rng.next() & CAPTURE_MASK)));
        for (w, h) in SIZES {
            let mut f = textured(w, h);
            for &(id, us) in &values {
                stamp(&mut f, code(id, us));
                assert_eq!(read(&f), Some(code(id, us)), "{w}×{h} id {id} us {us}");
            }
        }
    }

    #[test]
    fn capture_time_is_truncated_to_48_bits() {
        let mut f = Frame::black(640, 360);
        stamp(&mut f, code(7, u64::MAX));
        assert_eq!(read(&f), Some(code(7, CAPTURE_MASK)));
        stamp(&mut f, code(7, (5 << 48) | 42));
        assert_eq!(read(&f), Some(code(7, 42)));
    }

    #[test]
    fn stamp_covers_exactly_the_area_and_greys_chroma() {
        let mut f = Frame::filled(640, 360, [200, 60, 190]);
        stamp(&mut f, code(1, 2));
        let (aw, ah) = area(640, 360);
        let (aw, ah) = (aw as usize, ah as usize);
        for y in 0..360 {
            let row = f.row(PlaneIndex::Y, y);
            assert!(row[aw..].iter().all(|&v| v == 200));
            if y >= ah {
                assert!(row.iter().all(|&v| v == 200));
            } else if y < 12 {
                assert!(row[..aw].iter().all(|&v| v == QUIET_LUMA));
            }
        }
        for y in 0..ah / 2 {
            assert!(f.row(PlaneIndex::U, y)[..aw / 2].iter().all(|&v| v == 128));
            assert!(f.row(PlaneIndex::V, y)[..aw / 2].iter().all(|&v| v == 128));
            assert_eq!(f.row(PlaneIndex::U, y)[aw / 2], 60);
        }
        assert_eq!(f.row(PlaneIndex::V, ah / 2)[0], 190);
    }

    #[test]
    fn survives_strong_noise() {
        let mut rng = Rng(99);
        for (w, h) in SIZES {
            for i in 0..20u32 {
                let c = code(i.wrapping_mul(0x9E37_79B9), u64::from(i) * 16_666 + 123);
                let mut f = textured(w, h);
                stamp(&mut f, c);
                map_luma(&mut f, |_, _, v| {
                    let noise = (rng.next() % 81) as i32 - 40;
                    (i32::from(v) + noise).clamp(0, 255) as u8
                });
                assert_eq!(read(&f), Some(c), "{w}×{h} #{i}");
            }
        }
    }

    #[test]
    fn survives_box_blur() {
        for (w, h) in [(160, 90), (640, 360), (1280, 720), (641, 361)] {
            let c = code(0xDEAD_BEEF, 0x1234_5678_9ABC);
            let mut f = textured(w, h);
            stamp(&mut f, c);
            assert_eq!(read(&box_blur(&f)), Some(c), "{w}×{h}");
        }
    }

    #[test]
    fn survives_8x8_block_means() {
        for (w, h) in SIZES {
            for i in 0..10u32 {
                let c = code(i * 1_000_003, u64::from(i) << 40 | 0xABCDE);
                let mut f = textured(w, h);
                stamp(&mut f, c);
                block_mean(&mut f, 8);
                assert_eq!(read(&f), Some(c), "{w}×{h} #{i}");
            }
        }
    }

    #[test]
    fn survives_noise_blur_and_block_means_together() {
        let mut rng = Rng(5);
        let c = code(424_242, 3_600_000_000);
        let mut f = textured(1280, 720);
        stamp(&mut f, c);
        map_luma(&mut f, |_, _, v| {
            (i32::from(v) + (rng.next() % 61) as i32 - 30).clamp(0, 255) as u8
        });
        let mut f = box_blur(&f);
        block_mean(&mut f, 8);
        assert_eq!(read(&f), Some(c));
    }

    #[test]
    fn frames_without_a_code_read_none() {
        for (w, h) in SIZES {
            assert_eq!(read(&Frame::black(w, h)), None);
            assert_eq!(read(&Frame::filled(w, h, [235, 128, 128])), None);
            assert_eq!(read(&Frame::filled(w, h, [126, 128, 128])), None);
            assert_eq!(read(&textured(w, h)), None);
        }
        let mut rng = Rng(3);
        let mut f = Frame::black(640, 360);
        for _ in 0..50 {
            map_luma(&mut f, |_, _, _| (rng.next() % 256) as u8);
            assert_eq!(read(&f), None);
        }
    }

    #[test]
    fn too_small_frames_read_none_and_are_left_alone() {
        let mut f = Frame::filled(143, 64, [50, 60, 70]);
        let before = f.clone();
        stamp(&mut f, code(1, 1));
        assert_eq!(f, before);
        assert_eq!(read(&f), None);
        assert_eq!(read(&Frame::black(8, 8)), None);
    }

    #[test]
    fn any_single_flipped_cell_fails_the_crc() {
        let (w, h) = (640u32, 360u32);
        let c = cell_size(h) as usize;
        let original = code(0x0102_0304, 0x0506_0708_090A);
        let mut base = Frame::black(w, h);
        stamp(&mut base, original);
        for k in 0..PAYLOAD_BITS as usize {
            let mut f = base.clone();
            let (x0, y0) = ((1 + k % 16) * c, (1 + k / 16) * c);
            for y in y0..y0 + c {
                for v in &mut f.row_mut(PlaneIndex::Y, y)[x0..x0 + c] {
                    *v = if *v == ONE_LUMA { ZERO_LUMA } else { ONE_LUMA };
                }
            }
            assert_eq!(read(&f), None, "flipped cell {k}");
        }
    }

    #[test]
    fn low_contrast_code_is_rejected() {
        let c = code(77, 88);
        let mut f = Frame::black(640, 360);
        stamp(&mut f, c);
        // Squash 16/235 into 110/141: still on the right sides of the threshold, CRC intact,
        // but no longer looks like a code.
        map_luma(&mut f, |_, _, v| match v {
            ONE_LUMA => 141,
            ZERO_LUMA => 110,
            other => other,
        });
        assert_eq!(read(&f), None);
    }

    #[test]
    fn works_with_padded_strides() {
        for (w, h) in [(160u32, 90u32), (640, 360), (1281, 721)] {
            let (cw, ch) = crate::frame::chroma_size(w, h);
            let strides = [w as usize + 64, cw as usize + 32, cw as usize + 32];
            let planes = [
                vec![16u8; strides[0] * h as usize],
                vec![128u8; strides[1] * ch as usize],
                vec![128u8; strides[2] * ch as usize],
            ];
            let mut f = Frame::from_planes(w, h, planes, strides).expect("valid planes");
            assert!(!f.is_tight());
            let c = code(123_456, 987_654_321);
            stamp(&mut f, c);
            assert_eq!(read(&f), Some(c), "{w}×{h}");
            assert_eq!(read(&f.to_tight()), Some(c));
            // Padding bytes stay untouched.
            assert!(
                f.plane(PlaneIndex::Y)[w as usize..strides[0]]
                    .iter()
                    .all(|&v| v == 16)
            );
        }
    }
}
