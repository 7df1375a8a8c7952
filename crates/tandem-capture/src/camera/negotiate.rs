//! Choosing what to ask a camera for ([`choose`]), as a plain function of what it offers
//! ([`FormatOffer`], as `VIDIOC_ENUM_FMT` / `ENUM_FRAMESIZES` / `ENUM_FRAMEINTERVALS` list it)
//! and what the user asked ([`Request`]), so the policy is tested without a device.
//!
//! The policy, for latency:
//!
//! 1. Size: the asked size if any format offers it, else the offered size nearest to it
//!    (smallest `|Δw| + |Δh|`, the larger on a tie). With no size asked: the largest size
//!    (by area) at which some format reaches the target rate; if none reaches it anywhere,
//!    the size with the highest rate, the larger on a tie.
//! 2. Target rate: the asked one, or [`DEFAULT_FPS`].
//! 3. Format at that size: among those reaching the target rate, raw before MJPEG (NV12, then
//!    YUYV: no decoding, so less delay and CPU per frame). A raw format often cannot reach it at
//!    large sizes over USB 2 (a Logitech C920 gives YUYV 1920×1080 at 5 fps, MJPEG at 30), and
//!    then MJPEG wins. If none reaches it, the fastest, raw first on a tie.
//! 4. Rate in that format: the slowest offered rate that still reaches the target (asking 25
//!    of a camera offering 30 and 25 gives 25), else the fastest offered.
//!
//! A rate "reaches" the target within 1 %, so that 29.97 fps (`1001/30000`) counts as 30.

use super::convert::PixelFormat;

/// The rate aimed for when none is asked.
pub const DEFAULT_FPS: u32 = 30;

/// A frame interval as V4L2 gives it: `num / den` seconds per frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// Numerator (seconds).
    pub num: u32,
    /// Denominator.
    pub den: u32,
}

impl Interval {
    /// The interval of `fps` frames per second.
    pub const fn per_second(fps: u32) -> Interval {
        Interval { num: 1, den: fps }
    }

    /// Frames per second.
    pub fn fps(self) -> f64 {
        if self.num == 0 {
            0.0
        } else {
            f64::from(self.den) / f64::from(self.num)
        }
    }
}

/// The frame rates offered at one size.
#[derive(Debug, Clone, PartialEq)]
pub enum Rates {
    /// A list of intervals (what webcams give).
    Discrete(Vec<Interval>),
    /// Any interval from `fastest` to `slowest` (stepwise or continuous; the driver rounds).
    Range {
        /// The shortest interval (highest rate).
        fastest: Interval,
        /// The longest interval (lowest rate).
        slowest: Interval,
    },
}

impl Rates {
    /// The interval chosen for `target` fps (policy step 4), if any is offered.
    pub fn pick(&self, target: f64) -> Option<Interval> {
        match self {
            Rates::Discrete(list) => {
                let reaching = list
                    .iter()
                    .filter(|i| reaches(i.fps(), target))
                    .min_by(|a, b| a.fps().total_cmp(&b.fps()));
                reaching
                    .or_else(|| list.iter().max_by(|a, b| a.fps().total_cmp(&b.fps())))
                    .copied()
            }
            Rates::Range { fastest, slowest } => Some(if target >= fastest.fps() {
                *fastest
            } else if target <= slowest.fps() {
                *slowest
            } else {
                Interval::per_second(target.round() as u32)
            }),
        }
    }
}

/// One size a format is offered at, with its rates.
#[derive(Debug, Clone, PartialEq)]
pub struct SizeOffer {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The rates at this size.
    pub rates: Rates,
}

/// One pixel format a device offers, at each size it offers it.
#[derive(Debug, Clone, PartialEq)]
pub struct FormatOffer {
    /// The format.
    pub format: PixelFormat,
    /// Its sizes.
    pub sizes: Vec<SizeOffer>,
}

/// What the user asked for (`--size`, `--fps`); either may be absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Request {
    /// Width and height.
    pub size: Option<(u32, u32)>,
    /// Frames per second.
    pub fps: Option<u32>,
}

/// What [`choose`] picked: the format, size and interval to set on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Pixel format.
    pub format: PixelFormat,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Frame interval.
    pub interval: Interval,
}

fn reaches(fps: f64, target: f64) -> bool {
    fps >= target * 0.99
}

/// The best format and rate at `size` (policy steps 3 and 4), if any format offers it.
fn best_at(offers: &[FormatOffer], size: (u32, u32), target: f64) -> Option<Choice> {
    let mut candidates: Vec<Choice> = offers
        .iter()
        .flat_map(|o| {
            o.sizes
                .iter()
                .filter(|s| (s.width, s.height) == size)
                .filter_map(|s| s.rates.pick(target))
                .map(|interval| Choice {
                    format: o.format,
                    width: size.0,
                    height: size.1,
                    interval,
                })
        })
        .collect();
    // Reaching the target first; then, among those, the format order (raw first); among
    // the others, the fastest, then the format order.
    candidates.sort_by(|a, b| {
        let (ra, rb) = (
            reaches(a.interval.fps(), target),
            reaches(b.interval.fps(), target),
        );
        rb.cmp(&ra).then_with(|| {
            if ra && rb {
                a.format.cmp(&b.format)
            } else {
                b.interval
                    .fps()
                    .total_cmp(&a.interval.fps())
                    .then(a.format.cmp(&b.format))
            }
        })
    });
    candidates.into_iter().next()
}

/// Chooses format, size and rate from what a device offers (the policy in the module docs);
/// `None` only if it offers nothing.
pub fn choose(offers: &[FormatOffer], request: Request) -> Option<Choice> {
    let target = f64::from(request.fps.unwrap_or(DEFAULT_FPS).max(1));
    let mut sizes: Vec<(u32, u32)> = offers
        .iter()
        .flat_map(|o| o.sizes.iter().map(|s| (s.width, s.height)))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let area = |s: &(u32, u32)| u64::from(s.0) * u64::from(s.1);
    let size = match request.size {
        Some((w, h)) => *sizes.iter().min_by(|a, b| {
            let d = |s: &(u32, u32)| s.0.abs_diff(w) + s.1.abs_diff(h);
            d(a).cmp(&d(b)).then(area(b).cmp(&area(a)))
        })?,
        None => {
            let best: Vec<((u32, u32), f64)> = sizes
                .iter()
                .filter_map(|s| best_at(offers, *s, target).map(|c| (*s, c.interval.fps())))
                .collect();
            let reaching = best
                .iter()
                .filter(|(_, fps)| reaches(*fps, target))
                .max_by_key(|(s, _)| area(s));
            match reaching {
                Some((s, _)) => *s,
                None => {
                    best.iter()
                        .max_by(|(a, fa), (b, fb)| fa.total_cmp(fb).then(area(a).cmp(&area(b))))?
                        .0
                }
            }
        }
    };
    best_at(offers, size, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discrete(fps: &[f64]) -> Rates {
        // V4L2 lists intervals as fractions: 7.5 fps is 2/15 s, 30 fps 1/30 s.
        Rates::Discrete(
            fps.iter()
                .map(|f| {
                    if f.fract() == 0.0 {
                        Interval::per_second(*f as u32)
                    } else {
                        Interval {
                            num: 2,
                            den: (f * 2.0) as u32,
                        }
                    }
                })
                .collect(),
        )
    }

    fn offer(format: PixelFormat, sizes: &[((u32, u32), &[f64])]) -> FormatOffer {
        FormatOffer {
            format,
            sizes: sizes
                .iter()
                .map(|((w, h), fps)| SizeOffer {
                    width: *w,
                    height: *h,
                    rates: discrete(fps),
                })
                .collect(),
        }
    }

    /// The UVC webcam whose `v4l2-ctl --list-formats-ext` listing is in
    /// github.com/jacksonliam/mjpg-streamer issue #169 (2018), transcribed as far as the
    /// issue shows it (the 800×448 YUYV rates and the 960×544 MJPEG rates are cut short
    /// there; the first ones shown are kept).
    fn mjpg_streamer_169() -> Vec<FormatOffer> {
        const R5: &[f64] = &[30.0, 20.0, 15.0, 10.0, 7.5];
        vec![
            offer(
                PixelFormat::Yuyv,
                &[
                    ((640, 480), R5),
                    ((1280, 720), &[10.0, 7.5]),
                    ((960, 544), &[20.0, 15.0, 10.0, 7.5]),
                    ((800, 448), &[30.0, 20.0, 15.0, 10.0]),
                ],
            ),
            offer(
                PixelFormat::Mjpeg,
                &[
                    ((640, 480), R5),
                    ((1920, 1080), R5),
                    ((1280, 720), R5),
                    ((960, 544), &[30.0, 20.0]),
                ],
            ),
        ]
    }

    /// The Logitech C920's YUYV sizes as github.com/pikvm/ustreamer issue #213 lists them
    /// (those the excerpt shows: 640×480 with its seven rates, 1920×1080 at 5 fps only,
    /// 2304×1296 and 2304×1536 at 2 fps; github.com/Motion-Project/motion issue #86 shows the
    /// same 640×480 and 160×90 rates). MJPEG is not transcribed from a listing: it is the
    /// same seven rates at those sizes up to 1920×1080, as Logitech specifies the camera (Full HD
    /// 1080p at 30 fps).
    fn c920() -> Vec<FormatOffer> {
        const R7: &[f64] = &[30.0, 24.0, 20.0, 15.0, 10.0, 7.5, 5.0];
        vec![
            offer(
                PixelFormat::Yuyv,
                &[
                    ((640, 480), R7),
                    ((160, 90), R7),
                    ((1920, 1080), &[5.0]),
                    ((2304, 1296), &[2.0]),
                    ((2304, 1536), &[2.0]),
                ],
            ),
            offer(
                PixelFormat::Mjpeg,
                &[((640, 480), R7), ((160, 90), R7), ((1920, 1080), R7)],
            ),
        ]
    }

    fn ask(size: Option<(u32, u32)>, fps: Option<u32>) -> Request {
        Request { size, fps }
    }

    fn got(c: Choice) -> (PixelFormat, u32, u32, f64) {
        (c.format, c.width, c.height, c.interval.fps())
    }

    #[test]
    fn raw_wins_where_it_reaches_the_rate_mjpeg_where_it_does_not() {
        let cam = mjpg_streamer_169();
        let c = choose(&cam, ask(Some((640, 480)), Some(30))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 640, 480, 30.0));
        // YUYV 1280×720 reaches only 10 fps.
        let c = choose(&cam, ask(Some((1280, 720)), Some(30))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Mjpeg, 1280, 720, 30.0));
        // ... which is enough when 10 is what was asked.
        let c = choose(&cam, ask(Some((1280, 720)), Some(10))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 1280, 720, 10.0));
        // The C920: YUYV 1080p at 5 fps, MJPEG at 30.
        let c = choose(&c920(), ask(Some((1920, 1080)), None)).expect("offers");
        assert_eq!(got(c), (PixelFormat::Mjpeg, 1920, 1080, 30.0));
        let c = choose(&c920(), ask(Some((1920, 1080)), Some(5))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 1920, 1080, 5.0));
    }

    #[test]
    fn nearest_size_and_rate_when_the_exact_ones_are_not_offered() {
        let cam = mjpg_streamer_169();
        // 1000×560 is nearest 960×544, where only MJPEG reaches 30.
        let c = choose(&cam, ask(Some((1000, 560)), Some(30))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Mjpeg, 960, 544, 30.0));
        // Nothing gives 60: the fastest there is, raw first on a tie.
        let c = choose(&cam, ask(Some((640, 480)), Some(60))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 640, 480, 30.0));
        // 12 fps: the slowest rate still reaching it is 15.
        let c = choose(&cam, ask(Some((640, 480)), Some(12))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 640, 480, 15.0));
        // 7.5 fps as V4L2 lists it (2/15 s) is chosen for 7 and kept as a fraction.
        let c = choose(&cam, ask(Some((1280, 720)), Some(7))).expect("offers");
        assert_eq!(c.interval, Interval { num: 2, den: 15 });
    }

    #[test]
    fn nothing_asked_gives_the_largest_size_at_30_fps() {
        let c = choose(&mjpg_streamer_169(), Request::default()).expect("offers");
        assert_eq!(got(c), (PixelFormat::Mjpeg, 1920, 1080, 30.0));
        // A raw-only camera: 1280×720 and 960×544 are larger, but only 800×448 and 640×480
        // reach 30.
        let raw_only = vec![mjpg_streamer_169().remove(0)];
        let c = choose(&raw_only, Request::default()).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 800, 448, 30.0));
        // Only a rate asked: the largest size reaching it.
        let c = choose(&raw_only, ask(None, Some(10))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 1280, 720, 10.0));
        // Nothing reaches 60 anywhere: the fastest sizes (30 fps), the larger of them.
        let c = choose(&raw_only, ask(None, Some(60))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Yuyv, 800, 448, 30.0));
        assert_eq!(choose(&[], Request::default()), None);
    }

    #[test]
    fn nv12_before_yuyv_and_ranges_give_the_asked_rate() {
        let range = Rates::Range {
            fastest: Interval::per_second(60),
            slowest: Interval::per_second(1),
        };
        let sized = |format| FormatOffer {
            format,
            sizes: vec![SizeOffer {
                width: 1280,
                height: 720,
                rates: range.clone(),
            }],
        };
        let cam = [
            sized(PixelFormat::Mjpeg),
            sized(PixelFormat::Yuyv),
            sized(PixelFormat::Nv12),
        ];
        let c = choose(&cam, ask(None, Some(24))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Nv12, 1280, 720, 24.0));
        let c = choose(&cam, ask(None, Some(120))).expect("offers");
        assert_eq!(got(c), (PixelFormat::Nv12, 1280, 720, 60.0));
        // 29.97 fps reaches 30.
        let ntsc = Rates::Discrete(vec![Interval {
            num: 1001,
            den: 30000,
        }]);
        assert!(reaches(ntsc.pick(30.0).expect("one").fps(), 30.0));
    }
}
