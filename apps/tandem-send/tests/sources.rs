//! `tandem-send --source …` from the outside. `-`: Y4M written to the app's standard input
//! by another program reaches a receiver, the app ends when the pipe closes, and a truncated
//! stream ends it with an error naming the frame and its byte offset. `camera` and `screen`
//! that cannot be opened end it at once with a message naming what is missing. (The screen
//! streaming under Xvfb and the camera's conversions are tested in `tandem-capture`.)

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use tandem::sink::FnSink;
use tandem::{DisplayFrame, Receiver, ReceiverConfig, Remote};
use tandem_codec::{Frame, TestPattern, Y4mWriter};

const SEND: &str = env!("CARGO_BIN_EXE_tandem-send");
const W: u32 = 320;
const H: u32 = 240;
const FPS: u32 = 30;

fn header() -> Vec<u8> {
    let mut header = Vec::new();
    drop(Y4mWriter::new(&mut header, W, H, FPS, 1).expect("header"));
    header
}

/// One picture's Y4M bytes (its `FRAME` line and samples).
fn y4m_picture(frame: &Frame) -> Vec<u8> {
    let mut all = Vec::new();
    let mut w = Y4mWriter::new(&mut all, W, H, FPS, 1).expect("writer");
    w.write_frame(frame).expect("frame");
    drop(w);
    all.split_off(header().len())
}

fn sender(peer: SocketAddr) -> std::process::Child {
    Command::new(SEND)
        .args(["--insecure", "--source", "-", "--json-stats", "--peer"])
        .arg(peer.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tandem-send starts")
}

#[test]
fn y4m_on_standard_input_reaches_the_receiver_and_the_app_ends_with_the_pipe() {
    let (tx, shown) = unbounded::<DisplayFrame>();
    let rx = Receiver::start(
        ReceiverConfig::default(),
        Remote::Listen,
        Box::new(FnSink(move |f| {
            let _ = tx.send(f);
        })),
    )
    .expect("receiver");
    let peer = SocketAddr::from(([127, 0, 0, 1], rx.local_addr().port()));
    let mut app = sender(peer);
    let mut stdin = app.stdin.take().expect("stdin");
    stdin.write_all(&header()).expect("header");
    // A writer at the header's rate, as `ffmpeg -re` or a camera would be, stamping each
    // picture's pixel code as it starts writing it: glass to glass then covers the pipe.
    let mut pattern = TestPattern::new(W, H, FPS, 1).expect("pattern");
    let mut written = Vec::new();
    let start = Instant::now();
    for i in 0..90 {
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(FPS));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let frame = pattern.next_frame_at(tandem::stats::wall_us());
        stdin.write_all(&y4m_picture(&frame)).expect("picture");
        written.push(frame);
    }
    drop(stdin);
    let out = app.wait_with_output().expect("the app ends with its input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("standard input: 320x240 at 30.00 fps"),
        "{stderr}"
    );
    let shown: Vec<DisplayFrame> = shown.try_iter().collect();
    let codes: Vec<u32> = shown
        .iter()
        .filter_map(|f| f.code.map(|c| c.frame_id))
        .collect();
    // The session's first picture waits for the handshake; from then on every one comes.
    assert!(codes.len() >= 75, "{} of 90 shown: {codes:?}", codes.len());
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "in order: {codes:?}");
    assert_eq!(
        codes.last(),
        Some(&89),
        "the last picture is shown: {codes:?}"
    );
    // The stats say the source's own rate: the writer's 30 a second.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rates: Vec<f64> = stdout
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["source_fps"].as_f64()
        })
        .collect();
    // Glass to glass from the writer's stamp, beside the bitrate and the picture quality.
    let mut g2g: Vec<f64> = shown
        .iter()
        .filter_map(|f| f.g2g.map(|d| d.as_secs_f64() * 1e3))
        .collect();
    g2g.sort_by(f64::total_cmp);
    let mut psnr: Vec<f64> = shown
        .iter()
        .filter_map(|f| {
            let id = f.code?.frame_id as usize;
            tandem_codec::psnr(&f.frame, written.get(id)?).ok()
        })
        .collect();
    psnr.sort_by(f64::total_cmp);
    let kbps: Vec<f64> = stdout
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            v["bitrate_kbps"].as_f64()
        })
        .collect();
    println!(
        "stdin {W}x{H}@{FPS}: {} of 90 shown, g2g p50 {:.1} ms (pipe, encode, loopback, \
         decode), sent {kbps:.0?} kbit/s per second, PSNR p50 {:.2} dB min {:.2} dB, \
         source_fps per second {rates:.1?}",
        codes.len(),
        g2g[g2g.len() / 2],
        psnr[psnr.len() / 2],
        psnr[0]
    );
    assert!(psnr[0] > 30.0, "every picture comes as drawn: {psnr:?}");
    assert!(
        rates.iter().any(|&r| (25.0..=35.0).contains(&r)),
        "source_fps near 30 in {rates:?}"
    );
}

#[test]
fn a_truncated_stream_ends_the_app_naming_the_frame_and_its_byte_offset() {
    // Nobody listens: the stream's fault ends the app all the same.
    let mut app = sender("127.0.0.1:9".parse().expect("addr"));
    let header = header();
    let mut pattern = TestPattern::new(W, H, FPS, 1).expect("pattern");
    let pictures: Vec<Vec<u8>> = (0..3)
        .map(|_| y4m_picture(&pattern.next_frame_at(0)))
        .collect();
    let mut stdin = app.stdin.take().expect("stdin");
    stdin.write_all(&header).expect("header");
    stdin.write_all(&pictures[0]).expect("picture");
    stdin.write_all(&pictures[1]).expect("picture");
    stdin.write_all(&pictures[2][..1000]).expect("part");
    drop(stdin);
    let out = app.wait_with_output().expect("ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let start = header.len() + 2 * pictures[0].len();
    assert!(
        stderr.contains(&format!("truncated frame 2 at byte {start}"))
            && stderr.contains(&format!("ends at byte {}", start + 1000)),
        "{stderr}"
    );
}

/// Runs the app with `args` (and `env`), expecting it to fail at once; its stderr.
fn refused(args: &[&str], env: &[(&str, Option<&str>)]) -> String {
    let mut cmd = Command::new(SEND);
    cmd.args(["--insecure", "--peer", "127.0.0.1:9"]).args(args);
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd.output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn a_camera_or_screen_that_is_not_there_is_named_in_the_error() {
    let e = refused(&["--source", "camera:/dev/video99"], &[]);
    assert!(
        e.contains("--source camera:/dev/video99") && e.contains("no camera at /dev/video99"),
        "{e}"
    );
    let e = refused(&["--source", "camera:/dev/null"], &[]);
    assert!(
        e.contains("/dev/null") && e.contains("not a V4L2 device"),
        "{e}"
    );
    let no_x = [
        ("DISPLAY", None),
        ("WAYLAND_DISPLAY", None),
        ("XDG_SESSION_TYPE", None),
    ];
    let e = refused(&["--source", "screen"], &no_x);
    assert!(
        e.contains("DISPLAY is not set") && e.contains("screen:"),
        "{e}"
    );
    let wayland = [
        ("DISPLAY", Some(":0")),
        ("WAYLAND_DISPLAY", Some("wayland-0")),
        ("XDG_SESSION_TYPE", Some("wayland")),
    ];
    let e = refused(&["--source", "screen"], &wayland);
    assert!(
        e.contains("Wayland session is not supported") && e.contains("--source -"),
        "{e}"
    );
    // A display named that nobody serves (display numbers this high are never used).
    let e = refused(&["--source", "screen:4093"], &wayland);
    assert!(e.contains(":4093"), "{e}");
}
