//! The receiver's video window: shows the newest decoded picture, scaled to the window with
//! its aspect kept, and live figures (frame id, glass-to-glass latency, frames shown per
//! second, frames the window never got to) in the title bar.
//!
//! Two halves meet in a one-frame mailbox:
//!
//! * [`WindowSink`] runs on the engine's decoder thread. It only posts the picture (a
//!   `try_send`, replacing a picture the window has not taken yet), so a slow window, a
//!   window being dragged, or a display server that stalls never delays decoding.
//! * [`run`] runs on the main thread (macOS requires windows there), takes the newest
//!   picture, converts it from I420 to XRGB and hands it to [`minifb`], which scales it.
//!
//! The window shows the newest picture and never queues: in the latency playout policy a
//! picture that is already old when the window could paint it is worth nothing, and showing
//! it would only delay the next one.
//!
//! `minifb` opens a Wayland or an X11 window, loading the client libraries with `dlopen` at
//! run time; building needs no system packages, and a host without a display fails in
//! [`run`] with an error that points to `--headless`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use minifb::{Key, ScaleMode, Window, WindowOptions};
use tandem::sink::FrameSink;
use tandem::{DisplayFrame, Frame};
use tandem_codec::PlaneIndex;

/// Pictures posted to the mailbox that a newer one replaced before the window took them.
/// Process-wide because the app has one window; [`run`] shows it in the title.
static REPLACED: AtomicU64 = AtomicU64::new(0);

/// The window's size before the first picture tells the video's (the default sender size).
const INITIAL_SIZE: (usize, usize) = (640, 360);
/// The largest window opened for a picture; larger video is scaled down to fit.
const MAX_SIZE: (usize, usize) = (1920, 1080);
/// The narrowest window opened for a picture; smaller video is scaled up by whole factors.
const MIN_WIDTH: usize = 480;
/// How long the window waits for a picture before it polls its events again: keyboard,
/// close button and `stop` are noticed within this.
const POLL: Duration = Duration::from_millis(10);
/// How often the title's figures are refreshed (each refresh is a request to the
/// display server; a few a second is readable and costs nothing).
const TITLE_EVERY: Duration = Duration::from_millis(250);
/// How often the last picture is painted again while no new one comes.
const REPAINT: Duration = Duration::from_millis(100);

/// The sink half: posts each picture into the window's one-frame mailbox.
#[derive(Debug)]
pub struct WindowSink {
    mailbox: Sender<DisplayFrame>,
    /// The sink's own handle on the mailbox, to take out a picture the window has not
    /// taken yet so the newer one can go in.
    stale: Receiver<DisplayFrame>,
}

impl FrameSink for WindowSink {
    fn on_frame(&mut self, frame: DisplayFrame) {
        let mut frame = frame;
        // The sink is the mailbox's only sender, so once a stale picture is out (by us or by
        // the window) the second try finds room; the bound only guards that reasoning.
        for _ in 0..2 {
            match self.mailbox.try_send(frame) {
                Ok(()) => return,
                Err(TrySendError::Full(f)) => {
                    if self.stale.try_recv().is_ok() {
                        REPLACED.fetch_add(1, Ordering::Relaxed);
                    }
                    frame = f;
                }
                // Cannot happen while `stale` lives; nothing to show it to in any case.
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }
}

/// A sink and the pictures it posts (a mailbox of one: the newest picture only).
pub fn channel() -> (WindowSink, Receiver<DisplayFrame>) {
    let (mailbox, frames) = crossbeam_channel::bounded(1);
    let sink = WindowSink {
        mailbox,
        stale: frames.clone(),
    };
    (sink, frames)
}

/// Shows `frames` in a window titled `title` until the window is closed (close button or
/// Escape) or `stop` becomes true. Call it on the main thread.
///
/// The window opens at once (so a missing display is reported before any video arrives)
/// and, when the first picture comes, is opened again at the picture's own size if that
/// differs; later size changes are scaled into the window as it is.
pub fn run(frames: &Receiver<DisplayFrame>, title: &str, stop: &AtomicBool) -> Result<()> {
    let mut window = open(&format!("{title} — waiting for video"), INITIAL_SIZE)?;
    // The picture on screen, as XRGB, and its size (0 × 0 until the first).
    let mut pixels = Vec::new();
    let mut size = (0, 0);
    let mut painted = Instant::now();
    let mut meter = Meter::default();
    loop {
        if stop.load(Ordering::Relaxed) || !window.is_open() || window.is_key_down(Key::Escape) {
            return Ok(());
        }
        let frame = match frames.recv_timeout(POLL) {
            Ok(f) => f,
            Err(e) => {
                if e == RecvTimeoutError::Disconnected {
                    // The receiver is gone: keep the last picture up until closed or
                    // stopped, without spinning on the closed mailbox.
                    std::thread::sleep(POLL);
                }
                // While the video pauses, paint the last picture again now and then: the
                // backends keep no copy to repaint a window uncovered or resized with.
                if size != (0, 0) && painted.elapsed() >= REPAINT {
                    paint(&mut window, &pixels, size)?;
                    painted = Instant::now();
                } else {
                    window.update();
                }
                continue;
            }
        };
        let picture = (frame.frame.width() as usize, frame.frame.height() as usize);
        if size == (0, 0) {
            let wanted = window_size(picture.0, picture.1);
            if wanted != window.get_size() {
                window = open(title, wanted)?;
            }
        }
        size = picture;
        to_xrgb(&frame.frame, &mut pixels);
        paint(&mut window, &pixels, size)?;
        painted = Instant::now();
        if let Some(line) = meter.shown(painted, &frame, REPLACED.load(Ordering::Relaxed)) {
            window.set_title(&format!("{title} — {line}"));
        }
    }
}

/// Shows `pixels` (`width × height` XRGB) scaled into the window, and polls its events.
fn paint(window: &mut Window, pixels: &[u32], (width, height): (usize, usize)) -> Result<()> {
    window
        .update_with_buffer(pixels, width, height)
        .map_err(|e| anyhow!("showing a {width}×{height} picture: {e}"))
}

/// Converts an I420 picture to packed `0RGB` words into `out` (replacing its contents): the
/// conversion of [`tandem::Frame::to_xrgb`] (BT.601 limited range, nearest-neighbour
/// chroma) with the same integer arithmetic, so the same colours, but written straight into
/// a buffer the window reuses, each chroma row's terms computed once per two luma rows, and
/// in straight loops the compiler can vectorise. Measured on this project's 2-core machine
/// (release, default target): about 4.7 ms a 1080p picture against `to_xrgb`'s 10.6 ms
/// (which goes through an RGB byte vector first), on the window's thread, which a 60 fps
/// stream gives 16.7 ms a picture.
fn to_xrgb(frame: &Frame, out: &mut Vec<u32>) {
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    out.clear();
    out.resize(width * height, 0);
    // Per output column: the red, green and blue terms of its chroma sample.
    let mut chroma = vec![[0i32; 3]; width];
    for (y, row) in out.chunks_exact_mut(width.max(1)).enumerate() {
        if y % 2 == 0 {
            let (u, v) = (
                frame.row(PlaneIndex::U, y / 2),
                frame.row(PlaneIndex::V, y / 2),
            );
            for (x, terms) in chroma.iter_mut().enumerate() {
                let (d, e) = (i32::from(u[x / 2]) - 128, i32::from(v[x / 2]) - 128);
                *terms = [409 * e + 128, -100 * d - 208 * e + 128, 516 * d + 128];
            }
        }
        let luma = frame.row(PlaneIndex::Y, y);
        for ((px, &l), &[r, g, b]) in row.iter_mut().zip(luma).zip(&chroma) {
            let c = 298 * (i32::from(l) - 16);
            let level = |term: i32| ((c + term) >> 8).clamp(0, 255) as u32;
            *px = level(r) << 16 | level(g) << 8 | level(b);
        }
    }
}

/// Opens a resizable window whose contents keep the picture's aspect.
fn open(title: &str, (width, height): (usize, usize)) -> Result<Window> {
    let options = WindowOptions {
        resize: true,
        scale_mode: ScaleMode::AspectRatioStretch,
        ..WindowOptions::default()
    };
    let mut window = Window::new(title, width, height, options).map_err(|e| {
        anyhow!(
            "cannot open a window ({}): {e} (use --headless)",
            display_names()
        )
    })?;
    // The loop paces itself on the mailbox; minifb's own frame limiter would only add
    // sleeps between a picture arriving and it being shown.
    window.set_target_fps(0);
    Ok(window)
}

/// The display the window tried, for the error message.
fn display_names() -> String {
    let var =
        |name: &str| std::env::var_os(name).map(|v| format!("{name}={}", v.to_string_lossy()));
    let names: Vec<String> = ["WAYLAND_DISPLAY", "DISPLAY"]
        .into_iter()
        .filter_map(var)
        .collect();
    if names.is_empty() {
        "neither DISPLAY nor WAYLAND_DISPLAY is set".into()
    } else {
        names.join(", ")
    }
}

/// The window size for a `width × height` picture: its own size (1:1 pixels are sharpest
/// and cheapest to scale), shrunk to fit [`MAX_SIZE`] or grown by a whole factor to reach
/// [`MIN_WIDTH`], aspect kept.
fn window_size(width: usize, height: usize) -> (usize, usize) {
    let (width, height) = (width.max(1), height.max(1));
    let (max_w, max_h) = MAX_SIZE;
    if width > max_w || height > max_h {
        // Whichever side is tighter decides; the other follows, rounded, at least 1.
        if width * max_h > height * max_w {
            (max_w, (height * max_w / width).max(1))
        } else {
            ((width * max_h / height).max(1), max_h)
        }
    } else {
        let factor = MIN_WIDTH.div_ceil(width).max(1);
        let factor = factor.min(max_w / width).min(max_h / height).max(1);
        (width * factor, height * factor)
    }
}

/// The title's live figures: counts pictures shown and says what to show, at the first
/// picture and then at most every [`TITLE_EVERY`].
#[derive(Debug, Default)]
struct Meter {
    /// Start of the current count; `None` until the first picture.
    since: Option<Instant>,
    shown: u32,
}

impl Meter {
    /// Counts one picture shown at `now`; returns the title's figures when due.
    fn shown(&mut self, now: Instant, frame: &DisplayFrame, replaced: u64) -> Option<String> {
        let Some(since) = self.since else {
            // No rate yet: the time before the first picture was waiting, not showing.
            self.since = Some(now);
            return Some(figures(frame, None, replaced));
        };
        self.shown += 1;
        let elapsed = now.saturating_duration_since(since);
        if elapsed < TITLE_EVERY {
            return None;
        }
        let fps = f64::from(self.shown) / elapsed.as_secs_f64();
        self.since = Some(now);
        self.shown = 0;
        Some(figures(frame, Some(fps), replaced))
    }
}

/// `frame 1234 · g2g 38 ms · 60 fps · 2 replaced` (`–` for what is not known).
fn figures(frame: &DisplayFrame, fps: Option<f64>, replaced: u64) -> String {
    let g2g = frame.g2g.map_or_else(
        || "–".to_owned(),
        |d| format!("{:.0} ms", d.as_secs_f64() * 1e3),
    );
    let fps = fps.map_or_else(|| "–".to_owned(), |f| format!("{f:.0}"));
    format!(
        "frame {} · g2g {g2g} · {fps} fps · {replaced} replaced",
        frame.frame.id
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(id: u32) -> DisplayFrame {
        let now = Instant::now();
        DisplayFrame {
            frame: Frame::black(16, 16).with_meta(id, 0),
            keyframe: false,
            capture_us: 0,
            completed_at: now,
            released_at: now,
            decoded_at: now,
            code: None,
            g2g: Some(Duration::from_micros(37_600)),
        }
    }

    #[test]
    fn the_mailbox_holds_the_newest_picture_and_counts_the_ones_it_replaced() {
        let (mut sink, frames) = channel();
        let before = REPLACED.load(Ordering::Relaxed);
        for id in 1..=3 {
            sink.on_frame(picture(id));
        }
        assert_eq!(REPLACED.load(Ordering::Relaxed) - before, 2);
        assert_eq!(frames.try_recv().expect("a picture").frame.id, 3);
        assert!(frames.try_recv().is_err(), "one picture at most");
        sink.on_frame(picture(4));
        assert_eq!(frames.try_recv().expect("the next").frame.id, 4);
        assert_eq!(REPLACED.load(Ordering::Relaxed) - before, 2);
    }

    #[test]
    fn the_conversion_matches_the_codecs_for_every_level_odd_sizes_and_strides() {
        // Every luma level in each row, against chroma spread over its range, on an odd
        // size (a last column and row with chroma of their own) and padded strides.
        let (w, h) = (257u32, 5u32);
        let (cw, ch) = tandem_codec::frame::chroma_size(w, h);
        let (cw, ch) = (cw as usize, ch as usize);
        let (ys, cs) = (w as usize + 11, cw + 5);
        let plane = |stride: usize, rows: usize, f: fn(usize, usize) -> usize| -> Vec<u8> {
            (0..stride * rows)
                .map(|i| (f(i % stride, i / stride) % 256) as u8)
                .collect()
        };
        let luma = plane(ys, h as usize, |x, y| x * 7 + y * 3);
        let u = plane(cs, ch, |x, y| x * 37 + y * 11);
        let v = plane(cs, ch, |x, y| 255 - (x * 53 + y * 5) % 256);
        let frame = Frame::from_planes(w, h, [luma, u, v], [ys, cs, cs]).expect("a valid picture");
        let mut out = vec![7; 3];
        to_xrgb(&frame, &mut out);
        assert_eq!(out, frame.to_xrgb());
    }

    #[test]
    fn windows_open_at_the_picture_size_within_bounds_aspect_kept() {
        assert_eq!(window_size(640, 360), (640, 360));
        assert_eq!(window_size(1920, 1080), (1920, 1080));
        assert_eq!(window_size(3840, 2160), (1920, 1080));
        assert_eq!(window_size(1080, 1920), (607, 1080));
        assert_eq!(window_size(4000, 1000), (1920, 480));
        assert_eq!(window_size(320, 180), (640, 360));
        assert_eq!(window_size(160, 90), (480, 270));
        assert_eq!(window_size(0, 0), (480, 480));
    }

    #[test]
    fn the_title_says_frame_latency_and_rate() {
        let mut frame = picture(1234);
        assert_eq!(
            figures(&frame, Some(59.7), 2),
            "frame 1234 · g2g 38 ms · 60 fps · 2 replaced"
        );
        frame.g2g = None;
        assert_eq!(
            figures(&frame, None, 0),
            "frame 1234 · g2g – · – fps · 0 replaced"
        );
        let start = Instant::now();
        let mut meter = Meter::default();
        let first = meter.shown(start, &frame, 0).expect("the first is due");
        assert!(first.contains("– fps"), "{first}");
        assert!(meter.shown(start + TITLE_EVERY / 2, &frame, 0).is_none());
        let line = meter.shown(start + TITLE_EVERY, &frame, 0).expect("due");
        assert!(line.contains(" 8 fps"), "{line}");
    }
}
