//! The screen source against a real X server: each test starts its own Xvfb (skipping, with
//! the reason printed, where the binary is missing), draws the engine's test pattern on it
//! with PutImage, and checks what `ScreenSource` captures against the drawn picture: the
//! whole screen with MIT-SHM and with plain GetImage, one window by id (odd-sized, so the
//! crop to even shows), the mouse pointer drawn where it is (or left out) over a flat
//! colour, on the screen and in a window, and the screen streamed through a real sender and
//! receiver on loopback.

#![cfg(target_os = "linux")]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem::sink::FnSink;
use tandem::{DisplayFrame, Receiver, ReceiverConfig, Remote, Sender, SenderConfig, VideoSource};
use tandem_capture::screen::xvfb::{self, Xvfb};
use tandem_capture::screen::{ScreenConfig, ScreenSource, bgrx_to_i420};
use tandem_codec::{Frame, PlaneIndex, TestPattern, pixelcode, psnr};
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

/// An Xvfb of its own for one test (see [`Xvfb::start`]); `None`, with the reason printed,
/// when there is no Xvfb.
fn start_xvfb(width: u32, height: u32) -> Option<Xvfb> {
    let x = Xvfb::start(width, height).expect("starting Xvfb");
    if x.is_none() {
        eprintln!("skipped: no Xvfb binary on PATH (install xvfb to run this test)");
    }
    x
}

fn connect(x: &Xvfb) -> (RustConnection, Window) {
    x.connect().expect("connects to Xvfb")
}

/// Draws `frame` at `(x, y)` of `drawable`.
fn draw(conn: &RustConnection, drawable: Window, x: i16, y: i16, frame: &Frame) {
    xvfb::draw_frame(conn, drawable, x, y, frame).expect("drawn");
}

/// Fills a rectangle with one colour (what lies around the pattern).
fn fill(conn: &RustConnection, drawable: Window, x: i16, y: i16, w: u32, h: u32, bgrx: [u8; 4]) {
    let pixels: Vec<u8> = bgrx.repeat(w as usize * h as usize);
    xvfb::put_bgrx(conn, drawable, x, y, w, &pixels).expect("filled");
}

/// The test pattern's frame 7 at `width × height`, the pixel code stamping frame id 7.
fn pattern(width: u32, height: u32) -> Frame {
    TestPattern::new(width, height, 30, 1)
        .expect("pattern")
        .frame_at(7)
}

fn max_error(a: &Frame, b: &Frame, plane: PlaneIndex) -> u8 {
    (0..a.plane_size(plane).1)
        .flat_map(|y| a.row(plane, y).iter().zip(b.row(plane, y)))
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

/// Checks a captured picture against the drawn `pattern`: against the drawn RGB converted by
/// the engine's reference code (the capture path's own error: the SIMD kernel's rounding and
/// chroma averaging), and against the pattern itself (what a receiver compares with), whose
/// pixel code must read back.
fn assert_matches(got: &Frame, pattern: &Frame, what: &str) {
    let (w, h) = (pattern.width(), pattern.height());
    assert_eq!((got.width(), got.height()), (w, h), "{what}: size");
    let reference = Frame::from_rgb(w, h, &pattern.to_rgb()).expect("reference");
    let p_ref = psnr(got, &reference).expect("same size");
    let y_err = max_error(got, &reference, PlaneIndex::Y);
    let c_err =
        max_error(got, &reference, PlaneIndex::U).max(max_error(got, &reference, PlaneIndex::V));
    let p_pattern = psnr(got, pattern).expect("same size");
    println!(
        "{what}: PSNR {p_ref:.1} dB against the drawn RGB (max error Y {y_err}, chroma {c_err}), \
         {p_pattern:.1} dB against the pattern"
    );
    assert!(p_ref >= 50.0, "{what}: {p_ref:.1} dB against the drawn RGB");
    assert!(y_err <= 2, "{what}: luma off by {y_err}");
    assert!(c_err <= 2, "{what}: chroma off by {c_err}");
    assert!(
        p_pattern >= 35.0,
        "{what}: {p_pattern:.1} dB against the pattern"
    );
    let code = pixelcode::read(got).expect("the pattern's pixel code reads back");
    assert_eq!(code.frame_id, 7, "{what}: the drawn frame's code");
}

fn capture(source: &mut ScreenSource, wall_us: u64) -> Frame {
    let f = source
        .capture(wall_us)
        .expect("captures")
        .picture()
        .expect("a scheduled source always has a picture");
    assert_eq!(f.capture_us, wall_us);
    f
}

#[test]
fn the_whole_screen_is_captured_as_drawn_with_shm_and_with_get_image() {
    // 641×361: odd on purpose, the capture crops to 640×360.
    let Some(x) = start_xvfb(641, 361) else {
        return;
    };
    let (conn, root) = connect(&x);
    let drawn = pattern(640, 360);
    fill(&conn, root, 0, 0, 641, 361, [0, 0, 255, 0]);
    draw(&conn, root, 0, 0, &drawn);

    for shm in [true, false] {
        let config = ScreenConfig {
            display: Some(x.display().to_owned()),
            shm,
            // The picture as drawn: Xvfb's pointer sits in the middle of the screen.
            cursor: false,
            ..ScreenConfig::default()
        };
        let mut s = ScreenSource::open(&config).expect("opens");
        let want = if shm { "MIT-SHM" } else { "GetImage" };
        assert_eq!(s.transport(), want, "{:?}", s.fallback_reason());
        assert_eq!(s.fallback_reason().is_some(), !shm);
        assert_eq!(
            (s.size(), s.fps()),
            ((640, 360), (30, 1)),
            "cropped to even"
        );
        let a = capture(&mut s, 1_000);
        let b = capture(&mut s, 2_000);
        assert_eq!((a.id, b.id), (0, 1), "frames are numbered");
        assert!(a.same_picture(&b), "a still screen captures the same twice");
        assert_matches(&b, &drawn, &format!("screen via {want}"));
    }
}

#[test]
fn one_window_is_captured_by_its_id_and_a_missing_one_is_named() {
    let Some(x) = start_xvfb(800, 600) else {
        return;
    };
    let (conn, root) = connect(&x);
    fill(&conn, root, 0, 0, 800, 600, [0, 255, 0, 0]);
    // 321×181 at (50, 40): odd, so the capture is 320×180.
    let win = conn.generate_id().expect("id");
    conn.create_window(
        24,
        win,
        root,
        50,
        40,
        321,
        181,
        0,
        WindowClass::INPUT_OUTPUT,
        x11rb::COPY_FROM_PARENT,
        &CreateWindowAux::new(),
    )
    .expect("request")
    .check()
    .expect("window");
    conn.map_window(win)
        .expect("request")
        .check()
        .expect("mapped");
    let drawn = pattern(320, 180);
    fill(&conn, win, 0, 0, 321, 181, [255, 0, 0, 0]);
    draw(&conn, win, 0, 0, &drawn);

    let config = ScreenConfig {
        display: Some(x.display().to_owned()),
        window: Some(win),
        fps: 60,
        ..ScreenConfig::default()
    };
    let mut s = ScreenSource::open(&config).expect("opens the window");
    assert_eq!(s.transport(), "MIT-SHM");
    assert_eq!((s.size(), s.fps()), ((320, 180), (60, 1)));
    assert!(s.target().contains(&format!("{win:#x}")), "{}", s.target());
    assert_matches(&capture(&mut s, 5), &drawn, "window");

    // Closing the window stops the capture with a reason.
    conn.destroy_window(win)
        .expect("request")
        .check()
        .expect("destroyed");
    let err = s.capture(6).expect_err("the window is gone");
    assert!(err.to_string().contains("no longer exists"), "{err}");

    let missing = ScreenConfig {
        display: Some(x.display().to_owned()),
        window: Some(0x3a_beef),
        ..ScreenConfig::default()
    };
    let err = ScreenSource::open(&missing).expect_err("no such window");
    let msg = err.to_string();
    assert!(
        msg.contains("0x3abeef") && msg.contains("does not exist"),
        "{msg}"
    );
    assert!(msg.contains(x.display()), "names the display: {msg}");
}

#[test]
fn the_screen_streams_to_a_receiver_on_loopback() {
    let Some(x) = start_xvfb(640, 360) else {
        return;
    };
    let (conn, root) = connect(&x);
    let drawn = pattern(640, 360);
    draw(&conn, root, 0, 0, &drawn);
    let config = ScreenConfig {
        display: Some(x.display().to_owned()),
        ..ScreenConfig::default()
    };
    let source = ScreenSource::open(&config).expect("opens");
    let (w, h) = source.size();

    // In the clear (NetConfig::security None): this is about the pictures, not pairing.
    let (tx, frames) = mpsc::channel::<DisplayFrame>();
    let rx = Receiver::start(
        ReceiverConfig::default(),
        Remote::Listen,
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("receiver");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], rx.local_addr().port()));
    let sender = Sender::start(
        SenderConfig::default().size(w, h).fps(30),
        Remote::Address(addr),
        Some(Box::new(source)),
    )
    .expect("sender");

    let end = Instant::now() + Duration::from_millis(2500);
    let mut shown = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match frames.recv_timeout(left) {
            Ok(f) => shown.push(f),
            Err(_) => break,
        }
    }
    drop(sender);
    drop(rx);
    assert!(
        shown.len() >= 20,
        "only {} frames shown in 2.5 s",
        shown.len()
    );
    let last = &shown[shown.len() - 1];
    let p = psnr(&last.frame, &drawn).expect("same size");
    println!(
        "{} frames shown; the last at {p:.1} dB against the drawn pattern",
        shown.len()
    );
    assert!(
        p >= 30.0,
        "received picture {p:.1} dB against the drawn one"
    );
    let code = last
        .code
        .expect("the drawn pixel code survives capture and coding");
    assert_eq!(code.frame_id, 7);
}

/// The cursor the server shows, as XFIXES reports it: the pointer's position, and the
/// rectangle its image covers (top-left: position minus hotspot; size), in root coordinates.
#[derive(Debug, Clone, Copy)]
struct ShownCursor {
    at: (i32, i32),
    rect: (i32, i32, u32, u32),
    serial: u32,
}

fn shown_cursor(conn: &RustConnection) -> ShownCursor {
    conn.xfixes_query_version(1, 0)
        .expect("request")
        .reply()
        .expect("XFIXES");
    let c = conn
        .xfixes_get_cursor_image()
        .expect("request")
        .reply()
        .expect("a cursor is shown");
    let opaque = c.cursor_image.iter().filter(|&&p| p >> 24 != 0).count();
    println!(
        "cursor shown: {}×{}, hotspot ({}, {}), at ({}, {}), serial {}, {opaque} pixels not \
         transparent",
        c.width, c.height, c.xhot, c.yhot, c.x, c.y, c.cursor_serial
    );
    assert!(opaque > 0, "the server's cursor is blank");
    let (x, y) = (i32::from(c.x), i32::from(c.y));
    ShownCursor {
        at: (x, y),
        rect: (
            x - i32::from(c.xhot),
            y - i32::from(c.yhot),
            u32::from(c.width),
            u32::from(c.height),
        ),
        serial: c.cursor_serial,
    }
}

/// Moves the pointer to `(x, y)` of the root, and waits until the server has.
fn warp(conn: &RustConnection, root: Window, x: i16, y: i16) {
    conn.warp_pointer(x11rb::NONE, root, 0, 0, 0, 0, x, y)
        .expect("request");
    conn.get_input_focus()
        .expect("request")
        .reply()
        .expect("sync");
}

/// The picture of one flat BGRX colour, as the capture converts it.
fn flat_frame(w: u32, h: u32, bgrx: [u8; 4]) -> Frame {
    bgrx_to_i420(&bgrx.repeat(w as usize * h as usize), w as usize * 4, w, h).expect("converts")
}

/// Checks that `got` equals `flat` outside `rect` (x, y, width, height, in picture
/// coordinates; chroma samples whose 2×2 pixels touch it excepted) and differs from it
/// somewhere inside (luma, the part of `rect` in the picture).
fn assert_differs_only_in(got: &Frame, flat: &Frame, rect: (i32, i32, u32, u32), what: &str) {
    let (rx, ry, rw, rh) = rect;
    let inside = |x: i32, y: i32, size: i32| {
        x + size > rx && x < rx + rw as i32 && y + size > ry && y < ry + rh as i32
    };
    let mut differing = 0;
    for (plane, size) in [(PlaneIndex::Y, 1), (PlaneIndex::U, 2), (PlaneIndex::V, 2)] {
        for y in 0..flat.plane_size(plane).1 {
            let rows = got.row(plane, y).iter().zip(flat.row(plane, y));
            for (x, (a, b)) in rows.enumerate() {
                let (px, py) = (x as i32 * size, y as i32 * size);
                if inside(px, py, size) {
                    differing += usize::from(plane == PlaneIndex::Y && a != b);
                } else {
                    assert_eq!(
                        a, b,
                        "{what}: {plane:?} ({x}, {y}) outside the cursor at {rect:?}"
                    );
                }
            }
        }
    }
    println!("{what}: {differing} luma samples differ, all inside the cursor at {rect:?}");
    assert!(differing > 0, "{what}: no pointer drawn at {rect:?}");
}

fn open_screen(x: &Xvfb, window: Option<Window>, shm: bool, cursor: bool) -> ScreenSource {
    let s = ScreenSource::open(&ScreenConfig {
        display: Some(x.display().to_owned()),
        window,
        shm,
        cursor,
        ..ScreenConfig::default()
    })
    .expect("opens");
    if cursor {
        assert_eq!(s.cursor_reason(), None, "Xvfb has XFIXES");
    } else {
        let why = s.cursor_reason().expect("a reason");
        assert!(why.contains("turned off"), "{why}");
    }
    s
}

#[test]
fn the_pointer_is_drawn_where_it_is_on_the_screen_and_left_out_when_off() {
    let Some(x) = start_xvfb(320, 240) else {
        return;
    };
    let (conn, root) = connect(&x);
    let colour = [60, 140, 90, 0];
    fill(&conn, root, 0, 0, 320, 240, colour);
    let flat = flat_frame(320, 240, colour);

    // Inside, across a band edge (MIT-SHM reads 240 rows as bands of 30), and clipped at the
    // top-left and bottom-right corners.
    for (px, py, shm) in [
        (100, 95, true),
        (100, 95, false),
        (1, 1, true),
        (319, 239, true),
        (318, 238, false),
    ] {
        warp(&conn, root, px, py);
        let shown = shown_cursor(&conn);
        assert_eq!(shown.at, (i32::from(px), i32::from(py)), "warped");
        let what = format!("screen, pointer at ({px}, {py}), MIT-SHM {shm}");
        let mut on = open_screen(&x, None, shm, true);
        assert_differs_only_in(&capture(&mut on, 1), &flat, shown.rect, &what);
        let mut off = open_screen(&x, None, shm, false);
        assert!(
            capture(&mut off, 2).same_picture(&flat),
            "{what}: without the pointer the picture is the flat colour"
        );
    }

    // A new cursor on the root: the source is told (XFIXES CursorNotify) and fetches the
    // new image. Its event comes in before the replies to the next capture's requests, so
    // the capture after that draws it.
    warp(&conn, root, 150, 120);
    let mut s = open_screen(&x, None, true, true);
    let before = shown_cursor(&conn);
    assert_differs_only_in(&capture(&mut s, 3), &flat, before.rect, "the first cursor");
    let font = conn.generate_id().expect("id");
    conn.open_font(font, b"cursor")
        .expect("request")
        .check()
        .expect("the cursor font");
    let arrow = conn.generate_id().expect("id");
    // Glyph 68 of the cursor font is `left_ptr` (69 its mask): white on black.
    conn.create_glyph_cursor(arrow, font, font, 68, 69, 0, 0, 0, !0, !0, !0)
        .expect("request")
        .check()
        .expect("cursor");
    conn.change_window_attributes(root, &ChangeWindowAttributesAux::new().cursor(arrow))
        .expect("request")
        .check()
        .expect("root cursor set");
    let after = shown_cursor(&conn);
    assert_ne!(after.serial, before.serial, "another cursor is shown");
    let _ = capture(&mut s, 4);
    assert_differs_only_in(&capture(&mut s, 5), &flat, after.rect, "the new cursor");
}

#[test]
fn the_pointer_is_drawn_in_a_window_where_it_is_over_it() {
    let Some(x) = start_xvfb(400, 300) else {
        return;
    };
    let (conn, root) = connect(&x);
    fill(&conn, root, 0, 0, 400, 300, [0, 0, 200, 0]);
    // 160×120 at (90, 70).
    let win = conn.generate_id().expect("id");
    conn.create_window(
        24,
        win,
        root,
        90,
        70,
        160,
        120,
        0,
        WindowClass::INPUT_OUTPUT,
        x11rb::COPY_FROM_PARENT,
        &CreateWindowAux::new(),
    )
    .expect("request")
    .check()
    .expect("window");
    conn.map_window(win)
        .expect("request")
        .check()
        .expect("mapped");
    let colour = [180, 60, 30, 0];
    fill(&conn, win, 0, 0, 160, 120, colour);
    let flat = flat_frame(160, 120, colour);

    // Over the window, over its top-left corner (clipped), and outside it (nothing drawn).
    for (px, py) in [(160, 120), (91, 71), (20, 20)] {
        warp(&conn, root, px, py);
        let shown = shown_cursor(&conn);
        let (rx, ry, rw, rh) = shown.rect;
        let rect = (rx - 90, ry - 70, rw, rh);
        let what = format!("window, pointer at ({px}, {py}) of the root");
        let mut on = open_screen(&x, Some(win), true, true);
        let got = capture(&mut on, 1);
        if rect.0 + rw as i32 <= 0 || rect.1 + rh as i32 <= 0 {
            assert!(
                got.same_picture(&flat),
                "{what}: the pointer is not over it"
            );
        } else {
            assert_differs_only_in(&got, &flat, rect, &what);
        }
        let mut off = open_screen(&x, Some(win), true, false);
        assert!(
            capture(&mut off, 2).same_picture(&flat),
            "{what}: without the pointer the picture is the flat colour"
        );
    }
}
