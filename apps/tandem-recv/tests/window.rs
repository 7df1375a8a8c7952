//! The receiver's window, for real: `tandem-recv` under a virtual X server (Xvfb) showing
//! the test pattern that an in-process sender streams to it over loopback. Screenshots of
//! the X root window (`xwd`, parsed here) must show the video at its own size, with the
//! pattern's pixel code legible and advancing, and the process must exit 0 after
//! `--seconds`. The last screenshot is kept as `target/tandem-recv-window.png` for a person
//! to look at.
//!
//! Skips, with a printed reason, where Xvfb or xwd is missing (`cargo xtask setup` installs
//! both). A second test checks the error a receiver gives when no display can be opened;
//! it needs no X server.
//!
//! The Xvfb is `tandem_capture::screen::xvfb`'s, built on Linux only; elsewhere the window
//! test skips, saying so.

#![cfg_attr(not(target_os = "linux"), allow(dead_code, unused_imports))]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tandem::{Frame, Remote, Sender, SenderConfig, TestPatternSource};
#[cfg(target_os = "linux")]
use tandem_capture::screen::xvfb::Xvfb;
use tandem_codec::pixelcode::{self, PixelCode};

const RECV: &str = env!("CARGO_BIN_EXE_tandem-recv");
const SCREEN: (usize, usize) = (1280, 720);
const VIDEO: (u32, u32) = (640, 360);
const FPS: u32 = 30;

/// Whether `program` is an executable file on `PATH`.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// `target/` (of whatever target dir this build uses).
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the tmp dir is inside target/")
        .to_path_buf()
}

/// A child process killed when dropped, so a failing assertion leaves nothing running.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `width × height` picture, packed 8-bit RGB.
struct Rgb {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Rgb {
    fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    fn crop(&self, x0: usize, y0: usize, width: usize, height: usize) -> Rgb {
        let mut data = Vec::with_capacity(width * height * 3);
        for y in y0..y0 + height {
            let start = (y * self.width + x0) * 3;
            data.extend_from_slice(&self.data[start..start + width * 3]);
        }
        Rgb {
            width,
            height,
            data,
        }
    }

    fn save_png(&self, path: &Path) {
        let file = std::fs::File::create(path).expect("creating the PNG");
        let mut encoder = png::Encoder::new(
            std::io::BufWriter::new(file),
            self.width as u32,
            self.height as u32,
        );
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().expect("PNG header");
        writer.write_image_data(&self.data).expect("PNG data");
    }
}

/// Parses an XWD dump (X Window Dump, version 7: a header of big-endian 32-bit fields, the
/// window name, the colour map, then the pixels) of a TrueColor or DirectColor Z-pixmap, as
/// `xwd` writes for a 24-bit screen.
fn parse_xwd(bytes: &[u8]) -> Result<Rgb, String> {
    let field = |i: usize| {
        bytes
            .get(i * 4..i * 4 + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("XWD header cut short at field {i}"))
    };
    let header_size = field(0)? as usize;
    let (version, format) = (field(1)?, field(2)?);
    if version != 7 || format != 2 {
        return Err(format!(
            "XWD version {version}, format {format}: want 7, Z-pixmap (2)"
        ));
    }
    let (width, height) = (field(4)? as usize, field(5)? as usize);
    let lsb_first = field(7)? == 0;
    let bits_per_pixel = field(11)? as usize;
    let bytes_per_line = field(12)? as usize;
    let visual_class = field(13)?;
    let masks = [field(14)?, field(15)?, field(16)?];
    let colours = field(19)? as usize;
    if !(visual_class == 4 || visual_class == 5) || !(bits_per_pixel == 24 || bits_per_pixel == 32)
    {
        return Err(format!(
            "XWD visual class {visual_class} at {bits_per_pixel} bits per pixel: want \
             TrueColor/DirectColor at 24 or 32"
        ));
    }
    if masks.contains(&0) {
        return Err(format!("XWD colour masks {masks:x?}"));
    }
    let step = bits_per_pixel / 8;
    let pixels_at = header_size + colours * 12;
    let pixels = bytes
        .get(pixels_at..pixels_at + bytes_per_line * height)
        .ok_or_else(|| format!("XWD of {width}×{height} cut short"))?;
    if bytes_per_line < width * step {
        return Err(format!(
            "XWD lines of {bytes_per_line} bytes for {width} pixels"
        ));
    }
    let channel = |value: u32, mask: u32| {
        let v = (value & mask) >> mask.trailing_zeros();
        let max = mask >> mask.trailing_zeros();
        (u64::from(v) * 255 / u64::from(max)) as u8
    };
    let mut data = Vec::with_capacity(width * height * 3);
    for line in pixels.chunks_exact(bytes_per_line) {
        for px in line[..width * step].chunks_exact(step) {
            let value = px.iter().enumerate().fold(0u32, |v, (i, &b)| {
                let shift = if lsb_first { i } else { step - 1 - i };
                v | u32::from(b) << (8 * shift)
            });
            data.extend(masks.map(|m| channel(value, m)));
        }
    }
    Ok(Rgb {
        width,
        height,
        data,
    })
}

/// The whole X screen, through `xwd`.
fn screenshot(display: &str) -> Rgb {
    let out = Command::new("xwd")
        .args(["-root", "-silent", "-display", display])
        .output()
        .expect("running xwd");
    assert!(
        out.status.success(),
        "xwd: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_xwd(&out.stdout).expect("xwd's output parses")
}

/// Where the video's top-left corner is on the screen: the first row (top to bottom) with
/// a run of mid-grey as wide as the pixel code's region is the code's quiet border, which
/// the pattern draws at the picture's corner (and neither the black X root nor the
/// pattern's content elsewhere matches: the rows under it must be grey too).
fn find_video(screen: &Rgb) -> Option<(usize, usize)> {
    let (code_w, _) = pixelcode::area(VIDEO.0, VIDEO.1);
    let cell = pixelcode::cell_size(VIDEO.1) as usize;
    let code_w = code_w as usize;
    // The quiet border is luma 126 with neutral chroma: RGB about (128, 128, 128).
    let grey = |[r, g, b]: [u8; 3]| [r, g, b].iter().all(|&c| c.abs_diff(128) <= 16);
    for y in 0..screen.height.saturating_sub(cell) {
        let mut run = 0;
        for x in 0..screen.width {
            run = if grey(screen.pixel(x, y)) { run + 1 } else { 0 };
            if run == code_w {
                let x0 = x + 1 - code_w;
                let block_grey = (y..y + cell)
                    .flat_map(|yy| (x0..x0 + code_w).map(move |xx| (xx, yy)))
                    .filter(|&(xx, yy)| grey(screen.pixel(xx, yy)))
                    .count();
                if block_grey * 100 >= cell * code_w * 95 {
                    return Some((x0, y));
                }
            }
        }
    }
    None
}

/// Standard deviation of luma-like brightness (mean of R, G, B) over a picture.
fn spread(picture: &Rgb) -> f64 {
    let values: Vec<f64> = picture
        .data
        .chunks_exact(3)
        .map(|p| (f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2])) / 3.0)
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64).sqrt()
}

/// What one screenshot shows: where the video is, how varied it is, the code it carries.
struct Seen {
    at: Option<(usize, usize)>,
    spread: f64,
    code: Option<PixelCode>,
}

fn look(screen: &Rgb) -> Seen {
    let Some((x, y)) = find_video(screen) else {
        return Seen {
            at: None,
            spread: 0.0,
            code: None,
        };
    };
    let (w, h) = (VIDEO.0 as usize, VIDEO.1 as usize);
    if x + w > screen.width || y + h > screen.height {
        return Seen {
            at: Some((x, y)),
            spread: 0.0,
            code: None,
        };
    }
    let video = screen.crop(x, y, w, h);
    let code = Frame::from_rgb(VIDEO.0, VIDEO.1, &video.data)
        .ok()
        .and_then(|f| pixelcode::read(&f));
    Seen {
        at: Some((x, y)),
        spread: spread(&video),
        code,
    }
}

/// Reads a child's pipe on a thread, line by line, into the returned text; with `ready`,
/// also sends each line as it comes.
fn drain(
    pipe: impl Read + Send + 'static,
    ready: Option<crossbeam_channel::Sender<String>>,
) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Some(tx) = &ready {
                let _ = tx.send(line.clone());
            }
            all.push_str(&line);
            all.push('\n');
        }
        all
    })
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Waits for the child to exit, up to `within`.
fn wait(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

#[cfg(not(target_os = "linux"))]
#[test]
fn the_window_shows_the_live_video_at_its_own_size() {
    println!("skipped: the Xvfb guard (tandem_capture::screen::xvfb) is built on Linux only");
}

#[cfg(target_os = "linux")]
#[test]
fn the_window_shows_the_live_video_at_its_own_size() {
    for (program, package) in [("Xvfb", "xvfb"), ("xwd", "x11-apps")] {
        if !on_path(program) {
            println!("skipped: {program} is not installed (Debian package {package})");
            return;
        }
    }
    let Some(x) = Xvfb::start(SCREEN.0 as u32, SCREEN.1 as u32).expect("starting Xvfb") else {
        println!("skipped: Xvfb is not installed (Debian package xvfb)");
        return;
    };
    let port = free_udp_port();
    let started = Instant::now();
    let mut recv = Guard(
        Command::new(RECV)
            .env("DISPLAY", x.display())
            .env_remove("WAYLAND_DISPLAY")
            // The window is under test, not pairing (the engine's tests cover that).
            .args([
                "--insecure",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--seconds",
                "6",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tandem-recv"),
    );
    let (lines_tx, lines) = crossbeam_channel::unbounded();
    let stderr = drain(recv.0.stderr.take().expect("stderr"), Some(lines_tx));
    let stdout = drain(recv.0.stdout.take().expect("stdout"), None);
    // Send once it listens: frames sent earlier would only be lost (and then repaired by a
    // keyframe request, which is slower).
    let listening = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(10)).ok())
        .any(|l| l.contains("listening on"));
    assert!(listening, "tandem-recv did not start listening");
    let source = TestPatternSource::new(VIDEO.0, VIDEO.1, FPS).expect("pattern");
    let sender = Sender::start(
        SenderConfig::default().size(VIDEO.0, VIDEO.1).fps(FPS),
        Remote::Address(SocketAddr::from(([127, 0, 0, 1], port))),
        Some(Box::new(source)),
    )
    .expect("sender");

    // Look until two different codes have been read (the video is live, not one frozen
    // picture), for as long as the receiver runs.
    let mut codes: Vec<PixelCode> = Vec::new();
    let mut last = None;
    while codes.len() < 2 && started.elapsed() < Duration::from_millis(5500) {
        std::thread::sleep(Duration::from_millis(300));
        let screen = screenshot(x.display());
        let seen = look(&screen);
        if let Some(code) = seen.code
            && codes.last() != Some(&code)
        {
            codes.push(code);
        }
        last = Some((screen, seen));
    }
    let (screen, seen) = last.expect("at least one screenshot");
    let png = target_dir().join("tandem-recv-window.png");
    screen.save_png(&png);
    println!(
        "screenshot {} (video at {:?}, brightness spread {:.1}, codes {:?})",
        png.display(),
        seen.at,
        seen.spread,
        codes
    );

    let status = wait(&mut recv.0, Duration::from_secs(20));
    drop(sender);
    let stderr = stderr.join().unwrap_or_default();
    let stdout = stdout.join().unwrap_or_default();
    let context = format!("stderr:\n{stderr}\nstdout:\n{stdout}");

    // Without a window manager the window sits where the app put it: centred.
    let centred = (
        (SCREEN.0 - VIDEO.0 as usize) / 2,
        (SCREEN.1 - VIDEO.1 as usize) / 2,
    );
    assert_eq!(seen.at, Some(centred), "the video's corner; {context}");
    assert!(
        seen.spread > 20.0,
        "the window shows a near-uniform picture (spread {:.1}); {context}",
        seen.spread
    );
    assert!(
        codes.len() >= 2 && codes[1].frame_id > codes[0].frame_id,
        "the pixel code should be legible and advance at 1:1 scale, read {codes:?}; {context}"
    );
    let status = status.unwrap_or_else(|| panic!("tandem-recv still running; {context}"));
    assert!(status.success(), "tandem-recv exited {status}; {context}");
}

#[test]
fn without_a_display_the_receiver_says_to_use_headless() {
    if !cfg!(target_os = "linux") {
        println!("skipped: the display variables are an X11/Wayland matter");
        return;
    }
    // A display number no server listens on, and no Wayland socket to fall back to.
    let Some(free) = (600..700).find(|n| !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists())
    else {
        println!("skipped: no free X display number in 600..700");
        return;
    };
    let mut child = Guard(
        Command::new(RECV)
            .env("DISPLAY", format!(":{free}"))
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("XDG_RUNTIME_DIR")
            .args(["--insecure", "--listen", "127.0.0.1:0", "--seconds", "5"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting tandem-recv"),
    );
    let stderr = drain(child.0.stderr.take().expect("stderr"), None);
    let status = wait(&mut child.0, Duration::from_secs(10)).expect("tandem-recv exits");
    let stderr = stderr.join().unwrap_or_default();
    assert!(!status.success(), "exit status {status}; stderr:\n{stderr}");
    assert!(
        stderr.contains("cannot open a window") && stderr.contains("--headless"),
        "stderr:\n{stderr}"
    );
}
