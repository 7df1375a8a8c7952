//! The virtual-time runner: a sender and a receiver `tandem-proto` endpoint joined by one
//! impaired [`Link`] per direction, fed by a synthetic encoder.
//!
//! Time is virtual: the loop jumps from one event to the next (a capture, a datagram
//! arrival, an endpoint timer), so a minute of 60 fps streaming runs in a fraction of a
//! second and replays identically from its seed. Both links share the stall schedule —
//! an AWDL channel switch silences the radio in both directions — but draw every other
//! impairment from independent random streams.
//!
//! A scenario may add a second path ([`Scenario::second`]): one more link per direction,
//! drawn from its own random streams but on the same stall schedule (one radio, see
//! [`crate::impair`]: the `awdl-dual` profiles' second path is live only inside the first
//! one's stall windows). Both endpoints then open path 1, and each datagram goes on the
//! paths the endpoint names ([`tandem_proto::Transmit`]); a datagram sent on both is one
//! copy per link, counted on each.
//!
//! The loop follows the endpoints' run-loop contract (see `tandem_proto`): deliver due
//! datagrams, feed the frame due, fire due timers, drain transmits into the links, drain
//! events.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tandem_proto::{
    Endpoint, FecMode, OutgoingFrame, PathId, PathPolicy, PathSet, PlayoutPolicy, ReceiverConfig,
    ReceiverEvent, ReceiverStats, Sender, SenderConfig, SenderEvent, SenderStats,
};

use crate::impair::{Link, LinkConfig, LinkCounters};

/// Session id used in simulations.
const SESSION: u32 = 0x514d_0001;

/// Everything that defines one simulated run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Impairments on the sender → receiver link.
    pub forward: LinkConfig,
    /// Impairments on the receiver → sender link (default: same as forward).
    pub reverse: LinkConfig,
    /// Receiver playout policy.
    pub policy: PlayoutPolicy,
    /// NACK and FEC on (false: the no-recovery baseline).
    pub recovery: bool,
    /// Run length.
    pub duration: Duration,
    /// Frames per second.
    pub fps: u32,
    /// Encoder target (and congestion-control ceiling), bit/s.
    pub bitrate_bps: u64,
    /// Seed for every random choice.
    pub seed: u64,
    /// A second path, for a session over two (default none).
    pub second: Option<SecondPath>,
    /// How the sender spreads datagrams over two paths. Default [`PathPolicy::Adaptive`].
    pub path_policy: PathPolicy,
}

/// The links of a scenario's second path.
#[derive(Clone, Debug)]
pub struct SecondPath {
    /// Sender → receiver.
    pub forward: LinkConfig,
    /// Receiver → sender.
    pub reverse: LinkConfig,
}

impl Scenario {
    /// The reference scenario of the targets: 60 s, 60 fps, 8 Mbit/s, latency policy.
    pub fn new(link: LinkConfig, seed: u64) -> Self {
        Self {
            reverse: link.clone(),
            forward: link,
            policy: PlayoutPolicy::Latency,
            recovery: true,
            duration: Duration::from_secs(60),
            fps: 60,
            bitrate_bps: 8_000_000,
            seed,
            second: None,
            path_policy: PathPolicy::Adaptive,
        }
    }

    /// The reference scenario over two paths (`links` as [`crate::profile::dual_profile`]
    /// gives them, each the same both ways), spread by `policy`.
    pub fn dual(links: [LinkConfig; 2], policy: PathPolicy, seed: u64) -> Self {
        let [first, second] = links;
        Self {
            second: Some(SecondPath {
                forward: second.clone(),
                reverse: second,
            }),
            path_policy: policy,
            ..Scenario::new(first, seed)
        }
    }

    /// Frame interval.
    pub fn frame_interval(&self) -> Duration {
        Duration::from_secs(1) / self.fps.max(1)
    }
}

/// Synthetic encoder: delta frames of `bitrate / fps` bytes varying ±20 %, keyframes 10×
/// a delta frame, a keyframe at start and whenever requested, and a target bitrate that
/// follows the congestion controller. Like a real-time encoder's frame dropper, the runner
/// skips a capture (before encoding, so no reference breaks) while the sender's pacer
/// still holds more than a frame interval of data.
#[derive(Debug)]
pub struct EncoderModel {
    fps: u32,
    target_bps: u64,
    rng: ChaCha8Rng,
    keyframe_pending: bool,
}

/// Keyframe size relative to a delta frame.
pub const KEYFRAME_FACTOR: usize = 10;

impl EncoderModel {
    /// An encoder at `fps` and `target_bps`, seeded.
    pub fn new(fps: u32, target_bps: u64, seed: u64) -> Self {
        Self {
            fps,
            target_bps,
            rng: ChaCha8Rng::seed_from_u64(seed),
            keyframe_pending: true,
        }
    }

    /// Asks for the next frame to be a keyframe.
    pub fn force_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    /// Changes the target bitrate.
    pub fn set_target_bitrate(&mut self, bps: u64) {
        self.target_bps = bps;
    }

    /// Produces the next frame: (bytes, keyframe).
    pub fn next_frame(&mut self) -> (Bytes, bool) {
        let keyframe = std::mem::take(&mut self.keyframe_pending);
        let mean = self.target_bps as f64 / 8.0 / f64::from(self.fps.max(1));
        let size = (mean * self.rng.random_range(0.8..1.2)) as usize;
        let size = if keyframe {
            size * KEYFRAME_FACTOR
        } else {
            size
        }
        .max(1);
        (Bytes::from(vec![0x5a; size]), keyframe)
    }
}

/// What happened to one captured frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameRecord {
    /// Frame id (`u32::MAX` when the encoder skipped the capture).
    pub frame_id: u32,
    /// Skipped before encoding because the sender's queue was too long.
    pub skipped_by_encoder: bool,
    /// Capture time since the start of the run.
    pub capture: Duration,
    /// When it was displayed, if it was.
    pub shown_at: Option<Duration>,
    /// Handed to the decoder (displayed or not).
    pub decoded: bool,
    /// When its last piece arrived, if it was completed.
    pub completed_at: Option<Duration>,
    /// It needed a retransmission or parity to complete.
    pub repaired: bool,
    /// Keyframe.
    pub keyframe: bool,
}

impl FrameRecord {
    /// Capture-to-display latency, if displayed.
    pub fn latency(&self) -> Option<Duration> {
        self.shown_at.map(|s| s.saturating_sub(self.capture))
    }
}

/// The outcome of one run.
#[derive(Clone, Debug)]
pub struct RunResult {
    /// The scenario that ran.
    pub scenario: Scenario,
    /// One record per captured frame, in capture order.
    pub frames: Vec<FrameRecord>,
    /// Stall windows within the run.
    pub stall_windows: Vec<(Duration, Duration)>,
    /// Encoded video bytes the encoder produced.
    pub bytes_payload: u64,
    /// Encoded video bytes of the frames the receiver handed to the decoder: the video
    /// that got through.
    pub bytes_delivered: u64,
    /// UDP payload bytes sent in both directions.
    pub bytes_wire: u64,
    /// Sender stats at the end.
    pub sender: SenderStats,
    /// Receiver stats at the end.
    pub receiver: ReceiverStats,
    /// Sender → receiver link counters.
    pub forward_link: LinkCounters,
    /// Receiver → sender link counters.
    pub reverse_link: LinkCounters,
    /// The second path's links (sender → receiver, receiver → sender), when there is one.
    pub second_links: Option<(LinkCounters, LinkCounters)>,
    /// Over two paths: when each media or parity datagram was sent, and on which paths (so
    /// a test can tell when traffic moved). Empty with one path.
    pub media_sends: Vec<(Duration, PathSet)>,
    /// Real time the run took.
    pub wall: Duration,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Duration,
    order: u64,
    to_receiver: bool,
    path: usize,
    data: Bytes,
}

/// Runs `scenario` to completion.
pub fn run(scenario: &Scenario) -> RunResult {
    let wall_start = Instant::now();
    let t0 = Instant::now();
    let at = |d: Duration| t0 + d;
    let seed = scenario.seed;

    let mut tx_config = SenderConfig::new(SESSION);
    tx_config.start_bitrate_bps = scenario.bitrate_bps;
    tx_config.max_bitrate_bps = scenario.bitrate_bps;
    tx_config.frame_interval_hint = scenario.frame_interval();
    tx_config.path_policy = scenario.path_policy;
    let mut rx_config = ReceiverConfig::new(SESSION);
    rx_config.playout = scenario.policy;
    if !scenario.recovery {
        tx_config.fec = FecMode::Off;
        rx_config = rx_config.without_recovery();
    }
    let mut tx = Sender::new(tx_config, t0);
    // The receiver's clock is unrelated to the sender's; only the protocol's own clock
    // offset estimate may bridge them.
    let mut rx = tandem_proto::Receiver::new(rx_config, t0 - Duration::from_millis(1234));
    // Every link shares the stall schedule (one radio); nothing else.
    let mut forward = vec![Link::with_stall_seed(&scenario.forward, seed, seed)];
    let mut reverse = vec![Link::with_stall_seed(
        &scenario.reverse,
        seed ^ 0x5eed_ba4c,
        seed,
    )];
    if let Some(second) = &scenario.second {
        forward.push(Link::with_stall_seed(
            &second.forward,
            seed ^ 0x5ec0_f0e1,
            seed,
        ));
        reverse.push(Link::with_stall_seed(
            &second.reverse,
            seed ^ 0x5ec0_ba4c,
            seed,
        ));
        tx.set_path_open(t0, PathId::SECOND, true);
        rx.set_path_open(t0, PathId::SECOND, true);
    }
    let paths = PathId::all().take(forward.len()).collect::<PathSet>();
    let mut buf = Vec::new();
    let mut media_sends = Vec::new();
    let mut encoder = EncoderModel::new(scenario.fps, scenario.bitrate_bps, seed ^ 0x00e4_c0de);

    let mut in_flight: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut frames: Vec<FrameRecord> = Vec::new();
    let mut index_of: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut bytes_payload = 0u64;
    // Encoded size of each captured frame, parallel to `frames` (0 when skipped).
    let mut sizes: Vec<u64> = Vec::new();
    let mut bytes_wire = 0u64;
    let interval = scenario.frame_interval();
    let mut next_capture = Duration::ZERO;
    let mut now = Duration::ZERO;
    let end = scenario.duration;
    // Frames still in flight at the end get a grace period to arrive.
    let drain_end = end + Duration::from_millis(500);

    loop {
        let next = [
            (next_capture < end).then_some(next_capture),
            tx.poll_timeout().map(|t| t.saturating_duration_since(t0)),
            rx.poll_timeout().map(|t| t.saturating_duration_since(t0)),
            in_flight.peek().map(|Reverse(p)| p.at),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { break };
        now = now.max(next);
        if now > drain_end {
            break;
        }
        let instant = at(now);

        while in_flight.peek().is_some_and(|Reverse(p)| p.at <= now) {
            let Some(Reverse(p)) = in_flight.pop() else {
                break;
            };
            let path = PathId::new(p.path).expect("a path of this run");
            if p.to_receiver {
                rx.handle_datagram_on(instant, path, p.data);
            } else {
                tx.handle_datagram_on(instant, path, p.data);
            }
        }
        if next_capture <= now && next_capture < end {
            let mut record = FrameRecord {
                frame_id: u32::MAX,
                skipped_by_encoder: true,
                capture: next_capture,
                shown_at: None,
                decoded: false,
                completed_at: None,
                repaired: false,
                keyframe: false,
            };
            let mut size = 0;
            if tx.queue_delay() <= interval {
                let (data, keyframe) = encoder.next_frame();
                bytes_payload += data.len() as u64;
                size = data.len() as u64;
                let frame = OutgoingFrame::av1(data, at(next_capture), keyframe);
                if let Ok(id) = tx.send_frame(instant, frame) {
                    index_of.insert(id, frames.len());
                    record = FrameRecord {
                        frame_id: id,
                        skipped_by_encoder: false,
                        keyframe,
                        ..record
                    };
                }
            }
            frames.push(record);
            sizes.push(size);
            next_capture += interval;
        }
        if tx.poll_timeout().is_some_and(|t| t <= instant) {
            tx.handle_timeout(instant);
        }
        if rx.poll_timeout().is_some_and(|t| t <= instant) {
            rx.handle_timeout(instant);
        }
        let mut put_on_links = |links: &mut [Link], data: Bytes, on: PathSet, to_receiver: bool| {
            let on = match on.intersect(paths) {
                none if none.is_empty() => PathSet::only(PathId::FIRST),
                some => some,
            };
            for path in on.iter() {
                bytes_wire += data.len() as u64;
                for at in links[path.index()].send(now, data.len()) {
                    order += 1;
                    in_flight.push(Reverse(InFlight {
                        at,
                        order,
                        to_receiver,
                        path: path.index(),
                        data: data.clone(),
                    }));
                }
            }
        };
        while let Some(t) = tx.poll_transmit_on(instant, &mut buf) {
            // The type nibble of byte 1: media (1) or parity (2).
            if scenario.second.is_some() && matches!(buf.get(1).map(|b| b & 0x0f), Some(1 | 2)) {
                media_sends.push((now, t.paths));
            }
            put_on_links(
                &mut forward,
                Bytes::from(std::mem::take(&mut buf)),
                t.paths,
                true,
            );
        }
        while let Some(t) = rx.poll_transmit_on(instant, &mut buf) {
            put_on_links(
                &mut reverse,
                Bytes::from(std::mem::take(&mut buf)),
                t.paths,
                false,
            );
        }
        while let Some(e) = tx.poll_event() {
            match e {
                SenderEvent::KeyframeRequested => encoder.force_keyframe(),
                SenderEvent::TargetBitrate(bps) => encoder.set_target_bitrate(bps),
            }
        }
        while let Some(ReceiverEvent::Frame(f)) = rx.poll_event() {
            if let Some(rec) = index_of.get(&f.frame_id).and_then(|&i| frames.get_mut(i)) {
                rec.decoded = true;
                rec.completed_at = Some(f.completed_at.saturating_duration_since(t0));
                rec.repaired = f.repaired;
                if f.display {
                    rec.shown_at = Some(now);
                }
            }
        }
    }

    let bytes_delivered = frames
        .iter()
        .zip(&sizes)
        .filter(|(f, _)| f.decoded)
        .map(|(_, s)| s)
        .sum();
    RunResult {
        bytes_delivered,
        stall_windows: forward[0].stall_windows(Duration::ZERO, end),
        media_sends,
        second_links: (forward.len() > 1).then(|| (forward[1].counters(), reverse[1].counters())),
        scenario: scenario.clone(),
        frames,
        bytes_payload,
        bytes_wire,
        sender: tx.stats(),
        forward_link: forward[0].counters(),
        reverse_link: reverse[0].counters(),
        receiver: rx.stats(),
        wall: wall_start.elapsed(),
    }
}
