//! IVF, the minimal container aomenc, dav1d and ffmpeg use for raw AV1 temporal units.
//!
//! Layout (all integers little-endian): a 32-byte file header — `DKIF`, version `u16` 0,
//! header length `u16` 32, fourcc `AV01`, width `u16`, height `u16`, timebase denominator
//! `u32` (the "rate"), timebase numerator `u32` (the "scale"), frame count `u32`, 4 unused
//! bytes — then per frame a 12-byte header (payload size `u32`, timestamp `u64` in timebase
//! units) followed by the payload. Only AV1 is accepted: Tandem has no other decoder.

use std::io::{Read, Seek, SeekFrom, Write};

use crate::error::CodecError;
use crate::read_fill::fill;

/// Size of the IVF file header.
pub const FILE_HEADER_LEN: usize = 32;

/// Size of the header in front of every frame.
pub const FRAME_HEADER_LEN: usize = 12;

/// Largest frame payload accepted. A 4K AV1 keyframe at very high quality is a few MiB; the
/// cap keeps a corrupt size field from triggering a multi-gigabyte allocation.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

const SIGNATURE: [u8; 4] = *b"DKIF";
const FOURCC_AV1: [u8; 4] = *b"AV01";

/// Byte offset of the frame count within the file header; the writer patches it on finish.
const FRAME_COUNT_OFFSET: u64 = 24;

fn format_error(message: impl Into<String>) -> CodecError {
    CodecError::Format {
        format: "IVF",
        message: message.into(),
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Writes AV1 temporal units into an IVF file.
///
/// The frame count in the file header is only right after [`IvfWriter::finish`]; a writer
/// dropped without it leaves the count at 0, which most readers (dav1d, ffmpeg) tolerate.
pub struct IvfWriter<W: Write + Seek> {
    writer: W,
    /// Where the file header starts, so a writer handed a non-empty stream patches its own
    /// header rather than offset 0.
    start: u64,
    frames: u32,
}

impl<W: Write + Seek> std::fmt::Debug for IvfWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfWriter")
            .field("start", &self.start)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek> IvfWriter<W> {
    /// Writes the file header at the writer's current position.
    ///
    /// Timestamps passed to [`IvfWriter::write_frame`] count units of
    /// `timebase_num / timebase_den` seconds (e.g. `1 / 90000`, or `1001 / 30000` for one tick
    /// per frame). Fails with [`CodecError::Format`] if a size is zero or does not fit the
    /// header's 16 bits, or a timebase term is zero.
    pub fn new(
        mut writer: W,
        width: u32,
        height: u32,
        timebase_num: u32,
        timebase_den: u32,
    ) -> Result<Self, CodecError> {
        let mut sizes = [0u16; 2];
        for (slot, (name, v)) in sizes.iter_mut().zip([("width", width), ("height", height)]) {
            *slot = u16::try_from(v).ok().filter(|&v| v > 0).ok_or_else(|| {
                format_error(format!("{name} {v} does not fit the header (1..=65535)"))
            })?;
        }
        if timebase_num == 0 || timebase_den == 0 {
            return Err(format_error(format!(
                "timebase {timebase_num}/{timebase_den} must have a non-zero numerator and \
                 denominator"
            )));
        }
        let start = writer.stream_position()?;
        let mut header = [0u8; FILE_HEADER_LEN];
        header[0..4].copy_from_slice(&SIGNATURE);
        // Bytes 4..6 stay zero: version 0.
        header[6..8].copy_from_slice(&(FILE_HEADER_LEN as u16).to_le_bytes());
        header[8..12].copy_from_slice(&FOURCC_AV1);
        header[12..14].copy_from_slice(&sizes[0].to_le_bytes());
        header[14..16].copy_from_slice(&sizes[1].to_le_bytes());
        header[16..20].copy_from_slice(&timebase_den.to_le_bytes());
        header[20..24].copy_from_slice(&timebase_num.to_le_bytes());
        // Bytes 24..28 (frame count) are patched by `finish`; 28..32 are unused.
        writer.write_all(&header)?;
        Ok(IvfWriter {
            writer,
            start,
            frames: 0,
        })
    }

    /// Appends one temporal unit with presentation timestamp `pts` in timebase units.
    ///
    /// Fails with [`CodecError::Format`] if `data` is over [`MAX_FRAME_BYTES`] (the reader
    /// would refuse it) or the file already holds `u32::MAX` frames.
    pub fn write_frame(&mut self, data: &[u8], pts: u64) -> Result<(), CodecError> {
        if data.len() > MAX_FRAME_BYTES {
            return Err(format_error(format!(
                "frame {}: size {} bytes exceeds the {} MiB limit",
                self.frames,
                data.len(),
                MAX_FRAME_BYTES >> 20
            )));
        }
        let next = self
            .frames
            .checked_add(1)
            .ok_or_else(|| format_error("frame count exceeds the header's 32 bits"))?;
        let mut header = [0u8; FRAME_HEADER_LEN];
        // Cannot truncate: checked against MAX_FRAME_BYTES above.
        header[0..4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        header[4..12].copy_from_slice(&pts.to_le_bytes());
        self.writer.write_all(&header)?;
        self.writer.write_all(data)?;
        self.frames = next;
        Ok(())
    }

    /// How many frames have been written.
    pub fn frames_written(&self) -> u32 {
        self.frames
    }

    /// Patches the frame count into the file header, flushes, and gives back the writer
    /// positioned at the end of the data.
    pub fn finish(mut self) -> Result<W, CodecError> {
        let end = self.writer.stream_position()?;
        self.writer
            .seek(SeekFrom::Start(self.start + FRAME_COUNT_OFFSET))?;
        self.writer.write_all(&self.frames.to_le_bytes())?;
        self.writer.seek(SeekFrom::Start(end))?;
        self.writer.flush()?;
        Ok(self.writer)
    }
}

/// Reads AV1 temporal units from an IVF file.
///
/// Reads happen in small pieces (12-byte headers); wrap files in a [`std::io::BufReader`].
pub struct IvfReader<R: Read> {
    reader: R,
    width: u32,
    height: u32,
    timebase_num: u32,
    timebase_den: u32,
    frame_count: u32,
    next_index: u64,
}

impl<R: Read> std::fmt::Debug for IvfReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IvfReader")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("timebase", &(self.timebase_num, self.timebase_den))
            .field("frame_count", &self.frame_count)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl<R: Read> IvfReader<R> {
    /// Reads and checks the file header.
    ///
    /// Fails with [`CodecError::Format`] naming the field if the header is short, the
    /// signature is not `DKIF`, the version is not 0, the header length is not 32, or the
    /// fourcc is not `AV01`.
    pub fn new(mut reader: R) -> Result<Self, CodecError> {
        let mut h = [0u8; FILE_HEADER_LEN];
        let got = fill(&mut reader, &mut h)?;
        if got < FILE_HEADER_LEN {
            return Err(format_error(format!(
                "truncated file header: got {got} of {FILE_HEADER_LEN} bytes"
            )));
        }
        if h[0..4] != SIGNATURE {
            return Err(format_error(format!(
                "signature `{}` is not `DKIF`",
                h[0..4].escape_ascii()
            )));
        }
        let version = le_u16(&h, 4);
        if version != 0 {
            return Err(format_error(format!(
                "version {version} is not supported (only 0)"
            )));
        }
        let header_len = le_u16(&h, 6);
        if usize::from(header_len) != FILE_HEADER_LEN {
            return Err(format_error(format!(
                "header length {header_len} is not {FILE_HEADER_LEN}"
            )));
        }
        if h[8..12] != FOURCC_AV1 {
            return Err(format_error(format!(
                "fourcc `{}` is not supported: Tandem reads AV1 (`AV01`) only",
                h[8..12].escape_ascii()
            )));
        }
        Ok(IvfReader {
            reader,
            width: u32::from(le_u16(&h, 12)),
            height: u32::from(le_u16(&h, 14)),
            timebase_den: le_u32(&h, 16),
            timebase_num: le_u32(&h, 20),
            frame_count: le_u32(&h, 24),
            next_index: 0,
        })
    }

    /// Picture width from the file header (the AV1 sequence header is authoritative).
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Picture height from the file header (the AV1 sequence header is authoritative).
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Timebase as `(numerator, denominator)`: timestamps count `num / den` seconds.
    pub fn timebase(&self) -> (u32, u32) {
        (self.timebase_num, self.timebase_den)
    }

    /// Frame count claimed by the file header; 0 if the writer never patched it.
    pub fn frame_count(&self) -> u32 {
        self.frame_count
    }

    /// Reads the next frame as `(pts, payload)`, or `Ok(None)` at a clean end of file (end
    /// right before a frame header).
    ///
    /// Fails with [`CodecError::Format`] naming the frame if its header or payload is cut
    /// short or its size is over [`MAX_FRAME_BYTES`].
    pub fn next_frame(&mut self) -> Result<Option<(u64, Vec<u8>)>, CodecError> {
        let index = self.next_index;
        let mut h = [0u8; FRAME_HEADER_LEN];
        match fill(&mut self.reader, &mut h)? {
            0 => return Ok(None),
            FRAME_HEADER_LEN => {}
            got => {
                return Err(format_error(format!(
                    "truncated header of frame {index}: got {got} of {FRAME_HEADER_LEN} bytes"
                )));
            }
        }
        let size = le_u32(&h, 0);
        let pts = u64::from_le_bytes([h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11]]);
        // u32 always fits usize on the 32/64-bit targets Tandem builds for.
        let size = size as usize;
        if size > MAX_FRAME_BYTES {
            return Err(format_error(format!(
                "frame {index}: size {size} bytes exceeds the {} MiB limit",
                MAX_FRAME_BYTES >> 20
            )));
        }
        let mut data = vec![0u8; size];
        let got = fill(&mut self.reader, &mut data)?;
        if got < size {
            return Err(format_error(format!(
                "truncated frame {index}: got {got} of {size} bytes"
            )));
        }
        self.next_index += 1;
        Ok(Some((pts, data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn message(err: CodecError) -> String {
        err.format_message("IVF")
    }

    fn header(sig: &[u8; 4], version: u16, len: u16, fourcc: &[u8; 4], frames: u32) -> Vec<u8> {
        let mut h = Vec::with_capacity(FILE_HEADER_LEN);
        h.extend_from_slice(sig);
        h.extend_from_slice(&version.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        h.extend_from_slice(fourcc);
        h.extend_from_slice(&320u16.to_le_bytes());
        h.extend_from_slice(&240u16.to_le_bytes());
        h.extend_from_slice(&90_000u32.to_le_bytes());
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(&frames.to_le_bytes());
        h.extend_from_slice(&[0; 4]);
        h
    }

    fn good_header() -> Vec<u8> {
        header(b"DKIF", 0, 32, b"AV01", 0)
    }

    fn open(bytes: &[u8]) -> Result<IvfReader<&[u8]>, CodecError> {
        IvfReader::new(bytes)
    }

    #[test]
    fn writes_the_documented_layout() {
        let mut w =
            IvfWriter::new(Cursor::new(Vec::new()), 1920, 1080, 1001, 30000).expect("valid header");
        w.write_frame(&[0x12, 0x00, 0x0A], 0x0102_0304_0506_0708)
            .expect("small frame");
        let out = w.finish().expect("seekable").into_inner();
        let mut want = Vec::new();
        want.extend_from_slice(b"DKIF\0\0\x20\0AV01");
        want.extend_from_slice(&[0x80, 0x07, 0x38, 0x04]);
        want.extend_from_slice(&30000u32.to_le_bytes());
        want.extend_from_slice(&1001u32.to_le_bytes());
        want.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0]);
        want.extend_from_slice(&[3, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1, 0x12, 0x00, 0x0A]);
        assert_eq!(out, want);
    }

    #[test]
    fn round_trips_frames_timestamps_and_header_fields() {
        let frames: Vec<(u64, Vec<u8>)> = vec![
            (0, vec![0x12, 0x00, 0x32, 0x05, 1, 2, 3]),
            (3000, Vec::new()),
            (6000, (0..=255).collect()),
            (u64::MAX, vec![0xAB; 70_000]),
        ];
        let mut w =
            IvfWriter::new(Cursor::new(Vec::new()), 65535, 1, 1, 90_000).expect("valid header");
        for (pts, data) in &frames {
            w.write_frame(data, *pts).expect("frame fits");
        }
        assert_eq!(w.frames_written(), 4);
        let bytes = w.finish().expect("seekable").into_inner();
        let payload: usize = frames.iter().map(|(_, d)| d.len()).sum();
        assert_eq!(
            bytes.len(),
            FILE_HEADER_LEN + 4 * FRAME_HEADER_LEN + payload
        );

        let mut r = open(&bytes).expect("own header");
        assert_eq!((r.width(), r.height()), (65535, 1));
        assert_eq!(r.timebase(), (1, 90_000));
        assert_eq!(r.frame_count(), 4);
        for want in &frames {
            let got = r.next_frame().expect("well formed").expect("frame present");
            assert_eq!(&got, want);
        }
        assert!(r.next_frame().expect("clean end").is_none());
    }

    #[test]
    fn finish_patches_the_count_of_a_header_not_at_offset_zero() {
        let mut cursor = Cursor::new(b"prefix".to_vec());
        cursor.seek(SeekFrom::End(0)).expect("in memory");
        let mut w = IvfWriter::new(cursor, 64, 64, 1, 30).expect("valid header");
        for pts in 0..7 {
            w.write_frame(&[pts as u8; 5], pts).expect("small frame");
        }
        let mut cursor = w.finish().expect("seekable");
        let end = cursor.get_ref().len() as u64;
        assert_eq!(cursor.stream_position().expect("in memory"), end);
        // Appending after finish must land after the data, not over the header.
        cursor.write_all(b"!").expect("in memory");
        let bytes = cursor.into_inner();
        assert_eq!(&bytes[..6], b"prefix");
        assert_eq!(le_u32(&bytes, 6 + 24), 7);
        assert_eq!(bytes.last(), Some(&b'!'));

        let r = open(&bytes[6..]).expect("valid");
        assert_eq!(r.frame_count(), 7);
    }

    #[test]
    fn unfinished_writer_leaves_count_zero() {
        let mut w = IvfWriter::new(Cursor::new(Vec::new()), 8, 8, 1, 30).expect("valid");
        w.write_frame(b"x", 0).expect("small frame");
        let bytes = w.writer.into_inner();
        let mut r = open(&bytes).expect("valid");
        assert_eq!(r.frame_count(), 0);
        assert_eq!(r.next_frame().expect("valid"), Some((0, b"x".to_vec())));
    }

    #[test]
    fn writer_rejects_sizes_beyond_u16_and_zero_timebase() {
        let new = |w, h, n, d| IvfWriter::new(Cursor::new(Vec::new()), w, h, n, d);
        let err = message(new(70_000, 10, 1, 30).expect_err("too wide"));
        assert!(err.contains("width 70000"), "{err}");
        let err = message(new(10, 65_536, 1, 30).expect_err("too tall"));
        assert!(err.contains("height 65536"), "{err}");
        let err = message(new(0, 10, 1, 30).expect_err("zero width"));
        assert!(err.contains("width 0"), "{err}");
        let err = message(new(10, 10, 0, 30).expect_err("zero timebase"));
        assert!(err.contains("timebase 0/30"), "{err}");
    }

    #[test]
    fn writer_rejects_oversized_frames() {
        let mut w = IvfWriter::new(Cursor::new(Vec::new()), 8, 8, 1, 30).expect("valid");
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        let err = message(w.write_frame(&big, 0).expect_err("too big"));
        assert!(err.contains("size 67108865 bytes"), "{err}");
        assert_eq!(w.frames_written(), 0);
        w.write_frame(&big[..MAX_FRAME_BYTES], 0)
            .expect("exactly at the cap");
    }

    #[test]
    fn reader_rejects_bad_file_headers_naming_the_field() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "truncated file header: got 0 of 32 bytes"),
            (good_header()[..20].to_vec(), "got 20 of 32 bytes"),
            (header(b"RIFF", 0, 32, b"AV01", 0), "signature `RIFF`"),
            (header(b"DKIF", 1, 32, b"AV01", 0), "version 1"),
            (header(b"DKIF", 0, 48, b"AV01", 0), "header length 48"),
            (header(b"DKIF", 0, 32, b"VP90", 0), "fourcc `VP90`"),
            (header(b"DKIF", 0, 32, b"av01", 0), "fourcc `av01`"),
        ];
        for (bytes, want) in cases {
            let err = message(open(&bytes).expect_err("bad header"));
            assert!(
                err.contains(want),
                "message `{err}` does not contain `{want}`"
            );
        }
    }

    #[test]
    fn reader_rejects_oversized_and_truncated_frames() {
        let frame = |size: u32, pts: u64, data: &[u8]| {
            [&size.to_le_bytes()[..], &pts.to_le_bytes(), data].concat()
        };
        let ok = frame(2, 0, b"ab");

        let huge = [
            good_header(),
            ok.clone(),
            frame(MAX_FRAME_BYTES as u32 + 1, 1, b""),
        ]
        .concat();
        let mut r = open(&huge).expect("valid header");
        assert!(r.next_frame().expect("first frame").is_some());
        let err = message(r.next_frame().expect_err("too big"));
        assert!(
            err.contains("frame 1: size 67108865 bytes exceeds the 64 MiB limit"),
            "{err}"
        );

        let short = [good_header(), ok.clone(), frame(10, 1, b"abcd")].concat();
        let mut r = open(&short).expect("valid header");
        assert!(r.next_frame().expect("first frame").is_some());
        let err = message(r.next_frame().expect_err("cut payload"));
        assert_eq!(err, "truncated frame 1: got 4 of 10 bytes");

        let cut_header = [good_header(), ok, vec![1, 0, 0, 0, 9]].concat();
        let mut r = open(&cut_header).expect("valid header");
        assert!(r.next_frame().expect("first frame").is_some());
        let err = message(r.next_frame().expect_err("cut frame header"));
        assert_eq!(err, "truncated header of frame 1: got 5 of 12 bytes");
    }

    #[test]
    fn header_only_file_has_no_frames() {
        let bytes = good_header();
        let mut r = open(&bytes).expect("valid");
        assert_eq!(
            (r.width(), r.height(), r.timebase()),
            (320, 240, (1, 90_000))
        );
        assert!(r.next_frame().expect("clean end").is_none());
    }
}
