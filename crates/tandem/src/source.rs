//! Where a sender's pictures come from: the [`VideoSource`] trait, the test pattern (which
//! stamps the pixel code glass-to-glass latency is read from) and Y4M files.
//!
//! A source is pulled at the frame rate by the sender's capture thread; an app with its own
//! camera pushes frames with [`crate::Sender::submit`] instead.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use tandem_codec::{CodecError, Frame, TestPattern, Y4mSource};

/// A source of pictures, pulled at its frame rate.
pub trait VideoSource: Send + 'static {
    /// Picture size.
    fn size(&self) -> (u32, u32);
    /// Frame rate as numerator and denominator.
    fn fps(&self) -> (u32, u32);
    /// The next picture, captured at `wall_us` (the wall clock, µs: see
    /// [`crate::stats::wall_us`]); `None` when the source has ended.
    fn capture(&mut self, wall_us: u64) -> Result<Option<Frame>, CodecError>;
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
    fn capture(&mut self, wall_us: u64) -> Result<Option<Frame>, CodecError> {
        Ok(Some(self.pattern.next_frame_at(wall_us)))
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
    fn capture(&mut self, wall_us: u64) -> Result<Option<Frame>, CodecError> {
        let frame = match self.reader.next_frame()? {
            Some(f) => f,
            None if self.looped => {
                self.reader = Self::reader(&self.path)?;
                match self.reader.next_frame()? {
                    Some(f) => f,
                    None => return Ok(None),
                }
            }
            None => return Ok(None),
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Ok(Some(frame.with_meta(id, wall_us)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_stamps_its_capture_time() {
        let mut s = TestPatternSource::new(640, 360, 60).expect("pattern");
        assert_eq!((s.size(), s.fps()), ((640, 360), (60, 1)));
        let f = s.capture(1_234_567).expect("frame").expect("never ends");
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
        assert!(once.capture(1).expect("read").is_some());
        let second = once.capture(2).expect("read").expect("frame 2");
        assert_eq!((second.id, second.capture_us), (1, 2));
        assert!(once.capture(3).expect("read").is_none(), "ends");
        let mut looped = Y4mFileSource::open(&path, true).expect("open");
        for _ in 0..5 {
            assert!(looped.capture(0).expect("read").is_some());
        }
        let missing = Y4mFileSource::open(&dir.join("absent.y4m"), false).expect_err("no file");
        assert!(missing.to_string().contains("absent.y4m"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
