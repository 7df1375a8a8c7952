//! The screen source against a real X server: each test starts its own Xvfb (skipping, with
//! the reason printed, where the binary is missing), draws the engine's test pattern on it
//! with PutImage, and checks what `ScreenSource` captures against the drawn picture: the
//! whole screen with MIT-SHM and with plain GetImage, one window by id (odd-sized, so the
//! crop to even shows), and the screen streamed through a real sender and receiver on
//! loopback.

#![cfg(target_os = "linux")]

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem::sink::FnSink;
use tandem::{DisplayFrame, Receiver, ReceiverConfig, Remote, Sender, SenderConfig, VideoSource};
use tandem_capture::screen::xvfb::{self, Xvfb};
use tandem_capture::screen::{ScreenConfig, ScreenSource};
use tandem_codec::{Frame, PlaneIndex, TestPattern, pixelcode, psnr};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, CreateWindowAux, Window, WindowClass};
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
