//! A V4L2 camera as a [`tandem::VideoSource`] (`tandem-send --source camera[:/dev/videoN]`):
//! [`CameraSource`] opens the device, negotiates a format, size and rate with it, and gives its
//! pictures as I420 at the camera's own pace ([`Pacing::OwnClock`]), each stamped with when
//! the camera finished it.
//!
//! - Negotiation ([`negotiate::choose`]) prefers the asked size, then raw formats (NV12,
//!   YUYV) over MJPEG where they reach the asked rate, and MJPEG where they do not; with
//!   nothing asked, the largest size offered at 30 fps. The device may adjust what it is
//!   given (`S_FMT`, `S_PARM`); [`CameraSource::granted`] says what it granted.
//! - Conversion ([`convert::Converter`]): YUYV, NV12 and MJPEG to limited-range BT.601 I420.
//! - Timing ([`clock`]): the buffer's CLOCK_MONOTONIC timestamp mapped to the wall clock;
//!   [`VideoSource::dropped`] counts the frames the camera numbered but Tandem never got
//!   (gaps in the buffer sequence numbers), which includes the stale ones skipped below.
//!
//! Capture always takes the newest finished buffer: if the capture thread fell behind and
//! several are waiting, the older ones are handed straight back to the driver, because an
//! old picture sent late is worth less than a new one sent now.
//!
//! Buffers come through the `v4l` crate's memory-mapped stream (four buffers). Its
//! `next()` waits with its own poll timeout, but after a timeout it would queue again the
//! buffer it had already queued, which the driver refuses (`EINVAL`), so [`CameraSource`]
//! never lets it time out: [`CameraSource::capture`] polls the device itself, at most
//! [`tandem::MAX_WAIT`], and calls `next()` only once a buffer is ready. The stream is
//! started in [`CameraSource::open`], which waits (at most [`FIRST_FRAME_TIMEOUT`]) for the
//! first picture, so a camera that does not stream fails there with a message rather than
//! leaving the sender waiting.

pub mod clock;
pub mod convert;
pub mod negotiate;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem::{Capture, MAX_WAIT, Pacing, VideoSource};
use tandem_codec::{CodecError, Frame};
use v4l::buffer::{Flags as BufFlags, Type as BufType};
use v4l::capability::Flags as CapFlags;
use v4l::device::Handle;
use v4l::frameinterval::FrameIntervalEnum;
use v4l::framesize::FrameSizeEnum;
use v4l::io::mmap::Stream as MmapStream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture as _;
use v4l::video::capture::Parameters;
use v4l::{Device, Format, FourCC, Fraction};

use self::convert::{Converter, PixelFormat};
use self::negotiate::{FormatOffer, Interval, Rates, Request, SizeOffer};

/// How long [`CameraSource::open`] waits for the camera's first picture. Webcams take a few
/// hundred milliseconds to start streaming (exposure settling); more than this is a camera
/// that will not stream.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);

/// Buffers shared with the driver: one held by Tandem while it converts, the others for the
/// camera to fill meanwhile.
const BUFFERS: u32 = 4;

/// Damaged frames in a row (MJPEG that does not decode, buffers flagged as errors, short
/// buffers) after which the camera is taken to be broken rather than glitching.
const BAD_FRAMES_IN_A_ROW: u32 = 30;

/// Which camera, and what to ask of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraConfig {
    /// The device node. Default `/dev/video0`.
    pub device: PathBuf,
    /// Width and height to ask for. Default `None`: the largest size the camera offers at
    /// 30 fps (see [`negotiate`]).
    pub size: Option<(u32, u32)>,
    /// Frames per second to ask for. Default `None`: 30.
    pub fps: Option<u32>,
}

impl Default for CameraConfig {
    fn default() -> Self {
        CameraConfig {
            device: PathBuf::from("/dev/video0"),
            size: None,
            fps: None,
        }
    }
}

/// What the camera granted, and what was asked; its [`fmt::Display`] is one line for the app
/// to print, such as `MJPEG 1280x720 at 30 fps (asked 1280x720 at 60 fps)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The camera's name as its driver gives it (`VIDIOC_QUERYCAP` card).
    pub card: String,
    /// Pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame rate as numerator and denominator (frames per second).
    pub fps: (u32, u32),
    /// What was asked.
    pub asked: Request,
}

impl fmt::Display for Negotiated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}x{} at {} fps (asked ",
            self.format,
            self.width,
            self.height,
            Rate(self.fps)
        )?;
        match self.asked.size {
            Some((w, h)) => write!(f, "{w}x{h}")?,
            None => f.write_str("the largest size")?,
        }
        match self.asked.fps {
            Some(fps) => write!(f, " at {fps} fps)"),
            None => write!(f, " at {} fps)", negotiate::DEFAULT_FPS),
        }
    }
}

/// A rate shown as a whole number when it is one, else to two decimals (`29.97`).
struct Rate((u32, u32));

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (num, den) = self.0;
        if den != 0 && num.is_multiple_of(den) {
            write!(f, "{}", num / den)
        } else {
            write!(f, "{:.2}", f64::from(num) / f64::from(den.max(1)))
        }
    }
}

/// A V4L2 camera giving I420 pictures at its own pace.
pub struct CameraSource {
    path: PathBuf,
    granted: Negotiated,
    stream: MmapStream<'static>,
    /// The device's handle, shared with `stream`, to poll it while a buffer is borrowed.
    handle: Arc<Handle>,
    converter: Converter,
    /// The picture taken while opening, given by the first capture.
    first: Option<Frame>,
    last_sequence: Option<u32>,
    dropped: u64,
    bad_in_a_row: u32,
    next_id: u32,
}

impl fmt::Debug for CameraSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraSource")
            .field("path", &self.path)
            .field("granted", &self.granted)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// One buffer taken from the stream, as far as capture needs it.
enum Taken {
    Picture(Frame),
    /// Dropped: damaged or undecodable (the reason, for the log and a final error).
    Bad(String),
}

impl CameraSource {
    /// Opens `config.device`, negotiates with it (see [`negotiate`]), starts streaming and
    /// waits for the first picture (at most [`FIRST_FRAME_TIMEOUT`]).
    ///
    /// Fails with [`CodecError::Capture`], naming the device and what to do: a path that
    /// does not exist (listing the `/dev/video*` nodes there are), no permission, a file
    /// that is not a V4L2 device, a node that captures no video (a webcam's metadata node),
    /// a camera offering none of YUYV, NV12 and MJPEG, one in use by another program, one
    /// that does not stream.
    pub fn open(config: &CameraConfig) -> Result<CameraSource, CodecError> {
        let path = config.device.clone();
        let device = Device::with_path(&path).map_err(|e| open_error(&path, &e))?;
        let caps = device.query_caps().map_err(|e| {
            capture_error(format!(
                "{} is not a V4L2 device (VIDIOC_QUERYCAP: {e}); cameras are /dev/video* nodes{}",
                path.display(),
                listing(&video_nodes())
            ))
        })?;
        let name = format!("{} ({})", path.display(), caps.card);
        if !caps.capabilities.contains(CapFlags::VIDEO_CAPTURE)
            || !caps.capabilities.contains(CapFlags::STREAMING)
        {
            return Err(capture_error(format!(
                "{name} does not capture video with streaming I/O (driver {}); try another \
                 node{}",
                caps.driver,
                listing(&video_nodes())
            )));
        }
        let request = Request {
            size: config.size,
            fps: config.fps,
        };
        let offers = offers(&device, &name, request)?;
        let choice = negotiate::choose(&offers, request)
            .ok_or_else(|| capture_error(format!("{name} offers no size")))?;

        let asked = Format::new(
            choice.width,
            choice.height,
            FourCC::new(&choice.format.fourcc()),
        );
        let granted = device
            .set_format(&asked)
            .map_err(|e| device_error(&name, "setting the format (VIDIOC_S_FMT)", &e))?;
        let format = PixelFormat::from_fourcc(granted.fourcc.repr).ok_or_else(|| {
            capture_error(format!(
                "{name} was asked for {} and granted {}, which Tandem does not read",
                choice.format, granted.fourcc
            ))
        })?;
        let fps = set_rate(&device, &name, choice.interval);
        let negotiated = Negotiated {
            card: caps.card.clone(),
            format,
            width: granted.width,
            height: granted.height,
            fps,
            asked: request,
        };
        let converter = Converter::new(
            format,
            granted.width,
            granted.height,
            granted.stride as usize,
        )
        .map_err(|e| capture_error(format!("{name} granted {negotiated}: {e}")))?;

        let mut stream = MmapStream::with_buffers(&device, BufType::VideoCapture, BUFFERS)
            .map_err(|e| device_error(&name, "allocating buffers (VIDIOC_REQBUFS)", &e))?;
        let handle = stream.handle();
        let mut source = CameraSource {
            path,
            granted: negotiated,
            stream: {
                // The first `next()` queues every buffer, starts streaming and waits: the
                // one call allowed to wait in the stream's own poll (see the module docs).
                stream.set_timeout(FIRST_FRAME_TIMEOUT);
                stream
            },
            handle,
            converter,
            first: None,
            last_sequence: None,
            dropped: 0,
            bad_in_a_row: 0,
            next_id: 0,
        };
        match source.take() {
            Ok(Taken::Picture(frame)) => source.first = Some(frame),
            Ok(Taken::Bad(why)) => tracing::debug!(camera = %name, "first frame dropped: {why}"),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                return Err(capture_error(format!(
                    "{name} gave no picture within {} s of starting: is another program \
                     using it, or is it a node that does not stream?",
                    FIRST_FRAME_TIMEOUT.as_secs()
                )));
            }
            Err(e) => return Err(device_error(&name, "starting capture", &e)),
        }
        // From here on `capture` polls first, so the stream's own wait never runs out; the
        // bound only keeps a misbehaving driver from blocking the capture thread for good.
        source.stream.set_timeout(MAX_WAIT);
        tracing::info!(camera = %name, "camera: {}", source.granted);
        Ok(source)
    }

    /// What the camera granted (format, size, rate) and what was asked.
    pub fn granted(&self) -> &Negotiated {
        &self.granted
    }

    /// The device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Dequeues the newest finished buffer (queuing again the one held before, and handing
    /// back unconverted any finished earlier than the newest) and converts it, or reports it
    /// damaged. Counts the frames lost and stamps the capture time.
    fn take(&mut self) -> io::Result<Taken> {
        loop {
            let (data, meta) = CaptureStream::next(&mut self.stream)?;
            if ready(&self.handle, 0)? {
                // A newer one is finished: this one is stale. Its number is skipped, so it
                // counts as lost when the newer one is taken.
                continue;
            }
            let (mono_now, wall_now) = (clock::monotonic_now_us(), tandem::stats::wall_us());
            self.dropped += clock::frames_lost(self.last_sequence, meta.sequence);
            self.last_sequence = Some(meta.sequence);
            if meta.flags.contains(BufFlags::ERROR) {
                self.dropped += 1;
                return Ok(Taken::Bad(
                    "the driver flagged the buffer as damaged".into(),
                ));
            }
            let monotonic =
                (meta.flags & BufFlags::TIMESTAMP_MASK) == BufFlags::TIMESTAMP_MONOTONIC;
            let ts = meta.timestamp;
            let buffer_us = (monotonic && ts.sec >= 0 && ts.usec >= 0)
                .then(|| ts.sec as u64 * 1_000_000 + ts.usec as u64);
            let capture_us = clock::capture_wall_us(buffer_us, mono_now, wall_now);
            let used = (meta.bytesused as usize).min(data.len());
            return Ok(match self.converter.convert(&data[..used]) {
                Ok(frame) => {
                    let id = self.next_id;
                    self.next_id = self.next_id.wrapping_add(1);
                    Taken::Picture(frame.with_meta(id, capture_us))
                }
                Err(e) => {
                    self.dropped += 1;
                    Taken::Bad(e.to_string())
                }
            });
        }
    }

    fn lost(&self, what: &str, e: &io::Error) -> CodecError {
        device_error(
            &format!("{} ({})", self.path.display(), self.granted.card),
            what,
            e,
        )
    }
}

impl VideoSource for CameraSource {
    fn size(&self) -> (u32, u32) {
        (self.granted.width, self.granted.height)
    }
    fn fps(&self) -> (u32, u32) {
        self.granted.fps
    }
    fn pacing(&self) -> Pacing {
        Pacing::OwnClock
    }
    fn capture(&mut self, _wall_us: u64) -> Result<Capture, CodecError> {
        if let Some(frame) = self.first.take() {
            return Ok(Capture::Picture(frame));
        }
        let deadline = Instant::now() + MAX_WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            if !ready(&self.handle, ms).map_err(|e| self.lost("waiting for a frame (poll)", &e))? {
                return Ok(Capture::Waiting);
            }
            let taken = self
                .take()
                .map_err(|e| self.lost("taking a frame (VIDIOC_QBUF/DQBUF)", &e))?;
            match taken {
                Taken::Picture(frame) => {
                    self.bad_in_a_row = 0;
                    return Ok(Capture::Picture(frame));
                }
                Taken::Bad(why) => {
                    self.bad_in_a_row += 1;
                    tracing::debug!(camera = %self.path.display(), "frame dropped: {why}");
                    if self.bad_in_a_row >= BAD_FRAMES_IN_A_ROW {
                        return Err(capture_error(format!(
                            "{} ({}): {} frames in a row unusable, the last: {why}",
                            self.path.display(),
                            self.granted.card,
                            self.bad_in_a_row
                        )));
                    }
                    if Instant::now() >= deadline {
                        return Ok(Capture::Waiting);
                    }
                }
            }
        }
    }
    fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Whether the device has a finished buffer, waiting at most `ms` milliseconds for one.
fn ready(handle: &Handle, ms: i32) -> io::Result<bool> {
    Ok(handle.poll(libc::POLLIN, ms)? > 0)
}

fn capture_error(message: String) -> CodecError {
    CodecError::Capture(message)
}

/// The error for a device that failed `what`, with advice for the errors that have one.
fn device_error(name: &str, what: &str, e: &io::Error) -> CodecError {
    let advice = match e.raw_os_error() {
        Some(libc::EBUSY) => ": the camera is in use by another program; close it and retry",
        Some(libc::ENODEV) | Some(libc::EIO) => ": the camera went away (unplugged?)",
        _ => "",
    };
    capture_error(format!("{name}: {what}: {e}{advice}"))
}

/// The error for a device node that does not open.
fn open_error(path: &Path, e: &io::Error) -> CodecError {
    let nodes = video_nodes();
    capture_error(match e.kind() {
        io::ErrorKind::NotFound => format!(
            "no camera at {}: it does not exist{}",
            path.display(),
            match nodes.is_empty() {
                true => "; there is no /dev/video* node at all: is a camera plugged in?".into(),
                false => listing(&nodes),
            }
        ),
        io::ErrorKind::PermissionDenied => format!(
            "cannot open {}: permission denied; add this user to the group owning it \
             (usually `video`) and log in again",
            path.display()
        ),
        _ => format!("cannot open {}: {e}{}", path.display(), listing(&nodes)),
    })
}

/// "; the video nodes here are /dev/video0, /dev/video2" (or nothing without any).
fn listing(nodes: &[PathBuf]) -> String {
    if nodes.is_empty() {
        return String::new();
    }
    let names: Vec<String> = nodes.iter().map(|p| p.display().to_string()).collect();
    format!("; the video nodes here are {}", names.join(", "))
}

/// The `/dev/video*` nodes that exist, in numeric order.
pub fn video_nodes() -> Vec<PathBuf> {
    let mut nodes: Vec<(u32, PathBuf)> = std::fs::read_dir("/dev")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|entry| {
                    let name = entry.file_name();
                    let n = name.to_str()?.strip_prefix("video")?.parse().ok()?;
                    Some((n, entry.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    nodes.into_iter().map(|(_, p)| p).collect()
}

/// What the device offers in the formats Tandem reads, as [`negotiate`] takes it.
fn offers(device: &Device, name: &str, request: Request) -> Result<Vec<FormatOffer>, CodecError> {
    let formats = device
        .enum_formats()
        .map_err(|e| device_error(name, "listing formats (VIDIOC_ENUM_FMT)", &e))?;
    if formats.is_empty() {
        return Err(capture_error(format!(
            "{name} offers no video capture format: it is probably one of the camera's \
             other nodes (metadata); try another{}",
            listing(&video_nodes())
        )));
    }
    let mut offers = Vec::new();
    for desc in &formats {
        let Some(format) = PixelFormat::from_fourcc(desc.fourcc.repr) else {
            continue;
        };
        let mut sizes = Vec::new();
        for size in device.enum_framesizes(desc.fourcc).unwrap_or_default() {
            for (width, height) in candidate_sizes(&size.size, request.size) {
                let rates = rates(device, desc.fourcc, width, height);
                sizes.push(SizeOffer {
                    width,
                    height,
                    rates,
                });
            }
        }
        offers.push(FormatOffer { format, sizes });
    }
    if offers.is_empty() {
        let offered: Vec<String> = formats.iter().map(|d| d.fourcc.to_string()).collect();
        return Err(capture_error(format!(
            "{name} offers none of the formats Tandem reads (YUYV, NV12, MJPEG): it offers {}",
            offered.join(", ")
        )));
    }
    Ok(offers)
}

/// The sizes to consider from one frame-size entry: a discrete size as it is; from a
/// stepwise range (virtual and capture-card devices) the asked size snapped to the steps, the
/// common sizes 1920×1080, 1280×720 and 640×480, and the largest, as far as they fit.
fn candidate_sizes(size: &FrameSizeEnum, asked: Option<(u32, u32)>) -> Vec<(u32, u32)> {
    match size {
        FrameSizeEnum::Discrete(d) => vec![(d.width, d.height)],
        FrameSizeEnum::Stepwise(s) => {
            let snap = |v: u32, min: u32, max: u32, step: u32| {
                let v = v.clamp(min, max);
                min + (v - min) / step.max(1) * step.max(1)
            };
            let mut out: Vec<(u32, u32)> = asked
                .into_iter()
                .chain([
                    (1920, 1080),
                    (1280, 720),
                    (640, 480),
                    (s.max_width, s.max_height),
                ])
                .map(|(w, h)| {
                    (
                        snap(w, s.min_width, s.max_width, s.step_width),
                        snap(h, s.min_height, s.max_height, s.step_height),
                    )
                })
                .collect();
            out.sort_unstable();
            out.dedup();
            out
        }
    }
}

/// The rates offered at one size. A driver that cannot list them is taken to accept any
/// (`S_PARM` then says what it does).
fn rates(device: &Device, fourcc: FourCC, width: u32, height: u32) -> Rates {
    let any = Rates::Range {
        fastest: Interval::per_second(240),
        slowest: Interval::per_second(1),
    };
    let Ok(list) = device.enum_frameintervals(fourcc, width, height) else {
        return any;
    };
    let mut discrete = Vec::new();
    for entry in list {
        match entry.interval {
            FrameIntervalEnum::Discrete(f) => discrete.push(Interval {
                num: f.numerator,
                den: f.denominator,
            }),
            FrameIntervalEnum::Stepwise(s) => {
                return Rates::Range {
                    fastest: Interval {
                        num: s.min.numerator,
                        den: s.min.denominator,
                    },
                    slowest: Interval {
                        num: s.max.numerator,
                        den: s.max.denominator,
                    },
                };
            }
        }
    }
    if discrete.is_empty() {
        any
    } else {
        Rates::Discrete(discrete)
    }
}

/// Asks the device for `interval` (`S_PARM`) and returns the rate it granted, as frames per
/// second (numerator, denominator). A device that does not take a rate keeps its own: what
/// `G_PARM` says, or the asked rate if it says nothing.
fn set_rate(device: &Device, name: &str, interval: Interval) -> (u32, u32) {
    let asked = Parameters::new(Fraction::new(interval.num, interval.den));
    let granted = device
        .set_params(&asked)
        .or_else(|e| {
            tracing::warn!(camera = name, "the camera did not take a frame rate: {e}");
            device.params()
        })
        .map(|p| p.interval)
        .ok()
        .filter(|f| f.numerator > 0 && f.denominator > 0)
        .map_or((interval.den, interval.num), |f| {
            (f.denominator, f.numerator)
        });
    reduce(granted)
}

fn reduce((num, den): (u32, u32)) -> (u32, u32) {
    let (mut a, mut b) = (num, den);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    match (num.checked_div(a), den.checked_div(a)) {
        (Some(n), Some(d)) => (n, d),
        _ => (num, den),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_granted_line_says_what_was_granted_and_asked() {
        let mut n = Negotiated {
            card: "HD Pro Webcam C920".into(),
            format: PixelFormat::Mjpeg,
            width: 1280,
            height: 720,
            fps: (30, 1),
            asked: Request {
                size: Some((1280, 720)),
                fps: Some(60),
            },
        };
        assert_eq!(
            n.to_string(),
            "MJPEG 1280x720 at 30 fps (asked 1280x720 at 60 fps)"
        );
        n.fps = (30000, 1001);
        n.asked = Request::default();
        assert_eq!(
            n.to_string(),
            "MJPEG 1280x720 at 29.97 fps (asked the largest size at 30 fps)"
        );
        assert_eq!(reduce((60, 2)), (30, 1));
        assert_eq!(reduce((30000, 1001)), (30000, 1001));
    }

    #[test]
    fn stepwise_sizes_give_the_asked_and_common_sizes_that_fit() {
        let s = FrameSizeEnum::Stepwise(v4l::framesize::Stepwise {
            min_width: 16,
            max_width: 1920,
            step_width: 16,
            min_height: 16,
            max_height: 1080,
            step_height: 8,
        });
        let sizes = candidate_sizes(&s, Some((1000, 563)));
        assert!(sizes.contains(&(992, 560)), "{sizes:?}");
        assert!(sizes.contains(&(1920, 1080)) && sizes.contains(&(640, 480)));
    }
}
