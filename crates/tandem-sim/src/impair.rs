//! Seeded, composable impairment models and the [`Link`] that chains them.
//!
//! Time is a [`Duration`] since the start of the run, virtual or real: the same models
//! drive the simulator and the real-time relay. Each model is a [`Stage`] that takes the
//! in-flight copies of one datagram and may drop, delay or duplicate them. Each stage owns
//! its random stream, derived from the link seed and the stage's name, so switching one
//! impairment on never shifts another's random choices.
//!
//! Pipeline order in a [`Link`], and why:
//! 1. [`RandomLoss`], [`GilbertElliott`] — a frame lost on the air never queues.
//! 2. [`PeriodicStall`] — the radio is away on another channel: datagrams wait (or are
//!    lost) until the window ends…
//! 3. [`Capacity`] — …and then drain back to back at link rate: the burst.
//! 4. [`DelayJitter`] — propagation and contention delay; first-in first-out, because a
//!    Wi-Fi link does not reorder frames.
//! 5. [`Reorder`] — the rare datagram that does arrive late, overtaken by later ones.
//! 6. [`Duplicate`] — a retransmitted 802.11 frame whose ACK was lost arrives twice.
//!
//! Before all of them, an [`Outage`] (a path gone silent for a while) loses every datagram
//! that enters during it. The datagrams it loses never reach the other stages, so they draw
//! nothing from those stages' random streams.
//!
//! # The shared radio
//!
//! One Wi-Fi radio serves the router's channel and AWDL (Apple Wireless Direct Link) by
//! taking turns, so a [`PeriodicStall`] schedule belongs to the radio, not to one link: its
//! windows are the times the radio is away from the infrastructure channel. A link says
//! which side of that schedule it is on ([`StallConfig::serves`]). A
//! [`Channel::Infrastructure`] link is dead inside the windows (the single-path model); a
//! [`Channel::PeerToPeer`] link is live only inside them. The windows are a pure function of
//! the stall seed and the window index, so two links built with the same stall seed
//! ([`Link::with_stall_seed`]) see the same windows, and each is live where the other is
//! dead. [`Link::stall_windows`] returns those shared windows on either side.
//!
//! What the model takes from published descriptions of AWDL, and what it assumes:
//!
//! - **Time unit, windows, sequence.** AWDL counts in IEEE 802.11 time units (TU) of
//!   1024 µs (OWL, the open AWDL implementation, github.com/seemoo-lab/owl:
//!   `src/ieee80211.h`). An availability window (AW) is 16 TU, and with the presence mode
//!   of 4 that OWL starts with, four AWs make one extended availability window (EAW) of
//!   64 TU = 65.536 ms (`src/sync.c`: `awdl_sync_state_init`, `awdl_sync_current_eaw`).
//!   The channel sequence has 16 entries (`src/channel.h`: `AWDL_CHANSEQ_LENGTH`), one
//!   per EAW (`src/schedule.c` and `daemon/core.c` pick the entry as the current EAW
//!   modulo 16), so it repeats every 16 × 64 TU = 1024 TU = 1048.576 ms, the stall
//!   period [`crate::profile::AWDL_PERIOD`].
//! - **How long AWDL holds the radio.** Each node announces a sequence of availability
//!   windows that an elected master keeps synchronized; outside them a node may tune its
//!   radio to another channel to talk to an access point, or switch it off (Stute,
//!   Kreitschmann, Hollick, "One Billion Apples' Secret Sauce: Recipe for the Apple
//!   Wireless Direct Link Ad hoc Protocol", MobiCom 2018, arXiv:1808.03156). An
//!   access-point vendor describes the same for AirPlay: the radio time-shares between
//!   channel 149 and the infrastructure channel (Aruba blog, "Apple TV Peer-to-Peer using
//!   WiFi channels 6 and 149"). A sequence entry names a channel or none, so AWDL takes
//!   the radio in whole 64-TU slots. OWL's idle sequence (`src/channel.c`:
//!   `awdl_chanseq_init_idle`) names channel 149 in slots 0, 9 and 10 and channel 6 in
//!   slot 8 and leaves the other twelve empty; its busy one (`awdl_chanseq_init`) fills
//!   all sixteen. With the router on channel 149, AWDL's slots on 149 cost the router
//!   nothing, and the idle sequence takes the radio away once per sequence for one slot,
//!   65.5 ms. That fits the single stall of 30–90 ms about once a second measured on the
//!   infrastructure side (`shared/DESIGN.md`). The model keeps those measured lengths:
//!   one window per sequence, its length drawn from `[min, max]`.
//! - **Edges.** OWL sends no unicast frame within 3 TU (3.07 ms) of an EAW edge when the
//!   neighbouring slot is on another channel, and no multicast frame within 16 TU
//!   (`src/schedule.h`: `AWDL_UNICAST_GUARD_TU`, `AWDL_MULTICAST_GUARD_TU`;
//!   `src/schedule.c`: `awdl_can_send_in`, `awdl_can_send_unicast_in`). That margin has
//!   to cover clock error between peers as well as the switch, so it is not a measure of
//!   the switching time.
//! - **Switching time.** Neither OWL (it switches with one call at the slot boundary,
//!   `daemon/core.c`: `awdl_switch_channel`) nor the paper gives a figure that we found.
//!   A co-author's summary is only that the hopping costs a small overhead (Stack
//!   Overflow question 19587701, "What is AWDL (Apple Wireless Direct Link) and how does
//!   it work?"), and a general Wi-Fi source puts typical channel switches at about 5 ms
//!   (European patent application EP 4 383 869 A2, background). The dual-path profiles
//!   use [`crate::profile::AWDL_SWITCH`] = 500 µs. That value is our assumption; a spec
//!   can change it (`stall-switch=`).
//! - **Where the switch time goes** (our choice). A window is a measured absence from the
//!   router's channel, so it already contains the switch away and the switch back. An
//!   infrastructure link therefore ignores [`StallConfig::switch`]: a larger switch time
//!   never lengthens its stall. A peer-to-peer link is live in
//!   `[start + switch, end − switch)`. A datagram arriving in the first `switch` of a
//!   window is held to `start + switch`; one arriving in its last `switch`, or between
//!   windows, is held to the next window's `start + switch`. Neither side is live during
//!   the two switches.
//! - **Not modelled.** When the AWDL channel is the router's channel, both paths are
//!   live at once in those slots. A busier channel sequence than the idle one takes the
//!   radio away for more than one slot a sequence. Apple's "realtime" AWDL mode, which
//!   public APIs cannot request (`shared/DESIGN.md`), is not modelled either. A
//!   peer-to-peer burst drains at link rate even past the window's end, because the
//!   [`Capacity`] stage knows nothing of windows; a scheduler that sends on the
//!   peer-to-peer path only inside windows never meets this.

use std::fmt;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One impairment.
pub trait Stage: fmt::Debug + Send {
    /// Transforms the in-flight copies of one datagram of `size` bytes: each entry is a
    /// time the copy leaves this stage. Removing an entry drops that copy.
    fn process(&mut self, size: usize, copies: &mut Vec<Duration>);
}

fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    // FNV-1a over the stage name: a stable, documented derivation of per-stage seeds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    ChaCha8Rng::seed_from_u64(seed ^ h)
}

fn uniform(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let span = (hi - lo).as_nanos() as u64;
    lo + Duration::from_nanos(rng.random_range(0..=span))
}

/// Independent (Bernoulli) loss.
#[derive(Debug)]
pub struct RandomLoss {
    /// Probability each datagram is lost.
    pub probability: f64,
    rng: ChaCha8Rng,
    /// Datagrams dropped.
    pub dropped: u64,
}

impl RandomLoss {
    /// Loses each datagram with `probability`.
    pub fn new(probability: f64, seed: u64) -> Self {
        Self {
            probability: probability.clamp(0.0, 1.0),
            rng: stream(seed, "loss"),
            dropped: 0,
        }
    }
}

impl Stage for RandomLoss {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        let before = copies.len();
        copies.retain(|_| !self.rng.random_bool(self.probability));
        self.dropped += (before - copies.len()) as u64;
    }
}

/// Gilbert-Elliott burst loss: a good state that loses nothing and a bad state that loses
/// everything.
///
/// From an average loss `L` and a mean burst of `B` datagrams: a bad run ends with
/// probability `p_bg = 1/B` per datagram (geometric runs of mean `B`), and the stationary
/// share of the bad state, `p_gb / (p_gb + p_bg)`, must equal `L`, so
/// `p_gb = L·p_bg / (1 − L)`.
#[derive(Debug)]
pub struct GilbertElliott {
    /// Good → bad transition probability per datagram.
    pub p_good_to_bad: f64,
    /// Bad → good transition probability per datagram.
    pub p_bad_to_good: f64,
    bad: bool,
    rng: ChaCha8Rng,
    /// Datagrams dropped.
    pub dropped: u64,
}

impl GilbertElliott {
    /// Average loss `avg_loss` in bursts of mean length `mean_burst` datagrams.
    pub fn new(avg_loss: f64, mean_burst: f64, seed: u64) -> Self {
        let l = avg_loss.clamp(0.0, 0.999);
        let p_bg = 1.0 / mean_burst.max(1.0);
        let p_gb = (l * p_bg / (1.0 - l)).min(1.0);
        Self {
            p_good_to_bad: p_gb,
            p_bad_to_good: p_bg,
            bad: false,
            rng: stream(seed, "burst"),
            dropped: 0,
        }
    }
}

impl Stage for GilbertElliott {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        self.bad = if self.bad {
            !self.rng.random_bool(self.p_bad_to_good)
        } else {
            self.rng.random_bool(self.p_good_to_bad)
        };
        if self.bad {
            self.dropped += copies.len() as u64;
            copies.clear();
        }
    }
}

/// The AWDL channel-switch pattern of one radio: windows starting at `phase + k·period`,
/// each lasting a duration drawn uniformly from `[min, max]` by a generator keyed by
/// `(seed, k)` — so the schedule is a pure function anyone can query, the same on either
/// side of the radio (see [the shared radio](self#the-shared-radio)).
///
/// On the [`Channel::Infrastructure`] side a datagram arriving inside a window is held to
/// its end. On the [`Channel::PeerToPeer`] side one arriving outside `[start + switch,
/// end − switch)` is held to the next such start. Either way a held datagram is lost with
/// probability `loss_in_stall`, and the [`Capacity`] stage after this one turns the held
/// datagrams into a burst. Windows must not overlap (`max < period`; the spec parser
/// enforces it).
#[derive(Debug)]
pub struct PeriodicStall {
    /// Window spacing (AWDL: 16 slots of 64 TU ≈ 1.05 s).
    pub period: Duration,
    /// Shortest window.
    pub min: Duration,
    /// Longest window.
    pub max: Duration,
    /// Start of window 0.
    pub phase: Duration,
    /// Loss probability for held datagrams.
    pub loss_in_stall: f64,
    /// The side of the schedule this link is on.
    pub serves: Channel,
    /// Channel-switching time, at most half the shortest window.
    pub switch: Duration,
    schedule_seed: u64,
    rng: ChaCha8Rng,
    /// Datagrams held (inside a window, or outside one on the peer-to-peer side).
    pub held: u64,
    /// Held datagrams lost.
    pub dropped: u64,
}

impl PeriodicStall {
    /// A stall schedule; `seed` keys both the window lengths and the losses of held
    /// datagrams. The switching time is cut to half the shortest window, so every window
    /// of the peer-to-peer side has a live part, even if an empty one.
    pub fn new(config: &StallConfig, seed: u64) -> Self {
        Self {
            period: config.period.max(Duration::from_millis(1)),
            min: config.min,
            max: config.max.max(config.min),
            phase: config.phase,
            loss_in_stall: config.loss_in_stall.clamp(0.0, 1.0),
            serves: config.serves,
            switch: config.switch.min(config.min / 2),
            schedule_seed: seed,
            rng: stream(seed, "stall-loss"),
            held: 0,
            dropped: 0,
        }
    }

    /// When a datagram reaching this stage at `t` may leave it: `None` if at once, else the
    /// time it is held to. A pure function of the schedule, whichever side the link is on.
    pub fn hold_until(&self, t: Duration) -> Option<Duration> {
        match self.serves {
            Channel::Infrastructure => self.containing(t).map(|(_, end)| end),
            Channel::PeerToPeer => {
                if t < self.phase {
                    return Some(self.phase + self.switch);
                }
                let k = ((t - self.phase).as_nanos() / self.period.as_nanos()) as u64;
                let (start, end) = self.window(k);
                if t < start + self.switch {
                    Some(start + self.switch)
                } else if t < end.saturating_sub(self.switch) {
                    None
                } else {
                    Some(self.window(k + 1).0 + self.switch)
                }
            }
        }
    }

    /// Window `k` as `(start, end)`.
    pub fn window(&self, k: u64) -> (Duration, Duration) {
        let start = self.phase + self.period * k as u32;
        let mut rng = stream(
            self.schedule_seed ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            "stall",
        );
        (start, start + uniform(&mut rng, self.min, self.max))
    }

    /// Windows overlapping `[from, to)`.
    pub fn windows_between(&self, from: Duration, to: Duration) -> Vec<(Duration, Duration)> {
        let mut out = Vec::new();
        let first = from.saturating_sub(self.phase + self.max).as_nanos() / self.period.as_nanos();
        let mut k = first as u64;
        loop {
            let (s, e) = self.window(k);
            if s >= to {
                break;
            }
            if e > from {
                out.push((s, e));
            }
            k += 1;
        }
        out
    }

    fn containing(&self, t: Duration) -> Option<(Duration, Duration)> {
        if t < self.phase {
            return None;
        }
        let k = ((t - self.phase).as_nanos() / self.period.as_nanos()) as u64;
        let (s, e) = self.window(k);
        (t >= s && t < e).then_some((s, e))
    }
}

impl Stage for PeriodicStall {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        let mut i = 0;
        while i < copies.len() {
            if let Some(release) = self.hold_until(copies[i]) {
                if self.rng.random_bool(self.loss_in_stall) {
                    copies.remove(i);
                    self.dropped += 1;
                    continue;
                }
                copies[i] = release;
                self.held += 1;
            }
            i += 1;
        }
    }
}

/// Serialization at a fixed rate behind a drop-tail queue bounded in time; the rate may
/// change once, at a set time ([`CapacityStep`]: the link a congestion controller must
/// follow down).
#[derive(Debug)]
pub struct Capacity {
    /// Link rate.
    pub bits_per_second: u64,
    /// The rate from a set time on.
    pub step: Option<CapacityStep>,
    /// Longest a datagram may wait in the queue before it is dropped instead.
    pub queue_limit: Duration,
    busy_until: Duration,
    /// Datagrams dropped at the queue.
    pub dropped: u64,
}

impl Capacity {
    /// A link of `bits_per_second` with a queue of at most `queue_limit` waiting.
    pub fn new(bits_per_second: u64, queue_limit: Duration) -> Self {
        Self {
            bits_per_second: bits_per_second.max(1),
            step: None,
            queue_limit,
            busy_until: Duration::ZERO,
            dropped: 0,
        }
    }

    /// The same link whose rate becomes `step.bits_per_second` at `step.at`.
    pub fn with_step(mut self, step: Option<CapacityStep>) -> Self {
        self.step = step;
        self
    }

    /// The link rate at `t`.
    pub fn rate_at(&self, t: Duration) -> u64 {
        match self.step {
            Some(s) if t >= s.at => s.bits_per_second.max(1),
            _ => self.bits_per_second,
        }
    }

    /// Time to put `size` bytes on the link at the initial rate.
    pub fn tx_time(&self, size: usize) -> Duration {
        Self::tx_time_at(size, self.bits_per_second)
    }

    fn tx_time_at(size: usize, bps: u64) -> Duration {
        Duration::from_nanos((size as u128 * 8 * 1_000_000_000 / u128::from(bps.max(1))) as u64)
    }
}

impl Stage for Capacity {
    fn process(&mut self, size: usize, copies: &mut Vec<Duration>) {
        let mut i = 0;
        while i < copies.len() {
            let t = copies[i];
            let start = t.max(self.busy_until);
            if start - t > self.queue_limit {
                copies.remove(i);
                self.dropped += 1;
                continue;
            }
            self.busy_until = start + Self::tx_time_at(size, self.rate_at(start));
            copies[i] = self.busy_until;
            i += 1;
        }
    }
}

/// Propagation delay `base` plus uniform jitter in `[−jitter, +jitter]`, first-in
/// first-out: a datagram never leaves before the one ahead of it.
#[derive(Debug)]
pub struct DelayJitter {
    /// Base one-way delay.
    pub base: Duration,
    /// Jitter amplitude.
    pub jitter: Duration,
    last: Duration,
    rng: ChaCha8Rng,
}

impl DelayJitter {
    /// Delay `base ± jitter`.
    pub fn new(base: Duration, jitter: Duration, seed: u64) -> Self {
        Self {
            base,
            jitter,
            last: Duration::ZERO,
            rng: stream(seed, "jitter"),
        }
    }
}

impl Stage for DelayJitter {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        for t in copies.iter_mut() {
            let j = uniform(&mut self.rng, Duration::ZERO, self.jitter * 2);
            let d = (*t + self.base + j).saturating_sub(self.jitter).max(*t);
            *t = d.max(self.last);
            self.last = *t;
        }
    }
}

/// Selected datagrams get extra delay and are overtaken by later ones.
#[derive(Debug)]
pub struct Reorder {
    /// Probability a datagram is delayed.
    pub probability: f64,
    /// Least extra delay.
    pub min_extra: Duration,
    /// Most extra delay.
    pub max_extra: Duration,
    rng: ChaCha8Rng,
    /// Datagrams delayed.
    pub reordered: u64,
}

impl Reorder {
    /// Delays each datagram with `probability` by `[min_extra, max_extra]`.
    pub fn new(config: &ReorderConfig, seed: u64) -> Self {
        Self {
            probability: config.probability.clamp(0.0, 1.0),
            min_extra: config.min_extra,
            max_extra: config.max_extra,
            rng: stream(seed, "reorder"),
            reordered: 0,
        }
    }
}

impl Stage for Reorder {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        for t in copies.iter_mut() {
            if self.rng.random_bool(self.probability) {
                *t += uniform(&mut self.rng, self.min_extra, self.max_extra);
                self.reordered += 1;
            }
        }
    }
}

/// Gap between a datagram and its duplicate (an 802.11 retry takes tens of µs).
pub const DUPLICATE_GAP: Duration = Duration::from_micros(10);

/// Duplicates datagrams.
#[derive(Debug)]
pub struct Duplicate {
    /// Probability a datagram arrives twice.
    pub probability: f64,
    rng: ChaCha8Rng,
    /// Copies added.
    pub duplicated: u64,
}

impl Duplicate {
    /// Duplicates each datagram with `probability`.
    pub fn new(probability: f64, seed: u64) -> Self {
        Self {
            probability: probability.clamp(0.0, 1.0),
            rng: stream(seed, "dup"),
            duplicated: 0,
        }
    }
}

impl Stage for Duplicate {
    fn process(&mut self, _size: usize, copies: &mut Vec<Duration>) {
        let n = copies.len();
        for i in 0..n {
            if self.rng.random_bool(self.probability) {
                copies.push(copies[i] + DUPLICATE_GAP);
                self.duplicated += 1;
            }
        }
    }
}

/// Burst-loss parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstLoss {
    /// Average loss fraction.
    pub avg_loss: f64,
    /// Mean burst length in datagrams.
    pub mean_burst: f64,
}

/// A change of link rate at a set time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityStep {
    /// When the rate changes, since the start of the run.
    pub at: Duration,
    /// The rate from then on, bit/s.
    pub bits_per_second: u64,
}

/// Reordering parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ReorderConfig {
    /// Fraction of datagrams delayed.
    pub probability: f64,
    /// Least extra delay.
    pub min_extra: Duration,
    /// Most extra delay.
    pub max_extra: Duration,
}

/// The side of the shared radio schedule a link is on (see
/// [the shared radio](self#the-shared-radio)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Channel {
    /// The router's channel: dead inside the windows, while the radio serves AWDL.
    #[default]
    Infrastructure,
    /// AWDL: live only inside the windows, less the switching time at each edge.
    PeerToPeer,
}

/// Stall parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StallConfig {
    /// Window spacing.
    pub period: Duration,
    /// Shortest window.
    pub min: Duration,
    /// Longest window.
    pub max: Duration,
    /// Start of the first window.
    pub phase: Duration,
    /// Loss probability for held datagrams (inside windows on the infrastructure side,
    /// outside them on the peer-to-peer side).
    pub loss_in_stall: f64,
    /// Which side of the schedule the link is on.
    pub serves: Channel,
    /// Channel-switching time, spent inside each window at both ends; only the
    /// peer-to-peer side feels it. Zero: the single-path model exactly.
    pub switch: Duration,
}

/// A path gone silent: every datagram entering in `[from, to)` is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outage {
    /// Start of the silence, since the start of the run.
    pub from: Duration,
    /// End of the silence (exclusive).
    pub to: Duration,
}

impl Outage {
    /// Whether a datagram entering at `t` is lost.
    pub fn contains(&self, t: Duration) -> bool {
        t >= self.from && t < self.to
    }
}

/// Default start of the first stall: after a run's start-up.
pub const DEFAULT_STALL_PHASE: Duration = Duration::from_millis(500);

/// A link's impairments. `Default` is the `clean` profile: 0.5 ms, 100 Mbit/s, nothing else.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Base one-way delay.
    pub base_delay: Duration,
    /// Jitter amplitude (uniform ±).
    pub jitter: Duration,
    /// Independent loss fraction.
    pub loss: f64,
    /// Gilbert-Elliott burst loss.
    pub burst_loss: Option<BurstLoss>,
    /// Reordering.
    pub reorder: Option<ReorderConfig>,
    /// Duplication fraction.
    pub duplicate: f64,
    /// Link rate, bit/s.
    pub capacity_bps: u64,
    /// A change of link rate during the run.
    pub capacity_step: Option<CapacityStep>,
    /// Periodic stalls.
    pub stall: Option<StallConfig>,
    /// Longest queueing wait before drop-tail.
    pub queue_limit: Duration,
    /// A time the path is silent.
    pub outage: Option<Outage>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            base_delay: Duration::from_micros(500),
            jitter: Duration::ZERO,
            loss: 0.0,
            burst_loss: None,
            reorder: None,
            duplicate: 0.0,
            capacity_bps: 100_000_000,
            capacity_step: None,
            stall: None,
            queue_limit: Duration::from_millis(500),
            outage: None,
        }
    }
}

/// Counters of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Datagrams sent into the link.
    pub datagrams_in: u64,
    /// Copies delivered.
    pub delivered: u64,
    /// Lost at random.
    pub dropped_random: u64,
    /// Lost in bursts.
    pub dropped_burst: u64,
    /// Lost while held by the stall schedule.
    pub dropped_stall: u64,
    /// Lost to an outage.
    pub dropped_outage: u64,
    /// Dropped at the full queue.
    pub dropped_queue: u64,
    /// Held by the stall schedule.
    pub held_by_stall: u64,
    /// Delayed out of order.
    pub reordered: u64,
    /// Duplicate copies added.
    pub duplicated: u64,
    /// Bytes sent into the link.
    pub bytes_in: u64,
    /// Bytes delivered (duplicates included).
    pub bytes_out: u64,
}

/// A one-way link: the stages of a [`LinkConfig`] in pipeline order.
#[derive(Debug)]
pub struct Link {
    random: RandomLoss,
    burst: Option<GilbertElliott>,
    stall: Option<PeriodicStall>,
    capacity: Capacity,
    delay: DelayJitter,
    reorder: Option<Reorder>,
    duplicate: Duplicate,
    outage: Option<Outage>,
    counters: LinkCounters,
}

impl Link {
    /// Builds the pipeline for `config`, every random stream derived from `seed`.
    pub fn new(config: &LinkConfig, seed: u64) -> Self {
        Self::with_stall_seed(config, seed, seed)
    }

    /// As [`Link::new`], with the stall schedule keyed by its own seed: the two directions of
    /// one radio share `stall_seed` (a channel switch silences both) but nothing else.
    pub fn with_stall_seed(config: &LinkConfig, seed: u64, stall_seed: u64) -> Self {
        Self {
            random: RandomLoss::new(config.loss, seed),
            burst: config
                .burst_loss
                .map(|b| GilbertElliott::new(b.avg_loss, b.mean_burst, seed)),
            stall: config
                .stall
                .as_ref()
                .map(|s| PeriodicStall::new(s, stall_seed)),
            capacity: Capacity::new(config.capacity_bps, config.queue_limit)
                .with_step(config.capacity_step),
            delay: DelayJitter::new(config.base_delay, config.jitter, seed),
            reorder: config.reorder.as_ref().map(|r| Reorder::new(r, seed)),
            duplicate: Duplicate::new(config.duplicate, seed),
            outage: config.outage,
            counters: LinkCounters::default(),
        }
    }

    /// A datagram of `size` bytes enters at `sent` (non-decreasing across calls); returns
    /// when each copy arrives, ascending (empty: lost).
    pub fn send(&mut self, sent: Duration, size: usize) -> Vec<Duration> {
        let mut copies = vec![sent];
        self.counters.datagrams_in += 1;
        self.counters.bytes_in += size as u64;
        if self.outage.is_some_and(|o| o.contains(sent)) {
            self.counters.dropped_outage += 1;
            return Vec::new();
        }
        self.random.process(size, &mut copies);
        if let Some(b) = &mut self.burst {
            b.process(size, &mut copies);
        }
        if let Some(s) = &mut self.stall {
            s.process(size, &mut copies);
        }
        self.capacity.process(size, &mut copies);
        self.delay.process(size, &mut copies);
        if let Some(r) = &mut self.reorder {
            r.process(size, &mut copies);
        }
        self.duplicate.process(size, &mut copies);
        copies.sort();
        self.counters.delivered += copies.len() as u64;
        self.counters.bytes_out += (copies.len() * size) as u64;
        copies
    }

    /// Stall windows overlapping `[from, to)`; empty without a stall model. They are the
    /// radio's windows, the same on either side: dead time on the infrastructure side, live
    /// time (less the switching time at each end) on the peer-to-peer side.
    pub fn stall_windows(&self, from: Duration, to: Duration) -> Vec<(Duration, Duration)> {
        self.stall
            .as_ref()
            .map_or_else(Vec::new, |s| s.windows_between(from, to))
    }

    /// The stall model, if the link has one: its side, switching time, windows and
    /// [`PeriodicStall::hold_until`].
    pub fn stall(&self) -> Option<&PeriodicStall> {
        self.stall.as_ref()
    }

    /// Whether a datagram sent at `t` would be neither lost to an outage nor held by the
    /// stall schedule (it may still be lost at random or queue behind others).
    pub fn live_at(&self, t: Duration) -> bool {
        !self.outage.is_some_and(|o| o.contains(t))
            && self
                .stall
                .as_ref()
                .is_none_or(|s| s.hold_until(t).is_none())
    }

    /// Counters so far.
    pub fn counters(&self) -> LinkCounters {
        LinkCounters {
            dropped_random: self.random.dropped,
            dropped_burst: self.burst.as_ref().map_or(0, |b| b.dropped),
            dropped_stall: self.stall.as_ref().map_or(0, |s| s.dropped),
            held_by_stall: self.stall.as_ref().map_or(0, |s| s.held),
            dropped_queue: self.capacity.dropped,
            reordered: self.reorder.as_ref().map_or(0, |r| r.reordered),
            duplicated: self.duplicate.duplicated,
            ..self.counters
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const US: Duration = Duration::from_micros(1);
    const SEC: Duration = Duration::from_secs(1);

    fn feed(link: &mut Link, n: usize, gap: Duration, size: usize) -> Vec<Vec<Duration>> {
        (0..n).map(|i| link.send(gap * i as u32, size)).collect()
    }

    #[test]
    fn random_loss_rate_matches() {
        let mut l = Link::new(
            &LinkConfig {
                loss: 0.01,
                ..Default::default()
            },
            3,
        );
        let out = feed(&mut l, 200_000, 100 * US, 100);
        let lost = out.iter().filter(|c| c.is_empty()).count() as f64 / 200_000.0;
        // σ = sqrt(0.01·0.99/2e5) ≈ 0.00022: ±4σ.
        assert!((lost - 0.01).abs() < 0.0009, "{lost}");
        assert_eq!(
            l.counters().dropped_random as usize,
            out.iter().filter(|c| c.is_empty()).count()
        );
    }

    #[test]
    fn gilbert_elliott_average_and_burst_length() {
        let cfg = LinkConfig {
            burst_loss: Some(BurstLoss {
                avg_loss: 0.02,
                mean_burst: 5.0,
            }),
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 9);
        let lost: Vec<bool> = feed(&mut l, 400_000, 50 * US, 100)
            .iter()
            .map(Vec::is_empty)
            .collect();
        let avg = lost.iter().filter(|x| **x).count() as f64 / lost.len() as f64;
        let mut bursts = Vec::new();
        let mut run = 0;
        for &x in &lost {
            if x {
                run += 1;
            } else if run > 0 {
                bursts.push(run);
                run = 0;
            }
        }
        let mean = bursts.iter().sum::<usize>() as f64 / bursts.len() as f64;
        assert!((avg - 0.02).abs() < 0.003, "avg {avg}");
        assert!((mean - 5.0).abs() < 0.4, "mean burst {mean}");
    }

    #[test]
    fn stall_holds_then_releases_a_burst_at_capacity() {
        let stall = StallConfig {
            period: 1050 * MS,
            min: 40 * MS,
            max: 40 * MS,
            phase: 500 * MS,
            loss_in_stall: 0.0,
            serves: Channel::Infrastructure,
            switch: Duration::ZERO,
        };
        let cfg = LinkConfig {
            stall: Some(stall),
            base_delay: Duration::ZERO,
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 1);
        // One 1200-byte datagram every 1 ms across the first window [500, 540) ms.
        let mut arrivals = Vec::new();
        for i in 480..600u32 {
            arrivals.push((MS * i, l.send(MS * i, 1200)[0]));
        }
        let tx = Capacity::new(100_000_000, Duration::ZERO).tx_time(1200);
        assert_eq!(tx, 96 * US);
        for (sent, at) in &arrivals {
            if *sent >= 500 * MS && *sent < 540 * MS {
                assert!(*at >= 540 * MS, "held until the window ends");
            }
        }
        // The 40 held datagrams leave back to back, 96 µs apart.
        let held: Vec<Duration> = arrivals
            .iter()
            .filter(|(s, _)| *s >= 500 * MS && *s < 540 * MS)
            .map(|(_, a)| *a)
            .collect();
        assert_eq!(held.len(), 40);
        for w in held.windows(2) {
            assert_eq!(w[1] - w[0], tx);
        }
        assert_eq!(held[0], 540 * MS + tx);
        assert_eq!(l.counters().held_by_stall, 40);
    }

    #[test]
    fn stall_schedule_is_deterministic_and_within_bounds() {
        let s = StallConfig {
            period: 1050 * MS,
            min: 30 * MS,
            max: 50 * MS,
            phase: 500 * MS,
            loss_in_stall: 0.0,
            serves: Channel::Infrastructure,
            switch: Duration::ZERO,
        };
        let a = PeriodicStall::new(&s, 7);
        let b = PeriodicStall::new(&s, 7);
        let c = PeriodicStall::new(&s, 8);
        let wa = a.windows_between(Duration::ZERO, Duration::from_secs(60));
        assert_eq!(
            wa,
            b.windows_between(Duration::ZERO, Duration::from_secs(60))
        );
        assert_ne!(
            wa,
            c.windows_between(Duration::ZERO, Duration::from_secs(60))
        );
        assert_eq!(wa.len(), 57);
        for (k, (s0, e0)) in wa.iter().enumerate() {
            assert_eq!(*s0, 500 * MS + 1050 * MS * k as u32);
            assert!(*e0 - *s0 >= 30 * MS && *e0 - *s0 <= 50 * MS);
        }
        assert_eq!(a.windows_between(1560 * MS, 1561 * MS), vec![a.window(1)]);
        assert!(a.windows_between(1530 * MS, 1540 * MS).is_empty());
    }

    #[test]
    fn stall_loss_applies_only_inside_windows() {
        let stall = StallConfig {
            period: 100 * MS,
            min: 50 * MS,
            max: 50 * MS,
            phase: Duration::ZERO,
            loss_in_stall: 0.1,
            serves: Channel::Infrastructure,
            switch: Duration::ZERO,
        };
        let mut l = Link::new(
            &LinkConfig {
                stall: Some(stall),
                ..Default::default()
            },
            4,
        );
        let out = feed(&mut l, 100_000, 200 * US, 100);
        let (mut inside, mut lost_inside, mut lost_outside) = (0, 0, 0);
        for (i, c) in out.iter().enumerate() {
            let t = (200 * US) * i as u32;
            let in_window = t.as_millis() % 100 < 50;
            inside += usize::from(in_window);
            if c.is_empty() {
                if in_window {
                    lost_inside += 1
                } else {
                    lost_outside += 1
                }
            }
        }
        assert_eq!(lost_outside, 0);
        let rate = lost_inside as f64 / inside as f64;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
    }

    #[test]
    fn capacity_spaces_a_burst_and_drops_past_the_queue_limit() {
        let mut c = Capacity::new(8_000_000, 5 * MS); // 1 ms per 1000-byte datagram
        let mut out = Vec::new();
        for _ in 0..10 {
            let mut v = vec![Duration::ZERO];
            c.process(1000, &mut v);
            out.push(v);
        }
        assert_eq!(out[0], vec![MS]);
        assert_eq!(out[4], vec![5 * MS]);
        assert_eq!(out[5], vec![6 * MS], "waited exactly 5 ms: still admitted");
        assert!(out[6].is_empty(), "would wait 6 ms: dropped");
        assert_eq!(c.dropped, 4);
    }

    #[test]
    fn jitter_stays_in_bounds_and_never_reorders() {
        let cfg = LinkConfig {
            base_delay: 2 * MS,
            jitter: 1500 * US,
            capacity_bps: u64::MAX / 16,
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 5);
        let mut last = Duration::ZERO;
        let mut beyond_jitter = 0;
        for i in 0..100_000u32 {
            let sent = 2 * MS * i;
            let at = l.send(sent, 100)[0];
            assert!(at >= last, "FIFO");
            assert!(at >= sent + 500 * US);
            if at > sent + 3500 * US + US {
                beyond_jitter += 1;
            }
            last = at;
        }
        // Datagrams 2 ms apart never catch up with one another: jitter alone bounds them.
        assert_eq!(beyond_jitter, 0);
    }

    #[test]
    fn reorder_fraction_and_overtaking() {
        let cfg = LinkConfig {
            base_delay: MS,
            reorder: Some(ReorderConfig {
                probability: 0.02,
                min_extra: 5 * MS,
                max_extra: 15 * MS,
            }),
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 6);
        let out = feed(&mut l, 100_000, MS, 100);
        let mut late = 0;
        for (i, c) in out.iter().enumerate() {
            if c[0] >= MS * i as u32 + 6 * MS {
                late += 1;
                // Sent 1 ms apart with ≥ 5 ms extra: the next one, if not delayed too, arrived
                // first.
                if let Some(next) = out
                    .get(i + 1)
                    .filter(|n| n[0] < MS * (i as u32 + 1) + 6 * MS)
                {
                    assert!(next[0] < c[0]);
                }
            }
        }
        let frac = late as f64 / 100_000.0;
        assert!((frac - 0.02).abs() < 0.002, "{frac}");
        assert_eq!(l.counters().reordered, late as u64);
    }

    #[test]
    fn duplicates_and_stage_independence() {
        let base = LinkConfig {
            loss: 0.05,
            ..Default::default()
        };
        let with_dup = LinkConfig {
            duplicate: 0.03,
            ..base.clone()
        };
        let mut a = Link::new(&base, 11);
        let mut b = Link::new(&with_dup, 11);
        let oa = feed(&mut a, 50_000, 200 * US, 100);
        let ob = feed(&mut b, 50_000, 200 * US, 100);
        // The same datagrams are lost whether or not duplication is on.
        for (x, y) in oa.iter().zip(&ob) {
            assert_eq!(x.is_empty(), y.is_empty());
        }
        let dups = ob.iter().filter(|c| c.len() == 2).count() as f64;
        let delivered = ob.iter().filter(|c| !c.is_empty()).count() as f64;
        assert!((dups / delivered - 0.03).abs() < 0.005);
        assert!(
            ob.iter()
                .filter(|c| c.len() == 2)
                .all(|c| c[1] - c[0] == DUPLICATE_GAP)
        );
    }

    #[test]
    fn same_seed_same_outcome_other_seed_other_outcome() {
        let cfg = crate::profile::profile("awdl-heavy").expect("named profile");
        let run = |seed| {
            let mut l = Link::new(&cfg, seed);
            feed(&mut l, 20_000, 300 * US, 1200)
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    /// A radio with `awdl-heavy`'s schedule and a switching time, seen from one side.
    fn radio(serves: Channel, switch: Duration) -> LinkConfig {
        LinkConfig {
            base_delay: Duration::ZERO,
            stall: Some(StallConfig {
                period: crate::profile::AWDL_PERIOD,
                min: 30 * MS,
                max: 90 * MS,
                phase: 500 * MS,
                loss_in_stall: 0.0,
                serves,
                switch,
            }),
            ..Default::default()
        }
    }

    /// Feeds one datagram every `gap` from `offset` for `n` sends; returns, per send, the
    /// send time and whether the stall schedule let it pass at once.
    fn passes(link: &mut Link, n: u32, gap: Duration, offset: Duration) -> Vec<(Duration, bool)> {
        (0..n)
            .map(|i| {
                let t = offset + gap * i;
                let held = link.counters().held_by_stall;
                let live = link.live_at(t);
                link.send(t, 1200);
                let passed = link.counters().held_by_stall == held;
                assert_eq!(live, passed, "live_at agrees with the stage at {t:?}");
                (t, passed)
            })
            .collect()
    }

    #[test]
    fn the_two_sides_of_one_radio_are_complementary() {
        for switch in [Duration::ZERO, 500 * US, 3 * MS] {
            for offset in [Duration::ZERO, 250 * US, 999 * US] {
                // Different link seeds, the same stall seed: the two paths of one radio.
                let mut infra =
                    Link::with_stall_seed(&radio(Channel::Infrastructure, switch), 1, 42);
                let mut p2p = Link::with_stall_seed(&radio(Channel::PeerToPeer, switch), 2, 42);
                let a = passes(&mut infra, 20_000, MS, offset);
                let b = passes(&mut p2p, 20_000, MS, offset);
                let windows = infra.stall_windows(Duration::ZERO, 20 * SEC);
                assert_eq!(windows, p2p.stall_windows(Duration::ZERO, 20 * SEC));
                assert_eq!(windows.len(), 19);
                let (mut one, mut neither) = (0usize, 0usize);
                for ((t, pa), (_, pb)) in a.iter().zip(&b) {
                    let inside = windows.iter().any(|(s, e)| t >= s && t < e);
                    let switching = windows.iter().any(|(s, e)| {
                        (*t >= *s && *t < *s + switch) || (*t >= *e - switch && t < e)
                    });
                    assert_eq!(
                        *pa, !inside,
                        "infrastructure is dead exactly inside windows, {t:?}"
                    );
                    if switching {
                        assert!(!pa && !pb, "neither side is live while switching, {t:?}");
                        neither += 1;
                    } else {
                        assert!(pa ^ pb, "exactly one side is live at {t:?}");
                        one += 1;
                    }
                }
                assert!(one > 19_000);
                if switch.is_zero() {
                    assert_eq!(neither, 0);
                } else {
                    // Two switches a window, 19 windows, one send a millisecond.
                    let expect = 2 * 19 * switch.as_micros() as usize / 1000;
                    assert!(neither.abs_diff(expect) <= 2 * 19, "{neither} vs {expect}");
                }
            }
        }
        // Another stall seed: another radio, and the sides are no longer complementary.
        let mut infra =
            Link::with_stall_seed(&radio(Channel::Infrastructure, Duration::ZERO), 1, 42);
        let mut p2p = Link::with_stall_seed(&radio(Channel::PeerToPeer, Duration::ZERO), 2, 43);
        let a = passes(&mut infra, 20_000, MS, Duration::ZERO);
        let b = passes(&mut p2p, 20_000, MS, Duration::ZERO);
        assert!(a.iter().zip(&b).any(|((_, pa), (_, pb))| pa == pb));
    }

    #[test]
    fn peer_to_peer_holds_until_the_next_window_then_bursts_at_capacity() {
        let stall = StallConfig {
            period: 1050 * MS,
            min: 40 * MS,
            max: 40 * MS,
            phase: 500 * MS,
            loss_in_stall: 0.0,
            serves: Channel::PeerToPeer,
            switch: 500 * US,
        };
        let cfg = LinkConfig {
            stall: Some(stall),
            base_delay: Duration::ZERO,
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 1);
        let tx = Capacity::new(100_000_000, Duration::ZERO).tx_time(1200);
        let out: Vec<(Duration, Duration)> = (400..600u32)
            .map(|i| (MS * i, l.send(MS * i, 1200)[0]))
            .collect();
        let live_from = 500 * MS + 500 * US;
        // Sent before the window or in its first switch: released at start + switch, back
        // to back at link rate, in order.
        let early: Vec<Duration> = out
            .iter()
            .filter(|(s, _)| *s < live_from)
            .map(|(_, a)| *a)
            .collect();
        assert_eq!(early.len(), 101);
        for (j, at) in early.iter().enumerate() {
            assert_eq!(*at, live_from + tx * (j as u32 + 1));
        }
        // Sent inside the live part, once the burst has drained: through at once.
        for (s, a) in &out {
            if *s >= 520 * MS && *s < 539 * MS + 500 * US {
                assert_eq!(*a, *s + tx, "live at {s:?}");
            }
        }
        // Sent in the last switch or after the window: held to the next window.
        let late: Vec<Duration> = out
            .iter()
            .filter(|(s, _)| *s >= 539 * MS + 500 * US)
            .map(|(_, a)| *a)
            .collect();
        assert_eq!(late.len(), 60);
        assert_eq!(late[0], 1550 * MS + 500 * US + tx);
        for w in late.windows(2) {
            assert_eq!(w[1] - w[0], tx);
        }
        assert_eq!(l.counters().held_by_stall, 161);
    }

    #[test]
    fn switch_time_leaves_the_infrastructure_side_as_measured() {
        let feed_with = |switch| {
            let mut l = Link::with_stall_seed(&radio(Channel::Infrastructure, switch), 3, 9);
            let out = feed(&mut l, 30_000, 300 * US, 1200);
            (out, l.counters())
        };
        assert_eq!(feed_with(Duration::ZERO), feed_with(MS));
    }

    #[test]
    fn held_peer_to_peer_datagrams_take_the_stall_loss() {
        let mut cfg = radio(Channel::PeerToPeer, 500 * US);
        if let Some(s) = &mut cfg.stall {
            s.loss_in_stall = 0.1;
        }
        let mut l = Link::new(&cfg, 4);
        let out = feed(&mut l, 50_000, 200 * US, 100);
        let c = l.counters();
        let lost = out.iter().filter(|c| c.is_empty()).count() as u64;
        assert_eq!(lost, c.dropped_stall);
        let held = c.held_by_stall + c.dropped_stall;
        let rate = c.dropped_stall as f64 / held as f64;
        assert!((rate - 0.1).abs() < 0.01, "{rate}");
        assert!(
            held > 40_000,
            "most of the time the peer-to-peer side waits: {held}"
        );
    }

    #[test]
    fn outage_drops_exactly_its_interval() {
        let cfg = LinkConfig {
            outage: Some(Outage {
                from: 100 * MS,
                to: 200 * MS,
            }),
            ..Default::default()
        };
        let mut l = Link::new(&cfg, 5);
        let sends = [
            Duration::ZERO,
            100 * MS - Duration::from_nanos(1),
            100 * MS,
            150 * MS,
            200 * MS - Duration::from_nanos(1),
            200 * MS,
            300 * MS,
        ];
        let lost: Vec<bool> = sends
            .iter()
            .map(|t| {
                let live = l.live_at(*t);
                let lost = l.send(*t, 100).is_empty();
                assert_eq!(live, !lost);
                lost
            })
            .collect();
        assert_eq!(lost, [false, false, true, true, true, false, false]);
        let c = l.counters();
        assert_eq!((c.dropped_outage, c.delivered, c.datagrams_in), (3, 4, 7));
        let mut l = Link::new(&cfg, 5);
        let out = feed(&mut l, 300, MS, 100);
        for (i, c) in out.iter().enumerate() {
            assert_eq!(c.is_empty(), (100..200).contains(&i), "{i} ms");
        }
        assert_eq!(l.counters().dropped_outage, 100);
    }
}
