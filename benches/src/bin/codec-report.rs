//! `codec-report`: encode and decode the test pattern at a live rate and print what it cost.
//!
//! For each encoder × {640×360@60, 1280×720@30}, frames are captured on a real clock (one
//! every frame interval, rendered before their capture instant), encoded on this thread
//! and decoded on a second one, as the engine's pipeline does. A capture instant that
//! arrives while the encoder is still busy with an earlier frame is skipped, as a live
//! camera's frame would be, and counted: `frames_skipped > 0` means the pair fell behind.
//!
//! Figures per run:
//! - `encode_ms`: from a frame's submission to the encoder until its packet came out (for a
//!   lagging encoder, that includes the later frames it waited for). Frames that came out
//!   only when the stream was finished are not counted.
//! - `lag_frames`: most frames submitted but not yet returned (the encoder's own count).
//! - `achieved_kbps` over the whole run against `target_kbps`.
//! - `psnr_db`: decoded pictures against their sources; `codes_read_pct`: pixel codes read
//!   back from the decoded pictures.
//! - `decode_ms`: one `Dav1dDecoder::decode` call, picture out as a `Frame` included.
//!
//! Then two paired comparisons, each alternating the two sides frame by frame on the same
//! input so machine noise hits both alike: `AomEncoder` against libaom called directly with
//! the same settings (`wrapper_cost`), and `Dav1dDecoder::decode` (which hands out a
//! `Frame`) against dav1d's own `send_data` + `get_picture` (`decoder_output_cost`).

use std::collections::HashMap;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde::Serialize;
use tandem_benches::raw_aom::RawAom;
use tandem_codec::{
    Dav1dDecoder, DecoderConfig, EncodedFrame, EncoderConfig, EncoderKind, Frame, PixelCode,
    TestPattern, new_encoder, pixelcode, psnr,
};
use tandem_sim::report::Percentiles;

#[derive(Parser, Debug)]
#[command(about = "Live-rate encode/decode latency, lag, bitrate and quality of each AV1 encoder")]
struct Args {
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds of live capture per run.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Only this encoder (`aom` or `rav1e`); default both.
    #[arg(long)]
    encoder: Option<EncoderKind>,
    /// Frames in each paired wrapper-cost comparison (at least 2).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(2..))]
    paired_frames: u32,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0.5 to 3600")),
    }
}

const CASES: [(u32, u32, u32); 2] = [(640, 360, 60), (1280, 720, 30)];

#[derive(Serialize, Debug)]
struct MeanMin {
    mean: f64,
    min: f64,
}

#[derive(Serialize, Debug)]
struct P50P99 {
    p50: f64,
    p99: f64,
}

#[derive(Serialize, Debug)]
struct LiveRun {
    encoder: String,
    width: u32,
    height: u32,
    fps: u32,
    seconds: f64,
    frames_captured: u64,
    frames_skipped: u64,
    /// Of `frames_skipped`, those skipped before the first packet came out (the encoder's
    /// start-up: first keyframe and lazy allocations).
    frames_skipped_at_start: u64,
    /// Of `frames_skipped`, those skipped while the requested keyframe was being encoded.
    frames_skipped_for_keyframe: u64,
    /// Submission to packet of the first frame.
    first_frame_ms: f64,
    /// Submission to packet of a keyframe forced halfway through the run, as a receiver's
    /// request after a loss would.
    requested_keyframe_ms: Option<f64>,
    frames_encoded: u64,
    frames_flushed_at_end: u64,
    frames_decoded: u64,
    encode_ms: Percentiles,
    lag_frames: u32,
    target_kbps: u32,
    achieved_kbps: f64,
    bitrate_error_pct: f64,
    psnr_db: MeanMin,
    codes_read_pct: f64,
    decode_ms: P50P99,
}

#[derive(Serialize, Debug)]
struct PairedCost {
    width: u32,
    height: u32,
    frames: u32,
    ours_ms_p50: f64,
    baseline_ms_p50: f64,
    ours_ms_total: f64,
    baseline_ms_total: f64,
    /// Ours over baseline, total time.
    ratio: f64,
}

#[derive(Serialize, Debug)]
struct Target {
    target: String,
    value: f64,
    limit: String,
    met: bool,
}

#[derive(Serialize, Debug)]
struct Report {
    threads: usize,
    runs: Vec<LiveRun>,
    wrapper_cost: Vec<PairedCost>,
    decoder_output_cost: Vec<PairedCost>,
    targets: Vec<Target>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// What the decode thread learns from one frame.
struct Decoded {
    decode: Duration,
    psnr: f64,
    code: Option<PixelCode>,
    frame_id: u32,
}

/// Captures, encodes and decodes `seconds` of the pattern at its live rate.
fn live_run(kind: EncoderKind, w: u32, h: u32, fps: u32, seconds: f64) -> Result<LiveRun> {
    let config = EncoderConfig::new(w, h, fps).with_kind(kind);
    let mut enc = new_encoder(&config)?;
    let mut pattern = TestPattern::new(w, h, fps, 1)?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(fps));
    let total = (seconds * f64::from(fps)).round() as u32;

    let (tx, rx) = crossbeam_channel::bounded::<(EncodedFrame, Frame)>(16);
    let decoder = thread::spawn(move || -> Result<Vec<Decoded>> {
        let mut dec = Dav1dDecoder::new(&DecoderConfig::default())?;
        let mut out = Vec::new();
        for (unit, source) in rx {
            let started = Instant::now();
            let pic = dec.decode(unit.data.clone(), unit.frame_id, unit.capture_us)?;
            let decode = started.elapsed();
            let pic = pic.context("dav1d returned no picture for a unit")?;
            out.push(Decoded {
                decode,
                psnr: psnr(&source, &pic)?,
                code: pixelcode::read(&pic),
                frame_id: unit.frame_id,
            });
        }
        Ok(out)
    });

    let mut waiting: HashMap<u32, (Instant, Frame)> = HashMap::new();
    let mut encode_ms = Vec::new();
    let (mut bytes, mut skipped, mut encoded) = (0u64, 0u64, 0u64);
    let mut flushed = 0u64;
    let mut skipped_at_start = 0u64;
    let mut skipped_for_keyframe = 0u64;
    let mut keyframe_shadow = false;
    let mut first_out: Option<Instant> = None;
    let mut requested_keyframe_ms = None;
    let mut keyframe_requested = false;
    let start = Instant::now() + Duration::from_millis(20);
    let mut deliver = |units: Vec<EncodedFrame>,
                       now: Option<Instant>,
                       waiting: &mut HashMap<u32, (Instant, Frame)>|
     -> Result<u64> {
        let count = units.len() as u64;
        for u in units {
            let (submitted, source) = waiting
                .remove(&u.frame_id)
                .context("encoder returned a frame it was never given")?;
            if let Some(now) = now {
                encode_ms.push(ms(now - submitted));
                if u.keyframe && u.frame_id > 0 {
                    requested_keyframe_ms = Some(ms(now - submitted));
                }
            }
            bytes += u.data.len() as u64;
            tx.send((u, source)).context("decoder thread ended early")?;
        }
        Ok(count)
    };
    for n in 0..total {
        let due = start + interval * n;
        if Instant::now() > due + interval / 2 {
            skipped += 1;
            if first_out.is_none_or(|t| due < t) {
                skipped_at_start += 1;
            } else if keyframe_shadow {
                skipped_for_keyframe += 1;
            }
            continue;
        }
        keyframe_shadow = false;
        pattern.seek(n);
        let frame = pattern.next_frame_at((interval * n).as_micros() as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        if n >= total / 2 && !keyframe_requested {
            enc.force_keyframe();
            keyframe_requested = true;
            // Captures skipped right after this call are the keyframe's cost.
            keyframe_shadow = true;
        }
        // The source is kept for the decoder thread's PSNR by moving it, not copying it, and
        // the clock starts once it is stored: only the encoder is timed.
        let (submitted, source) = waiting.entry(n).or_insert((Instant::now(), frame));
        *submitted = Instant::now();
        let units = enc.encode(source)?;
        let now = Instant::now();
        if first_out.is_none() && !units.is_empty() {
            first_out = Some(now);
        }
        encoded += deliver(units, Some(now), &mut waiting)?;
    }
    let elapsed = start.elapsed().as_secs_f64().max(seconds);
    flushed += deliver(enc.finish()?, None, &mut waiting)?;
    encoded += flushed;
    drop(tx);
    let decoded = decoder
        .join()
        .map_err(|_| anyhow::anyhow!("decoder thread panicked"))??;

    let achieved = bytes as f64 * 8.0 / elapsed / 1000.0;
    let psnrs: Vec<f64> = decoded.iter().map(|d| d.psnr.min(99.0)).collect();
    let codes = decoded
        .iter()
        .filter(|d| d.code.is_some_and(|c| c.frame_id == d.frame_id))
        .count();
    let dec_ms = Percentiles::of(&decoded.iter().map(|d| ms(d.decode)).collect::<Vec<_>>());
    Ok(LiveRun {
        encoder: kind.to_string(),
        width: w,
        height: h,
        fps,
        seconds,
        frames_captured: u64::from(total) - skipped,
        frames_skipped: skipped,
        frames_skipped_at_start: skipped_at_start,
        frames_skipped_for_keyframe: skipped_for_keyframe,
        first_frame_ms: encode_ms.first().copied().unwrap_or(0.0),
        requested_keyframe_ms,
        frames_encoded: encoded,
        frames_flushed_at_end: flushed,
        frames_decoded: decoded.len() as u64,
        encode_ms: Percentiles::of(&encode_ms),
        lag_frames: enc.lag_frames(),
        target_kbps: config.bitrate_kbps,
        achieved_kbps: achieved,
        bitrate_error_pct: (achieved / f64::from(config.bitrate_kbps) - 1.0) * 100.0,
        psnr_db: MeanMin {
            mean: psnrs.iter().sum::<f64>() / psnrs.len().max(1) as f64,
            min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
        },
        codes_read_pct: 100.0 * codes as f64 / decoded.len().max(1) as f64,
        decode_ms: P50P99 {
            p50: dec_ms.p50,
            p99: dec_ms.p99,
        },
    })
}

fn paired(w: u32, h: u32, frames: u32, ours: &[f64], base: &[f64]) -> PairedCost {
    let (o, b) = (Percentiles::of(ours), Percentiles::of(base));
    let (ot, bt) = (ours.iter().sum::<f64>(), base.iter().sum::<f64>());
    PairedCost {
        width: w,
        height: h,
        frames,
        ours_ms_p50: o.p50,
        baseline_ms_p50: b.p50,
        ours_ms_total: ot,
        baseline_ms_total: bt,
        ratio: ot / bt,
    }
}

/// `AomEncoder` and libaom called directly, same settings, same frames, alternating which
/// goes first. `frames` must be at least 2.
fn wrapper_cost(w: u32, h: u32, fps: u32, frames: u32) -> Result<PairedCost> {
    let config = EncoderConfig::new(w, h, fps);
    let mut ours = new_encoder(&config)?;
    let mut raw = RawAom::new(&config)?;
    let pattern = TestPattern::new(w, h, fps, 1)?;
    let (mut ours_ms, mut raw_ms) = (Vec::new(), Vec::new());
    for n in 0..frames {
        let f = pattern.frame_at(n);
        let mut time_ours = || -> Result<()> {
            let t = Instant::now();
            std::hint::black_box(ours.encode(&f)?);
            ours_ms.push(ms(t.elapsed()));
            Ok(())
        };
        if n % 2 == 0 {
            time_ours()?;
        }
        let t = Instant::now();
        std::hint::black_box(raw.encode(&f)?);
        raw_ms.push(ms(t.elapsed()));
        if n % 2 == 1 {
            time_ours()?;
        }
    }
    // Frame 0 is left out: the wrapper encodes keyframes at cpu-used 10 (its own feature),
    // raw libaom at the configured speed, which would compare keyframe policy, not overhead.
    Ok(paired(w, h, frames - 1, &ours_ms[1..], &raw_ms[1..]))
}

/// `Dav1dDecoder::decode` (picture out as a `Frame`) and dav1d's own calls on the same units,
/// alternating which goes first.
fn decoder_output_cost(w: u32, h: u32, fps: u32, frames: u32) -> Result<PairedCost> {
    let mut enc = new_encoder(&EncoderConfig::new(w, h, fps))?;
    let pattern = TestPattern::new(w, h, fps, 1)?;
    let mut units = Vec::new();
    for n in 0..frames {
        units.extend(enc.encode(&pattern.frame_at(n))?);
    }
    let config = DecoderConfig::default();
    let mut ours = Dav1dDecoder::new(&config)?;
    let mut settings = dav1d::Settings::new();
    settings.set_n_threads(config.threads);
    settings.set_max_frame_delay(config.max_frame_delay);
    settings.set_apply_grain(false);
    let mut bare = dav1d::Decoder::with_settings(&settings)?;
    let (mut ours_ms, mut bare_ms) = (Vec::new(), Vec::new());
    for (i, u) in units.iter().enumerate() {
        let mut time_ours = || -> Result<()> {
            let t = Instant::now();
            std::hint::black_box(ours.decode(u.data.clone(), u.frame_id, u.capture_us)?);
            ours_ms.push(ms(t.elapsed()));
            Ok(())
        };
        if i % 2 == 0 {
            time_ours()?;
        }
        let t = Instant::now();
        // max_frame_delay 1 and one unit per frame: dav1d takes the data whole and has the
        // picture ready, so the bare path needs no EAGAIN handling.
        bare.send_data(u.data.clone(), None, None, None)?;
        std::hint::black_box(bare.get_picture()?);
        bare_ms.push(ms(t.elapsed()));
        if i % 2 == 1 {
            time_ours()?;
        }
    }
    Ok(paired(w, h, frames, &ours_ms, &bare_ms))
}

fn target(name: &str, value: f64, limit: &str, met: bool) -> Target {
    Target {
        target: name.into(),
        value: (value * 1000.0).round() / 1000.0,
        limit: limit.into(),
        met,
    }
}

fn targets(r: &Report) -> Vec<Target> {
    let mut t = Vec::new();
    for run in &r.runs {
        let label = format!("{} {}x{}@{}", run.encoder, run.width, run.height, run.fps);
        if run.encoder == "aom" {
            t.push(target(
                &format!("{label} lag frames"),
                f64::from(run.lag_frames),
                "= 0",
                run.lag_frames == 0,
            ));
            let limit = if run.width <= 640 { 8.0 } else { 25.0 };
            t.push(target(
                &format!("{label} encode p50 ms"),
                run.encode_ms.p50,
                &format!("<= {limit}"),
                run.encode_ms.p50 <= limit,
            ));
            t.push(target(
                &format!("{label} bitrate error %"),
                run.bitrate_error_pct,
                "within ±15",
                run.bitrate_error_pct.abs() <= 15.0,
            ));
            t.push(target(
                &format!("{label} PSNR mean dB"),
                run.psnr_db.mean,
                ">= 32",
                run.psnr_db.mean >= 32.0,
            ));
            let behind =
                run.frames_skipped - run.frames_skipped_at_start - run.frames_skipped_for_keyframe;
            t.push(target(
                &format!("{label} frames skipped (not start-up or keyframe)"),
                behind as f64,
                "= 0",
                behind == 0,
            ));
        }
        // The decode target is for the default (libaom) stream; beside rav1e, which keeps a
        // core busy and still falls behind, the decoder shares the CPU with it.
        if run.width >= 1280 && run.encoder == "aom" {
            t.push(target(
                &format!("{label} decode p50 ms"),
                run.decode_ms.p50,
                "<= 5",
                run.decode_ms.p50 <= 5.0,
            ));
        }
        t.push(target(
            &format!("{label} pixel codes read %"),
            run.codes_read_pct,
            ">= 99.9",
            run.codes_read_pct >= 99.9,
        ));
    }
    for c in &r.wrapper_cost {
        t.push(target(
            &format!("aom wrapper/raw {}x{}", c.width, c.height),
            c.ratio,
            "<= 1.05",
            c.ratio <= 1.05,
        ));
    }
    for c in &r.decoder_output_cost {
        t.push(target(
            &format!("dav1d output path {}x{}", c.width, c.height),
            c.ratio,
            "<= 1.05",
            c.ratio <= 1.05,
        ));
    }
    t
}

fn print_tables(r: &Report) {
    println!("threads: {}", r.threads);
    println!(
        "{:<6} {:>10} {:>5} | {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} | {:>3} | {:>6} {:>8} {:>6} | {:>5} {:>5} | {:>6} | {:>5} {:>5} | skipped (start, keyframe)",
        "enc",
        "size",
        "fps",
        "first",
        "key",
        "enc p50",
        "p95",
        "p99",
        "max",
        "lag",
        "target",
        "achieved",
        "err%",
        "psnr",
        "min",
        "codes%",
        "dec50",
        "dec99"
    );
    for x in &r.runs {
        println!(
            "{:<6} {:>10} {:>5} | {:>7.1} {:>7.1} {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>3} | {:>6} {:>8.0} {:>+6.1} | {:>5.1} {:>5.1} | {:>6.2} | {:>5.2} {:>5.2} | {} ({}, {})",
            x.encoder,
            format!("{}x{}", x.width, x.height),
            x.fps,
            x.first_frame_ms,
            x.requested_keyframe_ms.unwrap_or(f64::NAN),
            x.encode_ms.p50,
            x.encode_ms.p95,
            x.encode_ms.p99,
            x.encode_ms.max,
            x.lag_frames,
            x.target_kbps,
            x.achieved_kbps,
            x.bitrate_error_pct,
            x.psnr_db.mean,
            x.psnr_db.min,
            x.codes_read_pct,
            x.decode_ms.p50,
            x.decode_ms.p99,
            x.frames_skipped,
            x.frames_skipped_at_start,
            x.frames_skipped_for_keyframe
        );
    }
    for (name, list) in [
        ("aom wrapper vs raw libaom", &r.wrapper_cost),
        ("Dav1dDecoder vs bare dav1d", &r.decoder_output_cost),
    ] {
        for c in list {
            println!(
                "{name} {}x{}: ours p50 {:.3} ms, baseline p50 {:.3} ms, total ratio {:.3} over {} frames",
                c.width, c.height, c.ours_ms_p50, c.baseline_ms_p50, c.ratio, c.frames
            );
        }
    }
    for t in &r.targets {
        println!(
            "target {:<45} {:>10.3} {:<12} {}",
            t.target,
            t.value,
            t.limit,
            if t.met { "met" } else { "MISSED" }
        );
    }
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args) {
        eprintln!("codec-report: {e:#}");
        std::process::exit(1);
    }
}

fn run(args: &Args) -> Result<()> {
    let kinds: Vec<EncoderKind> = match args.encoder {
        Some(k) => vec![k],
        None => vec![EncoderKind::Aom, EncoderKind::Rav1e],
    };
    let mut report = Report {
        threads: thread::available_parallelism().map_or(1, |n| n.get()),
        runs: Vec::new(),
        wrapper_cost: Vec::new(),
        decoder_output_cost: Vec::new(),
        targets: Vec::new(),
    };
    for &kind in &kinds {
        for (w, h, fps) in CASES {
            eprintln!("codec-report: {kind} {w}x{h}@{fps} for {} s", args.seconds);
            report.runs.push(live_run(kind, w, h, fps, args.seconds)?);
        }
    }
    for (w, h, fps) in CASES {
        eprintln!("codec-report: paired costs at {w}x{h}");
        if kinds.contains(&EncoderKind::Aom) {
            report
                .wrapper_cost
                .push(wrapper_cost(w, h, fps, args.paired_frames)?);
        }
        report
            .decoder_output_cost
            .push(decoder_output_cost(w, h, fps, args.paired_frames)?);
    }
    report.targets = targets(&report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tables(&report);
    }
    Ok(())
}
