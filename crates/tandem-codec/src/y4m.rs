//! Y4M (YUV4MPEG2) reading and writing, restricted to 8-bit 4:2:0 progressive video.
//!
//! Y4M is the raw-video interchange format of the test tooling (ffmpeg, x264, aomenc, the
//! Xiph test clips): a one-line text header, then per picture a `FRAME` line followed by the
//! planar I420 samples. Tandem only ever encodes 8-bit I420, so anything else (other chroma
//! subsamplings, high bit depth, interlacing) is refused at the header with an error naming
//! the offending parameter rather than being misread as garbage pictures.

use std::io::{BufRead, Read, Write};

use crate::error::CodecError;
use crate::frame::{Frame, PlaneIndex, chroma_size};
use crate::read_fill::fill;

/// Longest header or `FRAME` line accepted, newline excluded. Real headers are well under
/// 100 bytes; the cap stops a non-Y4M file without newlines from being buffered whole.
pub const MAX_LINE_BYTES: usize = 1024;

/// Largest accepted width or height. Bigger than any AV1 level Tandem targets, and small
/// enough that the frame size arithmetic cannot overflow.
pub const MAX_DIMENSION: u32 = 16384;

const MAGIC: &[u8] = b"YUV4MPEG2 ";
const FRAME_MARKER: &[u8] = b"FRAME";

/// Colour-space tags that all mean 8-bit 4:2:0; they differ only in chroma siting, which does
/// not change the sample layout.
const ACCEPTED_COLOUR_SPACES: [&str; 4] = ["420", "420jpeg", "420paldv", "420mpeg2"];

fn format_error(message: impl Into<String>) -> CodecError {
    CodecError::Format {
        format: "Y4M",
        message: message.into(),
    }
}

/// Shows untrusted bytes in an error message without flooding it.
fn quote(bytes: &[u8]) -> String {
    const SHOWN: usize = 40;
    let shown = &bytes[..bytes.len().min(SHOWN)];
    let ellipsis = if bytes.len() > SHOWN { "…" } else { "" };
    format!("{}{ellipsis}", shown.escape_ascii())
}

enum Line {
    /// End of stream before any byte of the line.
    Eof,
    /// A complete line of this many bytes, newline included; the buffer holds it without
    /// its newline.
    Complete(usize),
    /// End of stream after this many bytes but before the newline.
    Unterminated(usize),
    /// No newline within [`MAX_LINE_BYTES`].
    TooLong,
}

fn read_line<R: BufRead>(reader: &mut R, buf: &mut Vec<u8>) -> std::io::Result<Line> {
    buf.clear();
    let limit = MAX_LINE_BYTES as u64 + 1;
    let n = reader.by_ref().take(limit).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Line::Complete(n));
    }
    if n > MAX_LINE_BYTES {
        return Ok(Line::TooLong);
    }
    Ok(Line::Unterminated(n))
}

/// Plain decimal only: `u32::from_str` would also take a leading `+`, which no writer emits.
fn parse_decimal(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_dimension(name: &str, tag: char, value: &str) -> Result<u32, CodecError> {
    let v = parse_decimal(value)
        .ok_or_else(|| format_error(format!("{name} `{tag}{value}` is not a decimal number")))?;
    if v == 0 {
        return Err(format_error(format!("{name} `{tag}{value}` is zero")));
    }
    if v > MAX_DIMENSION {
        return Err(format_error(format!(
            "{name} {v} (`{tag}{value}`) exceeds the limit of {MAX_DIMENSION}"
        )));
    }
    Ok(v)
}

fn parse_rate(value: &str) -> Result<(u32, u32), CodecError> {
    let bad = |why: &str| format_error(format!("frame rate `F{value}` {why}"));
    let (num, den) = value
        .split_once(':')
        .ok_or_else(|| bad("is not of the form num:den"))?;
    let num = parse_decimal(num).ok_or_else(|| bad("has a non-numeric numerator"))?;
    let den = parse_decimal(den).ok_or_else(|| bad("has a non-numeric denominator"))?;
    if num == 0 || den == 0 {
        return Err(bad("must have a non-zero numerator and denominator"));
    }
    Ok((num, den))
}

/// A Y4M stream being read picture by picture.
///
/// Wrap files in a [`std::io::BufReader`]; the header and `FRAME` lines are read through
/// [`BufRead`], the samples straight into the frame's planes.
pub struct Y4mSource<R: BufRead> {
    reader: R,
    width: u32,
    height: u32,
    fps_num: u32,
    fps_den: u32,
    next_index: u64,
    /// Bytes of the stream consumed so far: where the next `FRAME` line starts.
    offset: u64,
    line: Vec<u8>,
    /// Set once the iterator has reported an error or the end, so it does not spin on a
    /// stream whose position is no longer at a frame boundary.
    finished: bool,
}

impl<R: BufRead> std::fmt::Debug for Y4mSource<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mSource")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("fps", &(self.fps_num, self.fps_den))
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<R: BufRead> Y4mSource<R> {
    /// Reads and checks the stream header.
    ///
    /// Fails with [`CodecError::Format`] naming the parameter if the header is not a Y4M
    /// header, lacks `W`, `H` or `F`, has a zero or oversized (> [`MAX_DIMENSION`]) picture,
    /// is interlaced, or declares anything but 8-bit 4:2:0 samples.
    pub fn new(mut reader: R) -> Result<Self, CodecError> {
        let mut line = Vec::new();
        let header_bytes = match read_line(&mut reader, &mut line)? {
            Line::Complete(n) => n,
            Line::Eof => return Err(format_error("empty stream: no `YUV4MPEG2` header")),
            Line::Unterminated(n) => {
                return Err(format_error(format!(
                    "header line ends after {n} bytes without a newline"
                )));
            }
            Line::TooLong => {
                return Err(format_error(format!(
                    "header line is longer than {MAX_LINE_BYTES} bytes"
                )));
            }
        };
        let Some(params) = line.strip_prefix(MAGIC) else {
            return Err(format_error(format!(
                "missing `YUV4MPEG2 ` signature: header starts with `{}`",
                quote(&line)
            )));
        };
        let params = std::str::from_utf8(params)
            .map_err(|e| format_error(format!("header is not UTF-8 ({e})")))?;

        let (mut width, mut height, mut rate) = (None, None, None);
        let mut seen = Vec::new();
        // Writers separate parameters by exactly one space; empty tokens from stray spaces
        // carry no meaning, so they are skipped rather than refused.
        for token in params.split(' ').filter(|t| !t.is_empty()) {
            let mut chars = token.chars();
            let Some(tag) = chars.next() else { continue };
            let value = chars.as_str();
            if tag != 'X' {
                if seen.contains(&tag) {
                    return Err(format_error(format!(
                        "header parameter `{tag}` appears more than once"
                    )));
                }
                seen.push(tag);
            }
            match tag {
                'W' => width = Some(parse_dimension("width", tag, value)?),
                'H' => height = Some(parse_dimension("height", tag, value)?),
                'F' => rate = Some(parse_rate(value)?),
                'I' => {
                    if value != "p" {
                        return Err(format_error(format!(
                            "interlacing `I{value}` is not supported: Tandem reads \
                             progressive (`Ip`) video only"
                        )));
                    }
                }
                // Tandem has no use for the pixel aspect ratio, so any value passes.
                'A' => {}
                'C' => {
                    if !ACCEPTED_COLOUR_SPACES.contains(&value) {
                        return Err(format_error(format!(
                            "colour space `{value}` is not supported: Tandem reads 8-bit \
                             4:2:0 only"
                        )));
                    }
                }
                // Vendor extensions (ffmpeg's `XYSCSS=…`, `XCOLORRANGE=…`) by definition.
                'X' => {}
                other => {
                    return Err(format_error(format!(
                        "unknown header parameter `{other}` (in `{token}`)"
                    )));
                }
            }
        }
        let width = width.ok_or_else(|| format_error("header has no width (`W`)"))?;
        let height = height.ok_or_else(|| format_error("header has no height (`H`)"))?;
        let (fps_num, fps_den) =
            rate.ok_or_else(|| format_error("header has no frame rate (`F`)"))?;
        Ok(Y4mSource {
            reader,
            width,
            height,
            fps_num,
            fps_den,
            next_index: 0,
            offset: header_bytes as u64,
            line,
            finished: false,
        })
    }

    /// Picture width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Frame rate as `(numerator, denominator)` frames per second, e.g. `(30000, 1001)`.
    pub fn fps(&self) -> (u32, u32) {
        (self.fps_num, self.fps_den)
    }

    /// Capture time of picture `index` in µs, rounded to the nearest µs.
    fn capture_us(&self, index: u64) -> u64 {
        // u128 because the denominator may be as large as u32::MAX: in u64, index × 10^6 × den
        // would then overflow after about 4000 frames.
        let num = u128::from(self.fps_num);
        let us = (u128::from(index) * 1_000_000 * u128::from(self.fps_den) + num / 2) / num;
        u64::try_from(us).unwrap_or(u64::MAX)
    }

    /// Bytes of the stream consumed so far (the header and every whole frame read).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next picture, or `Ok(None)` at a clean end of stream (end right before a
    /// `FRAME` line).
    ///
    /// The frame has tight strides, `id` = its index from 0, and `capture_us` = its
    /// presentation time from the frame rate. An error names the frame by its index and the
    /// byte offset in the stream where it starts (and, when the stream ends inside it, where
    /// it ended). After an error the stream position is unspecified and further calls may
    /// fail or misread the data.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, CodecError> {
        let index = self.next_index;
        let start = self.offset;
        let line_bytes = match read_line(&mut self.reader, &mut self.line)? {
            Line::Eof => return Ok(None),
            Line::Complete(n) => n,
            Line::Unterminated(n) => {
                return Err(format_error(format!(
                    "truncated frame {index} at byte {start}: the stream ends {n} bytes into \
                     its `FRAME` line"
                )));
            }
            Line::TooLong => {
                return Err(format_error(format!(
                    "frame {index} at byte {start}: `FRAME` line is longer than \
                     {MAX_LINE_BYTES} bytes"
                )));
            }
        };
        let marker_ok = self.line == FRAME_MARKER
            || (self.line.starts_with(FRAME_MARKER) && self.line[FRAME_MARKER.len()] == b' ');
        if !marker_ok {
            return Err(format_error(format!(
                "frame {index} at byte {start}: expected a `FRAME` line, found `{}`",
                quote(&self.line)
            )));
        }

        let id = u32::try_from(index).map_err(|_| {
            format_error(format!(
                "frame {index} at byte {start}: more than 2^32 frames"
            ))
        })?;
        let (cw, ch) = chroma_size(self.width, self.height);
        // Cannot overflow: both sides are at most MAX_DIMENSION.
        let luma = self.width as usize * self.height as usize;
        let chroma = cw as usize * ch as usize;
        let total = luma + 2 * chroma;
        let mut planes = [vec![0u8; luma], vec![0u8; chroma], vec![0u8; chroma]];
        let mut got = 0;
        for plane in &mut planes {
            let n = fill(&mut self.reader, plane)?;
            got += n;
            if n < plane.len() {
                let end = start + (line_bytes + got) as u64;
                return Err(format_error(format!(
                    "truncated frame {index} at byte {start}: the stream ends at byte {end}, \
                     {got} of the frame's {total} sample bytes in"
                )));
            }
        }
        let frame = Frame::from_planes(
            self.width,
            self.height,
            planes,
            [self.width as usize, cw as usize, cw as usize],
        )?
        .with_meta(id, self.capture_us(index));
        self.next_index += 1;
        self.offset = start + (line_bytes + total) as u64;
        Ok(Some(frame))
    }
}

/// Yields frames until the end of the stream or the first error, after which it yields
/// nothing more.
impl<R: BufRead> Iterator for Y4mSource<R> {
    type Item = Result<Frame, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let item = self.next_frame().transpose();
        if !matches!(item, Some(Ok(_))) {
            self.finished = true;
        }
        item
    }
}

impl<R: BufRead> std::iter::FusedIterator for Y4mSource<R> {}

/// Writes pictures as a Y4M stream (8-bit 4:2:0 progressive, `C420jpeg`).
///
/// Every picture costs one or a few `write_all` calls; wrap files in a
/// [`std::io::BufWriter`] anyway when writing row by row from padded frames.
pub struct Y4mWriter<W: Write> {
    writer: W,
    width: u32,
    height: u32,
    frames_written: u64,
    /// Reused to gather the rows of padded frames into one write.
    scratch: Vec<u8>,
}

impl<W: Write> std::fmt::Debug for Y4mWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Y4mWriter")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("frames_written", &self.frames_written)
            .finish_non_exhaustive()
    }
}

impl<W: Write> Y4mWriter<W> {
    /// Writes the stream header `YUV4MPEG2 W… H… F…:… Ip A1:1 C420jpeg`.
    ///
    /// Fails with [`CodecError::Format`] if a size is zero or above [`MAX_DIMENSION`] or a
    /// rate term is zero, since [`Y4mSource`] would refuse such a stream.
    pub fn new(
        mut writer: W,
        width: u32,
        height: u32,
        fps_num: u32,
        fps_den: u32,
    ) -> Result<Self, CodecError> {
        for (name, v) in [("width", width), ("height", height)] {
            if v == 0 || v > MAX_DIMENSION {
                return Err(format_error(format!(
                    "{name} {v} is outside 1..={MAX_DIMENSION}"
                )));
            }
        }
        if fps_num == 0 || fps_den == 0 {
            return Err(format_error(format!(
                "frame rate {fps_num}:{fps_den} must have a non-zero numerator and denominator"
            )));
        }
        let header =
            format!("YUV4MPEG2 W{width} H{height} F{fps_num}:{fps_den} Ip A1:1 C420jpeg\n");
        writer.write_all(header.as_bytes())?;
        Ok(Y4mWriter {
            writer,
            width,
            height,
            frames_written: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends one picture, without any row padding it may carry.
    ///
    /// Fails with [`CodecError::Format`] if its size differs from the stream's.
    pub fn write_frame(&mut self, frame: &Frame) -> Result<(), CodecError> {
        if frame.width() != self.width || frame.height() != self.height {
            return Err(format_error(format!(
                "frame {} is {}×{} but the stream is {}×{}",
                frame.id,
                frame.width(),
                frame.height(),
                self.width,
                self.height
            )));
        }
        const PLANES: [PlaneIndex; 3] = [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V];
        self.writer.write_all(b"FRAME\n")?;
        if frame.is_tight() {
            for p in PLANES {
                let (w, h) = frame.plane_size(p);
                self.writer.write_all(&frame.plane(p)[..w * h])?;
            }
        } else {
            self.scratch.clear();
            for p in PLANES {
                frame.append_packed(p, &mut self.scratch);
            }
            self.writer.write_all(&self.scratch)?;
        }
        self.frames_written += 1;
        Ok(())
    }

    /// How many pictures have been written.
    pub fn frames_written(&self) -> u64 {
        self.frames_written
    }

    /// Gives back the underlying writer. Nothing is buffered here, so nothing is lost; flush
    /// the writer itself if it buffers.
    pub fn into_inner(self) -> W {
        self.writer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn message(err: CodecError) -> String {
        err.format_message("Y4M")
    }

    fn open(bytes: &[u8]) -> Result<Y4mSource<Cursor<&[u8]>>, CodecError> {
        Y4mSource::new(Cursor::new(bytes))
    }

    fn header_error(header: &[u8]) -> String {
        match open(header) {
            Ok(src) => panic!("header {:?} was accepted: {src:?}", header.escape_ascii()),
            Err(e) => message(e),
        }
    }

    /// A tight frame whose every sample is distinct-ish, so misplaced bytes show.
    fn pattern(width: u32, height: u32, seed: u8) -> Frame {
        let mut f = Frame::black(width, height);
        for (pi, p) in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
            .into_iter()
            .enumerate()
        {
            let (w, h) = f.plane_size(p);
            for y in 0..h {
                for (x, s) in f.row_mut(p, y).iter_mut().enumerate() {
                    *s = seed
                        .wrapping_mul(31)
                        .wrapping_add((pi * 97 + y * w + x) as u8);
                }
            }
        }
        f
    }

    /// The same picture as `tight`, stored with `pad` junk bytes after every row.
    fn padded(tight: &Frame, pad: usize) -> Frame {
        let mut planes: [Vec<u8>; 3] = Default::default();
        let mut strides = [0; 3];
        for (i, p) in [PlaneIndex::Y, PlaneIndex::U, PlaneIndex::V]
            .into_iter()
            .enumerate()
        {
            let (w, h) = tight.plane_size(p);
            strides[i] = w + pad;
            for y in 0..h {
                planes[i].extend_from_slice(tight.row(p, y));
                planes[i].extend(std::iter::repeat_n(0xEE, pad));
            }
        }
        let f = Frame::from_planes(tight.width(), tight.height(), planes, strides)
            .expect("consistent planes");
        assert!(!f.is_tight());
        f
    }

    #[test]
    fn writes_exact_bytes_without_stride_padding() {
        // 3×3: luma 3 rows of 3, chroma 2 rows of 2, so padding sits between rows.
        let planes = [
            (1..=9).collect(),
            vec![10, 11, 12, 13],
            vec![14, 15, 16, 17],
        ];
        let tight = Frame::from_planes(3, 3, planes, [3, 2, 2]).expect("valid");
        let mut w = Y4mWriter::new(Vec::new(), 3, 3, 25, 1).expect("valid header");
        w.write_frame(&padded(&tight, 5)).expect("same size");
        w.write_frame(&tight).expect("same size");
        assert_eq!(w.frames_written(), 2);
        let out = w.into_inner();
        let mut want = b"YUV4MPEG2 W3 H3 F25:1 Ip A1:1 C420jpeg\n".to_vec();
        for _ in 0..2 {
            want.extend_from_slice(b"FRAME\n");
            want.extend(1..=17u8);
        }
        assert_eq!(out, want);
    }

    #[test]
    fn round_trips_frames_of_odd_and_even_sizes_with_padded_input() {
        for (w, h) in [(5, 3), (1, 1), (7, 6), (16, 9)] {
            let originals: Vec<Frame> = (0..4).map(|i| pattern(w, h, i)).collect();
            let mut writer = Y4mWriter::new(Vec::new(), w, h, 30, 1).expect("valid header");
            for (i, f) in originals.iter().enumerate() {
                let input = if i % 2 == 1 { padded(f, 3) } else { f.clone() };
                writer.write_frame(&input).expect("same size");
            }
            let bytes = writer.into_inner();
            let (cw, ch) = chroma_size(w, h);
            let payload = (w * h + 2 * cw * ch) as usize;
            let header_len = format!("YUV4MPEG2 W{w} H{h} F30:1 Ip A1:1 C420jpeg\n").len();
            assert_eq!(bytes.len(), header_len + 4 * (6 + payload));

            let mut src = open(&bytes).expect("own header");
            assert_eq!((src.width(), src.height(), src.fps()), (w, h, (30, 1)));
            for (i, want) in originals.iter().enumerate() {
                let got = src
                    .next_frame()
                    .expect("well formed")
                    .expect("frame present");
                assert!(got.is_tight());
                assert!(got.same_picture(want), "{w}×{h} frame {i} differs");
                assert_eq!(got.plane(PlaneIndex::Y), want.plane(PlaneIndex::Y));
                assert_eq!(got.plane(PlaneIndex::V), want.plane(PlaneIndex::V));
                assert_eq!(got.id, i as u32);
                assert_eq!(got.capture_us, [0, 33_333, 66_667, 100_000][i]);
            }
            assert!(src.next_frame().expect("clean end").is_none());
        }
    }

    #[test]
    fn capture_times_follow_fractional_rates_rounded() {
        let mut bytes = b"YUV4MPEG2 W2 H2 F30000:1001\n".to_vec();
        for _ in 0..4 {
            bytes.extend_from_slice(b"FRAME\n\0\0\0\0\0\0");
        }
        let times: Vec<u64> = open(&bytes)
            .expect("valid")
            .map(|f| f.expect("valid frame").capture_us)
            .collect();
        // 1001/30000 s = 33366.67 µs per frame.
        assert_eq!(times, [0, 33_367, 66_733, 100_100]);
    }

    #[test]
    fn accepts_every_8_bit_420_variant_and_ignorable_parameters() {
        for extra in [
            "",
            " C420",
            " C420jpeg",
            " C420paldv",
            " C420mpeg2",
            " Ip",
            " A0:0",
            " A128:117",
            " XYSCSS=420JPEG XCOLORRANGE=LIMITED",
            "  C420 ",
        ] {
            let header = format!(
                "YUV4MPEG2 W4 H2 F24:1{extra}\nFRAME Ixyz\n{}",
                "abcdefghijkl"
            );
            let mut src =
                open(header.as_bytes()).unwrap_or_else(|e| panic!("`{extra}` rejected: {e}"));
            let f = src.next_frame().expect("valid").expect("one frame");
            assert_eq!(f.row(PlaneIndex::Y, 1), b"efgh");
            assert_eq!(f.row(PlaneIndex::U, 0), b"ij");
            assert_eq!(f.row(PlaneIndex::V, 0), b"kl");
            assert!(src.next_frame().expect("clean end").is_none());
        }
    }

    #[test]
    fn rejects_bad_headers_naming_the_offender() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty stream"),
            (b"YUV4MPEG2 W4 H4 F1:1", "without a newline"),
            (b"RIFF....WAVE\n", "`YUV4MPEG2 ` signature"),
            (b"YUV4MPEG2W4 H4 F1:1\n", "`YUV4MPEG2 ` signature"),
            (b"YUV4MPEG2 H4 F1:1\n", "width (`W`)"),
            (b"YUV4MPEG2 W4 F1:1\n", "height (`H`)"),
            (b"YUV4MPEG2 W4 H4\n", "frame rate (`F`)"),
            (b"YUV4MPEG2 W0 H4 F1:1\n", "width `W0` is zero"),
            (b"YUV4MPEG2 W4 H0 F1:1\n", "height `H0` is zero"),
            (b"YUV4MPEG2 W16385 H4 F1:1\n", "width 16385"),
            (b"YUV4MPEG2 W4 H99999999999 F1:1\n", "height `H99999999999`"),
            (b"YUV4MPEG2 W4 H20000 F1:1\n", "height 20000"),
            (b"YUV4MPEG2 W-4 H4 F1:1\n", "width `W-4`"),
            (b"YUV4MPEG2 W+4 H4 F1:1\n", "width `W+4`"),
            (b"YUV4MPEG2 W4 H4 F30:0\n", "frame rate `F30:0`"),
            (b"YUV4MPEG2 W4 H4 F0:1\n", "frame rate `F0:1`"),
            (b"YUV4MPEG2 W4 H4 F30\n", "frame rate `F30`"),
            (b"YUV4MPEG2 W4 H4 Fx:1\n", "frame rate `Fx:1`"),
            (b"YUV4MPEG2 W4 H4 F1:1 It\n", "interlacing `It`"),
            (b"YUV4MPEG2 W4 H4 F1:1 Im\n", "interlacing `Im`"),
            (b"YUV4MPEG2 W4 H4 F1:1 I?\n", "interlacing `I?`"),
            (b"YUV4MPEG2 W4 H4 F1:1 C444\n", "colour space `444`"),
            (b"YUV4MPEG2 W4 H4 F1:1 C422\n", "colour space `422`"),
            (b"YUV4MPEG2 W4 H4 F1:1 C420p10\n", "colour space `420p10`"),
            (b"YUV4MPEG2 W4 H4 F1:1 Cmono\n", "colour space `mono`"),
            (b"YUV4MPEG2 W4 H4 F1:1 C\n", "colour space ``"),
            (b"YUV4MPEG2 W4 H4 F1:1 Q7\n", "unknown header parameter `Q`"),
            (b"YUV4MPEG2 W4 H4 F1:1 w4\n", "unknown header parameter `w`"),
            (b"YUV4MPEG2 W4 W8 H4 F1:1\n", "`W` appears more than once"),
            (b"YUV4MPEG2 W4 H4 F1:1 X\xff\n", "not UTF-8"),
        ];
        for (header, want) in cases {
            let got = header_error(header);
            assert!(
                got.contains(want),
                "header {:?}: message `{got}` does not contain `{want}`",
                header.escape_ascii().to_string()
            );
        }
        let c420p10 = header_error(b"YUV4MPEG2 W4 H4 F1:1 C420p10\n");
        assert_eq!(
            c420p10,
            "colour space `420p10` is not supported: Tandem reads 8-bit 4:2:0 only"
        );
    }

    #[test]
    fn header_line_length_is_capped() {
        let mut at_cap = b"YUV4MPEG2 W4 H2 F1:1 X".to_vec();
        at_cap.resize(MAX_LINE_BYTES, b'x');
        at_cap.push(b'\n');
        assert!(
            open(&at_cap).is_ok(),
            "a {MAX_LINE_BYTES}-byte header is allowed"
        );

        let mut over = b"YUV4MPEG2 W4 H2 F1:1 X".to_vec();
        over.resize(MAX_LINE_BYTES + 1, b'x');
        over.push(b'\n');
        assert!(header_error(&over).contains("header line is longer than 1024 bytes"));
        // No newline at all, as with a binary file that happens to start with the magic.
        let endless = [b"YUV4MPEG2 ".as_slice(), &[b'W'; 5000]].concat();
        assert!(header_error(&endless).contains("longer than 1024"));
    }

    #[test]
    fn truncated_frame_reports_its_index_and_byte_counts() {
        // 4×2 needs 8 + 2 + 2 = 12 bytes; the second frame stops after 5, mid-luma, the third
        // after 9, mid-chroma.
        let second_frame_error = |tail: &[u8]| {
            let bytes = [
                b"YUV4MPEG2 W4 H2 F1:1\nFRAME\n0123456789ab".as_slice(),
                tail,
            ]
            .concat();
            let mut src = open(&bytes).expect("valid header");
            assert!(src.next_frame().expect("first frame is whole").is_some());
            message(src.next_frame().expect_err("second frame is short"))
        };
        // The header is 21 bytes and frame 0 is 6 + 12: frame 1 starts at byte 39.
        assert_eq!(
            second_frame_error(b"FRAME\n01234"),
            "truncated frame 1 at byte 39: the stream ends at byte 50, 5 of the frame's 12 \
             sample bytes in"
        );
        assert_eq!(
            second_frame_error(b"FRAME\n012345678"),
            "truncated frame 1 at byte 39: the stream ends at byte 54, 9 of the frame's 12 \
             sample bytes in"
        );
        assert_eq!(
            second_frame_error(b"FRAME\n"),
            "truncated frame 1 at byte 39: the stream ends at byte 45, 0 of the frame's 12 \
             sample bytes in"
        );
        assert_eq!(
            second_frame_error(b"FRA"),
            "truncated frame 1 at byte 39: the stream ends 3 bytes into its `FRAME` line"
        );
    }

    #[test]
    fn bad_frame_marker_is_an_error() {
        for marker in [&b"FRAMES\n"[..], b"frame\n", b"FRAM\n", b"\n"] {
            let bytes = [
                b"YUV4MPEG2 W2 H2 F1:1\n".as_slice(),
                marker,
                b"\0\0\0\0\0\0",
            ]
            .concat();
            let err = message(
                open(&bytes)
                    .expect("valid")
                    .next_frame()
                    .expect_err("bad marker"),
            );
            assert!(
                err.contains("frame 0 at byte 21: expected a `FRAME` line"),
                "{err}"
            );
        }
    }

    #[test]
    fn header_only_stream_has_no_frames() {
        let mut src = open(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n").expect("valid");
        assert_eq!((src.width(), src.height(), src.fps()), (640, 480, (30, 1)));
        assert!(src.next_frame().expect("clean end").is_none());
        let src = open(b"YUV4MPEG2 W640 H480 F30:1\n").expect("valid");
        assert_eq!(src.count(), 0);
    }

    #[test]
    fn iterator_stops_after_the_first_error() {
        let bytes = b"YUV4MPEG2 W2 H2 F1:1\nFRAME\n\0\0\0\0\0\0JUNK\nFRAME\n\0\0\0\0\0\0";
        let items: Vec<_> = open(bytes).expect("valid").collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(
            message(
                items
                    .into_iter()
                    .nth(1)
                    .expect("two items")
                    .expect_err("junk")
            )
            .contains("`JUNK`")
        );
    }

    #[test]
    fn writer_rejects_wrong_sizes() {
        let mut w = Y4mWriter::new(Vec::new(), 4, 4, 30, 1).expect("valid");
        let err = message(w.write_frame(&Frame::black(4, 2)).expect_err("wrong size"));
        assert!(err.contains("4×2 but the stream is 4×4"), "{err}");
        assert_eq!(w.frames_written(), 0);
        assert_eq!(
            w.into_inner().len(),
            "YUV4MPEG2 W4 H4 F30:1 Ip A1:1 C420jpeg\n".len()
        );

        let err = message(Y4mWriter::new(Vec::new(), 0, 4, 30, 1).expect_err("zero width"));
        assert!(err.contains("width 0"), "{err}");
        let err = message(Y4mWriter::new(Vec::new(), 4, 20000, 30, 1).expect_err("too tall"));
        assert!(err.contains("height 20000"), "{err}");
        let err = message(Y4mWriter::new(Vec::new(), 4, 4, 30, 0).expect_err("zero rate"));
        assert!(err.contains("frame rate 30:0"), "{err}");
    }
}
