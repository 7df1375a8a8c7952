//! The receiving endpoint: datagrams in, decodable frames (marked for display or not) out,
//! feedback back to the sender.
//!
//! Decode order is strict: a delta frame is handed over only after its predecessor, so a
//! frame that completes early waits (bounded) for the ones before it. A missing frame is
//! NACKed and, if still missing after the frame timeout, given up: the chain is broken,
//! later delta frames are undecodable and dropped, and a keyframe is requested (repeated,
//! rate-limited, until one arrives). A frame flagged discardable breaks no chain and is
//! simply skipped.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Endpoint;
use crate::cadence::FrameCadence;
use crate::config::ReceiverConfig;
use crate::congestion::TrendlineEstimator;
use crate::jitter::{FrameDelayEstimator, InterarrivalJitter};
use crate::multipath::{ArrivalPaths, PathId, PathSet, Transmit};
use crate::nack::NackTracker;
use crate::packet::{
    Codec, FRAME_DISCARDABLE, KeyframeRequest, MediaFragment, Packet, Payload, ReceiverReport,
};
use crate::playout::{PlayoutBuffer, PlayoutPolicy};
use crate::reassembly::{CompleteFrame, FrameReassembler, Insert};
use crate::rtt::{Clock, Prober};
use crate::stall::StallDetector;
use crate::stats::ReceiverStats;
use crate::window::WindowedMin;

/// Largest sequence gap repaired by NACK; a bigger jump is left to a keyframe.
const MAX_NACK_GAP: u32 = 1024;

/// A frame handed to the decoder.
#[derive(Clone, Debug)]
pub struct ReceivedFrame {
    /// Sender's frame id.
    pub frame_id: u32,
    /// Codec of `data`.
    pub codec: Codec,
    /// Decodable on its own.
    pub keyframe: bool,
    /// Capture time on the sender's clock, µs.
    pub capture_us: u64,
    /// Encoded bytes.
    pub data: Bytes,
    /// Show it (true) or decode it only to keep references current (false).
    pub display: bool,
    /// When its last piece arrived.
    pub completed_at: Instant,
    /// When playout released it (≥ `completed_at`).
    pub released_at: Instant,
    /// Needed a retransmission or parity.
    pub repaired: bool,
}

/// What the receiver tells its driver.
#[derive(Clone, Debug)]
pub enum ReceiverEvent {
    /// A frame to decode (and maybe display).
    Frame(ReceivedFrame),
}

/// Sans-IO receiving endpoint. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    clock: Clock,
    next_packet_number: u64,
    reassembly: FrameReassembler,
    nack: NackTracker,
    playout: PlayoutBuffer,
    ia_jitter: InterarrivalJitter,
    frame_jitter: FrameDelayEstimator,
    trend: TrendlineEstimator,
    stall: StallDetector,
    prober: Prober,
    /// Feedback to send, each with its paths.
    control: VecDeque<(Payload, PathSet)>,
    events: VecDeque<ReceiverEvent>,
    /// What arrived on each path; copies of a datagram another path brought are dropped.
    arrivals: ArrivalPaths,
    highest_seq: Option<u32>,
    newest_frame_seen: Option<u32>,
    /// The frame decode continuity needs next; `None` while waiting for a keyframe.
    next_frame: Option<u32>,
    ready: BTreeMap<u32, CompleteFrame>,
    ready_bytes: usize,
    waiting_since: Option<Instant>,
    keyframe_wanted: bool,
    last_keyframe_request: Option<Instant>,
    keyframe_request_id: u32,
    last_decoded: u32,
    cadence: FrameCadence,
    /// A sequence gap was found in the datagram being handled: NACK before returning.
    gap_found: bool,
    next_report: Instant,
    interval_highest: Option<u32>,
    interval_lost: u64,
    /// Of `interval_lost`, those found inside a stall episode.
    interval_stall_lost: u64,
    interval_bytes: u64,
    interval_start: Instant,
    interval_delivery_bps: u64,
    last_now: Instant,
    /// Smallest first-datagram transit per frame over [`crate::playout::BASE_WINDOW`].
    base_first_transit: WindowedMin,
    /// Smallest excess transit seen this report interval.
    interval_queue_us: Option<u64>,
    stats: ReceiverStats,
}

impl Receiver {
    /// A receiver whose clock starts at `now`.
    pub fn new(config: ReceiverConfig, now: Instant) -> Self {
        Self {
            clock: Clock::new(now),
            next_packet_number: 0,
            // One budget, split: half for frames being reassembled, half for complete
            // frames waiting on a predecessor or in playout.
            reassembly: FrameReassembler::new(
                config.max_frames_in_flight,
                config.max_buffered_bytes / 2,
                config.fec,
            ),
            nack: NackTracker::default(),
            playout: PlayoutBuffer::new(config.playout),
            ia_jitter: InterarrivalJitter::default(),
            frame_jitter: FrameDelayEstimator::default(),
            trend: TrendlineEstimator::default(),
            stall: StallDetector::default(),
            prober: Prober::new(now),
            control: VecDeque::new(),
            events: VecDeque::new(),
            arrivals: ArrivalPaths::new(),
            highest_seq: None,
            newest_frame_seen: None,
            next_frame: None,
            ready: BTreeMap::new(),
            ready_bytes: 0,
            waiting_since: None,
            keyframe_wanted: false,
            last_keyframe_request: None,
            keyframe_request_id: 0,
            last_decoded: 0,
            cadence: FrameCadence::new(Duration::from_micros(16_667)),
            gap_found: false,
            next_report: now + config.report_interval,
            interval_highest: None,
            interval_lost: 0,
            interval_stall_lost: 0,
            interval_bytes: 0,
            interval_start: now,
            interval_delivery_bps: 0,
            last_now: now,
            base_first_transit: WindowedMin::new(crate::playout::BASE_WINDOW),
            interval_queue_us: None,
            stats: ReceiverStats::default(),
            config,
        }
    }

    /// The receiver's clock (µs since creation).
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The application could not use a delivered frame (its decoder failed, or it had to
    /// drop one): nothing more is delivered until a keyframe, which is requested now (with
    /// the usual rate limit). Without this the decoder would be fed deltas whose reference
    /// it never had.
    pub fn decoder_lost_sync(&mut self) {
        self.next_frame = None;
        self.keyframe_wanted = true;
    }

    /// Changes the playout policy live.
    pub fn set_playout_policy(&mut self, policy: PlayoutPolicy) {
        self.config.playout = policy;
        self.playout.set_policy(policy);
    }

    /// Sender clock minus receiver clock (µs), once a ping has been answered.
    pub fn sender_clock_offset_us(&self) -> Option<i64> {
        self.prober.peer_clock_offset_us()
    }

    fn rtt(&self) -> Duration {
        self.prober.rtt().smoothed_or(Duration::from_millis(20))
    }

    fn frame_timeout(&self) -> Duration {
        self.config
            .min_frame_timeout
            .max(self.rtt() * 3 + Duration::from_millis(20))
    }

    fn nack_retry_interval(&self) -> Duration {
        (self.rtt() + Duration::from_millis(2))
            .clamp(Duration::from_millis(3), Duration::from_millis(200))
    }

    /// How long after a frame's latest datagram its missing tail counts as lost. Shorter
    /// than 3 ms NACKs datagrams that Wi-Fi jitter merely spread out (measured: at 2 ms the
    /// `wifi`-based profiles' overhead rises from ~4 % to ~13 % with spurious repairs).
    fn tail_wait(&self) -> Duration {
        Duration::from_micros(self.ia_jitter.jitter_us() as u64 * 3).max(Duration::from_millis(3))
    }

    fn on_media(&mut self, now: Instant, f: MediaFragment) {
        self.stats.media_packets += 1;
        let now_us = self.clock.us(now);
        self.ia_jitter.on_packet(now_us, f.frame.capture_us);
        self.interval_bytes += f.data.len() as u64;
        let id = f.frame.frame_id;
        let frame_start = self.newest_frame_seen.is_none_or(|n| id > n);
        let (excess, in_stall) = self.observe_arrival(now, now_us, f.frame.capture_us, frame_start);
        if frame_start {
            self.newest_frame_seen = Some(id);
            // A stall's silence and burst are not congestion: neither the delay gradient nor
            // the standing queue may see them (see `crate::stall`).
            if !in_stall {
                self.trend.on_frame_start(now, now_us, f.frame.capture_us);
                self.interval_queue_us =
                    Some(self.interval_queue_us.map_or(excess, |q| q.min(excess)));
            }
        }
        let was_missing = self.nack.received(f.seq);
        if was_missing {
            self.stats.packets_repaired += 1;
        }
        match self.highest_seq {
            None => self.highest_seq = Some(f.seq),
            Some(h) if f.seq > h => {
                let gap = f.seq - h - 1;
                if gap > 0 {
                    self.stats.packets_lost += u64::from(gap);
                    self.interval_lost += u64::from(gap);
                    if in_stall {
                        self.interval_stall_lost += u64::from(gap);
                        self.stall.on_loss(u64::from(gap));
                    }
                    if self.config.nack && gap <= MAX_NACK_GAP {
                        for s in h + 1..f.seq {
                            self.nack.add(now, s);
                        }
                        self.gap_found = true;
                    }
                }
                self.highest_seq = Some(f.seq);
            }
            Some(_) => {}
        }
        let outcome = self.reassembly.insert_fragment(now, f, was_missing);
        self.on_insert(now, outcome);
    }

    /// Feeds a media or parity datagram's arrival to the stall detector: returns its transit
    /// above the path's base (µs) and whether it arrived inside a stall episode. A frame
    /// start also updates the base, the smallest first-datagram transit recently seen.
    fn observe_arrival(
        &mut self,
        now: Instant,
        now_us: u64,
        capture_us: u64,
        frame_start: bool,
    ) -> (u64, bool) {
        let transit = now_us as i64 - capture_us as i64;
        if frame_start {
            self.base_first_transit.push(now, transit);
        }
        let excess = (transit - self.base_first_transit.min().unwrap_or(transit)).max(0) as u64;
        (excess, self.stall.on_datagram(now_us, excess, frame_start))
    }

    fn on_insert(&mut self, now: Instant, outcome: Insert) {
        match outcome {
            Insert::Stored => {}
            Insert::Duplicate => self.stats.duplicates += 1,
            Insert::Stale => self.stats.stale_packets += 1,
            Insert::Rejected => self.stats.drops.rejected_fragments += 1,
            Insert::Complete(c) => self.on_complete(c),
        }
        self.advance(now);
    }

    fn on_complete(&mut self, c: CompleteFrame) {
        self.stats.frames_completed += 1;
        self.stats.frame_bytes_completed += c.data.len() as u64;
        if c.fec_recovered > 0 {
            self.stats.frames_fec_recovered += 1;
            self.stats.fec_fragments_recovered += u64::from(c.fec_recovered);
        }
        self.nack
            .received_all(c.first_seq, u32::from(c.info.fragment_count));
        // As libwebrtc does, frames delayed by a repair do not feed the jitter estimate: the
        // repair's round trip is not path jitter, and a buffer sized for it would cost every
        // frame that delay.
        if !c.repaired {
            self.frame_jitter.on_frame(
                self.clock.us(c.completed_at),
                c.info.capture_us,
                c.data.len(),
            );
        }
        if let Some(bps) = c.delivery_rate_bps {
            self.interval_delivery_bps = self.interval_delivery_bps.max(bps);
        }
        if self.next_frame.is_some_and(|n| c.info.frame_id < n) {
            self.stats.stale_packets += 1;
            return;
        }
        self.ready_bytes += c.data.len();
        self.ready.insert(c.info.frame_id, c);
        while self.ready.len() > self.config.max_frames_in_flight
            || self.ready_bytes + self.playout.bytes() > self.config.max_buffered_bytes / 2
        {
            let Some((_, old)) = self.ready.pop_first() else {
                break;
            };
            self.ready_bytes -= old.data.len();
            self.stats.frames_evicted += 1;
        }
    }

    fn take_ready(&mut self, id: u32) -> Option<CompleteFrame> {
        let c = self.ready.remove(&id)?;
        self.ready_bytes -= c.data.len();
        Some(c)
    }

    /// Hands over every frame whose chain is intact, jumping to ready keyframes.
    fn advance(&mut self, now: Instant) {
        loop {
            if let Some(n) = self.next_frame
                && let Some(c) = self.take_ready(n)
            {
                self.deliver(now, c);
                continue;
            }
            // Nothing continues the chain: the oldest ready keyframe restarts it.
            let key = self
                .ready
                .iter()
                .find(|(_, c)| c.info.is_keyframe())
                .map(|(k, _)| *k);
            if let Some(k) = key {
                self.drop_ready_below(k);
                self.next_frame = Some(k);
                continue;
            }
            if self.next_frame.is_none() && !self.ready.is_empty() {
                // Deltas without a reference: undecodable.
                self.stats.frames_undecodable += self.ready.len() as u64;
                self.ready.clear();
                self.ready_bytes = 0;
                self.keyframe_wanted = true;
            }
            break;
        }
        self.waiting_since = match self.next_frame {
            Some(n) if self.newest_frame_seen.is_some_and(|s| s > n) => {
                Some(self.waiting_since.unwrap_or(now))
            }
            _ => None,
        };
    }

    fn drop_ready_below(&mut self, k: u32) {
        let keep = self.ready.split_off(&k);
        let dropped = std::mem::replace(&mut self.ready, keep);
        for (_, c) in dropped {
            self.ready_bytes -= c.data.len();
            self.stats.frames_undecodable += 1;
        }
        self.reassembly.finish_below(k);
    }

    fn deliver(&mut self, now: Instant, c: CompleteFrame) {
        let id = c.info.frame_id;
        self.next_frame = Some(id.wrapping_add(1));
        self.last_decoded = id;
        if c.info.is_keyframe() {
            self.keyframe_wanted = false;
        }
        self.cadence.on_capture(c.info.capture_us);
        self.reassembly.finish_below(id.wrapping_add(1));
        self.nack
            .forget_below(c.first_seq.wrapping_add(u32::from(c.info.fragment_count)));
        if let Some(offset) = self.prober.peer_clock_offset_us() {
            let first = self.clock.us(c.first_arrival) as i64;
            let sent_local = c.info.capture_us as i64 - offset;
            self.stats.one_way_delay =
                Some(Duration::from_micros((first - sent_local).max(0) as u64));
        }
        let jitter = Duration::from_micros(self.frame_jitter.jitter_us() as u64);
        let completed_us = self.clock.us(c.completed_at);
        self.stats.frames_delivered += 1;
        let interval = self.cadence.interval();
        self.playout.push(now, c, completed_us, jitter, interval);
    }

    fn release(&mut self, now: Instant) {
        while let Some(p) = self.playout.poll(now) {
            if p.display {
                self.stats.frames_displayed += 1;
            } else {
                self.stats.frames_not_displayed += 1;
            }
            let f = p.frame;
            self.events.push_back(ReceiverEvent::Frame(ReceivedFrame {
                frame_id: f.info.frame_id,
                codec: f.info.codec,
                keyframe: f.info.is_keyframe(),
                capture_us: f.info.capture_us,
                data: f.data,
                display: p.display,
                completed_at: f.completed_at,
                released_at: p.released_at,
                repaired: f.repaired,
            }));
        }
    }

    fn give_up_if_overdue(&mut self, now: Instant) {
        let (Some(n), Some(since)) = (self.next_frame, self.waiting_since) else {
            return;
        };
        if now.saturating_duration_since(since) < self.frame_timeout() {
            return;
        }
        self.stats.frames_abandoned += 1;
        let discardable = self
            .reassembly
            .info(n)
            .is_some_and(|i| i.flags & FRAME_DISCARDABLE != 0);
        self.reassembly.finish_below(n.wrapping_add(1));
        if discardable {
            self.next_frame = Some(n.wrapping_add(1));
        } else {
            self.next_frame = None;
            self.keyframe_wanted = true;
        }
        self.waiting_since = None;
        self.advance(now);
    }

    fn keyframe_request_due(&self) -> Option<Instant> {
        if !self.keyframe_wanted {
            return None;
        }
        let interval = self.config.keyframe_request_interval.max(self.rtt() * 2);
        Some(
            self.last_keyframe_request
                .map_or(self.clock.instant(0), |t| t + interval),
        )
    }

    fn tail_check_due(&self) -> Option<Instant> {
        if !self.config.nack {
            return None;
        }
        self.reassembly
            .oldest_unchecked_tail()
            .map(|t| t + self.tail_wait())
    }

    fn run_timers(&mut self, now: Instant) {
        if self.tail_check_due().is_some_and(|t| t <= now) {
            let quiet_since = now.checked_sub(self.tail_wait()).unwrap_or(now);
            for seq in self.reassembly.take_overdue_tails(quiet_since) {
                self.nack.add(now, seq);
            }
        }
        if self.config.nack {
            let retry = self.nack_retry_interval();
            let max = self.config.max_nack_retries;
            if let Some((nack, repeat)) = self.nack.poll(now, retry, max) {
                self.stats.nacks_sent += 1;
                self.stats.nacked_seqs += nack
                    .ranges
                    .iter()
                    .map(|r| u64::from(r.extra) + 1)
                    .sum::<u64>();
                let paths = self.arrivals.feedback(now);
                if repeat {
                    // The first request or its answer was lost: losses come in bursts, so
                    // say it twice.
                    self.stats.nacks_sent += 1;
                    self.control.push_back((Payload::Nack(nack.clone()), paths));
                }
                self.control.push_back((Payload::Nack(nack), paths));
            }
        }
        self.give_up_if_overdue(now);
        if self.keyframe_request_due().is_some_and(|t| t <= now) {
            if self.last_keyframe_request.is_none_or(|t| {
                now.saturating_duration_since(t) > self.config.keyframe_request_interval * 4
            }) {
                self.keyframe_request_id = self.keyframe_request_id.wrapping_add(1);
            }
            self.last_keyframe_request = Some(now);
            self.stats.keyframe_requests_sent += 1;
            self.control.push_back((
                Payload::KeyframeRequest(KeyframeRequest {
                    request_id: self.keyframe_request_id,
                    last_decoded_frame: self.last_decoded,
                }),
                self.arrivals.feedback(now),
            ));
        }
        if now >= self.next_report {
            let report = self.build_report(now);
            self.control
                .push_back((Payload::Report(report), self.arrivals.feedback(now)));
            self.next_report = now + self.config.report_interval;
        }
    }

    fn build_report(&mut self, now: Instant) -> ReceiverReport {
        let now_us = self.clock.us(now);
        let highest = self.highest_seq.unwrap_or(0);
        let expected = match (self.interval_highest, self.highest_seq) {
            (Some(a), Some(b)) => u64::from(b.saturating_sub(a)),
            (None, Some(_)) => u64::from(highest) + 1,
            _ => 0,
        };
        let fraction = |lost: u64| {
            if expected > 0 {
                (lost.min(expected) as f64 / expected as f64) as f32
            } else {
                0.0
            }
        };
        let loss = fraction(self.interval_lost);
        let stall_loss = fraction(self.interval_stall_lost);
        let secs = now
            .saturating_duration_since(self.interval_start)
            .as_secs_f64()
            .max(1e-3);
        let rate = (self.interval_bytes as f64 * 8.0 / secs) as u64;
        self.stats.receive_rate_bps = rate;
        self.stats.loss_fraction = loss;
        let r = ReceiverReport {
            highest_seq: highest,
            cumulative_lost: self.stats.packets_lost.min(u64::from(u32::MAX)) as u32,
            loss_fraction_q8: (loss * 256.0).min(255.0) as u8,
            stall_loss_fraction_q8: (stall_loss * 256.0).min(255.0) as u8,
            stall_period_ms: self
                .stall
                .period()
                .map_or(0, |p| p.as_millis().min(u128::from(u16::MAX)) as u16),
            stall_next_ms: self.stall.next_expected(now_us).map_or(0, |t| {
                ((t - now_us) / 1000).clamp(1, u64::from(u16::MAX)) as u16
            }),
            stall_length_ms: self
                .stall
                .longest_recent_silence()
                .map_or(0, |d| d.as_millis().min(255) as u8),
            stall_window_loss_q8: (self.stall.window_loss() * 256.0).min(255.0) as u8,
            jitter_us: self.ia_jitter.jitter_us() as u32,
            frame_jitter_us: self.frame_jitter.jitter_us().min(f64::from(u32::MAX)) as u32,
            receive_rate_kbps: (rate / 1000).min(u64::from(u32::MAX)) as u32,
            delivery_rate_kbps: (self.interval_delivery_bps / 1000).min(u64::from(u32::MAX)) as u32,
            delay_trend: self.trend.trend_us_per_s().clamp(-32768.0, 32767.0) as i16,
            usage: self.trend.usage(),
            playout_delay_us: self.playout.delay().as_micros().min(u128::from(u32::MAX)) as u32,
            rtt_us: self
                .prober
                .rtt()
                .smoothed()
                .map_or(0, |d| d.as_micros() as u32),
            queue_delay_us: self.interval_queue_us.unwrap_or(0).min(u64::from(u32::MAX)) as u32,
        };
        self.interval_queue_us = None;
        self.interval_highest = self.highest_seq;
        self.interval_lost = 0;
        self.interval_stall_lost = 0;
        self.interval_bytes = 0;
        self.interval_delivery_bps = 0;
        self.interval_start = now;
        r
    }

    fn on_packet(&mut self, now: Instant, path: PathId, packet: Packet) {
        match packet.payload {
            Payload::Media(f) => self.on_media(now, f),
            Payload::Parity(s) => {
                self.stats.parity_packets += 1;
                self.observe_arrival(now, self.clock.us(now), s.frame.capture_us, false);
                let outcome = self.reassembly.insert_parity(now, s);
                self.on_insert(now, outcome);
            }
            Payload::Ping(p) => {
                self.stats.sender_target_bps = u64::from(p.target_kbps) * 1000;
                self.control.push_back((
                    Payload::Pong(Prober::answer(&p, now, &self.clock)),
                    PathSet::only(path),
                ));
            }
            Payload::Pong(p) => {
                if !self.prober.on_pong(&p, now, &self.clock) {
                    self.stats.drops.unmatched_pongs += 1;
                }
            }
            Payload::Nack(_) | Payload::KeyframeRequest(_) | Payload::Report(_) => {
                self.stats.drops.unexpected_type += 1;
            }
        }
    }

    /// Statistics snapshot.
    pub fn stats(&self) -> ReceiverStats {
        let mut s = self.stats.clone();
        s.interarrival_jitter = Duration::from_micros(self.ia_jitter.jitter_us() as u64);
        s.frame_jitter = Duration::from_micros(self.frame_jitter.jitter_us() as u64);
        s.playout_delay = self.playout.delay();
        s.rtt = self.prober.rtt().smoothed();
        s.clock_offset_us = self.prober.peer_clock_offset_us();
        s.usage = self.trend.usage();
        s.stalls = self.stall.stalls();
        s.stalls_capped = self.stall.capped();
        s.stalled = self.stall.stalled();
        s.stall_period = self.stall.period();
        s.frames_evicted += self.reassembly.evicted();
        s.frame_bytes_copied = self.reassembly.bytes_copied();
        s.parity_bytes_copied = self.reassembly.parity_bytes_copied();
        s.buffered_frames = self.reassembly.frames() + self.ready.len() + self.playout.len();
        s.buffered_bytes = self.reassembly.bytes() + self.ready_bytes + self.playout.bytes();
        s.paths = self.arrivals.stats();
        s
    }
}

impl Endpoint for Receiver {
    type Event = ReceiverEvent;

    fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.handle_datagram_on(now, PathId::FIRST, datagram);
    }

    fn handle_datagram_on(&mut self, now: Instant, path: PathId, datagram: Bytes) {
        self.last_now = self.last_now.max(now);
        self.stats.datagrams_received += 1;
        let len = datagram.len();
        self.stats.bytes_received += len as u64;
        match Packet::parse(datagram, self.config.session_id) {
            // A copy another path brought first is dropped here, before the jitter, delay
            // and stall estimators could take its later arrival for the path's.
            Ok(p) if self.arrivals.on_arrival(now, path, p.packet_number, len) => {
                self.on_packet(now, path, p)
            }
            Ok(_) => {}
            Err(e) => self.stats.drops.count(&e),
        }
        // A gap is NACKed at once; retries come due through `poll_timeout`.
        if std::mem::take(&mut self.gap_found) {
            self.run_timers(now);
        }
    }

    fn set_path_open(&mut self, _now: Instant, path: PathId, open: bool) {
        self.arrivals.set_open(path, open);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        self.poll_transmit_on(now, buf).map(|t| t.len)
    }

    fn poll_transmit_on(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        let (payload, paths) = match self.control.pop_front() {
            Some(p) => p,
            None => (
                Payload::Ping(self.prober.poll_ping(now, &self.clock)?),
                self.arrivals.feedback(now),
            ),
        };
        let packet = Packet {
            session_id: self.config.session_id,
            packet_number: self.next_packet_number,
            payload,
        };
        self.next_packet_number += 1;
        let len = packet.encoded_len();
        buf.reserve(len);
        packet.encode_into(buf);
        self.arrivals.on_sent(paths, len);
        Some(Transmit { len, paths })
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let nack = if self.config.nack {
            self.nack.next_due()
        } else {
            None
        };
        let give_up = self.waiting_since.map(|t| t + self.frame_timeout());
        [
            Some(self.next_report),
            Some(self.prober.next_ping_at()),
            nack,
            self.tail_check_due(),
            give_up,
            self.playout.next_due(),
            self.keyframe_request_due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.run_timers(now);
    }

    /// Starts over: the sender's new stream begins with new frame ids on a new clock, so
    /// nothing of the old one (frames, sequence numbers, jitter, base transit) may judge it.
    /// The configuration and the count of restarts carry over.
    fn peer_restarted(&mut self, now: Instant) {
        let restarts = self.stats.peer_restarts + 1;
        let open = self.arrivals.open_set();
        *self = Receiver::new(self.config.clone(), now);
        self.stats.peer_restarts = restarts;
        for path in open.iter() {
            self.arrivals.set_open(path, true);
        }
    }

    /// Frames are released here rather than as they complete, so that frames completing
    /// in one batch of datagrams (a stall's burst) are due together and only the newest is
    /// displayed.
    fn poll_event(&mut self) -> Option<ReceiverEvent> {
        if self.events.is_empty() {
            self.release(self.last_now);
        }
        self.events.pop_front()
    }
}
