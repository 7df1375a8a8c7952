//! Where a receiver's frames go: the [`FrameSink`] trait, a closure adapter, and file sinks
//! (Y4M for decoded pictures, IVF for AV1 as received, Annex B for H.264 as received).
//!
//! A sink runs on the receiver's decoder thread: what it does there delays the next frame,
//! so a sink that shows or stores frames slowly should hand them to a thread of its own
//! (the desktop receiver's window does).

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tandem_codec::{CodecError, Frame, IvfWriter, PixelCode, Y4mWriter};
use tandem_proto::Codec;

/// A decoded picture to show.
#[derive(Debug, Clone)]
pub struct DisplayFrame {
    /// The picture (`id` is the sender's frame id).
    pub frame: Frame,
    /// Decodable on its own.
    pub keyframe: bool,
    /// Capture time on the sender's protocol clock, µs.
    pub capture_us: u64,
    /// When its last datagram arrived.
    pub completed_at: Instant,
    /// When playout released it to the decoder.
    pub released_at: Instant,
    /// When the decoder finished it (now, for the sink).
    pub decoded_at: Instant,
    /// The pixel code read back from the picture, if it carries one.
    pub code: Option<PixelCode>,
    /// Capture to now, from the pixel code.
    pub g2g: Option<Duration>,
}

/// An encoded frame as it arrived (every frame, shown or not: a decoder needs them all).
#[derive(Debug, Clone)]
pub struct EncodedVideo {
    /// The sender's frame id.
    pub frame_id: u32,
    /// Codec of `data`.
    pub codec: Codec,
    /// Decodable on its own.
    pub keyframe: bool,
    /// Playout marked it for display (the newest of a burst is; older ones are not).
    pub display: bool,
    /// Capture time on the sender's protocol clock, µs.
    pub capture_us: u64,
    /// The bytes.
    pub data: Bytes,
    /// When playout released it.
    pub released_at: Instant,
    /// The picture size, when the receiver decoded it (not in encoded-output mode).
    pub size: Option<(u32, u32)>,
}

/// What a receiver hands its frames to.
pub trait FrameSink: Send + 'static {
    /// A decoded picture to show (decoded output mode).
    fn on_frame(&mut self, frame: DisplayFrame);
    /// Every received frame's encoded bytes, in order (both modes; in decoded mode after
    /// it was decoded, with its size). The default does nothing.
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        let _ = frame;
    }
    /// The stream ended (the receiver is stopping): flush and close. The default does
    /// nothing.
    fn finish(&mut self) -> Result<(), CodecError> {
        Ok(())
    }
}

/// A closure as a sink of decoded pictures.
#[derive(Debug)]
pub struct FnSink<F>(pub F);

impl<F: FnMut(DisplayFrame) + Send + 'static> FrameSink for FnSink<F> {
    fn on_frame(&mut self, frame: DisplayFrame) {
        (self.0)(frame);
    }
}

/// Several sinks fed in order.
pub struct Tee(pub Vec<Box<dyn FrameSink>>);

impl std::fmt::Debug for Tee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tee({} sinks)", self.0.len())
    }
}

impl FrameSink for Tee {
    fn on_frame(&mut self, frame: DisplayFrame) {
        if let Some((last, rest)) = self.0.split_last_mut() {
            for s in rest {
                s.on_frame(frame.clone());
            }
            last.on_frame(frame);
        }
    }
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        for s in &mut self.0 {
            s.on_encoded(frame);
        }
    }
    fn finish(&mut self) -> Result<(), CodecError> {
        let mut first_error = Ok(());
        for s in &mut self.0 {
            let r = s.finish();
            if first_error.is_ok() {
                first_error = r;
            }
        }
        first_error
    }
}

/// A file sink's first write error: kept, and no more writes tried, until
/// [`FrameSink::finish`] reports it (a sink's callbacks cannot return one).
#[derive(Debug, Default)]
struct FirstError(Option<CodecError>);

impl FirstError {
    /// No error kept yet: the next write may go ahead.
    fn is_clear(&self) -> bool {
        self.0.is_none()
    }

    /// Keeps `result`'s error, if it is the first.
    fn keep(&mut self, result: Result<(), CodecError>) {
        if let Err(e) = result {
            self.0.get_or_insert(e);
        }
    }

    /// The kept error, if any, as the result of `finish`.
    fn take(&mut self) -> Result<(), CodecError> {
        self.0.take().map_or(Ok(()), Err)
    }
}

/// An error naming the stream's codec when a file of `what` (holding `holds` only) gets
/// another, and where `instead` to write it.
fn holds_only(
    path: &Path,
    codec: Codec,
    holds: Codec,
    what: &str,
    instead: &str,
) -> Result<(), CodecError> {
    if codec == holds {
        return Ok(());
    }
    Err(CodecError::InvalidConfig(format!(
        "{}: the stream is {codec}, and {what} holds {holds} only (write {instead} file)",
        path.display()
    )))
}

fn create(path: &Path) -> Result<File, CodecError> {
    File::create(path)
        .map_err(|e| CodecError::InvalidConfig(format!("creating {}: {e}", path.display())))
}

/// Writes shown pictures to a Y4M file (opened at the first picture, whose size it takes).
#[derive(Debug)]
pub struct Y4mFileSink {
    path: PathBuf,
    fps: u32,
    writer: Option<Y4mWriter<BufWriter<File>>>,
    error: FirstError,
}

impl Y4mFileSink {
    /// A sink writing to `path`, labelled `fps` frames per second.
    pub fn new(path: &Path, fps: u32) -> Y4mFileSink {
        Y4mFileSink {
            path: path.to_owned(),
            fps: fps.max(1),
            writer: None,
            error: FirstError::default(),
        }
    }

    fn write(&mut self, frame: &Frame) -> Result<(), CodecError> {
        let writer = match &mut self.writer {
            Some(w) => w,
            None => self.writer.insert(Y4mWriter::new(
                BufWriter::new(create(&self.path)?),
                frame.width(),
                frame.height(),
                self.fps,
                1,
            )?),
        };
        writer.write_frame(frame)
    }
}

impl FrameSink for Y4mFileSink {
    fn on_frame(&mut self, frame: DisplayFrame) {
        if self.error.is_clear() {
            let written = self.write(&frame.frame);
            self.error.keep(written);
        }
    }
    fn finish(&mut self) -> Result<(), CodecError> {
        self.error.take()?;
        if let Some(w) = self.writer.take() {
            use std::io::Write;
            w.into_inner().flush()?;
        }
        Ok(())
    }
}

/// Writes every received frame's AV1 to an IVF file, as it arrived (the header needs the
/// picture size, so frames wait until the first one is decoded; in encoded-output mode the
/// size must be given).
#[derive(Debug)]
pub struct IvfFileSink {
    path: PathBuf,
    size: Option<(u32, u32)>,
    writer: Option<IvfWriter<BufWriter<File>>>,
    waiting: Vec<(u64, Bytes)>,
    first_capture_us: Option<u64>,
    error: FirstError,
}

/// Frames an [`IvfFileSink`] holds while it waits for the picture size.
const IVF_WAIT_LIMIT: usize = 240;

impl IvfFileSink {
    /// A sink writing to `path`; `size` if known in advance.
    pub fn new(path: &Path, size: Option<(u32, u32)>) -> IvfFileSink {
        IvfFileSink {
            path: path.to_owned(),
            size,
            writer: None,
            waiting: Vec::new(),
            first_capture_us: None,
            error: FirstError::default(),
        }
    }

    fn write(&mut self, frame: &EncodedVideo) -> Result<(), CodecError> {
        holds_only(
            &self.path,
            frame.codec,
            Codec::Av1,
            "an IVF file here",
            "H.264 to a .h264",
        )?;
        let first = *self.first_capture_us.get_or_insert(frame.capture_us);
        // Microsecond timestamps from the first frame's capture.
        let pts = frame.capture_us.saturating_sub(first);
        if self.size.is_none() {
            self.size = frame.size;
        }
        let Some((w, h)) = self.size else {
            if self.waiting.len() >= IVF_WAIT_LIMIT {
                return Err(CodecError::InvalidConfig(format!(
                    "{}: no picture size after {IVF_WAIT_LIMIT} frames (pass it for encoded output)",
                    self.path.display()
                )));
            }
            self.waiting.push((pts, frame.data.clone()));
            return Ok(());
        };
        let writer = match &mut self.writer {
            Some(wr) => wr,
            None => self.writer.insert(IvfWriter::new(
                BufWriter::new(create(&self.path)?),
                w,
                h,
                1,
                1_000_000,
            )?),
        };
        for (pts, data) in self.waiting.drain(..) {
            writer.write_frame(&data, pts)?;
        }
        writer.write_frame(&frame.data, pts)
    }
}

impl FrameSink for IvfFileSink {
    fn on_frame(&mut self, _frame: DisplayFrame) {}
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        if self.error.is_clear() {
            let written = self.write(frame);
            self.error.keep(written);
        }
    }
    fn finish(&mut self) -> Result<(), CodecError> {
        self.error.take()?;
        if let Some(w) = self.writer.take() {
            use std::io::Write;
            w.finish()?.flush()?;
        }
        Ok(())
    }
}

/// Writes H.264 as received to an Annex B elementary stream (`.h264`), which ffmpeg, ffplay,
/// VLC and the `x264`/`openh264` tools read: each access unit as it came, start codes and
/// all. Frames before the first keyframe are left out (nothing could decode them), so the
/// file starts with the SPS, PPS and IDR of a keyframe.
#[derive(Debug)]
pub struct AnnexBFileSink {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
    error: FirstError,
}

impl AnnexBFileSink {
    /// A sink writing to `path` (created on the first keyframe).
    pub fn new(path: &Path) -> AnnexBFileSink {
        AnnexBFileSink {
            path: path.to_owned(),
            writer: None,
            error: FirstError::default(),
        }
    }

    fn write(&mut self, frame: &EncodedVideo) -> Result<(), CodecError> {
        use std::io::Write;
        holds_only(
            &self.path,
            frame.codec,
            Codec::H264,
            "a .h264 file",
            "AV1 to a .ivf",
        )?;
        let writer = match &mut self.writer {
            Some(w) => w,
            None if frame.keyframe => self.writer.insert(BufWriter::new(create(&self.path)?)),
            None => return Ok(()),
        };
        writer.write_all(&frame.data)?;
        Ok(())
    }
}

impl FrameSink for AnnexBFileSink {
    fn on_frame(&mut self, _frame: DisplayFrame) {}
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        if self.error.is_clear() {
            let written = self.write(frame);
            self.error.keep(written);
        }
    }
    fn finish(&mut self) -> Result<(), CodecError> {
        use std::io::Write;
        self.error.take()?;
        if let Some(mut w) = self.writer.take() {
            w.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        dir.join(name)
    }

    fn shown(frame: Frame) -> DisplayFrame {
        let now = Instant::now();
        DisplayFrame {
            frame,
            keyframe: false,
            capture_us: 0,
            completed_at: now,
            released_at: now,
            decoded_at: now,
            code: None,
            g2g: None,
        }
    }

    fn unit(id: u32, size: Option<(u32, u32)>) -> EncodedVideo {
        EncodedVideo {
            frame_id: id,
            codec: Codec::Av1,
            keyframe: id == 0,
            display: true,
            capture_us: 1_000 + u64::from(id) * 16_667,
            data: Bytes::from(vec![id as u8; 100 + id as usize]),
            released_at: Instant::now(),
            size,
        }
    }

    #[test]
    fn y4m_sink_writes_what_was_shown() {
        let path = temp("shown.y4m");
        let mut sink = Y4mFileSink::new(&path, 30);
        for v in [20u8, 120, 220] {
            sink.on_frame(shown(Frame::filled(64, 48, [v, 128, 128])));
        }
        sink.finish().expect("flushed");
        let file = std::io::BufReader::new(File::open(&path).expect("file"));
        let mut back = tandem_codec::Y4mSource::new(file).expect("y4m");
        assert_eq!((back.width(), back.height(), back.fps()), (64, 48, (30, 1)));
        let mut n = 0;
        while let Some(f) = back.next_frame().expect("frame") {
            assert_eq!(f.plane(tandem_codec::PlaneIndex::Y)[0], [20u8, 120, 220][n]);
            n += 1;
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn ivf_sink_holds_frames_until_it_knows_the_size() {
        let path = temp("received.ivf");
        let mut sink = IvfFileSink::new(&path, None);
        // The first frame before anything is decoded, then the size.
        sink.on_encoded(&unit(0, None));
        for id in 1..4 {
            sink.on_encoded(&unit(id, Some((640, 360))));
        }
        sink.finish().expect("flushed");
        let mut back = tandem_codec::IvfReader::new(File::open(&path).expect("file")).expect("ivf");
        assert_eq!((back.width(), back.height()), (640, 360));
        for id in 0..4u32 {
            let (pts, data) = back.next_frame().expect("read").expect("frame");
            assert_eq!(data, unit(id, None).data.to_vec());
            assert_eq!(pts, u64::from(id) * 16_667, "µs from the first capture");
        }
        assert!(back.next_frame().expect("read").is_none());
        // Encoded output never learns a size: the sink says so instead of growing.
        let mut blind = IvfFileSink::new(&temp("blind.ivf"), None);
        for id in 0..(IVF_WAIT_LIMIT as u32 + 1) {
            blind.on_encoded(&unit(id, None));
        }
        let e = blind.finish().expect_err("no size");
        assert!(e.to_string().contains("no picture size"), "{e}");
    }

    #[test]
    fn annex_b_sink_starts_at_a_keyframe_and_each_sink_refuses_the_other_codec() {
        let h264 = |id: u32, keyframe: bool| EncodedVideo {
            codec: Codec::H264,
            keyframe,
            ..unit(id, Some((640, 360)))
        };
        let path = temp("received.h264");
        let mut sink = AnnexBFileSink::new(&path);
        // A delta frame before any keyframe is left out; from the keyframe on, all of it.
        sink.on_encoded(&h264(0, false));
        sink.on_encoded(&h264(1, true));
        sink.on_encoded(&h264(2, false));
        sink.finish().expect("flushed");
        let want = [h264(1, true).data, h264(2, false).data].concat();
        assert_eq!(std::fs::read(&path).expect("file"), want);
        let mut wrong = AnnexBFileSink::new(&temp("wrong.h264"));
        wrong.on_encoded(&unit(0, None));
        let e = wrong.finish().expect_err("AV1 in a .h264 file");
        assert!(e.to_string().contains("the stream is AV1"), "{e}");
        let mut wrong = IvfFileSink::new(&temp("wrong.ivf"), None);
        wrong.on_encoded(&h264(0, true));
        let e = wrong.finish().expect_err("H.264 in an IVF file");
        assert!(e.to_string().contains("the stream is H.264"), "{e}");
    }
}
