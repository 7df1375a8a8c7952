//! The sending endpoint: frames in, paced datagrams out, feedback turned into events.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Endpoint;
use crate::cadence::FrameCadence;
use crate::config::SenderConfig;
use crate::congestion::{CapacityEstimator, RateController};
use crate::fec::{FecPolicy, encode_parity_counted};
use crate::history::RetransmitHistory;
use crate::multipath::{
    ArrivalPaths, MAX_PATHS, PathId, PathPolicy, PathSet, PathState, SenderPaths, Transmit,
};
use crate::pacer::Pacer;
use crate::packet::{
    Codec, FRAME_DISCARDABLE, FRAME_KEYFRAME, FrameInfo, HEADER_LEN, MAX_FRAGMENTS,
    MAX_PACKET_NUMBER, MEDIA_HEADER_LEN, MediaFragment, Packet, ParityShard, Payload,
};
use crate::rtt::{Clock, Prober};
use crate::stall::StallForecast;
use crate::stats::SenderStats;

/// How long media sends are remembered for reinjection: longer than any silence is
/// suspected after plus an RTT.
const REINJECT_HORIZON: Duration = Duration::from_millis(100);

/// An encoded frame handed to the sender.
#[derive(Clone, Debug)]
pub struct OutgoingFrame {
    /// Encoded bytes (one access unit).
    pub data: Bytes,
    /// When the picture was captured (the latency clock starts here).
    pub capture: Instant,
    /// Decodable on its own.
    pub keyframe: bool,
    /// No later frame references it.
    pub discardable: bool,
    /// Codec of `data`.
    pub codec: Codec,
}

impl OutgoingFrame {
    /// An AV1 frame captured at `capture` that later frames may reference (not discardable).
    pub fn av1(data: Bytes, capture: Instant, keyframe: bool) -> OutgoingFrame {
        OutgoingFrame {
            data,
            capture,
            keyframe,
            discardable: false,
            codec: Codec::Av1,
        }
    }
}

/// What the sender tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SenderEvent {
    /// The receiver needs a keyframe; encode the next frame as one.
    KeyframeRequested,
    /// The congestion controller's new target bitrate (bit/s) for the encoder.
    TargetBitrate(u64),
}

/// Why a frame could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Zero-length frame.
    #[error("empty frame")]
    Empty,
    /// More fragments than the protocol allows at this datagram size.
    #[error("frame of {bytes} bytes exceeds the {max} bytes one frame may have")]
    TooLarge {
        /// Frame size.
        bytes: usize,
        /// Largest frame size at the configured datagram size.
        max: usize,
    },
    /// The packet-number space is used up; start a new session.
    #[error("packet numbers exhausted; start a new session")]
    Exhausted,
    /// The pacer already holds more than `max_queue_delay` of data: the path is far slower
    /// than the encoder. The frame is refused (so memory stays bounded), which breaks the
    /// reference chain: a [`SenderEvent::KeyframeRequested`] follows.
    #[error("send queue full: {queued:?} of data waiting")]
    QueueFull {
        /// Time the queued data needs to leave.
        queued: Duration,
    },
}

/// Sans-IO sending endpoint. See the crate docs for the driving contract.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    clock: Clock,
    next_packet_number: u64,
    next_seq: u32,
    /// The sequence number whose first transmission is the next to leave.
    next_fresh_seq: u32,
    next_frame_id: u32,
    pacer: Pacer,
    /// Control datagrams to send, each with its paths (`None`: wherever media goes now).
    control: VecDeque<(Payload, Option<PathSet>)>,
    history: RetransmitHistory,
    fec: FecPolicy,
    rate: RateController,
    capacity: CapacityEstimator,
    prober: Prober,
    events: VecDeque<SenderEvent>,
    cadence: FrameCadence,
    last_keyframe_event: Option<Instant>,
    loss_ewma: f32,
    /// The same smoothing of the loss outside radio stalls: what congestion control acts on.
    congestion_loss_ewma: f32,
    /// When the receiver expects its next radio stalls, from its latest report.
    stall_forecast: Option<StallForecast>,
    /// Two paths: probes, liveness, dead windows, and where each datagram goes.
    paths: SenderPaths,
    /// What came back on each path, and the copies dropped.
    arrivals: ArrivalPaths,
    /// Over two paths: each media fragment sent lately, when, and on which paths (for
    /// reinjection when a path falls silent).
    recent_media: VecDeque<(Instant, u32, PathSet)>,
    stats: SenderStats,
}

impl Sender {
    /// A sender whose clock starts at `now`.
    pub fn new(config: SenderConfig, now: Instant) -> Self {
        let rate = RateController::new(
            config.start_bitrate_bps,
            config.min_bitrate_bps,
            config.max_bitrate_bps,
        );
        Self {
            clock: Clock::new(now),
            next_packet_number: 0,
            next_seq: 0,
            next_fresh_seq: 0,
            next_frame_id: 0,
            pacer: Pacer::default(),
            control: VecDeque::new(),
            history: RetransmitHistory::new(config.history_packets, config.history_max_age),
            fec: FecPolicy::new(config.fec),
            capacity: CapacityEstimator::new(config.initial_capacity_bps, 2_000_000),
            prober: Prober::new(now),
            events: VecDeque::new(),
            cadence: FrameCadence::new(config.frame_interval_hint),
            last_keyframe_event: None,
            loss_ewma: 0.0,
            congestion_loss_ewma: 0.0,
            stall_forecast: None,
            paths: SenderPaths::new(config.path_policy, now),
            arrivals: ArrivalPaths::new(),
            recent_media: VecDeque::new(),
            stats: SenderStats {
                target_bitrate_bps: rate.target_bps(),
                ..SenderStats::default()
            },
            rate,
            config,
        }
    }

    /// Bytes of video one media datagram carries.
    pub fn fragment_payload(&self) -> usize {
        self.config
            .max_datagram_size
            .saturating_sub(HEADER_LEN + MEDIA_HEADER_LEN)
            .max(1)
    }

    /// The sender's clock (µs since creation), as written into capture timestamps.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Splits `frame` into fragments (plus parity) and queues them for paced sending.
    /// Returns the frame id.
    pub fn send_frame(&mut self, now: Instant, frame: OutgoingFrame) -> Result<u32, SendError> {
        if frame.data.is_empty() {
            return Err(SendError::Empty);
        }
        let per = self.fragment_payload();
        let max = per * usize::from(MAX_FRAGMENTS);
        if frame.data.len() > max {
            return Err(SendError::TooLarge {
                bytes: frame.data.len(),
                max,
            });
        }
        let queued = self.queue_delay();
        if queued > self.config.max_queue_delay {
            self.push_event(SenderEvent::KeyframeRequested);
            return Err(SendError::QueueFull { queued });
        }
        let count = frame.data.len().div_ceil(per);
        if self.next_packet_number + count as u64 * 2 > MAX_PACKET_NUMBER {
            return Err(SendError::Exhausted);
        }
        let capture_us = self.clock.us(frame.capture);
        self.cadence.on_capture(capture_us);
        let mut flags = 0;
        if frame.keyframe {
            flags |= FRAME_KEYFRAME;
        }
        if frame.discardable {
            flags |= FRAME_DISCARDABLE;
        }
        let info = FrameInfo {
            frame_id: self.next_frame_id,
            fragment_count: count as u16,
            codec: frame.codec,
            flags,
            capture_us,
        };
        self.next_frame_id = self.next_frame_id.wrapping_add(1);
        let first_seq = self.next_seq;
        let mut payloads = Vec::with_capacity(count + 4);
        let mut chunks = Vec::with_capacity(count);
        for (i, chunk) in (0..frame.data.len()).step_by(per).enumerate() {
            let data = frame.data.slice(chunk..(chunk + per).min(frame.data.len()));
            let fragment = MediaFragment {
                seq: self.next_seq,
                frame: info,
                index: i as u16,
                data: data.clone(),
            };
            self.next_seq = self.next_seq.wrapping_add(1);
            self.history.push(now, fragment.clone());
            chunks.push(data);
            payloads.push(Payload::Media(fragment));
        }
        let mut parity = self.fec.parity_for(count, frame.keyframe);
        // A frame sent into a forecast stall meets the radio's loss there; parity lets it
        // complete from the burst instead of a NACK round trip that holds every later frame.
        if self.config.fec != crate::FecMode::Off
            && let Some(f) = self
                .stall_forecast
                .filter(|f| f.window_loss > 0.0 && f.covers(now))
        {
            parity = parity.max(f.parity_for(count));
            self.stats.stall_protected_frames += 1;
        }
        let mut parity_copied = 0;
        let shards = encode_parity_counted(&chunks, parity, &mut parity_copied);
        self.stats.parity_bytes_copied += parity_copied;
        let shard_count = shards.len() as u16;
        for (i, shard) in shards.into_iter().enumerate() {
            self.stats.parity_packets += 1;
            payloads.push(Payload::Parity(ParityShard {
                frame: info,
                first_seq,
                index: i as u16,
                count: shard_count,
                shard,
            }));
        }
        self.stats.frames_sent += 1;
        self.stats.media_bytes += frame.data.len() as u64;
        if frame.keyframe {
            self.stats.keyframes_sent += 1;
        }
        let spread = self.cadence.interval().mul_f64(self.config.spread_fraction);
        let capacity = self.capacity.estimate_bps(now);
        self.pacer.enqueue_frame(now, payloads, spread, capacity);
        self.stats.pacing_rate_bps = self.pacer.rate_bps();
        Ok(info.frame_id)
    }

    fn on_packet(&mut self, now: Instant, path: PathId, packet: Packet) {
        match packet.payload {
            Payload::Nack(nack) => {
                self.stats.nacks_received += 1;
                let min_interval = self.prober.rtt().smoothed_or(Duration::from_millis(10)) / 2;
                for seq in nack.ranges.iter().flat_map(|r| r.iter()) {
                    match self.history.retransmit(now, seq, min_interval) {
                        Ok((f, copies)) => {
                            for _ in 0..copies {
                                self.stats.retransmissions += 1;
                                self.pacer.enqueue_urgent(now, Payload::Media(f.clone()));
                            }
                        }
                        Err(_) => self.stats.nack_misses += 1,
                    }
                }
            }
            Payload::KeyframeRequest(_) => {
                self.stats.keyframe_requests_received += 1;
                let limited = self.last_keyframe_event.is_some_and(|t| {
                    now.saturating_duration_since(t) < self.config.keyframe_request_min_interval
                });
                if !limited {
                    self.last_keyframe_event = Some(now);
                    self.push_event(SenderEvent::KeyframeRequested);
                }
            }
            Payload::Report(r) => {
                self.stats.reports_received += 1;
                // Reports come every ~50 ms; weight 1/16 smooths loss over about a second.
                let loss = f32::from(r.loss_fraction_q8) / 256.0;
                self.loss_ewma += (loss - self.loss_ewma) / 16.0;
                // Loss inside a radio stall is the radio's, not a full queue's: FEC repairs
                // it, but it must not lower the bitrate (see `crate::stall`).
                let stall_loss =
                    f32::from(r.stall_loss_fraction_q8.min(r.loss_fraction_q8)) / 256.0;
                self.congestion_loss_ewma += (loss - stall_loss - self.congestion_loss_ewma) / 16.0;
                let rtt = self
                    .prober
                    .rtt()
                    .smoothed()
                    .or_else(|| (r.rtt_us > 0).then(|| Duration::from_micros(r.rtt_us.into())))
                    .unwrap_or(Duration::ZERO);
                self.fec.update(self.loss_ewma, rtt);
                self.capacity
                    .on_sample(now, u64::from(r.delivery_rate_kbps) * 1000);
                if let Some(bps) =
                    self.rate
                        .on_report(now, &r, f64::from(self.congestion_loss_ewma))
                {
                    self.stats.target_bitrate_bps = bps;
                    self.push_event(SenderEvent::TargetBitrate(bps));
                }
                self.stall_forecast = (r.stall_period_ms > 0 && r.stall_next_ms > 0)
                    .then(|| {
                        StallForecast::new(
                            now,
                            rtt,
                            Duration::from_millis(r.stall_period_ms.into()),
                            Duration::from_millis(r.stall_next_ms.into()),
                            Duration::from_millis(r.stall_length_ms.into()),
                            f64::from(r.stall_window_loss_q8) / 256.0,
                        )
                    })
                    .flatten();
                self.stats.last_report = Some(r);
            }
            Payload::Ping(p) => self.control.push_back((
                Payload::Pong(Prober::answer(&p, now, &self.clock)),
                Some(PathSet::only(path)),
            )),
            Payload::Pong(p) => {
                if self.prober.on_pong(&p, now, &self.clock) {
                } else if self.paths.prober_mut(path).on_pong(&p, now, &self.clock) {
                    self.paths.on_probe_answered(path);
                } else {
                    self.stats.drops.unmatched_pongs += 1;
                }
            }
            // Media travels the other way; a sender receiving it is misconfigured or attacked.
            Payload::Media(_) | Payload::Parity(_) => self.stats.drops.unexpected_type += 1,
        }
    }

    /// Queues an event, keeping at most one of each kind (the newest bitrate wins), so an
    /// app that polls rarely never accumulates a backlog.
    fn push_event(&mut self, event: SenderEvent) {
        self.events
            .retain(|e| std::mem::discriminant(e) != std::mem::discriminant(&event));
        self.events.push_back(event);
    }

    /// Numbers `payload` and writes its datagram at the end of `buf`; returns its length.
    ///
    /// This is the one copy a fragment's bytes see between the frame handed to
    /// [`Sender::send_frame`] (the queued fragment is a zero-copy slice of it) and the
    /// socket: header and slice are written straight into the caller's buffer, which the
    /// security layer seals in place.
    fn write_datagram(&mut self, payload: Payload, buf: &mut Vec<u8>) -> usize {
        match &payload {
            Payload::Media(m) => {
                // Fresh fragments leave in sequence order, so the first copy of each
                // sequence number written is its first transmission; any other is a
                // retransmission (one NACKed before its original left counts the other
                // way round, but each number still counts once as fresh).
                let copied = m.data.len() as u64;
                if m.seq == self.next_fresh_seq {
                    self.next_fresh_seq = self.next_fresh_seq.wrapping_add(1);
                    self.stats.media_bytes_copied += copied;
                } else {
                    self.stats.retransmitted_bytes_copied += copied;
                }
            }
            Payload::Parity(p) => self.stats.parity_bytes_copied += p.shard.len() as u64,
            _ => {}
        }
        let packet = Packet {
            session_id: self.config.session_id,
            packet_number: self.next_packet_number,
            payload,
        };
        self.next_packet_number += 1;
        let len = packet.encoded_len();
        buf.reserve(len);
        packet.encode_into(buf);
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += len as u64;
        len
    }

    /// How long the datagrams now waiting in the pacer will take to leave. An encoder
    /// should skip capturing (not encode, so no reference chain breaks) while this exceeds
    /// about a frame interval: the frame could only add to the delay.
    pub fn queue_delay(&self) -> Duration {
        let bits = self.pacer.bytes_queued() as f64 * 8.0;
        Duration::from_secs_f64(bits / self.pacer.rate_bps().max(1) as f64)
    }

    /// Average spacing of the frames handed in so far.
    pub fn frame_interval(&self) -> Duration {
        self.cadence.interval()
    }

    /// Opens or closes a path (see [`Endpoint::set_path_open`]).
    fn open_path(&mut self, now: Instant, path: PathId, open: bool) {
        self.paths.set_open(now, path, open);
        self.arrivals.set_open(path, open);
    }

    /// Changes how datagrams are spread over two paths, live.
    pub fn set_path_policy(&mut self, policy: PathPolicy) {
        self.paths.set_policy(policy);
    }

    /// Where a datagram sent at `now` would go, and why: each path's state.
    pub fn path_states(&self, now: Instant) -> [PathState; MAX_PATHS] {
        std::array::from_fn(|i| {
            self.paths
                .state(now, PathId::new(i).expect("below MAX_PATHS"))
        })
    }

    /// When a path has just fallen silent with no window predicted, sends again what went on
    /// it alone since its last answer (less an RTT), ahead of the queue, on whatever paths
    /// the scheduler picks now.
    fn reinject(&mut self, now: Instant) {
        while let Some((path, since)) = self.paths.newly_in_doubt(now) {
            let only = PathSet::only(path);
            let seqs: Vec<u32> = self
                .recent_media
                .iter()
                .filter(|(t, _, on)| *t >= since && *on == only)
                .map(|(_, seq, _)| *seq)
                .collect();
            for seq in seqs {
                if let Ok((f, _)) = self.history.retransmit(now, seq, Duration::ZERO) {
                    self.stats.reinjected += 1;
                    self.pacer.enqueue_urgent(now, Payload::Media(f));
                }
            }
        }
    }

    /// Writes `payload` for `paths` (`None`: the scheduler's choice now) and counts it on
    /// each.
    fn transmit(
        &mut self,
        now: Instant,
        payload: Payload,
        paths: Option<PathSet>,
        buf: &mut Vec<u8>,
    ) -> Transmit {
        let paths = paths.unwrap_or_else(|| self.paths.choose(now));
        let media = matches!(payload, Payload::Media(_) | Payload::Parity(_));
        if let Payload::Media(m) = &payload
            && self.paths.multipath()
        {
            while self
                .recent_media
                .front()
                .is_some_and(|(t, ..)| now.saturating_duration_since(*t) > REINJECT_HORIZON)
            {
                self.recent_media.pop_front();
            }
            self.recent_media.push_back((now, m.seq, paths));
        }
        let len = self.write_datagram(payload, buf);
        self.paths.on_sent(paths, len, media);
        Transmit { len, paths }
    }

    /// Statistics snapshot.
    pub fn stats(&self) -> SenderStats {
        let mut s = self.stats.clone();
        s.path_policy = self.paths.policy();
        let arrived = self.arrivals.stats();
        s.paths = self.paths.stats();
        for (p, a) in s.paths.iter_mut().zip(arrived) {
            p.datagrams_received = a.datagrams_received;
            p.bytes_received = a.bytes_received;
            p.duplicates_received = a.duplicates_received;
        }
        s.rtt = self.prober.rtt().smoothed();
        s.fec_ratio = self.fec.ratio();
        s.queued_datagrams = self.pacer.len();
        s.history_packets = self.history.len();
        s
    }
}

impl Endpoint for Sender {
    type Event = SenderEvent;

    fn handle_datagram(&mut self, now: Instant, datagram: Bytes) {
        self.handle_datagram_on(now, PathId::FIRST, datagram);
    }

    fn handle_datagram_on(&mut self, now: Instant, path: PathId, datagram: Bytes) {
        self.stats.datagrams_received += 1;
        let len = datagram.len();
        match Packet::parse(datagram, self.config.session_id) {
            Ok(p) => {
                // Heard, even if another path brought this datagram first: the path is live.
                self.paths.on_heard(now, path);
                if self.arrivals.on_arrival(now, path, p.packet_number, len) {
                    self.on_packet(now, path, p);
                }
            }
            Err(e) => self.stats.drops.count(&e),
        }
    }

    fn set_path_open(&mut self, now: Instant, path: PathId, open: bool) {
        self.open_path(now, path, open);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        self.poll_transmit_on(now, buf).map(|t| t.len)
    }

    fn poll_transmit_on(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.reinject(now);
        if let Some((p, paths)) = self.control.pop_front() {
            return Some(self.transmit(now, p, paths, buf));
        }
        if let Some(mut ping) = self.prober.poll_ping(now, &self.clock) {
            ping.target_kbps = (self.rate.target_bps() / 1000).min(u64::from(u32::MAX)) as u32;
            return Some(self.transmit(now, Payload::Ping(ping), None, buf));
        }
        let clock = self.clock;
        if let Some((path, prober)) = self.paths.due_probe(now)
            && let Some(ping) = prober.poll_ping(now, &clock)
        {
            return Some(self.transmit(now, Payload::Ping(ping), Some(PathSet::only(path)), buf));
        }
        let p = self.pacer.poll(now)?;
        Some(self.transmit(now, p, None, buf))
    }

    fn poll_timeout(&self) -> Option<Instant> {
        let ping = Some(self.prober.next_ping_at());
        [ping, self.paths.next_probe_at(), self.pacer.next_send_at()]
            .into_iter()
            .flatten()
            .min()
    }

    fn handle_timeout(&mut self, _now: Instant) {
        // Every timer the sender has (pings, pacing slots) is served by `poll_transmit`.
    }

    fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }
}
