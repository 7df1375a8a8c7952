//! The X11 screen, or one window, as a [`tandem::VideoSource`]: what `tandem-send --source
//! screen[:DISPLAY] [--window ID]` reads. Each call of [`VideoSource::capture`] reads the
//! picture as it is at that moment (MIT-SHM where the server offers it, plain `GetImage`
//! otherwise) and converts it to I420 with the `yuv` crate's SIMD kernels (BT.601 limited
//! range, what the encoders signal: see [`bgrx_to_i420`]).
//!
//! Pacing is [`Pacing::Scheduled`]: the sender's capture thread calls the source at the frame
//! rate asked for, and the engine's one-picture mailbox sits between capture and encoder, so
//! a slow encoder costs skipped captures, never a capture waiting on the encoder.
//!
//! What it reads:
//! - the whole X screen (the root window: every monitor of that screen), or with
//!   [`ScreenConfig::window`] one window's own contents (its inside, border excluded). X
//!   gives a window's pixels only while it is mapped and wholly on screen; parts covered by
//!   other windows show those windows unless the server keeps backing store (compositors
//!   do).
//! - 24- and 32-bit TrueColor visuals with 8 bits a channel, red in the high byte, on a
//!   little-endian server: BGRX in memory. Anything else (8-bit pseudocolour, 16-bit, 30-bit
//!   deep colour, a big-endian server) is refused when opened.
//! - The mouse pointer, drawn over the picture where it is, as the user sees it (unless
//!   [`ScreenConfig::cursor`] is off): X's image requests never contain it (the server
//!   draws it as a sprite or overlay), so its image comes from the XFIXES extension, fetched
//!   again only when the cursor changes, and its position with each frame's requests at no
//!   extra round trip (see the `cursor` module). A server without XFIXES is captured
//!   without the pointer ([`ScreenSource::cursor_reason`] says why). A pointer an
//!   application hid with XFIXES `HideCursor` (a video player's, say) is still drawn: XFIXES
//!   reports the image whether hidden or not, and has no request saying which.
//! - An even picture: I420 halves both dimensions for chroma, so an odd width or height
//!   loses its last column or row (the right or bottom edge), and the size reported by
//!   [`VideoSource::size`] is the cropped one.
//!
//! The size is fixed when the source opens (the encoder is set up for it): if the window or
//! screen changes size, is unmapped or closed, capture fails with an error saying which, and
//! the sender stops.
//!
//! Wayland sessions are refused before connecting ([`choose_display`] says why and what to
//! do instead).
//!
//! [`xvfb`] runs a virtual X server and draws known pictures on it, for tests and reports.

mod convert;
mod cursor;
mod segment;
mod session;
pub mod xvfb;

use tandem::{Capture, Pacing, VideoSource};
use tandem_codec::CodecError;
use x11rb::connection::{Connection, RequestConnection};
use x11rb::cookie::Cookie;
use x11rb::errors::ReplyError;
use x11rb::protocol::ErrorKind;
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat, ImageOrder, MapState};
use x11rb::rust_connection::RustConnection;

pub use convert::bgrx_to_i420;
pub use session::{SessionEnv, WAYLAND_ROUTE, choose_display};

use convert::Planes;
use cursor::Pointer;
use segment::Segment;

/// Bands of rows one MIT-SHM capture is split into (see `ScreenSource::capture_in_bands`):
/// eight gave a lower 1080p p50 than four in one side-by-side run of the screen report.
const BANDS: u32 = 8;

/// What to capture, and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenConfig {
    /// The X display (`:0`, `:1.0`, `host:10.0`). Default `None`: `$DISPLAY`, refused in a
    /// Wayland session (a display named here is always used).
    pub display: Option<String>,
    /// One window's id (what `xwininfo` prints) instead of the whole screen. Default `None`.
    pub window: Option<u32>,
    /// Captures a second. Default 30.
    pub fps: u32,
    /// Use MIT-SHM where the server offers it. Default `true`; `false` forces plain
    /// `GetImage` (the screen report's baseline, or a server whose MIT-SHM misbehaves).
    pub shm: bool,
    /// Draw the mouse pointer into the picture, where it is and as it looks (X's images
    /// never contain it). Default `true`; `false` captures the bare picture (`tandem-send
    /// --no-cursor`). Needs the server's XFIXES extension: without it the picture has no
    /// pointer and [`ScreenSource::cursor_reason`] says so.
    pub cursor: bool,
}

impl Default for ScreenConfig {
    fn default() -> Self {
        ScreenConfig {
            display: None,
            window: None,
            fps: 30,
            shm: true,
            cursor: true,
        }
    }
}

/// How pixels come from the server.
enum Grab {
    /// Into a shared segment the server has attached as `seg`.
    Shm { seg: shm::Seg, segment: Segment },
    /// In the `GetImage` reply; the last reply's bytes are kept so [`ScreenSource::grab`]
    /// can lend them.
    Plain { last: Vec<u8> },
}

/// A whole-picture request of [`ScreenSource::grab`], sent.
enum ImageCookie<'c> {
    Shm(Cookie<'c, RustConnection, shm::GetImageReply>),
    Plain(Cookie<'c, RustConnection, xproto::GetImageReply>),
}

/// The X screen or one window, captured at a fixed rate (see the module docs).
pub struct ScreenSource {
    conn: RustConnection,
    display: String,
    drawable: xproto::Drawable,
    window: Option<u32>,
    width: u32,
    height: u32,
    fps: u32,
    grab: Grab,
    fallback: Option<String>,
    /// The pointer, when it is drawn; otherwise `cursor_reason` says why not.
    pointer: Option<Pointer>,
    cursor_reason: Option<String>,
    next_id: u32,
}

impl std::fmt::Debug for ScreenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScreenSource")
            .field("target", &self.target())
            .field("size", &(self.width, self.height))
            .field("fps", &self.fps)
            .field("transport", &self.transport())
            .field("cursor", &self.pointer.is_some())
            .finish_non_exhaustive()
    }
}

impl ScreenSource {
    /// Connects to the display and checks that the screen (or window) can be captured: it
    /// exists, is shown, and uses a visual this source reads.
    pub fn open(config: &ScreenConfig) -> Result<ScreenSource, CodecError> {
        if config.fps == 0 || config.fps > 1000 {
            return Err(CodecError::InvalidConfig(format!(
                "screen capture rate {} fps: give 1 to 1000",
                config.fps
            )));
        }
        let display = choose_display(&SessionEnv::from_env(), config.display.as_deref())
            .map_err(CodecError::Capture)?;
        let (conn, screen_num) = x11rb::connect(Some(&display)).map_err(|e| {
            CodecError::Capture(format!(
                "cannot connect to X display {display}: {e}. Is an X server running there, \
                 and may this user connect to it (XAUTHORITY, xhost)?"
            ))
        })?;
        let screen = conn.setup().roots.get(screen_num).cloned().ok_or_else(|| {
            CodecError::Capture(format!("X display {display} has no screen {screen_num}"))
        })?;
        let lost =
            |e: &dyn std::fmt::Display| CodecError::Capture(format!("X display {display}: {e}"));
        let (drawable, visual) = match config.window {
            None => (screen.root, screen.root_visual),
            Some(w) => {
                let attrs = conn
                    .get_window_attributes(w)
                    .map_err(|e| lost(&e))?
                    .reply()
                    .map_err(|e| match e {
                        ReplyError::X11Error(x) if x.error_kind == ErrorKind::Window => {
                            no_such_window(w, &display)
                        }
                        e => lost(&e),
                    })?;
                if attrs.map_state != MapState::VIEWABLE {
                    return Err(CodecError::Capture(format!(
                        "window {w:#x} on X display {display} is not shown (unmapped, or \
                         minimised): X gives a window's pixels only while it is on screen"
                    )));
                }
                (w, attrs.visual)
            }
        };
        let geo = conn
            .get_geometry(drawable)
            .map_err(|e| lost(&e))?
            .reply()
            .map_err(|e| match (e, config.window) {
                (ReplyError::X11Error(_), Some(w)) => no_such_window(w, &display),
                (e, _) => lost(&e),
            })?;
        let what = describe(config.window, &display);
        check_format(conn.setup(), &screen, geo.depth, visual).map_err(|why| {
            CodecError::Capture(format!(
                "cannot capture {what}: {why}. Tandem reads 24/32-bit TrueColor (BGRX) only"
            ))
        })?;
        // I420 needs even sizes: drop the last column/row of an odd picture.
        let (width, height) = (u32::from(geo.width) & !1, u32::from(geo.height) & !1);
        if width < 2 || height < 2 {
            return Err(CodecError::Capture(format!(
                "{what} is {}×{} pixels, too small to capture",
                geo.width, geo.height
            )));
        }
        let (grab, fallback) = if config.shm {
            match shm_grab(&conn, drawable, width, height) {
                Ok(g) => (g, None),
                Err(why) => {
                    tracing::warn!("{what}: no MIT-SHM ({why}); using plain GetImage");
                    (Grab::Plain { last: Vec::new() }, Some(why))
                }
            }
        } else {
            let why = "MIT-SHM turned off in the configuration".to_owned();
            (Grab::Plain { last: Vec::new() }, Some(why))
        };
        let (pointer, cursor_reason) = if config.cursor {
            match Pointer::start(&conn, screen.root) {
                Ok(p) => (Some(p), None),
                Err(why) => {
                    tracing::warn!("{what}: capturing without the pointer ({why})");
                    (None, Some(why))
                }
            }
        } else {
            let why = "turned off in the configuration".to_owned();
            (None, Some(why))
        };
        let mut source = ScreenSource {
            conn,
            display,
            drawable,
            window: config.window,
            width,
            height,
            fps: config.fps,
            grab,
            fallback,
            pointer,
            cursor_reason,
            next_id: 0,
        };
        // One capture now, so a window GetImage refuses (say, partly off screen) fails at
        // start-up rather than as the first frame.
        source.grab()?;
        Ok(source)
    }

    /// How pixels come from the server: `"MIT-SHM"` (into shared memory) or `"GetImage"`
    /// (through the socket; [`ScreenSource::fallback_reason`] says why).
    pub fn transport(&self) -> &'static str {
        match self.grab {
            Grab::Shm { .. } => "MIT-SHM",
            Grab::Plain { .. } => "GetImage",
        }
    }

    /// Why MIT-SHM is not in use, when it is not.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Why the pointer is not drawn into the picture, when it is not: turned off
    /// ([`ScreenConfig::cursor`]), or the server lacks XFIXES. `None`: it is drawn.
    pub fn cursor_reason(&self) -> Option<&str> {
        self.cursor_reason.as_deref()
    }

    /// What is captured, for messages: `the screen of X display :0` or `window 0x… on X
    /// display :0`.
    pub fn target(&self) -> String {
        describe(self.window, &self.display)
    }

    /// Reads the picture as it is now: `width × height` BGRX pixels (the even size of
    /// [`VideoSource::size`]), rows `width × 4` bytes apart, the pointer drawn in unless
    /// [`ScreenConfig::cursor`] is off. [`VideoSource::capture`] is this plus
    /// [`bgrx_to_i420`] (with MIT-SHM, band by band, the two overlapped); they are public
    /// apart so their costs can be measured apart.
    pub fn grab(&mut self) -> Result<&[u8], CodecError> {
        let (w, h) = (self.width as u16, self.height as u16);
        let len = self.width as usize * self.height as usize * 4;
        let stride = self.width as usize * 4;
        let z = ImageFormat::Z_PIXMAP;
        let pointer = match &mut self.pointer {
            Some(p) => Some(
                p.request(&self.conn, self.drawable)
                    .map_err(|e| self.grab_error(e.into()))?,
            ),
            None => None,
        };
        let sent = match self.grab {
            Grab::Shm { seg, .. } => self
                .conn
                .shm_get_image(self.drawable, 0, 0, w, h, !0, z.into(), seg, 0)
                .map(ImageCookie::Shm),
            Grab::Plain { .. } => self
                .conn
                .get_image(z, self.drawable, 0, 0, w, h, !0)
                .map(ImageCookie::Plain),
        };
        let sent = sent.map_err(|e| self.grab_error(e.into()))?;
        let at = receive_pointer(&mut self.pointer, pointer).map_err(|e| self.grab_error(e))?;
        let got = match sent {
            ImageCookie::Shm(c) => c.reply().map(|r| r.size as usize),
            ImageCookie::Plain(c) => c.reply().map(|r| {
                let got = r.data.len();
                self.grab = Grab::Plain { last: r.data };
                got
            }),
        };
        let got = got.map_err(|e| self.grab_error(e))?;
        if got < len {
            return Err(CodecError::Capture(format!(
                "{}: the server gave {got} bytes for a {}×{} picture (needs {len})",
                self.target(),
                self.width,
                self.height
            )));
        }
        let cursor = self.pointer.as_ref().and_then(Pointer::image);
        let pixels = match &mut self.grab {
            Grab::Shm { segment, .. } => segment.range_mut(0, len),
            Grab::Plain { last } => &mut last[..len],
        };
        if let (Some(cursor), Some(at)) = (cursor, at) {
            cursor.blend(at, pixels, stride, self.width, 0);
        }
        Ok(pixels)
    }

    /// One MIT-SHM capture as [`BANDS`] `ShmGetImage` requests for bands of rows, all sent
    /// at once, each band converted as soon as its reply is in: the server (another
    /// process, on another core when there is one) copies band n + 1 while this thread
    /// converts band n, so a frame costs about the larger of the two, not their sum. The
    /// pointer's requests go first in the same write; each band the cursor overlaps has it
    /// drawn in before conversion.
    ///
    /// The bands are read one request after another, so a window drawn between two of them
    /// can tear at a band edge, which a single request (atomic in the single-threaded
    /// server) cannot; at a few tenths of a millisecond apart this is as rare as it is
    /// brief.
    fn capture_in_bands(&mut self) -> Result<tandem_codec::Frame, CodecError> {
        let Grab::Shm { seg, .. } = self.grab else {
            unreachable!("called for MIT-SHM sources only")
        };
        let (w, h) = (self.width, self.height);
        let stride = w as usize * 4;
        let band = (h / BANDS).next_multiple_of(2).max(2);
        let z = u8::from(ImageFormat::Z_PIXMAP);
        let pointer = match &mut self.pointer {
            Some(p) => Some(
                p.request(&self.conn, self.drawable)
                    .map_err(|e| self.grab_error(e.into()))?,
            ),
            None => None,
        };
        let mut requests = Vec::with_capacity(BANDS as usize + 1);
        let mut top = 0;
        while top < h {
            let rows = band.min(h - top);
            // Widths and heights are X's own u16s; only a picture over 4 GiB could
            // overflow the u32 offset.
            let offset = u32::try_from(top as usize * stride).map_err(|_| {
                CodecError::Capture(format!("{}: picture too large for MIT-SHM", self.target()))
            })?;
            let cookie = self
                .conn
                .shm_get_image(
                    self.drawable,
                    0,
                    top as i16,
                    w as u16,
                    rows as u16,
                    !0,
                    z,
                    seg,
                    offset,
                )
                .map_err(|e| self.grab_error(e.into()))?;
            requests.push((top, rows, cookie));
            top += rows;
        }
        self.conn.flush().map_err(|e| self.grab_error(e.into()))?;
        let at = receive_pointer(&mut self.pointer, pointer).map_err(|e| self.grab_error(e))?;
        let mut planes = Planes::new(w, h)?;
        for (top, rows, cookie) in requests {
            let reply = cookie.reply().map_err(|e| self.grab_error(e))?;
            let len = rows as usize * stride;
            if (reply.size as usize) < len {
                return Err(CodecError::Capture(format!(
                    "{}: the server gave {} bytes for rows {top}..{} (needs {len})",
                    self.target(),
                    reply.size,
                    top + rows
                )));
            }
            let Grab::Shm { segment, .. } = &mut self.grab else {
                unreachable!("called for MIT-SHM sources only")
            };
            let pixels = segment.range_mut(top as usize * stride, len);
            if let (Some(cursor), Some(at)) = (self.pointer.as_ref().and_then(Pointer::image), at) {
                cursor.blend(at, pixels, stride, w, top);
            }
            planes.convert_rows(pixels, stride, top, rows)?;
        }
        planes.into_frame()
    }

    /// Explains a failed capture: the window gone, hidden or resized, or the server gone.
    fn grab_error(&self, e: ReplyError) -> CodecError {
        let what = self.target();
        let ReplyError::X11Error(x) = e else {
            return CodecError::Capture(format!("{what}: lost the connection: {e}"));
        };
        let now = self
            .conn
            .get_geometry(self.drawable)
            .ok()
            .and_then(|c| c.reply().ok());
        let shown = match self.window {
            None => true,
            Some(w) => self
                .conn
                .get_window_attributes(w)
                .ok()
                .and_then(|c| c.reply().ok())
                .is_some_and(|a| a.map_state == MapState::VIEWABLE),
        };
        let why = match now {
            None => "it no longer exists (closed?)".to_owned(),
            Some(_) if !shown => "it is no longer shown (unmapped or minimised)".to_owned(),
            Some(g)
                if (u32::from(g.width) & !1, u32::from(g.height) & !1)
                    != (self.width, self.height) =>
            {
                format!(
                    "it changed size from {}×{} to {}×{}; restart the sender to capture \
                     the new size",
                    self.width, self.height, g.width, g.height
                )
            }
            Some(_) if self.window.is_some() => {
                "GetImage refused it (a window must be wholly on screen to be captured)".into()
            }
            Some(_) => format!("the server refused GetImage ({:?})", x.error_kind),
        };
        CodecError::Capture(format!("cannot capture {what}: {why}"))
    }
}

impl Drop for ScreenSource {
    fn drop(&mut self) {
        if let Grab::Shm { seg, .. } = self.grab {
            // Polite only: the server detaches by itself when the connection closes.
            let _ = self.conn.shm_detach(seg);
            let _ = self.conn.flush();
        }
    }
}

impl VideoSource for ScreenSource {
    fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    fn fps(&self) -> (u32, u32) {
        (self.fps, 1)
    }

    fn pacing(&self) -> Pacing {
        Pacing::Scheduled
    }

    fn capture(&mut self, wall_us: u64) -> Result<Capture, CodecError> {
        let (w, h) = (self.width, self.height);
        let frame = match self.grab {
            Grab::Shm { .. } => self.capture_in_bands()?,
            Grab::Plain { .. } => bgrx_to_i420(self.grab()?, w as usize * 4, w, h)?,
        };
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        Ok(Capture::Picture(frame.with_meta(id, wall_us)))
    }
}

/// The pointer's hotspot in the drawable this frame, from the replies to the requests sent
/// with the frame's (`None`: nothing to draw, or no pointer drawn at all).
fn receive_pointer(
    pointer: &mut Option<Pointer>,
    sent: Option<cursor::Requests<'_>>,
) -> Result<Option<(i32, i32)>, ReplyError> {
    match (pointer, sent) {
        (Some(pointer), Some(sent)) => pointer.receive(sent),
        _ => Ok(None),
    }
}

fn describe(window: Option<u32>, display: &str) -> String {
    match window {
        None => format!("the screen of X display {display}"),
        Some(w) => format!("window {w:#x} on X display {display}"),
    }
}

fn no_such_window(w: u32, display: &str) -> CodecError {
    CodecError::Capture(format!(
        "window {w:#x} ({w}) does not exist on X display {display}: `xwininfo` (then click \
         the window) or `xdotool selectwindow` prints a window's id"
    ))
}

/// Whether pixels of `depth` and `visual` arrive as BGRX: TrueColor, 8 bits a channel with
/// red high, 32 bits a pixel, least significant byte first. The error says what differs.
fn check_format(
    setup: &xproto::Setup,
    screen: &xproto::Screen,
    depth: u8,
    visual: xproto::Visualid,
) -> Result<(), String> {
    if depth != 24 && depth != 32 {
        return Err(format!("its depth is {depth} bits"));
    }
    let vt = screen
        .allowed_depths
        .iter()
        .flat_map(|d| &d.visuals)
        .find(|v| v.visual_id == visual)
        .ok_or_else(|| format!("its visual {visual:#x} is not listed by the screen"))?;
    if vt.class != xproto::VisualClass::TRUE_COLOR {
        return Err(format!("its visual is {:?}, not TrueColor", vt.class));
    }
    if (vt.red_mask, vt.green_mask, vt.blue_mask) != (0xff_0000, 0xff00, 0xff) {
        return Err(format!(
            "its channel masks are R {:#x} G {:#x} B {:#x}, not 8 bits each with red high",
            vt.red_mask, vt.green_mask, vt.blue_mask
        ));
    }
    let bpp = setup
        .pixmap_formats
        .iter()
        .find(|f| f.depth == depth)
        .map(|f| f.bits_per_pixel);
    if bpp != Some(32) {
        return Err(format!(
            "depth {depth} is stored as {bpp:?} bits a pixel, not 32"
        ));
    }
    if setup.image_byte_order != ImageOrder::LSB_FIRST {
        return Err("the server's image byte order is big-endian".to_owned());
    }
    Ok(())
}

/// Sets up MIT-SHM for `width × height` captures of `drawable`, and tries one; the error
/// says why it cannot be used (the caller falls back to `GetImage`).
fn shm_grab(
    conn: &RustConnection,
    drawable: xproto::Drawable,
    width: u32,
    height: u32,
) -> Result<Grab, String> {
    if conn
        .extension_information(shm::X11_EXTENSION_NAME)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err("the server does not offer it".to_owned());
    }
    conn.shm_query_version()
        .map_err(|e| e.to_string())?
        .reply()
        .map_err(|e| format!("QueryVersion failed: {e}"))?;
    let len = width as usize * height as usize * 4;
    let segment = Segment::new(len).map_err(|e| format!("no shared memory segment: {e}"))?;
    let seg = conn.generate_id().map_err(|e| e.to_string())?;
    // Checked, so the server has attached before the segment is marked for removal (after
    // which nobody could attach it by id).
    conn.shm_attach(seg, segment.id(), false)
        .map_err(|e| e.to_string())?
        .check()
        .map_err(|e| {
            format!(
                "the server cannot attach this process's shared memory (a remote display?): {e}"
            )
        })?;
    segment.remove_id();
    let z = u8::from(ImageFormat::Z_PIXMAP);
    let trial = conn
        .shm_get_image(drawable, 0, 0, width as u16, height as u16, !0, z, seg, 0)
        .map_err(|e| e.to_string())?
        .reply();
    if let Err(e) = trial {
        let _ = conn.shm_detach(seg);
        return Err(format!("ShmGetImage failed: {e}"));
    }
    Ok(Grab::Shm { seg, segment })
}
