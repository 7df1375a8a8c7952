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

use crossbeam_channel::{Receiver as Rx, RecvTimeoutError, Sender as Tx, bounded};
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
        let item = match reader.next_frame() {
            Ok(Some(frame)) => {
                let id = frame.id;
                Ok(frame.with_meta(id, wall_us()))
            }
            Ok(None) => return,
            Err(e) => Err(e),
        };
        let failed = item.is_err();
        if send_replacing(tx, drain, item) {
            state.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            return;
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
