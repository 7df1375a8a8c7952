//! Sessions over two paths at once: what each path is doing, and which path each datagram
//! leaves on.
//!
//! One Wi-Fi radio time-shares between the router's channel and the peer-to-peer link
//! (AWDL), so the two paths of a phone's session die in turns: the infrastructure path stalls
//! for 30–90 ms about once a second while the radio serves AWDL, and AWDL (outside its
//! "realtime" mode) is reachable only then. A session that can send on both reaches the peer
//! through whichever is live. This module is that choice; the driver owns the paths
//! themselves (sockets, transports, addresses) and only tells the endpoint a path's
//! [`PathId`].
//!
//! # One packet-number space; the path is told by the driver
//!
//! QUIC's multipath extension (draft-ietf-quic-multipath) gives every path its own
//! packet-number space and puts a path id in the AEAD nonce, because QUIC acknowledges
//! packets per path and must never send the same packet number twice under one key. Tandem
//! keeps one space per direction instead, and the path is not on the wire:
//!
//! - **A duplicate is the same datagram.** The `duplicate` policy and the copies the
//!   `adaptive` one sends near a switch are byte-identical: sealed once, sent twice. The
//!   receiver drops the later copy by its packet number — the replay window of
//!   [`crate::security`] when sealed, the same window here when not — before any estimator
//!   sees it, and no nonce ever seals two plaintexts.
//! - **Nothing is acknowledged per packet.** Media is repaired by NACK of sequence numbers
//!   (one space for the frame's fragments, whichever path they took) and parity, so there is
//!   no per-path acknowledgement state for separate spaces to keep apart.
//! - **What is measured per path needs no wire field.** Each path has its own prober
//!   ([`PATH_PROBE_INTERVAL`]); a pong comes back on the path its ping arrived on, so its
//!   RTT and its arrival time are that path's. A path's liveness is when the sender last
//!   heard anything on it; its loss is the share of its probes never answered.
//!
//! # Scheduling ([`PathPolicy`])
//!
//! - `duplicate`: every datagram on every path.
//! - `primary-backup`: the first path carries everything while it answers; once it has
//!   been silent for [`SUSPECT_AFTER`] the second carries a copy (and what went on the
//!   first alone since its last answer is sent again there), and once it is silent past
//!   [`DEAD_AFTER`] the second alone. Nothing is predicted.
//! - `adaptive` (default): each path's dead windows are learned ([`DeadWindows`]: period,
//!   phase, how far each edge strays, range of lengths) from the silences in its probes'
//!   answers, and each datagram goes on the one path predicted to be live, with copies on
//!   the other only near a predicted switch or while a path is in doubt (silent a little
//!   too long, or just back). Of two live paths, the one whose probes answer clearly
//!   faster carries the traffic: a path slower than the video queues, its probes wait
//!   behind the queue, and it is left (`SenderPaths::prefer_the_faster`). What went on a
//!   path that fell silent with nothing predicted (the session's first stall, an outage)
//!   is sent again on the other at once.
//!
//! Copies of everything (`duplicate`) are not free on a shared radio: what is sent on the
//! peer-to-peer path while it is dead waits in its queue for the next window and arrives
//! stale, ahead of what that window could have carried fresh; this is why `adaptive` never
//! sends on a path inside its predicted dead window.
//!
//! The policy lives in the sender; the receiver's feedback (NACKs, keyframe requests,
//! reports, its own pings) goes on every path it heard from recently, and each pong on its
//! ping's path.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::rtt::{Prober, RttEstimator};

/// Paths one session may span.
pub const MAX_PATHS: usize = 2;
/// How often each path is probed while a session has two open. Sets how soon a silence is
/// seen: at 5 ms, a dead path is suspect after 12 ms (two probes' answers missing, beyond
/// Wi-Fi's jitter), within the one-RTT-plus-one-frame the design allows for moving traffic.
/// Costs 44 bytes each way per probe (70 kbit/s per path sealed), under 1 % of 8 Mbit/s.
pub const PATH_PROBE_INTERVAL: Duration = Duration::from_millis(5);
/// Pings a path prober remembers: a dead window holds a path's probes (AWDL's path, dead
/// for most of each second, releases a second's worth at once), and their answers still
/// give RTT samples.
const PATH_PROBES_REMEMBERED: usize = 256;
/// A path unheard this long is suspect: the scheduler copies what it sends there onto the
/// other path. Two probe intervals plus the ±1.5 ms Wi-Fi jitter of both directions.
pub const SUSPECT_AFTER: Duration = Duration::from_millis(12);
/// A path unheard this long is dead: nothing is sent on it (but its probes) until it
/// answers again.
pub const DEAD_AFTER: Duration = Duration::from_millis(40);
/// A silence at least this long is a dead window worth learning from; shorter ones are
/// jitter and lost probes.
pub const MIN_DEAD_WINDOW: Duration = Duration::from_millis(20);
/// A path that answers again after being dead is copied onto the other path this long
/// before it carries traffic alone: a returning radio may come and go.
pub const RETURN_GRACE: Duration = Duration::from_millis(20);
/// The most a path's silence sends again: what went on it alone in the RTT before its last
/// answer, at most this far back.
const REINJECT_AT_MOST: Duration = Duration::from_millis(20);
/// Margin added on each side of a predicted switch.
const EDGE_MARGIN: Duration = Duration::from_millis(3);
/// Dead windows remembered per path.
const EPISODES: usize = 8;
/// Longest period learned: beyond it a path's silences are outages, not a schedule.
const MAX_PERIOD: Duration = Duration::from_secs(5);
/// Shortest period learned.
const MIN_PERIOD: Duration = Duration::from_millis(100);
/// Gaps between windows needed before a period is fitted: three, as two gaps between
/// windows whose length varies can agree by chance on a period a few milliseconds off.
const MIN_GAPS: usize = 3;
/// The period assumed until one is fitted: AWDL's channel sequence, 16 slots of 64 TU of
/// 1.024 ms (OWL, `src/channel.h` and `src/ieee80211.h`; see `tandem-sim`'s radio model).
/// A path whose windows do not repeat with it learns no period until it has its own.
pub const AWDL_SEQUENCE: Duration = Duration::from_micros(16 * 64 * 1024);
/// Least widening of the range of lengths seen: a few draws can sit close together (four
/// AWDL stalls of 43–47 ms, then one of 38).
const LENGTH_FLOOR: Duration = Duration::from_millis(10);
/// How much wider every edge and length is predicted while the period is only assumed
/// (one to three windows seen): their spread is not known yet.
const LEARNING_SLACK: Duration = Duration::from_millis(10);

/// One of a session's paths: 0 is the first (the one a single-path session uses), 1 the
/// second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathId(u8);

impl PathId {
    /// The first path: the only one of a single-path session.
    pub const FIRST: PathId = PathId(0);
    /// The second path.
    pub const SECOND: PathId = PathId(1);

    /// The path at `index`, if it is below [`MAX_PATHS`].
    pub fn new(index: usize) -> Option<PathId> {
        (index < MAX_PATHS).then_some(PathId(index as u8))
    }

    /// Its index, below [`MAX_PATHS`].
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    /// The other path.
    pub fn other(self) -> PathId {
        PathId(1 - self.0)
    }

    /// Every path, in order.
    pub fn all() -> impl Iterator<Item = PathId> {
        (0..MAX_PATHS as u8).map(PathId)
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "path {}", self.0)
    }
}

/// The paths a datagram leaves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PathSet(u8);

impl PathSet {
    /// No path.
    pub const NONE: PathSet = PathSet(0);
    /// Every path the driver has (a single-path driver: its one path).
    pub const ALL: PathSet = PathSet((1 << MAX_PATHS) - 1);

    /// Only `path`.
    pub fn only(path: PathId) -> PathSet {
        PathSet(1 << path.0)
    }

    /// This set and `path`.
    pub fn with(self, path: PathId) -> PathSet {
        PathSet(self.0 | 1 << path.0)
    }

    /// The paths in either set.
    pub fn with_all(self, other: PathSet) -> PathSet {
        PathSet(self.0 | other.0)
    }

    /// This set without `path`.
    pub fn without(self, path: PathId) -> PathSet {
        PathSet(self.0 & !(1 << path.0))
    }

    /// Whether `path` is in it.
    pub fn contains(self, path: PathId) -> bool {
        self.0 & (1 << path.0) != 0
    }

    /// The paths in both sets.
    pub fn intersect(self, other: PathSet) -> PathSet {
        PathSet(self.0 & other.0)
    }

    /// Whether it holds no path.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// How many paths it holds.
    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// Its paths, in order.
    pub fn iter(self) -> impl Iterator<Item = PathId> {
        PathId::all().filter(move |p| self.contains(*p))
    }
}

impl FromIterator<PathId> for PathSet {
    fn from_iter<I: IntoIterator<Item = PathId>>(paths: I) -> PathSet {
        paths.into_iter().fold(PathSet::NONE, PathSet::with)
    }
}

/// A datagram written by [`crate::Endpoint::poll_transmit_on`]: its length, and the
/// paths to send it on (intersected with the paths the driver has; if that leaves none,
/// the driver sends it on its first path).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Bytes appended to the caller's buffer.
    pub len: usize,
    /// Where it goes.
    pub paths: PathSet,
}

/// How a two-path sender spreads its datagrams. See the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PathPolicy {
    /// Every datagram on every open path.
    Duplicate,
    /// The first path while it answers, the second when it does not.
    PrimaryBackup,
    /// The path predicted to be live, both near a predicted switch.
    #[default]
    Adaptive,
}

impl PathPolicy {
    /// Every policy, in the order the docs list them.
    pub const ALL: [PathPolicy; 3] = [
        PathPolicy::Duplicate,
        PathPolicy::PrimaryBackup,
        PathPolicy::Adaptive,
    ];

    /// Its name on command lines and in reports.
    pub fn name(self) -> &'static str {
        match self {
            PathPolicy::Duplicate => "duplicate",
            PathPolicy::PrimaryBackup => "primary-backup",
            PathPolicy::Adaptive => "adaptive",
        }
    }
}

impl fmt::Display for PathPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown path policy {0:?}: expected duplicate, primary-backup or adaptive")]
pub struct UnknownPathPolicy(pub String);

impl FromStr for PathPolicy {
    type Err = UnknownPathPolicy;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PathPolicy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPathPolicy(s.to_string()))
    }
}

/// Where a path stands at one instant, as the scheduler sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathState {
    /// Not open.
    Closed,
    /// Answering, and not near a predicted switch: it may carry traffic alone.
    Live,
    /// Near a predicted switch, silent a little too long, just back, or not yet learned:
    /// worth a copy.
    Uncertain,
    /// Inside a predicted dead window: what is sent there waits for the window's end.
    Dead,
    /// Never heard, or silent past [`DEAD_AFTER`] with no window predicted: it may be back
    /// at any moment.
    Silent,
}

/// One dead window seen by the sender, in its own send-time: the window began between
/// `start_lo` and `start_hi` and ended at `end`.
#[derive(Clone, Copy, Debug)]
struct Episode {
    start_lo: Instant,
    start_hi: Instant,
    end: Instant,
}

impl Episode {
    fn start(&self) -> Instant {
        self.start_lo + (self.start_hi - self.start_lo) / 2
    }
}

/// Where an instant falls against a path's predicted dead windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowPhase {
    /// Nothing predicted (no schedule learned), or far from any window.
    Outside,
    /// Within the uncertainty of a predicted window's start or end.
    Edge,
    /// Surely inside a predicted window.
    Inside,
}

/// A path's dead windows as learned from the silences in what it brought back: the period,
/// the edge that keeps it, the phase, and the range of lengths.
///
/// One edge of each window keeps the schedule and the other follows a length that varies:
/// the infrastructure path's windows start on AWDL's schedule and end when the radio comes
/// back (30–90 ms later); the peer-to-peer path's are the reverse. The scheduled edge is the
/// one whose spacing strays less from whole periods (a start's timing error discounted); it is predicted as the latest one plus
/// whole periods, give or take how far it strayed (and how finely it could be timed), and
/// the other edge from it plus the range of lengths seen, widened by the mean spacing of
/// the lengths seen (the range of a few draws understates the range they come from).
#[derive(Clone, Debug, Default)]
pub struct DeadWindows {
    episodes: VecDeque<Episode>,
    period: Option<Duration>,
    /// The scheduled edge is the end (else the start).
    anchored_at_end: bool,
    /// How far the scheduled edge may stray from its prediction.
    spread: Duration,
    len_min: Duration,
    len_max: Duration,
}

/// `(from, to)`, inclusive.
pub type Zone = (Instant, Instant);

fn zone_around(t: Instant, before: Duration, after: Duration) -> Zone {
    (t.checked_sub(before).unwrap_or(t), t + after)
}

/// Whole periods of `p` in the gap `g` (at least one).
fn periods_in(g: Duration, p: Duration) -> u32 {
    (g.as_secs_f64() / p.as_secs_f64()).round().max(1.0) as u32
}

/// The period a series of edges (ascending, at least four) repeats with, and how far the
/// series strays from it: the smallest gaps are single periods (a window missed makes a
/// double one), so the unit is the lower quartile gap, and the period the total over the
/// whole periods it spans.
fn fit_period(edges: &[Instant]) -> Option<(Duration, Duration)> {
    let gaps: Vec<Duration> = edges.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.len() < MIN_GAPS {
        return None;
    }
    let mut sorted = gaps.clone();
    sorted.sort();
    let unit = sorted[(sorted.len() - 1) / 4];
    if !(MIN_PERIOD..=MAX_PERIOD).contains(&unit) {
        return None;
    }
    let units: u32 = gaps.iter().map(|g| periods_in(*g, unit)).sum();
    let period = gaps.iter().sum::<Duration>() / units;
    Some((period, stray(edges, period)))
}

/// The largest distance of a gap in `edges` from a whole number of `period`s.
fn stray(edges: &[Instant], period: Duration) -> Duration {
    edges
        .windows(2)
        .map(|w| {
            let g = w[1] - w[0];
            g.abs_diff(period * periods_in(g, period))
        })
        .max()
        .unwrap_or_default()
}

impl DeadWindows {
    /// A silence observed: heard at `last_heard`, then nothing until `heard_again`; `one_way`
    /// is the path's one-way delay and `probe_interval` how often it was probed. The path
    /// died between `last_heard − one_way` and one probe later, and came back at
    /// `heard_again − one_way` (what a dead window held arrives in one burst as it ends).
    pub fn on_silence(
        &mut self,
        last_heard: Instant,
        heard_again: Instant,
        one_way: Duration,
        probe_interval: Duration,
    ) {
        let start_lo = last_heard.checked_sub(one_way).unwrap_or(last_heard);
        let end = heard_again.checked_sub(one_way).unwrap_or(heard_again);
        let start_hi = (start_lo + probe_interval).min(end);
        if self.episodes.len() == EPISODES {
            self.episodes.pop_front();
        }
        self.episodes.push_back(Episode {
            start_lo,
            start_hi,
            end,
        });
        self.refit();
    }

    fn refit(&mut self) {
        let starts: Vec<Instant> = self.episodes.iter().map(Episode::start).collect();
        let ends: Vec<Instant> = self.episodes.iter().map(|e| e.end).collect();
        self.period = None;
        let lens: Vec<Duration> = self.episodes.iter().map(|e| e.end - e.start()).collect();
        let (Some(&len_min), Some(&len_max)) = (lens.iter().min(), lens.iter().max()) else {
            return;
        };
        // Until four windows show a period of their own, AWDL's is assumed, and kept only
        // while the windows agree with it.
        let fitted = [fit_period(&starts), fit_period(&ends)]
            .into_iter()
            .flatten()
            .min_by_key(|(_, stray)| *stray);
        let (period, slack) = match fitted {
            Some((period, _)) => (period, Duration::ZERO),
            None => (AWDL_SEQUENCE, LEARNING_SLACK),
        };
        let tolerance = (period / 20).max(Duration::from_millis(25));
        let (start_stray, end_stray) = (stray(&starts, period), stray(&ends, period));
        // A silence as long as the period is an outage, not a schedule.
        if start_stray.min(end_stray) > tolerance || len_max >= period {
            return;
        }
        let timing = self
            .episodes
            .iter()
            .map(|e| e.start_hi - e.start_lo)
            .max()
            .unwrap_or_default();
        // A start is timed only to within a probe interval (the last answer before the
        // silence), an end exactly (the burst that ends it): the starts' stray less that
        // timing is their own.
        self.anchored_at_end = end_stray < start_stray.saturating_sub(timing);
        self.spread = if self.anchored_at_end {
            end_stray
        } else {
            start_stray + timing / 2
        } + slack;
        let widen = if lens.len() > 1 {
            (len_max - len_min) / (lens.len() as u32 - 1)
        } else {
            Duration::ZERO
        }
        .max(LENGTH_FLOOR)
            + slack;
        self.len_min = len_min.saturating_sub(widen);
        self.len_max = len_max + widen;
        self.period = Some(period);
    }

    /// The period, once a window has been seen that AWDL's period fits, or four that
    /// show one of their own.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// The predicted window `k` periods after the latest seen: its start zone and end zone.
    fn window(&self, k: u32) -> Option<(Zone, Zone)> {
        let period = self.period?;
        let last = self.episodes.back()?;
        let spread = self.spread + EDGE_MARGIN;
        let (lmin, lmax) = (self.len_min, self.len_max);
        Some(if self.anchored_at_end {
            let e = last.end + period * k;
            let start_zone = (
                e.checked_sub(lmax + spread).unwrap_or(e),
                (e + spread).checked_sub(lmin).unwrap_or(e),
            );
            (start_zone, zone_around(e, spread, spread))
        } else {
            let s = last.start() + period * k;
            let end_zone = (
                (s + lmin).checked_sub(spread).unwrap_or(s),
                s + lmax + spread,
            );
            (zone_around(s, spread, spread), end_zone)
        })
    }

    /// Whether a predicted window ended (its end zone passed) between `from` and `to`
    /// without a silence: the latest silence seen ended before that window could begin.
    pub fn missed_between(&self, from: Instant, to: Instant) -> bool {
        let (Some(period), Some(last)) = (self.period, self.episodes.back()) else {
            return false;
        };
        let k = if to > last.start() {
            ((to - last.start()).as_secs_f64() / period.as_secs_f64()).floor() as u32
        } else {
            0
        };
        [k.saturating_sub(1), k]
            .into_iter()
            .filter(|k| *k > 0)
            .filter_map(|k| self.window(k))
            .any(|(start, end)| end.1 > from && end.1 <= to && last.end < start.0)
    }

    /// Forgets every window: the path was heard throughout one it predicted, so the
    /// schedule was wrong (or has changed).
    pub fn forget(&mut self) {
        *self = DeadWindows::default();
    }

    /// The predicted window around `t` — from the start of its start zone to the end of its
    /// end zone — as `(start zone, end zone)`, if `t` falls in one.
    pub fn around(&self, t: Instant) -> Option<(Zone, Zone)> {
        let period = self.period?;
        let base = self.episodes.back()?.start();
        let k = if t > base {
            ((t - base).as_secs_f64() / period.as_secs_f64()).floor() as u32
        } else {
            0
        };
        [k.saturating_sub(1), k, k + 1]
            .into_iter()
            .filter_map(|k| self.window(k))
            .find(|(start, end)| t >= start.0 && t <= end.1)
    }

    /// Where `t` falls against the predicted windows.
    pub fn phase(&self, t: Instant) -> WindowPhase {
        match self.around(t) {
            None => WindowPhase::Outside,
            Some((start, end)) if t <= start.1 || t >= end.0 => WindowPhase::Edge,
            Some(_) => WindowPhase::Inside,
        }
    }
}

/// Counters and estimates of one path, as the endpoints report them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PathStats {
    /// The driver opened it.
    pub open: bool,
    /// Datagrams sent on it (a datagram sent on both paths counts on each).
    pub datagrams_sent: u64,
    /// Bytes sent on it (UDP payload, before sealing).
    pub bytes_sent: u64,
    /// Media and parity bytes sent on it.
    pub media_bytes_sent: u64,
    /// Datagrams received on it.
    pub datagrams_received: u64,
    /// Bytes received on it.
    pub bytes_received: u64,
    /// Datagrams received on it that another path had already delivered.
    pub duplicates_received: u64,
    /// Probes sent on it (sender).
    pub probes_sent: u64,
    /// Probes answered (sender).
    pub probes_answered: u64,
    /// Smoothed RTT of its probes (held probes included).
    pub rtt: Option<Duration>,
    /// Smallest RTT of its probes.
    pub min_rtt: Option<Duration>,
    /// RTT variation of its probes: its jitter.
    pub rtt_variation: Duration,
    /// When it was last heard.
    pub last_heard: Option<Instant>,
    /// Dead windows seen (silences over [`MIN_DEAD_WINDOW`]).
    pub dead_windows: u64,
    /// The period of its dead windows, once learned.
    pub dead_window_period: Option<Duration>,
    /// Times it fell silent with no window predicted (what was sent on it alone just
    /// before is sent again on the other path).
    pub doubts: u64,
    /// Predicted windows the path was heard right through (each time, what was learned is
    /// forgotten).
    pub predictions_missed: u64,
}

impl PathStats {
    /// Share of probes never answered (0 before any was sent).
    pub fn probe_loss(&self) -> f64 {
        if self.probes_sent == 0 {
            0.0
        } else {
            1.0 - (self.probes_answered as f64 / self.probes_sent as f64).min(1.0)
        }
    }
}

/// One path as the sender tracks it.
#[derive(Debug)]
struct SenderPath {
    open: bool,
    prober: Prober,
    last_heard: Option<Instant>,
    /// When it was heard after being dead, until [`RETURN_GRACE`] has passed.
    returned_at: Option<Instant>,
    /// It fell silent with no window predicted, and the sender was told
    /// ([`SenderPaths::newly_in_doubt`]); cleared when it is heard.
    doubted: bool,
    windows: DeadWindows,
    stats: PathStats,
}

impl SenderPath {
    fn new(path: PathId, now: Instant) -> SenderPath {
        SenderPath {
            open: path == PathId::FIRST,
            prober: Prober::with_interval(
                now,
                PATH_PROBE_INTERVAL,
                PATH_PROBES_REMEMBERED,
                (path.index() as u32 + 1) << 28,
            ),
            last_heard: None,
            returned_at: None,
            doubted: false,
            windows: DeadWindows::default(),
            stats: PathStats::default(),
        }
    }

    fn rtt(&self) -> &RttEstimator {
        self.prober.rtt()
    }
}

/// The sender's view of its paths and its scheduling policy: probes, liveness, dead
/// windows, and the choice of paths for each datagram.
#[derive(Debug)]
pub struct SenderPaths {
    policy: PathPolicy,
    paths: [SenderPath; MAX_PATHS],
    /// Of two live paths, the one that carries the traffic alone ([`SenderPaths::faster`]).
    preferred: PathId,
}

impl SenderPaths {
    /// Path 0 open, path 1 closed, `policy` for when it opens.
    pub fn new(policy: PathPolicy, now: Instant) -> SenderPaths {
        SenderPaths {
            policy,
            paths: [
                SenderPath::new(PathId::FIRST, now),
                SenderPath::new(PathId::SECOND, now),
            ],
            preferred: PathId::FIRST,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> PathPolicy {
        self.policy
    }

    /// Changes the policy live.
    pub fn set_policy(&mut self, policy: PathPolicy) {
        self.policy = policy;
    }

    /// Opens or closes `path`. Opening restarts its probing and its learning.
    pub fn set_open(&mut self, now: Instant, path: PathId, open: bool) {
        let p = &mut self.paths[path.index()];
        if p.open == open {
            return;
        }
        if open {
            *p = SenderPath::new(path, now);
        }
        p.open = open;
    }

    /// Whether two paths are open.
    pub fn multipath(&self) -> bool {
        self.paths.iter().all(|p| p.open)
    }

    /// The open paths.
    pub fn open(&self) -> PathSet {
        PathId::all()
            .filter(|p| self.paths[p.index()].open)
            .collect()
    }

    /// Something authentic arrived on `path` at `now`.
    pub fn on_heard(&mut self, now: Instant, path: PathId) {
        let p = &mut self.paths[path.index()];
        if let Some(last) = p.last_heard {
            let silence = now.saturating_duration_since(last);
            // A predicted window passed and the path never fell silent: the window did not
            // happen.
            if silence < MIN_DEAD_WINDOW && p.windows.missed_between(last, now) {
                p.windows.forget();
                p.stats.predictions_missed += 1;
            }
            if silence >= MIN_DEAD_WINDOW {
                let one_way = p.rtt().min().unwrap_or_default() / 2;
                p.windows
                    .on_silence(last, now, one_way, PATH_PROBE_INTERVAL);
                p.stats.dead_windows += 1;
            }
            if silence >= DEAD_AFTER {
                p.returned_at = Some(now);
            }
        }
        p.last_heard = Some(now.max(p.last_heard.unwrap_or(now)));
        p.doubted = false;
    }

    /// A path that has just fallen silent with no dead window predicted for it (the first
    /// window of a session, an outage), and since when what was sent on it alone may be
    /// lost or held: its last answer's time less an RTT. Once per silence. The sender sends
    /// that again, so the frames it belongs to need not wait for a NACK's round trip
    /// (multipath TCP calls this reinjection).
    pub fn newly_in_doubt(&mut self, now: Instant) -> Option<(PathId, Instant)> {
        if !self.multipath() || self.policy == PathPolicy::Duplicate {
            return None;
        }
        let predicts = self.policy == PathPolicy::Adaptive;
        PathId::all().find_map(|path| {
            let p = &mut self.paths[path.index()];
            let last = p.last_heard?;
            let silent = now.saturating_duration_since(last) >= SUSPECT_AFTER;
            if p.doubted || !silent || (predicts && p.windows.around(now).is_some()) {
                return None;
            }
            p.doubted = true;
            p.stats.doubts += 1;
            // An RTT back from its last answer, but no more than a radio stall's worth: a
            // path that queued has an RTT of its queue, and all of that is not worth
            // sending again.
            let back = p
                .prober
                .rtt()
                .smoothed_or(Duration::from_millis(10))
                .min(REINJECT_AT_MOST);
            Some((path, last.checked_sub(back).unwrap_or(last)))
        })
    }

    /// A path probe due now, if any: `(path, prober)` to ping on.
    pub fn due_probe(&mut self, now: Instant) -> Option<(PathId, &mut Prober)> {
        if !self.multipath() {
            return None;
        }
        let path = PathId::all().find(|p| now >= self.paths[p.index()].prober.next_ping_at())?;
        let p = &mut self.paths[path.index()];
        p.stats.probes_sent += 1;
        Some((path, &mut p.prober))
    }

    /// When the next path probe is due.
    pub fn next_probe_at(&self) -> Option<Instant> {
        if !self.multipath() {
            return None;
        }
        self.paths.iter().map(|p| p.prober.next_ping_at()).min()
    }

    /// The prober of `path`, for a pong that arrived there.
    pub fn prober_mut(&mut self, path: PathId) -> &mut Prober {
        &mut self.paths[path.index()].prober
    }

    /// Counts a probe of `path` answered.
    pub fn on_probe_answered(&mut self, path: PathId) {
        self.paths[path.index()].stats.probes_answered += 1;
        self.prefer_the_faster();
    }

    /// Congestion control per path, as far as where the traffic goes: each path's queue
    /// shows in its probes' smoothed RTT (a path slower than the video queues, and its
    /// probes wait behind the media), so of two live paths the preferred one is the one
    /// answering faster now. The other takes over only when it is clearly faster — by a
    /// quarter and 2 ms — so that two alike paths do not trade places on jitter, and a path
    /// that queued stays second until it is clearly better again, not merely drained.
    /// (The session's rate is one, the encoder's: the receiver's reports set it from what
    /// arrives over either path.)
    fn prefer_the_faster(&mut self) {
        let srtt = |p: PathId| self.paths[p.index()].rtt().smoothed();
        let (now, other) = (self.preferred, self.preferred.other());
        if let (Some(a), Some(b)) = (srtt(now), srtt(other))
            && b + (a / 4).max(Duration::from_millis(2)) < a
        {
            self.preferred = other;
        }
    }

    /// Counts `bytes` sent on each path of `paths`.
    pub fn on_sent(&mut self, paths: PathSet, bytes: usize, media: bool) {
        for path in paths.iter() {
            let s = &mut self.paths[path.index()].stats;
            s.datagrams_sent += 1;
            s.bytes_sent += bytes as u64;
            if media {
                s.media_bytes_sent += bytes as u64;
            }
        }
    }

    /// Where `path` stands at `now`.
    pub fn state(&self, now: Instant, path: PathId) -> PathState {
        let p = &self.paths[path.index()];
        if !p.open {
            return PathState::Closed;
        }
        let Some(last) = p.last_heard else {
            return PathState::Silent;
        };
        // Only `adaptive` predicts.
        let windows = (self.policy == PathPolicy::Adaptive).then_some(&p.windows);
        // Inside a predicted window the prediction decides, not the silence: the
        // peer-to-peer path, silent for most of a second, is worth a copy as its window ends,
        // before it has said anything; the infrastructure path stays worth one until it is
        // heard again, however long its window lasts. Heard after the window surely began
        // (plus the time an answer can be in flight), it is back early.
        if let Some((start, end)) = windows.and_then(|w| w.around(now)) {
            let rtt = p.rtt();
            let flight = (rtt.min().unwrap_or_default() + rtt.variation() * 4)
                .clamp(Duration::from_millis(2), Duration::from_millis(20));
            if last <= start.1 + flight {
                return if now <= start.1 || now >= end.0 {
                    PathState::Uncertain
                } else {
                    PathState::Dead
                };
            }
        }
        let silent = now.saturating_duration_since(last);
        if silent >= DEAD_AFTER {
            return PathState::Silent;
        }
        let returning = p
            .returned_at
            .is_some_and(|t| now.saturating_duration_since(t) < RETURN_GRACE);
        if silent >= SUSPECT_AFTER || returning {
            return PathState::Uncertain;
        }
        PathState::Live
    }

    /// The paths for a datagram sent now.
    pub fn choose(&self, now: Instant) -> PathSet {
        let open = self.open();
        if !self.multipath() {
            return open;
        }
        let states = [
            self.state(now, PathId::FIRST),
            self.state(now, PathId::SECOND),
        ];
        let any = |wanted: &[PathState]| -> PathSet {
            PathId::all()
                .filter(|p| wanted.contains(&states[p.index()]))
                .collect()
        };
        let (live, uncertain) = (any(&[PathState::Live]), any(&[PathState::Uncertain]));
        match self.policy {
            PathPolicy::Duplicate => open,
            PathPolicy::PrimaryBackup => match states {
                [PathState::Live, _] => PathSet::only(PathId::FIRST),
                [
                    PathState::Dead | PathState::Silent,
                    PathState::Live | PathState::Uncertain,
                ] => PathSet::only(PathId::SECOND),
                _ => open,
            },
            PathPolicy::Adaptive => match (live.len(), uncertain.is_empty()) {
                (2, _) => PathSet::only(self.fastest()),
                (1, true) => live,
                // One live path and one in doubt: a copy on the doubtful one.
                (1, false) => live.with_all(uncertain),
                // Nothing live: every path in doubt, and any that fell silent without a
                // prediction (it may be back), but none predicted dead (what goes there
                // waits for its next window, and arrives stale).
                (_, false) => uncertain.with_all(any(&[PathState::Silent])),
                (_, true) => match any(&[PathState::Silent]) {
                    none if none.is_empty() => open,
                    silent => silent,
                },
            },
        }
    }

    /// Of two live paths, the one that carries the traffic alone: the first (the
    /// infrastructure path, by the engine's convention) until the other answers clearly
    /// faster ([`SenderPaths::prefer_the_faster`]).
    fn fastest(&self) -> PathId {
        self.preferred
    }

    /// Per-path statistics.
    pub fn stats(&self) -> [PathStats; MAX_PATHS] {
        std::array::from_fn(|i| {
            let p = &self.paths[i];
            PathStats {
                rtt: p.rtt().smoothed(),
                min_rtt: p.rtt().min(),
                rtt_variation: p.rtt().variation(),
                open: p.open,
                last_heard: p.last_heard,
                dead_window_period: p.windows.period(),
                ..p.stats
            }
        })
    }
}

/// The receiver's (and the sender's, for what comes back) view of its paths: which are
/// open, when each was last heard, and the packet numbers taken lately, which drop the
/// second copy of a datagram sent on both.
#[derive(Debug, Default)]
pub struct ArrivalPaths {
    open: [bool; MAX_PATHS],
    last_heard: [Option<Instant>; MAX_PATHS],
    seen: RecentNumbers,
    stats: [PathStats; MAX_PATHS],
}

/// Packet numbers remembered for dropping copies: four seconds of datagrams at 1000 a
/// second, longer than a copy waits for AWDL's next window.
const COPIES_REMEMBERED: usize = 4096;

/// The latest [`COPIES_REMEMBERED`] packet numbers taken, for an exact match. Not a sliding
/// window like the security layer's replay window: this one also sees numbers nobody
/// authenticated (a session in the clear), and a window that followed one forged number
/// far ahead would take every later genuine one for a copy. Here a forged number costs one
/// slot, and a genuine datagram is dropped only if its own number came before it.
#[derive(Debug, Default)]
struct RecentNumbers {
    set: std::collections::HashSet<u64>,
    order: VecDeque<u64>,
}

impl RecentNumbers {
    /// Takes `pn`: false if it was taken lately.
    fn take(&mut self, pn: u64) -> bool {
        if !self.set.insert(pn) {
            return false;
        }
        self.order.push_back(pn);
        if self.order.len() > COPIES_REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// How long after it was last heard a path still gets the receiver's NACKs and keyframe
/// requests.
const FEEDBACK_RECENT: Duration = Duration::from_millis(100);

impl ArrivalPaths {
    /// Path 0 open.
    pub fn new() -> ArrivalPaths {
        let mut a = ArrivalPaths::default();
        a.open[0] = true;
        a
    }

    /// Opens or closes `path`.
    pub fn set_open(&mut self, path: PathId, open: bool) {
        self.open[path.index()] = open;
    }

    /// Whether two paths are open.
    pub fn multipath(&self) -> bool {
        self.open.iter().all(|o| *o)
    }

    /// The open paths.
    pub fn open_set(&self) -> PathSet {
        PathId::all().filter(|p| self.open[p.index()]).collect()
    }

    /// A datagram numbered `packet_number` arrived on `path`: false if it is a copy of one
    /// already taken (then counted, and to be dropped). Only consulted while two paths are
    /// open; a single path's duplicates are the protocol's ordinary business.
    pub fn on_arrival(
        &mut self,
        now: Instant,
        path: PathId,
        packet_number: u64,
        bytes: usize,
    ) -> bool {
        let i = path.index();
        self.last_heard[i] = Some(now);
        self.stats[i].datagrams_received += 1;
        self.stats[i].bytes_received += bytes as u64;
        if !self.multipath() {
            return true;
        }
        if !self.seen.take(packet_number) {
            self.stats[i].duplicates_received += 1;
            return false;
        }
        true
    }

    /// The path heard from last (the first before any).
    pub fn latest(&self) -> PathId {
        match self.last_heard {
            [Some(a), Some(b)] if self.open[1] && b > a => PathId::SECOND,
            [None, Some(_)] if self.open[1] => PathId::SECOND,
            _ => PathId::FIRST,
        }
    }

    /// Where feedback (NACKs, keyframe requests, reports, the receiver's pings) goes:
    /// every open path heard in the last [`FEEDBACK_RECENT`], at least the one heard last.
    /// Not the last alone: the path heard last may be about to die (AWDL's path at the end
    /// of its window), and what is sent there waits for its next window — a NACK answered a
    /// second late, an RTT sample of a second that slows every later repair.
    pub fn feedback(&self, now: Instant) -> PathSet {
        PathId::all()
            .filter(|p| {
                self.open[p.index()]
                    && self.last_heard[p.index()]
                        .is_some_and(|t| now.saturating_duration_since(t) <= FEEDBACK_RECENT)
            })
            .collect::<PathSet>()
            .with(self.latest())
    }

    /// Counts `bytes` sent on each of `paths`.
    pub fn on_sent(&mut self, paths: PathSet, bytes: usize) {
        for p in paths.iter() {
            self.stats[p.index()].datagrams_sent += 1;
            self.stats[p.index()].bytes_sent += bytes as u64;
        }
    }

    /// Per-path counters.
    pub fn stats(&self) -> [PathStats; MAX_PATHS] {
        std::array::from_fn(|i| PathStats {
            open: self.open[i],
            last_heard: self.last_heard[i],
            ..self.stats[i]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn policy_names_round_trip_and_unknown_is_named() {
        for p in PathPolicy::ALL {
            assert_eq!(p.name().parse::<PathPolicy>(), Ok(p));
        }
        assert_eq!(PathPolicy::default(), PathPolicy::Adaptive);
        let e = "both".parse::<PathPolicy>().expect_err("not a policy");
        assert!(e.to_string().contains("\"both\""), "{e}");
    }

    #[test]
    fn path_sets() {
        let a = PathSet::only(PathId::FIRST);
        assert!(a.contains(PathId::FIRST) && !a.contains(PathId::SECOND));
        assert_eq!(a.with(PathId::SECOND), PathSet::ALL);
        assert_eq!(PathSet::ALL.len(), 2);
        assert!(PathSet::NONE.is_empty());
        assert_eq!(
            PathSet::ALL.iter().collect::<Vec<_>>(),
            vec![PathId::FIRST, PathId::SECOND]
        );
        assert_eq!(PathId::new(2), None);
        assert_eq!(PathId::FIRST.other(), PathId::SECOND);
    }

    /// Silences every 1048.576 ms, lengths 30–50 ms, seen through 5 ms probes: the period is
    /// learned to within a millisecond, and a later window's start and middle are placed.
    #[test]
    fn dead_windows_learn_period_and_phase() {
        let t0 = Instant::now();
        let period = Duration::from_micros(1_048_576);
        let mut w = DeadWindows::default();
        let lens = [31, 48, 40, 35, 50, 33];
        for (k, len) in lens.iter().enumerate() {
            let start = t0 + Duration::from_millis(500) + period * k as u32;
            // The last probe answer before the window, 0–5 ms before it, and the burst 2 ms
            // (one way) after it ends.
            let last = start - Duration::from_micros(1_000 + 700 * k as u64) + 2 * MS;
            w.on_silence(last, start + MS * *len + 2 * MS, 2 * MS, 5 * MS);
        }
        let p = w.period().expect("learned");
        assert!(p.abs_diff(period) < MS, "{p:?}");
        let next = t0 + Duration::from_millis(500) + period * 6;
        assert_eq!(w.phase(next), WindowPhase::Edge);
        assert_eq!(w.phase(next + 10 * MS), WindowPhase::Inside);
        assert_eq!(w.phase(next + 45 * MS), WindowPhase::Edge);
        assert_eq!(w.phase(next + 200 * MS), WindowPhase::Outside);
        assert_eq!(w.phase(next - 100 * MS), WindowPhase::Outside);
    }

    #[test]
    fn a_window_heard_through_is_forgotten_and_an_outage_is_no_schedule() {
        let t0 = Instant::now();
        let mut p = SenderPaths::new(PathPolicy::Adaptive, t0);
        p.set_open(t0, PathId::SECOND, true);
        heard_every(&mut p, PathId::SECOND, t0, t0 + 3_000 * MS);
        // One 30 ms silence: AWDL's period is assumed ...
        heard_every(&mut p, PathId::FIRST, t0, t0 + 500 * MS);
        heard_every(&mut p, PathId::FIRST, t0 + 530 * MS, t0 + 3_000 * MS);
        // ... and dropped when the path answers right through the window it predicted.
        let s = p.stats();
        assert_eq!(s[0].predictions_missed, 1);
        assert_eq!(s[0].dead_window_period, None);
        assert_eq!(p.choose(t0 + 3_000 * MS), PathSet::only(PathId::FIRST));
        // A five-second outage predicts nothing.
        let mut w = DeadWindows::default();
        w.on_silence(t0, t0 + 5_000 * MS, MS, 5 * MS);
        assert_eq!(w.period(), None);
    }

    #[test]
    fn irregular_silences_learn_no_period() {
        let t0 = Instant::now();
        let mut w = DeadWindows::default();
        for (at, len) in [(300, 30), (1_000, 40), (1_450, 25), (2_900, 60)] {
            let s = t0 + at * MS;
            w.on_silence(s, s + len * MS, MS, 5 * MS);
        }
        assert_eq!(w.period(), None);
        assert_eq!(w.phase(t0 + 3_000 * MS), WindowPhase::Outside);
    }

    fn heard_every(paths: &mut SenderPaths, path: PathId, from: Instant, to: Instant) {
        let mut t = from;
        while t < to {
            paths.on_heard(t, path);
            t += 5 * MS;
        }
    }

    #[test]
    fn one_path_sends_on_it_alone() {
        let t0 = Instant::now();
        let p = SenderPaths::new(PathPolicy::Duplicate, t0);
        assert_eq!(p.choose(t0), PathSet::only(PathId::FIRST));
    }

    #[test]
    fn primary_backup_moves_to_the_backup_as_the_primary_falls_silent() {
        let t0 = Instant::now();
        let mut p = SenderPaths::new(PathPolicy::PrimaryBackup, t0);
        p.set_open(t0, PathId::SECOND, true);
        heard_every(&mut p, PathId::FIRST, t0, t0 + 100 * MS);
        heard_every(&mut p, PathId::SECOND, t0, t0 + 200 * MS);
        let last = t0 + 95 * MS;
        assert_eq!(p.choose(last + MS), PathSet::only(PathId::FIRST));
        assert_eq!(p.choose(last + SUSPECT_AFTER + MS), PathSet::ALL);
        assert_eq!(
            p.choose(last + DEAD_AFTER + MS),
            PathSet::only(PathId::SECOND)
        );
    }

    #[test]
    fn adaptive_without_predictions_uses_the_faster_live_path_and_copies_while_in_doubt() {
        let t0 = Instant::now();
        let mut p = SenderPaths::new(PathPolicy::Adaptive, t0);
        p.set_open(t0, PathId::SECOND, true);
        // Neither heard yet: both silent, so both get everything.
        assert_eq!(p.choose(t0), PathSet::ALL);
        let end = t0 + 1_000 * MS;
        heard_every(&mut p, PathId::FIRST, t0, end);
        // The second never answers: silent, and the first carries everything.
        assert_eq!(p.choose(end - MS), PathSet::only(PathId::FIRST));
        // The first falls silent: in doubt, so a copy goes on the silent second, which
        // may be live now; once the first is silent too long, both still (neither is
        // known live), until the second answers.
        let last = end - 5 * MS;
        assert_eq!(p.choose(last + SUSPECT_AFTER + MS), PathSet::ALL);
        heard_every(&mut p, PathId::SECOND, last + 20 * MS, last + 50 * MS);
        assert_eq!(p.choose(last + 50 * MS), PathSet::only(PathId::SECOND));
    }

    /// A path with windows on AWDL's schedule (the infrastructure side): after one window
    /// the next is expected, copies go on both around its start, the second alone inside it.
    #[test]
    fn one_window_on_the_awdl_schedule_predicts_the_next() {
        let t0 = Instant::now();
        let mut p = SenderPaths::new(PathPolicy::Adaptive, t0);
        p.set_open(t0, PathId::SECOND, true);
        let s0 = t0 + 500 * MS;
        heard_every(&mut p, PathId::FIRST, t0, s0);
        heard_every(&mut p, PathId::SECOND, s0 + 4 * MS, s0 + 40 * MS);
        heard_every(&mut p, PathId::FIRST, s0 + 42 * MS, s0 + 1_040 * MS);
        let s1 = s0 + AWDL_SEQUENCE;
        assert_eq!(p.state(s1 - 100 * MS, PathId::FIRST), PathState::Live);
        assert_eq!(p.choose(s1 - 100 * MS), PathSet::only(PathId::FIRST));
        assert_eq!(p.state(s1, PathId::FIRST), PathState::Uncertain);
        assert_eq!(p.choose(s1), PathSet::ALL);
        // While the period is only assumed, the whole window is in doubt: copies on both.
        heard_every(&mut p, PathId::SECOND, s1 + 4 * MS, s1 + 20 * MS);
        assert_eq!(p.state(s1 + 19 * MS, PathId::FIRST), PathState::Uncertain);
        assert_eq!(p.choose(s1 + 19 * MS), PathSet::ALL);
    }

    #[test]
    fn a_number_far_ahead_does_not_make_later_ones_copies() {
        let t0 = Instant::now();
        let mut a = ArrivalPaths::new();
        a.set_open(PathId::SECOND, true);
        assert!(a.on_arrival(t0, PathId::SECOND, (1 << 48) - 1, 100));
        for pn in 0..10_000 {
            assert!(a.on_arrival(t0, PathId::FIRST, pn, 100), "{pn}");
        }
        assert!(!a.on_arrival(t0, PathId::SECOND, 9_999, 100));
        assert!(a.seen.order.len() <= COPIES_REMEMBERED);
    }

    #[test]
    fn arrivals_drop_the_second_copy_only_with_two_paths() {
        let t0 = Instant::now();
        let mut a = ArrivalPaths::new();
        assert!(a.on_arrival(t0, PathId::FIRST, 7, 100));
        assert!(
            a.on_arrival(t0, PathId::FIRST, 7, 100),
            "one path: not ours"
        );
        a.set_open(PathId::SECOND, true);
        assert!(a.on_arrival(t0, PathId::FIRST, 8, 100));
        assert!(!a.on_arrival(t0 + MS, PathId::SECOND, 8, 100));
        assert!(a.on_arrival(t0 + MS, PathId::SECOND, 9, 100));
        let s = a.stats();
        assert_eq!(s[1].duplicates_received, 1);
        assert_eq!(a.latest(), PathId::SECOND);
        assert_eq!(a.feedback(t0 + 50 * MS), PathSet::ALL);
        assert_eq!(a.feedback(t0 + 500 * MS), PathSet::only(PathId::SECOND));
    }
}
