//! A virtual X server for tests and reports: [`Xvfb::start`] runs an Xvfb of a given size on
//! a display number it picks itself, stopped when dropped, and [`draw_frame`] puts a
//! [`Frame`] on it, so what [`super::ScreenSource`] captures (or what a receiver's window
//! shows) can be checked against a known picture. It is public, though nothing in the
//! capture path uses it, because its users are outside this crate's library: this crate's
//! integration tests (`tests/screen_xvfb.rs`), the screen report (`tandem-benches`'
//! `screen-report`) and `tandem-recv`'s window test, which see only public items.
//!
//! A missing `Xvfb` binary is not an error: [`Xvfb::start`] gives `None`, and the caller
//! skips with a printed reason (`cargo xtask setup` installs it).

use std::io::{self, BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use tandem_codec::Frame;
use x11rb::connection::Connection;
use x11rb::errors::{ConnectError, ReplyOrIdError};
use x11rb::protocol::xproto::{ConnectionExt as _, CreateGCAux, Drawable, ImageFormat, Window};
use x11rb::rust_connection::RustConnection;

/// How long Xvfb may take to accept connections.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// Bytes of Xvfb's standard error kept for an error message.
const STDERR_KEPT: usize = 16 * 1024;

/// An Xvfb of its own (`Xvfb -screen 0 WxHx24`), stopped on drop: SIGTERM, so it removes its
/// lock file and socket, then SIGKILL if it has not gone within a second.
#[derive(Debug)]
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts an Xvfb with one `width × height` screen at depth 24 and waits until it
    /// accepts connections; `Ok(None)` when there is no `Xvfb` binary on `PATH`.
    ///
    /// The display number is the server's own choice (`-displayfd` writes it once the
    /// server accepts connections, so parallel tests and other X servers on the machine
    /// never collide, and there is no guessing when it is ready). `-noreset`: by default an
    /// X server resets, clearing the screen and dropping connections being made, whenever
    /// its last client disconnects. The error of a server that does not start within 15 s,
    /// or writes no display number, quotes what it wrote on standard error.
    pub fn start(width: u32, height: u32) -> io::Result<Option<Xvfb>> {
        let spawned = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-noreset",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
            ])
            .arg(format!("{width}x{height}x24"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io::Error::new(e.kind(), format!("starting Xvfb: {e}"))),
        };
        // Both pipes are drained for the server's lifetime, so it never blocks writing.
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(pipe) = child.stderr.take() {
            let kept = Arc::clone(&stderr);
            std::thread::spawn(move || keep_start(pipe, &kept));
        }
        let (tx, first_line) = mpsc::sync_channel(1);
        if let Some(pipe) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut lines = BufReader::new(pipe);
                let mut first = String::new();
                let _ = lines.read_line(&mut first);
                let _ = tx.send(first);
                let _ = io::copy(&mut lines, &mut io::sink());
            });
        }
        let line = first_line.recv_timeout(READY_WITHIN).ok();
        match line.as_deref().map(str::trim).map(str::parse::<u32>) {
            Some(Ok(n)) => Ok(Some(Xvfb {
                child,
                display: format!(":{n}"),
            })),
            _ => {
                stop(&mut child);
                // Give the reader the last of the pipe, now closed.
                std::thread::sleep(Duration::from_millis(50));
                let said =
                    String::from_utf8_lossy(&stderr.lock().unwrap_or_else(PoisonError::into_inner))
                        .trim()
                        .to_owned();
                let (kind, what) = match line {
                    None => (
                        io::ErrorKind::TimedOut,
                        format!("no display number within {READY_WITHIN:?}"),
                    ),
                    Some(l) => (
                        io::ErrorKind::Other,
                        format!("it wrote {l:?}, not a display number"),
                    ),
                };
                Err(io::Error::new(
                    kind,
                    format!("Xvfb did not start ({what}); its standard error: {said:?}"),
                ))
            }
        }
    }

    /// The display, `:N`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A new connection to the server, and its screen's root window.
    pub fn connect(&self) -> Result<(RustConnection, Window), ConnectError> {
        let (conn, screen) = x11rb::connect(Some(&self.display))?;
        let root = conn.setup().roots[screen].root;
        Ok((conn, root))
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Keeps the first [`STDERR_KEPT`] bytes of `pipe` in `kept`, and drains the rest.
fn keep_start(mut pipe: impl Read, kept: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            return;
        }
        let mut kept = kept.lock().unwrap_or_else(PoisonError::into_inner);
        let room = STDERR_KEPT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
}

/// SIGTERM, then SIGKILL if `child` has not gone within a second; reaps it.
fn stop(child: &mut Child) {
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        #[allow(unsafe_code)]
        // SAFETY: kill(2) on our own child, not yet reaped, so the pid is still its.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    let end = Instant::now() + Duration::from_secs(1);
    while Instant::now() < end {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Draws `frame` with its top-left corner at `(x, y)` of `drawable` (a depth-24 window or
/// pixmap, or the root of an [`Xvfb`]), and waits until the server has done it. The pixels
/// are the engine's own BT.601 limited-range RGB ([`Frame::to_rgb`]) as BGRX, put with
/// [`put_bgrx`].
///
/// # Panics
///
/// If the frame is wider or taller than X's 16-bit sizes allow.
pub fn draw_frame(
    conn: &impl Connection,
    drawable: Drawable,
    x: i16,
    y: i16,
    frame: &Frame,
) -> Result<(), ReplyOrIdError> {
    put_bgrx(conn, drawable, x, y, frame.width(), &bgrx(frame))
}

/// `frame` as the BGRX [`draw_frame`] puts: the engine's own BT.601 limited-range RGB
/// ([`Frame::to_rgb`]), blue first, the fourth byte 0.
pub fn bgrx(frame: &Frame) -> Vec<u8> {
    frame
        .to_rgb()
        .chunks_exact(3)
        .flat_map(|p| [p[2], p[1], p[0], 0])
        .collect()
}

/// Draws `width`-pixel rows of BGRX (as many rows as `bgrx` holds) with their top-left
/// corner at `(x, y)` of depth-24 `drawable`, in `PutImage` requests of whole rows each under
/// the server's request size limit, and waits until the server has done it.
///
/// # Panics
///
/// If `width` or the number of rows does not fit X's 16-bit sizes, or one row alone is over
/// the request size limit.
pub fn put_bgrx(
    conn: &impl Connection,
    drawable: Drawable,
    x: i16,
    y: i16,
    width: u32,
    bgrx: &[u8],
) -> Result<(), ReplyOrIdError> {
    let row = width as usize * 4;
    let w = u16::try_from(width).expect("a width X can draw");
    // A PutImage request is 24 bytes of header (28 as a big request) before the pixels.
    let room = conn.maximum_request_bytes().saturating_sub(32);
    assert!(
        row <= room,
        "one row of {width} pixels is over the request size limit"
    );
    let rows_per_put = room / row;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, drawable, &CreateGCAux::new())?.check()?;
    for (i, strip) in bgrx.chunks(row * rows_per_put).enumerate() {
        let rows = u16::try_from(strip.len() / row).expect("rows X can draw");
        let top = i32::from(y) + i32::try_from(i * rows_per_put).expect("rows X can draw");
        let top = i16::try_from(top).expect("a position X can draw at");
        conn.put_image(
            ImageFormat::Z_PIXMAP,
            drawable,
            gc,
            w,
            rows,
            x,
            top,
            0,
            24,
            strip,
        )?;
    }
    conn.free_gc(gc)?;
    conn.get_input_focus()?.reply()?;
    Ok(())
}
