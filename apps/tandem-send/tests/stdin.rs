//! `tandem-send --source -`: Y4M written to the app's standard input by another program
//! reaches a receiver, the app ends when the pipe closes, and a truncated stream ends it
//! with an error naming the frame and its byte offset.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::unbounded;
use tandem::sink::FnSink;
use tandem::{DisplayFrame, Receiver, ReceiverConfig, Remote};
use tandem_codec::{TestPattern, Y4mWriter};

const SEND: &str = env!("CARGO_BIN_EXE_tandem-send");
const W: u32 = 320;
const H: u32 = 240;
const FPS: u32 = 30;

/// The Y4M header's bytes and each picture's, the test pattern with its pixel code.
fn y4m(frames: u32) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut header = Vec::new();
    drop(Y4mWriter::new(&mut header, W, H, FPS, 1).expect("header"));
    let mut pattern = TestPattern::new(W, H, FPS, 1).expect("pattern");
    let pictures = (0..frames)
        .map(|_| {
            let mut all = Vec::new();
            let mut w = Y4mWriter::new(&mut all, W, H, FPS, 1).expect("writer");
            w.write_frame(&pattern.next_frame_at(0)).expect("frame");
            drop(w);
            all.split_off(header.len())
        })
        .collect();
    (header, pictures)
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
    let (header, pictures) = y4m(90);
    let mut stdin = app.stdin.take().expect("stdin");
    stdin.write_all(&header).expect("header");
    // A writer at the header's rate, as `ffmpeg -re` or a camera would be.
    let start = Instant::now();
    for (i, p) in pictures.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(FPS));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        stdin.write_all(p).expect("picture");
    }
    drop(stdin);
    let out = app.wait_with_output().expect("the app ends with its input");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("standard input: 320x240 at 30.00 fps"),
        "{stderr}"
    );
    let codes: Vec<u32> = shown
        .try_iter()
        .filter_map(|f| tandem_codec::pixelcode::read(&f.frame).map(|c| c.frame_id))
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
    println!("source_fps per second: {rates:?}; {} shown", codes.len());
    assert!(
        rates.iter().any(|&r| (25.0..=35.0).contains(&r)),
        "source_fps near 30 in {rates:?}"
    );
}

#[test]
fn a_truncated_stream_ends_the_app_naming_the_frame_and_its_byte_offset() {
    // Nobody listens: the stream's fault ends the app all the same.
    let mut app = sender("127.0.0.1:9".parse().expect("addr"));
    let (header, pictures) = y4m(3);
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
