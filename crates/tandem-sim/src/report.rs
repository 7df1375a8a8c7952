//! Figures from a run, as the report prints them. Virtual time makes them exact.
//! [`frame_figures`] is the part computed from frame records alone; the real-time
//! glass-to-glass report (`tandem-benches`' `g2g`) calls it on a real run's records, so the
//! definitions below are the same code in both.
//!
//! Definitions (each figure's name is its JSON key):
//! - `latency_ms`: capture → display, over displayed frames; percentiles by nearest rank.
//! - `frames_shown`: frames displayed. `frames_skipped`: captured but never displayed
//!   (decode-only in a burst, given up, undecodable, or never arrived).
//! - `frames_late`: displayed more than one frame interval after their *slot*, where a
//!   frame's slot is its capture time plus the run's median latency (the latency that
//!   policy delivers when nothing goes wrong).
//! - `frames_late_outside_stalls`: the late frames among those captured more than one
//!   frame interval away from every stall window; `frames_outside_stalls` is how many
//!   frames were captured there, the denominator of the target.
//! - `freezes_over_100ms`, `freezes_over_200ms`: gaps over 100 ms (200 ms) between
//!   consecutive displayed frames; `longest_gap_ms`: the longest such gap (at 60 fps a
//!   stream that never misses a frame shows 16.7 ms, give or take the network's jitter).
//! - `recovery_ms_p99`: per stall, the settling time — from the stall's end until the
//!   last frame of the run of out-of-band frames displayed right after it, where
//!   out-of-band means latency more than 2 ms above the baseline (the median latency of
//!   frames captured away from stalls); 0 when the first frame displayed after the stall
//!   is already in band. Only frames the stall can have affected count: those captured
//!   before its end plus one frame interval (the same margin that defines "away from
//!   stalls"). Frames that needed a loss repair (retransmission or parity) are passed
//!   over — their delay belongs to the loss, which `frames_late` already charges — and
//!   `recovery_ms_p99_with_repairs` gives the figure with them counted. The 99th
//!   percentile over the run's stalls.
//! - `video_mbps`: the video delivered, Mbit/s: encoded bytes of the frames the receiver
//!   handed to its decoder, over the run's length; `video_pct`: that as a percentage of the
//!   configured encoder bitrate. Latency is never bought with quality: a controller that
//!   starves the encoder shows here, whatever its latency.
//! - `path_bytes`: UDP-payload bytes sent into each path's sender → receiver link (one
//!   entry per path; a datagram sent on both counts on each), and `path_policy` the
//!   sender's two-path policy (empty for a single path).
//! - `bytes_payload`: encoded video bytes; `bytes_overhead_pct`: every other UDP-payload
//!   byte in both directions (headers, parity, retransmissions, feedback, probes) as a
//!   percentage of it. IP and UDP headers are not counted.

use std::time::Duration;

use serde::Serialize;
use tandem_proto::PlayoutPolicy;

use crate::runner::{FrameRecord, RunResult};

/// Latency percentiles in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Maximum.
    pub max: f64,
}

impl Percentiles {
    /// The percentiles of `sorted` (ascending; empty gives zeros).
    pub fn of_sorted(sorted: &[f64]) -> Percentiles {
        Percentiles {
            p50: percentile(sorted, 0.50),
            p95: percentile(sorted, 0.95),
            p99: percentile(sorted, 0.99),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }

    /// The percentiles of `values`, in any order.
    pub fn of(values: &[f64]) -> Percentiles {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        Self::of_sorted(&v)
    }
}

/// One policy's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figures {
    /// Impairment profile name or spec.
    pub profile: String,
    /// Playout policy (`latency`, `smooth:MIN-MAX`, `fixed:MS`).
    pub policy: String,
    /// Loss recovery: `nack+fec` or `none`.
    pub recovery: String,
    /// Virtual seconds simulated.
    pub seconds: f64,
    /// Frames captured.
    pub frames_sent: u64,
    /// Frames displayed.
    pub frames_shown: u64,
    /// Displayed more than one frame interval after their slot.
    pub frames_late: u64,
    /// Late frames among those captured away from stalls.
    pub frames_late_outside_stalls: u64,
    /// Frames captured more than one frame interval away from every stall.
    pub frames_outside_stalls: u64,
    /// Captured but never displayed.
    pub frames_skipped: u64,
    /// Longest gap between consecutive displayed frames, ms.
    pub longest_gap_ms: f64,
    /// Display gaps over 100 ms.
    pub freezes_over_100ms: u64,
    /// Display gaps over 200 ms.
    pub freezes_over_200ms: u64,
    /// Capture-to-display latency.
    pub latency_ms: Percentiles,
    /// Stall settling time, 99th percentile over stalls (repaired frames passed over).
    pub recovery_ms_p99: f64,
    /// The same with repaired frames counted like any other.
    pub recovery_ms_p99_with_repairs: f64,
    /// Stalls in the run.
    pub stalls: u64,
    /// Video delivered, Mbit/s.
    pub video_mbps: f64,
    /// Video delivered as a percentage of the configured bitrate.
    pub video_pct: f64,
    /// Bytes sent into each path's sender → receiver link.
    pub path_bytes: Vec<u64>,
    /// The two-path policy ("" with one path).
    pub path_policy: String,
    /// Encoded video bytes.
    pub bytes_payload: u64,
    /// Non-video bytes as a percentage of video bytes.
    pub bytes_overhead_pct: f64,
    /// Media datagrams the receiver found missing (before repair).
    pub packets_lost: u64,
    /// Fragments retransmitted.
    pub retransmissions: u64,
    /// Fragments rebuilt from parity.
    pub fec_recovered: u64,
    /// Keyframes the sender encoded (the first one included).
    pub keyframes: u64,
    /// Real milliseconds the simulation took.
    pub wall_ms: f64,
}

/// Formats a policy the way the CLI accepts it.
pub fn policy_name(p: &PlayoutPolicy) -> String {
    p.to_string()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub use tandem_proto::stats::percentile;

fn near_stall(capture: Duration, stalls: &[(Duration, Duration)], margin: Duration) -> bool {
    stalls
        .iter()
        .any(|&(s, e)| capture + margin >= s && capture <= e + margin)
}

/// The figures of a run that depend only on its frames — when each was captured, whether
/// and when it was shown — the frame interval and the stall windows. [`figures`] computes
/// a simulated run's with it, and the glass-to-glass report (`tandem-benches`, `g2g`) a
/// real run's, so both are defined by the same code. Field names are [`Figures`]' own.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FrameFigures {
    /// Frames captured.
    pub frames_sent: u64,
    /// Frames displayed.
    pub frames_shown: u64,
    /// Displayed more than one frame interval after their slot.
    pub frames_late: u64,
    /// Late frames among those captured away from stalls.
    pub frames_late_outside_stalls: u64,
    /// Frames captured more than one frame interval away from every stall.
    pub frames_outside_stalls: u64,
    /// Captured but never displayed.
    pub frames_skipped: u64,
    /// Longest gap between consecutive displayed frames, ms.
    pub longest_gap_ms: f64,
    /// Display gaps over 100 ms.
    pub freezes_over_100ms: u64,
    /// Display gaps over 200 ms.
    pub freezes_over_200ms: u64,
    /// Capture-to-display latency.
    pub latency_ms: Percentiles,
    /// Stall settling time, 99th percentile over stalls (repaired frames passed over).
    pub recovery_ms_p99: f64,
    /// The same with repaired frames counted like any other.
    pub recovery_ms_p99_with_repairs: f64,
    /// Stall windows given.
    pub stalls: u64,
}

/// Computes the [`FrameFigures`] of `frames` (one record per captured frame, times since
/// the start of the run), captured every `interval`, with the link's stall windows
/// `stalls` (ascending, on the same clock), as the module documentation defines them.
pub fn frame_figures(
    frames: &[FrameRecord],
    interval: Duration,
    stalls: &[(Duration, Duration)],
) -> FrameFigures {
    let shown: Vec<&FrameRecord> = frames.iter().filter(|f| f.shown_at.is_some()).collect();
    let mut lat: Vec<f64> = shown.iter().filter_map(|f| f.latency()).map(ms).collect();
    lat.sort_by(f64::total_cmp);
    let p50 = percentile(&lat, 0.50);
    let late_threshold = p50 + ms(interval);
    let is_late = |f: &FrameRecord| f.latency().is_some_and(|l| ms(l) > late_threshold);
    let outside: Vec<&FrameRecord> = frames
        .iter()
        .filter(|f| !near_stall(f.capture, stalls, interval))
        .collect();
    let mut outside_lat: Vec<f64> = outside.iter().filter_map(|f| f.latency()).map(ms).collect();
    outside_lat.sort_by(f64::total_cmp);
    let baseline = if outside_lat.is_empty() {
        p50
    } else {
        percentile(&outside_lat, 0.5)
    };

    let mut displays: Vec<&FrameRecord> = shown.clone();
    displays.sort_by_key(|f| f.shown_at);
    let freezes_over = |limit: Duration| {
        displays
            .windows(2)
            .filter(|w| match (w[0].shown_at, w[1].shown_at) {
                (Some(a), Some(b)) => b - a > limit,
                _ => false,
            })
            .count() as u64
    };
    let settle_times = |skip_repaired: bool| {
        let mut v: Vec<f64> = stalls
            .iter()
            .enumerate()
            .map(|(i, &(_, end))| {
                let next_start = stalls.get(i + 1).map_or(Duration::MAX, |s| s.0);
                let mut settle = 0.0;
                for f in displays.iter().filter(|f| !(skip_repaired && f.repaired)) {
                    let (Some(at), Some(l)) = (f.shown_at, f.latency()) else {
                        continue;
                    };
                    if at <= end || at >= next_start || f.capture >= end + interval {
                        continue;
                    }
                    if ms(l) > baseline + 2.0 {
                        settle = ms(at - end);
                    } else {
                        break;
                    }
                }
                settle
            })
            .collect();
        v.sort_by(f64::total_cmp);
        percentile(&v, 0.99)
    };

    FrameFigures {
        frames_sent: frames.len() as u64,
        frames_shown: shown.len() as u64,
        frames_late: shown.iter().filter(|f| is_late(f)).count() as u64,
        frames_late_outside_stalls: outside.iter().filter(|f| is_late(f)).count() as u64,
        frames_outside_stalls: outside.len() as u64,
        frames_skipped: (frames.len() - shown.len()) as u64,
        freezes_over_100ms: freezes_over(Duration::from_millis(100)),
        freezes_over_200ms: freezes_over(Duration::from_millis(200)),
        longest_gap_ms: displays
            .windows(2)
            .filter_map(|w| Some(ms(w[1].shown_at? - w[0].shown_at?)))
            .fold(0.0, f64::max),
        latency_ms: Percentiles::of_sorted(&lat),
        recovery_ms_p99: settle_times(true),
        recovery_ms_p99_with_repairs: settle_times(false),
        stalls: stalls.len() as u64,
    }
}

/// Latency percentiles (ms) of the frames captured in `[from, to)` and displayed: the
/// figures of one stretch of a run, such as the seconds after a change of capacity.
pub fn latency_between(frames: &[FrameRecord], from: Duration, to: Duration) -> Percentiles {
    let lat: Vec<f64> = frames
        .iter()
        .filter(|f| f.capture >= from && f.capture < to)
        .filter_map(|f| f.latency())
        .map(ms)
        .collect();
    Percentiles::of(&lat)
}

/// Computes the figures of `run`, labelled with `profile`: [`frame_figures`] over its
/// frames and stall windows, and the byte and repair counters.
pub fn figures(run: &RunResult, profile: &str) -> Figures {
    let f = frame_figures(
        &run.frames,
        run.scenario.frame_interval(),
        &run.stall_windows,
    );
    let overhead = run.bytes_wire.saturating_sub(run.bytes_payload) as f64;
    Figures {
        profile: profile.to_string(),
        policy: policy_name(&run.scenario.policy),
        recovery: if run.scenario.recovery {
            "nack+fec"
        } else {
            "none"
        }
        .into(),
        seconds: run.scenario.duration.as_secs_f64(),
        frames_sent: f.frames_sent,
        frames_shown: f.frames_shown,
        frames_late: f.frames_late,
        frames_late_outside_stalls: f.frames_late_outside_stalls,
        frames_outside_stalls: f.frames_outside_stalls,
        frames_skipped: f.frames_skipped,
        freezes_over_100ms: f.freezes_over_100ms,
        freezes_over_200ms: f.freezes_over_200ms,
        longest_gap_ms: f.longest_gap_ms,
        latency_ms: f.latency_ms,
        recovery_ms_p99: f.recovery_ms_p99,
        recovery_ms_p99_with_repairs: f.recovery_ms_p99_with_repairs,
        stalls: f.stalls,
        video_mbps: run.bytes_delivered as f64 * 8.0 / 1e6 / run.scenario.duration.as_secs_f64(),
        video_pct: run.bytes_delivered as f64 * 8.0 * 100.0
            / (run.scenario.bitrate_bps as f64 * run.scenario.duration.as_secs_f64()).max(1.0),
        path_bytes: std::iter::once(run.forward_link.bytes_in)
            .chain(run.second_links.map(|(f, _)| f.bytes_in))
            .collect(),
        path_policy: if run.second_links.is_some() {
            run.scenario.path_policy.to_string()
        } else {
            String::new()
        },
        bytes_payload: run.bytes_payload,
        bytes_overhead_pct: if run.bytes_payload > 0 {
            overhead * 100.0 / run.bytes_payload as f64
        } else {
            0.0
        },
        packets_lost: run.receiver.packets_lost,
        retransmissions: run.sender.retransmissions,
        fec_recovered: run.receiver.fec_fragments_recovered,
        keyframes: run.sender.keyframes_sent,
        wall_ms: ms(run.wall),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(percentile(&[3.0], 0.01), 3.0);
    }

    fn record(capture_ms: u64, latency_ms: Option<u64>) -> FrameRecord {
        let capture = Duration::from_millis(capture_ms);
        FrameRecord {
            frame_id: capture_ms as u32,
            skipped_by_encoder: false,
            capture,
            shown_at: latency_ms.map(|l| capture + Duration::from_millis(l)),
            decoded: latency_ms.is_some(),
            completed_at: None,
            repaired: false,
            keyframe: false,
        }
    }

    #[test]
    fn frame_figures_from_records_alone() {
        let iv = Duration::from_millis(10);
        // 100 frames 10 ms apart at 5 ms; frame 50 shown 30 ms late, frames 70–94 never
        // shown (a 260 ms gap in the display), one stall around 300 ms.
        let frames: Vec<FrameRecord> = (0..100u64)
            .map(|i| match i {
                50 => record(i * 10, Some(35)),
                70..=94 => record(i * 10, None),
                _ => record(i * 10, Some(5)),
            })
            .collect();
        let stalls = [(Duration::from_millis(300), Duration::from_millis(340))];
        let f = frame_figures(&frames, iv, &stalls);
        assert_eq!(
            (f.frames_sent, f.frames_shown, f.frames_skipped),
            (100, 75, 25)
        );
        assert_eq!(f.latency_ms.p50, 5.0);
        assert_eq!(f.latency_ms.max, 35.0);
        assert_eq!((f.frames_late, f.frames_late_outside_stalls), (1, 1));
        // Captures at 290..=350 ms are within one interval of the stall: 7 frames.
        assert_eq!(f.frames_outside_stalls, 93);
        assert_eq!((f.freezes_over_100ms, f.freezes_over_200ms), (1, 1));
        assert_eq!(f.stalls, 1);
        assert_eq!(
            f.recovery_ms_p99, 0.0,
            "nothing out of band after the stall"
        );
    }

    #[test]
    fn stall_proximity_uses_one_frame_interval_margin() {
        let iv = Duration::from_millis(16);
        let stalls = [(Duration::from_millis(100), Duration::from_millis(140))];
        assert!(near_stall(Duration::from_millis(85), &stalls, iv));
        assert!(!near_stall(Duration::from_millis(83), &stalls, iv));
        assert!(near_stall(Duration::from_millis(156), &stalls, iv));
        assert!(!near_stall(Duration::from_millis(157), &stalls, iv));
    }
}
