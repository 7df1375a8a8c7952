//! Where a sender's pictures come from: the [`VideoSource`] trait, the test pattern (which
//! stamps the pixel code glass-to-glass latency is read from), Y4M files, and Y4M arriving on
//! a pipe ([`Y4mPipeSource`], `tandem-send --source -`). The desktop's screen and cameras are
//! sources too, in the `tandem-capture` crate.
//!
//! The sender's capture thread drives a source in one of two ways ([`Pacing`]): it calls a
//! [`Pacing::Scheduled`] source at the frame rate, and the source gives the picture as it is
//! at that moment (the test pattern, a file, a screen); an [`Pacing::OwnClock`] source (a
//! camera, a pipe) decides when its pictures come, and the thread takes each as it is
//! complete. Either way the encoder gets the newest picture through a one-picture mailbox.
//! An app with its own camera pushes frames with [`crate::Sender::submit`] instead.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use tandem_codec::{CodecError, Frame, TestPattern, Y4mSource};

mod y4m_pipe;

pub use y4m_pipe::Y4mPipeSource;

/// The longest an [`Pacing::OwnClock`] source's [`VideoSource::capture`] may wait for its
/// next picture before returning [`Capture::Waiting`]: how long stopping a sender can take
/// while its camera or pipe is silent.
pub const MAX_WAIT: Duration = Duration::from_millis(50);

/// How the capture thread drives a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// Called at [`VideoSource::fps`], on schedule, with the wall-clock time of the call: the
    /// source gives the picture as it is at that moment, captured then. A call the machine
    /// made too late to keep the schedule is not made up for: the next keeps it (the missed
    /// ones count in [`crate::Stats::source_dropped`]).
    Scheduled,
    /// Called again as soon as it returns: the source waits for its next picture (at most
    /// [`MAX_WAIT`]) and stamps the picture's `capture_us` itself, with when it was complete
    /// (a camera's own timestamp, the moment a pipe's last byte of it arrived).
    OwnClock,
}

/// What one call of [`VideoSource::capture`] gave.
#[derive(Debug)]
pub enum Capture {
    /// A picture, its `capture_us` set.
    Picture(Frame),
    /// None yet ([`Pacing::OwnClock`] sources, after [`MAX_WAIT`]): call again.
    Waiting,
    /// The source has ended (a file played once, a pipe closed); the sender stops.
    Ended,
}

impl Capture {
    /// The picture, if this is one.
    pub fn picture(self) -> Option<Frame> {
        match self {
            Capture::Picture(f) => Some(f),
            Capture::Waiting | Capture::Ended => None,
        }
    }
}

/// A source of pictures.
pub trait VideoSource: Send + 'static {
    /// Picture size.
    fn size(&self) -> (u32, u32);
    /// Frame rate as numerator and denominator: the rate the capture thread calls a
    /// [`Pacing::Scheduled`] source at, and the rate the encoder is set up for.
    fn fps(&self) -> (u32, u32);
    /// How the capture thread drives this source; [`Pacing::Scheduled`] unless it says
    /// otherwise.
    fn pacing(&self) -> Pacing {
        Pacing::Scheduled
    }
    /// The next picture. A [`Pacing::Scheduled`] source captures it at `wall_us` (the wall
    /// clock, µs: see [`crate::stats::wall_us`]); an [`Pacing::OwnClock`] source ignores
    /// `wall_us` and stamps the time its picture was complete. An error stops the sender,
    /// so it is for a source that cannot go on (the device went away, a malformed stream).
    fn capture(&mut self, wall_us: u64) -> Result<Capture, CodecError>;
    /// Pictures the source itself lost before the capture thread took them (a camera's
    /// buffers overwritten, a pipe's picture replaced by a newer one), total.
    fn dropped(&self) -> u64 {
        0
    }
}

/// The moving test pattern, each frame carrying its pixel code (frame id and capture time).
#[derive(Debug)]
pub struct TestPatternSource {
    pattern: TestPattern,
    fps: u32,
}

impl TestPatternSource {
    /// A `width × height` pattern at `fps`.
    pub fn new(width: u32, height: u32, fps: u32) -> Result<TestPatternSource, CodecError> {
        Ok(TestPatternSource {
            pattern: TestPattern::new(width, height, fps, 1)?,
            fps,
        })
    }
}

impl VideoSource for TestPatternSource {
    fn size(&self) -> (u32, u32) {
        (self.pattern.width(), self.pattern.height())
    }
    fn fps(&self) -> (u32, u32) {
        (self.fps, 1)
    }
    fn capture(&mut self, wall_us: u64) -> Result<Capture, CodecError> {
        Ok(Capture::Picture(self.pattern.next_frame_at(wall_us)))
    }
}

/// A Y4M file, played once at its own frame rate (or looped).
#[derive(Debug)]
pub struct Y4mFileSource {
    path: std::path::PathBuf,
    reader: Y4mSource<BufReader<File>>,
    looped: bool,
    next_id: u32,
}

impl Y4mFileSource {
    /// Opens `path`; with `looped`, it starts over at the end instead of ending.
    pub fn open(path: &Path, looped: bool) -> Result<Y4mFileSource, CodecError> {
        Ok(Y4mFileSource {
            path: path.to_owned(),
            reader: Self::reader(path)?,
            looped,
            next_id: 0,
        })
    }

    fn reader(path: &Path) -> Result<Y4mSource<BufReader<File>>, CodecError> {
        let file = File::open(path)
            .map_err(|e| CodecError::InvalidConfig(format!("opening {}: {e}", path.display())))?;
        Y4mSource::new(BufReader::new(file))
    }
}

impl VideoSource for Y4mFileSource {
    fn size(&self) -> (u32, u32) {
        (self.reader.width(), self.reader.height())
    }
    fn fps(&self) -> (u32, u32) {
        self.reader.fps()
    }
    fn capture(&mut self, wall_us: u64) -> Result<Capture, CodecError> {
        let frame = match self.reader.next_frame()? {
            Some(f) => f,
            None if self.looped => {
                self.reader = Self::reader(&self.path)?;
                match self.reader.next_frame()? {
                    Some(f) => f,
                    None => return Ok(Capture::Ended),
                }
            }
            None => return Ok(Capture::Ended),
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Ok(Capture::Picture(frame.with_meta(id, wall_us)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_stamps_its_capture_time() {
        let mut s = TestPatternSource::new(640, 360, 60).expect("pattern");
        assert_eq!((s.size(), s.fps()), ((640, 360), (60, 1)));
        let f = s
            .capture(1_234_567)
            .expect("frame")
            .picture()
            .expect("never ends");
        let code = tandem_codec::pixelcode::read(&f).expect("a code");
        assert_eq!((code.frame_id, code.capture_us), (0, 1_234_567));
        assert_eq!(f.capture_us, 1_234_567);
    }

    #[test]
    fn y4m_files_play_once_or_loop() {
        let dir = std::env::temp_dir().join(format!("tandem-y4m-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("two.y4m");
        {
            let file = File::create(&path).expect("file");
            let mut w = tandem_codec::Y4mWriter::new(file, 64, 48, 30, 1).expect("writer");
            for i in 0..2u8 {
                w.write_frame(&Frame::filled(64, 48, [i * 50, 128, 128]))
                    .expect("frame");
            }
        }
        let mut once = Y4mFileSource::open(&path, false).expect("open");
        assert_eq!((once.size(), once.fps()), ((64, 48), (30, 1)));
        assert!(once.capture(1).expect("read").picture().is_some());
        let second = once.capture(2).expect("read").picture().expect("frame 2");
        assert_eq!((second.id, second.capture_us), (1, 2));
        assert!(
            matches!(once.capture(3).expect("read"), Capture::Ended),
            "ends"
        );
        let mut looped = Y4mFileSource::open(&path, true).expect("open");
        for _ in 0..5 {
            assert!(looped.capture(0).expect("read").picture().is_some());
        }
        let missing = Y4mFileSource::open(&dir.join("absent.y4m"), false).expect_err("no file");
        assert!(missing.to_string().contains("absent.y4m"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
