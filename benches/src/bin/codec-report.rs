//! `codec-report`: encode and decode the test pattern at a live rate and print what it cost.
//!
//! For each encoder (libaom, rav1e and OpenH264 by default; `--encoder` picks some, e.g.
//! `--encoder aom,h264`) × {640×360@60, 1280×720@30}, at the default target bitrate
//! ([`tandem_codec::default_bitrate_kbps`]), frames are captured on a real clock (one
//! every frame interval, rendered before their capture instant), encoded on this thread
//! and decoded on a second one, as the engine's pipeline does. A capture instant that
//! arrives while the encoder is still busy with an earlier frame is skipped, as a live
//! camera's frame would be, and counted: `frames_skipped > 0` means the pair fell behind.
//!
//! Figures per run:
//! - `encode_ms`: from a frame's submission to the encoder until its packet came out (for a
//!   lagging encoder, that includes the later frames it waited for). Frames that came out
//!   only when the stream was finished are not counted.
//! - `lag_frames`: most frames submitted but not yet returned after an `encode` call,
//!   counted here (and never below the encoder's own count).
//! - `achieved_kbps` over the whole run against `target_kbps`.
//! - `psnr_db`: decoded pictures against their sources; `codes_read_pct`: pixel codes read
//!   back from the decoded pictures.
//! - `decode_ms`: one `decode` call of the decoder for the encoder's bitstream
//!   ([`tandem_codec::new_decoder`]: dav1d for AV1, OpenH264 for H.264), picture out as a
//!   `Frame` included.
//!
//! Then, with libaom and OpenH264 both chosen, the equal-quality comparison ("latency is
//! never bought with quality"): at each size, `--quality-seconds` of the pattern are encoded
//! and decoded as fast as they go (not live: rate control and PSNR do not depend on the
//! clock), libaom at the default target, OpenH264 at multiples of it (1.0, then up through
//! 1.25, 1.5, 2, 2.5, 3, 4 until its mean PSNR reaches libaom's, or down through 0.75 and
//! 0.5 while it is still above), and then `--bisect-steps` halvings of the bracket. The
//! figure is the bracket's upper end, the lowest bitrate tried at which OpenH264's mean
//! PSNR is at least libaom's (`matched`), its delivered kbit/s and that over libaom's
//! delivered kbit/s (`bitrate_ratio`). Both encoders are deterministic here, so these
//! figures do not move with the machine's load; the times beside them do. Each
//! point also gives encode and decode p50 (same process, one after the other) and the
//! encoded frame sizes, which set how long a frame takes to leave at a given link rate.
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
    Bitstream, Dav1dDecoder, DecoderConfig, EncodedFrame, EncoderConfig, EncoderKind, Frame,
    PixelCode, TestPattern, new_decoder, new_encoder, pixelcode, psnr,
};
use tandem_sim::report::Percentiles;

#[derive(Parser, Debug)]
#[command(
    about = "Live-rate encode/decode latency, lag, bitrate and quality of each encoder (libaom, rav1e, OpenH264), and the bitrate OpenH264 needs for libaom's picture quality"
)]
struct Args {
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Seconds of live capture per run.
    #[arg(long, default_value_t = 10.0, value_parser = parse_seconds)]
    seconds: f64,
    /// Only these encoders (`aom`, `rav1e`, `h264`; comma-separated or repeated); default
    /// all three.
    #[arg(long, value_delimiter = ',')]
    encoder: Vec<EncoderKind>,
    /// Frames in each paired wrapper-cost comparison (at least 2).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(2..))]
    paired_frames: u32,
    /// Seconds of the pattern per point of the equal-quality comparison (0: none). It runs
    /// when libaom and OpenH264 are both chosen.
    #[arg(long, default_value_t = 5.0, value_parser = parse_quality_seconds)]
    quality_seconds: f64,
    /// Halvings of the bracket once OpenH264's PSNR has been bracketed around libaom's.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=8))]
    bisect_steps: u32,
}

fn parse_quality_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v == 0.0 || (0.5..=600.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "`{s}` is not 0 or a number of seconds from 0.5 to 600"
        )),
    }
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.5..=3600.0).contains(&v) => Ok(v),
        _ => Err(format!("`{s}` is not a number of seconds from 0.5 to 3600")),
    }
}

const CASES: [(u32, u32, u32); 2] = [(640, 360, 60), (1280, 720, 30)];

/// PSNR over a run's frames, dB (each frame's capped at 99).
#[derive(Serialize, Debug, Clone, Copy)]
struct Db {
    mean: f64,
    p50: f64,
    min: f64,
}

impl Db {
    fn of(psnrs: &[f64]) -> Db {
        Db {
            mean: psnrs.iter().sum::<f64>() / psnrs.len().max(1) as f64,
            p50: Percentiles::of(psnrs).p50,
            min: psnrs.iter().copied().fold(f64::INFINITY, f64::min),
        }
    }
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
    psnr_db: Db,
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

/// One encoder at one bitrate over the same frames, encoded and decoded as fast as they go.
#[derive(Serialize, Debug, Clone)]
struct QualityPoint {
    encoder: String,
    target_kbps: u32,
    /// `target_kbps` over the default target.
    scale: f64,
    achieved_kbps: f64,
    psnr_db: Db,
    encode_ms_p50: f64,
    decode_ms_p50: f64,
    /// Encoded frame sizes, bytes, the first (the stream's keyframe) left out.
    frame_bytes: Percentiles,
    keyframe_bytes: u64,
}

/// The bitrate OpenH264 needs for libaom's mean PSNR at the default target.
#[derive(Serialize, Debug)]
struct EqualQuality {
    width: u32,
    height: u32,
    fps: u32,
    frames: u32,
    default_target_kbps: u32,
    /// libaom at the default target.
    reference: QualityPoint,
    /// OpenH264, in the order tried.
    tried: Vec<QualityPoint>,
    /// The lowest-bitrate point tried whose mean PSNR is at least the reference's (`None`:
    /// none reached it, up to 4 × the target).
    matched: Option<QualityPoint>,
    /// `matched.achieved_kbps` over `reference.achieved_kbps`.
    bitrate_ratio: Option<f64>,
}

#[derive(Serialize, Debug)]
struct Report {
    threads: usize,
    runs: Vec<LiveRun>,
    equal_quality: Vec<EqualQuality>,
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
    let bitstream = kind.bitstream();
    let decoder = thread::spawn(move || -> Result<Vec<Decoded>> {
        let mut dec = new_decoder(bitstream, &DecoderConfig::default())?;
        let mut out = Vec::new();
        for (unit, source) in rx {
            let started = Instant::now();
            let pic = dec.decode(unit.data.clone(), unit.frame_id, unit.capture_us)?;
            let decode = started.elapsed();
            let pic = pic.with_context(|| {
                format!("the {bitstream} decoder returned no picture for a unit")
            })?;
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
    // Frames submitted and not yet returned, most after any `encode` call.
    let mut lag = 0usize;
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
        lag = lag.max(waiting.len());
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
        lag_frames: enc.lag_frames().max(lag as u32),
        target_kbps: config.bitrate_kbps,
        achieved_kbps: achieved,
        bitrate_error_pct: (achieved / f64::from(config.bitrate_kbps) - 1.0) * 100.0,
        psnr_db: Db::of(&psnrs),
        codes_read_pct: 100.0 * codes as f64 / decoded.len().max(1) as f64,
        decode_ms: P50P99 {
            p50: dec_ms.p50,
            p99: dec_ms.p99,
        },
    })
}

/// `frames` of the pattern through `kind` at `kbps`, each decoded and scored at once, on
/// this thread, as fast as they go. Only time inside `encode` and `decode` is timed.
fn quality_point(
    kind: EncoderKind,
    (w, h, fps): (u32, u32, u32),
    kbps: u32,
    frames: u32,
) -> Result<QualityPoint> {
    let config = EncoderConfig::new(w, h, fps)
        .with_kind(kind)
        .with_bitrate_kbps(kbps);
    let default_kbps = EncoderConfig::new(w, h, fps).bitrate_kbps;
    let mut enc = new_encoder(&config)?;
    let mut dec = new_decoder(kind.bitstream(), &DecoderConfig::default())?;
    let mut pattern = TestPattern::new(w, h, fps, 1)?;
    let mut sources: HashMap<u32, Frame> = HashMap::new();
    let (mut enc_ms, mut dec_ms, mut psnrs, mut sizes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut keyframe_bytes = 0u64;
    let mut bytes = 0u64;
    for n in 0..=frames {
        let units = if n < frames {
            let frame = pattern.next_frame_at(pattern.timeline_us(n));
            let t = Instant::now();
            let units = enc.encode(&frame)?;
            enc_ms.push(ms(t.elapsed()));
            sources.insert(n, frame);
            units
        } else {
            enc.finish()?
        };
        for u in units {
            let source = sources
                .remove(&u.frame_id)
                .context("encoder returned a frame it was never given")?;
            bytes += u.data.len() as u64;
            if u.frame_id == 0 {
                keyframe_bytes = u.data.len() as u64;
            } else {
                sizes.push(u.data.len() as f64);
            }
            let t = Instant::now();
            let pic = dec.decode(u.data.clone(), u.frame_id, u.capture_us)?;
            dec_ms.push(ms(t.elapsed()));
            let pic =
                pic.with_context(|| format!("{kind}: no picture for frame {}", u.frame_id))?;
            psnrs.push(psnr(&source, &pic)?.min(99.0));
        }
    }
    let seconds = f64::from(frames) / f64::from(fps);
    Ok(QualityPoint {
        encoder: kind.to_string(),
        target_kbps: kbps,
        scale: f64::from(kbps) / f64::from(default_kbps),
        achieved_kbps: bytes as f64 * 8.0 / seconds / 1000.0,
        psnr_db: Db::of(&psnrs),
        encode_ms_p50: Percentiles::of(&enc_ms).p50,
        decode_ms_p50: Percentiles::of(&dec_ms).p50,
        frame_bytes: Percentiles::of(&sizes),
        keyframe_bytes,
    })
}

/// The multiples of the default target OpenH264 is tried at before bisecting: 1.0, then up
/// (while below libaom's PSNR) or down (while at or above it).
const SCALES_UP: [f64; 6] = [1.25, 1.5, 2.0, 2.5, 3.0, 4.0];
const SCALES_DOWN: [f64; 2] = [0.75, 0.5];

/// libaom at the default target, and the lowest bitrate at which OpenH264's mean PSNR over
/// the same frames is at least libaom's (see the module docs).
fn equal_quality(
    (w, h, fps): (u32, u32, u32),
    seconds: f64,
    bisect_steps: u32,
) -> Result<EqualQuality> {
    let frames = ((seconds * f64::from(fps)).round() as u32).max(2);
    let default_kbps = EncoderConfig::new(w, h, fps).bitrate_kbps;
    let at = |scale: f64| (f64::from(default_kbps) * scale).round() as u32;
    let case = (w, h, fps);
    let reference = quality_point(EncoderKind::Aom, case, default_kbps, frames)?;
    let goal = reference.psnr_db.mean;
    let mut tried = vec![quality_point(
        EncoderKind::OpenH264,
        case,
        default_kbps,
        frames,
    )?];
    // The bracket: the highest rate below the goal and the lowest at or above it, if found.
    let (mut below, mut above): (Option<u32>, Option<u32>) = if tried[0].psnr_db.mean >= goal {
        (None, Some(default_kbps))
    } else {
        (Some(default_kbps), None)
    };
    if above.is_some() {
        for scale in SCALES_DOWN {
            let p = quality_point(EncoderKind::OpenH264, case, at(scale), frames)?;
            let reached = p.psnr_db.mean >= goal;
            tried.push(p);
            if reached {
                above = Some(at(scale));
            } else {
                below = Some(at(scale));
                break;
            }
        }
    } else {
        for scale in SCALES_UP {
            let p = quality_point(EncoderKind::OpenH264, case, at(scale), frames)?;
            let reached = p.psnr_db.mean >= goal;
            tried.push(p);
            if reached {
                above = Some(at(scale));
                break;
            }
            below = Some(at(scale));
        }
    }
    if let (Some(mut lo), Some(mut hi)) = (below, above) {
        for _ in 0..bisect_steps {
            let mid = lo.midpoint(hi);
            if mid == lo || mid == hi {
                break;
            }
            let p = quality_point(EncoderKind::OpenH264, case, mid, frames)?;
            if p.psnr_db.mean >= goal {
                hi = mid;
            } else {
                lo = mid;
            }
            tried.push(p);
        }
        above = Some(hi);
    }
    let matched = above.and_then(|kbps| tried.iter().find(|p| p.target_kbps == kbps).cloned());
    let bitrate_ratio = matched
        .as_ref()
        .map(|m| m.achieved_kbps / reference.achieved_kbps);
    Ok(EqualQuality {
        width: w,
        height: h,
        fps,
        frames,
        default_target_kbps: default_kbps,
        reference,
        tried,
        matched,
        bitrate_ratio,
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
    // libaom named, not the default kind: this compares `AomEncoder` with raw libaom.
    let config = EncoderConfig::new(w, h, fps).with_kind(EncoderKind::Aom);
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
    // An AV1 stream for dav1d, whatever the default kind.
    let mut enc = new_encoder(&EncoderConfig::new(w, h, fps).with_kind(EncoderKind::Aom))?;
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
        // The live encoders (lag 0 by design): libaom, the default, and OpenH264. rav1e
        // cannot meet these (see the crate docs) and is reported, not held to them.
        if run.encoder == "aom" || run.encoder == "h264" {
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
        // The decode target is for the live encoders' streams; beside rav1e, which keeps a
        // core busy and still falls behind, the decoder shares the CPU with it.
        if run.width >= 1280 && (run.encoder == "aom" || run.encoder == "h264") {
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
    for q in &r.equal_quality {
        // Not a limit the issue sets: the figure it asks for, as a line that says whether
        // OpenH264 matched libaom's picture quality at the same target.
        let label = format!("h264 {}x{}@{}", q.width, q.height, q.fps);
        t.push(target(
            &format!("{label} PSNR at aom's target − aom's, dB"),
            q.tried[0].psnr_db.mean - q.reference.psnr_db.mean,
            ">= 0",
            q.tried[0].psnr_db.mean >= q.reference.psnr_db.mean,
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
        "{:<6} {:>10} {:>5} | {:>7} {:>7} {:>7} {:>7} {:>7} {:>7} | {:>3} | {:>6} {:>8} {:>6} | {:>5} {:>5} {:>5} | {:>6} | {:>5} {:>5} | skipped (start, keyframe)",
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
        "p50",
        "min",
        "codes%",
        "dec50",
        "dec99"
    );
    for x in &r.runs {
        println!(
            "{:<6} {:>10} {:>5} | {:>7.1} {:>7.1} {:>7.2} {:>7.2} {:>7.2} {:>7.2} | {:>3} | {:>6} {:>8.0} {:>+6.1} | {:>5.2} {:>5.2} {:>5.2} | {:>6.2} | {:>5.2} {:>5.2} | {} ({}, {})",
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
            x.psnr_db.p50,
            x.psnr_db.min,
            x.codes_read_pct,
            x.decode_ms.p50,
            x.decode_ms.p99,
            x.frames_skipped,
            x.frames_skipped_at_start,
            x.frames_skipped_for_keyframe
        );
    }
    for q in &r.equal_quality {
        println!(
            "equal quality {}x{}@{}, {} frames (not live: as fast as they go), default target {} kbit/s: aom {:.0} kbit/s delivered, PSNR mean {:.2} dB (min {:.2}); frame sizes in bytes, the keyframe apart",
            q.width,
            q.height,
            q.fps,
            q.frames,
            q.default_target_kbps,
            q.reference.achieved_kbps,
            q.reference.psnr_db.mean,
            q.reference.psnr_db.min
        );
        println!(
            "  {:<6} {:>6} {:>6} {:>8} | {:>6} {:>6} {:>6} {:>6} | {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7}",
            "enc",
            "scale",
            "target",
            "achieved",
            "psnr",
            "p50",
            "min",
            "Δpsnr",
            "enc50",
            "dec50",
            "key B",
            "B p50",
            "B p99",
            "B max"
        );
        for p in std::iter::once(&q.reference).chain(&q.tried) {
            println!(
                "  {:<6} {:>6.3} {:>6} {:>8.0} | {:>6.2} {:>6.2} {:>6.2} {:>+6.2} | {:>7.2} {:>7.2} | {:>7} {:>7.0} {:>7.0} {:>7.0}",
                p.encoder,
                p.scale,
                p.target_kbps,
                p.achieved_kbps,
                p.psnr_db.mean,
                p.psnr_db.p50,
                p.psnr_db.min,
                p.psnr_db.mean - q.reference.psnr_db.mean,
                p.encode_ms_p50,
                p.decode_ms_p50,
                p.keyframe_bytes,
                p.frame_bytes.p50,
                p.frame_bytes.p99,
                p.frame_bytes.max
            );
        }
        match (&q.matched, q.bitrate_ratio) {
            (Some(m), Some(ratio)) => println!(
                "  h264 reaches aom's PSNR ({:.2} dB) at target {} kbit/s ({:.3} × default): {:.0} kbit/s delivered, {:.2} × aom's {:.0}",
                q.reference.psnr_db.mean,
                m.target_kbps,
                m.scale,
                m.achieved_kbps,
                ratio,
                q.reference.achieved_kbps
            ),
            _ => println!(
                "  h264 does not reach aom's PSNR ({:.2} dB) at up to {:.0} × the default target",
                q.reference.psnr_db.mean,
                SCALES_UP[SCALES_UP.len() - 1]
            ),
        }
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
    let mut kinds: Vec<EncoderKind> = Vec::new();
    for &k in &args.encoder {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    if kinds.is_empty() {
        kinds = vec![EncoderKind::Aom, EncoderKind::Rav1e, EncoderKind::OpenH264];
    }
    let mut report = Report {
        threads: thread::available_parallelism().map_or(1, |n| n.get()),
        runs: Vec::new(),
        equal_quality: Vec::new(),
        wrapper_cost: Vec::new(),
        decoder_output_cost: Vec::new(),
        targets: Vec::new(),
    };
    // Size by size, the encoders one after the other: the runs compared are neighbours in
    // time, so drift in the machine's load falls on them alike.
    for (w, h, fps) in CASES {
        for &kind in &kinds {
            eprintln!("codec-report: {kind} {w}x{h}@{fps} for {} s", args.seconds);
            report.runs.push(live_run(kind, w, h, fps, args.seconds)?);
        }
    }
    if args.quality_seconds > 0.0
        && kinds.contains(&EncoderKind::Aom)
        && kinds.contains(&EncoderKind::OpenH264)
    {
        for case in CASES {
            eprintln!(
                "codec-report: equal quality at {}x{}@{}, {} s a point",
                case.0, case.1, case.2, args.quality_seconds
            );
            report.equal_quality.push(equal_quality(
                case,
                args.quality_seconds,
                args.bisect_steps,
            )?);
        }
    }
    let av1 = kinds.iter().any(|k| k.bitstream() == Bitstream::Av1);
    for (w, h, fps) in CASES {
        if kinds.contains(&EncoderKind::Aom) {
            eprintln!("codec-report: paired libaom cost at {w}x{h}");
            report
                .wrapper_cost
                .push(wrapper_cost(w, h, fps, args.paired_frames)?);
        }
        // The dav1d output path is every AV1 stream's; an H.264-only report has none.
        if av1 {
            eprintln!("codec-report: paired dav1d cost at {w}x{h}");
            report
                .decoder_output_cost
                .push(decoder_output_cost(w, h, fps, args.paired_frames)?);
        }
    }
    report.targets = targets(&report);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_tables(&report);
    }
    Ok(())
}
