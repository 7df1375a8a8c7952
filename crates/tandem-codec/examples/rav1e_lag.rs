//! Measures how much lag (frames held inside the encoder) and latency the
//! rav1e 0.8 AV1 encoder adds, under every setting that could lower them.
//!
//! `cargo run --release -p tandem-codec --example rav1e_lag -- --res 360 --repeat 3`
//!
//! The crate's test pattern is fed to `rav1e::Context` either at a
//! live capture rate (the loop sleeps until each frame's capture time) or as
//! fast as possible. After every `send_frame` the loop drains `receive_packet`
//! until it reports `NeedMoreData`, exactly as a live streaming engine would.
//!
//! Per output packet it records which input frame it carries
//! (`packet.input_frameno`) and how many frames had been submitted when it
//! came out. From that it derives:
//!
//! * lag in frames: frames submitted *after* frame `n` before `n`'s packet
//!   appeared (0 would mean "packet out during the same `send_frame` call");
//! * latency: time from frame `n`'s `send_frame` to its packet leaving
//!   `receive_packet` (p50/p95/p99), and the same from its capture time;
//! * encode throughput (frames per second of time spent inside rav1e calls)
//!   and the achieved bitrate.
//!
//! Usage:
//!   rav1elag [--res 360|720] [--frames N] [--fast] [--repeat R] [--only SUBSTRING]
//!
//! `--res 360` is 640x360 at 60 fps, `--res 720` is 1280x720 at 30 fps.
//! `--fast` feeds frames back to back instead of at the capture rate.
//! `--repeat` runs every variant R times (round-robin) and pools the samples.
//! `--only` runs just the variants whose name contains SUBSTRING.

use std::error::Error;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rav1e::prelude::*;

/// Result type for this example: any error is reported and ends the program.
type AnyResult<T> = Result<T, Box<dyn Error>>;

fn main() -> AnyResult<()> {
    let args = Args::parse()?;
    let resolution = args.resolution;
    eprintln!(
        "generating {} frames of {}x{} synthetic content...",
        args.frames, resolution.width, resolution.height
    );
    let frames = generate_clip(&resolution, args.frames)?;

    demonstrate_flush_ends_stream(&resolution, &frames)?;

    let pacing_name = match args.pacing {
        Pacing::Live => format!("live {} fps", resolution.fps),
        Pacing::AsFastAsPossible => "as fast as possible".to_string(),
    };
    let mut table = String::new();
    writeln!(
        table,
        "\n### {}x{}, {}, {} frames x {} run(s), {} cores\n",
        resolution.width,
        resolution.height,
        pacing_name,
        args.frames,
        args.repeat,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )?;
    table.push_str(TABLE_HEADER);

    let selected: Vec<Variant> = variants(&resolution)
        .into_iter()
        .filter(|variant| {
            args.only
                .as_ref()
                .is_none_or(|filter| variant.name.contains(filter.as_str()))
        })
        .collect();
    // Timing on a shared 2-core VM drifts by tens of percent between runs,
    // so repeats go round-robin over all variants: a slow patch of time then
    // hits every variant instead of whichever happened to run during it.
    let mut outcomes: Vec<Result<Vec<RunRecord>, String>> =
        selected.iter().map(|_| Ok(Vec::new())).collect();
    for round in 0..args.repeat {
        for (variant, outcome) in selected.iter().zip(outcomes.iter_mut()) {
            let Ok(runs) = outcome else {
                continue;
            };
            let mut setup = baseline(&resolution);
            (variant.apply)(&mut setup);
            eprintln!("round {}/{}: {}", round + 1, args.repeat, variant.name);
            match run_encode(&setup, &resolution, &frames, args.pacing) {
                Ok(run) => runs.push(run),
                // Invalid configurations are part of the findings, not a crash.
                Err(err) => *outcome = Err(err.to_string()),
            }
        }
    }
    for (variant, outcome) in selected.iter().zip(&outcomes) {
        let row = match outcome {
            Ok(runs) => summarize(&variant.name, runs, &resolution, args.frames),
            Err(err) => format!("| {} | rejected: {err} | | | | | | | |\n", variant.name),
        };
        table.push_str(&row);
    }
    println!("{table}");
    Ok(())
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// How frames are fed to the encoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pacing {
    /// Sleep until each frame's capture time, like a camera or screen grab.
    Live,
    /// Submit the next frame as soon as the previous one was drained.
    AsFastAsPossible,
}

/// Frame size, frame rate and the matching rate-control/tiling defaults.
#[derive(Clone, Copy, Debug)]
struct Resolution {
    width: usize,
    height: usize,
    fps: u64,
    bitrate_kbps: i32,
    baseline_tiles: usize,
}

impl Resolution {
    const P360: Self = Self {
        width: 640,
        height: 360,
        fps: 60,
        bitrate_kbps: 1500,
        baseline_tiles: 2,
    };
    const P720: Self = Self {
        width: 1280,
        height: 720,
        fps: 30,
        bitrate_kbps: 3000,
        baseline_tiles: 4,
    };

    fn frame_interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.fps as f64)
    }
}

struct Args {
    resolution: Resolution,
    frames: usize,
    pacing: Pacing,
    only: Option<String>,
    repeat: usize,
}

impl Args {
    fn parse() -> AnyResult<Self> {
        let mut args = Args {
            resolution: Resolution::P360,
            frames: 150,
            pacing: Pacing::Live,
            only: None,
            repeat: 1,
        };
        let mut iter = std::env::args().skip(1);
        while let Some(flag) = iter.next() {
            match flag.as_str() {
                "--res" => {
                    args.resolution = match iter.next().as_deref() {
                        Some("360") => Resolution::P360,
                        Some("720") => Resolution::P720,
                        other => {
                            return Err(format!("--res expects 360 or 720, got {other:?}").into());
                        }
                    }
                }
                "--frames" => {
                    let value = iter.next().ok_or("--frames needs a value")?;
                    args.frames = value.parse()?;
                    // Fewer frames than the deepest lookahead would emit nothing.
                    if args.frames < 30 {
                        return Err("--frames must be at least 30".into());
                    }
                }
                "--fast" => args.pacing = Pacing::AsFastAsPossible,
                "--repeat" => {
                    let value = iter.next().ok_or("--repeat needs a value")?;
                    args.repeat = value.parse::<usize>()?.max(1);
                }
                "--only" => args.only = Some(iter.next().ok_or("--only needs a value")?),
                other => return Err(format!("unknown argument {other}").into()),
            }
        }
        Ok(args)
    }
}

// ---------------------------------------------------------------------------
// Encoder settings under test
// ---------------------------------------------------------------------------

/// Everything that is varied: the bitstream settings plus the thread count,
/// which lives on `Config` rather than `EncoderConfig`.
struct Setup {
    enc: EncoderConfig,
    threads: usize,
}

/// The low-latency baseline every variant changes one thing from.
fn baseline(resolution: &Resolution) -> Setup {
    let mut enc = EncoderConfig::with_speed_preset(10);
    enc.width = resolution.width;
    enc.height = resolution.height;
    enc.time_base = Rational::new(1, resolution.fps);
    enc.bit_depth = 8;
    enc.chroma_sampling = ChromaSampling::Cs420;
    // No frame reordering: InterConfig::new() then uses a group of 1 frame.
    enc.low_latency = true;
    // The smallest value Config::validate() accepts.
    enc.speed_settings.rdo_lookahead_frames = 1;
    enc.bitrate = resolution.bitrate_kbps * 1000;
    // In bitrate mode `quantizer` is a *maximum* quantizer; 255 removes that
    // cap so RCState enforces its hard per-frame limit instead (what a
    // bandwidth-limited stream wants). This is what the rav1e CLI does too.
    enc.quantizer = 255;
    enc.tiles = resolution.baseline_tiles;
    Setup { enc, threads: 2 }
}

/// One named change from the baseline.
struct Variant {
    name: String,
    apply: Box<dyn Fn(&mut Setup)>,
}

impl Variant {
    fn new(name: impl Into<String>, apply: impl Fn(&mut Setup) + 'static) -> Self {
        Self {
            name: name.into(),
            apply: Box::new(apply),
        }
    }
}

fn variants(resolution: &Resolution) -> Vec<Variant> {
    let preset10_rdo = SpeedSettings::from_preset(10).rdo_lookahead_frames;
    let mut list = vec![
        Variant::new("baseline", |_| {}),
        Variant::new("low_latency=false (reordering)", |s| {
            s.enc.low_latency = false
        }),
        Variant::new(
            format!("rdo_lookahead_frames={preset10_rdo} (preset default)"),
            move |s| s.enc.speed_settings.rdo_lookahead_frames = preset10_rdo,
        ),
        Variant::new("rdo_lookahead_frames=3", |s| {
            s.enc.speed_settings.rdo_lookahead_frames = 3
        }),
        Variant::new("rdo_lookahead_frames=0 (below minimum)", |s| {
            s.enc.speed_settings.rdo_lookahead_frames = 0
        }),
        Variant::new("scene_detection_mode=None", |s| {
            s.enc.speed_settings.scene_detection_mode = SceneDetectionSpeed::None
        }),
        Variant::new("scene_detection_mode=Standard", |s| {
            s.enc.speed_settings.scene_detection_mode = SceneDetectionSpeed::Standard
        }),
        Variant::new("reservoir_frame_delay=12 (minimum)", |s| {
            s.enc.reservoir_frame_delay = Some(12)
        }),
        Variant::new("quantizer mode (bitrate=0, quantizer=100)", |s| {
            s.enc.bitrate = 0;
            s.enc.quantizer = 100;
        }),
        Variant::new("threads=1", |s| s.threads = 1),
        Variant::new("threads=4", |s| s.threads = 4),
    ];
    for tiles in [1, 2, 4, 8] {
        if tiles != resolution.baseline_tiles {
            list.push(Variant::new(format!("tiles={tiles}"), move |s| {
                s.enc.tiles = tiles
            }));
        }
    }
    list.extend([
        Variant::new("speed preset 9 (rdo_lookahead_frames=1)", |s| {
            s.enc.speed_settings = SpeedSettings::from_preset(9);
            s.enc.speed_settings.rdo_lookahead_frames = 1;
        }),
        Variant::new("max_key_frame_interval=0 (infinite)", |s| {
            s.enc.max_key_frame_interval = 0
        }),
        Variant::new("max_key_frame_interval=30", |s| {
            s.enc.max_key_frame_interval = 30
        }),
        Variant::new("min_key_frame_interval=0", |s| {
            s.enc.min_key_frame_interval = 0
        }),
        Variant::new("switch_frame_interval=30", |s| {
            s.enc.switch_frame_interval = 30
        }),
        Variant::new("error_resilient=true", |s| s.enc.error_resilient = true),
        Variant::new("tune=Psnr", |s| s.enc.tune = Tune::Psnr),
        Variant::new("temporal RDO on (tx_domain_distortion=false)", |s| {
            s.enc.speed_settings.transform.tx_domain_distortion = false
        }),
        Variant::new("multiref=true", |s| s.enc.speed_settings.multiref = true),
        // The baseline again, last, to show run-to-run drift.
        Variant::new("baseline (repeated last: drift check)", |_| {}),
        // The two settings that cut encoder work without touching lag or the
        // keyframe cadence a live stream needs, together.
        Variant::new("combined: scene None + tune Psnr", |s| {
            s.enc.speed_settings.scene_detection_mode = SceneDetectionSpeed::None;
            s.enc.tune = Tune::Psnr;
        }),
    ]);
    list
}

fn build_context(setup: &Setup) -> AnyResult<Context<u8>> {
    let config = Config::new()
        .with_encoder_config(setup.enc.clone())
        .with_threads(setup.threads);
    Ok(config.new_context()?)
}

// ---------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------

/// One packet as it left `receive_packet`.
struct PacketRecord {
    input_frameno: u64,
    /// How many frames had been passed to `send_frame` when it came out.
    frames_submitted: u64,
    emitted_at: Instant,
    bytes: usize,
    /// True for packets only released by the final `flush()`; a live stream
    /// never flushes, so these are excluded from lag and latency statistics.
    from_flush: bool,
}

struct RunRecord {
    packets: Vec<PacketRecord>,
    /// When each frame was handed to `send_frame`.
    submitted_at: Vec<Instant>,
    /// When each frame was (nominally) captured.
    captured_at: Vec<Instant>,
    /// Wall time spent inside `send_frame` and `receive_packet`.
    busy: Duration,
}

fn run_encode(
    setup: &Setup,
    resolution: &Resolution,
    frames: &[Arc<Frame<u8>>],
    pacing: Pacing,
) -> AnyResult<RunRecord> {
    let mut ctx = build_context(setup)?;
    let interval = resolution.frame_interval();
    let mut record = RunRecord {
        packets: Vec::with_capacity(frames.len()),
        submitted_at: Vec::with_capacity(frames.len()),
        captured_at: Vec::with_capacity(frames.len()),
        busy: Duration::ZERO,
    };
    // Leave a little time before the first capture so context setup (thread
    // pool start) is not charged to frame 0.
    let stream_start = Instant::now() + Duration::from_millis(20);

    for (index, frame) in frames.iter().enumerate() {
        let capture_time = stream_start + interval * index as u32;
        if pacing == Pacing::Live {
            let now = Instant::now();
            if capture_time > now {
                std::thread::sleep(capture_time - now);
            }
        }
        let submit_time = Instant::now();
        // In fast mode a frame is "captured" the moment it is submitted.
        record.captured_at.push(match pacing {
            Pacing::Live => capture_time,
            Pacing::AsFastAsPossible => submit_time,
        });
        record.submitted_at.push(submit_time);

        // Cloning the Arc is cheap; frames are already padded, so rav1e does
        // not need exclusive ownership to pad them.
        ctx.send_frame(Arc::clone(frame))?;
        drain_packets(&mut ctx, &mut record, index as u64 + 1, false)?;
        record.busy += submit_time.elapsed();
    }

    // The live part is over. Flushing releases the frames still held in the
    // lookahead so their bytes count towards the bitrate, but it ends the
    // stream: it is never usable to cut latency in a live encoder.
    let flush_start = Instant::now();
    ctx.flush();
    drain_packets(&mut ctx, &mut record, frames.len() as u64, true)?;
    record.busy += flush_start.elapsed();
    Ok(record)
}

/// Polls `receive_packet` until the encoder needs another frame.
fn drain_packets(
    ctx: &mut Context<u8>,
    record: &mut RunRecord,
    frames_submitted: u64,
    from_flush: bool,
) -> AnyResult<()> {
    loop {
        match ctx.receive_packet() {
            Ok(packet) => record.packets.push(PacketRecord {
                input_frameno: packet.input_frameno,
                frames_submitted,
                emitted_at: Instant::now(),
                bytes: packet.data.len(),
                from_flush,
            }),
            // `Encoded` means a frame was coded without completing a temporal
            // unit (a hidden frame when reordering); the encoder has made
            // progress and may have a packet on the next call, so stopping
            // here would add a frame of lag that is ours, not rav1e's.
            Err(EncoderStatus::Encoded) => continue,
            Err(EncoderStatus::NeedMoreData) | Err(EncoderStatus::LimitReached) => {
                return Ok(());
            }
            Err(other) => return Err(Box::new(other)),
        }
    }
}

/// Nearest-rank percentile of an already sorted slice.
fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn milliseconds(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

const TABLE_HEADER: &str = "| setting | lag frames max / median | latency p50 / p95 / p99 ms (submit→packet) | capture→packet p95 ms | max send slip ms | encode fps median (min–max) | kbps | packets live / flush | verdict |\n\
|---|---|---|---|---|---|---|---|---|\n";

/// Turns the repeated runs of one variant into a markdown table row. Lag and
/// latency samples are pooled over all runs; throughput is the median run.
fn summarize(
    name: &str,
    runs: &[RunRecord],
    resolution: &Resolution,
    frame_count: usize,
) -> String {
    let live_packets = || {
        runs.iter().flat_map(|run| {
            run.packets
                .iter()
                .filter(|p| !p.from_flush)
                .map(move |p| (run, p))
        })
    };

    let mut lags: Vec<u64> = live_packets()
        .map(|(_, p)| p.frames_submitted - (p.input_frameno + 1))
        .collect();
    lags.sort_unstable();
    let lag_max = lags.last().copied().unwrap_or(0);
    let lag_median = lags.get(lags.len() / 2).copied().unwrap_or(0);

    let mut latencies: Vec<f64> = live_packets()
        .map(|(run, p)| milliseconds(p.emitted_at - run.submitted_at[p.input_frameno as usize]))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let mut capture_latencies: Vec<f64> = live_packets()
        .map(|(run, p)| milliseconds(p.emitted_at - run.captured_at[p.input_frameno as usize]))
        .collect();
    capture_latencies.sort_by(f64::total_cmp);

    // How late frames were submitted relative to their capture time: nonzero
    // means the encoder could not keep up with the live frame rate.
    let max_slip = runs
        .iter()
        .flat_map(|run| run.submitted_at.iter().zip(&run.captured_at))
        .map(|(submitted, captured)| milliseconds(submitted.saturating_duration_since(*captured)))
        .fold(0.0, f64::max);

    let mut fps_per_run: Vec<f64> = runs
        .iter()
        .map(|run| frame_count as f64 / run.busy.as_secs_f64())
        .collect();
    fps_per_run.sort_by(f64::total_cmp);
    let encode_fps = percentile(&fps_per_run, 0.5);
    let fps_range = match (fps_per_run.first(), fps_per_run.last()) {
        (Some(low), Some(high)) if runs.len() > 1 => format!(" ({low:.1}–{high:.1})"),
        _ => String::new(),
    };

    // Encoding is deterministic, so every run produced the same bytes.
    let Some(first_run) = runs.first() else {
        return format!("| {name} | no runs | | | | | | | |\n");
    };
    let total_bytes: usize = first_run.packets.iter().map(|p| p.bytes).sum();
    let stream_seconds = frame_count as f64 / resolution.fps as f64;
    let kbps = total_bytes as f64 * 8.0 / stream_seconds / 1000.0;
    let flushed = first_run.packets.iter().filter(|p| p.from_flush).count();
    let live = first_run.packets.len() - flushed;
    let verdict = if encode_fps < resolution.fps as f64 {
        "too slow for real time"
    } else {
        "keeps up"
    };

    format!(
        "| {name} | {lag_max} / {lag_median} | {:.1} / {:.1} / {:.1} | {:.1} | {max_slip:.1} | {encode_fps:.1}{fps_range} | {kbps:.0} | {live} / {flushed} | {verdict} |\n",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
        percentile(&capture_latencies, 0.95),
    )
}

/// Shows, rather than asserts, that `flush()` is not a latency trick: after
/// it the context rejects further frames with `EnoughData`.
fn demonstrate_flush_ends_stream(
    resolution: &Resolution,
    frames: &[Arc<Frame<u8>>],
) -> AnyResult<()> {
    let mut ctx = build_context(&baseline(resolution))?;
    ctx.send_frame(Arc::clone(&frames[0]))?;
    ctx.flush();
    let mut flushed_packets = 0;
    while let Ok(_packet) = ctx.receive_packet() {
        flushed_packets += 1;
    }
    let after_flush = ctx.send_frame(Arc::clone(&frames[1]));
    eprintln!(
        "flush check: flush released {flushed_packets} packet(s); send_frame after flush -> {after_flush:?}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Content: the crate's test pattern
// ---------------------------------------------------------------------------

/// Renders the whole clip up front (tandem-codec's test pattern, the same content the codec
/// report encodes) so content generation never competes with the encoder for the cores
/// during a measurement.
fn generate_clip(resolution: &Resolution, frame_count: usize) -> AnyResult<Vec<Arc<Frame<u8>>>> {
    let (width, height) = (resolution.width, resolution.height);
    let pattern =
        tandem_codec::TestPattern::new(width as u32, height as u32, resolution.fps as u32, 1)?;
    // A frame template with exactly the padding rav1e allocates itself.
    let template = build_context(&baseline(resolution))?.new_frame();
    let planes = [
        tandem_codec::PlaneIndex::Y,
        tandem_codec::PlaneIndex::U,
        tandem_codec::PlaneIndex::V,
    ];
    let mut clip = Vec::with_capacity(frame_count);
    for index in 0..frame_count {
        let source = pattern.frame_at(u32::try_from(index)?);
        let mut frame = template.clone();
        for (plane, p) in frame.planes.iter_mut().zip(planes) {
            plane.copy_from_raw_u8(source.plane(p), source.stride(p), 1);
        }
        // rav1e only pads frames it owns exclusively; padding here lets one shared
        // Arc<Frame> be fed to every variant.
        for plane in &mut frame.planes {
            plane.pad(width, height);
        }
        clip.push(Arc::new(frame));
    }
    Ok(clip)
}
