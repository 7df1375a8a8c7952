//! [`Stats`]: what a pipeline reports every `stats_interval`, the same struct for both ends
//! (a sender leaves the receiver-only fields at zero or `None`, and the other way round).
//!
//! Interval figures (rates, percentiles) cover the last interval; totals count from the
//! start. Glass-to-glass latency comes from the pixel code the test pattern stamps into each
//! picture (frame id and capture time on the sender's wall clock), read back from the
//! decoded pixels, so it measures what the viewer sees, not what the pipeline believes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tandem_proto::stats::percentile;

/// Latency percentiles over an interval, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl LatencyMs {
    /// Nearest-rank percentiles of `samples` (ms); `None` for none.
    pub fn of(samples: &mut [f64]) -> Option<LatencyMs> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_by(f64::total_cmp);
        Some(LatencyMs {
            p50: percentile(samples, 0.50),
            p95: percentile(samples, 0.95),
            p99: percentile(samples, 0.99),
        })
    }
}

/// Where one path of a two-path session stands (see `tandem_proto::multipath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PathState {
    /// Not open (the driver has no such path, or lost it).
    #[default]
    Closed,
    /// Answering: it may carry traffic alone.
    Live,
    /// Silent a little too long, near a predicted switch, just back, or not learned yet:
    /// the sender copies what it sends there onto the other path.
    Uncertain,
    /// Inside a predicted dead window (sender): what it sends there waits for the window's
    /// end.
    Dead,
    /// Never heard, or silent past `tandem_proto::multipath::DEAD_AFTER` (40 ms) with no
    /// window predicted: it may be back at any moment.
    Silent,
}

impl PathState {
    /// Its name on the stats line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            PathState::Closed => "closed",
            PathState::Live => "live",
            PathState::Uncertain => "uncertain",
            PathState::Dead => "dead",
            PathState::Silent => "silent",
        }
    }

    /// The sender's scheduler's view.
    pub(crate) fn from_scheduler(s: tandem_proto::multipath::PathState) -> PathState {
        use tandem_proto::multipath::PathState as P;
        match s {
            P::Closed => PathState::Closed,
            P::Live => PathState::Live,
            P::Uncertain => PathState::Uncertain,
            P::Dead => PathState::Dead,
            P::Silent => PathState::Silent,
        }
    }

    /// A receiver's view: open, and how long ago the path last brought something, against
    /// the sender's thresholds (`SUSPECT_AFTER`, `DEAD_AFTER`); it predicts no windows.
    pub(crate) fn from_silence(open: bool, heard_ago: Option<Duration>) -> PathState {
        use tandem_proto::multipath::{DEAD_AFTER, SUSPECT_AFTER};
        match (open, heard_ago) {
            (false, _) => PathState::Closed,
            (true, Some(d)) if d <= SUSPECT_AFTER => PathState::Live,
            (true, Some(d)) if d <= DEAD_AFTER => PathState::Uncertain,
            (true, _) => PathState::Silent,
        }
    }
}

/// One path of a session over two (path 0: the infrastructure path, the first address or
/// transport; path 1: the peer-to-peer one, the second), as [`Stats::paths`] lists it. Totals
/// count from the start; rates cover the interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct PathStats {
    /// 0 or 1.
    pub index: usize,
    /// The peer's address on it, once known ("0.0.0.0:0" over an app transport that names
    /// none).
    pub peer: Option<String>,
    /// Where it stands as the stats were taken: on the sender, its scheduler's view; on the
    /// receiver, from how long ago it last brought a datagram.
    pub state: PathState,
    /// Datagrams this end sent on it (a datagram sent on both paths counts on each), total.
    pub datagrams_sent: u64,
    /// Bytes this end sent on it, as they left (sealed), total.
    pub bytes_sent: u64,
    /// Datagrams received on it from the peer, total.
    pub datagrams_received: u64,
    /// Bytes received on it, total.
    pub bytes_received: u64,
    /// Datagrams received on it that the other path had brought already, dropped before
    /// any estimator saw them (receiver), total.
    pub duplicates_received: u64,
    /// What this end sent on it over the interval, kbit/s.
    pub sent_kbps: f64,
    /// What arrived on it over the interval, kbit/s.
    pub received_kbps: f64,
    /// Smoothed RTT of its probes, ms (sender; every 5 ms while two paths are open).
    pub rtt_ms: Option<f64>,
    /// Smallest RTT of its probes, ms (sender).
    pub min_rtt_ms: Option<f64>,
    /// RTT variation of its probes, ms: the path's jitter (sender).
    pub rtt_jitter_ms: f64,
    /// Probes never answered, percent (sender).
    pub probe_loss_pct: f64,
    /// Silences over 20 ms seen on it (sender), total.
    pub dead_windows: u64,
    /// The period its dead windows repeat with, ms, once learned (sender; AWDL's
    /// infrastructure stalls: about 1049 ms).
    pub dead_window_period_ms: Option<f64>,
    /// How long ago it last brought a datagram, ms.
    pub silent_ms: Option<f64>,
}

/// What a pipeline remembers between snapshots to give each path's rates.
#[derive(Debug, Default)]
pub(crate) struct PathFigures {
    /// Bytes sent and received on each path at the last snapshot.
    last: [(u64, u64); 2],
}

impl PathFigures {
    /// Both paths' figures now, from the protocol's view (`proto`), the driver's counters
    /// (`driver`: what left and arrived on each), the peers the driver knows on each, and
    /// each path's state; `dt` seconds since the last snapshot.
    pub(crate) fn take(
        &mut self,
        proto: &[tandem_proto::PathStats; 2],
        driver: &[tandem_net::driver::DriverPathStats; 2],
        peers: [Option<std::net::SocketAddr>; 2],
        states: [PathState; 2],
        now: Instant,
        dt: f64,
    ) -> Vec<PathStats> {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        (0..2)
            .map(|i| {
                let (p, d) = (&proto[i], &driver[i]);
                let (sent, received) = (d.bytes_out, p.bytes_received);
                let (last_sent, last_received) = self.last[i];
                self.last[i] = (sent, received);
                let kbps = |now: u64, then: u64| now.saturating_sub(then) as f64 * 8.0 / dt / 1e3;
                PathStats {
                    index: i,
                    peer: peers[i].map(|a| a.to_string()),
                    state: states[i],
                    datagrams_sent: d.datagrams_out,
                    bytes_sent: sent,
                    datagrams_received: d.datagrams_in,
                    bytes_received: received,
                    duplicates_received: p.duplicates_received,
                    sent_kbps: kbps(sent, last_sent),
                    received_kbps: kbps(received, last_received),
                    rtt_ms: p.rtt.map(ms),
                    min_rtt_ms: p.min_rtt.map(ms),
                    rtt_jitter_ms: ms(p.rtt_variation),
                    probe_loss_pct: p.probe_loss() * 100.0,
                    dead_windows: p.dead_windows,
                    dead_window_period_ms: p.dead_window_period.map(ms),
                    silent_ms: p.last_heard.map(|t| ms(now.saturating_duration_since(t))),
                }
            })
            .collect()
    }
}

/// One snapshot of a pipeline.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Stats {
    /// `sender` or `receiver`.
    pub role: &'static str,
    /// Seconds since the pipeline started.
    pub elapsed_s: f64,
    /// The peer's address, once known.
    pub peer: Option<String>,
    /// What is wrong with this end or its own session, if anything: the local system
    /// (socket, codec, capture) failed, the peer fell silent or never answered, or the
    /// session lapsed. Never set by a datagram that was not authenticated: those are
    /// `warnings`.
    pub error: Option<String>,
    /// What strangers' datagrams said, unauthenticated (another protocol version, a
    /// handshake from a device that is not paired), each naming its source: for the user to
    /// see, never a reason to stop. The newest few distinct ones.
    pub warnings: Vec<String>,
    /// The video codec of the newest frame sent (sender) or received (receiver): `AV1`,
    /// `H.264`, `HEVC`; `None` before the first frame.
    pub codec: Option<String>,
    /// Frames sent (sender) or shown (receiver) per second over the interval.
    pub fps: f64,
    /// Encoded video this end moved over the interval, kbit/s: handed to the protocol to
    /// send (sender), or handed by the protocol to the decoder in complete frames, shown or
    /// decode-only (receiver, the same figure as its `delivered_kbps`). Frame payload only:
    /// no headers, parity or retransmissions.
    pub bitrate_kbps: f64,
    /// The congestion controller's target, kbit/s: the sender's own at the end of the
    /// interval; on the receiver, the sender's as its latest ping carried it (every 250 ms;
    /// 0 before the first).
    pub target_kbps: u64,
    /// Video bitrate that reached the receiver, kbit/s: set beside `target_kbps` so a
    /// latency figure is never read without the bitrate it was bought at. On the receiver,
    /// `bitrate_kbps` (what its pipeline got over the interval). On the sender, what the
    /// receiver's reports said arrived: the mean, over the reports received during the
    /// interval, of each one's media receive rate (fragment payload over the report's 50 ms,
    /// retransmissions included, parity not); `None` when no report came in the interval.
    pub delivered_kbps: Option<f64>,
    /// Round-trip time, ms.
    pub rtt_ms: Option<f64>,
    /// Media datagrams lost before repair, percent of those expected (receiver, interval).
    pub loss_pct: f64,
    /// RFC 3550 interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Frame delay variation (Kalman-filtered), ms.
    pub frame_jitter_ms: f64,
    /// Playout delay the policy adds, ms.
    pub playout_delay_ms: f64,
    /// One-way network delay estimate, ms.
    pub one_way_ms: Option<f64>,
    /// Encode time per frame, submission to packet (sender, interval).
    pub encode_ms: Option<LatencyMs>,
    /// Decode time per frame (receiver, interval).
    pub decode_ms: Option<LatencyMs>,
    /// Glass-to-glass latency from the pixel code: capture to handed to the sink (receiver,
    /// interval; `None` when the pictures carry no code).
    pub g2g_ms: Option<LatencyMs>,
    /// Frames encoded and sent (sender), total.
    pub frames_sent: u64,
    /// Frames handed to the sink for display (receiver), total.
    pub frames_shown: u64,
    /// Shown more than one frame interval later than the interval's median glass-to-glass
    /// latency would put them (receiver, total; counted only where the pixel code is read).
    pub frames_late: u64,
    /// Sent but never shown: decoded only (an older frame of a burst), given up, or never
    /// arrived (receiver, total).
    pub frames_skipped: u64,
    /// Gaps over 100 ms between shown frames (receiver, total).
    pub freezes: u64,
    /// Radio stalls recognised: silences ended by a burst of held datagrams, kept out of
    /// congestion control (receiver, total; see `tandem_proto::stall`). On Apple Wi-Fi with
    /// AWDL awake, about one a second.
    pub stalls: u64,
    /// The period the recent stalls repeat with, ms, once they agree on one (receiver; AWDL:
    /// 1048.6 ms).
    pub stall_period_ms: Option<f64>,
    /// Pictures the sender's own source (a [`crate::VideoSource`]: the pattern, a file, a
    /// pipe, a screen, a camera) gave per second over the interval, before the encoder's
    /// mailbox: the source's own rate, beside `fps`, what was encoded and sent (sender;
    /// `None` when the app submits its pictures itself).
    pub source_fps: Option<f64>,
    /// Pictures lost before the encoder's mailbox (sender, total): those the source lost
    /// itself (a camera's buffers overwritten, a pipe's picture replaced by a newer one) and
    /// the scheduled captures the machine was too late for.
    pub source_dropped: u64,
    /// Pictures the encoder was too busy to take: replaced in its one-picture mailbox by a
    /// newer one (sender, total).
    pub captures_skipped: u64,
    /// Keyframes sent (sender) or received (receiver), total.
    pub keyframes: u64,
    /// Times the receiver started over after its sender restarted, total.
    pub restarts: u64,
    /// Whether datagrams are authenticated and encrypted.
    pub secure: bool,
    /// The authenticated peer's id (its key's fingerprint).
    pub peer_id: Option<String>,
    /// Datagrams the security layer dropped: forged, replayed, unsealed, malformed, of
    /// another version, bad or rate-limited handshakes (total).
    pub dropped_hostile: u64,
    /// Handshakes from devices that are not paired, refused without an answer (total).
    pub unpaired_refused: u64,
    /// Each path of a session over two (see [`crate::connect`]), path 0 first; empty for a
    /// session over one.
    pub paths: Vec<PathStats>,
    /// How the sender spreads datagrams over two paths (`duplicate`, `primary-backup`,
    /// `adaptive`; sender, two paths only).
    pub path_policy: Option<String>,
}

impl Stats {
    /// Fills the security fields from the layer's counters and peer.
    pub(crate) fn with_security(
        mut self,
        secure: bool,
        counters: tandem_proto::security::SecurityStats,
        peer: Option<tandem_proto::security::PeerKey>,
    ) -> Stats {
        let c = counters;
        self.secure = secure;
        self.peer_id = peer.map(|k| k.fingerprint());
        self.dropped_hostile = c.forged
            + c.replayed
            + c.unsealed
            + c.malformed
            + c.other_version
            + c.bad_handshakes
            + c.rate_limited;
        self.unpaired_refused = c.unknown_peers;
        self
    }
}

impl std::fmt::Display for Stats {
    /// The one-line live summary the desktop apps print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let lat = |l: Option<LatencyMs>| {
            l.map_or("-".to_owned(), |l| {
                format!("{:.1}/{:.1}/{:.1}", l.p50, l.p95, l.p99)
            })
        };
        let target = match self.target_kbps {
            0 => "-".to_owned(),
            t => t.to_string(),
        };
        write!(
            f,
            "{:6.1} s  {:5.1} fps  {:6.0} kbit/s",
            self.elapsed_s, self.fps, self.bitrate_kbps
        )?;
        if let Some(c) = &self.codec {
            write!(f, " {c}")?;
        }
        if self.role == "sender" {
            // Sent, the controller's target, and what the receiver says arrived.
            let delivered = self
                .delivered_kbps
                .map_or("-".to_owned(), |d| format!("{d:.0}"));
            write!(
                f,
                " (target {target}, delivered {delivered})  encode {} ms  rtt {} ms  sent {}  \
                 keyframes {}",
                lat(self.encode_ms),
                ms(self.rtt_ms),
                self.frames_sent,
                self.keyframes,
            )?;
            if let Some(rate) = self.source_fps {
                write!(f, "  source {rate:.1} fps dropped {}", self.source_dropped)?;
            }
            write!(f, "  captures skipped {}", self.captures_skipped)?;
        } else {
            // The receiver's bitrate is the delivered one: only the target goes beside it.
            write!(
                f,
                " (target {target})  g2g {} ms  decode {} ms  rtt {} ms  jitter {:.1}/{:.1} ms  \
                 playout {:.1} ms  loss {:.1}%  shown {} late {} skipped {} freezes {}  stalls {}",
                lat(self.g2g_ms),
                lat(self.decode_ms),
                ms(self.rtt_ms),
                self.jitter_ms,
                self.frame_jitter_ms,
                self.playout_delay_ms,
                self.loss_pct,
                self.frames_shown,
                self.frames_late,
                self.frames_skipped,
                self.freezes,
                self.stalls
            )?;
            if let Some(p) = self.stall_period_ms {
                write!(f, " every {p:.0} ms")?;
            }
        }
        if let Some(p) = &self.path_policy {
            write!(f, "  paths ({p})")?;
        } else if !self.paths.is_empty() {
            write!(f, "  paths")?;
        }
        for (i, p) in self.paths.iter().enumerate() {
            let mb = |b: u64| b as f64 / 1e6;
            write!(
                f,
                "{} {} {}: out {:.2} MB in {:.2} MB",
                if i == 0 { "" } else { " |" },
                p.index,
                p.state.name(),
                mb(p.bytes_sent),
                mb(p.bytes_received),
            )?;
            if p.duplicates_received > 0 {
                write!(f, " dup {}", p.duplicates_received)?;
            }
            if let Some(rtt) = p.rtt_ms {
                write!(f, " rtt {rtt:.1} ms")?;
            }
        }
        if self.secure {
            write!(f, "  sealed")?;
        } else {
            write!(f, "  IN THE CLEAR")?;
        }
        if let Some(w) = self.warnings.last() {
            write!(f, "  warning: {w}")?;
            if self.warnings.len() > 1 {
                write!(f, " (+{} more)", self.warnings.len() - 1)?;
            }
        }
        if let Some(e) = &self.error {
            write!(f, "  [{e}]")?;
        }
        Ok(())
    }
}

/// Silence after which the apps call their peer gone (and set the engine's `peer_timeout`
/// to): short, so that the state line says so within 2 s. It only reports: the engine keeps
/// trying.
pub const PEER_SILENCE: Duration = Duration::from_secs(1);

/// Whether the peer is there, and since when it is not: the memory behind an app's one-line
/// state ("no receiver at ADDR; still trying", "streaming to ADDR"). Both desktop apps use
/// it, so they say a change of state the same way and at the same moment.
#[derive(Debug, Clone)]
pub struct PeerPresence {
    up: bool,
    /// It has been there at least once.
    pub was_up: bool,
    /// Since when it is not there (while it is not).
    down_since: Instant,
    /// The absence has been said.
    said_down: bool,
}

impl PeerPresence {
    /// Not there yet, counting from `started`.
    pub fn new(started: Instant) -> PeerPresence {
        PeerPresence {
            up: false,
            was_up: false,
            down_since: started,
            said_down: false,
        }
    }

    /// Takes the newest look; returns the state to say, when it changed: `true` up,
    /// `false` down (said once it has lasted [`PEER_SILENCE`], so that a handshake or a
    /// start in progress is not called an absence).
    pub fn update(&mut self, up: bool) -> Option<bool> {
        if up {
            let changed = !self.up;
            (self.up, self.was_up, self.said_down) = (true, true, false);
            return changed.then_some(true);
        }
        if self.up {
            // What told us it is gone waited PEER_SILENCE already: say so now.
            let now = Instant::now();
            self.up = false;
            self.down_since = now.checked_sub(PEER_SILENCE).unwrap_or(now);
        }
        if !self.said_down && self.down_since.elapsed() >= PEER_SILENCE {
            self.said_down = true;
            return Some(false);
        }
        None
    }

    /// How long the peer has not been there (zero while it is).
    pub fn down_for(&self) -> Duration {
        if self.up {
            Duration::ZERO
        } else {
            self.down_since.elapsed()
        }
    }
}

/// How [`print_until`] shows each snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    /// One JSON object per line on stdout (for scripts).
    Json,
    /// The one-line summary on stderr, rewritten in place on a terminal.
    Line,
}

/// Prints every snapshot from `stats` in `format` until `stop` says so (it sees each
/// snapshot; `None` when a second passed without one, or the stream ended). Returns the last
/// snapshot printed.
pub fn print_until(
    stats: &crossbeam_channel::Receiver<Stats>,
    format: StatsFormat,
    mut stop: impl FnMut(Option<&Stats>) -> bool,
) -> Option<Stats> {
    use std::io::{IsTerminal, Write};
    let tty = std::io::stderr().is_terminal();
    let mut last = None;
    loop {
        let s = stats.recv_timeout(Duration::from_secs(1)).ok();
        if let Some(s) = &s {
            match format {
                StatsFormat::Json => match serde_json::to_string(s) {
                    Ok(j) => println!("{j}"),
                    Err(e) => eprintln!("stats: {e}"),
                },
                StatsFormat::Line if tty => {
                    eprint!("\r\x1b[2K{s}");
                    let _ = std::io::stderr().flush();
                }
                StatsFormat::Line => eprintln!("{s}"),
            }
            last = Some(s.clone());
        }
        if stop(s.as_ref()) {
            if format == StatsFormat::Line && tty {
                eprintln!();
            }
            return last;
        }
    }
}

/// Microseconds of the wall clock (Unix epoch): the clock the pixel code carries, the same
/// for every process on a host, so a sender and a receiver there agree to the microsecond.
/// Between two hosts it is as good as their clock synchronisation.
pub fn wall_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Glass-to-glass latency from a pixel code's 48-bit capture time and the wall clock now.
pub fn g2g_from_code(code_capture_us: u64, now_wall_us: u64) -> Option<Duration> {
    let mask = tandem_codec::pixelcode::CAPTURE_MASK;
    let elapsed = (now_wall_us & mask).wrapping_sub(code_capture_us & mask) & mask;
    // A code from the future, or hours old, is not this stream's.
    (elapsed < 60_000_000).then(|| Duration::from_micros(elapsed))
}

/// Per-frame samples a pipeline holds for an app that has not read them yet
/// ([`crate::Sender::encode_times`], [`crate::Receiver::decode_times`]); older ones make room.
pub(crate) const TIMES_KEPT: usize = 1024;

/// Both ends of such a stream of `(frame id, time)`: the pipeline sends, apps read clones
/// of the receiving end.
pub(crate) type Times = (
    crossbeam_channel::Sender<(u32, Duration)>,
    crossbeam_channel::Receiver<(u32, Duration)>,
);

/// Samples of one interval.
#[derive(Debug, Default)]
pub(crate) struct Window {
    samples: Vec<f64>,
}

impl Window {
    /// Most samples kept per interval (a minute of 240 fps); more are ignored.
    const MAX: usize = 14_400;

    pub(crate) fn push(&mut self, d: Duration) {
        if self.samples.len() < Self::MAX {
            self.samples.push(d.as_secs_f64() * 1e3);
        }
    }

    /// The interval's percentiles, and a fresh interval.
    pub(crate) fn take(&mut self) -> Option<LatencyMs> {
        let s = LatencyMs::of(&mut self.samples);
        self.samples.clear();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_presence_says_each_change_once_and_an_absence_only_after_peer_silence() {
        let started = Instant::now() - PEER_SILENCE * 2;
        let mut p = PeerPresence::new(started);
        // Not there for longer than PEER_SILENCE since the start: said once.
        assert_eq!(p.update(false), Some(false));
        assert_eq!(p.update(false), None);
        assert!(p.down_for() >= PEER_SILENCE * 2);
        assert_eq!(p.update(true), Some(true));
        assert_eq!(p.update(true), None);
        assert!(p.was_up);
        assert_eq!(p.down_for(), Duration::ZERO);
        // Gone: whoever said so waited PEER_SILENCE already, so it is said at once.
        assert_eq!(p.update(false), Some(false));
        assert!(p.down_for() >= PEER_SILENCE);
        // A fresh start is not an absence until PEER_SILENCE has passed.
        let mut q = PeerPresence::new(Instant::now());
        assert_eq!(q.update(false), None);
    }

    #[test]
    fn g2g_reads_the_48_bit_code_across_a_wrap() {
        let now = (1u64 << 48) + 500;
        assert_eq!(
            g2g_from_code((1 << 48) - 1500, now),
            Some(Duration::from_micros(2000))
        );
        assert_eq!(g2g_from_code(now + 10, now), None, "from the future");
        assert!(wall_us() > 1_700_000_000_000_000);
    }

    #[test]
    fn the_senders_line_gives_its_sources_rate_and_drops_beside_what_it_sent() {
        let sent = Stats {
            role: "sender",
            fps: 30.0,
            frames_sent: 300,
            source_fps: Some(59.94),
            source_dropped: 3,
            captures_skipped: 270,
            ..Stats::default()
        };
        let line = sent.to_string();
        assert!(
            line.contains("sent 300  keyframes 0  source 59.9 fps dropped 3  captures skipped 270"),
            "{line}"
        );
        let json = serde_json::to_value(&sent).expect("json");
        assert_eq!(json["source_fps"], 59.94);
        assert_eq!(json["source_dropped"], 3);
        // An app that submits its own pictures has no source to report.
        let submitted = Stats {
            role: "sender",
            ..Stats::default()
        };
        assert!(!submitted.to_string().contains("source"), "{submitted}");
        assert!(serde_json::to_value(&submitted).expect("json")["source_fps"].is_null());
    }

    #[test]
    fn two_paths_are_on_the_line_and_in_json_and_one_path_is_not() {
        let path = |index, state, sent, received, dup, rtt| PathStats {
            index,
            state,
            bytes_sent: sent,
            bytes_received: received,
            duplicates_received: dup,
            rtt_ms: rtt,
            ..PathStats::default()
        };
        let sent = Stats {
            role: "sender",
            path_policy: Some("adaptive".into()),
            paths: vec![
                path(0, PathState::Live, 1_234_000, 40_000, 0, Some(2.14)),
                path(1, PathState::Dead, 512_000, 10_000, 3, None),
            ],
            ..Stats::default()
        };
        let line = sent.to_string();
        assert!(
            line.contains(
                "paths (adaptive) 0 live: out 1.23 MB in 0.04 MB rtt 2.1 ms \
                 | 1 dead: out 0.51 MB in 0.01 MB dup 3  IN THE CLEAR"
            ),
            "{line}"
        );
        let json = serde_json::to_value(&sent).expect("json");
        assert_eq!(json["path_policy"], "adaptive");
        assert_eq!(json["paths"][1]["state"], "dead");
        assert_eq!(json["paths"][0]["bytes_sent"], 1_234_000);
        let one = Stats {
            role: "receiver",
            ..Stats::default()
        };
        assert!(!one.to_string().contains("paths"), "{one}");
        assert_eq!(
            PathState::from_silence(true, Some(Duration::from_millis(5))),
            PathState::Live
        );
        assert_eq!(
            PathState::from_silence(true, Some(Duration::from_millis(30))),
            PathState::Uncertain
        );
        assert_eq!(PathState::from_silence(true, None), PathState::Silent);
        assert_eq!(
            PathState::from_silence(false, Some(Duration::ZERO)),
            PathState::Closed
        );
    }

    #[test]
    fn windows_summarise_and_reset() {
        let mut w = Window::default();
        assert_eq!(w.take(), None);
        for ms in 1..=100u64 {
            w.push(Duration::from_millis(ms));
        }
        let s = w.take().expect("samples");
        assert_eq!((s.p50, s.p95, s.p99), (50.0, 95.0, 99.0));
        assert_eq!(w.take(), None);
        let line = Stats {
            role: "receiver",
            g2g_ms: Some(s),
            error: Some("peer gone".into()),
            ..Stats::default()
        }
        .to_string();
        assert!(
            line.contains("g2g 50.0/95.0/99.0 ms") && line.ends_with("[peer gone]"),
            "{line}"
        );
        assert!(
            line.contains("kbit/s (target -)  g2g"),
            "no ping yet: {line}"
        );
        let received = Stats {
            role: "receiver",
            bitrate_kbps: 1380.4,
            target_kbps: 1400,
            delivered_kbps: Some(1380.4),
            stalls: 12,
            stall_period_ms: Some(1048.6),
            ..Stats::default()
        }
        .to_string();
        assert!(
            received.contains("1380 kbit/s (target 1400)  g2g"),
            "{received}"
        );
        assert!(
            received.contains("freezes 0  stalls 12 every 1049 ms"),
            "{received}"
        );
        let sent = Stats {
            role: "sender",
            bitrate_kbps: 1410.0,
            target_kbps: 1400,
            delivered_kbps: Some(1379.6),
            ..Stats::default()
        }
        .to_string();
        assert!(
            sent.contains("1410 kbit/s (target 1400, delivered 1380)  encode"),
            "{sent}"
        );
        let no_report = Stats {
            role: "sender",
            ..Stats::default()
        }
        .to_string();
        assert!(no_report.contains("(target -, delivered -)"), "{no_report}");
        let json = serde_json::to_value(Stats::default()).expect("json");
        for key in [
            "target_kbps",
            "delivered_kbps",
            "stalls",
            "stall_period_ms",
            "frames_shown",
            "g2g_ms",
            "rtt_ms",
            "fps",
            "frames_late",
            "freezes",
        ] {
            assert!(json.get(key).is_some(), "{key}");
        }
    }
}
