//! The glass-to-glass pipeline the `g2g` report and the `e2e` bench share: the `tandem`
//! engine's real sender (test pattern; libaom, rav1e or OpenH264) and receiver (dav1d or
//! OpenH264, by each frame's codec tag) on loopback,
//! with `tandem-relay` applying an impairment profile between them, and [`measure`], which
//! turns a timed run into `tandem-sim` frame records and the simulator's own figures.
//!
//! ```text
//!  pattern ─▶ Sender ─UDP─▶ tandem-relay (profile, seed) ─UDP─▶ Receiver ─▶ sink
//!  capture log: (frame id, wall µs)                   pixel code read back, wall µs shown
//! ```
//!
//! Over two paths ([`PipelineConfig::second_link`], the pairs of
//! `tandem_sim::profile::dual_profile`), the sender sends to two relays that share one
//! radio's stall schedule (`tandem_relay::spawn_dual`), each towards one of the receiver's
//! two sockets: one session, path 0 through the first relay, path 1 through the second.
//!
//! One clock: the wall clock in µs ([`tandem::stats::wall_us`]), the clock the pixel code
//! carries, is the clock of every frame record — a capture is the capture time read from
//! the picture's pixel code (for a frame never shown, the one the pattern stamped, which
//! the source logs), a display is when the sink was handed the picture. Run time 0 is one
//! `(Instant, wall µs)` pair taken together, through which the relay's stall windows
//! (instants) are mapped onto the same clock. Sender and receiver share the host, so their
//! wall clocks are one.
//!
//! A run captures frames for `seconds` after a warm-up, then waits [`GRACE`] for the frames
//! still in flight, as the simulator's runner does; frames captured during the warm-up or
//! the grace period are not counted.
//!
//! Latency is never read without the bitrate and picture quality it was bought at, so a run
//! also measures, from the same frames:
//!
//! - the video bitrate delivered ([`Measured::delivered_kbps`]) against the sender's target;
//! - the PSNR of shown frames against the very source pictures they came from
//!   ([`PsnrFigures`]). The test pattern is a pure function of frame number and size plus
//!   the pixel code, so the source picture is rebuilt from the code read back
//!   ([`source_picture`]), exactly. Scoring runs on a thread of its own, fed through a
//!   bounded queue every [`DEFAULT_PSNR_EVERY`]th shown frame, never on the sink's (the
//!   decoder's) thread.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver as Rx, Sender as Tx, TrySendError, bounded, unbounded};
use serde::Serialize;
use tandem::source::VideoSource;
use tandem::stats::{g2g_from_code, wall_us};
use tandem::{
    DisplayFrame, EncodedVideo, EncoderKind, EngineError, Frame, FrameSink, PlayoutPolicy,
    Receiver, ReceiverConfig, Remote, Sender, SenderConfig, Stats, TestPatternSource,
};
use tandem_codec::{PixelCode, TestPattern};
use tandem_proto::PathPolicy;
use tandem_relay::{Relay, RelayConfig, RelayCounters};
use tandem_sim::impair::LinkConfig;
use tandem_sim::report::{FrameFigures, Percentiles, frame_figures};
use tandem_sim::runner::FrameRecord;

/// How long a run waits after its last counted capture for frames still in flight (the
/// simulator's drain period).
pub const GRACE: Duration = Duration::from_millis(500);

/// Captures a pipeline logs at most (an hour at 60 fps); later ones go unlogged.
const CAPTURE_LOG_LIMIT: usize = 60 * 3600;

/// Why a pipeline could not run.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The engine failed to start or stop (socket, codec, thread).
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// The relay could not bind or start.
    #[error("relay: {0}")]
    Relay(#[from] std::io::Error),
    /// The PSNR thread could not start.
    #[error("starting the PSNR thread: {0}")]
    Thread(std::io::Error),
}

/// What a pipeline runs.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The relay's impairments (each direction).
    pub link: LinkConfig,
    /// The relay's seed.
    pub seed: u64,
    /// The receiver's playout policy.
    pub policy: PlayoutPolicy,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second.
    pub fps: u32,
    /// The sender's encoder.
    pub encoder: EncoderKind,
    /// The sender's starting (and highest) target bitrate, kbit/s; `None`: the default for
    /// the size and rate ([`tandem_codec::default_bitrate_kbps`]).
    pub bitrate_kbps: Option<u32>,
    /// The relay's spin window (see [`tandem_relay::RelayConfig::spin_window`]).
    pub relay_spin: Duration,
    /// Score every this many shown frames' PSNR (0: none); see [`DEFAULT_PSNR_EVERY`].
    pub psnr_every: u32,
    /// A second path's impairments (each direction): the session then spans two paths,
    /// each through its own relay, the two on one radio's stall schedule. Default none.
    pub second_link: Option<LinkConfig>,
    /// How the sender spreads datagrams over two paths. Default [`PathPolicy::Adaptive`].
    pub path_policy: PathPolicy,
}

impl PipelineConfig {
    /// 640×360 at 60 fps through the engine's default encoder (OpenH264), the latency
    /// policy, seed 1, and a relay that never spins: see [`DEFAULT_RELAY_SPIN`].
    pub fn new(link: LinkConfig) -> PipelineConfig {
        PipelineConfig {
            link,
            seed: 1,
            policy: PlayoutPolicy::Latency,
            width: 640,
            height: 360,
            fps: 60,
            encoder: tandem::SenderConfig::default().video.encoder,
            bitrate_kbps: None,
            relay_spin: DEFAULT_RELAY_SPIN,
            psnr_every: DEFAULT_PSNR_EVERY,
            second_link: None,
            path_policy: PathPolicy::Adaptive,
        }
    }

    /// The capture interval.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }
}

/// The relay's spin window in these runs: none. On two cores the encoder (two threads),
/// the decoder, both network drivers and the relay share the machine; a relay that spins
/// the last 120 µs before each delivery takes CPU from them while a frame is on the wire,
/// for a gain the glass-to-glass figures cannot see. Measured on `clean`, 20 s each,
/// latency policy, 640×360@60 libaom, alternating spin 0 / 120 µs / 0 / 120 µs: g2g p50
/// 8.61 / 7.16 / 8.62 / 8.91 ms, p99 13.74 / 13.14 / 14.53 / 13.94 ms; g2g p50 minus
/// encode and decode p50 2.36 / 2.26 / 2.32 / 2.69 ms. The spin cut the relay's own
/// lateness at the median (68 → 24 µs) but not at p99 (about 1.5 ms either way: on a loaded
/// two-core machine a delivery waits for a core, not for the timer), and run-to-run noise
/// in encode time (3.7–5.1 ms p50) is ten times the difference.
pub const DEFAULT_RELAY_SPIN: Duration = Duration::ZERO;

/// Every how many shown frames one is scored for PSNR: 15 a second at 60 fps, 300 in a
/// 20-s run, enough for a 5th percentile. One score (rebuilding the 640×360 source picture
/// and comparing all three planes) takes 0.29–0.40 ms of one core, so this is about 0.5 % of
/// a core, on a thread of its own; the machine's two cores also run the encoder, the
/// decoder, both drivers and the relay. Measured in one process (`tests/psnr_cost.rs`: 8 s
/// each on `clean`, latency policy, 640×360@60 libaom, interleaved off / every 4th / every
/// frame, twice; two process runs), g2g p50 in ms: off 7.25, 7.82 | 6.73, 8.13; every 4th
/// 7.61, 8.07 | 8.16, 8.19; every frame 7.30, 9.12 | 7.70, 8.50. Those move with encode p50
/// (3.3–5.4 ms run to run); g2g p50 minus encode and decode p50, the part scoring could
/// slow besides them: off 1.80, 1.74 | 2.38, 2.25; every 4th 1.62, 1.56 | 2.28, 2.24. No
/// cost shows at every 4th frame; no sample was dropped at either rate.
pub const DEFAULT_PSNR_EVERY: u32 = 4;

/// Pictures waiting for the PSNR thread at most: one more is dropped and counted
/// ([`PsnrFigures::samples_dropped`]) rather than waited for, since the sink runs on the
/// decoder's thread.
const PSNR_QUEUE: usize = 4;

/// The source picture a shown frame came from, rebuilt from the pixel code read back from
/// it: the test pattern's frame `code.frame_id` stamped with `code`. The pattern draws
/// everything but the code from the frame number and the size alone, and the code from the
/// frame id and the low 48 bits of the capture time, which is all the code carries and all
/// the stamp writes; so the rebuild is the sender's picture exactly (tested), and so is it
/// of a pattern frame stamped apart with [`tandem_codec::pixelcode::stamp`], as
/// `screen-report` draws them (tested). `pattern` must be the size of the stream.
pub fn source_picture(pattern: &mut TestPattern, code: PixelCode) -> Frame {
    pattern.seek(code.frame_id);
    pattern.next_frame_at(code.capture_us)
}

/// One shown picture scored against its source picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// Its capture time from its pixel code, wall clock µs (which run window it is in).
    pub capture_wall_us: u64,
    /// PSNR against the source picture, dB ([`tandem_codec::psnr`]: all three planes,
    /// sample-weighted; infinite for an identical picture).
    pub psnr_db: f64,
}

/// A shown picture sampled for PSNR ([`MeasuringSink::sampling`]), moved out of the sink.
#[derive(Debug)]
pub struct Sample {
    /// Its capture time from its pixel code, wall clock µs (as in [`Shown`]).
    pub capture_wall_us: u64,
    /// Its pixel code, which names its source picture ([`source_picture`]).
    pub code: PixelCode,
    /// The picture shown.
    pub frame: Frame,
}

impl Sample {
    /// Scores the picture against its source picture, rebuilt with `pattern` (the size of
    /// the stream); `None` for a picture of another size, which has no source picture to
    /// compare with.
    pub fn score(&self, pattern: &mut TestPattern) -> Option<Scored> {
        let psnr_db = tandem_codec::psnr(&source_picture(pattern, self.code), &self.frame).ok()?;
        Some(Scored {
            capture_wall_us: self.capture_wall_us,
            psnr_db,
        })
    }
}

/// The PSNR thread's scores, shared with the pipeline.
type Scores = Arc<Mutex<Vec<Scored>>>;

/// Starts the thread that scores pictures from `queue` until every sender of it is gone
/// (the receiver stopped, dropping its sink), adding each score to `scored`.
fn spawn_scorer(
    width: u32,
    height: u32,
    fps: u32,
    queue: Rx<Sample>,
    scored: Scores,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("g2g-psnr".into())
        .spawn(move || {
            // The sender's source made its pattern the same way (TestPatternSource); a size
            // the pattern refuses never streamed, so there is nothing to score.
            let Ok(mut pattern) = TestPattern::new(width, height, fps.max(1), 1) else {
                return;
            };
            for sample in queue {
                if let Some(score) = sample.score(&mut pattern) {
                    lock(&scored).push(score);
                }
            }
        })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The receiver's sink in these runs (and in `screen-report`'s end-to-end runs). It runs on
/// the decoder's thread, so it does nothing slow there: for each shown picture with a
/// readable pixel code it reads the clock and passes three numbers on ([`Shown`]); it counts
/// the pictures without one and the video bytes delivered ([`SinkCounters`]); and, sampling
/// ([`MeasuringSink::sampling`]), it hands every `every`th shown picture (moved, not copied)
/// on for PSNR without waiting.
#[derive(Debug)]
pub struct MeasuringSink {
    shown: Tx<Shown>,
    counters: SinkCounters,
    /// The samples' queue and the sampling period (at least 1); `None`: no sampling.
    score: Option<(Tx<Sample>, u32)>,
    /// Shown pictures with a readable code so far (what the sampling counts).
    coded: u64,
}

/// What a [`MeasuringSink`] counts, readable from any thread while the receiver runs (a
/// clone reads the same counters). All count from the sink's start.
#[derive(Debug, Clone, Default)]
pub struct SinkCounters {
    unread: Arc<AtomicU64>,
    delivered_bytes: Arc<AtomicU64>,
    samples_dropped: Arc<AtomicU64>,
}

impl SinkCounters {
    /// Pictures the sink was handed whose pixel code could not be read.
    pub fn codes_unread(&self) -> u64 {
        self.unread.load(Ordering::Relaxed)
    }

    /// Encoded video bytes of every frame the receiver decoded (shown or decode-only;
    /// frame payload, no headers, parity or duplicates).
    pub fn delivered_bytes(&self) -> u64 {
        self.delivered_bytes.load(Ordering::Relaxed)
    }

    /// Pictures sampled for PSNR but dropped because the sample queue was full.
    pub fn samples_dropped(&self) -> u64 {
        self.samples_dropped.load(Ordering::Relaxed)
    }
}

impl MeasuringSink {
    /// A sink that sends each shown picture with a readable code to `shown`, sampling none;
    /// with the counters it keeps.
    pub fn new(shown: Tx<Shown>) -> (MeasuringSink, SinkCounters) {
        let counters = SinkCounters::default();
        let sink = MeasuringSink {
            shown,
            counters: counters.clone(),
            score: None,
            coded: 0,
        };
        (sink, counters)
    }

    /// Also hands every `every`th shown picture with a readable code (the first, then one
    /// of each `every`; 0 counts as 1) to `queue` with `try_send`: into a bounded queue
    /// that is full, the sample is dropped and counted
    /// ([`SinkCounters::samples_dropped`]), never waited for.
    pub fn sampling(self, queue: Tx<Sample>, every: u32) -> MeasuringSink {
        MeasuringSink {
            score: Some((queue, every.max(1))),
            ..self
        }
    }
}

impl FrameSink for MeasuringSink {
    fn on_frame(&mut self, f: DisplayFrame) {
        let now = wall_us();
        let Some((code, g2g)) = f
            .code
            .and_then(|c| Some((c, g2g_from_code(c.capture_us, now)?)))
        else {
            self.counters.unread.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let capture_wall_us = now.saturating_sub(g2g.as_micros() as u64);
        let _ = self.shown.send(Shown {
            frame_id: code.frame_id,
            capture_wall_us,
            shown_wall_us: now,
        });
        if let Some((queue, every)) = &self.score
            && self.coded.is_multiple_of(u64::from(*every))
            && let Err(TrySendError::Full(_)) = queue.try_send(Sample {
                capture_wall_us,
                code,
                frame: f.frame,
            })
        {
            self.counters
                .samples_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.coded += 1;
    }

    /// Every frame decoded, shown or decode-only: the video that reached the receiver.
    fn on_encoded(&mut self, frame: &EncodedVideo) {
        self.counters
            .delivered_bytes
            .fetch_add(frame.data.len() as u64, Ordering::Relaxed);
    }
}

/// A captured picture: the pattern's frame id and the wall-clock µs stamped into it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capture {
    /// The pattern's frame id (one per capture, in order).
    pub frame_id: u32,
    /// Capture time, wall clock µs.
    pub wall_us: u64,
}

/// A picture the sink was handed, as its pixel code reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// The frame id in the pixel code (the pattern's).
    pub frame_id: u32,
    /// Capture time from the pixel code, wall clock µs (all 64 bits: the code's 48 under
    /// the display time's upper bits).
    pub capture_wall_us: u64,
    /// When the sink got it, wall clock µs.
    pub shown_wall_us: u64,
}

impl Shown {
    /// Capture to display.
    pub fn g2g(&self) -> Duration {
        Duration::from_micros(self.shown_wall_us.saturating_sub(self.capture_wall_us))
    }
}

/// The test pattern, logging each capture's frame id and time: the list of frames a run
/// must account for, shown or not.
struct LoggingSource {
    pattern: TestPatternSource,
    log: Arc<Mutex<Vec<Capture>>>,
}

impl VideoSource for LoggingSource {
    fn size(&self) -> (u32, u32) {
        self.pattern.size()
    }
    fn fps(&self) -> (u32, u32) {
        self.pattern.fps()
    }
    fn capture(&mut self, wall_us: u64) -> Result<tandem::Capture, tandem_codec::CodecError> {
        let frame = self.pattern.capture(wall_us)?;
        if let tandem::Capture::Picture(f) = &frame {
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            if log.len() < CAPTURE_LOG_LIMIT {
                log.push(Capture {
                    frame_id: f.id,
                    wall_us,
                });
            }
        }
        Ok(frame)
    }
}

/// A running sender → relay → receiver on loopback. Dropping it stops the sender, then the
/// receiver, then the relays (field order).
#[derive(Debug)]
pub struct Pipeline {
    sender: Sender,
    receiver: Receiver,
    relay: Relay,
    /// The second path's relay, over two paths.
    second_relay: Option<Relay>,
    captures: Arc<Mutex<Vec<Capture>>>,
    shown: Rx<Shown>,
    counters: SinkCounters,
    /// The PSNR thread and its scores (`None` with PSNR off). Dropped without a shutdown,
    /// the thread ends by itself once the receiver's sink is gone.
    scorer: Option<(JoinHandle<()>, Scores)>,
}

impl Pipeline {
    /// Starts the receiver (listening), the relay towards it, and the sender towards the
    /// relay, streaming the test pattern at once.
    pub fn start(config: &PipelineConfig) -> Result<Pipeline, PipelineError> {
        let (shown_tx, shown) = unbounded::<Shown>();
        let (mut sink, counters) = MeasuringSink::new(shown_tx);
        let scorer = if config.psnr_every > 0 {
            let (tx, rx) = bounded::<Sample>(PSNR_QUEUE);
            let scored = Arc::new(Mutex::new(Vec::new()));
            let thread = spawn_scorer(
                config.width,
                config.height,
                config.fps,
                rx,
                Arc::clone(&scored),
            )
            .map_err(PipelineError::Thread)?;
            sink = sink.sampling(tx, config.psnr_every);
            Some((thread, scored))
        } else {
            None
        };
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let mut receiver_config = ReceiverConfig::default().playout(config.policy);
        if config.second_link.is_some() {
            receiver_config.net.second_local = Some(loopback(0));
        }
        let receiver = Receiver::start(receiver_config, Remote::Listen, Box::new(sink))?;
        let relay_config = |link: &LinkConfig, target: SocketAddr| RelayConfig {
            seed: config.seed,
            spin_window: config.relay_spin,
            ..RelayConfig::new(loopback(0), target, link.clone())
        };
        let first = relay_config(&config.link, loopback(receiver.local_addr().port()));
        let (relay, second_relay) = match &config.second_link {
            None => (tandem_relay::start(first)?, None),
            Some(link) => {
                let second = receiver.second_local_addr().ok_or_else(|| {
                    PipelineError::Relay(std::io::Error::other(
                        "the receiver opened no second socket",
                    ))
                })?;
                let (one, two) =
                    tandem_relay::spawn_dual(first, relay_config(link, loopback(second.port())))?;
                (one, Some(two))
            }
        };
        let captures = Arc::new(Mutex::new(Vec::new()));
        let source = LoggingSource {
            pattern: TestPatternSource::new(config.width, config.height, config.fps)
                .map_err(EngineError::from)?,
            log: Arc::clone(&captures),
        };
        let remote = match &second_relay {
            None => Remote::Address(relay.local_addr()),
            Some(two) => Remote::Addresses {
                first: relay.local_addr(),
                second: two.local_addr(),
            },
        };
        let mut sender_config = SenderConfig::default()
            .size(config.width, config.height)
            .fps(config.fps)
            .encoder(config.encoder)
            .path_policy(config.path_policy);
        if let Some(kbps) = config.bitrate_kbps {
            sender_config = sender_config.bitrate_kbps(kbps);
        }
        let sender = Sender::start(sender_config, remote, Some(Box::new(source)))?;
        Ok(Pipeline {
            sender,
            receiver,
            relay,
            second_relay,
            captures,
            shown,
            counters,
            scorer,
        })
    }

    /// Pictures the sink was handed with a readable pixel code, in display order.
    pub fn shown(&self) -> &Rx<Shown> {
        &self.shown
    }

    /// Pictures the sink was handed whose pixel code could not be read, so far.
    pub fn codes_unread(&self) -> u64 {
        self.counters.codes_unread()
    }

    /// Encoded video bytes of every frame the receiver decoded so far (shown or
    /// decode-only; frame payload, no headers, parity or duplicates).
    pub fn delivered_bytes(&self) -> u64 {
        self.counters.delivered_bytes()
    }

    /// Pictures sampled for PSNR but dropped because the PSNR thread was behind, so far.
    pub fn psnr_samples_dropped(&self) -> u64 {
        self.counters.samples_dropped()
    }

    /// Every capture so far, in order.
    pub fn captures(&self) -> Vec<Capture> {
        self.captures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The sender.
    pub fn sender(&self) -> &Sender {
        &self.sender
    }

    /// The receiver.
    pub fn receiver(&self) -> &Receiver {
        &self.receiver
    }

    /// The relay (path 0's, over two paths).
    pub fn relay(&self) -> &Relay {
        &self.relay
    }

    /// Path 1's relay, over two paths.
    pub fn second_relay(&self) -> Option<&Relay> {
        self.second_relay.as_ref()
    }

    /// Stops the sender, then the receiver (the relay goes with the pipeline), waits for the
    /// PSNR thread to score what it was given, and returns every score of the run (none
    /// with PSNR off).
    pub fn shutdown(self) -> Result<Vec<Scored>, PipelineError> {
        let Pipeline {
            sender,
            receiver,
            relay,
            second_relay,
            scorer,
            ..
        } = self;
        sender.shutdown()?;
        // The receiver's stop drops its sink, and with it the PSNR thread's queue.
        receiver.shutdown()?;
        drop((relay, second_relay));
        Ok(match scorer {
            Some((thread, scored)) => {
                // A panic there would only lose scores, which the count shows.
                let _ = thread.join();
                std::mem::take(&mut *lock(&scored))
            }
            None => Vec::new(),
        })
    }
}

/// The relay's view of a run (totals from its start, warm-up included).
#[derive(Debug, Clone, Serialize)]
pub struct RelaySummary {
    /// Sender → receiver datagrams in.
    pub upstream_in: u64,
    /// Sender → receiver bytes in (UDP payload).
    pub upstream_bytes: u64,
    /// Of those, lost by the profile (random, burst, in a stall, queue).
    pub upstream_dropped: u64,
    /// Of those, held by a stall window.
    pub upstream_held_by_stall: u64,
    /// How late the relay sent datagrams past their scheduled delivery, µs.
    pub lateness_us: Percentiles,
}

impl RelaySummary {
    fn of(c: &RelayCounters) -> RelaySummary {
        let l = &c.upstream.link;
        let lateness: Vec<f64> = c.lateness_us.iter().map(|&v| f64::from(v)).collect();
        RelaySummary {
            upstream_in: l.datagrams_in,
            upstream_bytes: l.bytes_in,
            upstream_dropped: l.dropped_random
                + l.dropped_burst
                + l.dropped_stall
                + l.dropped_queue
                + l.dropped_outage,
            upstream_held_by_stall: l.held_by_stall,
            lateness_us: Percentiles::of(&lateness),
        }
    }
}

/// The engine's own totals at the end of a run (from the pipelines' start, warm-up
/// included): what the sender and receiver say they did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineSummary {
    /// Frames the sender encoded and sent.
    pub frames_encoded: u64,
    /// Captures the encoder was too busy to take.
    pub captures_skipped: u64,
    /// Keyframes sent.
    pub keyframes: u64,
    /// The congestion controller's last target, kbit/s.
    pub target_kbps: u64,
    /// Media datagrams lost before repair in the receiver's last interval, percent.
    pub loss_pct_last_interval: f64,
    /// Times the receiver started over.
    pub receiver_restarts: u64,
    /// Radio stalls the receiver recognised (and kept out of congestion control).
    pub stalls: u64,
    /// The period it learned they repeat with, ms.
    pub stall_period_ms: Option<f64>,
    /// An error either end reported, if any.
    pub error: Option<String>,
}

/// One timed run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// The simulator's per-frame figures over the real run's frame records.
    #[serde(flatten)]
    pub frames: FrameFigures,
    /// Per-frame encode time (capture handed to the encoder → packet out), the counted
    /// frames', ms.
    pub encode_ms: Percentiles,
    /// Per-frame decode time (one decode, dav1d or OpenH264), every frame decoded during the
    /// run, ms.
    pub decode_ms: Percentiles,
    /// Video bitrate delivered, kbit/s: the encoded bytes of every frame the receiver
    /// decoded (complete frames, shown or decode-only: frame payload, no packet headers,
    /// parity, duplicates, or fragments of frames given up; a frame the decoder refused is not
    /// counted) during the counted seconds, × 8 / those seconds. The simulator's
    /// `video_mbps` counts the same bytes.
    pub delivered_kbps: f64,
    /// The sender's congestion-control target over the same seconds, kbit/s: its
    /// time-weighted mean, the target read every 50 ms ([`tandem::Sender::target_bitrates`]).
    pub target_kbps_mean: f64,
    /// `delivered_kbps` as a percentage of `target_kbps_mean`.
    pub delivered_pct_of_target: f64,
    /// Picture quality of the counted frames shown.
    pub psnr: PsnrFigures,
    /// Pictures shown whose pixel code could not be read (not attributable to a capture,
    /// so counted as never shown).
    pub codes_unread: u64,
    /// The engine's totals.
    pub engine: EngineSummary,
    /// The relay's (path 0's, over two paths).
    pub relay: RelaySummary,
    /// Path 1's relay, over two paths.
    pub second_relay: Option<RelaySummary>,
}

/// PSNR of shown frames against the source pictures they came from ([`source_picture`]),
/// over the frames scored: every [`PipelineConfig::psnr_every`]th frame shown whose capture
/// (from its pixel code) falls in the counted seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PsnrFigures {
    /// Median, dB (`None`: nothing scored).
    pub p50_db: Option<f64>,
    /// 5th percentile (nearest rank), dB: at most a twentieth of the frames score below it.
    pub p5_db: Option<f64>,
    /// Frames scored.
    pub frames_scored: u64,
    /// Frames sampled but not scored because the PSNR thread was behind (its queue full),
    /// from the start of the counted seconds to the end of the run.
    pub samples_dropped: u64,
    /// One frame of this many shown was sampled (0: PSNR off).
    pub every: u32,
}

impl PsnrFigures {
    /// The figures of the scores whose capture is in `[t0_wall, end_wall)` (µs).
    pub fn of(scored: &[Scored], t0_wall: u64, end_wall: u64, every: u32, dropped: u64) -> Self {
        let mut db: Vec<f64> = scored
            .iter()
            .filter(|s| (t0_wall..end_wall).contains(&s.capture_wall_us))
            .map(|s| s.psnr_db)
            .collect();
        db.sort_by(f64::total_cmp);
        let at = |q| (!db.is_empty()).then(|| tandem_proto::stats::percentile(&db, q));
        PsnrFigures {
            p50_db: at(0.50),
            p5_db: at(0.05),
            frames_scored: db.len() as u64,
            samples_dropped: dropped,
            every,
        }
    }
}

/// Turns a run's captures and displays into the simulator's frame records: one per capture
/// in `[t0_wall, end_wall)` (µs), times since `t0_wall`.
pub fn frame_records(
    captures: &[Capture],
    shown: &[Shown],
    t0_wall: u64,
    end_wall: u64,
) -> Vec<FrameRecord> {
    let by_id: HashMap<u32, &Shown> = shown.iter().map(|s| (s.frame_id, s)).collect();
    let since = |wall: u64| Duration::from_micros(wall.saturating_sub(t0_wall));
    captures
        .iter()
        .filter(|c| (t0_wall..end_wall).contains(&c.wall_us))
        .map(|c| {
            let shown = by_id.get(&c.frame_id);
            FrameRecord {
                frame_id: c.frame_id,
                skipped_by_encoder: false,
                // The capture time as the picture itself tells it, when it was shown.
                capture: since(shown.map_or(c.wall_us, |s| s.capture_wall_us)),
                shown_at: shown.map(|s| since(s.shown_wall_us)),
                decoded: shown.is_some(),
                completed_at: None,
                repaired: false,
                keyframe: false,
            }
        })
        .collect()
}

/// The stall windows overlapping `[t0, t0 + seconds)`, as times since `t0`.
pub fn windows_since(
    windows: &[(Instant, Instant)],
    t0: Instant,
    seconds: Duration,
) -> Vec<(Duration, Duration)> {
    windows
        .iter()
        .filter(|&&(s, e)| e > t0 && s < t0 + seconds)
        .map(|&(s, e)| (s.saturating_duration_since(t0), e - t0))
        .collect()
}

fn ms_samples(samples: &[Duration]) -> Percentiles {
    let v: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    Percentiles::of(&v)
}

/// Runs `config` for `warmup` (not counted: the encoder's first keyframe and start-up),
/// then counts the frames captured in the next `seconds`, waits [`GRACE`] for those still
/// in flight, stops, and computes the figures.
pub fn measure(
    config: &PipelineConfig,
    warmup: Duration,
    seconds: Duration,
) -> Result<Measured, PipelineError> {
    let p = Pipeline::start(config)?;
    let (encode_rx, decode_rx) = (p.sender().encode_times(), p.receiver().decode_times());
    let (sender_stats, receiver_stats) = (p.sender().stats(), p.receiver().stats());
    let targets = p.sender().target_bitrates();
    std::thread::sleep(warmup);
    let t0 = Instant::now();
    let t0_wall = wall_us();
    let end_wall = t0_wall + seconds.as_micros() as u64;
    let stop = t0 + seconds + GRACE;
    // Samples from before the run are the warm-up's.
    let _ = encode_rx.try_iter().count();
    let _ = decode_rx.try_iter().count();
    let unread_before = p.codes_unread();
    let (bytes_before, dropped_before) = (p.delivered_bytes(), p.psnr_samples_dropped());
    let mut last_sent: Option<Stats> = sender_stats.try_iter().last();
    let mut last_received: Option<Stats> = None;
    // The target in force: the newest the sender offered, or failing that its last stats.
    let mut target_kbps = targets
        .try_iter()
        .last()
        .map(f64::from)
        .or_else(|| last_sent.as_ref().map(|s| s.target_kbps as f64))
        .unwrap_or(0.0);
    let mut target_kbps_s = 0.0;
    let mut since = t0;
    // When the counted seconds ended (the first look past them) and the bytes by then.
    let mut window_end: Option<(Instant, u64)> = None;
    let mut shown = Vec::new();
    let mut encode: Vec<(u32, Duration)> = Vec::new();
    let mut decode = Vec::new();
    while let Some(left) = stop.checked_duration_since(Instant::now()) {
        // Wake at least every 50 ms: the sample streams keep only their newest 1024.
        if let Ok(s) = p.shown().recv_timeout(left.min(Duration::from_millis(50))) {
            shown.push(s);
        }
        shown.extend(p.shown().try_iter());
        encode.extend(encode_rx.try_iter());
        decode.extend(decode_rx.try_iter().map(|(_, d)| d));
        last_sent = sender_stats.try_iter().last().or(last_sent);
        last_received = receiver_stats.try_iter().last().or(last_received);
        if window_end.is_none() {
            // The target held since the last look; a new one counts from now (it came at
            // most 50 ms ago).
            let now = Instant::now();
            target_kbps_s += target_kbps * (now - since).as_secs_f64();
            since = now;
            if let Some(k) = targets.try_iter().last() {
                target_kbps = f64::from(k);
            }
            if now >= t0 + seconds {
                window_end = Some((now, p.delivered_bytes()));
            }
        }
    }
    let windows = windows_since(&p.relay().stall_windows(), t0, seconds);
    let captures = p.captures();
    let relay = RelaySummary::of(&p.relay().counters());
    let second_relay = p.second_relay().map(|r| RelaySummary::of(&r.counters()));
    let codes_unread = p.codes_unread() - unread_before;
    let psnr_dropped = p.psnr_samples_dropped() - dropped_before;
    let error = p.sender().error().or_else(|| p.receiver().error());
    let (end, bytes_after) = window_end.unwrap_or((Instant::now(), p.delivered_bytes()));
    let scored = p.shutdown()?;

    let records = frame_records(&captures, &shown, t0_wall, end_wall);
    let counted: HashSet<u32> = records.iter().map(|r| r.frame_id).collect();
    let encode: Vec<Duration> = encode
        .into_iter()
        .filter(|(id, _)| counted.contains(id))
        .map(|(_, d)| d)
        .collect();
    let sent = last_sent.unwrap_or_default();
    let received = last_received.unwrap_or_default();
    let counted_s = (end - t0).as_secs_f64().max(1e-3);
    let delivered_kbps = (bytes_after - bytes_before) as f64 * 8.0 / counted_s / 1e3;
    let target_kbps_mean = target_kbps_s / counted_s;
    Ok(Measured {
        frames: frame_figures(&records, config.frame_interval(), &windows),
        delivered_kbps,
        target_kbps_mean,
        delivered_pct_of_target: if target_kbps_mean > 0.0 {
            delivered_kbps * 100.0 / target_kbps_mean
        } else {
            0.0
        },
        psnr: PsnrFigures::of(&scored, t0_wall, end_wall, config.psnr_every, psnr_dropped),
        encode_ms: ms_samples(&encode),
        decode_ms: ms_samples(&decode),
        codes_unread,
        engine: EngineSummary {
            frames_encoded: sent.frames_sent,
            captures_skipped: sent.captures_skipped,
            keyframes: sent.keyframes,
            target_kbps: sent.target_kbps,
            loss_pct_last_interval: received.loss_pct,
            receiver_restarts: received.restarts,
            stalls: received.stalls,
            stall_period_ms: received.stall_period_ms,
            error,
        },
        relay,
        second_relay,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_picture_rebuilt_from_the_code_is_the_senders_exactly() {
        // The sender's own source, capturing on the wall clock (past 2⁴⁸ µs, so the code
        // keeps only the low bits of what was stamped).
        let mut source = TestPatternSource::new(640, 360, 60).expect("pattern");
        let now = wall_us();
        assert!(now > tandem_codec::pixelcode::CAPTURE_MASK);
        let sent: Vec<Frame> = (0..6u64)
            .map(|i| {
                source
                    .capture(now + i * 16_667)
                    .expect("capture")
                    .picture()
                    .expect("never ends")
            })
            .collect();
        let mut pattern = TestPattern::new(640, 360, 60, 1).expect("pattern");
        // In any order: each rebuild stands alone.
        for original in sent.iter().rev() {
            let code = tandem_codec::pixelcode::read(original).expect("a code");
            let rebuilt = source_picture(&mut pattern, code);
            assert!(rebuilt.same_picture(original), "frame {}", original.id);
            assert_eq!(
                tandem_codec::psnr(&rebuilt, original).expect("same size"),
                f64::INFINITY
            );
        }
        // And another frame's picture is not the same one.
        let code = tandem_codec::pixelcode::read(&sent[1]).expect("a code");
        let other = tandem_codec::psnr(&source_picture(&mut pattern, code), &sent[0]);
        assert!(other.expect("same size") < 40.0);
    }

    #[test]
    fn the_source_picture_is_a_pattern_frame_stamped_apart_exactly() {
        // As screen-report's drawing thread makes its pictures: frame n rendered ahead,
        // stamped with the wall clock (all 64 bits) as its drawing starts.
        let pattern = TestPattern::new(1280, 720, 60, 1).expect("pattern");
        let mut rebuild = TestPattern::new(1280, 720, 60, 1).expect("pattern");
        let now = wall_us();
        for n in [0u32, 1, 59, 1_000, 70_000] {
            let mut drawn = pattern.frame_at(n);
            tandem_codec::pixelcode::stamp(
                &mut drawn,
                PixelCode {
                    frame_id: n,
                    capture_us: now + u64::from(n) * 16_667,
                },
            );
            let code = tandem_codec::pixelcode::read(&drawn).expect("a code");
            assert_eq!(code.frame_id, n);
            assert!(
                source_picture(&mut rebuild, code).same_picture(&drawn),
                "frame {n}"
            );
        }
    }

    #[test]
    fn the_sink_passes_on_coded_pictures_counts_the_rest_and_samples_every_nth() {
        let mut pattern = TestPattern::new(640, 360, 60, 1).expect("pattern");
        let (shown_tx, shown_rx) = unbounded();
        let (sample_tx, sample_rx) = bounded(2);
        let (sink, counters) = MeasuringSink::new(shown_tx);
        let mut sink = sink.sampling(sample_tx, 3);
        let now = Instant::now();
        let start = wall_us();
        let show = |frame: Frame, code| DisplayFrame {
            frame,
            keyframe: false,
            capture_us: 0,
            completed_at: now,
            released_at: now,
            decoded_at: now,
            code,
            g2g: None,
        };
        for _ in 0..10 {
            let f = pattern.next_frame_at(start);
            let code = tandem_codec::pixelcode::read(&f);
            sink.on_frame(show(f, code));
        }
        sink.on_frame(show(Frame::black(640, 360), None));
        sink.on_encoded(&EncodedVideo {
            frame_id: 0,
            codec: tandem_proto::Codec::Av1,
            keyframe: true,
            display: true,
            capture_us: 0,
            data: bytes::Bytes::from_static(&[0; 1200]),
            released_at: now,
            size: None,
        });
        let shown: Vec<Shown> = shown_rx.try_iter().collect();
        assert_eq!(
            shown.iter().map(|s| s.frame_id).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        assert!(
            shown
                .iter()
                .all(|s| s.capture_wall_us == start && s.shown_wall_us >= start)
        );
        // Frames 0, 3, 6 and 9 sampled; the queue holds two, so two were dropped.
        let samples: Vec<Sample> = sample_rx.try_iter().collect();
        assert_eq!(
            samples.iter().map(|s| s.code.frame_id).collect::<Vec<_>>(),
            [0, 3]
        );
        assert_eq!(
            samples[1]
                .score(&mut pattern)
                .map(|s| (s.capture_wall_us, s.psnr_db)),
            Some((start, f64::INFINITY))
        );
        assert_eq!(
            (
                counters.codes_unread(),
                counters.delivered_bytes(),
                counters.samples_dropped()
            ),
            (1, 1200, 2)
        );
    }

    #[test]
    fn psnr_figures_count_the_window_only() {
        let scored: Vec<Scored> = (0..40u64)
            .map(|i| Scored {
                capture_wall_us: 1_000 + i,
                psnr_db: 30.0 + i as f64 * 0.25,
            })
            .collect();
        // The first 20 are in the window: 30.0 to 34.75 dB.
        let f = PsnrFigures::of(&scored, 1_000, 1_020, 4, 2);
        assert_eq!(f.frames_scored, 20);
        assert_eq!(f.p50_db, Some(32.25), "nearest rank: the 10th of 20");
        assert_eq!(f.p5_db, Some(30.0), "the 1st of 20");
        assert_eq!((f.every, f.samples_dropped), (4, 2));
        let none = PsnrFigures::of(&[], 0, 1, 0, 0);
        assert_eq!(
            (none.p50_db, none.p5_db, none.frames_scored),
            (None, None, 0)
        );
    }

    #[test]
    fn records_count_every_capture_in_the_window_and_use_the_code_capture() {
        let t0 = 1_000_000;
        let captures: Vec<Capture> = (0..5)
            .map(|i| Capture {
                frame_id: i,
                wall_us: t0 - 16_667 + u64::from(i) * 16_667,
            })
            .collect();
        let shown = [
            Shown {
                frame_id: 0,
                capture_wall_us: captures[0].wall_us,
                shown_wall_us: t0 + 5_000,
            },
            Shown {
                frame_id: 2,
                capture_wall_us: captures[2].wall_us,
                shown_wall_us: captures[2].wall_us + 7_000,
            },
        ];
        // Frame 0 predates the window, frame 4 is past its end.
        let r = frame_records(&captures, &shown, t0, t0 + 3 * 16_667);
        assert_eq!(r.iter().map(|f| f.frame_id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(r[0].shown_at, None);
        assert_eq!(r[1].capture, Duration::from_micros(16_667));
        assert_eq!(r[1].latency(), Some(Duration::from_millis(7)));
        assert_eq!(shown[1].g2g(), Duration::from_millis(7));
    }

    #[test]
    fn stall_windows_map_onto_the_run_and_clip_at_its_start() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let windows = [
            (t0, t0 + ms(10)),
            (t0 + ms(500), t0 + ms(540)),
            (t0 + ms(2000), t0 + ms(2040)),
        ];
        let w = windows_since(&windows, t0 + ms(5), ms(1000));
        assert_eq!(w, [(ms(0), ms(5)), (ms(495), ms(535))]);
    }
}
