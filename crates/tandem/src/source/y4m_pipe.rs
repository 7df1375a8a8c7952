//! [`Y4mPipeSource`]: Y4M arriving on a pipe (`tandem-send --source -`), taken at the rate
//! it arrives, so that any program that writes Y4M can feed a sender:
//!
//! ```text
//! ffmpeg -f v4l2 -i /dev/video0 -f yuv4mpegpipe - | tandem-send --source - --peer …
//! ```
//!
//! A reader thread of its own reads the stream, because a read from a pipe blocks for as
//! long as the writer is silent and the capture thread must stay free to stop. It stamps
//! each picture with the wall clock the moment its last byte has been read: the picture's
//! capture time as far as Tandem can know it, so the latency figures start there (whatever
//! the writer spent before, its own capture and conversion, is not seen). It hands the
//! picture over through a one-picture slot: a writer faster than the encoder loses its older
//! pictures there ([`VideoSource::dropped`]), never the newest, and is never slowed by it,
//! so the pipe does not fill and hold pictures back. A writer slower than the frame rate in
//! its header just gives fewer pictures: the sender sends what comes.
//!
//! A malformed or truncated stream ends the source with an error naming the frame and its
//! byte offset in the stream; a stream that ends cleanly between frames ends it without one.

use std::io::{BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crossbeam_channel::{
    Receiver as Rx, RecvTimeoutError, SendTimeoutError, Sender as Tx, bounded,
};
use tandem_codec::{CodecError, Y4mSource};

use super::{Capture, MAX_WAIT, Pacing, VideoSource};
use crate::sender::send_replacing;
use crate::stats::wall_us;

/// Bytes read from the pipe at a time: a 64 KiB pipe empties in one read.
const READ_BUFFER: usize = 1 << 16;

type Slot = Result<tandem_codec::Frame, CodecError>;

/// Y4M from a pipe or any other stream, each picture captured when its bytes are complete.
#[derive(Debug)]
pub struct Y4mPipeSource {
    size: (u32, u32),
    fps: (u32, u32),
    pictures: Rx<Slot>,
    /// Shared with the reader thread, which counts and watches; owned here.
    reader: Arc<ReaderState>,
    ended: bool,
}

#[derive(Debug, Default)]
struct ReaderState {
    /// Pictures replaced in the slot before the capture thread took them.
    dropped: AtomicU64,
    /// The source is gone: the reader stops at its next picture.
    closed: AtomicBool,
}

impl Y4mPipeSource {
    /// Reads the stream's header from `stream` (waiting for it as long as it takes), then
    /// reads its pictures on a thread of its own. The thread ends at the stream's end, at its
    /// first error, or when it has a picture to hand over and the source is gone; it cannot
    /// end while blocked in a read, so it lives on, idle, until the writer writes or closes.
    ///
    /// Fails with [`CodecError::Format`] naming the parameter if the header is not one Tandem
    /// reads (8-bit 4:2:0 progressive, see [`tandem_codec::Y4mSource::new`]).
    pub fn new<R: Read + Send + 'static>(stream: R) -> Result<Y4mPipeSource, CodecError> {
        let reader = Y4mSource::new(BufReader::with_capacity(READ_BUFFER, stream))?;
        let size = (reader.width(), reader.height());
        let fps = reader.fps();
        let (tx, pictures) = bounded::<Slot>(1);
        let state = Arc::new(ReaderState::default());
        let (drain, shared) = (pictures.clone(), Arc::clone(&state));
        std::thread::Builder::new()
            .name("tandem-y4m-pipe".into())
            .spawn(move || read_pictures(reader, &tx, &drain, &shared))
            .map_err(CodecError::Io)?;
        Ok(Y4mPipeSource {
            size,
            fps,
            pictures,
            reader: state,
            ended: false,
        })
    }

    /// The process's standard input.
    pub fn stdin() -> Result<Y4mPipeSource, CodecError> {
        Y4mPipeSource::new(std::io::stdin())
    }
}

/// Reads pictures until the stream ends or fails, stamping each as it is complete.
fn read_pictures<R: Read>(
    mut reader: Y4mSource<BufReader<R>>,
    tx: &Tx<Slot>,
    drain: &Rx<Slot>,
    state: &ReaderState,
) {
    while !state.closed.load(Ordering::Relaxed) {
        match reader.next_frame() {
            Ok(Some(frame)) => {
                let id = frame.id;
                if send_replacing(tx, drain, Ok(frame.with_meta(id, wall_us()))) {
                    state.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(None) => return,
            Err(e) => {
                // The error waits behind the last picture rather than replace it: every
                // whole picture is shown before the stream's fault is.
                let mut item = Err(e);
                while !state.closed.load(Ordering::Relaxed) {
                    match tx.send_timeout(item, MAX_WAIT) {
                        Err(SendTimeoutError::Timeout(back)) => item = back,
                        Ok(()) | Err(SendTimeoutError::Disconnected(_)) => return,
                    }
                }
                return;
            }
        }
    }
}

impl VideoSource for Y4mPipeSource {
    fn size(&self) -> (u32, u32) {
        self.size
    }
    fn fps(&self) -> (u32, u32) {
        self.fps
    }
    fn pacing(&self) -> Pacing {
        Pacing::OwnClock
    }
    fn capture(&mut self, _wall_us: u64) -> Result<Capture, CodecError> {
        if self.ended {
            return Ok(Capture::Ended);
        }
        match self.pictures.recv_timeout(MAX_WAIT) {
            Ok(Ok(frame)) => Ok(Capture::Picture(frame)),
            Ok(Err(e)) => {
                self.ended = true;
                Err(e)
            }
            Err(RecvTimeoutError::Timeout) => Ok(Capture::Waiting),
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Ok(Capture::Ended)
            }
        }
    }
    fn dropped(&self) -> u64 {
        self.reader.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Y4mPipeSource {
    fn drop(&mut self) {
        self.reader.closed.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, Instant};

    use tandem_codec::{Frame, Y4mWriter};

    use super::*;

    const W: u32 = 64;
    const H: u32 = 48;
    /// One 64×48 picture: a `FRAME` line and its samples.
    const FRAME_BYTES: usize = 6 + 64 * 48 * 3 / 2;
    const HEADER: &[u8] = b"YUV4MPEG2 W64 H48 F30:1 Ip A1:1 C420jpeg\n";

    /// The Y4M bytes of pictures filled with `values`, header first.
    fn y4m(values: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut w = Y4mWriter::new(&mut bytes, W, H, 30, 1).expect("writer");
        for &v in values {
            w.write_frame(&Frame::filled(W, H, [v, 128, 128]))
                .expect("frame");
        }
        drop(w);
        bytes
    }

    /// Calls `capture` until it gives something other than `Waiting` (at most 5 s).
    fn next(source: &mut Y4mPipeSource) -> Result<Capture, CodecError> {
        let give_up = Instant::now() + Duration::from_secs(5);
        loop {
            match source.capture(0)? {
                Capture::Waiting if Instant::now() < give_up => {}
                other => return Ok(other),
            }
        }
    }

    fn luma(c: Capture) -> u8 {
        let f = c.picture().expect("a picture");
        f.plane(tandem_codec::PlaneIndex::Y)[0]
    }

    #[test]
    fn a_picture_is_captured_when_its_last_byte_arrives() {
        let (rx, mut tx) = std::io::pipe().expect("pipe");
        let bytes = y4m(&[10, 20]);
        let header = bytes.len() - 2 * FRAME_BYTES;
        tx.write_all(&bytes[..header + FRAME_BYTES + 100])
            .expect("write");
        let mut source = Y4mPipeSource::new(rx).expect("header");
        assert_eq!((source.size(), source.fps()), ((W, H), (30, 1)));
        assert_eq!(source.pacing(), Pacing::OwnClock);
        let first = next(&mut source).expect("read");
        // The second picture is 100 bytes in: nothing until the rest comes.
        assert!(matches!(source.capture(0).expect("read"), Capture::Waiting));
        let rest_sent = wall_us();
        tx.write_all(&bytes[header + FRAME_BYTES + 100..])
            .expect("write");
        let second = next(&mut source).expect("read").picture().expect("picture");
        assert!(
            second.capture_us >= rest_sent,
            "stamped at {} before its last bytes were written at {rest_sent}",
            second.capture_us
        );
        assert_eq!(second.id, 1);
        assert_eq!(luma(first), 10);
        drop(tx);
        assert!(matches!(next(&mut source).expect("end"), Capture::Ended));
        assert!(matches!(source.capture(0).expect("end"), Capture::Ended));
        assert_eq!(source.dropped(), 0);
    }

    #[test]
    fn a_writer_ahead_of_the_reader_loses_its_older_pictures_never_the_newest() {
        let values: Vec<u8> = (0..10).map(|i| i * 20).collect();
        let mut source = Y4mPipeSource::new(std::io::Cursor::new(y4m(&values))).expect("ok");
        // All ten are read while nobody takes them.
        std::thread::sleep(Duration::from_millis(100));
        let mut shown = Vec::new();
        loop {
            match next(&mut source).expect("read") {
                Capture::Picture(f) => shown.push(f.plane(tandem_codec::PlaneIndex::Y)[0]),
                Capture::Ended => break,
                Capture::Waiting => unreachable!("next waits"),
            }
        }
        assert_eq!(
            shown.last(),
            Some(&180),
            "the newest is never lost: {shown:?}"
        );
        assert_eq!(shown.len() as u64 + source.dropped(), 10);
        assert!(source.dropped() > 0, "nobody read while ten were written");
    }

    #[test]
    fn a_truncated_stream_shows_every_whole_picture_then_names_the_frame_and_offset() {
        let mut bytes = y4m(&[50, 60]);
        bytes.truncate(HEADER.len() + FRAME_BYTES + 6 + 1000);
        assert_eq!(
            &y4m(&[])[..],
            HEADER,
            "the header this test counts bytes from"
        );
        let mut source = Y4mPipeSource::new(std::io::Cursor::new(bytes)).expect("header");
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(luma(next(&mut source).expect("first is whole")), 50);
        let e = next(&mut source).expect_err("truncated").to_string();
        let start = HEADER.len() + FRAME_BYTES;
        assert!(
            e.contains(&format!("truncated frame 1 at byte {start}"))
                && e.contains(&format!("ends at byte {}", start + 6 + 1000)),
            "{e}"
        );
        assert!(matches!(source.capture(0).expect("after"), Capture::Ended));
        let garbage = [HEADER, b"FRAMX\n"].concat();
        let mut source = Y4mPipeSource::new(std::io::Cursor::new(garbage)).expect("header");
        let e = next(&mut source).expect_err("bad marker").to_string();
        assert!(
            e.contains(&format!("frame 0 at byte {}", HEADER.len())),
            "{e}"
        );
    }

    #[test]
    fn a_bad_header_is_refused_naming_the_parameter() {
        let e = Y4mPipeSource::new(std::io::Cursor::new(b"YUV4MPEG2 W64 H48 F30:1 C444\n"))
            .expect_err("4:4:4")
            .to_string();
        assert!(e.contains("C444") || e.contains("444"), "{e}");
        let e = Y4mPipeSource::new(std::io::Cursor::new(b""))
            .expect_err("empty")
            .to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn a_silent_writer_keeps_the_source_waiting_and_stopping_it_is_prompt() {
        let (rx, mut tx) = std::io::pipe().expect("pipe");
        tx.write_all(HEADER).expect("write");
        let mut source = Y4mPipeSource::new(rx).expect("header");
        let t = Instant::now();
        assert!(matches!(source.capture(0).expect("read"), Capture::Waiting));
        assert!(t.elapsed() >= MAX_WAIT);
        drop(source);
        // The reader thread is blocked in a read of a silent pipe; nothing waits for it.
        drop(tx);
    }
}
